/* core/conv_winograd.c — Winograd F(2x2, 3x3) kernels for same-size 3x3
 * convolutions (contract in conv_winograd.h; used by ops_conv.c).
 *
 * Transforms (correlation, as conv2d): V = B^T d B, U = G g G^T,
 * y = A^T (U . V) A with
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1].
 * Tile (i, j) covers outputs rows 2i, 2i+1 and columns 2j, 2j+1 and reads
 * the padded planes' rows 2i..2i+3, columns 2j..2j+3. Tiles are numbered
 * row by row and handled in chunks of 8 (one vector lane each): 8
 * consecutive tiles of one tile row, or for 8-wide planes (4 tiles a row)
 * the 4 tiles of two tile rows. Either way a chunk's patches are two runs
 * of 8 floats per row, from two pointers (chunk_at: 16 floats of one row,
 * or 8 of two rows), and its outputs two runs of 8 floats, so one shuffle
 * per pair of loads splits even and odd columns (input_chunk) and one
 * unpack per store merges them back (store_merged); the tiles then sit in
 * the lanes in the order 0 1 4 5 2 3 6 7 (full rows) or row i: 0 1, row
 * i+1: 0 1, row i: 2 3, row i+1: 2 3, the same for V, M and the output. A block of up to
 * WINO_BLOCK_CHUNKS chunks goes through input transform -> 16 products ->
 * output transform while its V and M (16 x channels x 16 tiles) stay in
 * L1/L2 (blocks of 2 chunks ran 5-10% faster than of 4, 4 faster than 8),
 * laid out [channel][16 positions][16 tiles] so every transform
 * reads and writes at fixed offsets. */
#include "core/conv_winograd.h"

#include "core/op.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define WINO_SIMD 1
#else
#define WINO_SIMD 0
#endif

#define WINO_BLOCK_CHUNKS 2
#define WINO_TB (8 * WINO_BLOCK_CHUNKS) /* tiles per block: V and M are [channel][16 positions][WINO_TB] */
#define WINO_CS (16 * WINO_TB + 16) /* floats from one channel of V or M to the next (+ 16: not 2 KiB, which
                                       mapped every channel to the same 2 cache sets) */

static bool wino_enabled = true;

void gr_conv_wino_set_enabled(bool on) { wino_enabled = on; }

bool gr_conv_wino_fits(const gr_conv_direct *d) {
  if (!WINO_SIMD || !wino_enabled || !gr_conv_direct_available()) return false;
  if (d->kh != 3 || d->kw != 3 || d->dh != 1 || d->dw != 1 || d->ph != 1 || d->pw != 1) return false;
  if (d->cin < 8 || d->cout < 8 || d->H < 2 || d->H % 2 || d->W % 2) return false;
  int64_t tw = d->W / 2, th = d->H / 2;
  return tw % 8 == 0 || (tw == 4 && th % 2 == 0);
}

/* The 4 values G r for a row r of 3 (scalar and 8 lanes). */
static void wino_g(const float r0, const float r1, const float r2, float out[4]) {
  out[0] = r0;
  out[1] = 0.5f * (r0 + r2 + r1);
  out[2] = 0.5f * (r0 + r2 - r1);
  out[3] = r2;
}

/* u[pos, o, c] for one (o, c): G g G^T, g = wk[o, c]. */
static void wino_weight(int64_t cout, int64_t cin, const float *wk, int64_t o, int64_t c, float *u) {
  const float *g = wk + (o * cin + c) * 9;
  float col[3][4], row[4]; /* col[j] = G g[:, j] */
  for (int j = 0; j < 3; j++) wino_g(g[j], g[3 + j], g[6 + j], col[j]);
  for (int i = 0; i < 4; i++) {
    wino_g(col[0][i], col[1][i], col[2][i], row);
    for (int j = 0; j < 4; j++) u[((i * 4 + j) * cout + o) * cin + c] = row[j];
  }
}

#if WINO_SIMD
static void wino_g8(__m256 r0, __m256 r1, __m256 r2, __m256 out[4]) {
  __m256 half = _mm256_set1_ps(0.5f), s = _mm256_add_ps(r0, r2);
  out[0] = r0;
  out[1] = _mm256_mul_ps(half, _mm256_add_ps(s, r1));
  out[2] = _mm256_mul_ps(half, _mm256_sub_ps(s, r1));
  out[3] = r2;
}
#endif

/* 8 input channels at a time (the same operations per lane as
 * wino_weight: the same bits), the rest one by one. */
void gr_conv_wino_weights(int64_t cout, int64_t cin, const float *wk, float *u) {
  for (int64_t o = 0; o < cout; o++) {
    int64_t c = 0;
#if WINO_SIMD
    const __m256i nine = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
    for (; c + 8 <= cin; c += 8) {
      const float *g = wk + (o * cin + c) * 9;
      __m256 col[3][4], row[4];
      for (int j = 0; j < 3; j++)
        wino_g8(_mm256_i32gather_ps(g + j, nine, 4), _mm256_i32gather_ps(g + 3 + j, nine, 4),
                _mm256_i32gather_ps(g + 6 + j, nine, 4), col[j]);
      for (int i = 0; i < 4; i++) {
        wino_g8(col[0][i], col[1][i], col[2][i], row);
        for (int j = 0; j < 4; j++) _mm256_storeu_ps(u + ((i * 4 + j) * cout + o) * cin + c, row[j]);
      }
    }
#endif
    for (; c < cin; c++) wino_weight(cout, cin, wk, o, c, u);
  }
}

int64_t gr_conv_wino_scratch_floats(const gr_conv_direct *d) { return WINO_CS * (d->cin + d->cout); }

bool gr_conv_wino_wgrad_fits(const gr_conv_direct *d) { return gr_conv_wino_fits(d) && d->cin % 8 == 0; }

/* Floats from one position's slab of V' [16][tiles][cin] or dM
 * [16][cout][tiles] to the next: 16 more than the slab, so the 16 stores of
 * a transform do not all land in one cache set (the slabs are powers of two). */
static int64_t slab(int64_t floats) { return floats + 16; }

/* V', dM, then one chunk's V [cin][16][WINO_TB]. */
int64_t gr_conv_wino_wgrad_scratch_floats(const gr_conv_direct *d) {
  int64_t tiles = d->H / 2 * (d->W / 2);
  return 16 * (slab(tiles * d->cin) + slab(tiles * d->cout)) + WINO_CS * d->cin;
}

/* The 3 values G^T r for a column r of 4: G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1]. */
static void wino_gt(const float r0, const float r1, const float r2, const float r3, float out[3]) {
  float s = 0.5f * (r1 + r2);
  out[0] = r0 + s;
  out[1] = 0.5f * (r1 - r2);
  out[2] = s + r3;
}

void gr_conv_wino_wgrad_add(int64_t cout, int64_t cin, const float *du, float *dw) {
  const int64_t ps = cout * cin;
  for (int64_t o = 0; o < cout; o++)
    for (int64_t c = 0; c < cin; c++) {
      const float *u = du + o * cin + c;
      float col[4][3], row[3]; /* col[j] = G^T du[:, j] */
      for (int j = 0; j < 4; j++) wino_gt(u[j * ps], u[(4 + j) * ps], u[(8 + j) * ps], u[(12 + j) * ps], col[j]);
      float *g = dw + (o * cin + c) * 9;
      for (int i = 0; i < 3; i++) {
        wino_gt(col[0][i], col[1][i], col[2][i], col[3][i], row);
        for (int j = 0; j < 3; j++) g[i * 3 + j] += row[j];
      }
    }
}

#if WINO_SIMD
/* Where chunk k reads (lanes 0-3 from in_a, 4-7 from in_b, at the top-left
 * corner of its tiles' patches in the padded planes) and writes (out_a,
 * out_b: first output row of those tiles). */
typedef struct wino_chunk {
  int64_t in_a, in_b, out_a, out_b;
} wino_chunk;

static wino_chunk chunk_at(const gr_conv_direct *d, int64_t pitch, int64_t k) {
  int64_t tw = d->W / 2;
  if (tw % 8 == 0) {
    int64_t per = tw / 8, i = k / per, j0 = k % per * 8;
    int64_t in = 2 * i * pitch + 2 * j0, out = 2 * i * d->W + 2 * j0;
    return (wino_chunk){in, in + 8, out, out + 8};
  }
  int64_t i = 2 * k; /* 4 tiles a row: tile rows i and i + 1 */
  return (wino_chunk){2 * i * pitch, 2 * (i + 1) * pitch, 2 * i * d->W, 2 * (i + 1) * d->W};
}

/* a[0..7] and b[0..7] = the even and odd columns interleaved, the inverse
 * of input_chunk's shuffles (added to what is there when accumulate). */
static inline void store_merged(float *a, float *b, __m256 even, __m256 odd, bool accumulate) {
  __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
  if (accumulate) {
    lo = _mm256_add_ps(lo, _mm256_loadu_ps(a));
    hi = _mm256_add_ps(hi, _mm256_loadu_ps(b));
  }
  _mm256_storeu_ps(a, lo);
  _mm256_storeu_ps(b, hi);
}

/* v[c, pos, lt..lt+7] = (B^T d B)[pos] of the chunk's 8 tiles, every channel:
 * for each row a of B^T the combination of 2 patch rows, split into even
 * and odd columns, times B. */
static void input_chunk(const float *xp, int64_t cin, int64_t cstride, int64_t pitch, wino_chunk ch, float *v,
                        int64_t lt) {
  static const int ra[4] = {0, 1, 2, 1}, rb[4] = {2, 2, 1, 3}; /* B^T row a: patch row ra[a] -+ row rb[a] */
  for (int64_t c = 0; c < cin; c++) {
    const float *a = xp + c * cstride + ch.in_a, *b = xp + c * cstride + ch.in_b;
    float *vc = v + c * WINO_CS + lt;
    for (int r = 0; r < 4; r++) {
      const int64_t p = ra[r] * pitch, q = rb[r] * pitch;
      __m256 l0 = _mm256_loadu_ps(a + p), l1 = _mm256_loadu_ps(b + p), l2 = _mm256_loadu_ps(a + p + 2);
      __m256 l3 = _mm256_loadu_ps(b + p + 2), m0 = _mm256_loadu_ps(a + q), m1 = _mm256_loadu_ps(b + q);
      __m256 m2 = _mm256_loadu_ps(a + q + 2), m3 = _mm256_loadu_ps(b + q + 2);
      if (r == 1) { /* the one row of B^T that adds */
        l0 = _mm256_add_ps(l0, m0), l1 = _mm256_add_ps(l1, m1), l2 = _mm256_add_ps(l2, m2), l3 = _mm256_add_ps(l3, m3);
      } else {
        l0 = _mm256_sub_ps(l0, m0), l1 = _mm256_sub_ps(l1, m1), l2 = _mm256_sub_ps(l2, m2), l3 = _mm256_sub_ps(l3, m3);
      }
      __m256 d0 = _mm256_shuffle_ps(l0, l1, 0x88), d1 = _mm256_shuffle_ps(l0, l1, 0xDD);
      __m256 d2 = _mm256_shuffle_ps(l2, l3, 0x88), d3 = _mm256_shuffle_ps(l2, l3, 0xDD);
      float *vr = vc + 4 * r * WINO_TB;
      _mm256_storeu_ps(vr, _mm256_sub_ps(d0, d2));
      _mm256_storeu_ps(vr + WINO_TB, _mm256_add_ps(d1, d2));
      _mm256_storeu_ps(vr + 2 * WINO_TB, _mm256_sub_ps(d2, d1));
      _mm256_storeu_ps(vr + 3 * WINO_TB, _mm256_sub_ps(d1, d3));
    }
  }
}

/* y for the chunk's 8 tiles = A^T m A (+ bias), every output channel. */
static void output_chunk(const float *m, int64_t cout, int64_t lt, wino_chunk ch, int64_t W, int64_t plane,
                         const float *bias, bool accumulate, float *y) {
  for (int64_t o = 0; o < cout; o++) {
    const float *mo = m + o * WINO_CS + lt;
    __m256 s0[4], s1[4]; /* row i of m times A: columns 0 and 1 */
    for (int i = 0; i < 4; i++) {
      __m256 m0 = _mm256_loadu_ps(mo + (4 * i) * WINO_TB), m1 = _mm256_loadu_ps(mo + (4 * i + 1) * WINO_TB);
      __m256 m2 = _mm256_loadu_ps(mo + (4 * i + 2) * WINO_TB), m3 = _mm256_loadu_ps(mo + (4 * i + 3) * WINO_TB);
      s0[i] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
      s1[i] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    __m256 bv = _mm256_set1_ps(bias ? bias[o] : 0.0f);
    __m256 y00 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0[0], s0[1]), s0[2]), bv);
    __m256 y01 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s1[0], s1[1]), s1[2]), bv);
    __m256 y10 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s0[1], s0[2]), s0[3]), bv);
    __m256 y11 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s1[1], s1[2]), s1[3]), bv);
    float *ya = y + o * plane + ch.out_a, *yb = y + o * plane + ch.out_b;
    store_merged(ya, yb, y00, y01, accumulate);
    store_merged(ya + W, yb + W, y10, y11, accumulate);
  }
}

/* out[i, 8NV columns] = sum over k < K of a[i*arow + k] b[k*bk + 0..8NV-1],
 * i < OB: one register tile of the products, OB x 8NV accumulators (2 loads
 * and 6 broadcasts per 12 FMAs at 6 x 2, as conv_direct.c's tiles). The
 * forward's m = u v (k: input channels) and the weight gradient's
 * du = dm vt (k: tiles) are both this. */
static inline __attribute__((always_inline)) void product_tile(const float *a, int64_t arow, const float *b,
                                                               int64_t bk, int64_t K, float *out, int64_t orow,
                                                               const int OB, const int NV) {
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int ob = 0; ob < OB; ob++)
#pragma GCC unroll 2
    for (int nv = 0; nv < NV; nv++) acc[ob][nv] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k++, b += bk) {
    __m256 xv[2];
#pragma GCC unroll 2
    for (int nv = 0; nv < NV; nv++) xv[nv] = _mm256_loadu_ps(b + 8 * nv);
#pragma GCC unroll 6
    for (int ob = 0; ob < OB; ob++) {
      __m256 wb = _mm256_broadcast_ss(a + ob * arow + k);
#pragma GCC unroll 2
      for (int nv = 0; nv < NV; nv++) acc[ob][nv] = _mm256_fmadd_ps(wb, xv[nv], acc[ob][nv]);
    }
  }
#pragma GCC unroll 6
  for (int ob = 0; ob < OB; ob++)
#pragma GCC unroll 2
    for (int nv = 0; nv < NV; nv++) _mm256_storeu_ps(out + ob * orow + 8 * nv, acc[ob][nv]);
}

#define PRODUCT_TILE_FN(OB, NV)                                                                                  \
  static void product_tile_##OB##x##NV(const float *a, int64_t arow, const float *b, int64_t bk, int64_t K,     \
                                       float *out, int64_t orow) {                                             \
    product_tile(a, arow, b, bk, K, out, orow, OB, NV);                                                        \
  }
PRODUCT_TILE_FN(6, 2)
PRODUCT_TILE_FN(4, 2)
PRODUCT_TILE_FN(2, 2)
PRODUCT_TILE_FN(1, 2)
PRODUCT_TILE_FN(6, 1)
PRODUCT_TILE_FN(4, 1)
PRODUCT_TILE_FN(2, 1)
PRODUCT_TILE_FN(1, 1)

typedef void (*product_tile_fn)(const float *, int64_t, const float *, int64_t, int64_t, float *, int64_t);
static const int64_t product_rows[4] = {6, 4, 2, 1};
static const product_tile_fn product_tiles[2][4] = {
    {product_tile_6x2, product_tile_4x2, product_tile_2x2, product_tile_1x2},
    {product_tile_6x1, product_tile_4x1, product_tile_2x1, product_tile_1x1}};

/* out [rows, cols] = a [rows, K] (row stride arow) b [K, cols] (row stride
 * bk), cols a multiple of 8; out's row stride orow. */
static void product(const float *a, int64_t arow, const float *b, int64_t bk, int64_t K, float *out, int64_t orow,
                    int64_t rows, int64_t cols) {
  for (int64_t r0 = 0; r0 < rows;) {
    int k = 0;
    while (product_rows[k] > rows - r0) k++;
    int64_t c0 = 0;
    for (; c0 + 16 <= cols; c0 += 16) product_tiles[0][k](a + r0 * arow, arow, b + c0, bk, K, out + r0 * orow + c0, orow);
    if (c0 < cols) product_tiles[1][k](a + r0 * arow, arow, b + c0, bk, K, out + r0 * orow + c0, orow);
    r0 += product_rows[k];
  }
}

/* m[pos] = u[pos] v[pos] for the block's nt tiles (a multiple of 8). */
static void product_block(const float *u, const float *v, float *m, int64_t cin, int64_t cout, int64_t nt) {
  for (int pos = 0; pos < 16; pos++)
    product(u + pos * cout * cin, cin, v + pos * WINO_TB, WINO_CS, cin, m + pos * WINO_TB, WINO_CS, cout, nt);
}

/* dm[pos, o, lt..lt+7] = (A dY A^T)[pos] of the chunk's 8 tiles, A = (A^T)^T,
 * the tiles in the lanes in input_chunk's order. */
static void dy_chunk(const float *dy, int64_t cout, int64_t W, int64_t plane, int64_t tiles, wino_chunk ch,
                     float *dm, int64_t lt) {
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t o = 0; o < cout; o++) {
    const float *a = dy + o * plane + ch.out_a, *b = dy + o * plane + ch.out_b;
    __m256 p = _mm256_loadu_ps(a), q = _mm256_loadu_ps(b), p1 = _mm256_loadu_ps(a + W), q1 = _mm256_loadu_ps(b + W);
    __m256 y[2][2] = {{_mm256_shuffle_ps(p, q, 0x88), _mm256_shuffle_ps(p, q, 0xDD)},
                      {_mm256_shuffle_ps(p1, q1, 0x88), _mm256_shuffle_ps(p1, q1, 0xDD)}};
    __m256 r[4][2]; /* A Y: rows Y0, Y0 + Y1, Y0 - Y1, -Y1 */
    for (int j = 0; j < 2; j++) {
      r[0][j] = y[0][j];
      r[1][j] = _mm256_add_ps(y[0][j], y[1][j]);
      r[2][j] = _mm256_sub_ps(y[0][j], y[1][j]);
      r[3][j] = _mm256_sub_ps(zero, y[1][j]);
    }
    float *mo = dm + o * tiles + lt;
    const int64_t ps = slab(cout * tiles);
    for (int i = 0; i < 4; i++) { /* row i of (A Y) A^T */
      _mm256_storeu_ps(mo + (4 * i) * ps, r[i][0]);
      _mm256_storeu_ps(mo + (4 * i + 1) * ps, _mm256_add_ps(r[i][0], r[i][1]));
      _mm256_storeu_ps(mo + (4 * i + 2) * ps, _mm256_sub_ps(r[i][0], r[i][1]));
      _mm256_storeu_ps(mo + (4 * i + 3) * ps, _mm256_sub_ps(zero, r[i][1]));
    }
  }
}

void gr_conv_wino_wgrad(const gr_conv_direct *d, const float *xp, const float *dy, float *scratch, float *du) {
  gr_conv_taps t;
  gr_conv_direct_taps(d, &t);
  const int64_t cin = d->cin, cout = d->cout, tiles = d->H / 2 * (d->W / 2), chunks = tiles / 8;
  const int64_t vs = slab(tiles * cin), ms = slab(tiles * cout);
  float *vt = scratch, *dm = vt + 16 * vs, *v = dm + 16 * ms;
  for (int64_t k = 0; k < chunks; k++) {
    wino_chunk ch = chunk_at(d, t.pitch, k);
    input_chunk(xp, cin, t.cstride, t.pitch, ch, v, 0);
    for (int pos = 0; pos < 16; pos++) /* v [c][pos][8 tiles] -> vt [pos][tile][c] */
      for (int64_t c0 = 0; c0 < cin; c0 += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(v + (c0 + i) * WINO_CS + pos * WINO_TB);
        gr_transpose8_ps(r);
        for (int i = 0; i < 8; i++) _mm256_storeu_ps(vt + pos * vs + (8 * k + i) * cin + c0, r[i]);
      }
    dy_chunk(dy, cout, d->W, d->H * d->W, tiles, ch, dm, 8 * k);
  }
  for (int pos = 0; pos < 16; pos++) /* du[pos] = dm[pos] [cout, tiles] vt[pos] [tiles, cin] */
    product(dm + pos * ms, tiles, vt + pos * vs, cin, tiles, du + pos * cout * cin, cin, cout, cin);
}

void gr_conv_wino_forward(const gr_conv_direct *d, const float *xp, const float *u, const float *bias,
                          bool accumulate, float *scratch, float *y) {
  gr_conv_taps t;
  gr_conv_direct_taps(d, &t);
  int64_t chunks = d->H / 2 * (d->W / 2) / 8, plane = d->H * d->W;
  float *v = scratch, *m = scratch + WINO_CS * d->cin;
  for (int64_t k0 = 0; k0 < chunks; k0 += WINO_BLOCK_CHUNKS) {
    int64_t kb = chunks - k0 < WINO_BLOCK_CHUNKS ? chunks - k0 : WINO_BLOCK_CHUNKS;
    for (int64_t k = 0; k < kb; k++) input_chunk(xp, d->cin, t.cstride, t.pitch, chunk_at(d, t.pitch, k0 + k), v, 8 * k);
    product_block(u, v, m, d->cin, d->cout, 8 * kb);
    for (int64_t k = 0; k < kb; k++)
      output_chunk(m, d->cout, 8 * k, chunk_at(d, t.pitch, k0 + k), d->W, plane, bias, accumulate, y);
  }
}
#else
void gr_conv_wino_wgrad(const gr_conv_direct *d, const float *xp, const float *dy, float *scratch, float *du) {
  (void)d, (void)xp, (void)dy, (void)scratch, (void)du;
  GR_ASSERT(!"gr_conv_wino_wgrad without AVX2 (gr_conv_wino_fits is false)");
}

void gr_conv_wino_forward(const gr_conv_direct *d, const float *xp, const float *u, const float *bias,
                          bool accumulate, float *scratch, float *y) {
  (void)d, (void)xp, (void)u, (void)bias, (void)accumulate, (void)scratch, (void)y;
  GR_ASSERT(!"gr_conv_wino_forward without AVX2 (gr_conv_wino_fits is false)");
}
#endif
