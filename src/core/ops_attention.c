/* core/ops_attention.c — causal softmax for self-attention scores.
 * scores [...,T,S]: query row i sits at key position S-T+i and sees keys
 * 0..S-T+i; later keys get probability 0. With T == S this is the usual
 * lower-triangular mask; T < S is incremental decoding with a KV cache.
 * Uses the shared row kernels of ops_softmax.c on each row's visible prefix. */
#include <string.h>

#include "core/op.h"

static void causal_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  if (!x->requires_grad) return;
  int64_t T = x->shape[x->ndim - 2], S = x->shape[x->ndim - 1], rows = x->numel / (S ? S : 1);
  float *dx = gr_grad_buf(c, x);
  const float *y = n->out->data, *dy = n->out->grad;
#pragma omp parallel for schedule(static) if (x->numel > GR_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t visible = S - T + r % T + 1;
    gr_softmax_row_backward(y + r * S, dy + r * S, dx + r * S, visible, 1, false);
  }
}

static const gr_op_def OP_CAUSAL = {"causal_softmax", causal_backward};

gr_tensor *gr_causal_softmax(gr_ctx *c, gr_tensor *scores) {
  GR_NEED("causal_softmax", c);
  GR_NEED("causal_softmax", scores);
  char s[96];
  if (scores->ndim < 2 || scores->shape[scores->ndim - 2] > scores->shape[scores->ndim - 1]) {
    gr_error(GR_ESHAPE, "causal_softmax: want scores [...,T,S] with T <= S, got %s",
             gr_shape_str(scores, s, sizeof s));
    return NULL;
  }
  int64_t T = scores->shape[scores->ndim - 2], S = scores->shape[scores->ndim - 1];
  int64_t rows = S ? scores->numel / S : 0;
  gr_tensor *y = gr_tensor_like(c, scores);
  if (!y) return NULL;
#pragma omp parallel for schedule(static) if (scores->numel > GR_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t visible = S - T + r % T + 1;
    gr_softmax_row(scores->data + r * S, y->data + r * S, visible, 1, false);
  }
  gr_tape_record(c, &OP_CAUSAL, y, 1, &scores);
  return y;
}
