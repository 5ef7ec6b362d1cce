/* cross_entropy (label smoothing, ignore_index), mse, kl_div (batchmean,
 * log_target): PyTorch reference (forward + backward), finite-difference
 * gradients, the all-ignored batch, bad input (NULL, shapes, out-of-range
 * targets, NaN/Inf). */
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "refdata.h"

/* in: logits, target (class ids as floats), ls, ignore — as in ref_ops_loss.py */
static gr_tensor *f_ce_ref(gr_ctx *c, gr_tensor **in, void *ud) {
  int32_t target[64];
  if (in[1]->numel > 64) return NULL;
  for (int64_t i = 0; i < in[1]->numel; i++) target[i] = (int32_t)in[1]->data[i];
  return gr_cross_entropy(c, in[0], target, in[2]->data[0], (int32_t)in[3]->data[0]);
}
static gr_tensor *f_mse(gr_ctx *c, gr_tensor **in, void *ud) { return gr_mse(c, in[0], in[1]); }
static gr_tensor *f_kl_ref(gr_ctx *c, gr_tensor **in, void *ud) {
  return gr_kl_div(c, in[0], in[1], in[2]->data[0] != 0);
}

static void test_reference(void) {
  static const char *ce_in[] = {"logits", "target", "ls", "ignore"};
  static const char *mse_in[] = {"pred", "target"}, *kl_in[] = {"input", "target", "logt"};
  static const char *ce_cases[] = {"ce_plain", "ce_smooth", "ce_ignore", "ce_ignore_smooth",
                                   "ce_ignore_class", "ce_one", "ce_wide", "ce_big"};
  for (size_t i = 0; i < sizeof ce_cases / sizeof *ce_cases; i++) {
    bool big = !strcmp(ce_cases[i], "ce_big");
    if (big) gr_set_threads(2); /* exercise the OpenMP path */
    CHECK_REF(ce_cases[i], f_ce_ref, NULL, 4, ce_in);
    if (big) gr_set_threads(1);
  }
  CHECK_REF("mse_small", f_mse, NULL, 2, mse_in);
  CHECK_REF("mse_one", f_mse, NULL, 2, mse_in);
  gr_set_threads(2);
  CHECK_REF("mse_big", f_mse, NULL, 2, mse_in);
  gr_set_threads(1);
  static const char *kl_cases[] = {"kl_prob", "kl_logt", "kl_zero", "kl_1d"};
  for (int i = 0; i < 4; i++) CHECK_REF(kl_cases[i], f_kl_ref, NULL, 3, kl_in);
}

typedef struct ce_opts {
  const int32_t *target;
  float ls;
  int32_t ignore;
} ce_opts;

static gr_tensor *f_ce(gr_ctx *c, gr_tensor **in, void *ud) {
  const ce_opts *o = ud;
  return gr_cross_entropy(c, in[0], o->target, o->ls, o->ignore);
}
static gr_tensor *f_kl(gr_ctx *c, gr_tensor **in, void *ud) { return gr_kl_div(c, in[0], in[1], *(bool *)ud); }

static void test_gradients(void) {
  gr_rng r;
  gr_rng_seed(&r, 17);
  static const int32_t target[5] = {2, -1, 0, 3, 2};
  ce_opts plain = {target, 0, -100}, smooth_ignore = {target, 0.15f, -1};
  gc_input logits = gc_rand(&r, 2, GR_SHAPE(5, 4), -2, 2, true);
  CHECK_GRAD("cross_entropy ignore=-1 smoothing", f_ce, &smooth_ignore, 1, &logits);
  int32_t no_neg[5] = {2, 1, 0, 3, 2};
  plain.target = no_neg;
  CHECK_GRAD("cross_entropy", f_ce, &plain, 1, &logits);
  gc_input_free(&logits);

  gc_input pt[2] = {gc_rand(&r, 2, GR_SHAPE(3, 4), -1, 1, true), gc_rand(&r, 2, GR_SHAPE(3, 4), -1, 1, true)};
  CHECK_GRAD("mse", f_mse, NULL, 2, pt);
  gc_input_free(&pt[0]);
  gc_input_free(&pt[1]);

  for (int lt = 0; lt < 2; lt++) {
    bool log_target = lt;
    gc_input kin[2] = {gc_rand(&r, 2, GR_SHAPE(3, 4), -3, -0.5f, true),
                       lt ? gc_rand(&r, 2, GR_SHAPE(3, 4), -3, -0.5f, true)
                          : gc_rand(&r, 2, GR_SHAPE(3, 4), 0.1f, 1, true)};
    CHECK_GRAD(lt ? "kl_div log_target" : "kl_div", f_kl, &log_target, 2, kin);
    gc_input_free(&kin[0]);
    gc_input_free(&kin[1]);
  }
}

/* All rows ignored (and N = 0): loss 0, zero gradient, backward succeeds. */
static void test_all_ignored(void) {
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x = gr_leaf(c, 2, GR_SHAPE(3, 4), (float[12]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  gr_tensor *y = gr_cross_entropy(c, x, (int32_t[]){-100, -100, -100}, 0.1f, -100);
  CHECK_PTR(y);
  if (y) {
    CHECK(y->ndim == 0 && y->data[0] == 0.0f);
    CHECK_OK(gr_backward(c, y));
    bool zero = true;
    for (int i = 0; i < 12; i++) zero &= x->grad[i] == 0.0f;
    CHECK(zero);
  }
  gr_tensor *e = gr_tensor_new(c, 2, GR_SHAPE(0, 4));
  gr_tensor *ye = gr_cross_entropy(c, e, NULL, 0, -100);
  CHECK(ye && ye->data[0] == 0.0f);
  gr_ctx_free(c);
}

static void test_bad_input(void) {
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x = gr_tensor_new(c, 2, GR_SHAPE(3, 4)), *v = gr_tensor_new(c, 1, GR_SHAPE(4));
  gr_tensor *nan = gr_tensor_from(c, 2, GR_SHAPE(3, 4), (float[12]){0, 0, 0, 0, 0, NAN});
  gr_tensor *inf = gr_tensor_from(c, 2, GR_SHAPE(3, 4), (float[12]){0, 0, 0, INFINITY});
  gr_tensor *neg = gr_tensor_from(c, 2, GR_SHAPE(3, 4), (float[12]){0.5f, -0.1f});
  int32_t t[3] = {0, 1, 2}, bad[3] = {0, 4, 1}, below[3] = {0, 1, -2};
  CHECK_FAILS(gr_cross_entropy(c, NULL, t, 0, -100) != NULL, GR_EARG);
  CHECK_FAILS(gr_cross_entropy(NULL, x, t, 0, -100) != NULL, GR_EARG);
  CHECK_FAILS(gr_cross_entropy(c, x, NULL, 0, -100) != NULL, GR_EARG);
  CHECK_FAILS(gr_cross_entropy(c, v, t, 0, -100) != NULL, GR_ESHAPE);
  CHECK_FAILS(gr_cross_entropy(c, x, bad, 0, -100) != NULL, GR_EARG);
  CHECK(strstr(gr_last_error(), "target[1] = 4") != NULL);
  CHECK_FAILS(gr_cross_entropy(c, x, below, 0, -100) != NULL, GR_EARG);
  CHECK(strstr(gr_last_error(), "target[2]") != NULL);
  CHECK_FAILS(gr_cross_entropy(c, x, t, 1.5f, -100) != NULL, GR_EARG);
  CHECK_FAILS(gr_cross_entropy(c, x, t, NAN, -100) != NULL, GR_EARG);
  CHECK_FAILS(gr_cross_entropy(c, nan, t, 0, -100) != NULL, GR_ENUMERIC);
  CHECK(strstr(gr_last_error(), "cross_entropy") && strstr(gr_last_error(), "NaN"));
  CHECK_FAILS(gr_cross_entropy(c, inf, t, 0, -100) != NULL, GR_ENUMERIC);

  CHECK_FAILS(gr_mse(c, x, v) != NULL, GR_ESHAPE);
  CHECK_FAILS(gr_mse(c, x, NULL) != NULL, GR_EARG);
  CHECK_FAILS(gr_mse(c, x, nan) != NULL, GR_ENUMERIC);
  CHECK(strstr(gr_last_error(), "mse: target") != NULL);
  CHECK_FAILS(gr_mse(c, inf, x) != NULL, GR_ENUMERIC);
  gr_tensor *z = gr_tensor_new(c, 2, GR_SHAPE(0, 4));
  CHECK_FAILS(gr_mse(c, z, z) != NULL, GR_ESHAPE);

  CHECK_FAILS(gr_kl_div(c, x, v, false) != NULL, GR_ESHAPE);
  CHECK_FAILS(gr_kl_div(c, NULL, x, false) != NULL, GR_EARG);
  CHECK_FAILS(gr_kl_div(c, nan, x, false) != NULL, GR_ENUMERIC);
  CHECK_FAILS(gr_kl_div(c, x, inf, true) != NULL, GR_ENUMERIC);
  CHECK_FAILS(gr_kl_div(c, x, neg, false) != NULL, GR_EARG);
  CHECK(strstr(gr_last_error(), "negative") != NULL);
  gr_tensor *s = gr_scalar(c, 0.5f);
  CHECK_FAILS(gr_kl_div(c, s, s, false) != NULL, GR_ESHAPE);
  gr_ctx_free(c);
}

int main(void) {
  gr_set_threads(1);
  test_reference();
  test_gradients();
  test_all_ignored();
  test_bad_input();
  return test_summary();
}
