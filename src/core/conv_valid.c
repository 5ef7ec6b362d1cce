/* core/conv_valid.c — the direct weight-gradient kernel for valid (stride
 * 1, unpadded, undilated) convolutions; contract in conv_valid.h.
 *
 * dW[o, c, ki, kj] = sum over samples and output pixels p = (oh, ow) of
 * dy[o, p] * x[c, oh + ki, ow + kj]. The output channels run along the
 * vector lanes (cout = 8 or 16: one or two vectors), so dy is first copied
 * transposed to dyT [nb, OH*OW, cout]; then for each input channel c and
 * kernel row ki, the kw x (cout/8) accumulators of dW[:, c, ki, :] stay in
 * registers over every sample and pixel (per pixel: cout/8 loads of dyT, kw
 * broadcasts of x's row, cout/8 * kw FMAs), and are stored once. The gemm
 * it replaces (dY col^T on the lowered input, OpenBLAS packing col on every
 * call) was a quarter of a LeNet training step. Not here: the input
 * gradient and the forward (ops_conv.c's gemms), padding, strides. */
#include "core/conv_valid.h"

#include "core/op.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CONV_VALID_SIMD 1
#else
#define CONV_VALID_SIMD 0
#endif

#define VALID_MAX_KW 6

static bool valid_enabled = true;

void gr_conv_valid_set_enabled(bool on) { valid_enabled = on; }

bool gr_conv_valid_fits(const gr_conv_valid *d) {
  return CONV_VALID_SIMD && valid_enabled && (d->cout == 8 || d->cout == 16) && d->kw >= 1 &&
         d->kw <= VALID_MAX_KW && d->kh >= 1 && d->H >= d->kh && d->W >= d->kw;
}

int64_t gr_conv_valid_wgrad_scratch(const gr_conv_valid *d, int64_t nb) {
  return nb * (d->H - d->kh + 1) * (d->W - d->kw + 1) * d->cout;
}

#if CONV_VALID_SIMD
/* t[i * ldt + l] = s[l * lds + i] for i, l < 8: one 8x8 block transposed in
 * registers (the scalar transpose was 2.6% of a LeNet training step). */
static void transpose_8x8(const float *s, int64_t lds, float *t, int64_t ldt) {
  __m256 r[8], u[8];
  for (int l = 0; l < 8; l++) r[l] = _mm256_loadu_ps(s + l * lds);
  for (int l = 0; l < 8; l += 2) {
    u[l] = _mm256_unpacklo_ps(r[l], r[l + 1]);
    u[l + 1] = _mm256_unpackhi_ps(r[l], r[l + 1]);
  }
  for (int l = 0; l < 8; l += 4) {
    r[l] = _mm256_shuffle_ps(u[l], u[l + 2], 0x44);
    r[l + 1] = _mm256_shuffle_ps(u[l], u[l + 2], 0xee);
    r[l + 2] = _mm256_shuffle_ps(u[l + 1], u[l + 3], 0x44);
    r[l + 3] = _mm256_shuffle_ps(u[l + 1], u[l + 3], 0xee);
  }
  for (int l = 0; l < 4; l++) {
    _mm256_storeu_ps(t + l * ldt, _mm256_permute2f128_ps(r[l], r[l + 4], 0x20));
    _mm256_storeu_ps(t + (l + 4) * ldt, _mm256_permute2f128_ps(r[l], r[l + 4], 0x31));
  }
}

/* dyT[j, p, o] = dy_j[o, p] for the nb samples (cout a multiple of 8). */
static void transpose_dy(const gr_conv_valid *d, const float *dy, int64_t nb, float *dyT) {
  int64_t P = (d->H - d->kh + 1) * (d->W - d->kw + 1), O = d->cout;
  for (int64_t j = 0; j < nb; j++) {
    const float *s = dy + j * d->dy_stride;
    float *t = dyT + j * P * O;
    for (int64_t o = 0; o < O; o += 8) {
      int64_t p = 0;
      for (; p + 8 <= P; p += 8) transpose_8x8(s + o * P + p, P, t + p * O + o, O);
      for (; p < P; p++)
        for (int64_t l = 0; l < 8; l++) t[p * O + o + l] = s[(o + l) * P + p];
    }
  }
}
#endif

#if CONV_VALID_SIMD
/* acc[v][kj] += dv[v] * x broadcast, for kj < KW (a constant): named
 * accumulators, not an array (GCC kept an array of them on the stack,
 * storing every one on every pixel). */
#define FMA_ROW(A, D)                                              \
  do {                                                             \
    A##0 = _mm256_fmadd_ps(D, x0, A##0);                           \
    if (KW > 1) A##1 = _mm256_fmadd_ps(D, x1, A##1);               \
    if (KW > 2) A##2 = _mm256_fmadd_ps(D, x2, A##2);               \
    if (KW > 3) A##3 = _mm256_fmadd_ps(D, x3, A##3);               \
    if (KW > 4) A##4 = _mm256_fmadd_ps(D, x4, A##4);               \
    if (KW > 5) A##5 = _mm256_fmadd_ps(D, x5, A##5);               \
  } while (0)

/* dw[8v + l, c, ki, kj] = lane l of acc (v, kj). */
static void store_lanes(const gr_conv_valid *d, __m256 acc, int v, int64_t c, int64_t ki, int kj, float *dw) {
  float lanes[8];
  _mm256_storeu_ps(lanes, acc);
  int64_t kk = d->kh * d->kw;
  for (int l = 0; l < 8; l++) dw[((8 * v + l) * d->cin + c) * kk + ki * d->kw + kj] = lanes[l];
}

/* dW[:, c, ki, :] for OV vectors of output channels and a KW-wide kernel
 * (constants after inlining: the accumulators live in registers). */
static inline __attribute__((always_inline)) void wgrad_row(const gr_conv_valid *d, const float *x, const float *dyT,
                                                            int64_t nb, int64_t c, int64_t ki, float *dw,
                                                            const int OV, const int KW) {
  int64_t OH = d->H - d->kh + 1, OW = d->W - d->kw + 1, O = d->cout;
  __m256 z = _mm256_setzero_ps(), a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, b0 = z, b1 = z, b2 = z, b3 = z,
         b4 = z, b5 = z;
  for (int64_t j = 0; j < nb; j++) {
    const float *xs = x + j * d->x_stride + (c * d->H + ki) * d->W, *ds = dyT + j * OH * OW * O;
    for (int64_t oh = 0; oh < OH; oh++) {
      const float *xr = xs + oh * d->W, *dr = ds + oh * OW * O;
      for (int64_t ow = 0; ow < OW; ow++) {
        const float *xp = xr + ow;
        __m256 x0 = _mm256_broadcast_ss(xp), x1 = z, x2 = z, x3 = z, x4 = z, x5 = z;
        if (KW > 1) x1 = _mm256_broadcast_ss(xp + 1);
        if (KW > 2) x2 = _mm256_broadcast_ss(xp + 2);
        if (KW > 3) x3 = _mm256_broadcast_ss(xp + 3);
        if (KW > 4) x4 = _mm256_broadcast_ss(xp + 4);
        if (KW > 5) x5 = _mm256_broadcast_ss(xp + 5);
        __m256 d0 = _mm256_loadu_ps(dr + ow * O);
        FMA_ROW(a, d0);
        if (OV > 1) {
          __m256 d1 = _mm256_loadu_ps(dr + ow * O + 8);
          FMA_ROW(b, d1);
        }
      }
    }
  }
  __m256 acc[2][6] = {{a0, a1, a2, a3, a4, a5}, {b0, b1, b2, b3, b4, b5}};
  for (int v = 0; v < OV; v++)
    for (int kj = 0; kj < KW; kj++) store_lanes(d, acc[v][kj], v, c, ki, kj, dw);
}
#undef FMA_ROW

/* One instantiation per (vectors, kernel width) pair. */
static void wgrad_row_any(const gr_conv_valid *d, const float *x, const float *dyT, int64_t nb, int64_t c, int64_t ki,
                          float *dw) {
#define WGRAD_CASE(OV, KW) \
  case (OV) * 8 + (KW): wgrad_row(d, x, dyT, nb, c, ki, dw, OV, KW); break;
  switch (d->cout + d->kw) {
    WGRAD_CASE(1, 1) WGRAD_CASE(1, 2) WGRAD_CASE(1, 3) WGRAD_CASE(1, 4) WGRAD_CASE(1, 5) WGRAD_CASE(1, 6)
    WGRAD_CASE(2, 1) WGRAD_CASE(2, 2) WGRAD_CASE(2, 3) WGRAD_CASE(2, 4) WGRAD_CASE(2, 5) WGRAD_CASE(2, 6)
    default: GR_ASSERT(!"conv_valid: no kernel for this shape (gr_conv_valid_fits)");
  }
#undef WGRAD_CASE
}
#endif

#if CONV_VALID_SIMD
/* acc_t += wv * x[t] broadcast for the TW (a constant) pixels of a tile. */
#define FMA_TILE(A, WV)                                            \
  do {                                                             \
    A##0 = _mm256_fmadd_ps(WV, _mm256_broadcast_ss(xp), A##0);      \
    if (TW > 1) A##1 = _mm256_fmadd_ps(WV, _mm256_broadcast_ss(xp + 1), A##1); \
    if (TW > 2) A##2 = _mm256_fmadd_ps(WV, _mm256_broadcast_ss(xp + 2), A##2); \
    if (TW > 3) A##3 = _mm256_fmadd_ps(WV, _mm256_broadcast_ss(xp + 3), A##3); \
    if (TW > 4) A##4 = _mm256_fmadd_ps(WV, _mm256_broadcast_ss(xp + 4), A##4); \
    if (TW > 5) A##5 = _mm256_fmadd_ps(WV, _mm256_broadcast_ss(xp + 5), A##5); \
  } while (0)

/* y[8v + l, pixel t] = lane l of acc (v, t); y points at the tile's first pixel. */
static void store_tile_lanes(__m256 acc, int v, int t, int64_t plane, float *y) {
  float lanes[8];
  _mm256_storeu_ps(lanes, acc);
  for (int l = 0; l < 8; l++) y[(8 * v + l) * plane + t] = lanes[l];
}

/* One tile: output row oh, columns ow0..ow0+TW-1, every output channel
 * (OV vectors), over every tap of wT [cin, kh, kw, cout]; bias first. */
static inline __attribute__((always_inline)) void forward_tile(const gr_conv_valid *d, const float *x, const float *wT,
                                                               const float *bias, int64_t oh, int64_t ow0, float *y,
                                                               const int OV, const int TW) {
  int64_t O = d->cout, plane = (d->H - d->kh + 1) * (d->W - d->kw + 1), OW = d->W - d->kw + 1;
  __m256 z = _mm256_setzero_ps(), a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, b0 = z, b1 = z, b2 = z, b3 = z,
         b4 = z, b5 = z;
  if (bias) {
    a0 = a1 = a2 = a3 = a4 = a5 = _mm256_loadu_ps(bias);
    if (OV > 1) b0 = b1 = b2 = b3 = b4 = b5 = _mm256_loadu_ps(bias + 8);
  }
  const float *wt = wT;
  for (int64_t c = 0; c < d->cin; c++)
    for (int64_t ki = 0; ki < d->kh; ki++) {
      const float *xr = x + (c * d->H + oh + ki) * d->W + ow0;
      for (int64_t kj = 0; kj < d->kw; kj++, wt += O) {
        const float *xp = xr + kj;
        __m256 w0 = _mm256_loadu_ps(wt);
        FMA_TILE(a, w0);
        if (OV > 1) {
          __m256 w1 = _mm256_loadu_ps(wt + 8);
          FMA_TILE(b, w1);
        }
      }
    }
  __m256 acc[2][6] = {{a0, a1, a2, a3, a4, a5}, {b0, b1, b2, b3, b4, b5}};
  float *yt = y + oh * OW + ow0;
  for (int v = 0; v < OV; v++)
    for (int t = 0; t < TW; t++) store_tile_lanes(acc[v][t], v, t, plane, yt);
}
#undef FMA_TILE

static void forward_tile_any(const gr_conv_valid *d, const float *x, const float *wT, const float *bias, int64_t oh,
                             int64_t ow0, int tw, float *y) {
#define TILE_CASE(OV, TW) \
  case (OV) * 8 + (TW): forward_tile(d, x, wT, bias, oh, ow0, y, OV, TW); break;
  switch (d->cout + tw) {
    TILE_CASE(1, 1) TILE_CASE(1, 2) TILE_CASE(1, 3) TILE_CASE(1, 4) TILE_CASE(1, 5) TILE_CASE(1, 6)
    TILE_CASE(2, 1) TILE_CASE(2, 2) TILE_CASE(2, 3) TILE_CASE(2, 4) TILE_CASE(2, 5) TILE_CASE(2, 6)
    default: GR_ASSERT(!"conv_valid: no forward tile for this shape");
  }
#undef TILE_CASE
}
#endif

void gr_conv_valid_forward(const gr_conv_valid *d, const float *x, const float *w, const float *bias, int64_t nb,
                           float *scratch, float *y) {
  GR_ASSERT(gr_conv_valid_fits(d));
#if CONV_VALID_SIMD
  int64_t O = d->cout, K = d->cin * d->kh * d->kw, OH = d->H - d->kh + 1, OW = d->W - d->kw + 1;
  for (int64_t o = 0; o < O; o++) /* wT[c, ki, kj, o] = w[o, c, ki, kj] */
    for (int64_t t = 0; t < K; t++) scratch[t * O + o] = w[o * K + t];
  int64_t tiles = (OW + 5) / 6, tw = (OW + tiles - 1) / tiles; /* equal tiles of at most 6 pixels */
#pragma omp parallel for schedule(static) if (nb * OH * OW * O * K > GR_PAR_MIN * 8)
  for (int64_t r = 0; r < nb * OH; r++) {
    int64_t j = r / OH, oh = r % OH;
    for (int64_t ow0 = 0; ow0 < OW; ow0 += tw)
      forward_tile_any(d, x + j * d->x_stride, scratch, bias, oh, ow0, (int)(OW - ow0 < tw ? OW - ow0 : tw),
                       y + j * d->dy_stride);
  }
#else
  (void)x, (void)w, (void)bias, (void)nb, (void)scratch, (void)y;
#endif
}

void gr_conv_valid_wgrad(const gr_conv_valid *d, const float *x, const float *dy, int64_t nb, float *scratch,
                         float *dw) {
  GR_ASSERT(gr_conv_valid_fits(d));
#if CONV_VALID_SIMD
  transpose_dy(d, dy, nb, scratch);
  int64_t rows = d->cin * d->kh, work = nb * gr_conv_valid_wgrad_scratch(d, 1) * d->cin * d->kh * d->kw;
#pragma omp parallel for schedule(static) if (work > GR_PAR_MIN * 8)
  for (int64_t r = 0; r < rows; r++) wgrad_row_any(d, x, scratch, nb, r / d->kh, r % d->kh, dw);
#else
  (void)x, (void)dy, (void)nb, (void)scratch, (void)dw;
#endif
}
