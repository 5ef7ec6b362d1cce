/* core/ops_attention.c — causal softmax for self-attention scores, and the
 * fused multi-head self-attention of a transformer block.
 * gr_causal_softmax: scores [...,T,S]: query row i sits at key position
 * S-T+i and sees keys 0..S-T+i; later keys get probability 0. With T == S
 * this is the usual lower-triangular mask; T < S is incremental decoding
 * with a KV cache. It is the prefix-LM softmax with an empty prefix
 * (ops_prefix_softmax.c), so both masks share one kernel, one backward and
 * one set of checks.
 * gr_causal_attention: q, k, v read in place out of the fused projection
 * [B,T,3C] by gemms with leading dimension 3C, the output written into its
 * head's columns of [B,T,C] (leading dimension C): no split/merge copies.
 * Forward keeps each head's probabilities P [T,T] (masked keys 0); backward
 * is dV = P^T dY, dP = dY V^T, dS = P (dP - rowsum(dP P)) / sqrt(hd),
 * dQ = dS K, dK = dS^T Q, each written into its slice of d(qkv). The gemms
 * are tiny (T x T x hd), so heads run one after another (BLAS is never
 * called inside an OpenMP region). */
#include <math.h>
#include <string.h>

#include "core/op.h"

gr_tensor *gr_causal_softmax(gr_ctx *c, gr_tensor *scores) { return gr_prefix_softmax(c, scores, 0); }

typedef struct attn_dims {
  int64_t B, T, C, H, hd;
} attn_dims;

static attn_dims attn_dims_of(const gr_tensor *qkv, int64_t n_head) {
  attn_dims d = {qkv->shape[0], qkv->shape[1], qkv->shape[2] / 3, n_head, qkv->shape[2] / 3 / n_head};
  return d;
}

/* Keys visible to query t (of T, no cache): the prefix block or 0..t. */
static inline int64_t attn_visible(int64_t t, int64_t prefix) { return t < prefix ? prefix : t + 1; }

/* Scores [T,T] -> probabilities in place: row t scaled, softmax over its
 * visible keys, the masked rest 0. */
static void attn_probs(float *p, int64_t T, int64_t prefix, float scale) {
  for (int64_t t = 0; t < T; t++) {
    float *row = p + t * T;
    int64_t n = attn_visible(t, prefix);
    for (int64_t k = 0; k < n; k++) row[k] *= scale;
    gr_softmax_row(row, row, n, 1, false);
    if (n < T) memset(row + n, 0, (size_t)(T - n) * sizeof(float));
  }
}

/* dP [T,T] -> dS in place: row t is scale * P (dP - sum(dP P)) over the
 * visible keys, 0 over the masked ones. */
static void attn_probs_backward(const float *p, float *dp, int64_t T, int64_t prefix, float scale) {
  for (int64_t t = 0; t < T; t++) {
    const float *pr = p + t * T;
    float *dr = dp + t * T;
    int64_t n = attn_visible(t, prefix);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < n; k++) s += dr[k] * pr[k];
    float sf = (float)s;
    for (int64_t k = 0; k < n; k++) dr[k] = scale * pr[k] * (dr[k] - sf);
    if (n < T) memset(dr + n, 0, (size_t)(T - n) * sizeof(float));
  }
}

static void attention_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *qkv = n->in[0];
  if (!qkv->requires_grad) return;
  attn_dims d = attn_dims_of(qkv, n->i[0]);
  int64_t T = d.T, C = d.C, hd = d.hd, prefix = n->i[1];
  const float *P = n->saved, *dY = n->out->grad;
  bool fresh;
  float *dqkv = gr_grad_buf_fresh(c, qkv, &fresh), beta = fresh ? 0.0f : 1.0f;
  float *dS = gr_scratch_uninit(c, (size_t)(T * T + 1) * sizeof(float));
  GR_ASSERT(dS != NULL); /* step arena exhausted mid-backward */
  for (int64_t b = 0; b < d.B; b++)
    for (int64_t h = 0; h < d.H; h++) {
      int64_t off = b * T * 3 * C + h * hd;
      const float *q = qkv->data + off, *k = q + C, *v = q + 2 * C, *p = P + (b * d.H + h) * T * T;
      const float *dy = dY + b * T * C + h * hd;
      float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
      gr_sgemm_rm(true, false, T, hd, T, p, T, dy, C, beta, dv, 3 * C);  /* dV = P^T dY */
      gr_sgemm_rm(false, true, T, T, hd, dy, C, v, 3 * C, 0, dS, T);     /* dP = dY V^T */
      attn_probs_backward(p, dS, T, prefix, n->f[0]);
      gr_sgemm_rm(false, false, T, hd, T, dS, T, k, 3 * C, beta, dq, 3 * C); /* dQ = dS K */
      gr_sgemm_rm(true, false, T, hd, T, dS, T, q, 3 * C, beta, dk, 3 * C);  /* dK = dS^T Q */
    }
}

static const gr_op_def OP_ATTENTION = {"causal_attention", attention_backward};

static bool attention_check(const gr_tensor *qkv, int64_t n_head, int64_t prefix) {
  char s[96];
  if (qkv->ndim != 3 || n_head <= 0 || qkv->shape[2] == 0 || qkv->shape[2] % (3 * n_head)) {
    gr_error(GR_ESHAPE, "causal_attention: want qkv [B,T,3C] with C divisible by n_head %lld, got %s",
             (long long)n_head, gr_shape_str(qkv, s, sizeof s));
    return false;
  }
  if (prefix < 0 || prefix > qkv->shape[1]) {
    gr_error(GR_EARG, "causal_attention: prefix length %lld outside [0,%lld]", (long long)prefix,
             (long long)qkv->shape[1]);
    return false;
  }
  return true;
}

gr_tensor *gr_causal_attention(gr_ctx *c, gr_tensor *qkv, int64_t n_head, int64_t prefix) {
  GR_NEED("causal_attention", c);
  GR_NEED("causal_attention", qkv);
  if (!attention_check(qkv, n_head, prefix)) return NULL;
  attn_dims d = attn_dims_of(qkv, n_head);
  int64_t T = d.T, C = d.C, hd = d.hd;
  float scale = 1.0f / sqrtf((float)hd);
  gr_tensor *y = gr_tensor_new_uninit(c, 3, GR_SHAPE(d.B, T, C)); /* every head's gemm has beta 0 */
  float *P = gr_scratch_uninit(c, (size_t)(d.B * d.H * T * T + 1) * sizeof(float));
  if (!y || !P) return NULL;
  for (int64_t b = 0; b < d.B; b++)
    for (int64_t h = 0; h < d.H; h++) {
      const float *q = qkv->data + b * T * 3 * C + h * hd, *k = q + C, *v = q + 2 * C;
      float *p = P + (b * d.H + h) * T * T;
      gr_sgemm_rm(false, true, T, T, hd, q, 3 * C, k, 3 * C, 0, p, T); /* S = Q K^T */
      attn_probs(p, T, prefix, scale);
      gr_sgemm_rm(false, false, T, hd, T, p, T, v, 3 * C, 0, y->data + b * T * C + h * hd, C); /* Y = P V */
    }
  gr_node *n = gr_tape_record(c, &OP_ATTENTION, y, 1, &qkv);
  if (n) {
    n->i[0] = n_head;
    n->i[1] = prefix;
    n->f[0] = scale;
    n->saved = P;
  }
  return y;
}
