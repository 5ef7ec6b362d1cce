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

bool gr_conv_valid_wgrad_fits(const gr_conv_valid *d) {
  return CONV_VALID_SIMD && valid_enabled && (d->cout == 8 || d->cout == 16) && d->kw >= 1 &&
         d->kw <= VALID_MAX_KW && d->kh >= 1 && d->H >= d->kh && d->W >= d->kw;
}

int64_t gr_conv_valid_wgrad_scratch(const gr_conv_valid *d, int64_t nb) {
  return nb * (d->H - d->kh + 1) * (d->W - d->kw + 1) * d->cout;
}

/* dyT[j, p, o] = dy_j[o, p] for the nb samples. */
static void transpose_dy(const gr_conv_valid *d, const float *dy, int64_t nb, float *dyT) {
  int64_t P = (d->H - d->kh + 1) * (d->W - d->kw + 1), O = d->cout;
  for (int64_t j = 0; j < nb; j++) {
    const float *s = dy + j * d->dy_stride;
    float *t = dyT + j * P * O;
    for (int64_t p = 0; p < P; p++)
      for (int64_t o = 0; o < O; o++) t[p * O + o] = s[o * P + p];
  }
}

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
    default: GR_ASSERT(!"conv_valid: no kernel for this shape (gr_conv_valid_wgrad_fits)");
  }
#undef WGRAD_CASE
}
#endif

void gr_conv_valid_wgrad(const gr_conv_valid *d, const float *x, const float *dy, int64_t nb, float *scratch,
                         float *dw) {
  GR_ASSERT(gr_conv_valid_wgrad_fits(d));
#if CONV_VALID_SIMD
  transpose_dy(d, dy, nb, scratch);
  int64_t rows = d->cin * d->kh, work = nb * gr_conv_valid_wgrad_scratch(d, 1) * d->cin * d->kh * d->kw;
#pragma omp parallel for schedule(static) if (work > GR_PAR_MIN * 8)
  for (int64_t r = 0; r < rows; r++) wgrad_row_any(d, x, scratch, nb, r / d->kh, r % d->kh, dw);
#else
  (void)x, (void)dy, (void)nb, (void)scratch, (void)dw, (void)transpose_dy;
#endif
}
