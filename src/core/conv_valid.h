/* core/conv_valid.h — internal: direct kernels for the forward and the
 * weight gradient of "valid" convolutions (stride 1, no padding, no
 * dilation, OH = H-kh+1, OW = W-kw+1; LeNet's second convolution), used by
 * ops_conv.c in place of the lowering + gemms y = W col and dW = dY col^T.
 * Not installed. Built with AVX2 + FMA; gr_conv_valid_fits() is false
 * otherwise (and for shapes it has no kernel for), and ops_conv.c keeps
 * its gemms. */
#ifndef GRAFT_CORE_CONV_VALID_H
#define GRAFT_CORE_CONV_VALID_H
#include <stdbool.h>
#include <stdint.h>

typedef struct gr_conv_valid {
  int64_t cin, cout;       /* one group's input and output channels */
  int64_t H, W, kh, kw;    /* input plane and kernel; output (H-kh+1) x (W-kw+1) */
  int64_t x_stride;        /* floats from one sample's first input plane to the next sample's */
  int64_t dy_stride;       /* floats from one sample's first output plane to the next sample's */
} gr_conv_valid;

/* Whether there are kernels for this shape (AVX2 + FMA, cout 8 or 16,
 * kw <= 6) and they are enabled. */
bool gr_conv_valid_fits(const gr_conv_valid *d);
/* Tests only: off makes gr_conv_valid_fits() false, so the gemm path
 * runs on this machine too (not thread-safe; set before any convolution). */
void gr_conv_valid_set_enabled(bool on);
/* y_j[o, oh, ow] = bias[o] (0 without) + sum over c, ki, kj of
 * w[o, c, ki, kj] * x_j[c, oh + ki, ow + kj] for samples j < nb (y_j = y +
 * j*dy_stride); scratch: cin*kh*kw*cout floats. Each output is summed in
 * the same order whatever nb and the thread count. */
void gr_conv_valid_forward(const gr_conv_valid *d, const float *x, const float *w, const float *bias, int64_t nb,
                           float *scratch, float *y);
/* Floats of the scratch gr_conv_valid_wgrad needs for nb samples. */
int64_t gr_conv_valid_wgrad_scratch(const gr_conv_valid *d, int64_t nb);
/* dw[o, c, ki, kj] = sum over samples j < nb, then output rows and columns
 * in order, of dy_j[o, oh, ow] * x_j[c, oh + ki, ow + kj] (written, not
 * added to); x_j = x + j*x_stride [cin, H, W], dy_j = dy + j*dy_stride
 * [cout, OH, OW]. The sum order depends on nb only, not on the thread
 * count. */
void gr_conv_valid_wgrad(const gr_conv_valid *d, const float *x, const float *dy, int64_t nb, float *scratch,
                         float *dw);

#endif
