/* core/ops_matmul.c — matmul (batched, optional transposes) and linear.
 * Both lower to OpenBLAS sgemm; backward accumulates with beta = 1, or
 * stores (beta 0) into a grad with no value yet (gr_grad_buf_fresh). With a
 * 2-D right operand and no transpose on the left, all batch rows are folded
 * into one gemm (the common linear-layer case). Linear's small-batch gemms
 * take the unpacked kernels of core/gemm_direct.c where those are faster. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "core/gemm_direct.h"
#include "core/op.h"

/* Row-major C[m,n] = op(A) op(B) + beta C on the calling thread: the direct
 * kernels, or one OpenBLAS call (single-threaded: core/threads.c).
 * A single row (batch-1 inference) is a matrix-vector product: OpenBLAS
 * 0.3.21's sgemm packs the whole k x n operand for it once m*n*k passes its
 * small-matrix limit (1x1024x1024: 676 us against sgemv's 56 us). */
static void sgemm_once(bool direct, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                       const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (direct) {
    gr_gemm_direct(ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (m == 1) { /* C[0,:] = op(B)^T a, a the row of op(A) with stride lda when A is transposed */
    if (tb) cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)k, 1.0f, B, (int)ldb, A, ta ? (int)lda : 1, beta, C, 1);
    else cblas_sgemv(CblasRowMajor, CblasTrans, (int)k, (int)n, 1.0f, B, (int)ldb, A, ta ? (int)lda : 1, beta, C, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
              1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* Multiply-adds of the smallest piece of a split gemm. Smaller gemms run
 * whole on the calling thread (an OpenMP fork and join costs ~10 us on 2
 * busy cores, a 1M multiply-add gemm ~20 us). Above OpenBLAS's small-matrix
 * kernels (products up to 100^3 of some shapes), so every piece takes the
 * same kernels as the whole gemm and C has the same bits at any thread
 * count (tests/test_threads.c). */
#define GEMM_PIECE_MIN ((double)(1 << 20))

/* Start of piece p of P over len rows or columns, on a multiple of align. */
static int64_t piece_start(int64_t len, int P, int p, int64_t align) {
  int64_t b = (len * p / P + align - 1) / align * align;
  return p == P || b > len ? len : b;
}

/* Row-major C[m,n] = op(A) op(B) + beta C. Outside OpenMP regions, a large
 * gemm is split over the threads along m or n (whichever leaves the smaller
 * operand to be packed by every thread); columns in pieces of 16 floats, so
 * no two threads write one cache line. `direct`: every piece on the direct
 * kernels (decided on the whole gemm, so the bits do not depend on the split). */
static void sgemm_split(bool direct, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                        const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) { /* empty inner dim: C = beta C (C may be uninitialized when beta is 0) */
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) C[i * ldc + j] = beta == 0 ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  /* one row times a k x n operand runs whole: sgemv's kernel for it blocks the
   * k sums by the length of its output, so pieces of n would change the bits */
  int P = omp_get_level() || (m == 1 && !tb) ? 1 : gr_threads();
  while (P > 1 && (double)m * (double)n * (double)k < P * GEMM_PIECE_MIN) P--;
  if (P == 1) {
    sgemm_once(direct, ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  bool rows = m > n;
  int64_t len = rows ? m : n, align = rows ? 4 : 16;
#pragma omp parallel for schedule(static) num_threads(P)
  for (int p = 0; p < P; p++) {
    int64_t lo = piece_start(len, P, p, align), w = piece_start(len, P, p + 1, align) - lo;
    if (w <= 0) continue;
    if (rows)
      sgemm_once(direct, ta, tb, w, n, k, ta ? A + lo : A + lo * lda, lda, B, ldb, beta, C + lo * ldc, ldc);
    else
      sgemm_once(direct, ta, tb, m, w, k, A, lda, tb ? B + lo * ldb : B + lo, ldb, beta, C + lo, ldc);
  }
}

/* Declared in core/op.h: OpenBLAS for every shape. */
void gr_sgemm_rm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                 const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  sgemm_split(false, ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc);
}

/* A gemm of linear: the direct kernels for the shapes where they are faster. */
static void linear_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                        const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  sgemm_split(gr_gemm_direct_fits(ta, tb, m, n, k), ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc);
}

/* Shapes of one matmul problem, decoded once by forward and backward. */
typedef struct mm_dims {
  int64_t batch, M, N, K;
  bool b_shared; /* b is 2-D and reused for every batch entry */
  bool fold;     /* b_shared && !ta: one gemm with batch*M rows */
} mm_dims;

static bool mm_decode(const gr_tensor *a, const gr_tensor *b, bool ta, bool tb, mm_dims *d) {
  char sa[96], sb[96];
  if (a->ndim < 2 || b->ndim < 2) {
    gr_error(GR_ESHAPE, "matmul: operands need >= 2 dims, got a%s b%s",
             gr_shape_str(a, sa, sizeof sa), gr_shape_str(b, sb, sizeof sb));
    return false;
  }
  int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
  int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
  d->M = ta ? ac : ar;
  d->K = ta ? ar : ac;
  int64_t kb = tb ? bc : br;
  d->N = tb ? br : bc;
  if (d->K != kb) {
    gr_error(GR_ESHAPE, "matmul: inner dims differ (%lld vs %lld): a%s%s b%s%s", (long long)d->K,
             (long long)kb, gr_shape_str(a, sa, sizeof sa), ta ? "^T" : "",
             gr_shape_str(b, sb, sizeof sb), tb ? "^T" : "");
    return false;
  }
  d->batch = 1;
  for (int i = 0; i < a->ndim - 2; i++) d->batch *= a->shape[i];
  d->b_shared = b->ndim == 2;
  if (!d->b_shared) {
    bool same = b->ndim == a->ndim;
    for (int i = 0; same && i < a->ndim - 2; i++) same = a->shape[i] == b->shape[i];
    if (!same) {
      gr_error(GR_ESHAPE, "matmul: batch dims differ: a%s b%s (b must match a or be 2-D)",
               gr_shape_str(a, sa, sizeof sa), gr_shape_str(b, sb, sizeof sb));
      return false;
    }
  }
  d->fold = d->b_shared && !ta;
  return true;
}

static void matmul_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *a = n->in[0], *b = n->in[1];
  bool ta = n->i[0], tb = n->i[1];
  mm_dims d;
  GR_ASSERT(mm_decode(a, b, ta, tb, &d));
  const float *dy = n->out->grad;
  int64_t nb = d.fold ? 1 : d.batch, M = d.fold ? d.batch * d.M : d.M;
  int64_t sa = d.fold ? 0 : d.M * d.K, sb = d.b_shared ? 0 : d.K * d.N, sy = d.fold ? 0 : d.M * d.N;
  int64_t lda = ta ? M : d.K, ldb = tb ? d.K : d.N;
  if (a->requires_grad) {
    float *da = gr_grad_buf(c, a);
    for (int64_t i = 0; i < nb; i++) {
      if (!ta) /* dA[M,K] += dY B'^T */
        gr_sgemm_rm(false, !tb, M, d.K, d.N, dy + i * sy, d.N, b->data + i * sb, ldb, 1, da + i * sa, d.K);
      else /* dA[K,M] += B' dY^T */
        gr_sgemm_rm(tb, true, d.K, M, d.N, b->data + i * sb, ldb, dy + i * sy, d.N, 1, da + i * sa, M);
    }
  }
  if (b->requires_grad) {
    float *db = gr_grad_buf(c, b);
    for (int64_t i = 0; i < nb; i++) {
      if (!tb) /* dB[K,N] += A'^T dY */
        gr_sgemm_rm(!ta, false, d.K, d.N, M, a->data + i * sa, lda, dy + i * sy, d.N, 1, db + i * sb, d.N);
      else /* dB[N,K] += dY^T A' */
        gr_sgemm_rm(true, ta, d.N, d.K, M, dy + i * sy, d.N, a->data + i * sa, lda, 1, db + i * sb, d.K);
    }
  }
}

static const gr_op_def OP_MATMUL = {"matmul", matmul_backward};

gr_tensor *gr_matmul(gr_ctx *c, gr_tensor *a, gr_tensor *b, bool trans_a, bool trans_b) {
  GR_NEED("matmul", c);
  GR_NEED("matmul", a);
  GR_NEED("matmul", b);
  mm_dims d;
  if (!mm_decode(a, b, trans_a, trans_b, &d)) return NULL;
  int64_t shape[GR_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  shape[a->ndim - 2] = d.M;
  shape[a->ndim - 1] = d.N;
  gr_tensor *y = gr_tensor_new_uninit(c, a->ndim, shape); /* every batch entry's gemm has beta 0 */
  if (!y) return NULL;
  int64_t nb = d.fold ? 1 : d.batch, M = d.fold ? d.batch * d.M : d.M;
  int64_t sa = d.fold ? 0 : d.M * d.K, sb = d.b_shared ? 0 : d.K * d.N, sy = d.fold ? 0 : d.M * d.N;
  for (int64_t i = 0; i < nb; i++)
    gr_sgemm_rm(trans_a, trans_b, M, d.N, d.K, a->data + i * sa, trans_a ? M : d.K, b->data + i * sb,
         trans_b ? d.K : d.N, 0, y->data + i * sy, d.N);
  gr_node *n = gr_tape_record(c, &OP_MATMUL, y, 2, (gr_tensor *[]){a, b});
  if (n) {
    n->i[0] = trans_a;
    n->i[1] = trans_b;
  }
  return y;
}

static void linear_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0], *w = n->in[1], *b = n->n_in > 2 ? n->in[2] : NULL;
  int64_t out = w->shape[0], in = w->shape[1], rows = 1;
  for (int i = 0; i < x->ndim - 1; i++) rows *= x->shape[i];
  const float *dy = n->out->grad;
  if (x->requires_grad) {
    bool fresh;
    float *dx = gr_grad_buf_fresh(c, x, &fresh);
    linear_gemm(false, false, rows, in, out, dy, out, w->data, in, fresh ? 0 : 1, dx, in);
  }
  if (w->requires_grad) {
    bool fresh;
    float *dw = gr_grad_buf_fresh(c, w, &fresh);
    linear_gemm(true, false, out, in, rows, dy, out, x->data, in, fresh ? 0 : 1, dw, in);
  }
  if (b && b->requires_grad) {
    float *db = gr_grad_buf(c, b); /* out floats: zero-filled if marked zero */
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0; j < out; j++) db[j] += dy[r * out + j];
  }
}

static const gr_op_def OP_LINEAR = {"linear", linear_backward};

gr_tensor *gr_linear(gr_ctx *c, gr_tensor *x, gr_tensor *w, gr_tensor *b) {
  GR_NEED("linear", c);
  GR_NEED("linear", x);
  GR_NEED("linear", w);
  char sx[96], sw[96], sb[96];
  if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1] ||
      (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))) {
    gr_error(GR_ESHAPE, "linear: x%s w%s b%s (want x[...,in], w[out,in], b[out])",
             gr_shape_str(x, sx, sizeof sx), gr_shape_str(w, sw, sizeof sw),
             b ? gr_shape_str(b, sb, sizeof sb) : "(none)");
    return NULL;
  }
  int64_t out = w->shape[0], in = w->shape[1];
  int64_t shape[GR_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[x->ndim - 1] = out;
  gr_tensor *y = gr_tensor_new_uninit(c, x->ndim, shape); /* bias rows or gemm with beta 0 */
  if (!y) return NULL;
  int64_t rows = 1;
  for (int i = 0; i < x->ndim - 1; i++) rows *= x->shape[i];
  if (b)
    for (int64_t r = 0; r < rows; r++) memcpy(y->data + r * out, b->data, (size_t)out * sizeof(float));
  linear_gemm(false, true, rows, out, in, x->data, in, w->data, in, b ? 1 : 0, y->data, out);
  gr_tape_record(c, &OP_LINEAR, y, b ? 3 : 2, (gr_tensor *[]){x, w, b});
  return y;
}
