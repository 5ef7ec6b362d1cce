/* core/conv_direct.c — direct kernels for same-size stride-1 convolutions
 * (contract in conv_direct.h; used by ops_conv.c for forward and for dx).
 *
 * The padded input xp [cin, Hp, Wp] has the data at rows ph.., columns
 * pw..; output (h, w) then reads xp[c, h + ki*dh, w + kj*dw]. A tile is OB
 * output channels x V vectors of 8 columns of one output row: OB*V
 * accumulators stay in registers over all cin*kh*kw taps (per tap: V loads,
 * OB broadcasts, OB*V FMAs), then are stored once, with masked stores past
 * the row's end (the columns computed there read the zero columns of xp and
 * are dropped). Tiles are 6 output channels x 2 vectors (2 vectors of one
 * row, or one vector of 2 rows for rows of 8 or fewer): 12 accumulators, more
 * than the FMA latency x throughput of AVX2 cores, 2 loads and 6 broadcasts
 * per 12 FMAs; 4 vectors of a 32-float row x 2 channels measured slower on
 * ResNet-8. The weight gradient works the
 * same way with the roles swapped: dY vectors x input vectors. Not here:
 * strides, other paddings (gemm path). */
#include "core/conv_direct.h"

#include <string.h>

#include "core/op.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CONV_DIRECT_SIMD 1
#else
#define CONV_DIRECT_SIMD 0
#endif

static bool direct_enabled = true;

bool gr_conv_direct_available(void) { return CONV_DIRECT_SIMD && direct_enabled; }
void gr_conv_direct_set_enabled(bool on) { direct_enabled = on; }

/* Vectors of 8 columns per tile for rows of W outputs (2, or 1 for rows of
 * 8 or fewer, which then take 2 rows a tile). */
static int64_t tile_vectors(int64_t W) { return W > 8 ? 2 : 1; }

/* Columns computed per row (a whole number of tiles) and the pitch of xp. */
static int64_t padded_pitch(const gr_conv_direct *d) {
  int64_t span = 8 * tile_vectors(d->W), wr = (d->W + span - 1) / span * span;
  return wr + (d->kw - 1) * d->dw;
}

int64_t gr_conv_direct_pad_floats(const gr_conv_direct *d) { return d->cin * (d->H + 2 * d->ph) * padded_pitch(d); }

void gr_conv_direct_pad(const gr_conv_direct *d, const float *x, float *xp, bool borders_zero) {
  int64_t Hp = d->H + 2 * d->ph, Wp = padded_pitch(d);
  if (!borders_zero) memset(xp, 0, (size_t)(d->cin * Hp * Wp) * sizeof(float));
  for (int64_t c = 0; c < d->cin; c++)
    for (int64_t h = 0; h < d->H; h++) {
      float *row = xp + (c * Hp + d->ph + h) * Wp + d->pw;
      const float *src = x + (c * d->H + h) * d->W;
      int64_t i = 0;
#if CONV_DIRECT_SIMD
      for (; i + 8 <= d->W; i += 8) _mm256_storeu_ps(row + i, _mm256_loadu_ps(src + i));
#endif
      for (; i < d->W; i++) row[i] = src[i];
    }
}

#if CONV_DIRECT_SIMD
/* One tile: outputs o0..o0+OB-1, rows h..h+R-1, columns w0..w0+8V-1 (those
 * < W stored). OB, V and R are constants in each caller below, so the loops
 * over them unroll and acc lives in registers; slot s is row s/V, vector s%V. */
static inline __attribute__((always_inline)) void conv_tile(const gr_conv_direct *d, const float *xp, int64_t Wp,
                                                            const float *wk, const float *bias, bool accumulate,
                                                            float *y, int64_t o0, int64_t h, int64_t w0, const int OB,
                                                            const int V, const int R) {
  static const int32_t tail[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  const int64_t plane = (d->H + 2 * d->ph) * Wp, ws = d->cin * d->kh * d->kw, kh = d->kh, kw = d->kw;
  const int64_t rowstep = d->dh * Wp, dw = d->dw;
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int ob = 0; ob < OB; ob++)
#pragma GCC unroll 2
    for (int sl = 0; sl < V * R; sl++) acc[ob][sl] = _mm256_setzero_ps();
  for (int64_t c = 0; c < d->cin; c++) {
    const float *xc = xp + c * plane + h * Wp + w0, *wc = wk + o0 * ws + c * kh * kw;
    for (int64_t ki = 0; ki < kh; ki++) {
      const float *xr = xc + ki * rowstep, *wr = wc + ki * kw;
      for (int64_t kj = 0; kj < kw; kj++) {
        __m256 xv[2];
#pragma GCC unroll 2
        for (int sl = 0; sl < V * R; sl++) xv[sl] = _mm256_loadu_ps(xr + (sl / V) * Wp + kj * dw + 8 * (sl % V));
#pragma GCC unroll 6
        for (int ob = 0; ob < OB; ob++) {
          __m256 wb = _mm256_broadcast_ss(wr + ob * ws + kj);
#pragma GCC unroll 2
          for (int sl = 0; sl < V * R; sl++) acc[ob][sl] = _mm256_fmadd_ps(wb, xv[sl], acc[ob][sl]);
        }
      }
    }
  }
#pragma GCC unroll 6
  for (int ob = 0; ob < OB; ob++) {
    __m256 bv = _mm256_set1_ps(bias ? bias[o0 + ob] : 0.0f);
#pragma GCC unroll 2
    for (int sl = 0; sl < V * R; sl++) {
      float *yr = y + ((o0 + ob) * d->H + h + sl / V) * d->W;
      int64_t col = w0 + 8 * (sl % V), rem = d->W - col;
      __m256 r = _mm256_add_ps(acc[ob][sl], bv);
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

#define CONV_TILE_FN(OB, V, R)                                                                                     \
  static void conv_tile_##OB##x##V##x##R(const gr_conv_direct *d, const float *xp, int64_t Wp, const float *wk,   \
                                         const float *bias, bool acc, float *y, int64_t o0, int64_t h,            \
                                         int64_t w0) {                                                            \
    conv_tile(d, xp, Wp, wk, bias, acc, y, o0, h, w0, OB, V, R);                                                   \
  }
CONV_TILE_FN(6, 2, 1)
CONV_TILE_FN(4, 2, 1)
CONV_TILE_FN(2, 2, 1)
CONV_TILE_FN(1, 2, 1)
CONV_TILE_FN(6, 1, 2)
CONV_TILE_FN(4, 1, 2)
CONV_TILE_FN(2, 1, 2)
CONV_TILE_FN(1, 1, 2)
CONV_TILE_FN(6, 1, 1)
CONV_TILE_FN(4, 1, 1)
CONV_TILE_FN(2, 1, 1)
CONV_TILE_FN(1, 1, 1)

typedef void (*conv_tile_fn)(const gr_conv_direct *, const float *, int64_t, const float *, const float *, bool,
                             float *, int64_t, int64_t, int64_t);

/* Tiles of 6 output channels x 2 vectors: 2 vectors of a row, or for rows
 * of 8 floats or fewer one vector of 2 rows (then a last odd row alone);
 * the output channels left over in tiles of 4, 2 and 1. */
void gr_conv_direct_run(const gr_conv_direct *d, const float *xp, const float *wk, const float *bias,
                        bool accumulate, float *y) {
  static const conv_tile_fn tiles[3][4] = {
      {conv_tile_6x2x1, conv_tile_4x2x1, conv_tile_2x2x1, conv_tile_1x2x1},  /* 2 vectors of a row */
      {conv_tile_6x1x2, conv_tile_4x1x2, conv_tile_2x1x2, conv_tile_1x1x2},  /* a vector of 2 rows */
      {conv_tile_6x1x1, conv_tile_4x1x1, conv_tile_2x1x1, conv_tile_1x1x1}}; /* a vector of a row */
  static const int64_t obs[4] = {6, 4, 2, 1};
  int64_t V = tile_vectors(d->W), R = 3 - V, Wp = padded_pitch(d);
  int64_t work = d->H * d->W * d->cout * d->cin * d->kh * d->kw;
#pragma omp parallel for schedule(static) if (work > 64 * GR_PAR_MIN)
  for (int64_t hb = 0; hb < (d->H + R - 1) / R; hb++) {
    int64_t h = hb * R;
    const conv_tile_fn *row = tiles[V == 2 ? 0 : h + 1 < d->H ? 1 : 2];
    for (int64_t o0 = 0; o0 < d->cout;) {
      int k = 0;
      while (obs[k] > d->cout - o0) k++;
      for (int64_t w0 = 0; w0 < d->W; w0 += 8 * V) row[k](d, xp, Wp, wk, bias, accumulate, y, o0, h, w0);
      o0 += obs[k];
    }
  }
}

static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* One weight-gradient tile: dw[o, c, ki, kj] += sum over the rows h and the
 * computed columns w of dyp[o, ph+h, pw+w] * xp[c, h + ki*dh, w + kj*dw],
 * o = o0..o0+OB-1, kj = kj0..kj0+KJ-1 (columns past W read dyp's zeros). */
static inline __attribute__((always_inline)) void wgrad_tile(const gr_conv_direct *d, const float *xp,
                                                             const float *dyp, int64_t Wp, float *dw, int64_t o0,
                                                             int64_t c, int64_t ki, int64_t kj0, const int OB,
                                                             const int KJ) {
  const int64_t plane = (d->H + 2 * d->ph) * Wp, wr = Wp - (d->kw - 1) * d->dw, dwl = d->dw;
  __m256 acc[6][5];
#pragma GCC unroll 6
  for (int ob = 0; ob < OB; ob++)
#pragma GCC unroll 5
    for (int j = 0; j < KJ; j++) acc[ob][j] = _mm256_setzero_ps();
  for (int64_t h = 0; h < d->H; h++) {
    const float *yr = dyp + o0 * plane + (d->ph + h) * Wp + d->pw;
    const float *xr = xp + c * plane + (h + ki * d->dh) * Wp + kj0 * dwl;
    for (int64_t w0 = 0; w0 < wr; w0 += 8) {
      __m256 g[6];
#pragma GCC unroll 6
      for (int ob = 0; ob < OB; ob++) g[ob] = _mm256_loadu_ps(yr + ob * plane + w0);
#pragma GCC unroll 5
      for (int j = 0; j < KJ; j++) {
        __m256 xv = _mm256_loadu_ps(xr + j * dwl + w0);
#pragma GCC unroll 6
        for (int ob = 0; ob < OB; ob++) acc[ob][j] = _mm256_fmadd_ps(g[ob], xv, acc[ob][j]);
      }
    }
  }
  int64_t kk = d->kh * d->kw;
#pragma GCC unroll 6
  for (int ob = 0; ob < OB; ob++)
#pragma GCC unroll 5
    for (int j = 0; j < KJ; j++) dw[((o0 + ob) * d->cin + c) * kk + ki * d->kw + kj0 + j] += hsum8(acc[ob][j]);
}

#define WGRAD_TILE_FN(OB, KJ)                                                                                     \
  static void wgrad_tile_##OB##x##KJ(const gr_conv_direct *d, const float *xp, const float *dyp, int64_t Wp,     \
                                     float *dw, int64_t o0, int64_t c, int64_t ki, int64_t kj0) {                 \
    wgrad_tile(d, xp, dyp, Wp, dw, o0, c, ki, kj0, OB, KJ);                                                       \
  }
WGRAD_TILE_FN(3, 3)
WGRAD_TILE_FN(1, 3)
WGRAD_TILE_FN(2, 5)
WGRAD_TILE_FN(1, 5)
WGRAD_TILE_FN(6, 1)
WGRAD_TILE_FN(1, 1)

typedef void (*wgrad_tile_fn)(const gr_conv_direct *, const float *, const float *, int64_t, float *, int64_t,
                              int64_t, int64_t, int64_t);

void gr_conv_direct_wgrad(const gr_conv_direct *d, const float *xp, const float *dyp, float *dw) {
  int64_t KJ = d->kw % 3 == 0 ? 3 : d->kw == 5 ? 5 : 1, OB = KJ == 3 ? 3 : KJ == 5 ? 2 : 6, Wp = padded_pitch(d);
  wgrad_tile_fn wide = KJ == 3 ? wgrad_tile_3x3 : KJ == 5 ? wgrad_tile_2x5 : wgrad_tile_6x1;
  wgrad_tile_fn one = KJ == 3 ? wgrad_tile_1x3 : KJ == 5 ? wgrad_tile_1x5 : wgrad_tile_1x1;
  int64_t work = d->H * d->W * d->cout * d->cin * d->kh * d->kw;
#pragma omp parallel for schedule(static) if (work > 64 * GR_PAR_MIN)
  for (int64_t c = 0; c < d->cin; c++)
    for (int64_t ki = 0; ki < d->kh; ki++)
      for (int64_t o0 = 0; o0 < d->cout;) {
        bool full = d->cout - o0 >= OB;
        for (int64_t kj0 = 0; kj0 < d->kw; kj0 += KJ) (full ? wide : one)(d, xp, dyp, Wp, dw, o0, c, ki, kj0);
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

void gr_conv_direct_wgrad(const gr_conv_direct *d, const float *xp, const float *dyp, float *dw) {
  int64_t Wp = padded_pitch(d), plane = (d->H + 2 * d->ph) * Wp;
  for (int64_t o = 0; o < d->cout; o++)
    for (int64_t c = 0; c < d->cin; c++)
      for (int64_t ki = 0; ki < d->kh; ki++)
        for (int64_t kj = 0; kj < d->kw; kj++) {
          float s = 0;
          for (int64_t h = 0; h < d->H; h++)
            for (int64_t w = 0; w < d->W; w++)
              s += dyp[o * plane + (d->ph + h) * Wp + d->pw + w] * xp[c * plane + (h + ki * d->dh) * Wp + w + kj * d->dw];
          dw[((o * d->cin + c) * d->kh + ki) * d->kw + kj] += s;
        }
}
#endif
