/* Merge kernels against tests/ref/ref_merge.py (a numpy transcription of
 * mergekit's algorithms), DARE/DELLA mask statistics, determinism, the
 * breadcrumbs n_top == 0 quirk, task-vector arithmetic and bad arguments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "refdata.h"

#define MAXM 4

static const ref_array *get(const ref_file *f, const char *t, const char *what) {
  char key[64];
  snprintf(key, sizeof key, "%s.%s", t, what);
  return ref_get(f, key);
}

static double decimal(float x) { return round((double)x * 1e6) / 1e6; }

/* Runs one reference tensor through gr_merge_tensor; returns false on mismatch. */
static bool run_tensor(const ref_file *f, const char *t, gr_merge_method m, int n_models, gr_merge_report *rep) {
  const ref_array *base = get(f, t, "base"), *y = get(f, t, "y"), *opts = get(f, t, "opts");
  const ref_array *w = get(f, t, "w"), *d = get(f, t, "d"), *g = get(f, t, "g"), *e = get(f, t, "e");
  if (!base || !y || !opts || !w || !d || !g || !e) return false;
  const float *models[MAXM];
  const uint8_t *masks[MAXM];
  uint8_t *mask_store[MAXM] = {0};
  gr_merge_model_params p[MAXM];
  bool have_masks = false;
  for (int i = 0; i < n_models; i++) {
    char key[32];
    snprintf(key, sizeof key, "m%d", i);
    models[i] = get(f, t, key)->data;
    snprintf(key, sizeof key, "%s.mask%d", t, i);
    masks[i] = NULL;
    for (int k = 0; k < f->count; k++)
      if (!strcmp(f->a[k].name, key)) {
        mask_store[i] = malloc((size_t)base->numel);
        for (int64_t j = 0; j < base->numel; j++) mask_store[i][j] = f->a[k].data[j] != 0;
        masks[i] = mask_store[i];
        have_masks = true;
      }
    /* the .ref file stores f32: give the kernel the decimal settings a YAML file holds
     * (int(0.7f*600) is 419, int(0.7*600) is 420) */
    p[i] = (gr_merge_model_params){w->data[i], decimal(d->data[i]), decimal(g->data[i]), decimal(e->data[i])};
  }
  gr_merge_args a = gr_merge_args_defaults(m);
  a.name = t;
  a.numel = base->numel;
  a.ndim = base->ndim;
  a.shape = base->shape;
  a.base = base->data;
  a.n_models = n_models;
  a.models = models;
  a.params = p;
  a.normalize = opts->data[0] != 0;
  a.rescale = opts->data[1] != 0;
  a.lambda = opts->data[2];
  a.t = opts->data[3];
  a.filter_wise = opts->data[4] != 0;
  a.rescale_mode = opts->data[5] != 0 ? GR_RESCALE_INV_DENSITY : GR_RESCALE_L1;
  a.peft_semantics = opts->numel > 6 && opts->data[6] != 0;
  a.masks_in = have_masks ? masks : NULL;
  float *out = malloc(sizeof(float) * (size_t)(base->numel ? base->numel : 1));
  gr_status st = gr_merge_tensor(&a, out, rep);
  bool ok = st == GR_OK;
  if (!ok) fprintf(stderr, "  %s: %s\n", t, gr_last_error());
  char what[96];
  snprintf(what, sizeof what, "%s/%s", gr_merge_info(m)->name, t);
  ok = ok && test_allclose(what, out, y->data, y->numel, 1e-6, 1e-5);
  free(out);
  for (int i = 0; i < n_models; i++) free(mask_store[i]);
  return ok;
}

static void check_case(const char *case_name, gr_merge_method m) {
  ref_file *f = ref_open(case_name);
  test_checks++;
  if (!f) {
    test_fail(__FILE__, __LINE__, "missing reference %s", case_name);
    return;
  }
  const ref_array *meta = ref_get(f, "meta");
  int nt = (int)meta->data[0], nm = (int)meta->data[1];
  for (int k = 0; k < nt; k++) {
    char t[16];
    snprintf(t, sizeof t, "t%d", k);
    gr_merge_report rep;
    CHECK_MSG(run_tensor(f, t, m, nm, &rep), "%s tensor %s differs from the reference", case_name, t);
    /* tensor t1 has 7 entries: int(gamma*7) == 0 for every model (the quirk) */
    if ((m == GR_MERGE_BREADCRUMBS || m == GR_MERGE_BREADCRUMBS_TIES))
      CHECK_MSG(rep.quirk_zeroed == (k == 1 ? nm : 0), "%s %s: %d quirk-zeroed", case_name, t, rep.quirk_zeroed);
  }
  ref_close(f);
}

static void check_references(void) {
  static const struct { const char *c; gr_merge_method m; } cases[] = {
      {"merge_task_arithmetic", GR_MERGE_TASK_ARITHMETIC}, {"merge_task_arithmetic_lambda", GR_MERGE_TASK_ARITHMETIC},
      {"merge_ties", GR_MERGE_TIES}, {"merge_ties_parity", GR_MERGE_TIES}, {"merge_ties_lambda", GR_MERGE_TIES},
      {"merge_dare_ties", GR_MERGE_DARE_TIES}, {"merge_dare_ties_invd", GR_MERGE_DARE_TIES},
      {"merge_ties_peft", GR_MERGE_TIES}, {"merge_dare_ties_peft", GR_MERGE_DARE_TIES},
      {"merge_dare_linear", GR_MERGE_DARE_LINEAR}, {"merge_dare_linear_invd", GR_MERGE_DARE_LINEAR},
      {"merge_breadcrumbs", GR_MERGE_BREADCRUMBS}, {"merge_breadcrumbs_ties", GR_MERGE_BREADCRUMBS_TIES},
      {"merge_della", GR_MERGE_DELLA}, {"merge_della_linear", GR_MERGE_DELLA_LINEAR},
      {"merge_linear", GR_MERGE_LINEAR}, {"merge_linear_sum", GR_MERGE_LINEAR},
      {"merge_slerp_t0.0", GR_MERGE_SLERP}, {"merge_slerp_t0.3", GR_MERGE_SLERP}, {"merge_slerp_t1.0", GR_MERGE_SLERP},
      {"merge_slerp_colinear", GR_MERGE_SLERP}, {"merge_slerp_antiparallel", GR_MERGE_SLERP},
      {"merge_model_stock", GR_MERGE_MODEL_STOCK}, {"merge_model_stock_rows", GR_MERGE_MODEL_STOCK},
      {"merge_model_stock_clamp", GR_MERGE_MODEL_STOCK},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(cases[i].c, cases[i].m);
}

/* A two-model task-arithmetic style setup over n random entries. */
typedef struct fixture {
  int64_t n;
  float *base, *m0, *m1, *out;
  const float *models[2];
  gr_merge_model_params p[2];
} fixture;

static fixture fixture_new(int64_t n, uint64_t seed) {
  fixture fx = {.n = n};
  gr_rng r;
  gr_rng_seed(&r, seed);
  fx.base = malloc(sizeof(float) * (size_t)n);
  fx.m0 = malloc(sizeof(float) * (size_t)n);
  fx.m1 = malloc(sizeof(float) * (size_t)n);
  fx.out = malloc(sizeof(float) * (size_t)n);
  gr_rng_fill_normal(&r, fx.base, n, 0, 1);
  gr_rng_fill_normal(&r, fx.m0, n, 0, 1);
  gr_rng_fill_normal(&r, fx.m1, n, 0, 1);
  fx.models[0] = fx.m0;
  fx.models[1] = fx.m1;
  fx.p[0] = fx.p[1] = gr_merge_model_params_defaults();
  return fx;
}

static void fixture_free(fixture *fx) {
  free(fx->base);
  free(fx->m0);
  free(fx->m1);
  free(fx->out);
}

static gr_merge_args fixture_args(fixture *fx, gr_merge_method m, const char *name) {
  gr_merge_args a = gr_merge_args_defaults(m);
  a.name = name;
  a.numel = fx->n;
  a.ndim = 1;
  a.shape = &fx->n;
  a.base = fx->base;
  a.n_models = 2;
  a.models = fx->models;
  a.params = fx->p;
  a.seed = 42;
  return a;
}

static void check_dare_statistics(void) {
  fixture fx = fixture_new(1000000, 5);
  uint8_t *mk0 = malloc((size_t)fx.n), *mk1 = malloc((size_t)fx.n), *again = malloc((size_t)fx.n);
  uint8_t *outs[2] = {mk0, mk1};
  fx.p[0].density = 0.3;
  fx.p[1].density = 0.8;
  gr_merge_args a = fixture_args(&fx, GR_MERGE_DARE_LINEAR, "model.layers.0.mlp.up_proj.weight");
  a.masks_out = outs;
  gr_merge_report rep;
  CHECK_OK(gr_merge_tensor(&a, fx.out, &rep));
  int64_t k0 = 0, k1 = 0;
  for (int64_t j = 0; j < fx.n; j++) {
    k0 += mk0[j];
    k1 += mk1[j];
  }
  CHECK_MSG(fabs(k0 / 1e6 - 0.3) <= 0.005 * 0.3, "dare kept %.5f of 1e6, want 0.3 +/- 0.5%%", k0 / 1e6);
  CHECK_MSG(fabs(k1 / 1e6 - 0.8) <= 0.005 * 0.8, "dare kept %.5f of 1e6, want 0.8 +/- 0.5%%", k1 / 1e6);
  CHECK_NEAR(rep.kept_fraction[0], k0 / 1e6, 1e-12);
  /* the same seed and name give the same mask; another name another one */
  uint8_t *outs2[2] = {again, NULL};
  a.masks_out = outs2;
  CHECK_OK(gr_merge_tensor(&a, fx.out, NULL));
  CHECK(!memcmp(again, mk0, (size_t)fx.n));
  a.name = "model.layers.1.mlp.up_proj.weight";
  CHECK_OK(gr_merge_tensor(&a, fx.out, NULL));
  CHECK(memcmp(again, mk0, (size_t)fx.n) != 0);
  a.name = "model.layers.0.mlp.up_proj.weight";
  a.seed = 43;
  CHECK_OK(gr_merge_tensor(&a, fx.out, NULL));
  CHECK(memcmp(again, mk0, (size_t)fx.n) != 0);
  /* 1/d rescale: kept entries become base + tau/d (single model, weight 1) */
  a.seed = 42;
  a.n_models = 1;
  a.rescale_mode = GR_RESCALE_INV_DENSITY;
  a.masks_out = outs2;
  CHECK_OK(gr_merge_tensor(&a, fx.out, NULL));
  int bad = 0;
  for (int64_t j = 0; j < fx.n; j++) {
    float want = again[j] ? fx.base[j] + (fx.m0[j] - fx.base[j]) * (float)(1 / 0.3) : fx.base[j];
    bad += fabsf(fx.out[j] - want) > 1e-5f * (1 + fabsf(want));
  }
  CHECK_MSG(bad == 0, "%d entries differ from base + mask*tau/d", bad);
  free(mk0);
  free(mk1);
  free(again);
  fixture_free(&fx);
}

/* DELLA keeps low-|τ| entries with p = d-ε and the largest with d+ε. */
static void check_della_statistics(void) {
  fixture fx = fixture_new(200000, 9);
  uint8_t *mk = malloc((size_t)fx.n);
  uint8_t *outs[2] = {mk, NULL};
  fx.p[0].density = 0.5;
  fx.p[0].epsilon = 0.2;
  gr_merge_args a = fixture_args(&fx, GR_MERGE_DELLA_LINEAR, "della.weight");
  a.n_models = 1;
  a.masks_out = outs;
  CHECK_OK(gr_merge_tensor(&a, fx.out, NULL));
  /* rank deciles by |τ|: threshold from a sorted copy */
  float *absd = malloc(sizeof(float) * (size_t)fx.n);
  for (int64_t j = 0; j < fx.n; j++) absd[j] = fabsf(fx.m0[j] - fx.base[j]);
  float *sorted = malloc(sizeof(float) * (size_t)fx.n);
  memcpy(sorted, absd, sizeof(float) * (size_t)fx.n);
  int cmp(const void *x, const void *y);
  qsort(sorted, (size_t)fx.n, sizeof(float), cmp);
  float lo = sorted[fx.n / 10], hi = sorted[fx.n - fx.n / 10];
  int64_t nlo = 0, klo = 0, nhi = 0, khi = 0;
  for (int64_t j = 0; j < fx.n; j++) {
    if (absd[j] < lo) nlo++, klo += mk[j];
    if (absd[j] >= hi) nhi++, khi += mk[j];
  }
  /* mean rank_norm in the bottom decile ~0.05, top ~0.95 */
  CHECK_NEAR((double)klo / nlo, 0.3 + 0.4 * 0.05, 0.01);
  CHECK_NEAR((double)khi / nhi, 0.3 + 0.4 * 0.95, 0.01);
  free(absd);
  free(sorted);
  free(mk);
  fixture_free(&fx);
}
int cmp(const void *x, const void *y) {
  float a = *(const float *)x, b = *(const float *)y;
  return (a > b) - (a < b);
}

static void check_breadcrumbs_quirk_option(void) {
  fixture fx = fixture_new(50, 3);
  fx.p[0].density = 0.5;
  fx.p[0].gamma = 0.01; /* int(0.5) = 0 */
  gr_merge_args a = fixture_args(&fx, GR_MERGE_BREADCRUMBS, "small.bias");
  a.n_models = 1;
  gr_merge_report rep;
  CHECK_OK(gr_merge_tensor(&a, fx.out, &rep));
  CHECK(rep.quirk_zeroed == 1);
  CHECK(!memcmp(fx.out, fx.base, sizeof(float) * 50));
  a.breadcrumbs_keep_top = true;
  CHECK_OK(gr_merge_tensor(&a, fx.out, &rep));
  int changed = 0;
  for (int j = 0; j < 50; j++) changed += fx.out[j] != fx.base[j];
  CHECK(rep.quirk_zeroed == 0 && changed == 25); /* keeps the 25 largest |τ| */
  fixture_free(&fx);
}

/* Many equal |τ|: the masks still keep exactly the ranks asked for, and
 * every kept |τ| is >= every dropped one (TIES) / inside the window (breadcrumbs). */
static void check_rank_ties(void) {
  fixture fx = fixture_new(1000, 11);
  for (int64_t j = 0; j < fx.n; j++) fx.m0[j] = fx.base[j] + (float)((int)(fx.m0[j] * 2.0f)) * 0.5f;
  uint8_t *mk = malloc((size_t)fx.n);
  uint8_t *outs[2] = {mk, NULL};
  for (int method = 0; method < 2; method++) {
    fx.p[0].density = 0.3;
    fx.p[0].gamma = 0.05;
    gr_merge_args a = fixture_args(&fx, method ? GR_MERGE_BREADCRUMBS : GR_MERGE_TIES, "tied");
    a.n_models = 1;
    a.masks_out = outs;
    CHECK_OK(gr_merge_tensor(&a, fx.out, NULL));
    int64_t kept = 0;
    float min_kept = INFINITY, max_dropped_below = -1, min_dropped_above = INFINITY;
    for (int64_t j = 0; j < fx.n; j++) {
      float t = fabsf(fx.m0[j] - fx.base[j]);
      kept += mk[j];
      if (mk[j] && t < min_kept) min_kept = t;
    }
    float max_kept = 0;
    for (int64_t j = 0; j < fx.n; j++)
      if (mk[j]) max_kept = fmaxf(max_kept, fabsf(fx.m0[j] - fx.base[j]));
    for (int64_t j = 0; j < fx.n; j++) {
      float t = fabsf(fx.m0[j] - fx.base[j]);
      if (!mk[j] && t <= min_kept) max_dropped_below = fmaxf(max_dropped_below, t);
      if (!mk[j] && t > min_kept) min_dropped_above = fminf(min_dropped_above, t);
    }
    CHECK_MSG(kept == 300, "%s kept %lld of 1000 tied entries, want 300", method ? "breadcrumbs" : "ties", (long long)kept);
    if (method == 0) CHECK(min_dropped_above == INFINITY); /* nothing larger than a kept entry is dropped */
    else CHECK(min_dropped_above >= max_kept);           /* only the top (and bottom) are dropped */
    CHECK(max_dropped_below <= min_kept);
  }
  free(mk);
  fixture_free(&fx);
}

static void check_taskvec(void) {
  float a[4] = {1, 2, 3, 4}, b[4] = {1.5f, 2, 2, 10}, c[4] = {0.5f, 1, 1, 0}, out[4];
  gr_taskvec_axpy(out, a, 1.0, b, c, 4); /* a + (b - c) */
  for (int j = 0; j < 4; j++) CHECK(out[j] == (float)((double)a[j] + ((double)b[j] - (double)c[j])));
  gr_taskvec_axpy(out, NULL, 1.0, b, c, 4); /* extract */
  for (int j = 0; j < 4; j++) CHECK(out[j] == b[j] - c[j]);
  gr_taskvec_axpy(out, a, -0.5, b, NULL, 4); /* apply a negated, scaled vector */
  for (int j = 0; j < 4; j++) CHECK(out[j] == (float)(a[j] - 0.5 * b[j]));
}

static void check_errors(void) {
  fixture fx = fixture_new(10, 1);
  gr_merge_method m;
  CHECK_FAILS(gr_merge_method_from_name("frankenmerge", &m) == GR_OK, GR_EUNSUPPORTED);
  CHECK(strstr(gr_last_error(), "frankenmerge") != NULL);
  CHECK_OK(gr_merge_method_from_name("breadcrumbs_ties", &m));
  CHECK(m == GR_MERGE_BREADCRUMBS_TIES);
  CHECK_FAILS(gr_merge_tensor(NULL, fx.out, NULL) == GR_OK, GR_EARG);
  gr_merge_args a = fixture_args(&fx, GR_MERGE_TIES, "x.weight");
  fx.p[0].density = 0.05; /* int(0.5) = 0 entries */
  CHECK_FAILS(gr_merge_tensor(&a, fx.out, NULL) == GR_OK, GR_EARG);
  CHECK(strstr(gr_last_error(), "x.weight") != NULL);
  fx.p[0].density = 0.5;
  fx.m0[3] = NAN; /* ranking |tau| needs numbers */
  CHECK_FAILS(gr_merge_tensor(&a, fx.out, NULL) == GR_OK, GR_ENUMERIC);
  CHECK(strstr(gr_last_error(), "x.weight") && strstr(gr_last_error(), "NaN"));
  fx.m0[3] = 0;
  fx.p[0].density = 1;
  a.base = NULL;
  CHECK_FAILS(gr_merge_tensor(&a, fx.out, NULL) == GR_OK, GR_EARG);
  a = fixture_args(&fx, GR_MERGE_SLERP, "s");
  CHECK_FAILS(gr_merge_tensor(&a, fx.out, NULL) == GR_OK, GR_EARG); /* two models */
  a = fixture_args(&fx, GR_MERGE_MODEL_STOCK, "s");
  a.n_models = 1;
  CHECK_FAILS(gr_merge_tensor(&a, fx.out, NULL) == GR_OK, GR_EARG);
  a = fixture_args(&fx, GR_MERGE_DELLA, "d");
  fx.p[0].density = 0.1;
  fx.p[0].epsilon = 0.15;
  CHECK_FAILS(gr_merge_tensor(&a, fx.out, NULL) == GR_OK, GR_EARG);
  fx.p[0] = gr_merge_model_params_defaults();
  a = fixture_args(&fx, GR_MERGE_LINEAR, "l");
  fx.p[0].weight = 1;
  fx.p[1].weight = -1;
  CHECK_FAILS(gr_merge_tensor(&a, fx.out, NULL) == GR_OK, GR_EARG);
  fx.p[1].weight = NAN;
  CHECK_FAILS(gr_merge_tensor(&a, fx.out, NULL) == GR_OK, GR_EARG);
  fixture_free(&fx);
}

int main(void) {
  check_references();
  check_dare_statistics();
  check_della_statistics();
  check_breadcrumbs_quirk_option();
  check_rank_ties();
  check_taskvec();
  check_errors();
  return test_summary();
}
