/* core/op.h — internal: what an op file needs to record and run backward.
 * Not installed. An op is a forward function (public, in ops.h) plus a
 * static gr_op_def {name, backward}. The forward validates inputs, computes
 * the output, then calls gr_tape_record(); the backward reads n->out->grad
 * and accumulates (+=) into gr_grad_buf(c, input) for each input with
 * requires_grad. */
#ifndef GRAFT_CORE_OP_H
#define GRAFT_CORE_OP_H
#include "graft/ops.h"

typedef void (*gr_backward_fn)(gr_ctx *c, gr_node *n);

typedef struct gr_op_def {
  const char *name;
  gr_backward_fn backward;
} gr_op_def;

struct gr_node {
  const gr_op_def *op;
  gr_tensor *out;
  gr_tensor **in;   /* n_in inputs, in the step arena */
  int n_in;
  float f[4];       /* op parameters (scale, eps, ...) */
  int64_t i[8];     /* op parameters (axis, stride, ...) */
  void *saved;      /* op-specific saved data in the step arena */
  gr_node *prev;    /* the tape is a list, newest first */
};

/* Records a node when grad mode is on and any input requires grad; sets
 * out->requires_grad accordingly. Returns the node (to fill f/i/saved) or
 * NULL when nothing was recorded (or on allocation failure: check status). */
gr_node *gr_tape_record(gr_ctx *c, const gr_op_def *op, gr_tensor *out, int n_in,
                        gr_tensor *const *in);
/* The grad buffer of t, zero-filled from the step arena on first use (or
 * when it is marked zero: grad_zero, then cleared). */
float *gr_grad_buf(gr_ctx *c, gr_tensor *t);
/* The grad buffer of t for a backward that writes every element of it:
 * when t has no grad yet, or its grad is marked zero (the mark is then
 * cleared), *fresh is set and the buffer's contents are garbage (assign
 * instead of accumulating: beta 0 in a gemm); otherwise it is the existing
 * grad and *fresh is false (accumulate). Zero-filling grads that are then
 * overwritten was 3-5% of a LeNet training step. */
float *gr_grad_buf_fresh(gr_ctx *c, gr_tensor *t, bool *fresh);
/* Zero-filled scratch in the step arena (GR_ENOMEM message on failure). */
void *gr_scratch(gr_ctx *c, size_t bytes);
/* Uninitialized scratch / arena memory / step tensor, for buffers a kernel
 * overwrites entirely (im2col columns, sgemm outputs with beta 0): zero-
 * filling those was 12% of a LeNet training step. Debug builds fill them
 * with NaN so a kernel that misses an element fails its tests. */
void *gr_scratch_uninit(gr_ctx *c, size_t bytes);
void *gr_arena_alloc_uninit(gr_arena *a, size_t bytes);
gr_tensor *gr_tensor_new_uninit(gr_ctx *c, int ndim, const int64_t *shape);
/* A new tensor in the step arena shaped like t. */
gr_tensor *gr_tensor_like(gr_ctx *c, const gr_tensor *t);
/* Normalizes a possibly negative axis; GR_EARG naming op on failure (-1). */
int gr_axis(const char *op, const gr_tensor *t, int axis);

/* Views t as [outer, n, inner] around dimension `axis` (already
 * normalized, 0 <= axis < ndim): the layout every axis-wise op loops over. */
static inline void gr_axis_split(const gr_tensor *t, int axis, int64_t *outer, int64_t *n, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < axis; d++) *outer *= t->shape[d];
  for (int d = axis + 1; d < t->ndim; d++) *inner *= t->shape[d];
  *n = t->shape[axis];
}

/* Softmax (or log-softmax) of one row of n elements spaced `stride` apart,
 * max-subtracted; and its backward, dx += J^T dy from the output y.
 * In ops_softmax.c; shared by every op that normalizes rows. */
void gr_softmax_row(const float *x, float *y, int64_t n, int64_t stride, bool take_log);
void gr_softmax_row_backward(const float *y, const float *dy, float *dx, int64_t n, int64_t stride, bool take_log);

/* x clamped to [lo,hi] through integer masks: with ternaries GCC threads the
 * constant branches apart and the loop around it no longer vectorizes. */
static inline float gr_clampf_select(float x, float lo, float hi) {
  int32_t xb, lb, hb;
  __builtin_memcpy(&xb, &x, sizeof xb);
  __builtin_memcpy(&lb, &lo, sizeof lb);
  __builtin_memcpy(&hb, &hi, sizeof hb);
  int32_t below = -(int32_t)(x < lo), above = -(int32_t)(x > hi);
  xb = (xb & ~below) | (lb & below);
  xb = (xb & ~above) | (hb & above);
  __builtin_memcpy(&x, &xb, sizeof x);
  return x;
}

/* e^x for x in [-87, 88] (clamped outside; NaN stays NaN) without libm:
 * Cody-Waite range reduction x = n ln2 + r (n rounded by the 1.5*2^23
 * trick) and Cephes' degree-6 polynomial for e^r, scaled by 2^n through the
 * exponent bits. Relative error below 2e-7 (tests/test_ops_unary.c);
 * branch-free so loops over it vectorize (glibc's expf/tanhf do not: tanhf
 * in GELU was 30% of a GPT training step). */
static inline float gr_expf_poly(float x) {
  x = gr_clampf_select(x, -87.0f, 88.0f);
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* Element count above which elementwise and reduction loops use OpenMP
 * (below it, thread start-up costs more than the loop). */
#define GR_PAR_MIN 32768
/* Most threads an op keeps per-thread buffers for (more are not used). */
#define GR_MAX_THREADS 32
/* dst[0..n) = src[0..n), or zeros when src is NULL; parallel above GR_PAR_MIN (threads.c). */
void gr_fill_floats(float *dst, const float *src, int64_t n);

/* Input checks for forward functions: return NULL with GR_EARG on NULL. */
#define GR_NEED(op, t)                                           \
  do {                                                           \
    if (!(t)) {                                                  \
      gr_error(GR_EARG, "%s: input '%s' is NULL", (op), #t);     \
      return NULL;                                               \
    }                                                            \
  } while (0)

/* Row-major C[m,n] = op(A) op(B) + beta C through OpenBLAS (ops_matmul.c);
 * an empty inner dimension gives C = beta C (C may be uninitialized when
 * beta is 0). The one gemm wrapper of the core ops. */
void gr_sgemm_rm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float beta, float *C, int64_t ldc);

#endif
