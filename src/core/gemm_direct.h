/* core/gemm_direct.h — internal: single-threaded AVX2 + FMA gemm kernels
 * that read both operands in place (no packing) for the small-batch shapes
 * of a linear layer. Row-major C[m,n] = op(A) op(B) + beta C for
 * (ta, tb) = NT (forward y = x W^T), NN (dx = dy W) and TN (dW = dy^T x).
 * Each C element is summed in the same order wherever it lies in a tile and
 * whatever m is (NT: 8 lanes over k, then a fixed 8-lane sum; NN and TN:
 * one FMA chain over k), so a row's result does not depend on the batch
 * size or on how gr_sgemm_rm splits C over threads. */
#ifndef GRAFT_CORE_GEMM_DIRECT_H
#define GRAFT_CORE_GEMM_DIRECT_H
#include <stdbool.h>
#include <stdint.h>

/* Whether gr_gemm_direct takes this product (and is faster than OpenBLAS
 * there): decided on the whole gemm, before it is split over threads. */
bool gr_gemm_direct_fits(bool ta, bool tb, int64_t m, int64_t n, int64_t k);
/* Tests and benchmarks only: off makes gr_gemm_direct_fits() false (not
 * thread-safe; set before any gemm). */
void gr_gemm_direct_set_enabled(bool on);
/* Tests only: off keeps NT on its 3-row panels where AVX-512VL would take
 * 6-row ones (the same sums: the bits must not change). */
void gr_gemm_direct_set_wide(bool on);
/* C = op(A) op(B) + beta C; only for shapes gr_gemm_direct_fits accepts
 * (and any piece of them along m or n). beta 0 never reads C. */
void gr_gemm_direct(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                    const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
#endif
