/* core/ops_softmax.c — softmax and log-softmax over any axis, and the row
 * kernels (gr_softmax_row*, declared in op.h) that other normalizing ops
 * reuse. Numerically stable: the row maximum is subtracted before exp and
 * the normalizer is summed in double. The input is viewed as
 * [outer, n, inner]; each of the outer*inner rows has stride `inner`.
 * Backward uses only the output: softmax dx = y (dy - sum dy*y),
 * log-softmax dx = dy - e^y sum dy. Not here: the losses (ops_loss.c). */
#include <math.h>

#include "core/op.h"

/* Log-softmax rows (cross-entropy's) keep libm's expf and an in-order
 * double sum: with the vectorized sum, 2-rank data-parallel LeNet training
 * drifted 3e-2 from 1 process over 100 steps (tests/mpi/cli_train_dp.sh),
 * cause not found. Softmax rows (attention) are vectorized. */
/* e^d for d <= 0 (a max-subtracted logit): the vectorizable polynomial of
 * op.h, exactly 0 below its clamp (e^-87.3 ~ 1e-38), as libm's expf gives
 * for masked (-inf) scores. */
static inline float exp_nonpos(float d) {
  float e = gr_expf_poly(d);
  int32_t bits, keep = -(int32_t)!(d < -87.3f); /* an integer mask, not a branch: the loops vectorize */
  __builtin_memcpy(&bits, &e, sizeof bits);
  bits &= keep;
  __builtin_memcpy(&e, &bits, sizeof e);
  return e;
}

void gr_softmax_row(const float *x, float *y, int64_t n, int64_t stride, bool take_log) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int64_t k = 0; k < n; k++) m = x[k * stride] > m ? x[k * stride] : m; /* NaN ignored, as fmaxf */
  double s = 0;
  if (take_log) {
    for (int64_t k = 0; k < n; k++) s += expf(x[k * stride] - m);
    float lse = m + (float)log(s);
    for (int64_t k = 0; k < n; k++) y[k * stride] = x[k * stride] - lse;
    return;
  }
  if (stride == 1) { /* contiguous rows (attention): a vectorized map, then a sum over 8 fixed lanes */
#pragma omp simd /* y may be x (in place): each element is read before it is written */
    for (int64_t k = 0; k < n; k++) y[k] = exp_nonpos(x[k] - m);
    float lane[8] = {0};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
      for (int j = 0; j < 8; j++) lane[j] += y[k + j];
    for (int j = 0; j < 8; j++) s += lane[j];
    for (; k < n; k++) s += y[k];
  } else {
    for (int64_t k = 0; k < n; k++) {
      float e = exp_nonpos(x[k * stride] - m);
      y[k * stride] = e;
      s += e;
    }
  }
  float inv = (float)(1.0 / s);
#pragma omp simd
  for (int64_t k = 0; k < n; k++) y[k * stride] *= inv;
}

void gr_softmax_row_backward(const float *y, const float *dy, float *dx, int64_t n, int64_t stride, bool take_log) {
  double s = 0;
  if (take_log) {
    for (int64_t k = 0; k < n; k++) s += dy[k * stride];
    float sf = (float)s;
    for (int64_t k = 0; k < n; k++) dx[k * stride] += dy[k * stride] - expf(y[k * stride]) * sf;
    return;
  }
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; k++) s += dy[k * stride] * y[k * stride];
  float sf = (float)s;
  for (int64_t k = 0; k < n; k++) dx[k * stride] += y[k * stride] * (dy[k * stride] - sf);
}

/* Row r of the [outer, n, inner] view starts at (r / inner) * n * inner + r % inner. */
static inline int64_t row_start(int64_t r, int64_t n, int64_t inner) { return (r / inner) * n * inner + r % inner; }

static void softmax_backward(gr_ctx *c, gr_node *nd) {
  gr_tensor *x = nd->in[0];
  if (!x->requires_grad) return;
  int64_t outer = nd->i[0], n = nd->i[1], inner = nd->i[2];
  bool take_log = nd->i[3];
  const float *y = nd->out->data, *dy = nd->out->grad;
  float *dx = gr_grad_buf(c, x);
#pragma omp parallel for if (x->numel > GR_PAR_MIN) schedule(static)
  for (int64_t r = 0; r < outer * inner; r++) {
    int64_t s = row_start(r, n, inner);
    gr_softmax_row_backward(y + s, dy + s, dx + s, n, inner, take_log);
  }
}

static const gr_op_def OP_SOFTMAX = {"softmax", softmax_backward};
static const gr_op_def OP_LOG_SOFTMAX = {"log_softmax", softmax_backward};

static gr_tensor *softmax_any(gr_ctx *c, const gr_op_def *def, gr_tensor *x, int axis, bool take_log) {
  GR_NEED(def->name, c);
  GR_NEED(def->name, x);
  axis = gr_axis(def->name, x, axis);
  if (axis < 0) return NULL;
  int64_t outer, n, inner;
  gr_axis_split(x, axis, &outer, &n, &inner);
  gr_tensor *y = gr_tensor_like(c, x);
  if (!y) return NULL;
#pragma omp parallel for if (x->numel > GR_PAR_MIN) schedule(static)
  for (int64_t r = 0; r < outer * inner; r++) {
    int64_t s = row_start(r, n, inner);
    gr_softmax_row(x->data + s, y->data + s, n, inner, take_log);
  }
  gr_node *nd = gr_tape_record(c, def, y, 1, &x);
  if (nd) {
    nd->i[0] = outer;
    nd->i[1] = n;
    nd->i[2] = inner;
    nd->i[3] = take_log;
  }
  return y;
}

gr_tensor *gr_softmax(gr_ctx *c, gr_tensor *x, int axis) { return softmax_any(c, &OP_SOFTMAX, x, axis, false); }

gr_tensor *gr_log_softmax(gr_ctx *c, gr_tensor *x, int axis) {
  return softmax_any(c, &OP_LOG_SOFTMAX, x, axis, true);
}
