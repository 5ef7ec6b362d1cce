/* core/ops_view.c — ops whose output shares data with the input: reshape
 * and stop_grad. Backward of reshape adds the output grad into the input's
 * (same element order); stop_grad records nothing. */
#include <string.h>

#include "core/op.h"

static void reshape_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  if (!x->requires_grad) return;
  float *dx = gr_grad_buf(c, x);
  const float *dy = n->out->grad;
  for (int64_t i = 0; i < x->numel; i++) dx[i] += dy[i];
}

static const gr_op_def OP_RESHAPE = {"reshape", reshape_backward};

/* A tensor header in the step arena viewing x's data with a new shape. */
static gr_tensor *view_of(gr_ctx *c, gr_tensor *x, int ndim, const int64_t *shape) {
  gr_tensor *y = gr_scratch(c, sizeof *y);
  if (!y) return NULL;
  y->ndim = ndim;
  memcpy(y->shape, shape, (size_t)ndim * sizeof(int64_t));
  y->numel = x->numel;
  y->data = x->data;
  return y;
}

gr_tensor *gr_reshape(gr_ctx *c, gr_tensor *x, int ndim, const int64_t *shape) {
  GR_NEED("reshape", c);
  GR_NEED("reshape", x);
  char sx[96];
  if (ndim < 0 || ndim > GR_MAX_DIMS || (ndim && !shape)) {
    gr_error(GR_ESHAPE, "reshape: bad target rank %d for x%s", ndim, gr_shape_str(x, sx, sizeof sx));
    return NULL;
  }
  int64_t s[GR_MAX_DIMS], known = 1;
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    s[i] = shape[i];
    if (s[i] == -1 && infer < 0) {
      infer = i;
    } else if (s[i] < 0) {
      gr_error(GR_ESHAPE, "reshape: bad dim %lld at %d for x%s", (long long)s[i], i, gr_shape_str(x, sx, sizeof sx));
      return NULL;
    } else {
      if (s[i] && known > GR_MAX_NUMEL / s[i]) known = GR_MAX_NUMEL + 1;
      else known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x->numel % known) {
      gr_error(GR_ESHAPE, "reshape: cannot infer dim %d for x%s", infer, gr_shape_str(x, sx, sizeof sx));
      return NULL;
    }
    s[infer] = x->numel / known;
    known = x->numel;
  }
  if (known != x->numel) {
    gr_error(GR_ESHAPE, "reshape: x%s has %lld elements, target has %lld", gr_shape_str(x, sx, sizeof sx),
             (long long)x->numel, (long long)known);
    return NULL;
  }
  gr_tensor *y = view_of(c, x, ndim, s);
  if (y) gr_tape_record(c, &OP_RESHAPE, y, 1, &x);
  return y;
}

gr_tensor *gr_stop_grad(gr_ctx *c, gr_tensor *x) {
  GR_NEED("stop_grad", c);
  GR_NEED("stop_grad", x);
  return view_of(c, x, x->ndim, x->shape);
}
