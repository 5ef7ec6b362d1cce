/* core/ops_loss.c — scalar losses: cross-entropy (fused log-softmax, label
 * smoothing, ignore_index), mean squared error, KL divergence (batchmean).
 * Every loss rejects non-finite inputs with GR_ENUMERIC before computing,
 * sums in double and returns a 0-dim tensor. Cross-entropy keeps the
 * log-probabilities and a copy of the targets in the step arena for its
 * backward, (softmax - q) / rows. Not here: softmax as an op (ops_softmax.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/op.h"

/* ---- cross-entropy ----------------------------------------------------- */
typedef struct ce_saved {
  float *logp;     /* [N,C] log-softmax of the logits */
  int32_t *target; /* [N] copy of the targets */
  int64_t count;   /* rows with target != ignore_index */
} ce_saved;

static void cross_entropy_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  ce_saved *s = n->saved;
  if (!x->requires_grad || s->count == 0) return;
  int64_t N = x->shape[0], C = x->shape[1];
  float ls = n->f[0], g = n->out->grad[0] / (float)s->count, *dx = gr_grad_buf(c, x);
  int32_t ignore = (int32_t)n->i[0];
#pragma omp parallel for if (x->numel > GR_PAR_MIN) schedule(static)
  for (int64_t r = 0; r < N; r++) {
    if (s->target[r] == ignore) continue;
    const float *lp = s->logp + r * C;
    float *d = dx + r * C;
    for (int64_t k = 0; k < C; k++) {
      float q = ls / (float)C + (k == s->target[r] ? 1.0f - ls : 0.0f);
      d[k] += g * (expf(lp[k]) - q);
    }
  }
}

static const gr_op_def OP_CROSS_ENTROPY = {"cross_entropy", cross_entropy_backward};

static bool ce_check(const gr_tensor *x, const int32_t *target, float ls, int32_t ignore) {
  char sx[96];
  if (x->ndim != 2 || x->shape[1] == 0) {
    gr_error(GR_ESHAPE, "cross_entropy: logits%s must be [N,C] with C >= 1", gr_shape_str(x, sx, sizeof sx));
    return false;
  }
  if (!(ls >= 0 && ls <= 1)) {
    gr_error(GR_EARG, "cross_entropy: label_smoothing %g outside [0,1]", (double)ls);
    return false;
  }
  if (x->shape[0] > 0 && !target) {
    gr_error(GR_EARG, "cross_entropy: target is NULL");
    return false;
  }
  int64_t C = x->shape[1];
  for (int64_t r = 0; r < x->shape[0]; r++)
    if (target[r] != ignore && (target[r] < 0 || target[r] >= C)) {
      gr_error(GR_EARG, "cross_entropy: target[%lld] = %d outside [0,%lld) and not ignore_index (%d)",
               (long long)r, (int)target[r], (long long)C, (int)ignore);
      return false;
    }
  return gr_check_finite(x, "cross_entropy: logits") == GR_OK;
}

/* Per-row loss -sum_k q_k logp_k into row_loss (0 for ignored rows). */
static void ce_rows(const gr_tensor *x, ce_saved *s, float ls, int32_t ignore, double *row_loss) {
  int64_t N = x->shape[0], C = x->shape[1];
#pragma omp parallel for if (x->numel > GR_PAR_MIN) schedule(static)
  for (int64_t r = 0; r < N; r++) {
    row_loss[r] = 0;
    if (s->target[r] == ignore) continue;
    float *lp = s->logp + r * C;
    gr_softmax_row(x->data + r * C, lp, C, 1, true);
    double all = 0;
    for (int64_t k = 0; k < C; k++) all += lp[k];
    row_loss[r] = -(1.0 - ls) * lp[s->target[r]] - ls * all / (double)C;
  }
}

gr_tensor *gr_cross_entropy(gr_ctx *c, gr_tensor *logits, const int32_t *target, float label_smoothing,
                            int32_t ignore_index) {
  GR_NEED("cross_entropy", c);
  GR_NEED("cross_entropy", logits);
  if (!ce_check(logits, target, label_smoothing, ignore_index)) return NULL;
  int64_t N = logits->shape[0];
  ce_saved *s = gr_scratch(c, sizeof *s);
  double *row_loss = s ? gr_scratch(c, (size_t)N * sizeof(double)) : NULL;
  if (!row_loss || !(s->logp = gr_scratch(c, (size_t)logits->numel * sizeof(float))) ||
      !(s->target = gr_scratch(c, (size_t)N * sizeof(int32_t))))
    return NULL;
  if (N) memcpy(s->target, target, (size_t)N * sizeof(int32_t));
  for (int64_t r = 0; r < N; r++) s->count += target[r] != ignore_index;
  ce_rows(logits, s, label_smoothing, ignore_index, row_loss);
  double total = 0;
  for (int64_t r = 0; r < N; r++) total += row_loss[r];
  gr_tensor *y = gr_scalar(c, s->count ? (float)(total / (double)s->count) : 0.0f);
  if (!y) return NULL;
  gr_node *n = gr_tape_record(c, &OP_CROSS_ENTROPY, y, 1, &logits);
  if (n) {
    n->saved = s;
    n->f[0] = label_smoothing;
    n->i[0] = ignore_index;
  }
  return y;
}

/* ---- mean squared error ------------------------------------------------ */
static void mse_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *p = n->in[0], *t = n->in[1];
  float g = 2.0f * n->out->grad[0] / (float)p->numel;
  float *dp = p->requires_grad ? gr_grad_buf(c, p) : NULL, *dt = t->requires_grad ? gr_grad_buf(c, t) : NULL;
#pragma omp parallel for if (p->numel > GR_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < p->numel; i++) {
    float d = g * (p->data[i] - t->data[i]);
    if (dp) dp[i] += d;
    if (dt) dt[i] -= d;
  }
}

static const gr_op_def OP_MSE = {"mse", mse_backward};

/* Same shape, at least one element, all finite. */
static bool pair_check(const char *op, const gr_tensor *a, const gr_tensor *b, const char *an, const char *bn) {
  char sa[96], sb[96], what[64];
  if (!gr_same_shape(a, b) || a->numel == 0) {
    gr_error(GR_ESHAPE, "%s: %s%s and %s%s must have the same, non-empty shape", op, an,
             gr_shape_str(a, sa, sizeof sa), bn, gr_shape_str(b, sb, sizeof sb));
    return false;
  }
  snprintf(what, sizeof what, "%s: %s", op, an);
  if (gr_check_finite(a, what)) return false;
  snprintf(what, sizeof what, "%s: %s", op, bn);
  return gr_check_finite(b, what) == GR_OK;
}

gr_tensor *gr_mse(gr_ctx *c, gr_tensor *pred, gr_tensor *target) {
  GR_NEED("mse", c);
  GR_NEED("mse", pred);
  GR_NEED("mse", target);
  if (!pair_check("mse", pred, target, "pred", "target")) return NULL;
  double s = 0;
  for (int64_t i = 0; i < pred->numel; i++) {
    double d = (double)pred->data[i] - target->data[i];
    s += d * d;
  }
  gr_tensor *y = gr_scalar(c, (float)(s / (double)pred->numel));
  if (y) gr_tape_record(c, &OP_MSE, y, 2, (gr_tensor *[]){pred, target});
  return y;
}

/* ---- KL divergence (batchmean) ----------------------------------------- */
static void kl_div_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0], *t = n->in[1];
  bool log_target = n->i[0];
  float g = n->out->grad[0] / (float)x->shape[0];
  float *dx = x->requires_grad ? gr_grad_buf(c, x) : NULL, *dt = t->requires_grad ? gr_grad_buf(c, t) : NULL;
  for (int64_t i = 0; i < x->numel; i++) {
    float ti = t->data[i], xi = x->data[i];
    float p = log_target ? expf(ti) : ti; /* target probability */
    if (dx) dx[i] -= g * p;
    if (dt && log_target) dt[i] += g * p * (ti - xi + 1.0f);
    else if (dt && ti > 0) dt[i] += g * (logf(ti) + 1.0f - xi);
  }
}

static const gr_op_def OP_KL_DIV = {"kl_div", kl_div_backward};

gr_tensor *gr_kl_div(gr_ctx *c, gr_tensor *input, gr_tensor *target, bool log_target) {
  GR_NEED("kl_div", c);
  GR_NEED("kl_div", input);
  GR_NEED("kl_div", target);
  if (!pair_check("kl_div", input, target, "input", "target")) return NULL;
  if (input->ndim == 0) {
    gr_error(GR_ESHAPE, "kl_div: input must have a batch dim (0-dim given)");
    return NULL;
  }
  double s = 0;
  for (int64_t i = 0; i < input->numel; i++) {
    double t = target->data[i], x = input->data[i];
    if (log_target) {
      s += exp(t) * (t - x);
    } else if (t < 0) {
      gr_error(GR_EARG, "kl_div: target element %lld is negative (%g); probabilities expected", (long long)i, t);
      return NULL;
    } else if (t > 0) {
      s += t * (log(t) - x);
    }
  }
  gr_tensor *y = gr_scalar(c, (float)(s / (double)input->shape[0]));
  gr_node *n = y ? gr_tape_record(c, &OP_KL_DIV, y, 2, (gr_tensor *[]){input, target}) : NULL;
  if (n) n->i[0] = log_target;
  return y;
}
