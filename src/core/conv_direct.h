/* core/conv_direct.h — internal: direct (im2col-free) kernels for the
 * same-size stride-1 convolutions of ops_conv.c (OH = H, OW = W). Not
 * installed. One plane group at a time: the input's cin planes are copied
 * zero-padded (gr_conv_direct_pad), then every output row is computed from
 * them in registers, blocks of output channels x 8-float vectors along the
 * row, with no lowering and no gemm packing (those were half of a ResNet-8
 * convolution's time at 16 channels: each lowered element is used only
 * cout times). Built with AVX2 + FMA; gr_conv_direct_available() is false
 * otherwise and ops_conv.c takes its gemm path. */
#ifndef GRAFT_CORE_CONV_DIRECT_H
#define GRAFT_CORE_CONV_DIRECT_H
#include <stdbool.h>
#include <stdint.h>

typedef struct gr_conv_direct {
  int64_t cin, cout, H, W; /* input planes [cin, H, W], output [cout, H, W] */
  int64_t kh, kw, dh, dw;  /* kernel and dilation */
  int64_t ph, pw;          /* padding: 2*ph = dh*(kh-1), 2*pw = dw*(kw-1) */
} gr_conv_direct;

bool gr_conv_direct_available(void);
/* Tests only: off makes gr_conv_direct_available() false, so the gemm path
 * runs on this machine too (not thread-safe; set before any convolution). */
void gr_conv_direct_set_enabled(bool on);
/* Floats of the padded copy of one input (gr_conv_direct_pad's xp). */
int64_t gr_conv_direct_pad_floats(const gr_conv_direct *d);
/* xp = x [cin, H, W] zero-padded (and with zero columns on the right that
 * the last vector of a row may read). With borders_zero, xp already holds
 * a padded copy of the same geometry (of another sample): only x's rows are
 * copied (the per-sample zeroing and row-sized copies were 5% of a ResNet-8
 * step). */
void gr_conv_direct_pad(const gr_conv_direct *d, const float *x, float *xp, bool borders_zero);
/* y[o, h, w] = (accumulate ? y[o, h, w] : 0) + (bias ? bias[o] : 0)
 *   + sum over c, ki, kj of wk[o, c, ki, kj] * x[c, h + ki*dh - ph, w + kj*dw - pw]
 * (x zero outside), xp from gr_conv_direct_pad, wk [cout, cin, kh, kw]. */
void gr_conv_direct_run(const gr_conv_direct *d, const float *xp, const float *wk, const float *bias,
                        bool accumulate, float *y);
/* dw[o, c, ki, kj] += sum over h, w of dy[o, h, w] * x[c, h + ki*dh - ph, w + kj*dw - pw]:
 * the kernel's gradient, from xp = gr_conv_direct_pad(d, x) and dyp, dy
 * [cout, H, W] padded as an input of the same geometry with cin = cout
 * (gr_conv_direct_pad of {cout, cin, ...}; its zero columns past W make
 * the columns computed there add nothing). */
void gr_conv_direct_wgrad(const gr_conv_direct *d, const float *xp, const float *dyp, float *dw);

#endif
