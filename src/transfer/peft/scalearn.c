/* transfer/peft/scalearn.c — the ScaLearn module: frozen source LoRA
 * adapters of one layer combined by learned scaling vectors.
 *
 * Paper: Frohmann et al., "ScaLearn: Simple and Highly Parameter-Efficient
 * Task Transfer by Learning to Scale" (ACL Findings 2024), eq. (2):
 *   h' = h + sum_i omega_i (.) up_i
 * with up_i the i-th source adapter's output (before its residual) and
 * omega_i unconstrained (no softmax), initialized at N(2/N, 0.001), dropout
 * 0.3 on the omega entries while training; variants Uniform (scalar omega),
 * ++ (omega shared across layers). Equations and graft's mapping onto LoRA
 * sources in graft/scalearn.h.
 * What it changes in the model: the targeted Linear/Conv2d is replaced by a
 * "ScaLearn" module with children base_layer, lora_A.<i>, lora_B.<i> (all
 * frozen) and the parameter scalearn_omega (absent on layers that borrow a
 * shared omega).
 * Not here: training the source adapters and the registry rows
 * (scalearn_transfer.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graft/scalearn.h"
#include "transfer/peft/peft_layer.h"

typedef struct scalearn_cfg {
  int n_src;
  float *scaling;    /* [n_src] */
  float dropout;
  bool conv, uniform;
  int64_t out;
  gr_tensor *omega;  /* own parameter or another module's (++) */
  gr_module *lora_a, *lora_b; /* containers of the source factors */
} scalearn_cfg;

bool gr_scalearn_is(const gr_module *mod) { return mod && mod->kind && !strcmp(mod->kind, "ScaLearn") && mod->cfg; }

gr_tensor *gr_scalearn_omega(const gr_module *mod) {
  return gr_scalearn_is(mod) ? ((const scalearn_cfg *)mod->cfg)->omega : NULL;
}

/* omega row i as a broadcastable scale of the layer output: [1, out|1] for a
 * Linear, [out|1, 1, 1] for a Conv2d. */
static gr_tensor *omega_row(gr_ctx *c, const scalearn_cfg *cf, gr_tensor *om, int i) {
  gr_tensor *row = gr_slice(c, om, 0, i, i + 1);
  int64_t w = cf->uniform ? 1 : cf->out;
  return cf->conv ? gr_reshape(c, row, 3, GR_SHAPE(w, 1, 1)) : row;
}

static gr_tensor *scalearn_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  scalearn_cfg *cf = m->cfg;
  gr_module *base = gr_module_find(m, "base_layer");
  gr_tensor *y = base->forward(base, c, x), *om = cf->omega;
  if (cf->dropout > 0 && !m->model->inference) {
    bool prev = gr_ctx_training(c);
    gr_ctx_set_training(c, m->training);
    om = gr_dropout(c, om, cf->dropout);
    gr_ctx_set_training(c, prev);
  }
  for (int i = 0; i < cf->n_src && y; i++) {
    gr_module *a = cf->lora_a->children[i], *b = cf->lora_b->children[i];
    gr_tensor *u = a->forward(a, c, x);
    u = u ? b->forward(b, c, u) : NULL;
    y = u ? gr_add(c, y, gr_mul(c, gr_scale(c, u, cf->scaling[i]), omega_row(c, cf, om, i))) : NULL;
  }
  return y;
}

static gr_status check_args(gr_model *m, const char *path, int n_src, const gr_scalearn_source *src,
                            const gr_scalearn_opts *o, peft_target *t) {
  if (!m || !path || !src || !o) return gr_error(GR_EARG, "ScaLearn: NULL argument");
  gr_status s = peft_target_get(m, path, "ScaLearn", t);
  if (s) return s;
  if (n_src < 1 || n_src > 64) return gr_error(GR_EARG, "ScaLearn: %d sources for '%s' (1..64)", n_src, path);
  if (!(o->dropout >= 0 && o->dropout < 1) || !isfinite(o->init_scale) || (unsigned)o->kind > GR_SCALEARN_UNIFORM_PP)
    return gr_error(GR_EARG, "ScaLearn: bad options for '%s' (dropout %g, init_scale %g)", path, o->dropout,
                    o->init_scale);
  for (int i = 0; i < n_src; i++) {
    int64_t lim = t->in < t->out ? t->in : t->out;
    if (!src[i].a || !src[i].b || src[i].r < 1 || src[i].r > lim || !isfinite(src[i].scaling))
      return gr_error(GR_EARG, "ScaLearn: source %d of '%s' has no factors or r=%d outside [1,%lld]", i, path, src[i].r,
                      (long long)lim);
  }
  return GR_OK;
}

/* The omega of share_with when this layer borrows one (++ kinds), checked
 * before anything is allocated; *om NULL when the layer needs its own. */
static gr_status shared_omega(const gr_scalearn_opts *o, gr_module *share_with, int n_src, int64_t width,
                              const char *path, gr_tensor **om) {
  *om = NULL;
  if (!share_with || (o->kind != GR_SCALEARN_PP && o->kind != GR_SCALEARN_UNIFORM_PP)) return GR_OK;
  gr_tensor *t = gr_scalearn_omega(share_with);
  if (!t || t->shape[0] != n_src || t->shape[1] != width)
    return gr_error(GR_ESHAPE, "ScaLearn++: '%s' needs an omega [%d,%lld] to share; the given module has %s", path,
                    n_src, (long long)width, t ? "another shape" : "none");
  *om = t;
  return GR_OK;
}

/* A new omega parameter of w, N(init_scale/N, 0.001). */
static gr_status own_omega(gr_model *m, gr_module *w, scalearn_cfg *cf, const gr_scalearn_opts *o) {
  cf->omega = gr_module_new_param(w, "scalearn_omega", 2, GR_SHAPE(cf->n_src, cf->uniform ? 1 : cf->out), false);
  if (!cf->omega) return gr_last_status();
  gr_rng_fill_normal(&m->rng, cf->omega->data, cf->omega->numel, o->init_scale / (float)cf->n_src, 0.001f);
  return GR_OK;
}

/* lora_A.<i> / lora_B.<i> holding copies of the source factors, frozen. */
static gr_status make_sources(gr_model *m, const peft_target *t, int n_src, const gr_scalearn_source *src,
                              scalearn_cfg *cf) {
  cf->lora_a = gr_nn_sequential(m), cf->lora_b = gr_nn_sequential(m);
  if (!cf->lora_a || !cf->lora_b) return gr_last_status();
  for (int i = 0; i < n_src; i++) {
    gr_module *a = NULL, *b = NULL;
    gr_status s = peft_make_factors(m, t, src[i].r, false, false, &a, &b);
    if (!s) s = gr_module_add(cf->lora_a, NULL, a);
    if (!s) s = gr_module_add(cf->lora_b, NULL, b);
    if (s) return s;
    gr_tensor *wa = a->p[0].t, *wb = b->p[0].t;
    memcpy(wa->data, src[i].a, (size_t)wa->numel * sizeof(float));
    memcpy(wb->data, src[i].b, (size_t)wb->numel * sizeof(float));
    wa->requires_grad = wb->requires_grad = false;
    cf->scaling[i] = src[i].scaling;
  }
  return GR_OK;
}

gr_status gr_scalearn_wrap(gr_model *m, const char *path, int n_src, const gr_scalearn_source *src,
                           const gr_scalearn_opts *o, gr_module *share_with) {
  peft_target t;
  gr_tensor *shared = NULL;
  gr_status s = check_args(m, path, n_src, src, o, &t);
  bool uniform = o && (o->kind == GR_SCALEARN_UNIFORM || o->kind == GR_SCALEARN_UNIFORM_PP);
  if (!s) s = shared_omega(o, share_with, n_src, uniform ? 1 : t.out, path, &shared);
  if (s) return s;
  gr_module *w = gr_module_new(m, "ScaLearn", scalearn_forward);
  scalearn_cfg *cf = w ? gr_arena_alloc(m->arena, sizeof *cf) : NULL;
  float *scl = cf ? gr_arena_alloc(m->arena, (size_t)n_src * sizeof(float)) : NULL;
  if (!scl) return gr_error(GR_ENOMEM, "ScaLearn: out of memory wrapping '%s'", path);
  *cf = (scalearn_cfg){.n_src = n_src, .scaling = scl, .dropout = o->dropout, .conv = t.conv,
                       .uniform = uniform, .out = t.out, .omega = shared};
  w->cfg = cf;
  w->training = t.base->training;
  if ((s = make_sources(m, &t, n_src, src, cf)) || (!shared && (s = own_omega(m, w, cf, o)))) return s;
  const char *names[] = {"lora_A", "lora_B"};
  gr_module *kids[] = {cf->lora_a, cf->lora_b};
  return peft_layer_install(m, &t, w, 2, names, kids);
}
