/* graft/ops.h — differentiable ops. This header is the op reference: one line
 * of math per op. All take the context first, return a new tensor in the step
 * arena (NULL + gr_last_error() on bad input), and record a tape node when
 * grad mode is on and an input requires grad. Axes may be negative (from the
 * end). Broadcasting follows numpy: shapes align from the right, dims of 1
 * stretch. Integer inputs (class targets, token ids) are int32 arrays. */
#ifndef GRAFT_OPS_H
#define GRAFT_OPS_H
#include <limits.h>

#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GR_AXIS_ALL INT_MIN /* reduce over every axis */

/* ---- linear algebra (OpenBLAS sgemm) ---------------------------------- */
/* y = op(a) @ op(b), op = transpose of the last two dims when trans_*.
 * a [...,M,K], b [...,K,N] with equal batch dims, or b 2-D (shared). */
gr_tensor *gr_matmul(gr_ctx *c, gr_tensor *a, gr_tensor *b, bool trans_a, bool trans_b);
/* y = x @ w^T + b ; x [...,in], w [out,in] (PyTorch layout), b [out] or NULL. */
gr_tensor *gr_linear(gr_ctx *c, gr_tensor *x, gr_tensor *w, gr_tensor *b);

/* ---- elementwise, broadcasting ---------------------------------------- */
gr_tensor *gr_add(gr_ctx *c, gr_tensor *a, gr_tensor *b); /* a + b */
gr_tensor *gr_sub(gr_ctx *c, gr_tensor *a, gr_tensor *b); /* a - b */
gr_tensor *gr_mul(gr_ctx *c, gr_tensor *a, gr_tensor *b); /* a * b */
gr_tensor *gr_div(gr_ctx *c, gr_tensor *a, gr_tensor *b); /* a / b */
gr_tensor *gr_scale(gr_ctx *c, gr_tensor *x, float s);     /* s * x */
gr_tensor *gr_add_scalar(gr_ctx *c, gr_tensor *x, float s); /* x + s */

/* ---- elementwise, unary ----------------------------------------------- */
gr_tensor *gr_exp(gr_ctx *c, gr_tensor *x);            /* e^x */
gr_tensor *gr_log(gr_ctx *c, gr_tensor *x);            /* ln x */
gr_tensor *gr_sqrt(gr_ctx *c, gr_tensor *x);           /* sqrt x */
gr_tensor *gr_pow(gr_ctx *c, gr_tensor *x, float p);   /* x^p */
gr_tensor *gr_relu(gr_ctx *c, gr_tensor *x);           /* max(x, 0) */
gr_tensor *gr_gelu(gr_ctx *c, gr_tensor *x);           /* 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) */
gr_tensor *gr_tanh(gr_ctx *c, gr_tensor *x);           /* tanh x */
gr_tensor *gr_sigmoid(gr_ctx *c, gr_tensor *x);        /* 1/(1+e^-x) */

/* ---- reductions ------------------------------------------------------- */
gr_tensor *gr_sum(gr_ctx *c, gr_tensor *x, int axis, bool keepdim);  /* sum over axis (or GR_AXIS_ALL) */
gr_tensor *gr_mean(gr_ctx *c, gr_tensor *x, int axis, bool keepdim); /* mean over axis (or GR_AXIS_ALL) */

/* ---- normalized exponentials and losses ------------------------------- */
gr_tensor *gr_softmax(gr_ctx *c, gr_tensor *x, int axis);     /* e^x_i / sum_j e^x_j */
gr_tensor *gr_log_softmax(gr_ctx *c, gr_tensor *x, int axis); /* x_i - log sum_j e^x_j */
/* Softmax over the last dim of scores [...,T,S] with keys j > i + (S-T)
 * masked out (query i is position S-T+i): causal self-attention. */
gr_tensor *gr_causal_softmax(gr_ctx *c, gr_tensor *scores);
/* Prefix-LM softmax over scores [...,T,S] (query i at position q = S-T+i):
 * key j is visible iff j <= q or (q < p and j < p), i.e. the first p
 * positions attend to each other both ways, later ones causally. p = 0 is
 * gr_causal_softmax; p > S is GR_EARG. (core/ops_prefix_softmax.c) */
gr_tensor *gr_prefix_softmax(gr_ctx *c, gr_tensor *scores, int64_t prefix);
/* Multi-head self-attention straight from the fused projection qkv [B,T,3C]
 * (q, k, v side by side on the last dim, each n_head heads of hd = C/n_head):
 * y[b,t,h*hd:(h+1)*hd] = prefix_softmax(q_h k_h^T / sqrt(hd), prefix) v_h,
 * heads merged into y [B,T,C]. The composition of slices, permutes, two
 * matmuls, scale and gr_prefix_softmax without their copies: strided gemms
 * per head, one [T,T] probability block per head kept for backward.
 * prefix 0 is causal; prefix > T or C % n_head: GR_EARG/GR_ESHAPE.
 * (core/ops_attention.c) */
gr_tensor *gr_causal_attention(gr_ctx *c, gr_tensor *qkv, int64_t n_head, int64_t prefix);
/* mean over rows n with target[n] != ignore_index of
 * -sum_k q_nk log softmax(logits_n)_k, q = (1-eps) onehot + eps/C.
 * logits [N,C]; scalar result (PyTorch CrossEntropyLoss semantics). A target
 * outside [0,C) that is not ignore_index: GR_EARG naming the row. When every
 * row is ignored (or N = 0) the loss is 0 with zero gradient (PyTorch: NaN). */
gr_tensor *gr_cross_entropy(gr_ctx *c, gr_tensor *logits, const int32_t *target,
                            float label_smoothing, int32_t ignore_index);
/* mean((pred - target)^2) over all elements; scalar. Same, non-empty shapes.
 * Every loss returns GR_ENUMERIC when an input holds NaN or Inf. */
gr_tensor *gr_mse(gr_ctx *c, gr_tensor *pred, gr_tensor *target);
/* KLDivLoss(reduction='batchmean'): sum t*(log t - input) / N, input = log q;
 * with log_target the target is given as log t. Scalar. Terms with t = 0 are
 * 0 (their target gradient is taken as 0); a negative t is GR_EARG. */
gr_tensor *gr_kl_div(gr_ctx *c, gr_tensor *input, gr_tensor *target, bool log_target);

/* ---- convolution and pooling (NCHW) ----------------------------------- */
typedef struct gr_conv2d_opts {
  int stride_h, stride_w;  /* 0 means 1 */
  int pad_h, pad_w;        /* zero padding on each side */
  int dil_h, dil_w;        /* 0 means 1 */
  int groups;              /* 0 means 1 */
} gr_conv2d_opts;
/* y[n,o] = b[o] + sum_{c in group(o)} x[n,c] (*) w[o,c] ; x [N,C,H,W],
 * w [O,C/groups,kh,kw], b [O] or NULL; im2col + sgemm. opts NULL: stride 1, pad 0. */
gr_tensor *gr_conv2d(gr_ctx *c, gr_tensor *x, gr_tensor *w, gr_tensor *b, const gr_conv2d_opts *o);

typedef struct gr_pool2d_opts {
  int kernel_h, kernel_w;
  int stride_h, stride_w;  /* 0 means = kernel */
  int pad_h, pad_w;
  bool count_include_pad;  /* avg pool only (PyTorch default true) */
} gr_pool2d_opts;
gr_tensor *gr_max_pool2d(gr_ctx *c, gr_tensor *x, const gr_pool2d_opts *o); /* max over window */
/* relu(max_pool2d(x)) = max_pool2d(relu(x)) (max and ReLU commute) in one
 * pass: the pool, then the ReLU on its outputs (a quarter of x for 2x2
 * windows); NaN propagates as in PyTorch. nn's Sequential runs a ReLU next
 * to a MaxPool2d through it (LeNet's conv, relu, pool). */
gr_tensor *gr_max_pool2d_relu(gr_ctx *c, gr_tensor *x, const gr_pool2d_opts *o);
gr_tensor *gr_avg_pool2d(gr_ctx *c, gr_tensor *x, const gr_pool2d_opts *o); /* mean over window */
gr_tensor *gr_global_avg_pool(gr_ctx *c, gr_tensor *x); /* [N,C,H,W] -> [N,C,1,1] */

/* ---- normalization, dropout, embedding -------------------------------- */
/* x [N,C,...]: training (gr_ctx_training) uses batch mean / biased var over
 * all dims but C and updates running_* in place with momentum (unbiased var),
 * eval uses running_*. y = gamma (x-mu)/sqrt(var+eps) + beta. gamma/beta may
 * be NULL (affine off); running_* may be NULL in training (no tracking). */
gr_tensor *gr_batch_norm(gr_ctx *c, gr_tensor *x, gr_tensor *gamma, gr_tensor *beta,
                         gr_tensor *running_mean, gr_tensor *running_var,
                         float momentum, float eps);
/* y = max(0, batch_norm(x) + residual) as one op (residual NULL or shaped
 * like x): ResNet's bn -> relu and bn -> add -> relu in one pass; same
 * modes, arguments and running-stat updates as gr_batch_norm. */
gr_tensor *gr_batch_norm_relu(gr_ctx *c, gr_tensor *x, gr_tensor *gamma, gr_tensor *beta,
                              gr_tensor *running_mean, gr_tensor *running_var,
                              float momentum, float eps, gr_tensor *residual);
/* Over the last dim D: y = gamma (x-mu)/sqrt(var+eps) + beta; gamma/beta [D] or NULL. */
gr_tensor *gr_layer_norm(gr_ctx *c, gr_tensor *x, gr_tensor *gamma, gr_tensor *beta, float eps);
/* Training: y = x * m / (1-p), m ~ Bernoulli(1-p) from the ctx rng; eval
 * (or p = 0): y = x (a copy, no rng draws). p outside [0,1): GR_EARG. */
gr_tensor *gr_dropout(gr_ctx *c, gr_tensor *x, float p);
/* y[i] = weight[ids[i]] ; weight [V,D] -> [n,D]. Out-of-range id: GR_EARG. */
gr_tensor *gr_embedding(gr_ctx *c, gr_tensor *weight, const int32_t *ids, int64_t n);

/* ---- shape ------------------------------------------------------------ */
/* View with a new shape (one dim may be -1); shares data with x. */
gr_tensor *gr_reshape(gr_ctx *c, gr_tensor *x, int ndim, const int64_t *shape);
gr_tensor *gr_transpose(gr_ctx *c, gr_tensor *x, int d0, int d1);       /* swap two dims */
gr_tensor *gr_permute(gr_ctx *c, gr_tensor *x, const int *perm);        /* y.shape[i] = x.shape[perm[i]] */
gr_tensor *gr_concat(gr_ctx *c, int n, gr_tensor *const *xs, int axis); /* join along axis */
gr_tensor *gr_slice(gr_ctx *c, gr_tensor *x, int axis, int64_t start, int64_t end); /* [start,end) */

/* ---- gradient control ------------------------------------------------- */
/* Forward: y = x. Backward: dx = -lambda * dy (DANN's gradient reversal). */
gr_tensor *gr_grad_reverse(gr_ctx *c, gr_tensor *x, float lambda);
/* y = x with no gradient flowing back (shares data). */
gr_tensor *gr_stop_grad(gr_ctx *c, gr_tensor *x);

#ifdef __cplusplus
}
#endif
#endif
