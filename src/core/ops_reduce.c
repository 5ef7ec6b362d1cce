/* core/ops_reduce.c — sum and mean over one axis or over all elements.
 * The input is viewed as [outer, n, inner] around the axis (GR_AXIS_ALL:
 * [1, numel, 1]). Rows along a contiguous axis are summed in double; a
 * whole-tensor sum above GR_PAR_MIN is split into a fixed number of blocks
 * (independent of the thread count, so results are the same bits on any
 * number of threads). Backward spreads dy (times 1/n for mean) back over
 * the reduced axis. Not here: softmax (ops_softmax.c). */
#include <math.h>

#include "core/op.h"

#define SUM_BLOCKS 64

static double sum_contiguous(const float *x, int64_t n) {
  double s = 0;
  for (int64_t k = 0; k < n; k++) s += x[k];
  return s;
}

/* One long row: SUM_BLOCKS partial sums in parallel, added in order. */
static double sum_long_row(const float *x, int64_t n) {
  double part[SUM_BLOCKS];
  int64_t block = (n + SUM_BLOCKS - 1) / SUM_BLOCKS;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < SUM_BLOCKS; b++) {
    int64_t lo = b * block, hi = lo + block < n ? lo + block : n;
    part[b] = lo < hi ? sum_contiguous(x + lo, hi - lo) : 0.0;
  }
  double s = 0;
  for (int b = 0; b < SUM_BLOCKS; b++) s += part[b];
  return s;
}

static void reduce_forward(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, double scale) {
  bool par = outer * n * inner > GR_PAR_MIN;
  if (inner == 1 && outer == 1) {
    y[0] = (float)((par ? sum_long_row(x, n) : sum_contiguous(x, n)) * scale);
  } else if (inner == 1) {
#pragma omp parallel for if (par) schedule(static)
    for (int64_t o = 0; o < outer; o++) y[o] = (float)(sum_contiguous(x + o * n, n) * scale);
  } else {
#pragma omp parallel for if (par) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
      float *yo = y + o * inner;
      for (int64_t k = 0; k < n; k++) {
        const float *xk = x + (o * n + k) * inner;
        for (int64_t i = 0; i < inner; i++) yo[i] += xk[i];
      }
      for (int64_t i = 0; i < inner; i++) yo[i] = (float)(yo[i] * scale);
    }
  }
}

static void reduce_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  if (!x->requires_grad) return;
  int64_t outer = n->i[0], len = n->i[1], inner = n->i[2];
  float scale = n->f[0], *dx = gr_grad_buf(c, x);
  const float *dy = n->out->grad;
#pragma omp parallel for if (x->numel > GR_PAR_MIN) schedule(static)
  for (int64_t r = 0; r < outer * len; r++) {
    const float *g = dy + (r / len) * inner;
    float *d = dx + r * inner;
    for (int64_t i = 0; i < inner; i++) d[i] += g[i] * scale;
  }
}

static const gr_op_def OP_SUM = {"sum", reduce_backward};
static const gr_op_def OP_MEAN = {"mean", reduce_backward};

/* Output shape of a reduction: the axis dropped, or kept as 1. */
static int reduced_shape(const gr_tensor *x, int axis, bool keepdim, int64_t *shape) {
  int nd = 0;
  for (int d = 0; d < x->ndim; d++) {
    bool reduced = axis == GR_AXIS_ALL || d == axis;
    if (!reduced) shape[nd++] = x->shape[d];
    else if (keepdim) shape[nd++] = 1;
  }
  return nd;
}

static gr_tensor *reduce(gr_ctx *c, const gr_op_def *def, gr_tensor *x, int axis, bool keepdim, bool mean) {
  GR_NEED(def->name, c);
  GR_NEED(def->name, x);
  int64_t outer = 1, len = x->numel, inner = 1;
  if (axis != GR_AXIS_ALL) {
    axis = gr_axis(def->name, x, axis);
    if (axis < 0) return NULL;
    gr_axis_split(x, axis, &outer, &len, &inner);
  }
  if (mean && len == 0) {
    char s[96];
    gr_error(GR_ESHAPE, "mean: no elements to average over (x%s, axis %s)", gr_shape_str(x, s, sizeof s),
             axis == GR_AXIS_ALL ? "all" : "of size 0");
    return NULL;
  }
  int64_t shape[GR_MAX_DIMS];
  int nd = reduced_shape(x, axis, keepdim, shape);
  gr_tensor *y = gr_tensor_new(c, nd, shape);
  if (!y) return NULL;
  double scale = mean ? 1.0 / (double)len : 1.0;
  reduce_forward(x->data, y->data, outer, len, inner, scale);
  gr_node *n = gr_tape_record(c, def, y, 1, &x);
  if (n) {
    n->i[0] = outer;
    n->i[1] = len;
    n->i[2] = inner;
    n->f[0] = (float)scale;
  }
  return y;
}

gr_tensor *gr_sum(gr_ctx *c, gr_tensor *x, int axis, bool keepdim) {
  return reduce(c, &OP_SUM, x, axis, keepdim, false);
}

gr_tensor *gr_mean(gr_ctx *c, gr_tensor *x, int axis, bool keepdim) {
  return reduce(c, &OP_MEAN, x, axis, keepdim, true);
}
