/* max_pool2d without padding takes a branch-free path (ops_pool.c); this
 * checks it keeps the semantics of the general loop on the inputs where the
 * two could differ: ties (first maximum wins, and gets the gradient) and
 * NaN (the first NaN wins). Reference: a plain scan of each window here. */
#include <math.h>

#include "testutil.h"

/* The window's (value, flat index) by the rule: row-major scan, take a value
 * greater than the best so far, the first NaN ends the scan. */
static void window_ref(const float *x, int64_t W, int64_t h0, int64_t w0, int k, float *best, int64_t *at) {
  *at = -1;
  for (int i = 0; i < k; i++)
    for (int j = 0; j < k; j++) {
      int64_t idx = (h0 + i) * W + w0 + j;
      float v = x[idx];
      if (*at < 0 || v > *best || isnan(v)) {
        *best = v;
        *at = idx;
        if (isnan(v)) return;
      }
    }
}

/* relu: the fused gr_max_pool2d_relu, whose output is max(best, 0) (NaN
 * stays NaN) and whose gradient reaches the argmax only where that is > 0. */
static void check_pool(int k, int stride, bool relu, int64_t H) {
  enum { N = 2, C = 3, W = 8, HMAX = 8 };
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_rng r;
  gr_rng_seed(&r, 5);
  float x[N * C * HMAX * W];
  for (int i = 0; i < N * C * H * W; i++) x[i] = (float)gr_rng_below(&r, 3) - (relu ? 1.0f : 0.0f); /* many ties */
  x[3] = NAN, x[4] = NAN, x[W + 3] = NAN, x[2 * H * W + 17] = NAN;
  gr_tensor *xt = gr_leaf(c, 4, GR_SHAPE(N, C, H, W), x);
  gr_pool2d_opts o = {.kernel_h = k, .kernel_w = k, .stride_h = stride, .stride_w = stride};
  gr_tensor *y = relu ? gr_max_pool2d_relu(c, xt, &o) : gr_max_pool2d(c, xt, &o);
  CHECK(y != NULL);
  if (!y) return gr_ctx_free(c);
  int64_t OH = (H - k) / stride + 1, OW = (W - k) / stride + 1;
  CHECK(y->shape[2] == OH && y->shape[3] == OW);
  float seed[N * C * HMAX * W], dx_ref[N * C * HMAX * W] = {0};
  for (int64_t i = 0; i < y->numel; i++) seed[i] = (float)(i + 1); /* distinct: shows where each went */
  for (int64_t p = 0, i = 0; p < N * C; p++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++, i++) {
        float best;
        int64_t at;
        window_ref(x + p * H * W, W, oh * stride, ow * stride, k, &best, &at);
        float want = relu && best < 0 ? 0.0f : best;
        CHECK_MSG(isnan(want) ? isnan(y->data[i]) : y->data[i] == want, "k%d s%d relu %d output %lld", k, stride,
                  relu, (long long)i);
        dx_ref[p * H * W + at] += !relu || want > 0 ? seed[i] : 0.0f;
      }
  CHECK_OK(gr_backward_seed(c, y, seed));
  for (int i = 0; i < N * C * H * W; i++)
    CHECK_MSG(xt->grad[i] == dx_ref[i], "k%d s%d relu %d dx[%d] = %g, want %g", k, stride, relu, i, xt->grad[i],
              dx_ref[i]);
  gr_ctx_free(c);
}

int main(void) {
  for (int relu = 0; relu < 2; relu++) {
    check_pool(2, 2, relu, 7); /* LeNet's pooling; an odd height leaves a row out */
    check_pool(2, 2, relu, 8); /* windows tiling the plane: backward writes dx whole */
    check_pool(3, 1, relu, 7); /* overlapping windows */
    check_pool(3, 2, relu, 7);
  }
  return test_summary();
}
