/* transfer/peft/lora.c — LoRA and rsLoRA.
 *
 * Paper: Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models"
 * (2021), eq. (3): h = W0 x + dW x = W0 x + B A x, with A [r,in], B [out,r],
 * r << min(in,out), W0 frozen; the update is scaled by alpha/r. rsLoRA
 * (Kalajdzievski, "A Rank Stabilization Scaling Factor for Fine-Tuning with
 * LoRA", 2023) uses alpha/sqrt(r). Implemented as Hugging Face PEFT does
 * (FORMATS.md §2.3, peft/tuners/lora/layer.py):
 *   y = base(x) + scaling * lora_B(lora_A(dropout(x)))
 *   A ~ kaiming_uniform(a=sqrt 5) (or N(0, 1/r^2) "gaussian"), B = 0
 *   merge W' = W + scaling * B @ A (transposed for fan_in_fan_out)
 * What it changes in the model: the targeted Linear/Conv2d is replaced by a
 * "LoRA" module whose children are the untouched base module
 * ("base_layer"), lora_A and lora_B; the model computes the same function at
 * init (B = 0). For Conv2d, A is a k x k conv in->r with the base's stride and
 * padding and B a 1x1 conv r->out (PEFT's conv LoRA).
 * DoRA (use_dora) is this module plus a magnitude vector; its math is in
 * dora.c. The wrapper, target checks and merge dispatch are shared with the
 * other methods (peft_layer.c); saving/loading is peft_save.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "transfer/peft/peft_layer.h"

typedef struct lora_cfg {
  peft_layer L;
  int r;
  float alpha, scaling, dropout;
  bool rslora, fan_in_fan_out, dora;
  float *dora_norm; /* [out]: row norms of W + sBA when merged (DoRA) */
} lora_cfg;

enum { LORA_BASE = 0, LORA_A = 1, LORA_B = 2 };

static gr_status lora_fold(gr_module *mod, bool merge);
static void lora_describe(const gr_module *w, peft_desc *d) {
  const lora_cfg *cf = w->cfg;
  *d = (peft_desc){.type = GR_PEFT_LORA, .r = cf->r, .alpha = cf->alpha, .rslora = cf->rslora, .dora = cf->dora};
}
const peft_layer_ops peft_lora_ops = {"LoRA", lora_fold, lora_describe};

bool gr_lora_is(const gr_module *mod) {
  peft_layer *L = peft_layer_of(mod);
  return L && L->ops == &peft_lora_ops;
}
float gr_lora_scaling(const gr_module *mod) { return gr_lora_is(mod) ? ((lora_cfg *)mod->cfg)->scaling : 0.0f; }
int gr_lora_rank(const gr_module *mod) { return gr_lora_is(mod) ? ((lora_cfg *)mod->cfg)->r : 0; }

static gr_tensor *lora_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  lora_cfg *cf = m->cfg;
  gr_module *a = m->children[LORA_A], *b = m->children[LORA_B];
  gr_tensor *y = peft_base_forward(m, c, x);
  if (!y || cf->L.merged) return y;
  gr_tensor *xd = x;
  if (cf->dropout > 0) {
    bool prev = gr_ctx_training(c);
    gr_ctx_set_training(c, m->training);
    xd = gr_dropout(c, x, cf->dropout);
    gr_ctx_set_training(c, prev);
  }
  gr_tensor *h = xd ? a->forward(a, c, xd) : NULL;
  h = h ? b->forward(b, c, h) : NULL;
  if (!h) return NULL;
  if (cf->dora) return peft_dora_output(m, c, y, xd, h, cf->scaling);
  return gr_add(c, y, gr_scale(c, h, cf->scaling));
}

gr_status peft_lora_check(gr_model *m, const char *path, const gr_lora_opts *o) {
  peft_target t;
  const char *method = o && o->dora ? "DoRA" : "LoRA";
  gr_status s = o ? peft_target_get(m, path, method, &t) : gr_error(GR_EARG, "LoRA: NULL options");
  if (!s) s = peft_check_rank(&t, method, o->r, t.in < t.out ? t.in : t.out, "min(in, out)");
  if (s) return s;
  if (t.conv && o->fan_in_fan_out)
    return gr_error(GR_EARG, "%s: fan_in_fan_out is for Linear targets ('%s' is a Conv2d)", method, path);
  if (o->dora && o->fan_in_fan_out)
    return gr_error(GR_EUNSUPPORTED, "DoRA: fan_in_fan_out is not supported ('%s')", path);
  if (!(o->dropout >= 0 && o->dropout < 1))
    return gr_error(GR_EARG, "%s: dropout %g for module '%s' must be in [0,1)", method, o->dropout, path);
  if (!isfinite(o->alpha)) return gr_error(GR_EARG, "%s: alpha for module '%s' is not finite", method, path);
  return GR_OK;
}

static void init_factors(gr_model *m, gr_tensor *wa, gr_tensor *wb, const gr_lora_opts *o) {
  /* wa already holds kaiming_uniform(a=sqrt 5) from the layer constructor */
  if (o->init == GR_LORA_INIT_GAUSSIAN) gr_rng_fill_normal(&m->rng, wa->data, wa->numel, 0.0f, 1.0f / (float)o->r);
  if (o->init != GR_LORA_INIT_RANDOM) memset(wb->data, 0, (size_t)wb->numel * sizeof(float));
}

gr_status gr_lora_wrap(gr_model *m, const char *path, const gr_lora_opts *o) {
  gr_status s = peft_lora_check(m, path, o);
  if (s) return s;
  peft_target t;
  peft_target_get(m, path, "LoRA", &t);
  gr_module *a = NULL, *b = NULL;
  if ((s = peft_make_factors(m, &t, o->r, false, false, &a, &b))) return s;
  gr_module *w = peft_layer_new(m, &peft_lora_ops, lora_forward, sizeof(lora_cfg), &t);
  if (!w) return gr_last_status();
  lora_cfg *cf = w->cfg;
  cf->r = o->r;
  cf->alpha = o->alpha;
  cf->rslora = o->rslora;
  cf->scaling = o->rslora ? o->alpha / sqrtf((float)o->r) : o->alpha / (float)o->r;
  cf->dropout = o->dropout;
  cf->fan_in_fan_out = o->fan_in_fan_out;
  cf->dora = o->dora;
  init_factors(m, a->p[0].t, b->p[0].t, o);
  const char *names[] = {"lora_A", "lora_B"};
  gr_module *kids[] = {a, b};
  if ((s = peft_layer_install(m, &t, w, 2, names, kids))) return s;
  return cf->dora ? peft_dora_init(w, t.out, t.conv) : GR_OK;
}

void gr_lora_delta_apply(float *w, const float *a, const float *b, int64_t out, int64_t in, int r, float scale,
                         bool fan_in_fan_out) {
  for (int64_t o = 0; o < out; o++)
    for (int64_t i = 0; i < in; i++) {
      double acc = 0;
      for (int k = 0; k < r; k++) acc += (double)b[o * r + k] * a[(int64_t)k * in + i];
      w[fan_in_fan_out ? i * out + o : o * in + i] += scale * (float)acc;
    }
}

static gr_status lora_fold(gr_module *mod, bool merge) {
  lora_cfg *cf = mod->cfg;
  if (cf->dora) return peft_dora_fold(mod, cf->scaling, merge, &cf->dora_norm);
  gr_tensor *w = gr_module_param_get(mod->children[LORA_BASE], "weight");
  gr_tensor *a = mod->children[LORA_A]->p[0].t, *b = mod->children[LORA_B]->p[0].t;
  gr_lora_delta_apply(w->data, a->data, b->data, cf->L.t.out, cf->L.t.in, cf->r, merge ? cf->scaling : -cf->scaling,
                      cf->fan_in_fan_out);
  return GR_OK;
}

/* ---- merged state without the adapter applied (files) --------------------- */
typedef struct mark_walk {
  const gr_tensor *const *norms;
  int n_norms, used;
} mark_walk;

static gr_status mark_one(gr_module *mod, mark_walk *w) {
  peft_layer *L = peft_layer_of(mod);
  if (!L) {
    for (int i = 0; i < mod->n_children; i++) {
      gr_status s = mark_one(mod->children[i], w);
      if (s) return s;
    }
    return GR_OK;
  }
  if (L->merged) return gr_error(GR_ESTATE, "%s: module '%s' is already merged", L->ops->kind, L->t.path);
  lora_cfg *cf = L->ops == &peft_lora_ops ? mod->cfg : NULL;
  if (cf && cf->dora) {
    const gr_tensor *nt = w->used < w->n_norms ? w->norms[w->used] : NULL;
    if (!nt || nt->numel != L->t.out)
      return gr_error(GR_EARG, "DoRA: no weight norm [%lld] for merged module '%s' (unmerging DoRA needs the norms "
                               "merging saw)", (long long)L->t.out, L->t.path);
    w->used++;
    if (!cf->dora_norm && !(cf->dora_norm = gr_arena_alloc(mod->model->arena, (size_t)L->t.out * sizeof(float))))
      return gr_error(GR_ENOMEM, "DoRA: out of memory");
    memcpy(cf->dora_norm, nt->data, (size_t)L->t.out * sizeof(float));
  }
  L->merged = true;
  return GR_OK;
}

gr_status gr_peft_mark_merged(gr_model *m, const gr_tensor *const *norms, int n_norms) {
  if (!m || !m->root || (n_norms && !norms)) return gr_error(GR_EARG, "peft mark merged: NULL argument");
  mark_walk w = {norms, n_norms, 0};
  return mark_one(m->root, &w);
}

static void dora_norms_walk(gr_module *mod, gr_tensor **out, int max, int *n) {
  if (gr_lora_is(mod)) {
    lora_cfg *cf = mod->cfg;
    if (cf->dora && cf->L.merged && cf->dora_norm) {
      if (*n < max) {
        gr_tensor *t = out[*n] = gr_tensor_new_in(mod->model->arena, 1, GR_SHAPE(cf->L.t.out), false);
        if (t) memcpy(t->data, cf->dora_norm, (size_t)t->numel * sizeof(float));
      }
      (*n)++;
    }
    return;
  }
  for (int i = 0; i < mod->n_children; i++) dora_norms_walk(mod->children[i], out, max, n);
}

gr_status gr_peft_dora_norms(gr_model *m, gr_tensor **out, int max, int *n) {
  if (!m || !m->root || !n || (max && !out)) return gr_error(GR_EARG, "peft dora norms: NULL argument");
  *n = 0;
  dora_norms_walk(m->root, out, max, n);
  for (int i = 0; i < *n && i < max; i++)
    if (!out[i]) return gr_error(GR_ENOMEM, "DoRA: out of memory");
  return GR_OK;
}
