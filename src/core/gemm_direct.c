/* core/gemm_direct.c — gemm kernels without packing for the small-batch
 * products of a linear layer (see core/gemm_direct.h). OpenBLAS packs the
 * weight in every call (for the MLP's 784x256 forward that is most of its
 * 12% packing share); these read it in place.
 * - NT (y = x W^T): tiles of 4 rows of A x 3 rows of B (6 where AVX-512VL
 *   gives 32 vector registers), 12 (24) accumulators of 8 lanes over k
 *   (masked last step), then one 8-lane sum per element.
 * - NN / TN (dx = dy W, dW = dy^T x): tiles of 4 rows x 24 columns of C,
 *   an element of A broadcast against 3 vectors of a row of B per k.
 * Tiles run over C by columns of B (outer) and rows of A (inner), so a
 * panel of B stays in L1 while A streams from L2. */
#include "core/gemm_direct.h"

static bool g_enabled = true, g_wide = true;

void gr_gemm_direct_set_enabled(bool on) { g_enabled = on; }
void gr_gemm_direct_set_wide(bool on) { g_wide = on; }

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

/* All-ones in the first n lanes (0 <= n <= 8). */
static __m256i lane_mask(int64_t n) {
  static const int32_t ramp[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256((const __m256i *)(ramp + 8 - n));
}

/* The lane sums of a, b, c, d in lanes 0..3, each ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)). */
INLINE __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* Lanes 0..n-1 of s into y[0..n) (n <= 4), each beta y + s when beta != 0. */
INLINE void store_sums(const int n, float *y, __m128 s, float beta) {
  __m128 vbeta = _mm_set1_ps(beta);
  if (n == 4) {
    if (beta != 0) s = _mm_fmadd_ps(vbeta, _mm_loadu_ps(y), s);
    _mm_storeu_ps(y, s);
  } else if (n == 1) {
    if (beta != 0) s = _mm_fmadd_ss(vbeta, _mm_load_ss(y), s);
    _mm_store_ss(y, s);
  } else {
    if (beta != 0) {
      __m128 old = _mm_castsi128_ps(_mm_loadu_si64(y)); /* unaligned 2 floats */
      if (n == 3) old = _mm_movelh_ps(old, _mm_load_ss(y + 2));
      s = _mm_fmadd_ps(vbeta, old, s);
    }
    _mm_storeu_si64(y, _mm_castps_si128(s));
    if (n == 3) _mm_store_ss(y + 2, _mm_movehl_ps(s, s));
  }
}

/* C[r, c] = beta C[r, c] + sum_k A[r, k] B[c, k] for r < R, c < NC (NC <= 6;
 * above 3 only where 32 vector registers hold the 4 x NC accumulators). */
INLINE void nt_tile(const int R, const int NC, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                    float beta, float *C, int64_t ldc, __m256i tail) {
  __m256 acc[4][6], b[6];
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 6; c++) acc[r][c] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    for (int c = 0; c < NC; c++) b[c] = _mm256_loadu_ps(B + c * ldb + k);
    for (int r = 0; r < R; r++) {
      __m256 a = _mm256_loadu_ps(A + r * lda + k);
      for (int c = 0; c < NC; c++) acc[r][c] = _mm256_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
  if (k < K) {
    for (int c = 0; c < NC; c++) b[c] = _mm256_maskload_ps(B + c * ldb + k, tail);
    for (int r = 0; r < R; r++) {
      __m256 a = _mm256_maskload_ps(A + r * lda + k, tail);
      for (int c = 0; c < NC; c++) acc[r][c] = _mm256_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
  __m256 zero = _mm256_setzero_ps();
  for (int r = 0; r < R; r++) /* lanes of each hsum4: row r's sums of 4 columns */
    for (int c0 = 0; c0 < NC; c0 += 4) {
      __m256 *a = acc[r] + c0;
      int n = NC - c0 < 4 ? NC - c0 : 4;
      __m128 s = hsum4(a[0], n > 1 ? a[1] : zero, n > 2 ? a[2] : zero, n > 3 ? a[3] : zero);
      store_sums(n, C + r * ldc + c0, s, beta);
    }
}

/* NC columns of C (rows of B), every row of A. */
INLINE void nt_panel(const int NC, int64_t m, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                     float beta, float *C, int64_t ldc, __m256i tail) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) nt_tile(4, NC, K, A + i * lda, lda, B, ldb, beta, C + i * ldc, ldc, tail);
  A += i * lda;
  C += i * ldc;
  if (m - i == 3) nt_tile(3, NC, K, A, lda, B, ldb, beta, C, ldc, tail);
  if (m - i == 2) nt_tile(2, NC, K, A, lda, B, ldb, beta, C, ldc, tail);
  if (m - i == 1) nt_tile(1, NC, K, A, lda, B, ldb, beta, C, ldc, tail);
}

/* C = A B^T + beta C in panels of W rows of B, the last one narrower. */
INLINE void nt_panels(const int W, int64_t m, int64_t n, int64_t K, const float *A, int64_t lda, const float *B,
                      int64_t ldb, float beta, float *C, int64_t ldc) {
  __m256i tail = lane_mask(K % 8);
  int64_t j = 0;
  for (; j + W <= n; j += W) nt_panel(W, m, K, A, lda, B + j * ldb, ldb, beta, C + j, ldc, tail);
  switch (n - j) { /* a constant width for each, so every tile is unrolled */
  case 5: nt_panel(5, m, K, A, lda, B + j * ldb, ldb, beta, C + j, ldc, tail); break;
  case 4: nt_panel(4, m, K, A, lda, B + j * ldb, ldb, beta, C + j, ldc, tail); break;
  case 3: nt_panel(3, m, K, A, lda, B + j * ldb, ldb, beta, C + j, ldc, tail); break;
  case 2: nt_panel(2, m, K, A, lda, B + j * ldb, ldb, beta, C + j, ldc, tail); break;
  case 1: nt_panel(1, m, K, A, lda, B + j * ldb, ldb, beta, C + j, ldc, tail); break;
  }
}

static void gemm_nt(int64_t m, int64_t n, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                    float beta, float *C, int64_t ldc) {
  nt_panels(3, m, n, K, A, lda, B, ldb, beta, C, ldc);
}

/* gemm_nt with panels of 6 rows of B: the same instructions on 256-bit
 * vectors, but AVX-512VL's 32 registers hold 24 accumulators, so each load
 * of A feeds 6 FMAs instead of 3 (same sums, same bits). */
__attribute__((target("avx512f,avx512vl"))) static void gemm_nt6(int64_t m, int64_t n, int64_t K, const float *A,
                                                                   int64_t lda, const float *B, int64_t ldb,
                                                                   float beta, float *C, int64_t ldc) {
  nt_panels(6, m, n, K, A, lda, B, ldb, beta, C, ldc);
}

/* C[r, 8v + l] = beta C + sum_k A(r, k) B[k, 8v + l] for r < R, v < NV,
 * with A(r, k) = A[r sr + k sk]; the last vector masked by `last` when
 * MASKED. One FMA chain per element, k in order. */
INLINE void bc_tile(const int R, const int NV, const bool MASKED, int64_t K, const float *A, int64_t sr, int64_t sk,
                    const float *B, int64_t ldb, float beta, float *C, int64_t ldc, __m256i last) {
  __m256 acc[4][3], b[3];
  for (int r = 0; r < 4; r++)
    for (int v = 0; v < 3; v++) acc[r][v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    const float *bk = B + k * ldb;
    for (int v = 0; v < NV; v++)
      b[v] = MASKED && v == NV - 1 ? _mm256_maskload_ps(bk + 8 * v, last) : _mm256_loadu_ps(bk + 8 * v);
    for (int r = 0; r < R; r++) {
      __m256 a = _mm256_broadcast_ss(A + r * sr + k * sk);
      for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
  __m256 vbeta = _mm256_set1_ps(beta);
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) {
      float *y = C + r * ldc + 8 * v;
      bool masked = MASKED && v == NV - 1;
      __m256 s = acc[r][v];
      if (beta != 0) s = _mm256_fmadd_ps(vbeta, masked ? _mm256_maskload_ps(y, last) : _mm256_loadu_ps(y), s);
      if (masked)
        _mm256_maskstore_ps(y, last, s);
      else
        _mm256_storeu_ps(y, s);
    }
}

/* 8 NV columns of C (the last vector masked when MASKED), every row of A. */
INLINE void bc_panel(const int NV, const bool MASKED, int64_t m, int64_t K, const float *A, int64_t sr, int64_t sk,
                     const float *B, int64_t ldb, float beta, float *C, int64_t ldc, __m256i last) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) bc_tile(4, NV, MASKED, K, A + i * sr, sr, sk, B, ldb, beta, C + i * ldc, ldc, last);
  A += i * sr;
  C += i * ldc;
  if (m - i == 3) bc_tile(3, NV, MASKED, K, A, sr, sk, B, ldb, beta, C, ldc, last);
  if (m - i == 2) bc_tile(2, NV, MASKED, K, A, sr, sk, B, ldb, beta, C, ldc, last);
  if (m - i == 1) bc_tile(1, NV, MASKED, K, A, sr, sk, B, ldb, beta, C, ldc, last);
}

/* C[m, n] = beta C + A' B with A'(r, k) = A[r sr + k sk] and B [K, n]. */
static void gemm_bc(int64_t m, int64_t n, int64_t K, const float *A, int64_t sr, int64_t sk, const float *B,
                    int64_t ldb, float beta, float *C, int64_t ldc) {
  __m256i last = lane_mask(n % 8);
  int64_t j = 0;
  for (; j + 24 <= n; j += 24) bc_panel(3, false, m, K, A, sr, sk, B + j, ldb, beta, C + j, ldc, last);
  int64_t nv = (n - j + 7) / 8;
  bool masked = n % 8 != 0;
  B += j;
  C += j;
  if (nv == 2 && !masked) bc_panel(2, false, m, K, A, sr, sk, B, ldb, beta, C, ldc, last);
  if (nv == 1 && !masked) bc_panel(1, false, m, K, A, sr, sk, B, ldb, beta, C, ldc, last);
  if (nv == 3 && masked) bc_panel(3, true, m, K, A, sr, sk, B, ldb, beta, C, ldc, last);
  if (nv == 2 && masked) bc_panel(2, true, m, K, A, sr, sk, B, ldb, beta, C, ldc, last);
  if (nv == 1 && masked) bc_panel(1, true, m, K, A, sr, sk, B, ldb, beta, C, ldc, last);
}

/* Every column of C for R rows, A' packed as [K][4] (TN). */
INLINE void bc_strip(const int R, int64_t n, int64_t K, const float *Ap, const float *B, int64_t ldb, float beta,
                     float *C, int64_t ldc, __m256i last) {
  int64_t j = 0;
  for (; j + 24 <= n; j += 24) bc_tile(R, 3, false, K, Ap, 1, 4, B + j, ldb, beta, C + j, ldc, last);
  int64_t nv = (n - j + 7) / 8;
  bool masked = n % 8 != 0;
  B += j;
  C += j;
  if (nv == 2 && !masked) bc_tile(R, 2, false, K, Ap, 1, 4, B, ldb, beta, C, ldc, last);
  if (nv == 1 && !masked) bc_tile(R, 1, false, K, Ap, 1, 4, B, ldb, beta, C, ldc, last);
  if (nv == 3 && masked) bc_tile(R, 3, true, K, Ap, 1, 4, B, ldb, beta, C, ldc, last);
  if (nv == 2 && masked) bc_tile(R, 2, true, K, Ap, 1, 4, B, ldb, beta, C, ldc, last);
  if (nv == 1 && masked) bc_tile(R, 1, true, K, Ap, 1, 4, B, ldb, beta, C, ldc, last);
}

#define TN_PACK_K 128 /* longest k whose 4 columns of A are packed (2 KB) */

/* C[m, n] = beta C + A^T B, A [K, m]: by strips of 4 rows of C, the 4
 * columns of A packed first (in place they are K cache lines ld apart,
 * which at ld = 256 share 4 of L1's 64 sets). */
static void gemm_tn(int64_t m, int64_t n, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                    float beta, float *C, int64_t ldc) {
  if (K > TN_PACK_K) {
    gemm_bc(m, n, K, A, 1, lda, B, ldb, beta, C, ldc);
    return;
  }
  float Ap[4 * TN_PACK_K];
  __m256i last = lane_mask(n % 8);
  for (int64_t i = 0; i < m; i += 4) {
    int64_t R = m - i < 4 ? m - i : 4;
    for (int64_t k = 0; k < K; k++)
      for (int64_t r = 0; r < 4; r++) Ap[4 * k + r] = r < R ? A[k * lda + i + r] : 0;
    float *Ci = C + i * ldc;
    if (R == 4) bc_strip(4, n, K, Ap, B, ldb, beta, Ci, ldc, last);
    if (R == 3) bc_strip(3, n, K, Ap, B, ldb, beta, Ci, ldc, last);
    if (R == 2) bc_strip(2, n, K, Ap, B, ldb, beta, Ci, ldc, last);
    if (R == 1) bc_strip(1, n, K, Ap, B, ldb, beta, Ci, ldc, last);
  }
}

/* Measured against OpenBLAS 0.3.21 (Zen 4, one thread; bench/bench_gemm_direct.c):
 * faster on the MLP and LeNet classifier products at batch 32-96, slower
 * where a dimension is ~10 (the last layers), with short dot products (NT,
 * small k: the 8-lane sums dominate) and at 128+ rows (NT: x no longer
 * stays in L2 beside W). TN at n = 256 (the MLP's dW2, rows of B 1 KB apart)
 * measured 0.94 of sgemm alone and ~1% of the MLP training step faster. */
bool gr_gemm_direct_fits(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  if (!g_enabled || (ta && tb) || n < 16) return false;
  if (tb) return m <= 96 && k >= 96 && k <= 1024; /* NT: 3 rows of B (k floats each) in L1 */
  if (ta) return m >= 16 && k <= 128;            /* TN: k is the batch */
  return m <= 128 && k >= 16 && k <= 256;         /* NN: a 24-column panel of B (k x 24) in L1 */
}

void gr_gemm_direct(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B,
                    int64_t ldb, float beta, float *C, int64_t ldc) {
  if (tb && g_wide && __builtin_cpu_supports("avx512vl"))
    gemm_nt6(m, n, k, A, lda, B, ldb, beta, C, ldc);
  else if (tb)
    gemm_nt(m, n, k, A, lda, B, ldb, beta, C, ldc);
  else if (ta)
    gemm_tn(m, n, k, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_bc(m, n, k, A, lda, 1, B, ldb, beta, C, ldc);
}

#else /* no AVX2 + FMA: OpenBLAS everywhere */

bool gr_gemm_direct_fits(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  (void)ta, (void)tb, (void)m, (void)n, (void)k;
  return false;
}

void gr_gemm_direct(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B,
                    int64_t ldb, float beta, float *C, int64_t ldc) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      float s = 0;
      for (int64_t p = 0; p < k; p++) s += A[ta ? p * lda + i : i * lda + p] * B[tb ? j * ldb + p : p * ldb + j];
      C[i * ldc + j] = beta == 0 ? s : beta * C[i * ldc + j] + s;
    }
}
#endif
