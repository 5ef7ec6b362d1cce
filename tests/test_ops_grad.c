/* dropout and grad_reverse.
 * grad_reverse: PyTorch reference (an autograd.Function), and a finite-
 * difference check at lambda = -1, the only lambda where the backward is
 * the forward's true derivative (identity) — for any other lambda the op is
 * by design not the gradient of its forward.
 * dropout: PyTorch's RNG stream cannot be reproduced, so instead of a
 * reference the test checks the mask statistics (drop rate, inverted
 * scaling, mean preserved), that backward uses the forward's mask, the same
 * mask for the same seed, eval and p = 0 as identity, finite differences
 * (gradcheck replays the same seed, hence the same mask), and bad p. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "refdata.h"

static gr_tensor *f_grad_reverse_ref(gr_ctx *c, gr_tensor **in, void *ud) {
  return gr_grad_reverse(c, in[0], in[1]->data[0]);
}
static gr_tensor *f_grad_reverse(gr_ctx *c, gr_tensor **in, void *ud) { return gr_grad_reverse(c, in[0], -1.0f); }
static gr_tensor *f_dropout(gr_ctx *c, gr_tensor **in, void *ud) { return gr_dropout(c, in[0], *(float *)ud); }

static void test_grad_reverse(void) {
  static const char *in[] = {"x", "lam"};
  CHECK_REF("grad_reverse", f_grad_reverse_ref, NULL, 2, in);
  CHECK_REF("grad_reverse_neg", f_grad_reverse_ref, NULL, 2, in);
  CHECK_REF("grad_reverse_empty", f_grad_reverse_ref, NULL, 2, in);
  gr_rng r;
  gr_rng_seed(&r, 21);
  gc_input x = gc_rand(&r, 2, GR_SHAPE(3, 4), -1, 1, true);
  CHECK_GRAD("grad_reverse lambda=-1", f_grad_reverse, NULL, 1, &x);
  gc_input_free(&x);
  gr_ctx *c = gr_ctx_new(1 << 12, 1);
  gr_tensor *t = gr_tensor_new(c, 1, GR_SHAPE(2));
  CHECK_FAILS(gr_grad_reverse(c, NULL, 1) != NULL, GR_EARG);
  CHECK_FAILS(gr_grad_reverse(c, t, NAN) != NULL, GR_EARG);
  gr_ctx_free(c);
}

static void test_dropout_statistics(void) {
  enum { N = 200000 };
  const float p = 0.3f;
  gr_ctx *c = gr_ctx_new(1 << 20, 42);
  gr_tensor *x = gr_leaf(c, 1, GR_SHAPE(N), NULL);
  gr_tensor_fill(x, 1.0f);
  gr_tensor *y = gr_dropout(c, x, p);
  CHECK_PTR(y);
  if (!y) {
    gr_ctx_free(c);
    return;
  }
  int64_t zeros = 0, scaled = 0;
  double mean = 0;
  for (int64_t i = 0; i < N; i++) {
    zeros += y->data[i] == 0.0f;
    scaled += y->data[i] == 1.0f / (1.0f - p);
    mean += y->data[i];
  }
  /* 5 sigma of Binomial(N, 0.3) is 0.0051 */
  CHECK_NEAR((double)zeros / N, p, 0.0051);
  CHECK(zeros + scaled == N); /* every kept element is scaled by exactly 1/(1-p) */
  CHECK_NEAR(mean / N, 1.0, 0.0075);
  /* backward multiplies by the same mask */
  float *gy = malloc(N * sizeof(float));
  gr_rng r;
  gr_rng_seed(&r, 3);
  gr_rng_fill_uniform(&r, gy, N, -1, 1);
  CHECK_OK(gr_backward_seed(c, y, gy));
  bool same_mask = true;
  for (int64_t i = 0; i < N; i++) same_mask &= x->grad[i] == gy[i] * y->data[i];
  CHECK(same_mask);
  free(gy);
  gr_ctx_free(c);
}

static void test_dropout_rules(void) {
  gr_ctx *a = gr_ctx_new(1 << 16, 7), *b = gr_ctx_new(1 << 16, 7), *d = gr_ctx_new(1 << 16, 8);
  float v[64];
  for (int i = 0; i < 64; i++) v[i] = (float)i - 31.5f;
  gr_tensor *ya = gr_dropout(a, gr_tensor_from(a, 1, GR_SHAPE(64), v), 0.5f);
  gr_tensor *yb = gr_dropout(b, gr_tensor_from(b, 1, GR_SHAPE(64), v), 0.5f);
  gr_tensor *yd = gr_dropout(d, gr_tensor_from(d, 1, GR_SHAPE(64), v), 0.5f);
  CHECK(ya && yb && yd && !memcmp(ya->data, yb->data, sizeof v)); /* same seed, same mask */
  CHECK(ya && yd && memcmp(ya->data, yd->data, sizeof v) != 0);   /* another seed, another mask */
  /* eval mode and p = 0: identity forward and backward */
  for (int mode = 0; mode < 2; mode++) {
    gr_ctx_set_training(a, mode == 1);
    gr_tensor *x = gr_leaf(a, 1, GR_SHAPE(64), v);
    gr_tensor *y = gr_dropout(a, x, mode == 1 ? 0.0f : 0.9f);
    CHECK(y && !memcmp(y->data, v, sizeof v));
    gr_ctx_reset(a);
    x = gr_leaf(a, 1, GR_SHAPE(64), v);
    y = gr_dropout(a, x, mode == 1 ? 0.0f : 0.9f);
    CHECK_OK(gr_backward_seed(a, y, v));
    CHECK(y && x->grad && !memcmp(x->grad, v, sizeof v));
    gr_ctx_reset(a);
  }
  gr_tensor *x = gr_tensor_new(a, 1, GR_SHAPE(4));
  CHECK_FAILS(gr_dropout(a, x, 1.0f) != NULL, GR_EARG);
  CHECK_FAILS(gr_dropout(a, x, -0.1f) != NULL, GR_EARG);
  CHECK_FAILS(gr_dropout(a, x, NAN) != NULL, GR_EARG);
  CHECK_FAILS(gr_dropout(a, NULL, 0.5f) != NULL, GR_EARG);
  CHECK_FAILS(gr_dropout(NULL, x, 0.5f) != NULL, GR_EARG);
  gr_ctx_free(a);
  gr_ctx_free(b);
  gr_ctx_free(d);

  gr_rng r;
  gr_rng_seed(&r, 23);
  gc_input in = gc_rand(&r, 2, GR_SHAPE(4, 5), -1, 1, true);
  float p = 0.4f;
  CHECK_GRAD("dropout", f_dropout, &p, 1, &in);
  gc_input_free(&in);
}

int main(void) {
  gr_set_threads(1);
  test_grad_reverse();
  test_dropout_statistics();
  test_dropout_rules();
  return test_summary();
}
