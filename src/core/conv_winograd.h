/* core/conv_winograd.h — internal: Winograd F(2x2, 3x3) for same-size 3x3
 * convolutions (stride 1, dilation 1, padding 1: every stride-1 conv of a
 * ResNet), used by ops_conv.c for the forward and for dx (the same
 * convolution of dY with the flipped, transposed kernel). Not installed.
 *
 * Each 2x2 block of outputs is A^T [sum over c of U[c] . (B^T d_c B)] A,
 * d_c the 4x4 input patch of channel c and U[c] = G g G^T the 4x4 transform
 * of its 3x3 kernel: 16 multiply-adds per input channel instead of 36. The
 * product stage is 16 matrix products U[pos] [cout, cin] x V[pos] [cin,
 * tiles], register-tiled like conv_direct.c's kernels (6 outputs x 16
 * tiles); the input and output transforms are vector adds over 8 tiles at a
 * time. Rounding differs from the direct sum (the transforms add and
 * subtract neighbours; G holds halves), by a few ulps of the operands.
 * Works on the padded planes of gr_conv_direct_pad and on one sample, so
 * the caller's thread split and the bits per sample are as for the direct
 * kernels. AVX2 + FMA only: gr_conv_wino_fits() is false otherwise. */
#ifndef GRAFT_CORE_CONV_WINOGRAD_H
#define GRAFT_CORE_CONV_WINOGRAD_H
#include <stdbool.h>
#include <stdint.h>

#include "core/conv_direct.h"

/* d is a 3x3, dilation 1, padding 1 convolution whose planes tile into
 * chunks of 8 2x2 tiles (even H and W; W/2 a multiple of 8, or W = 8 with
 * H/2 even), with AVX2 and at least 8 input and output channels (fewer
 * leave the transforms as much work as the products they save). */
bool gr_conv_wino_fits(const gr_conv_direct *d);
/* Tests only: off makes gr_conv_wino_fits() false (not thread-safe). */
void gr_conv_wino_set_enabled(bool on);
/* u [16, cout, cin] = G wk[o, c] G^T for wk [cout, cin, 3, 3]. */
void gr_conv_wino_weights(int64_t cout, int64_t cin, const float *wk, float *u);
/* Floats of gr_conv_wino_forward's scratch. */
int64_t gr_conv_wino_scratch_floats(const gr_conv_direct *d);
/* y [cout, H, W] = (accumulate ? y : 0) + (bias ? bias[o] : 0) + conv(x, wk)
 * from xp = gr_conv_direct_pad(d, x) and u = gr_conv_wino_weights(wk). */
void gr_conv_wino_forward(const gr_conv_direct *d, const float *xp, const float *u, const float *bias,
                          bool accumulate, float *scratch, float *y);

/* Weight gradient: d fits Winograd and has a multiple of 8 input channels
 * (the product sums over tiles with 8 channels in the vector lanes). */
bool gr_conv_wino_wgrad_fits(const gr_conv_direct *d);
/* Floats of gr_conv_wino_wgrad's scratch. */
int64_t gr_conv_wino_wgrad_scratch_floats(const gr_conv_direct *d);
/* du [16, cout, cin] = sum over tiles of (A dY A^T)[pos] (B^T d B)[pos] for
 * one sample: the gradient of u in gr_conv_wino_forward, from xp =
 * gr_conv_direct_pad(d, x) and dy [cout, H, W]. Linear in dY, so a batch's
 * du may be summed first and turned into dW once (gr_conv_wino_wgrad_add). */
void gr_conv_wino_wgrad(const gr_conv_direct *d, const float *xp, const float *dy, float *scratch, float *du);
/* dw [cout, cin, 3, 3] += G^T du[:, o, c] G. */
void gr_conv_wino_wgrad_add(int64_t cout, int64_t cin, const float *du, float *dw);

#endif
