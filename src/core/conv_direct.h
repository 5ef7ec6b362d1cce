/* core/conv_direct.h — internal: direct (im2col-free) convolution kernels
 * for ops_conv.c. Not installed. A convolution is described by its taps
 * (gr_conv_taps): output (oh, ow) of output channel o is
 *   sum over input channels c and taps t of wk[o, c, t] * xp[c*cstride + toff[t] + oh*pitch + ow]
 * over planes xp that the caller prepared: for a same-size stride-1
 * convolution a zero-padded copy of the input (gr_conv_direct_pad), for a
 * strided or padded one ops_conv.c's phase-split copy (a stride-2 tap reads
 * a contiguous slice of one phase). Every output row is computed in
 * registers, blocks of output channels x 8-float vectors along the row,
 * with no lowering and no gemm packing (those were half of a ResNet-8
 * convolution's time at 16 channels: each lowered element is used only
 * cout times). The input gradient is either the same kernel on a padded dY
 * with the kernel flipped (same-size) or gr_conv_taps_dx, which adds each
 * tap's W^T dY into the planes (strided; ops_conv.c adds the phases back).
 * Built with AVX2 + FMA; gr_conv_direct_available() is false otherwise and
 * ops_conv.c takes its gemm paths. Every function works on the channels and
 * the sample it is given, so a caller may split the work over threads by
 * sample or by group. */
#ifndef GRAFT_CORE_CONV_DIRECT_H
#define GRAFT_CORE_CONV_DIRECT_H
#include <stdbool.h>
#include <stdint.h>

#define GR_CONV_TAPS_MAX 64 /* kernels with more taps take the gemm paths */
/* Floats past the last plane element that gr_conv_taps_forward may read
 * (vectors running past a row's end; what they compute is dropped). */
#define GR_CONV_TAPS_SLACK 16

typedef struct gr_conv_taps {
  int64_t cin, cout;               /* input planes, output channels */
  int64_t OH, OW;                  /* output plane; y and dY are dense [cout, OH, OW] */
  int64_t pitch;                   /* output row oh reads planes from oh*pitch on */
  int64_t cstride;                 /* floats from one input channel's planes to the next */
  int64_t kk;                      /* taps per channel, 1..GR_CONV_TAPS_MAX */
  int64_t toff[GR_CONV_TAPS_MAX];  /* where tap t reads, within a channel's planes */
} gr_conv_taps;

/* Same-size stride-1 geometry (OH = H, OW = W). */
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
/* The taps of d over gr_conv_direct_pad's planes (kh*kw <= GR_CONV_TAPS_MAX). */
void gr_conv_direct_taps(const gr_conv_direct *d, gr_conv_taps *t);

/* y[o, oh, ow] = (accumulate ? y : 0) + (bias ? bias[o] : 0)
 *   + sum over c, t of wk[o, c, t] * xp[c*cstride + toff[t] + oh*pitch + ow],
 * wk [cout, cin, kk]. May read GR_CONV_TAPS_SLACK floats past the planes. */
void gr_conv_taps_forward(const gr_conv_taps *t, const float *xp, const float *wk, const float *bias,
                          bool accumulate, float *y);
/* dw[o, c, t] += sum over oh, ow of dy[o, oh, ow] * xp[c*cstride + toff[t] + oh*pitch + ow]. */
void gr_conv_taps_wgrad(const gr_conv_taps *t, const float *xp, const float *dy, float *dw);
/* The weight gradient transposed, assigned: dwt[c*kk + t, o] = sum over oh, ow of
 * dy[o, oh, ow] * xp[c*cstride + toff[t] + oh*pitch + ow], dwt [cin*kk, cout],
 * through dyt (gr_conv_taps_wgrad_t_scratch floats: dY transposed to
 * [OH*OW, cout], so the sum over the plane is the long loop of a register
 * tile of 6 columns x 16 outputs, as the forward's; gr_conv_taps_wgrad's
 * tiles sum short rows and add up their lanes, at half the FMA rate on
 * ResNet-8's strided convs). Only where gr_conv_taps_wgrad_t_fits: AVX2 and
 * cout a multiple of 8. */
bool gr_conv_taps_wgrad_t_fits(const gr_conv_taps *t);
int64_t gr_conv_taps_wgrad_t_scratch(const gr_conv_taps *t);
void gr_conv_taps_wgrad_t(const gr_conv_taps *t, const float *xp, const float *dy, float *dyt, float *dwt);
/* xp[c*cstride + toff[t] + oh*pitch + ow] += sum over o of wk[o, c, t] * dy[o, oh, ow]
 * (every t in turn: the gradient of the planes that gr_conv_taps_forward read). */
void gr_conv_taps_dx(const gr_conv_taps *t, const float *dy, const float *wk, float *xp);

#if defined(__AVX2__)
#include <immintrin.h>
/* r[j] = lane j of r[0..7] as they were: an 8x8 transpose in registers
 * (Winograd's weight gradient, gr_conv_taps_wgrad_t's dY). */
static inline void gr_transpose8_ps(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; i++) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x20);
    r[4 + i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x31);
  }
}
#endif

#endif
