/* aTLAS (graft/atlas.h): the composed weights and dL/dΛ against PyTorch
 * autograd (tests/ref/ref_atlas.py) and against central finite differences;
 * Λ = 0 reproduces θ0 bit for bit; isotropic Λ equals task arithmetic
 * (gr_taskvec_axpy); a fit started at the best single global λ lowers the
 * training loss; bad arguments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "refdata.h"

#define T_REF 2

static gr_model *tiny_mlp(uint64_t seed, int64_t in, int64_t hidden, int64_t out) {
  gr_model *m = gr_model_new(seed);
  gr_module *root = gr_arch_mlp(m, in, &hidden, 1, out, "relu");
  if (!root || gr_model_set_root(m, root)) {
    gr_model_free(m);
    return NULL;
  }
  return m;
}

/* Fills the model's parameters (prefix "base.") or a flat τ ("tv0.") from the reference. */
static bool load_flat(const ref_file *f, const gr_model *m, const char *prefix, float *flat) {
  for (int i = 0; i < m->n_entries; i++) {
    char key[GR_NAME_MAX + 16];
    snprintf(key, sizeof key, "%s%s", prefix, m->entries[i].name);
    const ref_array *a = ref_get(f, key);
    if (!a || a->numel != m->entries[i].t->numel) return false;
    memcpy(flat + m->entries[i].offset, a->data, (size_t)a->numel * sizeof(float));
  }
  return true;
}

static bool near(double got, double want, double atol, double rtol) { return fabs(got - want) <= atol + rtol * fabs(want); }

static double batch_loss(gr_atlas *a, gr_ctx *c, const ref_array *x, const int32_t *y, float *grad) {
  gr_tensor *xt = gr_tensor_from(c, 2, x->shape, x->data);
  double loss = NAN;
  if (gr_atlas_loss_grad(a, c, xt, y, &loss, grad)) return NAN;
  return loss;
}

static void test_reference(void) {
  ref_file *f = ref_open("atlas_mlp");
  CHECK_PTR(f);
  if (!f) return;
  gr_model *m = tiny_mlp(1, 6, 5, 3);
  CHECK_PTR(m);
  float *tv[T_REF];
  for (int t = 0; t < T_REF; t++) tv[t] = calloc((size_t)m->numel, sizeof(float));
  CHECK(load_flat(f, m, "base.", m->data));
  CHECK(load_flat(f, m, "tv0.", tv[0]) && load_flat(f, m, "tv1.", tv[1]));
  gr_atlas *a = gr_atlas_new(m, T_REF, (const float *const *)tv);
  CHECK_PTR(a);
  const ref_array *lam = ref_get(f, "lam"), *x = ref_get(f, "x"), *yf = ref_get(f, "y"), *dlam = ref_get(f, "dlam");
  const ref_array *loss = ref_get(f, "loss");
  if (a && lam && x && yf && dlam && loss) {
    CHECK(gr_atlas_n_tv(a) == T_REF && gr_atlas_n_blocks(a) == 4);
    CHECK(!strcmp(gr_atlas_block_name(a, 2), "layers.2.weight"));
    /* Λ = 0: θ0 exactly */
    float *theta0 = malloc((size_t)m->numel * sizeof(float));
    memcpy(theta0, m->data, (size_t)m->numel * sizeof(float));
    gr_atlas_compose(a);
    CHECK(memcmp(theta0, m->data, (size_t)m->numel * sizeof(float)) == 0);
    memcpy(gr_atlas_coef(a), lam->data, (size_t)lam->numel * sizeof(float));
    gr_atlas_compose(a);
    bool ok = true;
    for (int i = 0; i < m->n_entries; i++) {
      char key[GR_NAME_MAX + 16];
      snprintf(key, sizeof key, "theta.%s", m->entries[i].name);
      const ref_array *th = ref_get(f, key);
      for (int64_t j = 0; th && j < th->numel; j++) ok &= near(m->data[m->entries[i].offset + j], th->data[j], 1e-6, 1e-6);
    }
    CHECK_MSG(ok, "composed weights differ from torch's");
    int32_t y[8];
    for (int i = 0; i < 8; i++) y[i] = (int32_t)yf->data[i];
    gr_ctx *c = gr_ctx_new(1 << 20, 0);
    float grad[T_REF * 4];
    double l = batch_loss(a, c, x, y, grad);
    CHECK_MSG(near(l, loss->data[0], 1e-4, 1e-4), "loss %g vs torch %g", l, (double)loss->data[0]);
    for (int k = 0; k < T_REF * 4; k++)
      CHECK_MSG(near(grad[k], dlam->data[k], 1e-4, 1e-4), "dL/dlambda[%d] = %g, torch %g", k, grad[k], dlam->data[k]);
    /* central finite differences on every coefficient */
    float *coef = gr_atlas_coef(a), scratch[T_REF * 4];
    const double eps = 1e-2;
    for (int k = 0; k < T_REF * 4; k++) {
      float keep = coef[k];
      coef[k] = (float)(keep + eps);
      double lp = batch_loss(a, c, x, y, scratch);
      coef[k] = (float)(keep - eps);
      double lm = batch_loss(a, c, x, y, scratch);
      coef[k] = keep;
      double fd = (lp - lm) / (2 * eps);
      CHECK_MSG(near(grad[k], fd, 2e-3, 2e-2), "dL/dlambda[%d] = %g, finite differences %g", k, grad[k], fd);
    }
    gr_ctx_free(c);
    free(theta0);
  }
  gr_atlas_free(a);
  for (int t = 0; t < T_REF; t++) free(tv[t]);
  gr_model_free(m);
  ref_close(f);
}

/* One task vector with every λ equal: the same bits as θ0 + λ τ by gr_taskvec_axpy. */
static void test_isotropic_is_task_arithmetic(void) {
  gr_model *m = tiny_mlp(2, 7, 9, 4);
  CHECK_PTR(m);
  float *tv = malloc((size_t)m->numel * sizeof(float)), *want = malloc((size_t)m->numel * sizeof(float));
  gr_rng r;
  gr_rng_seed(&r, 5);
  gr_rng_fill_normal(&r, tv, m->numel, 0, 0.1f);
  gr_taskvec_axpy(want, m->data, (double)0.35f, tv, NULL, m->numel);
  gr_atlas *a = gr_atlas_new(m, 1, (const float *const *)&tv);
  CHECK_PTR(a);
  if (a) {
    gr_atlas_set_all(a, 0.35f);
    gr_atlas_compose(a);
    CHECK(memcmp(want, m->data, (size_t)m->numel * sizeof(float)) == 0);
  }
  gr_atlas_free(a);
  free(tv), free(want);
  gr_model_free(m);
}

/* Points around a per-task direction; labels by a per-task random teacher. */
static gr_dataset *synthetic_task(uint64_t seed, int n, int dim, int classes) {
  gr_dataset *d = gr_dataset_new(n, 1, 1, dim, classes);
  gr_rng r;
  gr_rng_seed(&r, seed);
  float teacher[8 * 3];
  gr_rng_fill_normal(&r, teacher, dim * classes, 0, 1);
  for (int i = 0; i < n; i++) {
    float *x = d->x + (int64_t)i * dim;
    gr_rng_fill_normal(&r, x, dim, 0, 1);
    int best = 0;
    double bv = -INFINITY;
    for (int k = 0; k < classes; k++) {
      double v = 0;
      for (int j = 0; j < dim; j++) v += teacher[k * dim + j] * x[j];
      if (v > bv) bv = v, best = k;
    }
    d->y[i] = best;
  }
  return d;
}

static void fine_tune(gr_model *m, const gr_dataset *d) {
  gr_optim_cfg oc = gr_sgd_cfg(0.05f, 0.9f, 0, false);
  gr_optim *o = gr_optim_new(m, &oc);
  gr_train_cfg tc = {.steps = 150, .batch = 32, .seed = 3};
  gr_train_result res;
  CHECK_OK(gr_train(m, o, d, NULL, &tc, NULL, &res));
  gr_optim_free(o);
}

static double full_loss(gr_atlas *a, gr_ctx *c, const gr_dataset *d) {
  gr_eval_result ev;
  return gr_atlas_evaluate(a, c, d, &ev) ? NAN : ev.loss;
}

static void test_fit_from_best_global_lambda(void) {
  enum { DIM = 8, K = 3, N = 256 };
  gr_dataset *task[2] = {synthetic_task(11, N, DIM, K), synthetic_task(12, N, DIM, K)};
  gr_model *base = tiny_mlp(3, DIM, 16, K), *ft = tiny_mlp(3, DIM, 16, K);
  float *tv[2];
  for (int t = 0; t < 2; t++) {
    tv[t] = malloc((size_t)base->numel * sizeof(float));
    memcpy(ft->data, base->data, (size_t)base->numel * sizeof(float));
    fine_tune(ft, task[t]);
    gr_taskvec_axpy(tv[t], NULL, 1.0, ft->data, base->data, base->numel);
  }
  gr_atlas *a = gr_atlas_new(base, 2, (const float *const *)tv);
  CHECK_PTR(a);
  gr_ctx *c = gr_ctx_new(1 << 20, 0);
  if (a) {
    /* the objective is task 0 alone: task arithmetic can only scale both vectors together */
    double best = INFINITY;
    float best_lam = 0;
    for (int i = 0; i <= 20; i++) {
      gr_atlas_set_all(a, 0.05f * (float)i);
      double l = full_loss(a, c, task[0]);
      if (l < best) best = l, best_lam = 0.05f * (float)i;
    }
    gr_atlas_set_all(a, best_lam);
    gr_atlas_cfg cfg = gr_atlas_cfg_default();
    cfg.steps = 60, cfg.batch = N, cfg.lr = 1e-2f, cfg.weight_decay = 0;
    gr_atlas_fit_result res;
    CHECK_OK(gr_atlas_fit(a, task[0], NULL, &cfg, NULL, &res));
    double after = full_loss(a, c, task[0]);
    CHECK_MSG(after < best, "training loss %g after the fit, %g at the best global lambda %g", after, best,
              (double)best_lam);
    CHECK(res.steps == 60 && isnan(res.best_val_acc) && res.train_loss < res.first_loss);
    /* keep-best selection on a validation set never ends below its starting accuracy */
    gr_eval_result start, end;
    gr_atlas_set_all(a, best_lam);
    CHECK_OK(gr_atlas_evaluate(a, c, task[1], &start));
    cfg.eval_every = 10;
    CHECK_OK(gr_atlas_fit(a, task[0], task[1], &cfg, NULL, &res));
    CHECK_OK(gr_atlas_evaluate(a, c, task[1], &end));
    CHECK(end.accuracy >= start.accuracy && fabs(end.accuracy - res.best_val_acc) < 1e-12);
  }
  gr_ctx_free(c);
  gr_atlas_free(a);
  for (int t = 0; t < 2; t++) free(tv[t]), gr_dataset_free(task[t]);
  gr_model_free(base), gr_model_free(ft);
}

static void test_bad_arguments(void) {
  gr_model *m = tiny_mlp(4, 3, 4, 2);
  float *tv = calloc((size_t)m->numel, sizeof(float));
  const float *tvs[1] = {tv};
  CHECK(!gr_atlas_new(NULL, 1, tvs) && gr_last_status() == GR_EARG);
  CHECK(!gr_atlas_new(m, 0, tvs) && gr_last_status() == GR_EARG);
  const float *none[1] = {NULL};
  CHECK(!gr_atlas_new(m, 1, none) && gr_last_status() == GR_EARG);
  tv[m->entries[2].offset] = NAN;
  CHECK(!gr_atlas_new(m, 1, tvs) && strstr(gr_last_error(), m->entries[2].name));
  tv[m->entries[2].offset] = 0;
  gr_atlas *a = gr_atlas_new(m, 1, tvs);
  CHECK_PTR(a);
  gr_dataset *d = synthetic_task(1, 10, 3, 2), *empty = gr_dataset_new(0, 1, 1, 3, 2);
  gr_atlas_cfg cfg = gr_atlas_cfg_default();
  gr_atlas_fit_result res;
  cfg.steps = 0;
  CHECK(gr_atlas_fit(a, d, NULL, &cfg, NULL, &res) == GR_EARG);
  cfg = gr_atlas_cfg_default();
  CHECK(gr_atlas_fit(a, empty, NULL, &cfg, NULL, &res) == GR_EARG);
  CHECK(gr_atlas_fit(NULL, d, NULL, &cfg, NULL, &res) == GR_EARG);
  gr_dataset *wrong = synthetic_task(1, 10, 5, 2); /* 5 features, the model takes 3 */
  cfg.steps = 2;
  CHECK(gr_atlas_fit(a, wrong, NULL, &cfg, NULL, &res) != GR_OK);
  gr_dataset_free(wrong), gr_dataset_free(d), gr_dataset_free(empty);
  gr_atlas_free(a);
  gr_atlas_free(NULL);
  free(tv);
  gr_model_free(m);
}

int main(void) {
  gr_set_threads(1);
  test_reference();
  test_isotropic_is_task_arithmetic();
  test_fit_from_best_global_lambda();
  test_bad_arguments();
  return test_summary();
}
