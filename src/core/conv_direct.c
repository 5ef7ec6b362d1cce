/* core/conv_direct.c — direct convolution kernels over tap offsets
 * (contract in conv_direct.h; used by ops_conv.c for forward, dW and dx).
 *
 * Forward: a tile is OB output channels x V vectors of 8 columns of one
 * output row (or of R = 2 rows for rows of 8 or fewer): OB*V*R
 * accumulators stay in registers over all cin*kk taps (per tap: V*R loads,
 * OB broadcasts, OB*V*R FMAs), then are stored once, with masked stores
 * past the row's end (the columns computed there read whatever follows the
 * row and are dropped). Tiles are 6 output channels x 2 vectors: 12
 * accumulators, more than the FMA latency x throughput of AVX2 cores, 2
 * loads and 6 broadcasts per 12 FMAs; 4 vectors of a 32-float row x 2
 * channels measured slower on ResNet-8. The input gradient of the planes
 * (gr_conv_taps_dx) tiles input channels x vectors the same way for one
 * tap at a time, summing over output channels, and adds the tile into the
 * planes. The weight gradient tiles 3 output channels x 3 (channel, tap)
 * columns and sums dY vectors x plane vectors over the output plane; the
 * last vector of a row is loaded masked (zeros past the row's end) in both
 * gradients, so nothing outside the row adds in. */
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

/* Vectors of 8 columns per tile for rows of OW outputs (2, or 1 for rows of
 * 8 or fewer, which then take 2 rows a tile). */
static int64_t tile_vectors(int64_t OW) { return OW > 8 ? 2 : 1; }

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

void gr_conv_direct_taps(const gr_conv_direct *d, gr_conv_taps *t) {
  int64_t Wp = padded_pitch(d);
  GR_ASSERT(d->kh * d->kw <= GR_CONV_TAPS_MAX);
  *t = (gr_conv_taps){.cin = d->cin, .cout = d->cout, .OH = d->H, .OW = d->W, .pitch = Wp,
                      .cstride = (d->H + 2 * d->ph) * Wp, .kk = d->kh * d->kw};
  for (int64_t ki = 0; ki < d->kh; ki++)
    for (int64_t kj = 0; kj < d->kw; kj++) t->toff[ki * d->kw + kj] = ki * d->dh * Wp + kj * d->dw;
}

#if CONV_DIRECT_SIMD
static const int32_t tail_bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Lanes 0..rem-1 on (all of them when rem >= 8). */
static inline __m256i lanes_below(int64_t rem) {
  return _mm256_loadu_si256((const __m256i *)(tail_bits + 8 - (rem < 0 ? 0 : rem > 8 ? 8 : rem)));
}

/* One forward tile: outputs o0..o0+OB-1, rows h..h+R-1, columns w0..w0+8V-1
 * (those < OW stored). OB, V and R are constants in each caller below, so
 * the loops over them unroll and acc lives in registers; slot s is row s/V,
 * vector s%V. */
static inline __attribute__((always_inline)) void conv_tile(const gr_conv_taps *t, const float *xp, const float *wk,
                                                            const float *bias, bool accumulate, float *y, int64_t o0,
                                                            int64_t h, int64_t w0, const int OB, const int V,
                                                            const int R) {
  const int64_t kk = t->kk, K = t->cin * kk, pitch = t->pitch;
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int ob = 0; ob < OB; ob++)
#pragma GCC unroll 2
    for (int sl = 0; sl < V * R; sl++) acc[ob][sl] = _mm256_setzero_ps();
  for (int64_t c = 0; c < t->cin; c++) {
    const float *xc = xp + c * t->cstride + h * pitch + w0, *wc = wk + o0 * K + c * kk;
    for (int64_t k = 0; k < kk; k++) {
      const float *xr = xc + t->toff[k];
      __m256 xv[2];
#pragma GCC unroll 2
      for (int sl = 0; sl < V * R; sl++) xv[sl] = _mm256_loadu_ps(xr + (sl / V) * pitch + 8 * (sl % V));
#pragma GCC unroll 6
      for (int ob = 0; ob < OB; ob++) {
        __m256 wb = _mm256_broadcast_ss(wc + ob * K + k);
#pragma GCC unroll 2
        for (int sl = 0; sl < V * R; sl++) acc[ob][sl] = _mm256_fmadd_ps(wb, xv[sl], acc[ob][sl]);
      }
    }
  }
#pragma GCC unroll 6
  for (int ob = 0; ob < OB; ob++) {
    __m256 bv = _mm256_set1_ps(bias ? bias[o0 + ob] : 0.0f);
#pragma GCC unroll 2
    for (int sl = 0; sl < V * R; sl++) {
      float *yr = y + ((o0 + ob) * t->OH + h + sl / V) * t->OW;
      int64_t col = w0 + 8 * (sl % V), rem = t->OW - col;
      __m256 r = _mm256_add_ps(acc[ob][sl], bv);
      if (rem >= 8) {
        if (accumulate) r = _mm256_add_ps(r, _mm256_loadu_ps(yr + col));
        _mm256_storeu_ps(yr + col, r);
      } else if (rem > 0) {
        __m256i m = lanes_below(rem);
        if (accumulate) r = _mm256_add_ps(r, _mm256_maskload_ps(yr + col, m));
        _mm256_maskstore_ps(yr + col, m, r);
      }
    }
  }
}

/* One input-gradient tile: planes of input channels c0..c0+CB-1 at tap k,
 * rows h..h+R-1, columns w0..w0+8V-1 (those < OW): += sum over o of
 * wk[o, c, k] * dy[o, row, col]. Slots as in conv_tile. */
static inline __attribute__((always_inline)) void dx_tile(const gr_conv_taps *t, const float *dy, const float *wk,
                                                          float *xp, int64_t c0, int64_t k, int64_t h, int64_t w0,
                                                          const int CB, const int V, const int R) {
  const int64_t kk = t->kk, K = t->cin * kk, plane = t->OH * t->OW, OW = t->OW;
  __m256 acc[6][2];
  __m256i m[2];
#pragma GCC unroll 2
  for (int sl = 0; sl < V * R; sl++) m[sl] = lanes_below(OW - w0 - 8 * (sl % V));
#pragma GCC unroll 6
  for (int cb = 0; cb < CB; cb++)
#pragma GCC unroll 2
    for (int sl = 0; sl < V * R; sl++) acc[cb][sl] = _mm256_setzero_ps();
  const float *dyo = dy + h * OW + w0, *wo = wk + c0 * kk + k;
  for (int64_t o = 0; o < t->cout; o++, dyo += plane, wo += K) {
    __m256 g[2];
#pragma GCC unroll 2
    for (int sl = 0; sl < V * R; sl++) g[sl] = _mm256_maskload_ps(dyo + (sl / V) * OW + 8 * (sl % V), m[sl]);
#pragma GCC unroll 6
    for (int cb = 0; cb < CB; cb++) {
      __m256 wb = _mm256_broadcast_ss(wo + cb * kk);
#pragma GCC unroll 2
      for (int sl = 0; sl < V * R; sl++) acc[cb][sl] = _mm256_fmadd_ps(wb, g[sl], acc[cb][sl]);
    }
  }
#pragma GCC unroll 6
  for (int cb = 0; cb < CB; cb++)
#pragma GCC unroll 2
    for (int sl = 0; sl < V * R; sl++) {
      float *p = xp + (c0 + cb) * t->cstride + t->toff[k] + (h + sl / V) * t->pitch + w0 + 8 * (sl % V);
      _mm256_maskstore_ps(p, m[sl], _mm256_add_ps(acc[cb][sl], _mm256_maskload_ps(p, m[sl])));
    }
}

#define CONV_TILE_FN(OB, V, R)                                                                                     \
  static void conv_tile_##OB##x##V##x##R(const gr_conv_taps *t, const float *xp, const float *wk,                \
                                         const float *bias, bool acc, float *y, int64_t o0, int64_t h,            \
                                         int64_t w0) {                                                            \
    conv_tile(t, xp, wk, bias, acc, y, o0, h, w0, OB, V, R);                                                       \
  }                                                                                                                \
  static void dx_tile_##OB##x##V##x##R(const gr_conv_taps *t, const float *dy, const float *wk, float *xp,       \
                                       int64_t c0, int64_t k, int64_t h, int64_t w0) {                            \
    dx_tile(t, dy, wk, xp, c0, k, h, w0, OB, V, R);                                                                \
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

typedef void (*conv_tile_fn)(const gr_conv_taps *, const float *, const float *, const float *, bool, float *,
                             int64_t, int64_t, int64_t);
typedef void (*dx_tile_fn)(const gr_conv_taps *, const float *, const float *, float *, int64_t, int64_t, int64_t,
                           int64_t);

/* Tile shapes by [row kind][channel block]: row kind 0 = 2 vectors of a row,
 * 1 = a vector of 2 rows (rows of 8 or fewer), 2 = a vector of a last odd row. */
static const int64_t tile_channels[4] = {6, 4, 2, 1};
static const conv_tile_fn conv_tiles[3][4] = {
    {conv_tile_6x2x1, conv_tile_4x2x1, conv_tile_2x2x1, conv_tile_1x2x1},
    {conv_tile_6x1x2, conv_tile_4x1x2, conv_tile_2x1x2, conv_tile_1x1x2},
    {conv_tile_6x1x1, conv_tile_4x1x1, conv_tile_2x1x1, conv_tile_1x1x1}};
static const dx_tile_fn dx_tiles[3][4] = {{dx_tile_6x2x1, dx_tile_4x2x1, dx_tile_2x2x1, dx_tile_1x2x1},
                                          {dx_tile_6x1x2, dx_tile_4x1x2, dx_tile_2x1x2, dx_tile_1x1x2},
                                          {dx_tile_6x1x1, dx_tile_4x1x1, dx_tile_2x1x1, dx_tile_1x1x1}};

/* The row kind of the tiles at row h, and the largest channel block <= left. */
static int row_kind(const gr_conv_taps *t, int64_t h) { return tile_vectors(t->OW) == 2 ? 0 : h + 1 < t->OH ? 1 : 2; }
static int channel_block(int64_t left) {
  int k = 0;
  while (tile_channels[k] > left) k++;
  return k;
}

void gr_conv_taps_forward(const gr_conv_taps *t, const float *xp, const float *wk, const float *bias,
                          bool accumulate, float *y) {
  int64_t V = tile_vectors(t->OW), R = 3 - V, work = t->OH * t->OW * t->cout * t->cin * t->kk;
#pragma omp parallel for schedule(static) if (work > 64 * GR_PAR_MIN)
  for (int64_t hb = 0; hb < (t->OH + R - 1) / R; hb++) {
    int64_t h = hb * R;
    const conv_tile_fn *row = conv_tiles[row_kind(t, h)];
    for (int64_t o0 = 0; o0 < t->cout;) {
      int k = channel_block(t->cout - o0);
      for (int64_t w0 = 0; w0 < t->OW; w0 += 8 * V) row[k](t, xp, wk, bias, accumulate, y, o0, h, w0);
      o0 += tile_channels[k];
    }
  }
}

/* Parallel over blocks of input channels: each writes its own planes only. */
void gr_conv_taps_dx(const gr_conv_taps *t, const float *dy, const float *wk, float *xp) {
  int64_t V = tile_vectors(t->OW), R = 3 - V, work = t->OH * t->OW * t->cout * t->cin * t->kk;
  int64_t blocks = (t->cin + 5) / 6;
#pragma omp parallel for schedule(static) if (work > 64 * GR_PAR_MIN)
  for (int64_t cb = 0; cb < blocks; cb++)
    for (int64_t c0 = cb * 6, end = c0 + 6 < t->cin ? c0 + 6 : t->cin; c0 < end;) {
      int kb = channel_block(end - c0);
      for (int64_t k = 0; k < t->kk; k++)
        for (int64_t h = 0; h < t->OH; h += R)
          for (int64_t w0 = 0; w0 < t->OW; w0 += 8 * V) dx_tiles[row_kind(t, h)][kb](t, dy, wk, xp, c0, k, h, w0);
      c0 += tile_channels[kb];
    }
}

static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* acc[ob][j] += dy[o0+ob, h, w0..w0+7] * planes of column j at (h, w0..w0+7);
 * masked: only the lanes below rem (zeros elsewhere, so nothing past the row adds in). */
static inline __attribute__((always_inline)) void wgrad_step(__m256 acc[3][3], const float *dyr, int64_t plane,
                                                             const float *const *xr, int64_t w0, bool masked,
                                                             int64_t rem, const int OB, const int KB) {
  __m256i m = lanes_below(rem);
  __m256 g[3];
#pragma GCC unroll 3
  for (int ob = 0; ob < OB; ob++)
    g[ob] = masked ? _mm256_maskload_ps(dyr + ob * plane + w0, m) : _mm256_loadu_ps(dyr + ob * plane + w0);
#pragma GCC unroll 3
  for (int j = 0; j < KB; j++) {
    __m256 xv = masked ? _mm256_maskload_ps(xr[j] + w0, m) : _mm256_loadu_ps(xr[j] + w0);
#pragma GCC unroll 3
    for (int ob = 0; ob < OB; ob++) acc[ob][j] = _mm256_fmadd_ps(g[ob], xv, acc[ob][j]);
  }
}

/* One weight-gradient tile: dw[o, r] += sum over the output plane of
 * dy[o, oh, ow] * planes of column r = (c, k) at (oh, ow), o = o0..o0+OB-1,
 * r = r0..r0+KB-1. */
static inline __attribute__((always_inline)) void wgrad_tile(const gr_conv_taps *t, const float *xp, const float *dy,
                                                             float *dw, int64_t o0, int64_t r0, const int OB,
                                                             const int KB) {
  const int64_t kk = t->kk, K = t->cin * kk, plane = t->OH * t->OW, OW = t->OW, full = OW / 8 * 8;
  const float *col[3];
#pragma GCC unroll 3
  for (int j = 0; j < KB; j++) col[j] = xp + (r0 + j) / kk * t->cstride + t->toff[(r0 + j) % kk];
  __m256 acc[3][3];
#pragma GCC unroll 3
  for (int ob = 0; ob < OB; ob++)
#pragma GCC unroll 3
    for (int j = 0; j < KB; j++) acc[ob][j] = _mm256_setzero_ps();
  for (int64_t h = 0; h < t->OH; h++) {
    const float *dyr = dy + o0 * plane + h * OW, *xr[3];
#pragma GCC unroll 3
    for (int j = 0; j < KB; j++) xr[j] = col[j] + h * t->pitch;
    for (int64_t w0 = 0; w0 < full; w0 += 8) wgrad_step(acc, dyr, plane, xr, w0, false, 8, OB, KB);
    if (full < OW) wgrad_step(acc, dyr, plane, xr, full, true, OW - full, OB, KB);
  }
#pragma GCC unroll 3
  for (int ob = 0; ob < OB; ob++)
#pragma GCC unroll 3
    for (int j = 0; j < KB; j++) dw[(o0 + ob) * K + r0 + j] += hsum8(acc[ob][j]);
}

#define WGRAD_TILE_FN(OB, KB)                                                                                     \
  static void wgrad_tile_##OB##x##KB(const gr_conv_taps *t, const float *xp, const float *dy, float *dw,         \
                                     int64_t o0, int64_t r0) {                                                    \
    wgrad_tile(t, xp, dy, dw, o0, r0, OB, KB);                                                                    \
  }
WGRAD_TILE_FN(3, 3)
WGRAD_TILE_FN(1, 3)
WGRAD_TILE_FN(3, 1)
WGRAD_TILE_FN(1, 1)

/* Tiles of 3 output channels x 3 columns (c, k) of the kernel; the rest in
 * tiles of 1. Parallel over blocks of 3 columns: each writes its own dw. */
void gr_conv_taps_wgrad(const gr_conv_taps *t, const float *xp, const float *dy, float *dw) {
  int64_t K = t->cin * t->kk, work = t->OH * t->OW * t->cout * K;
#pragma omp parallel for schedule(static) if (work > 64 * GR_PAR_MIN)
  for (int64_t rb = 0; rb < (K + 2) / 3; rb++) {
    int64_t r0 = rb * 3;
    bool wide = K - r0 >= 3;
    for (int64_t o0 = 0; o0 < t->cout;) {
      if (t->cout - o0 >= 3) {
        if (wide) wgrad_tile_3x3(t, xp, dy, dw, o0, r0);
        else
          for (int64_t r = r0; r < K; r++) wgrad_tile_3x1(t, xp, dy, dw, o0, r);
        o0 += 3;
      } else {
        if (wide) wgrad_tile_1x3(t, xp, dy, dw, o0, r0);
        else
          for (int64_t r = r0; r < K; r++) wgrad_tile_1x1(t, xp, dy, dw, o0, r);
        o0 += 1;
      }
    }
  }
}

bool gr_conv_taps_wgrad_t_fits(const gr_conv_taps *t) { return direct_enabled && t->cout % 8 == 0; }

int64_t gr_conv_taps_wgrad_t_scratch(const gr_conv_taps *t) { return t->OH * t->OW * t->cout; }

/* dyt [P, cout] = dy [cout, P], P = OH*OW: 8x8 blocks through the
 * registers (cout is a multiple of 8), the last P % 8 columns one by one. */
static void transpose_dy(const gr_conv_taps *t, const float *dy, float *dyt) {
  const int64_t P = t->OH * t->OW, cout = t->cout, P8 = P / 8 * 8;
  for (int64_t o0 = 0; o0 < cout; o0 += 8) {
    for (int64_t p0 = 0; p0 < P8; p0 += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(dy + (o0 + i) * P + p0);
      gr_transpose8_ps(r);
      for (int i = 0; i < 8; i++) _mm256_storeu_ps(dyt + (p0 + i) * cout + o0, r[i]);
    }
    for (int64_t p = P8; p < P; p++)
      for (int i = 0; i < 8; i++) dyt[p * cout + o0 + i] = dy[(o0 + i) * P + p];
  }
}

/* One tile of the transposed weight gradient: dwt[r, o] for r = r0..r0+RB-1
 * (RB plane columns (c, k), each read through its own pointer and
 * broadcast) and o = o0..o0+8NV-1 (vectors of dyt rows), summed over the
 * output plane in registers: per output, NV loads, RB broadcasts and RB*NV
 * FMAs, as the forward tile. */
static inline __attribute__((always_inline)) void wgrad_t_tile(const gr_conv_taps *t, const float *xp,
                                                               const float *dyt, float *dwt, int64_t r0, int64_t o0,
                                                               const int RB, const int NV) {
  const int64_t kk = t->kk, cout = t->cout, OW = t->OW;
  const float *col[6];
#pragma GCC unroll 6
  for (int j = 0; j < RB; j++) col[j] = xp + (r0 + j) / kk * t->cstride + t->toff[(r0 + j) % kk];
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int j = 0; j < RB; j++)
#pragma GCC unroll 2
    for (int nv = 0; nv < NV; nv++) acc[j][nv] = _mm256_setzero_ps();
  for (int64_t h = 0; h < t->OH; h++) {
    const float *g = dyt + h * OW * cout + o0;
    const int64_t xo = h * t->pitch;
    for (int64_t w = 0; w < OW; w++, g += cout) {
      __m256 gv[2];
#pragma GCC unroll 2
      for (int nv = 0; nv < NV; nv++) gv[nv] = _mm256_loadu_ps(g + 8 * nv);
#pragma GCC unroll 6
      for (int j = 0; j < RB; j++) {
        __m256 xb = _mm256_broadcast_ss(col[j] + xo + w);
#pragma GCC unroll 2
        for (int nv = 0; nv < NV; nv++) acc[j][nv] = _mm256_fmadd_ps(xb, gv[nv], acc[j][nv]);
      }
    }
  }
#pragma GCC unroll 6
  for (int j = 0; j < RB; j++)
#pragma GCC unroll 2
    for (int nv = 0; nv < NV; nv++) _mm256_storeu_ps(dwt + (r0 + j) * cout + o0 + 8 * nv, acc[j][nv]);
}

#define WGRAD_T_TILE_FN(RB, NV)                                                                                   \
  static void wgrad_t_tile_##RB##x##NV(const gr_conv_taps *t, const float *xp, const float *dyt, float *dwt,     \
                                       int64_t r0, int64_t o0) {                                                  \
    wgrad_t_tile(t, xp, dyt, dwt, r0, o0, RB, NV);                                                                \
  }
WGRAD_T_TILE_FN(6, 2)
WGRAD_T_TILE_FN(4, 2)
WGRAD_T_TILE_FN(2, 2)
WGRAD_T_TILE_FN(1, 2)
WGRAD_T_TILE_FN(6, 1)
WGRAD_T_TILE_FN(4, 1)
WGRAD_T_TILE_FN(2, 1)
WGRAD_T_TILE_FN(1, 1)

typedef void (*wgrad_t_tile_fn)(const gr_conv_taps *, const float *, const float *, float *, int64_t, int64_t);
static const wgrad_t_tile_fn wgrad_t_tiles[2][4] = {
    {wgrad_t_tile_6x2, wgrad_t_tile_4x2, wgrad_t_tile_2x2, wgrad_t_tile_1x2},
    {wgrad_t_tile_6x1, wgrad_t_tile_4x1, wgrad_t_tile_2x1, wgrad_t_tile_1x1}};

/* Blocks of 6 columns (c, k) in parallel: each writes its own rows of dwt. */
void gr_conv_taps_wgrad_t(const gr_conv_taps *t, const float *xp, const float *dy, float *dyt, float *dwt) {
  GR_ASSERT(t->cout % 8 == 0);
  transpose_dy(t, dy, dyt);
  int64_t K = t->cin * t->kk, work = t->OH * t->OW * t->cout * K;
#pragma omp parallel for schedule(static) if (work > 64 * GR_PAR_MIN)
  for (int64_t rb = 0; rb < (K + 5) / 6; rb++)
    for (int64_t r0 = rb * 6, end = r0 + 6 < K ? r0 + 6 : K; r0 < end;) {
      int kb = channel_block(end - r0);
      int64_t o0 = 0;
      for (; o0 + 16 <= t->cout; o0 += 16) wgrad_t_tiles[0][kb](t, xp, dyt, dwt, r0, o0);
      if (o0 < t->cout) wgrad_t_tiles[1][kb](t, xp, dyt, dwt, r0, o0);
      r0 += tile_channels[kb];
    }
}
#else
/* Without AVX2 ops_conv.c does not call these; kept correct all the same. */
static float taps_plane_at(const gr_conv_taps *t, const float *xp, int64_t c, int64_t k, int64_t h, int64_t w) {
  return xp[c * t->cstride + t->toff[k] + h * t->pitch + w];
}

void gr_conv_taps_forward(const gr_conv_taps *t, const float *xp, const float *wk, const float *bias,
                          bool accumulate, float *y) {
  for (int64_t o = 0; o < t->cout; o++)
    for (int64_t h = 0; h < t->OH; h++)
      for (int64_t w = 0; w < t->OW; w++) {
        float s = bias ? bias[o] : 0.0f;
        for (int64_t c = 0; c < t->cin; c++)
          for (int64_t k = 0; k < t->kk; k++) s += wk[(o * t->cin + c) * t->kk + k] * taps_plane_at(t, xp, c, k, h, w);
        float *yp = y + (o * t->OH + h) * t->OW + w;
        *yp = accumulate ? *yp + s : s;
      }
}

void gr_conv_taps_wgrad(const gr_conv_taps *t, const float *xp, const float *dy, float *dw) {
  for (int64_t o = 0; o < t->cout; o++)
    for (int64_t c = 0; c < t->cin; c++)
      for (int64_t k = 0; k < t->kk; k++) {
        float s = 0;
        for (int64_t h = 0; h < t->OH; h++)
          for (int64_t w = 0; w < t->OW; w++)
            s += dy[(o * t->OH + h) * t->OW + w] * taps_plane_at(t, xp, c, k, h, w);
        dw[(o * t->cin + c) * t->kk + k] += s;
      }
}

bool gr_conv_taps_wgrad_t_fits(const gr_conv_taps *t) {
  (void)t;
  return false;
}

int64_t gr_conv_taps_wgrad_t_scratch(const gr_conv_taps *t) { return t->OH * t->OW * t->cout; }

void gr_conv_taps_wgrad_t(const gr_conv_taps *t, const float *xp, const float *dy, float *dyt, float *dwt) {
  (void)t, (void)xp, (void)dy, (void)dyt, (void)dwt;
  GR_ASSERT(!"gr_conv_taps_wgrad_t without AVX2 (gr_conv_taps_wgrad_t_fits is false)");
}

void gr_conv_taps_dx(const gr_conv_taps *t, const float *dy, const float *wk, float *xp) {
  for (int64_t c = 0; c < t->cin; c++)
    for (int64_t k = 0; k < t->kk; k++)
      for (int64_t h = 0; h < t->OH; h++)
        for (int64_t w = 0; w < t->OW; w++) {
          float s = 0;
          for (int64_t o = 0; o < t->cout; o++) s += wk[(o * t->cin + c) * t->kk + k] * dy[(o * t->OH + h) * t->OW + w];
          xp[c * t->cstride + t->toff[k] + h * t->pitch + w] += s;
        }
}
#endif
