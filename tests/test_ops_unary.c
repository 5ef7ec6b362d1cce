/* exp, log, sqrt, pow, relu, gelu (tanh approximation), tanh, sigmoid:
 * PyTorch reference (forward + backward, scalar, 1-sized, 0-sized and
 * parallel-sized inputs), finite-difference gradients, bad input. */
#include <math.h>
#include <string.h>

#include "core/op.h"
#include "gradcheck.h"
#include "refdata.h"

typedef struct unary_op {
  const char *name;   /* case name in ref_ops_unary.py */
  gr_tensor *(*f)(gr_ctx *, gr_tensor *);
  bool is_pow;
  float p;
  float lo, hi;       /* gradcheck domain */
} unary_op;

static gr_tensor *f_unary(gr_ctx *c, gr_tensor **in, void *ud) {
  const unary_op *o = ud;
  return o->is_pow ? gr_pow(c, in[0], o->p) : o->f(c, in[0]);
}

/* Must match OPS in tests/ref/ref_ops_unary.py. */
static const unary_op OPS[] = {
    {"exp", gr_exp, false, 0, -2, 2},      {"log", gr_log, false, 0, 0.2f, 2},
    {"sqrt", gr_sqrt, false, 0, 0.2f, 2},  {"pow2", NULL, true, 2, -2, 2},
    {"pow3", NULL, true, 3, -2, 2},        {"powhalf", NULL, true, 0.5f, 0.2f, 2},
    {"powm1p5", NULL, true, -1.5f, 0.5f, 2}, {"pow0", NULL, true, 0, -2, 2},
    {"relu", gr_relu, false, 0, 0, 0},     {"gelu", gr_gelu, false, 0, -4, 4},
    {"tanh", gr_tanh, false, 0, -3, 3},    {"sigmoid", gr_sigmoid, false, 0, -5, 5},
};
static const char *const SHAPES[] = {"small", "one", "scalar", "empty", "big"};
#define N_OPS (sizeof OPS / sizeof *OPS)

static void test_reference(void) {
  static const char *x[] = {"x"};
  char name[64];
  for (size_t o = 0; o < N_OPS; o++)
    for (int s = 0; s < 5; s++) {
      bool big = !strcmp(SHAPES[s], "big");
      if (big) gr_set_threads(2); /* exercise the OpenMP path */
      snprintf(name, sizeof name, "%s_%s", OPS[o].name, SHAPES[s]);
      CHECK_REF(name, f_unary, (void *)&OPS[o], 1, x);
      if (big) gr_set_threads(1);
    }
}

static void test_gradients(void) {
  gr_rng r;
  gr_rng_seed(&r, 5);
  for (size_t o = 0; o < N_OPS; o++) {
    gc_input in = gc_rand(&r, 2, GR_SHAPE(3, 5), OPS[o].lo, OPS[o].hi, true);
    if (!strcmp(OPS[o].name, "relu")) /* keep finite differences off the kink: |x| in [0.1, 1) */
      for (int i = 0; i < 15; i++) in.data[i] = (i % 2 ? -1.0f : 1.0f) * (0.1f + 0.9f * gr_rng_uniform(&r));
    CHECK_GRAD(OPS[o].name, f_unary, (void *)&OPS[o], 1, &in);
    gc_input_free(&in);
  }
}

static void test_bad_input(void) {
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x = gr_tensor_new(c, 1, GR_SHAPE(3));
  for (size_t o = 0; o < N_OPS; o++) {
    unary_op op = OPS[o];
    gr_tensor *in[1] = {NULL};
    CHECK_FAILS(f_unary(c, in, &op) != NULL, GR_EARG);
    in[0] = x;
    CHECK_FAILS(f_unary(NULL, in, &op) != NULL, GR_EARG);
  }
  /* no grad recorded when no input requires it */
  gr_tensor *y = gr_exp(c, x);
  CHECK(y && !y->requires_grad && gr_ctx_tape_len(c) == 0);
  gr_ctx_free(c);
}

/* The branch-free exponential behind GELU, and GELU with its derivative,
 * on a dense grid against the double-precision formulas (the torch
 * reference above samples few points). Saturation and NaN too. */
static void test_fast_exp_and_gelu_dense(void) {
  double worst_exp = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
    double want = exp((double)x);
    worst_exp = fmax(worst_exp, fabs(gr_expf_poly(x) - want) / want);
  }
  CHECK_MSG(worst_exp < 2e-7, "expf_poly: max relative error %g", worst_exp);
  CHECK(gr_expf_poly(-1000.0f) > 0 && gr_expf_poly(-1000.0f) < 1e-37f);
  CHECK(gr_expf_poly(1000.0f) > 1e38f && isfinite(gr_expf_poly(1000.0f)));
  CHECK(isnan(gr_expf_poly(NAN)));
  enum { N = 24001 };
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_tensor *x = gr_tensor_new(c, 1, GR_SHAPE(N));
  for (int i = 0; i < N; i++) x->data[i] = -12.0f + 1e-3f * (float)i;
  x->requires_grad = true;
  gr_tensor *y = gr_gelu(c, x), *s = gr_sum(c, y, GR_AXIS_ALL, false);
  CHECK_OK(gr_backward(c, s));
  double worst_y = 0, worst_d = 0;
  for (int i = 0; i < N; i++) {
    double v = x->data[i], u = 0.7978845608028654 * (v + 0.044715 * v * v * v), t = tanh(u);
    double want_y = 0.5 * v * (1 + t);
    double want_d = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * v * v);
    worst_y = fmax(worst_y, fabs(y->data[i] - want_y) / (1 + fabs(want_y)));
    worst_d = fmax(worst_d, fabs(x->grad[i] - want_d) / (1 + fabs(want_d)));
  }
  /* |err| <= 5e-7 (1 + |want|): a few float ulps of the result */
  CHECK_MSG(worst_y < 5e-7 && worst_d < 5e-7, "gelu dense grid: worst error %g (value), %g (derivative)", worst_y,
            worst_d);
  gr_ctx_free(c);
}

int main(void) {
  gr_set_threads(1);
  test_reference();
  test_gradients();
  test_bad_input();
  test_fast_exp_and_gelu_dense();
  return test_summary();
}
