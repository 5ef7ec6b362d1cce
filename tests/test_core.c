/* Core: arenas, allocation counting, rng, shape checks, errors, tape rules. */
#include <math.h>
#include <string.h>

#include "testutil.h"

static void test_arena(void) {
  gr_arena *a = gr_arena_new(4096);
  CHECK_PTR(a);
  void *p = gr_arena_alloc(a, 10);
  CHECK(p && ((uintptr_t)p % 64) == 0);
  for (int i = 0; i < 100; i++) CHECK(gr_arena_alloc(a, 1000) != NULL); /* grows past first block */
  size_t cap = gr_arena_capacity(a);
  gr_arena_reset(a);
  CHECK(gr_arena_used(a) == 0);
  uint64_t before = gr_alloc_count();
  for (int i = 0; i < 100; i++) gr_arena_alloc(a, 1000); /* fits the coalesced block */
  CHECK(gr_alloc_count() == before);
  CHECK(gr_arena_capacity(a) == cap);
  CHECK_FAILS(gr_arena_alloc(a, SIZE_MAX - 10) != NULL, GR_ENOMEM);
  gr_arena_free(a);
}

static void test_rng(void) {
  gr_rng a, b;
  gr_rng_seed(&a, 42);
  gr_rng_seed(&b, 42);
  bool same = true;
  for (int i = 0; i < 1000; i++) same &= gr_rng_next(&a) == gr_rng_next(&b);
  CHECK(same);
  gr_rng_seed(&a, 1);
  double s = 0, s2 = 0;
  int n = 200000, ones = 0;
  for (int i = 0; i < n; i++) {
    double x = gr_rng_normal(&a);
    s += x;
    s2 += x * x;
    ones += gr_rng_bernoulli(&a, 0.3f);
  }
  CHECK_NEAR(s / n, 0.0, 0.01);
  CHECK_NEAR(s2 / n, 1.0, 0.02);
  CHECK_NEAR((double)ones / n, 0.3, 0.005);
  double u = 0, umin = 1, umax = 0;
  for (int i = 0; i < n; i++) {
    float x = gr_rng_uniform(&a);
    u += x;
    umin = fmin(umin, x);
    umax = fmax(umax, x);
  }
  CHECK_NEAR(u / n, 0.5, 0.005);
  CHECK(umin >= 0 && umax < 1);
  int64_t perm[1000];
  gr_rng_permutation(&a, 1000, perm);
  int seen[1000] = {0};
  bool valid = true;
  for (int i = 0; i < 1000; i++) valid &= perm[i] >= 0 && perm[i] < 1000 && !seen[perm[i]]++;
  CHECK(valid);
  gr_rng s0 = gr_rng_stream(5, 0), s1 = gr_rng_stream(5, 1), s0b = gr_rng_stream(5, 0);
  CHECK(gr_rng_next(&s0) != gr_rng_next(&s1));
  gr_rng_next(&s0b);
  CHECK(gr_rng_next(&s0) == gr_rng_next(&s0b));
}

static void test_shapes_and_errors(void) {
  gr_ctx *c = gr_ctx_new(1 << 12, 1);
  CHECK_FAILS(gr_tensor_new(c, 2, GR_SHAPE(-1, 3)) != NULL, GR_ESHAPE);
  CHECK_FAILS(gr_tensor_new(c, 9, GR_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1)) != NULL, GR_ESHAPE);
  CHECK_FAILS(gr_tensor_new(c, 3, GR_SHAPE(1 << 20, 1 << 20, 1 << 20)) != NULL, GR_ENOMEM);
  CHECK_FAILS(gr_tensor_new(NULL, 1, GR_SHAPE(3)) != NULL, GR_EARG);
  gr_tensor *s = gr_scalar(c, 2.5f);
  CHECK(s && s->ndim == 0 && s->numel == 1 && s->data[0] == 2.5f);
  gr_tensor *z = gr_tensor_new(c, 2, GR_SHAPE(0, 4));
  CHECK(z && z->numel == 0);
  char buf[64];
  CHECK(!strcmp(gr_shape_str(z, buf, sizeof buf), "[0,4]"));
  gr_tensor *nan = gr_tensor_from(c, 1, GR_SHAPE(3), (float[]){1, NAN, 2});
  CHECK_FAILS(gr_check_finite(nan, "x") == GR_OK, GR_ENUMERIC);
  CHECK(strstr(gr_last_error(), "NaN") != NULL);
  /* backward from a non-scalar, from a NaN loss, twice on one tape */
  gr_tensor *x = gr_leaf(c, 2, GR_SHAPE(2, 2), (float[]){1, 2, 3, 4});
  gr_tensor *y = gr_matmul(c, x, x, false, false);
  CHECK_FAILS(gr_backward(c, y) == GR_OK, GR_ESHAPE);
  gr_tensor *l = gr_matmul(c, gr_reshape(c, x, 2, GR_SHAPE(1, 4)), gr_reshape(c, x, 2, GR_SHAPE(4, 1)), 0, 0);
  if (l) {
    CHECK_OK(gr_backward(c, l));
    CHECK_FAILS(gr_backward(c, l) == GR_OK, GR_ESTATE);
  }
  gr_tensor *bad = gr_scalar(c, NAN);
  bad->requires_grad = true;
  CHECK_FAILS(gr_backward(c, bad) == GR_OK, GR_ENUMERIC);
  gr_ctx_free(c);
}

/* gr_find_nonfinite: first NaN/Inf at every position around its 1024 blocks. */
static void test_find_nonfinite(void) {
  enum { N = 3000 };
  static float x[N];
  for (int i = 0; i < N; i++) x[i] = (float)i - 1500.0f;
  CHECK(gr_find_nonfinite(x, N) == -1);
  CHECK(gr_find_nonfinite(x, 0) == -1);
  const float bad[] = {NAN, INFINITY, -INFINITY};
  const int64_t at[] = {0, 1, 1023, 1024, 1025, 2047, 2048, N - 1};
  for (int b = 0; b < 3; b++)
    for (int k = 0; k < 8; k++) {
      x[at[k]] = bad[b];
      CHECK(gr_find_nonfinite(x, N) == at[k]);
      CHECK(gr_find_nonfinite(x, at[k]) == -1); /* just before it: clean */
      x[at[k]] = 1.0f;
    }
  x[5] = 3.4e38f; /* largest finite values are finite */
  x[6] = -3.4e38f;
  CHECK(gr_find_nonfinite(x, N) == -1);
}

/* A parameter used twice accumulates both gradients; grad mode off records
 * nothing; reset gives an empty tape. */
static void test_tape(void) {
  gr_arena *params = gr_arena_new(1 << 12);
  gr_tensor *w = gr_tensor_new_in(params, 2, GR_SHAPE(2, 2), true);
  float wv[] = {1, 2, 3, 4};
  memcpy(w->data, wv, sizeof wv);
  gr_ctx *c = gr_ctx_new(1 << 12, 1);
  gr_tensor *x = gr_tensor_from(c, 2, GR_SHAPE(1, 2), (float[]){1, 1});
  gr_tensor *h = gr_linear(c, x, w, NULL);   /* h = x w^T = [3, 7] */
  gr_tensor *y = gr_linear(c, h, w, NULL);   /* y = h w^T = [17, 37] */
  gr_tensor *l = gr_matmul(c, y, gr_tensor_from(c, 2, GR_SHAPE(2, 1), (float[]){1, 1}), 0, 0);
  CHECK_OK(gr_backward(c, l));
  /* dL/dW = dy^T h + (dy W)^T x with dy = [1,1]: [[3,7],[3,7]] + [[4,4],[6,6]] */
  float want[] = {7, 11, 9, 13};
  CHECK_CLOSE("shared weight grad", w->grad, want, 4, 1e-6, 0);
  gr_ctx_reset(c);
  CHECK(gr_ctx_tape_len(c) == 0);
  gr_ctx_set_grad(c, false);
  x = gr_tensor_from(c, 2, GR_SHAPE(1, 2), (float[]){1, 1});
  h = gr_linear(c, x, w, NULL);
  CHECK(h && !h->requires_grad && gr_ctx_tape_len(c) == 0);
  gr_ctx_free(c);
  gr_arena_free(params);
}

int main(void) {
  test_arena();
  test_rng();
  test_shapes_and_errors();
  test_find_nonfinite();
  test_tape();
  return test_summary();
}
