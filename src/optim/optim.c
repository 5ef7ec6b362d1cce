/* optim/optim.c — SGD (momentum, nesterov, weight decay) and AdamW with
 * PyTorch's update rules on the model's flat parameter vector, per-group lr
 * and weight decay by name glob, frozen parameters skipped, global-norm
 * gradient clipping. Schedules are in schedule.c. An update (and the check
 * for non-finite gradients before it) runs over the threads: a serial one
 * was 12% of a 2-thread MLP step (docs/RESULTS.md, "Session 8"). */
#include <fnmatch.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "graft/optim.h"

gr_optim_cfg gr_sgd_cfg(float lr, float momentum, float weight_decay, bool nesterov) {
  return (gr_optim_cfg){.kind = GR_OPT_SGD, .lr = lr, .momentum = momentum, .weight_decay = weight_decay,
                        .nesterov = nesterov};
}

gr_optim_cfg gr_adamw_cfg(float lr, float weight_decay) {
  return (gr_optim_cfg){.kind = GR_OPT_ADAMW, .lr = lr, .weight_decay = weight_decay, .beta1 = 0.9f,
                        .beta2 = 0.999f, .eps = 1e-8f};
}

static gr_status check_cfg(const gr_optim_cfg *c) {
  if (c->kind != GR_OPT_SGD && c->kind != GR_OPT_ADAMW) return gr_error(GR_EARG, "optim: unknown kind %d", c->kind);
  if (!(c->lr >= 0) || !isfinite(c->lr)) return gr_error(GR_EARG, "optim: lr %g must be finite and >= 0", c->lr);
  if (!(c->weight_decay >= 0)) return gr_error(GR_EARG, "optim: weight_decay %g must be >= 0", c->weight_decay);
  if (c->kind == GR_OPT_SGD) {
    if (!(c->momentum >= 0)) return gr_error(GR_EARG, "sgd: momentum %g must be >= 0", c->momentum);
    if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
      return gr_error(GR_EARG, "sgd: nesterov needs momentum > 0 and dampening 0");
  } else {
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
      return gr_error(GR_EARG, "adamw: betas (%g, %g) must be in [0,1)", c->beta1, c->beta2);
    if (!(c->eps >= 0)) return gr_error(GR_EARG, "adamw: eps %g must be >= 0", c->eps);
  }
  return GR_OK;
}

gr_optim *gr_optim_new(gr_model *m, const gr_optim_cfg *cfg) {
  if (!m || !cfg || !m->data) {
    gr_error(GR_EARG, "optim: NULL or unlaid-out model, or NULL cfg");
    return NULL;
  }
  if (check_cfg(cfg)) return NULL;
  gr_optim *o = gr_calloc(1, sizeof *o);
  if (!o) goto oom;
  o->cfg = *cfg;
  o->model = m;
  o->lr = cfg->lr;
  o->n = m->n_entries;
  o->m1 = gr_calloc((size_t)m->numel + 1, sizeof(float));
  o->m2 = cfg->kind == GR_OPT_ADAMW ? gr_calloc((size_t)m->numel + 1, sizeof(float)) : NULL;
  o->lr_scale = gr_calloc((size_t)o->n + 1, sizeof(float));
  o->wd = gr_calloc((size_t)o->n + 1, sizeof(float));
  o->steps = gr_calloc((size_t)o->n + 1, sizeof(int64_t));
  if (!o->m1 || (cfg->kind == GR_OPT_ADAMW && !o->m2) || !o->lr_scale || !o->wd || !o->steps) goto oom;
  for (int i = 0; i < o->n; i++) o->lr_scale[i] = 1.0f, o->wd[i] = cfg->weight_decay;
  return o;
oom:
  gr_optim_free(o);
  gr_error(GR_ENOMEM, "optim: out of memory");
  return NULL;
}

void gr_optim_free(gr_optim *o) {
  if (!o) return;
  gr_free(o->m1), gr_free(o->m2), gr_free(o->lr_scale), gr_free(o->wd), gr_free(o->steps);
  gr_free(o);
}

int gr_optim_set_group(gr_optim *o, const char *glob, float lr_scale, float wd) {
  if (!o || !glob || !(lr_scale >= 0)) {
    gr_error(GR_EARG, "optim group: NULL argument or negative lr scale");
    return -1;
  }
  int k = 0;
  for (int i = 0; i < o->n; i++) {
    const gr_named_tensor *e = &o->model->entries[i];
    if (e->buffer || fnmatch(glob, e->name, 0) != 0) continue;
    o->lr_scale[i] = lr_scale;
    if (wd >= 0) o->wd[i] = wd;
    k++;
  }
  return k;
}

static bool trainable(const gr_optim *o, int i) {
  const gr_named_tensor *e = &o->model->entries[i];
  return !e->buffer && e->t->requires_grad;
}

/* p, g and b are disjoint slices of the model's flat parameter, grad and
 * momentum buffers (restrict: the loops vectorize without overlap checks). */
static void sgd_update(const gr_optim_cfg *c, float lr, float wd, bool first, float *restrict p,
                       const float *restrict g, float *restrict b, int64_t n) {
  float mu = c->momentum, damp = 1.0f - c->dampening;
  if (mu == 0) { /* plain SGD: one fused multiply-add per element */
    for (int64_t j = 0; j < n; j++) p[j] -= lr * (g[j] + wd * p[j]);
    return;
  }
  for (int64_t j = 0; j < n; j++) {
    float d = g[j] + wd * p[j];
    b[j] = first ? d : mu * b[j] + damp * d;
    d = c->nesterov ? d + mu * b[j] : b[j];
    p[j] -= lr * d;
  }
}

static void adamw_update(const gr_optim_cfg *c, float lr, float wd, int64_t t, float *restrict p,
                         const float *restrict g, float *restrict m, float *restrict v, int64_t n) {
  float b1 = c->beta1, b2 = c->beta2;
  double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
  float step = (float)(lr / bc1), bc2s = (float)sqrt(bc2);
  for (int64_t j = 0; j < n; j++) {
    p[j] *= 1.0f - lr * wd;
    m[j] = b1 * m[j] + (1 - b1) * g[j];
    v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
    p[j] -= step * m[j] / (sqrtf(v[j]) / bc2s + c->eps);
  }
}

/* This thread's share [*lo, *hi) of an entry's n elements: entries of at
 * least SPLIT_MIN elements are cut into one piece per thread (on multiples
 * of 16 floats), smaller ones go whole to one thread (entry index i mod T).
 * Every element is updated by itself, so the split leaves the bits alone. */
enum { SPLIT_MIN = 8192, PAR_MIN = 65536 /* trainable elements below which one thread does it all */ };
static bool my_share(int64_t n, int i, int t, int T, int64_t *lo, int64_t *hi) {
  if (n < SPLIT_MIN) {
    *lo = 0, *hi = n;
    return i % T == t;
  }
  *lo = n * t / T / 16 * 16;
  *hi = t + 1 == T ? n : n * (t + 1) / T / 16 * 16;
  return *hi > *lo;
}

/* Whether some trainable gradient holds a NaN or an infinity, checked over the threads. */
static bool any_nonfinite(const gr_optim *o, int T) {
  const gr_model *m = o->model;
  bool bad = false;
#pragma omp parallel num_threads(T) if (T > 1) reduction(|| : bad)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    for (int i = 0; i < o->n; i++) {
      int64_t lo, hi;
      if (!trainable(o, i) || !my_share(m->entries[i].t->numel, i, t, nt, &lo, &hi)) continue;
      bad = bad || gr_find_nonfinite(m->entries[i].t->grad + lo, hi - lo) >= 0;
    }
  }
  return bad;
}

gr_status gr_optim_step(gr_optim *o) {
  if (!o) return gr_error(GR_EARG, "optim step: NULL optimizer");
  gr_model *m = o->model;
  if (m->n_entries != o->n) return gr_error(GR_ESTATE, "optim step: model layout changed since the optimizer was made");
  gr_model_grad_sync(m);
  int64_t total = 0;
  for (int i = 0; i < o->n; i++)
    if (trainable(o, i)) total += m->entries[i].t->numel;
  int T = total >= PAR_MIN && !omp_in_parallel() ? gr_threads() : 1;
  if (any_nonfinite(o, T))
    for (int i = 0; i < o->n; i++) { /* name the first one */
      if (!trainable(o, i)) continue;
      const gr_named_tensor *e = &m->entries[i];
      int64_t j = gr_find_nonfinite(e->t->grad, e->t->numel);
      if (j >= 0)
        return gr_error(GR_ENUMERIC, "optim step: gradient of '%s' element %lld is not finite", e->name, (long long)j);
    }
  for (int i = 0; i < o->n; i++)
    if (trainable(o, i)) o->steps[i]++;
#pragma omp parallel num_threads(T) if (T > 1)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    for (int i = 0; i < o->n; i++) {
      int64_t lo, hi;
      if (!trainable(o, i) || !my_share(m->entries[i].t->numel, i, t, nt, &lo, &hi)) continue;
      float lr = o->lr * o->lr_scale[i];
      int64_t off = m->entries[i].offset + lo, n = hi - lo;
      if (o->cfg.kind == GR_OPT_SGD)
        sgd_update(&o->cfg, lr, o->wd[i], o->steps[i] == 1, m->data + off, m->grad + off, o->m1 + off, n);
      else
        adamw_update(&o->cfg, lr, o->wd[i], o->steps[i], m->data + off, m->grad + off, o->m1 + off, o->m2 + off, n);
    }
  }
  o->step++;
  return GR_OK;
}

float gr_clip_grad_norm(gr_model *m, float max_norm) {
  if (!m) return NAN;
  gr_model_grad_sync(m);
  double ss = 0;
  for (int i = 0; i < m->n_entries; i++) {
    const gr_named_tensor *e = &m->entries[i];
    if (e->buffer || !e->t->requires_grad) continue;
    for (int64_t j = 0; j < e->t->numel; j++) ss += (double)e->t->grad[j] * e->t->grad[j];
  }
  float norm = (float)sqrt(ss);
  if (!isfinite(norm)) return NAN;
  float coef = max_norm / (norm + 1e-6f);
  if (coef < 1.0f)
    for (int i = 0; i < m->n_entries; i++) {
      const gr_named_tensor *e = &m->entries[i];
      if (e->buffer || !e->t->requires_grad) continue;
      for (int64_t j = 0; j < e->t->numel; j++) e->t->grad[j] *= coef;
    }
  return norm;
}
