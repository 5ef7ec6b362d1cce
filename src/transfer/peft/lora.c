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
 * Not here: saving/loading adapter directories (peft_save.c via io/peft_io). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graft/peft.h"

typedef struct lora_cfg {
  int r;
  float scaling, dropout;
  bool conv, fan_in_fan_out, merged;
} lora_cfg;

enum { LORA_BASE = 0, LORA_A = 1, LORA_B = 2 };

bool gr_lora_is(const gr_module *mod) { return mod && mod->kind && !strcmp(mod->kind, "LoRA") && mod->cfg; }
float gr_lora_scaling(const gr_module *mod) { return gr_lora_is(mod) ? ((lora_cfg *)mod->cfg)->scaling : 0.0f; }
int gr_lora_rank(const gr_module *mod) { return gr_lora_is(mod) ? ((lora_cfg *)mod->cfg)->r : 0; }

static gr_tensor *lora_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  lora_cfg *cf = m->cfg;
  gr_module *base = m->children[LORA_BASE], *a = m->children[LORA_A], *b = m->children[LORA_B];
  gr_tensor *y = base->forward(base, c, x);
  if (!y || cf->merged) return y;
  gr_tensor *h = x;
  if (cf->dropout > 0) {
    bool prev = gr_ctx_training(c);
    gr_ctx_set_training(c, m->training);
    h = gr_dropout(c, x, cf->dropout);
    gr_ctx_set_training(c, prev);
  }
  h = a->forward(a, c, h);
  h = h ? b->forward(b, c, h) : NULL;
  return h ? gr_add(c, y, gr_scale(c, h, cf->scaling)) : NULL;
}

/* in/out features of a Linear or Conv2d base weight (in counts C_in*kh*kw). */
static gr_status base_features(const char *path, gr_module *base, bool fan_in_fan_out, bool *conv, int64_t *in,
                               int64_t *out) {
  gr_tensor *w = gr_module_param_get(base, "weight");
  *conv = base->kind && !strcmp(base->kind, "Conv2d");
  bool linear = base->kind && !strcmp(base->kind, "Linear");
  if (!w || !(*conv || linear))
    return gr_error(GR_EUNSUPPORTED, "LoRA: module '%s' is a %s; LoRA targets Linear and Conv2d", path,
                    base->kind ? base->kind : "(unknown)");
  if (*conv && fan_in_fan_out) return gr_error(GR_EARG, "LoRA: fan_in_fan_out is for Linear targets ('%s' is a Conv2d)", path);
  *out = w->shape[fan_in_fan_out ? 1 : 0];
  *in = w->numel / w->shape[0];
  if (fan_in_fan_out) *in = w->shape[0];
  return GR_OK;
}

static gr_status check_opts(const char *path, const gr_lora_opts *o, int64_t in, int64_t out) {
  int64_t lim = in < out ? in : out;
  if (o->r < 1 || o->r > lim)
    return gr_error(GR_EARG, "LoRA: r=%d for module '%s' must be in [1, min(in=%lld, out=%lld)]", o->r, path,
                    (long long)in, (long long)out);
  if (!(o->dropout >= 0 && o->dropout < 1))
    return gr_error(GR_EARG, "LoRA: dropout %g for module '%s' must be in [0,1)", o->dropout, path);
  if (!isfinite(o->alpha)) return gr_error(GR_EARG, "LoRA: alpha for module '%s' is not finite", path);
  return GR_OK;
}

/* lora_A and lora_B child modules for a Linear or Conv2d base. */
static gr_status make_factors(gr_model *m, gr_module *base, bool conv, int64_t in, int64_t out, int r,
                              gr_module **a, gr_module **b) {
  if (conv) {
    const gr_conv2d_opts *co = gr_nn_conv2d_opts(base);
    gr_tensor *w = gr_module_param_get(base, "weight");
    if (!co || co->stride_h != co->stride_w || co->pad_h != co->pad_w || w->shape[2] != w->shape[3] ||
        (co->groups > 1) || (co->dil_h > 1) || (co->dil_w > 1))
      return gr_error(GR_EUNSUPPORTED, "LoRA: Conv2d with non-square kernel/stride/padding, groups or dilation");
    int stride = co->stride_h ? co->stride_h : 1;
    *a = gr_nn_conv2d(m, w->shape[1], r, (int)w->shape[2], stride, co->pad_h, false);
    *b = gr_nn_conv2d(m, r, out, 1, 1, 0, false);
  } else {
    *a = gr_nn_linear(m, in, r, false);
    *b = gr_nn_linear(m, r, out, false);
  }
  return *a && *b ? GR_OK : gr_last_status();
}

static void init_factors(gr_model *m, gr_tensor *wa, gr_tensor *wb, const gr_lora_opts *o) {
  /* wa already holds kaiming_uniform(a=sqrt 5) from the layer constructor */
  if (o->init == GR_LORA_INIT_GAUSSIAN) gr_rng_fill_normal(&m->rng, wa->data, wa->numel, 0.0f, 1.0f / (float)o->r);
  if (o->init != GR_LORA_INIT_RANDOM) memset(wb->data, 0, (size_t)wb->numel * sizeof(float));
}

/* Gives base's parameters their own copies of data and grad, so a layout of
 * the model without base (gr_module_replace) leaves them valid; the next
 * layout moves them back into the flat vectors and frees the copies. */
static gr_status detach_storage(gr_module *base) {
  for (int i = 0; i < base->n_p; i++) {
    gr_tensor *t = base->p[i].t;
    size_t bytes = (size_t)t->numel * sizeof(float);
    float *d = gr_malloc(bytes + sizeof(float)), *g = t->grad ? gr_malloc(bytes + sizeof(float)) : NULL;
    if (!d || (t->grad && !g)) {
      gr_free(d), gr_free(g);
      return gr_error(GR_ENOMEM, "LoRA: out of memory moving '%s'", base->p[i].name);
    }
    memcpy(d, t->data, bytes);
    if (g) memcpy(g, t->grad, bytes);
    t->data = d, t->grad = g;
  }
  return GR_OK;
}

/* The module at path, if LoRA with these options can wrap it. */
static gr_status lora_check_target(gr_model *m, const char *path, const gr_lora_opts *o) {
  gr_module *base = gr_module_find(m->root, path);
  if (!base) return gr_error(GR_ENOTFOUND, "LoRA: no module '%s' in the model", path);
  bool conv = false;
  int64_t in = 0, out = 0;
  gr_status s = base_features(path, base, o->fan_in_fan_out, &conv, &in, &out);
  return s ? s : check_opts(path, o, in, out);
}

gr_status gr_lora_wrap(gr_model *m, const char *path, const gr_lora_opts *o) {
  if (!m || !m->root || !path || !o) return gr_error(GR_EARG, "LoRA: NULL argument");
  gr_status s = lora_check_target(m, path, o);
  if (s) return s;
  gr_module *base = gr_module_find(m->root, path), *a = NULL, *b = NULL;
  bool conv = false;
  int64_t in = 0, out = 0;
  base_features(path, base, o->fan_in_fan_out, &conv, &in, &out);
  if ((s = make_factors(m, base, conv, in, out, o->r, &a, &b))) return s;
  gr_module *w = gr_module_new(m, "LoRA", lora_forward);
  lora_cfg *cf = w ? gr_arena_alloc(m->arena, sizeof *cf) : NULL;
  if (!cf) return gr_error(GR_ENOMEM, "LoRA: out of memory wrapping '%s'", path);
  *cf = (lora_cfg){.r = o->r,
                   .scaling = o->rslora ? o->alpha / sqrtf((float)o->r) : o->alpha / (float)o->r,
                   .dropout = o->dropout,
                   .conv = conv,
                   .fan_in_fan_out = o->fan_in_fan_out};
  w->cfg = cf;
  w->training = base->training;
  a->training = b->training = base->training;
  init_factors(m, a->p[0].t, b->p[0].t, o);
  /* the wrapper takes base's place first, then base moves below it; while
   * base is outside the tree its values live in storage of their own */
  if ((s = detach_storage(base)) || (s = gr_module_replace(m, path, w))) return s;
  if ((s = gr_module_add(w, "base_layer", base)) || (s = gr_module_add(w, "lora_A", a)) ||
      (s = gr_module_add(w, "lora_B", b)))
    return s;
  return gr_model_layout(m);
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
  if (!gr_lora_is(mod)) return gr_error(GR_EARG, "LoRA merge: module is not a LoRA wrapper");
  lora_cfg *cf = mod->cfg;
  if (cf->merged == merge) {
    char p[GR_NAME_MAX];
    return gr_error(GR_ESTATE, "LoRA: module '%s' is already %s", gr_module_path(mod, p, sizeof p),
                    merge ? "merged" : "unmerged");
  }
  gr_tensor *w = gr_module_param_get(mod->children[LORA_BASE], "weight");
  gr_tensor *a = mod->children[LORA_A]->p[0].t, *b = mod->children[LORA_B]->p[0].t;
  int64_t out = b->shape[0], in = a->numel / a->shape[0];
  gr_lora_delta_apply(w->data, a->data, b->data, out, in, cf->r, merge ? cf->scaling : -cf->scaling,
                      cf->fan_in_fan_out);
  cf->merged = merge;
  return GR_OK;
}

gr_status gr_lora_merge(gr_module *mod) { return lora_fold(mod, true); }
gr_status gr_lora_unmerge(gr_module *mod) { return lora_fold(mod, false); }

static gr_status fold_all(gr_module *mod, bool merge, int *n) {
  if (gr_lora_is(mod)) {
    gr_status s = lora_fold(mod, merge);
    if (!s) (*n)++;
    return s;
  }
  for (int i = 0; i < mod->n_children; i++) {
    gr_status s = fold_all(mod->children[i], merge, n);
    if (s) return s;
  }
  return GR_OK;
}

gr_status gr_peft_merge_all(gr_model *m, bool merge, int *n) {
  if (!m || !m->root) return gr_error(GR_EARG, "peft merge: NULL model");
  int k = 0;
  gr_status s = fold_all(m->root, merge, &k);
  if (n) *n = k;
  return s;
}

/* ---- target selection ------------------------------------------------------ */
typedef struct target_list {
  char (*path)[GR_NAME_MAX];
  int n, cap;
} target_list;

static gr_status collect_targets(gr_module *mod, const gr_peft_config *cfg, target_list *t) {
  char p[GR_NAME_MAX];
  gr_module_path(mod, p, sizeof p);
  if (gr_lora_is(mod)) return GR_OK; /* already adapted: never wrap twice */
  if (mod->parent && gr_peft_targets(cfg, p)) {
    if (t->n == t->cap) {
      int nc = t->cap ? t->cap * 2 : 16;
      char (*np)[GR_NAME_MAX] = gr_malloc((size_t)nc * sizeof *np);
      if (!np) return gr_error(GR_ENOMEM, "LoRA: out of memory listing targets");
      if (t->n) memcpy(np, t->path, (size_t)t->n * sizeof *np);
      gr_free(t->path);
      t->path = np;
      t->cap = nc;
    }
    snprintf(t->path[t->n++], GR_NAME_MAX, "%s", p);
  }
  for (int i = 0; i < mod->n_children; i++) {
    gr_status s = collect_targets(mod->children[i], cfg, t);
    if (s) return s;
  }
  return GR_OK;
}

static void freeze_all_but_lora(gr_model *m) {
  for (int i = 0; i < m->n_entries; i++) {
    gr_named_tensor *e = &m->entries[i];
    if (!e->buffer) e->t->requires_grad = strstr(e->name, "lora_") != NULL;
  }
}

gr_status gr_lora_apply(gr_model *m, const gr_peft_config *cfg, gr_lora_init init, int *n_wrapped) {
  if (!m || !m->root || !cfg) return gr_error(GR_EARG, "LoRA apply: NULL argument");
  target_list t = {0};
  gr_status s = collect_targets(m->root, cfg, &t);
  if (!s && t.n == 0) {
    char list[256] = "";
    size_t k = 0;
    for (int i = 0; i < cfg->n_target_modules && k < sizeof list; i++)
      k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? "," : "", cfg->target_modules[i]);
    s = gr_error(GR_ENOTFOUND, "LoRA: target_modules '%s' matches no module of the model",
                 cfg->target_modules_regex ? cfg->target_modules_regex : list);
  }
  /* every target is checked before the first is wrapped: all or nothing */
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < t.n && !s; i++) {
      gr_lora_opts o = {.r = gr_peft_module_rank(cfg, t.path[i]),
                        .alpha = (float)gr_peft_module_alpha(cfg, t.path[i]),
                        .dropout = (float)cfg->lora_dropout,
                        .rslora = cfg->use_rslora,
                        /* cfg->fan_in_fan_out describes the checkpoint (HF GPT-2's
                         * Conv1D [in,out]); graft's Linears are [out,in] in memory */
                        .fan_in_fan_out = false,
                        .init = init};
      s = pass ? gr_lora_wrap(m, t.path[i], &o) : lora_check_target(m, t.path[i], &o);
    }
  if (!s) freeze_all_but_lora(m);
  if (n_wrapped) *n_wrapped = s ? 0 : t.n;
  gr_free(t.path);
  return s;
}
