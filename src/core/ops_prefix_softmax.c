/* core/ops_prefix_softmax.c — the prefix-LM attention softmax (CodeGen2's
 * Prefix-LM, T5's "prefix LM" mask): positions inside the prefix see the
 * whole prefix, later positions see everything up to themselves. Like
 * ops_attention.c, each row is normalized over its visible leading keys
 * with the shared row kernels of ops_softmax.c; masked keys get 0. */
#include "core/op.h"

/* Number of leading keys visible to query row r of a [...,T,S] score block. */
static inline int64_t prefix_visible(int64_t r, int64_t T, int64_t S, int64_t p) {
  int64_t q = S - T + r % T;
  return q < p ? p : q + 1;
}

static void prefix_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  if (!x->requires_grad) return;
  int64_t T = x->shape[x->ndim - 2], S = x->shape[x->ndim - 1], p = n->i[0];
  int64_t rows = S ? x->numel / S : 0;
  float *dx = gr_grad_buf(c, x);
  const float *y = n->out->data, *dy = n->out->grad;
#pragma omp parallel for schedule(static) if (x->numel > GR_PAR_MIN)
  for (int64_t r = 0; r < rows; r++)
    gr_softmax_row_backward(y + r * S, dy + r * S, dx + r * S, prefix_visible(r, T, S, p), 1, false);
}

static const gr_op_def OP_PREFIX = {"prefix_softmax", prefix_backward};

gr_tensor *gr_prefix_softmax(gr_ctx *c, gr_tensor *scores, int64_t prefix) {
  GR_NEED("prefix_softmax", c);
  GR_NEED("prefix_softmax", scores);
  char s[96];
  if (scores->ndim < 2 || scores->shape[scores->ndim - 2] > scores->shape[scores->ndim - 1]) {
    gr_error(GR_ESHAPE, "prefix_softmax: want scores [...,T,S] with T <= S, got %s",
             gr_shape_str(scores, s, sizeof s));
    return NULL;
  }
  int64_t T = scores->shape[scores->ndim - 2], S = scores->shape[scores->ndim - 1];
  if (prefix < 0 || prefix > S) {
    gr_error(GR_EARG, "prefix_softmax: prefix length %lld outside [0,%lld]", (long long)prefix, (long long)S);
    return NULL;
  }
  int64_t rows = S ? scores->numel / S : 0;
  gr_tensor *y = gr_tensor_like(c, scores);
  if (!y) return NULL;
#pragma omp parallel for schedule(static) if (scores->numel > GR_PAR_MIN)
  for (int64_t r = 0; r < rows; r++)
    gr_softmax_row(scores->data + r * S, y->data + r * S, prefix_visible(r, T, S, prefix), 1, false);
  gr_node *n = gr_tape_record(c, &OP_PREFIX, y, 1, &scores);
  if (n) n->i[0] = prefix;
  return y;
}
