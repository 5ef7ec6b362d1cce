/* core/ops_grad.c — ops that exist for what they do to gradients: dropout
 * (inverted scaling, mask drawn from the ctx rng, saved for backward) and
 * gradient reversal (identity forward, -lambda dy backward). Both copy x into
 * a new output and share one backward: dx += dy * (mask[i] or factor). */
#include <math.h>
#include <string.h>

#include "core/op.h"

static void scaled_identity_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  if (!x->requires_grad) return;
  const float *dy = n->out->grad, *mask = n->saved;
  float f = n->f[0], *dx = gr_grad_buf(c, x);
#pragma omp parallel for if (x->numel > GR_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < x->numel; i++) dx[i] += dy[i] * (mask ? mask[i] : f);
}

static const gr_op_def OP_DROPOUT = {"dropout", scaled_identity_backward};
static const gr_op_def OP_GRAD_REVERSE = {"grad_reverse", scaled_identity_backward};

/* y = copy of x with a node whose backward multiplies by mask or factor. */
static gr_tensor *scaled_identity(gr_ctx *c, const gr_op_def *def, gr_tensor *x, float *mask, float factor) {
  gr_tensor *y = gr_tensor_like(c, x);
  if (!y) return NULL;
  if (mask) {
    for (int64_t i = 0; i < x->numel; i++) y->data[i] = x->data[i] * mask[i];
  } else if (x->numel) {
    memcpy(y->data, x->data, (size_t)x->numel * sizeof(float));
  }
  gr_node *n = gr_tape_record(c, def, y, 1, &x);
  if (n) {
    n->saved = mask;
    n->f[0] = factor;
  }
  return y;
}

/* Training with p > 0 draws one Bernoulli(1-p) per element, in order, from
 * the ctx rng; eval mode and p = 0 are the identity (no draws). */
gr_tensor *gr_dropout(gr_ctx *c, gr_tensor *x, float p) {
  GR_NEED("dropout", c);
  GR_NEED("dropout", x);
  if (!(p >= 0 && p < 1)) {
    gr_error(GR_EARG, "dropout: p = %g outside [0,1)", (double)p);
    return NULL;
  }
  if (!gr_ctx_training(c) || p == 0) return scaled_identity(c, &OP_DROPOUT, x, NULL, 1.0f);
  float *mask = gr_scratch(c, (size_t)x->numel * sizeof(float));
  if (!mask) return NULL;
  gr_rng *r = gr_ctx_rng(c);
  float keep = 1.0f - p, scale = 1.0f / keep;
  for (int64_t i = 0; i < x->numel; i++) mask[i] = gr_rng_uniform(r) < keep ? scale : 0.0f;
  return scaled_identity(c, &OP_DROPOUT, x, mask, 1.0f);
}

gr_tensor *gr_grad_reverse(gr_ctx *c, gr_tensor *x, float lambda) {
  GR_NEED("grad_reverse", c);
  GR_NEED("grad_reverse", x);
  if (!isfinite(lambda)) {
    gr_error(GR_EARG, "grad_reverse: lambda = %g is not finite", (double)lambda);
    return NULL;
  }
  return scaled_identity(c, &OP_GRAD_REVERSE, x, NULL, -lambda);
}
