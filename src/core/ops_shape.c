/* core/ops_shape.c — ops that move elements without arithmetic: permute
 * (and transpose, a permute of two dims), concat and slice. Outputs are
 * fresh contiguous tensors; backward moves the gradient back the same way.
 * reshape (a view) lives in ops_view.c. */
#include <string.h>

#include "core/op.h"

/* ---- permute ----------------------------------------------------------- */
/* For each output element, adds (or copies) between y (contiguous) and x
 * read through permuted strides; dir_to_x moves y -> x (backward). */
static void permute_move(const gr_tensor *x, const int *perm, float *xbuf, float *ybuf, bool dir_to_x) {
  int nd = x->ndim;
  int64_t xstride[GR_MAX_DIMS], ystride[GR_MAX_DIMS], yshape[GR_MAX_DIMS];
  int64_t s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    xstride[d] = s;
    s *= x->shape[d];
  }
  for (int d = 0; d < nd; d++) {
    yshape[d] = x->shape[perm[d]];
    ystride[d] = xstride[perm[d]]; /* step in x when output index d advances */
  }
  int64_t inner = nd ? yshape[nd - 1] : 1, inner_step = nd ? ystride[nd - 1] : 1;
  int64_t rows = inner ? x->numel / inner : 0;
#pragma omp parallel for schedule(static) if (x->numel > GR_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, off = 0;
    for (int d = nd - 2; d >= 0; d--) {
      off += (rem % yshape[d]) * ystride[d];
      rem /= yshape[d];
    }
    float *yr = ybuf + r * inner;
    if (dir_to_x)
      for (int64_t i = 0; i < inner; i++) xbuf[off + i * inner_step] += yr[i];
    else
      for (int64_t i = 0; i < inner; i++) yr[i] = xbuf[off + i * inner_step];
  }
}

static void permute_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  if (!x->requires_grad) return;
  int perm[GR_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) perm[d] = (int)n->i[d];
  permute_move(x, perm, gr_grad_buf(c, x), n->out->grad, true);
}

static const gr_op_def OP_PERMUTE = {"permute", permute_backward};

gr_tensor *gr_permute(gr_ctx *c, gr_tensor *x, const int *perm) {
  GR_NEED("permute", c);
  GR_NEED("permute", x);
  GR_NEED("permute", perm);
  bool seen[GR_MAX_DIMS] = {false};
  int64_t shape[GR_MAX_DIMS];
  char sx[96];
  for (int d = 0; d < x->ndim; d++) {
    if (perm[d] < 0 || perm[d] >= x->ndim || seen[perm[d]]) {
      gr_error(GR_EARG, "permute: perm[%d] = %d is not a permutation of 0..%d for x%s", d, perm[d], x->ndim - 1,
               gr_shape_str(x, sx, sizeof sx));
      return NULL;
    }
    seen[perm[d]] = true;
    shape[d] = x->shape[perm[d]];
  }
  gr_tensor *y = gr_tensor_new(c, x->ndim, shape);
  if (!y) return NULL;
  permute_move(x, perm, x->data, y->data, false);
  gr_node *n = gr_tape_record(c, &OP_PERMUTE, y, 1, &x);
  if (n)
    for (int d = 0; d < x->ndim; d++) n->i[d] = perm[d];
  return y;
}

gr_tensor *gr_transpose(gr_ctx *c, gr_tensor *x, int d0, int d1) {
  GR_NEED("transpose", c);
  GR_NEED("transpose", x);
  int a = gr_axis("transpose", x, d0), b = a < 0 ? -1 : gr_axis("transpose", x, d1);
  if (a < 0 || b < 0) return NULL;
  int perm[GR_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) perm[d] = d;
  perm[a] = b;
  perm[b] = a;
  return gr_permute(c, x, perm);
}

/* ---- concat and slice: [outer, n, inner] blocks along one axis --------- */
/* Copies (or adds, backward) rows of `len*inner` between a part of size
 * part_n along the axis and the whole of size whole_n, at offset `at`. */
static void block_move(int64_t outer, int64_t inner, float *part, int64_t part_n, float *whole, int64_t whole_n,
                       int64_t at, bool to_part, bool add) {
  int64_t len = part_n * inner;
  for (int64_t o = 0; o < outer; o++) {
    float *p = part + o * len, *w = whole + (o * whole_n + at) * inner;
    if (to_part && !add) memcpy(p, w, (size_t)len * sizeof(float));
    else if (to_part) for (int64_t i = 0; i < len; i++) p[i] += w[i];
    else if (!add) memcpy(w, p, (size_t)len * sizeof(float));
    else for (int64_t i = 0; i < len; i++) w[i] += p[i];
  }
}

static void concat_backward(gr_ctx *c, gr_node *n) {
  int axis = (int)n->i[0];
  int64_t outer, whole_n, inner, at = 0;
  gr_axis_split(n->out, axis, &outer, &whole_n, &inner);
  for (int k = 0; k < n->n_in; k++) {
    gr_tensor *x = n->in[k];
    if (x->requires_grad) block_move(outer, inner, gr_grad_buf(c, x), x->shape[axis], n->out->grad, whole_n, at, true, true);
    at += x->shape[axis];
  }
}

static const gr_op_def OP_CONCAT = {"concat", concat_backward};

gr_tensor *gr_concat(gr_ctx *c, int n, gr_tensor *const *xs, int axis) {
  GR_NEED("concat", c);
  GR_NEED("concat", xs);
  if (n < 1) {
    gr_error(GR_EARG, "concat: need at least one input, got %d", n);
    return NULL;
  }
  for (int k = 0; k < n; k++)
    if (!xs[k]) {
      gr_error(GR_EARG, "concat: input %d is NULL", k);
      return NULL;
    }
  int a = gr_axis("concat", xs[0], axis);
  if (a < 0) return NULL;
  int64_t shape[GR_MAX_DIMS];
  memcpy(shape, xs[0]->shape, sizeof shape);
  shape[a] = 0;
  char s0[96], sk[96];
  for (int k = 0; k < n; k++) {
    bool ok = xs[k]->ndim == xs[0]->ndim;
    for (int d = 0; ok && d < xs[0]->ndim; d++) ok = d == a || xs[k]->shape[d] == xs[0]->shape[d];
    if (!ok) {
      gr_error(GR_ESHAPE, "concat: input %d is %s, input 0 is %s (only axis %d may differ)", k,
               gr_shape_str(xs[k], sk, sizeof sk), gr_shape_str(xs[0], s0, sizeof s0), a);
      return NULL;
    }
    shape[a] += xs[k]->shape[a];
  }
  gr_tensor *y = gr_tensor_new(c, xs[0]->ndim, shape);
  if (!y) return NULL;
  int64_t outer, whole_n, inner, at = 0;
  gr_axis_split(y, a, &outer, &whole_n, &inner);
  for (int k = 0; k < n; k++) {
    block_move(outer, inner, xs[k]->data, xs[k]->shape[a], y->data, whole_n, at, false, false);
    at += xs[k]->shape[a];
  }
  gr_node *nd = gr_tape_record(c, &OP_CONCAT, y, n, xs);
  if (nd) nd->i[0] = a;
  return y;
}

static void slice_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  if (!x->requires_grad) return;
  int64_t outer, whole_n, inner;
  gr_axis_split(x, (int)n->i[0], &outer, &whole_n, &inner);
  block_move(outer, inner, n->out->grad, n->out->shape[n->i[0]], gr_grad_buf(c, x), whole_n, n->i[1], false, true);
}

static const gr_op_def OP_SLICE = {"slice", slice_backward};

gr_tensor *gr_slice(gr_ctx *c, gr_tensor *x, int axis, int64_t start, int64_t end) {
  GR_NEED("slice", c);
  GR_NEED("slice", x);
  int a = gr_axis("slice", x, axis);
  if (a < 0) return NULL;
  int64_t size = x->shape[a];
  /* Python semantics: negative indices count from the end, then clamp. */
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = start < 0 ? 0 : start > size ? size : start;
  end = end < start ? start : end > size ? size : end;
  int64_t shape[GR_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[a] = end - start;
  gr_tensor *y = gr_tensor_new(c, x->ndim, shape);
  if (!y) return NULL;
  int64_t outer, whole_n, inner;
  gr_axis_split(x, a, &outer, &whole_n, &inner);
  block_move(outer, inner, y->data, end - start, x->data, whole_n, start, true, false);
  gr_node *n = gr_tape_record(c, &OP_SLICE, y, 1, &x);
  if (n) {
    n->i[0] = a;
    n->i[1] = start;
  }
  return y;
}
