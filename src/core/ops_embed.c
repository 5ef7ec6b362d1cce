/* core/ops_embed.c — embedding lookup: y[i] = weight[ids[i]]. Backward
 * scatter-adds each output row into its weight row (repeated ids add up).
 * The ids are copied into the step arena, so the caller's array may change
 * before backward. */
#include <string.h>

#include "core/op.h"

static void embedding_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *w = n->in[0];
  if (!w->requires_grad) return;
  const int32_t *ids = n->saved;
  int64_t D = w->shape[1], count = n->i[0];
  float *dw = gr_grad_buf(c, w);
  const float *dy = n->out->grad;
  for (int64_t i = 0; i < count; i++) {
    float *row = dw + (int64_t)ids[i] * D;
    for (int64_t j = 0; j < D; j++) row[j] += dy[i * D + j];
  }
}

static const gr_op_def OP_EMBEDDING = {"embedding", embedding_backward};

gr_tensor *gr_embedding(gr_ctx *c, gr_tensor *weight, const int32_t *ids, int64_t n) {
  GR_NEED("embedding", c);
  GR_NEED("embedding", weight);
  char sw[96];
  if (weight->ndim != 2) {
    gr_error(GR_ESHAPE, "embedding: weight must be [V,D], got %s", gr_shape_str(weight, sw, sizeof sw));
    return NULL;
  }
  if (n < 0 || (n > 0 && !ids)) {
    gr_error(GR_EARG, "embedding: %lld ids at %p", (long long)n, (const void *)ids);
    return NULL;
  }
  int64_t V = weight->shape[0], D = weight->shape[1];
  for (int64_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= V) {
      gr_error(GR_EARG, "embedding: ids[%lld] = %d outside the vocabulary [0,%lld)", (long long)i, ids[i], (long long)V);
      return NULL;
    }
  gr_tensor *y = gr_tensor_new(c, 2, GR_SHAPE(n, D));
  if (!y) return NULL;
  for (int64_t i = 0; i < n; i++) memcpy(y->data + i * D, weight->data + (int64_t)ids[i] * D, (size_t)D * sizeof(float));
  gr_node *nd = gr_tape_record(c, &OP_EMBEDDING, y, 1, &weight);
  if (nd) {
    int32_t *saved = gr_scratch(c, (size_t)(n ? n : 1) * sizeof(int32_t));
    if (!saved) return NULL;
    if (n) memcpy(saved, ids, (size_t)n * sizeof(int32_t));
    nd->saved = saved;
    nd->i[0] = n;
  }
  return y;
}
