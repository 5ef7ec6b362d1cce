/* transfer/merge/atlas.c — aTLAS, "Knowledge Composition using Task Vectors
 * with Learned Anisotropic Scaling" (Zhang et al., NeurIPS 2024):
 *   θ_b(Λ) = θ0_b + Σ_t λ_{t,b} τ_{t,b},   dL/dλ_{t,b} = <dL/dθ_b, τ_{t,b}>
 * one coefficient per (task vector, parameter tensor); θ0 and every τ frozen,
 * Λ trained with AdamW (optim.h) on cross-entropy. What it changes in the
 * model: model->data is overwritten by θ(Λ) on every compose; buffers keep
 * the model's values (the paper takes them from the pretrained model).
 * Not here: reading model files (cli/taskvec_atlas.c), merging kernels
 * (merge_method.c). See graft/atlas.h for the contract. */
#include <math.h>
#include <string.h>

#include "graft/atlas.h"

struct gr_atlas {
  gr_model *m;      /* borrowed: receives θ(Λ) */
  int n_tv, n_blocks;
  int *entry;       /* block -> index into m->entries */
  float *base;      /* θ0, m->numel */
  float *tv;        /* τ_t at t * m->numel */
  gr_model *coef;   /* Λ as the one parameter "lambda" [T, B] */
  gr_tensor *lambda;
};

static gr_status atlas_copy_inputs(gr_atlas *a, const float *const *tv) {
  gr_model *m = a->m;
  for (int t = 0; t < a->n_tv; t++) {
    if (!tv[t]) return gr_error(GR_EARG, "atlas: task vector %d is NULL", t);
    int64_t bad = gr_find_nonfinite(tv[t], m->numel);
    if (bad >= 0) {
      const char *name = "?";
      for (int i = 0; i < m->n_entries; i++)
        if (!m->entries[i].buffer && bad >= m->entries[i].offset &&
            bad < m->entries[i].offset + m->entries[i].t->numel)
          name = m->entries[i].name;
      return gr_error(GR_EARG, "atlas: task vector %d holds a NaN or Inf in tensor '%s'", t, name);
    }
    memcpy(a->tv + (size_t)t * (size_t)m->numel, tv[t], (size_t)m->numel * sizeof(float));
  }
  memcpy(a->base, m->data, (size_t)m->numel * sizeof(float));
  return GR_OK;
}

static gr_status atlas_make_coef(gr_atlas *a) {
  a->coef = gr_model_new(0);
  gr_module *mod = a->coef ? gr_module_new(a->coef, "AtlasCoefficients", NULL) : NULL;
  gr_tensor *p = mod ? gr_module_new_param(mod, "lambda", 2, GR_SHAPE(a->n_tv, a->n_blocks), false) : NULL;
  gr_status s = p ? gr_model_set_root(a->coef, mod) : gr_error(GR_ENOMEM, "atlas: out of memory");
  if (!s) a->lambda = gr_model_find(a->coef, "lambda");
  return s ? s : a->lambda ? GR_OK : gr_error(GR_ESTATE, "atlas: coefficient tensor missing");
}

gr_atlas *gr_atlas_new(gr_model *m, int n_tv, const float *const *tv) {
  if (!m || !m->root || !tv || n_tv < 1) {
    gr_error(GR_EARG, "atlas: need a built model and at least one task vector");
    return NULL;
  }
  gr_atlas *a = gr_calloc(1, sizeof *a);
  if (!a) {
    gr_error(GR_ENOMEM, "atlas: out of memory");
    return NULL;
  }
  a->m = m, a->n_tv = n_tv;
  a->entry = gr_calloc((size_t)m->n_entries + 1, sizeof(int));
  a->base = gr_malloc((size_t)m->numel * sizeof(float) + 4);
  a->tv = gr_malloc((size_t)n_tv * (size_t)m->numel * sizeof(float) + 4);
  gr_status s = a->entry && a->base && a->tv ? GR_OK : gr_error(GR_ENOMEM, "atlas: out of memory for %d task vectors", n_tv);
  for (int i = 0; !s && i < m->n_entries; i++)
    if (!m->entries[i].buffer) a->entry[a->n_blocks++] = i;
  if (!s && a->n_blocks == 0) s = gr_error(GR_EARG, "atlas: the model has no parameters");
  if (!s) s = atlas_copy_inputs(a, tv);
  if (!s) s = atlas_make_coef(a);
  if (s) {
    gr_atlas_free(a);
    return NULL;
  }
  gr_model_freeze(m, "*", false);
  return a;
}

void gr_atlas_free(gr_atlas *a) {
  if (!a) return;
  gr_free(a->entry);
  gr_free(a->base);
  gr_free(a->tv);
  gr_model_free(a->coef);
  gr_free(a);
}

int gr_atlas_n_tv(const gr_atlas *a) { return a ? a->n_tv : 0; }
int gr_atlas_n_blocks(const gr_atlas *a) { return a ? a->n_blocks : 0; }
const char *gr_atlas_block_name(const gr_atlas *a, int b) {
  return a && b >= 0 && b < a->n_blocks ? a->m->entries[a->entry[b]].name : NULL;
}
float *gr_atlas_coef(gr_atlas *a) { return a ? a->lambda->data : NULL; }

void gr_atlas_set_all(gr_atlas *a, float v) {
  for (int64_t i = 0; i < a->lambda->numel; i++) a->lambda->data[i] = v;
}

void gr_atlas_compose(gr_atlas *a) {
  const gr_model *m = a->m;
  const float *lam = a->lambda->data;
  for (int b = 0; b < a->n_blocks; b++) {
    const gr_named_tensor *e = &m->entries[a->entry[b]];
    int64_t off = e->offset, n = e->t->numel;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t j = 0; j < n; j++) {
      double v = a->base[off + j];
      for (int t = 0; t < a->n_tv; t++) v += (double)lam[t * a->n_blocks + b] * a->tv[(size_t)t * m->numel + off + j];
      m->data[off + j] = (float)v;
    }
  }
}

/* grad[t*B + b] = <dL/dθ_b, τ_{t,b}>, summed in double. */
static void atlas_coef_grad(const gr_atlas *a, float *grad) {
  const gr_model *m = a->m;
  for (int t = 0; t < a->n_tv; t++)
    for (int b = 0; b < a->n_blocks; b++) {
      const gr_named_tensor *e = &m->entries[a->entry[b]];
      const float *g = m->grad + e->offset, *tau = a->tv + (size_t)t * m->numel + e->offset;
      double dot = 0;
      for (int64_t j = 0; j < e->t->numel; j++) dot += (double)g[j] * tau[j];
      grad[t * a->n_blocks + b] = (float)dot;
    }
}

gr_status gr_atlas_loss_grad(gr_atlas *a, gr_ctx *c, gr_tensor *x, const int32_t *y, double *loss, float *grad) {
  if (!a || !c || !x || !y || !loss) return gr_error(GR_EARG, "atlas: NULL argument");
  gr_model *m = a->m;
  gr_atlas_compose(a);
  bool was_inference = m->inference;
  m->inference = true;
  gr_tensor *logits = gr_model_forward(m, c, x);
  gr_tensor *L = logits ? gr_cross_entropy(c, logits, y, 0.0f, -100) : NULL;
  gr_status s = L ? GR_OK : gr_last_status() ? gr_last_status() : gr_error(GR_ESTATE, "atlas: forward failed");
  if (!s) {
    *loss = L->data[0];
    gr_model_zero_grad(m);
    s = gr_backward(c, L);
  }
  gr_model_grad_sync(m);
  if (!s) atlas_coef_grad(a, grad ? grad : a->lambda->grad);
  m->inference = was_inference;
  gr_ctx_reset(c);
  return s;
}

gr_status gr_atlas_evaluate(gr_atlas *a, gr_ctx *c, const gr_dataset *ds, gr_eval_result *out) {
  if (!a) return gr_error(GR_EARG, "atlas: NULL argument");
  gr_atlas_compose(a);
  return gr_evaluate(a->m, c, ds, 500, out);
}

gr_atlas_cfg gr_atlas_cfg_default(void) {
  return (gr_atlas_cfg){.steps = 200, .batch = 128, .lr = 1e-3f, .weight_decay = 0.1f, .clip_norm = 1.0f};
}

typedef struct atlas_run {
  gr_atlas *a;
  gr_ctx *c;
  gr_optim *o;
  gr_loader l;
  float *best;      /* Λ of the best validation accuracy */
  const gr_dataset *val;
} atlas_run;

static gr_status atlas_check_val(atlas_run *r, int64_t step, gr_atlas_fit_result *res) {
  gr_eval_result ev;
  gr_status s = gr_atlas_evaluate(r->a, r->c, r->val, &ev);
  if (!s && !(ev.accuracy <= res->best_val_acc)) {
    res->best_val_acc = ev.accuracy, res->best_step = step;
    memcpy(r->best, r->a->lambda->data, (size_t)r->a->lambda->numel * sizeof(float));
  }
  return s;
}

static gr_status atlas_loop(atlas_run *r, const gr_atlas_cfg *cfg, const gr_train_hooks *hooks,
                            gr_atlas_fit_result *res) {
  bool select = r->val && cfg->eval_every > 0;
  gr_status s = select ? atlas_check_val(r, 0, res) : GR_OK;
  double window = 0;
  int64_t wn = 0, keep = cfg->steps < 50 ? cfg->steps : 50;
  for (int64_t step = 0; !s && step < cfg->steps; step++) {
    gr_tensor *x;
    const int32_t *y;
    double loss = 0;
    s = gr_loader_next(&r->l, r->c, &x, &y);
    if (!s) s = gr_atlas_loss_grad(r->a, r->c, x, y, &loss, NULL);
    if (!s && cfg->clip_norm > 0 && !isfinite(gr_clip_grad_norm(r->a->coef, cfg->clip_norm)))
      s = gr_error(GR_ENUMERIC, "atlas: coefficient gradient is not finite");
    if (!s) s = gr_optim_step(r->o);
    if (s) break;
    if (step == 0) res->first_loss = loss;
    if (step >= cfg->steps - keep) window += loss, wn++;
    res->steps = step + 1;
    if (hooks && hooks->on_step) hooks->on_step(hooks->ud, step + 1, cfg->steps, loss);
    if (select && ((step + 1) % cfg->eval_every == 0 || step + 1 == cfg->steps)) s = atlas_check_val(r, step + 1, res);
  }
  res->train_loss = wn ? window / (double)wn : NAN;
  if (!s && select) memcpy(r->a->lambda->data, r->best, (size_t)r->a->lambda->numel * sizeof(float));
  return s;
}

gr_status gr_atlas_fit(gr_atlas *a, const gr_dataset *train, const gr_dataset *val, const gr_atlas_cfg *cfg,
                       const gr_train_hooks *hooks, gr_atlas_fit_result *res) {
  if (!a || !train || !cfg || !res) return gr_error(GR_EARG, "atlas fit: NULL argument");
  if (cfg->steps < 1 || cfg->batch < 1) return gr_error(GR_EARG, "atlas fit: steps and batch must be >= 1");
  if (train->n == 0 || (val && val->n == 0)) return gr_error(GR_EARG, "atlas fit: empty dataset");
  memset(res, 0, sizeof *res);
  res->best_val_acc = NAN, res->best_step = cfg->steps;
  gr_optim_cfg ocfg = gr_adamw_cfg(cfg->lr, cfg->weight_decay);
  atlas_run r = {.a = a, .val = val};
  r.o = gr_optim_new(a->coef, &ocfg);
  gr_status s = r.o ? GR_OK : gr_last_status();
  if (!s) s = gr_loader_init(&r.l, train, cfg->batch, true, cfg->seed);
  r.c = s ? NULL : gr_ctx_new(8 << 20, cfg->seed ^ 0xA7A5);
  r.best = s ? NULL : gr_malloc((size_t)a->lambda->numel * sizeof(float) + 4);
  if (!s && (!r.c || !r.best)) s = gr_error(GR_ENOMEM, "atlas fit: out of memory");
  if (!s) {
    res->best_val_acc = -1;
    s = atlas_loop(&r, cfg, hooks, res);
    if (!(val && cfg->eval_every > 0)) res->best_val_acc = NAN;
  }
  gr_atlas_compose(a);
  gr_free(r.best);
  gr_ctx_free(r.c);
  gr_loader_free(&r.l);
  gr_optim_free(r.o);
  return s;
}
