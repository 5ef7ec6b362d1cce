/* matmul and linear: PyTorch reference (forward + backward, incl. one-row
 * products), finite-difference gradients, shape errors; linear on the
 * direct gemm kernels (core/gemm_direct.c) with and without them, and the
 * bits of its rows independent of the batch size and of the thread count. */
#include <math.h>
#include <string.h>

#include "core/gemm_direct.h"
#include "gradcheck.h"
#include "graft/rng.h"
#include "refdata.h"

typedef struct { bool ta, tb; } mm_opt;

static gr_tensor *f_matmul(gr_ctx *c, gr_tensor **in, void *ud) {
  mm_opt *o = ud;
  return gr_matmul(c, in[0], in[1], o->ta, o->tb);
}
static gr_tensor *f_linear(gr_ctx *c, gr_tensor **in, void *ud) { return gr_linear(c, in[0], in[1], in[2]); }
static gr_tensor *f_linear_nb(gr_ctx *c, gr_tensor **in, void *ud) { return gr_linear(c, in[0], in[1], NULL); }
static gr_tensor *f_square_use(gr_ctx *c, gr_tensor **in, void *ud) { /* a used twice */
  return gr_matmul(c, in[0], in[0], false, true);
}

/* y, dx, dw, db (NULL: no bias) of linear on x[rows, in], w[out, in] with
 * the seed gradient gy[rows, out]; each a gr_malloc'd copy. */
static void linear_run(const float *x, const float *w, const float *b, const float *gy, int64_t rows, int64_t out,
                       int64_t in, float *got[4]) {
  gr_ctx *c = gr_ctx_new(1 << 22, 1);
  gr_tensor *tx = gr_leaf(c, 2, GR_SHAPE(rows, in), x), *tw = gr_leaf(c, 2, GR_SHAPE(out, in), w);
  gr_tensor *tb = b ? gr_leaf(c, 1, GR_SHAPE(out), b) : NULL;
  gr_tensor *y = tx && tw ? gr_linear(c, tx, tw, tb) : NULL;
  CHECK(y != NULL);
  if (y) CHECK_OK(gr_backward_seed(c, y, gy));
  gr_tensor *all[4] = {y, tx, tw, tb};
  for (int i = 0; i < 4; i++) {
    got[i] = NULL;
    if (!y || !all[i]) continue;
    size_t bytes = (size_t)all[i]->numel * sizeof(float);
    got[i] = gr_malloc(bytes);
    memcpy(got[i], i ? all[i]->grad : y->data, bytes);
  }
  gr_ctx_free(c);
}

static void free4(float *p[4]) {
  for (int i = 0; i < 4; i++) gr_free(p[i]);
}

/* x [rows, in], w [out, in], b [out], gy [rows, out]: uniform in [-1, 1) from seed. */
static void random_linear(uint64_t seed, float *x, float *w, float *b, float *gy, int64_t rows, int64_t out,
                          int64_t in) {
  gr_rng r;
  gr_rng_seed(&r, seed);
  gr_rng_fill_uniform(&r, x, rows * in, -1, 1);
  gr_rng_fill_uniform(&r, w, out * in, -1, 1);
  gr_rng_fill_uniform(&r, b, out, -1, 1);
  gr_rng_fill_uniform(&r, gy, rows * out, -1, 1);
}

/* On the direct kernels, a row's y and dx have the same bits in a batch of
 * any size (rows 0..sub-1 run alone), and y, dx, dw, db the same bits at
 * 1, 2 and 3 threads (the MLP's first layer: split over the threads). */
static void test_linear_direct_bits(void) {
  enum { ROWS = 64, OUT = 256, IN = 784 };
  CHECK(gr_gemm_direct_fits(false, true, ROWS, OUT, IN) && gr_gemm_direct_fits(false, false, ROWS, IN, OUT) &&
        gr_gemm_direct_fits(true, false, OUT, IN, ROWS));
  static float x[ROWS * IN], w[OUT * IN], b[OUT], gy[ROWS * OUT];
  random_linear(21, x, w, b, gy, ROWS, OUT, IN);
  float *want[4], *got[4];
  int64_t len[4] = {ROWS * OUT, ROWS * IN, OUT * IN, OUT};
  static const char *what[4] = {"y", "dx", "dw", "db"};
  linear_run(x, w, b, gy, ROWS, OUT, IN, want);
  static const int64_t subs[] = {1, 3, 5, 33};
  for (size_t s = 0; s < sizeof subs / sizeof subs[0]; s++) {
    linear_run(x, w, b, gy, subs[s], OUT, IN, got);
    for (int i = 0; i < 2; i++)
      CHECK_MSG(got[i] && want[i] && !memcmp(got[i], want[i], (size_t)(len[i] / ROWS * subs[s]) * sizeof(float)),
                "linear %dx%d->%d: %s of the first %lld rows differs from the whole batch's", ROWS, IN, OUT, what[i],
                (long long)subs[s]);
    free4(got);
  }
  static const int threads[] = {2, 3};
  for (int t = 0; t < 2; t++) {
    gr_set_threads(threads[t]);
    linear_run(x, w, b, gy, ROWS, OUT, IN, got);
    for (int i = 0; i < 4; i++)
      CHECK_MSG(got[i] && want[i] && !memcmp(got[i], want[i], (size_t)len[i] * sizeof(float)),
                "linear %dx%d->%d: %s at %d threads differs from 1 thread", ROWS, IN, OUT, what[i], threads[t]);
    free4(got);
  }
  gr_set_threads(1);
  free4(want);
}

/* The forward's NT kernel on 6-row panels of W (AVX-512VL) and on 3-row
 * ones: the same bits for every out % 6 and tails in rows and in. */
static void test_linear_wide_panels(void) {
  enum { ROWS = 67, IN = 117, MAXOUT = 29 };
  static float x[ROWS * IN], w[MAXOUT * IN], b[MAXOUT], gy[ROWS * MAXOUT];
  random_linear(23, x, w, b, gy, ROWS, MAXOUT, IN);
  for (int64_t out = 24; out <= MAXOUT; out++) {
    float *wide[4], *narrow[4];
    CHECK(gr_gemm_direct_fits(false, true, ROWS, out, IN));
    linear_run(x, w, out % 2 ? b : NULL, gy, ROWS, out, IN, wide);
    gr_gemm_direct_set_wide(false);
    linear_run(x, w, out % 2 ? b : NULL, gy, ROWS, out, IN, narrow);
    gr_gemm_direct_set_wide(true);
    CHECK_MSG(wide[0] && narrow[0] && !memcmp(wide[0], narrow[0], (size_t)(ROWS * out) * sizeof(float)),
              "linear %dx%d->%lld: y on 6-row panels differs from 3-row ones", ROWS, IN, (long long)out);
    free4(wide);
    free4(narrow);
  }
}

/* The torch references of linear_direct_* (shapes with tails in every
 * blocking), on the direct kernels and again on OpenBLAS; a gradcheck. */
static void test_linear_direct_ref(void) {
  static const char *xw[] = {"x", "w"}, *xwb[] = {"x", "w", "b"};
  static const struct { const char *name; int64_t rows, out, in; bool bias; } cases[] = {
      {"a", 70, 19, 116, true}, {"b", 33, 20, 112, false}, {"c", 67, 17, 120, true},
      {"d", 8, 16, 110, true},  {"e", 5, 18, 104, true},   {"f", 96, 48, 784, true},
      {"g", 64, 21, 256, true}};
  char name[64];
  for (int on = 1; on >= 0; on--) {
    gr_gemm_direct_set_enabled(on);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      int64_t m = cases[i].rows, o = cases[i].out, k = cases[i].in;
      CHECK_MSG(!on || (gr_gemm_direct_fits(false, true, m, o, k) && gr_gemm_direct_fits(false, false, m, k, o) &&
                        gr_gemm_direct_fits(true, false, o, k, m)),
                "linear_direct_%s: not on the direct kernels", cases[i].name);
      snprintf(name, sizeof name, "linear_direct_%s", cases[i].name);
      if (cases[i].bias)
        CHECK_REF(name, f_linear, NULL, 3, xwb);
      else
        CHECK_REF(name, f_linear_nb, NULL, 2, xw);
    }
  }
  gr_gemm_direct_set_enabled(true);
  CHECK(gr_gemm_direct_fits(false, true, 6, 17, 98) && gr_gemm_direct_fits(false, false, 6, 98, 17) &&
        gr_gemm_direct_fits(true, false, 17, 98, 6));
  gr_rng r;
  gr_rng_seed(&r, 5);
  gc_input lin[3] = {gc_rand(&r, 2, GR_SHAPE(6, 98), -1, 1, true), gc_rand(&r, 2, GR_SHAPE(17, 98), -1, 1, true),
                     gc_rand(&r, 1, GR_SHAPE(17), -1, 1, true)};
  CHECK_GRAD("linear on the direct kernels", f_linear, NULL, 3, lin);
  for (int k = 0; k < 3; k++) gc_input_free(&lin[k]);
}

int main(void) {
  static const char *ab[] = {"a", "b"}, *xwb[] = {"x", "w", "b"};
  char name[64];
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      mm_opt o = {ta, tb};
      const char *kinds[] = {"2d", "batched", "shared", "row"};
      for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "matmul_%s_t%d%d", kinds[k], ta, tb);
        CHECK_REF(name, f_matmul, &o, 2, ab);
      }
      gr_rng r;
      gr_rng_seed(&r, 7);
      gc_input in[2] = {gc_rand(&r, 3, ta ? GR_SHAPE(2, 4, 3) : GR_SHAPE(2, 3, 4), -1, 1, true),
                        gc_rand(&r, 2, tb ? GR_SHAPE(5, 4) : GR_SHAPE(4, 5), -1, 1, true)};
      snprintf(name, sizeof name, "matmul_shared_t%d%d", ta, tb);
      CHECK_GRAD(name, f_matmul, &o, 2, in);
      gc_input_free(&in[0]);
      gc_input_free(&in[1]);
    }
  mm_opt o0 = {0, 0};
  CHECK_REF("matmul_edge1", f_matmul, &o0, 2, ab);
  CHECK_REF("linear_bias", f_linear, NULL, 3, xwb);
  CHECK_REF("linear_nobias", f_linear_nb, NULL, 2, xwb);
  CHECK_REF("linear_row", f_linear, NULL, 3, xwb);

  gr_rng r;
  gr_rng_seed(&r, 3);
  gc_input lin[3] = {gc_rand(&r, 3, GR_SHAPE(2, 2, 5), -1, 1, true), gc_rand(&r, 2, GR_SHAPE(3, 5), -1, 1, true),
                     gc_rand(&r, 1, GR_SHAPE(3), -1, 1, true)};
  CHECK_GRAD("linear", f_linear, NULL, 3, lin);
  gc_input sq[1] = {gc_rand(&r, 2, GR_SHAPE(3, 4), -1, 1, true)};
  CHECK_GRAD("matmul a@a^T (input used twice)", f_square_use, NULL, 1, sq);
  for (int k = 0; k < 3; k++) gc_input_free(&lin[k]);
  gc_input_free(&sq[0]);

  /* bad input: error status and message, never a crash */
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *a = gr_tensor_new(c, 2, GR_SHAPE(2, 3)), *b = gr_tensor_new(c, 2, GR_SHAPE(4, 5));
  gr_tensor *v = gr_tensor_new(c, 1, GR_SHAPE(3));
  CHECK_FAILS(gr_matmul(c, a, b, false, false), GR_ESHAPE);
  CHECK_FAILS(gr_matmul(c, a, v, false, false), GR_ESHAPE);
  CHECK_FAILS(gr_matmul(c, NULL, b, false, false), GR_EARG);
  CHECK_FAILS(gr_linear(c, a, b, NULL), GR_ESHAPE);
  CHECK_FAILS(gr_linear(c, a, NULL, NULL), GR_EARG);
  gr_tensor *z = gr_tensor_new(c, 2, GR_SHAPE(0, 3)), *w = gr_tensor_new(c, 2, GR_SHAPE(3, 2));
  gr_tensor *zy = gr_matmul(c, z, w, false, false);
  CHECK(zy && zy->shape[0] == 0 && zy->shape[1] == 2);
  gr_ctx_free(c);
  test_linear_direct_ref();
  test_linear_direct_bits();
  test_linear_wide_panels();
  return test_summary();
}
