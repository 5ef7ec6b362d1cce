/* core/conv_direct.c — direct kernels for same-size stride-1 convolutions
 * (contract in conv_direct.h; used by ops_conv.c for forward and for dx).
 *
 * The padded input xp [cin, Hp, Wp] has the data at rows ph.., columns
 * pw..; output (h, w) then reads xp[c, h + ki*dh, w + kj*dw]. A tile is OB
 * output channels x V vectors of 8 columns of one output row: OB*V
 * accumulators stay in registers over all cin*kh*kw taps (per tap: V loads,
 * OB broadcasts, OB*V FMAs), then are stored once, with masked stores past
 * the row's end (the columns computed there read the zero columns of xp and
 * are dropped). V = 4 (32 columns) for rows of 25 floats and more, else the
 * fewest vectors covering the row; OB = 8/V rounded so that OB*V + V + 1
 * fits the 16 AVX registers. Not here: strides, other paddings (gemm path). */
#include "core/conv_direct.h"

#include <string.h>

#include "core/op.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CONV_DIRECT_SIMD 1
#else
#define CONV_DIRECT_SIMD 0
#endif

bool gr_conv_direct_available(void) { return CONV_DIRECT_SIMD; }

/* Vectors of 8 columns per tile for rows of W outputs. */
static int64_t tile_vectors(int64_t W) { return W > 24 ? 4 : (W + 7) / 8; }

/* Columns computed per row (a whole number of tiles) and the pitch of xp. */
static int64_t padded_pitch(const gr_conv_direct *d) {
  int64_t span = 8 * tile_vectors(d->W), wr = (d->W + span - 1) / span * span;
  return wr + (d->kw - 1) * d->dw;
}

int64_t gr_conv_direct_pad_floats(const gr_conv_direct *d) { return d->cin * (d->H + 2 * d->ph) * padded_pitch(d); }

void gr_conv_direct_pad(const gr_conv_direct *d, const float *x, float *xp) {
  int64_t Hp = d->H + 2 * d->ph, Wp = padded_pitch(d), right = Wp - d->pw - d->W;
  for (int64_t c = 0; c < d->cin; c++) {
    float *p = xp + c * Hp * Wp;
    memset(p, 0, (size_t)(d->ph * Wp) * sizeof(float));
    for (int64_t h = 0; h < d->H; h++) {
      float *row = p + (d->ph + h) * Wp;
      for (int64_t i = 0; i < d->pw; i++) row[i] = 0.0f;
      memcpy(row + d->pw, x + (c * d->H + h) * d->W, (size_t)d->W * sizeof(float));
      for (int64_t i = 0; i < right; i++) row[d->pw + d->W + i] = 0.0f;
    }
    memset(p + (d->ph + d->H) * Wp, 0, (size_t)(d->ph * Wp) * sizeof(float));
  }
}

#if CONV_DIRECT_SIMD
/* One tile: outputs o0..o0+OB-1, row h, columns w0..w0+8V-1 (those < W
 * stored). OB and V are constants in each caller below, so the loops over
 * them unroll and acc lives in registers. */
static inline __attribute__((always_inline)) void conv_tile(const gr_conv_direct *d, const float *xp, int64_t Wp,
                                                            const float *wk, const float *bias, bool accumulate,
                                                            float *y, int64_t o0, int64_t h, int64_t w0, const int OB,
                                                            const int V) {
  static const int32_t tail[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  const int64_t plane = (d->H + 2 * d->ph) * Wp, ws = d->cin * d->kh * d->kw, kh = d->kh, kw = d->kw;
  const int64_t rowstep = d->dh * Wp, dw = d->dw;
  __m256 acc[8][4];
#pragma GCC unroll 8
  for (int ob = 0; ob < OB; ob++)
#pragma GCC unroll 4
    for (int v = 0; v < V; v++) acc[ob][v] = _mm256_setzero_ps();
  for (int64_t c = 0; c < d->cin; c++) {
    const float *xc = xp + c * plane + h * Wp + w0, *wc = wk + o0 * ws + c * kh * kw;
    for (int64_t ki = 0; ki < kh; ki++) {
      const float *xr = xc + ki * rowstep, *wr = wc + ki * kw;
      for (int64_t kj = 0; kj < kw; kj++) {
        __m256 xv[4];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) xv[v] = _mm256_loadu_ps(xr + kj * dw + 8 * v);
#pragma GCC unroll 8
        for (int ob = 0; ob < OB; ob++) {
          __m256 wb = _mm256_broadcast_ss(wr + ob * ws + kj);
#pragma GCC unroll 4
          for (int v = 0; v < V; v++) acc[ob][v] = _mm256_fmadd_ps(wb, xv[v], acc[ob][v]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int ob = 0; ob < OB; ob++) {
    float *yr = y + ((o0 + ob) * d->H + h) * d->W;
    __m256 bv = _mm256_set1_ps(bias ? bias[o0 + ob] : 0.0f);
#pragma GCC unroll 4
    for (int v = 0; v < V; v++) {
      int64_t col = w0 + 8 * v, rem = d->W - col;
      __m256 r = _mm256_add_ps(acc[ob][v], bv);
      if (rem >= 8) {
        if (accumulate) r = _mm256_add_ps(r, _mm256_loadu_ps(yr + col));
        _mm256_storeu_ps(yr + col, r);
      } else if (rem > 0) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(tail + 8 - rem));
        if (accumulate) r = _mm256_add_ps(r, _mm256_maskload_ps(yr + col, m));
        _mm256_maskstore_ps(yr + col, m, r);
      }
    }
  }
}

#define CONV_TILE_FN(OB, V)                                                                                        \
  static void conv_tile_##OB##x##V(const gr_conv_direct *d, const float *xp, int64_t Wp, const float *wk,         \
                                   const float *bias, bool acc, float *y, int64_t o0, int64_t h, int64_t w0) {    \
    conv_tile(d, xp, Wp, wk, bias, acc, y, o0, h, w0, OB, V);                                                      \
  }
CONV_TILE_FN(2, 4)
CONV_TILE_FN(1, 4)
CONV_TILE_FN(3, 3)
CONV_TILE_FN(1, 3)
CONV_TILE_FN(4, 2)
CONV_TILE_FN(1, 2)
CONV_TILE_FN(8, 1)
CONV_TILE_FN(1, 1)

typedef void (*conv_tile_fn)(const gr_conv_direct *, const float *, int64_t, const float *, const float *, bool,
                             float *, int64_t, int64_t, int64_t);

void gr_conv_direct_run(const gr_conv_direct *d, const float *xp, const float *wk, const float *bias,
                        bool accumulate, float *y) {
  static const conv_tile_fn wide[5] = {NULL, conv_tile_8x1, conv_tile_4x2, conv_tile_3x3, conv_tile_2x4};
  static const conv_tile_fn one[5] = {NULL, conv_tile_1x1, conv_tile_1x2, conv_tile_1x3, conv_tile_1x4};
  int64_t V = tile_vectors(d->W), OB = V == 4 ? 2 : V == 3 ? 3 : V == 2 ? 4 : 8, Wp = padded_pitch(d);
  int64_t work = d->H * d->W * d->cout * d->cin * d->kh * d->kw;
#pragma omp parallel for schedule(static) if (work > 64 * GR_PAR_MIN)
  for (int64_t h = 0; h < d->H; h++)
    for (int64_t o0 = 0; o0 < d->cout;) {
      bool full = d->cout - o0 >= OB;
      for (int64_t w0 = 0; w0 < d->W; w0 += 8 * V)
        (full ? wide[V] : one[V])(d, xp, Wp, wk, bias, accumulate, y, o0, h, w0);
      o0 += full ? OB : 1;
    }
}
#else
/* Without AVX2 ops_conv.c does not call this; kept correct all the same. */
void gr_conv_direct_run(const gr_conv_direct *d, const float *xp, const float *wk, const float *bias,
                        bool accumulate, float *y) {
  int64_t Wp = padded_pitch(d), plane = (d->H + 2 * d->ph) * Wp;
  for (int64_t o = 0; o < d->cout; o++)
    for (int64_t h = 0; h < d->H; h++)
      for (int64_t w = 0; w < d->W; w++) {
        float s = bias ? bias[o] : 0.0f;
        for (int64_t c = 0; c < d->cin; c++)
          for (int64_t ki = 0; ki < d->kh; ki++)
            for (int64_t kj = 0; kj < d->kw; kj++)
              s += wk[((o * d->cin + c) * d->kh + ki) * d->kw + kj] *
                   xp[c * plane + (h + ki * d->dh) * Wp + w + kj * d->dw];
        float *yp = y + (o * d->H + h) * d->W + w;
        *yp = accumulate ? *yp + s : s;
      }
}
#endif
