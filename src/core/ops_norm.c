/* core/ops_norm.c — batch normalization and layer normalization.
 *
 * batch_norm: x [N,C,*] normalized per channel over N and the trailing dims.
 * Training uses the batch mean and biased variance and updates the running
 * stats in place (PyTorch: r = (1-m) r + m s, with the unbiased variance);
 * eval uses the running stats. The mode is fixed at forward time and saved.
 * batch_norm_relu: max(0, batch_norm(x) + residual) as one op (ResNet's
 * bn -> relu and bn -> add -> relu): one pass forward instead of two or
 * three, and its backward masks dY by y > 0 inside batch norm's two passes
 * (no ReLU or add backward passes over the activations). The forward saves
 * y > 0 as one bit per element, which the backward reads instead of y
 * (each pass over the activations streams from memory: y was two of the
 * backward's eight streams).
 * layer_norm: normalized over the last dim. Both save mean and 1/std per
 * group and recompute x_hat in backward. */
#include <math.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "core/op.h"

typedef struct norm_saved {
  float *mean, *invstd; /* per channel (batch norm) or per row (layer norm) */
  bool batch_stats;     /* batch norm in training mode */
  bool relu;            /* batch_norm_relu: dY counts where y > 0 only */
  uint32_t *mask;       /* batch_norm_relu: y > 0 as bits (bn_mask_words) */
} norm_saved;

/* x [N,C,*] as N blocks of C planes of `inner` elements. */
static void bn_layout(const gr_tensor *x, int64_t *N, int64_t *C, int64_t *inner) {
  *N = x->shape[0];
  *C = x->shape[1];
  *inner = 1;
  for (int d = 2; d < x->ndim; d++) *inner *= x->shape[d];
}

/* The channel reductions below add in BN_LANES float lanes (independent
 * vector chains: double accumulators and one chain made them latency-bound)
 * over chunks of at most BN_CHUNK values, each chunk's lanes then added in
 * double. batch_norm_relu's mask has one 32-bit word per BN_LANES values of
 * a plane: bit j of word k of plane pl is y > 0 at element 32k + j. */
enum { BN_LANES = 32, BN_CHUNK = 2048 };

static int64_t bn_mask_words(int64_t inner) { return (inner + BN_LANES - 1) / BN_LANES; }

static double bn_lanes_total(const float *lane) {
  double t = 0;
  for (int j = 0; j < BN_LANES; j++) t += lane[j];
  return t;
}

#ifdef __AVX2__
/* Lanes 8q..8q+7 of mask word w as all-ones or zero floats. */
static inline __m256 bn_mask_lanes(uint32_t w, int q) {
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  __m256i b = _mm256_and_si256(_mm256_set1_epi32((int)(w >> (8 * q) & 0xFFu)), bit);
  return _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, bit));
}
#endif

/* dY at j of a block as batch norm sees it: masked by bit j of w (all ones
 * without a mask). */
static inline float bn_grad_at(const float *dy, uint32_t w, int j) { return w >> j & 1u ? dy[j] : 0.0f; }

/* One block of len <= BN_LANES values into the lanes sa, sb: g = dy masked
 * by w, also written (fresh) or added to dres. The full blocks take the
 * vector path, the same operations lane by lane (the same bits). */
static inline void bn_lane_block(const float *x, const float *dy, uint32_t w, float *dres, bool dres_fresh, int len,
                                 float mu, float *sa, float *sb) {
#ifdef __AVX2__
  if (len == BN_LANES) {
    const __m256 m = _mm256_set1_ps(mu);
    for (int q = 0; q < 4; q++) {
      __m256 g = _mm256_and_ps(_mm256_loadu_ps(dy + 8 * q), bn_mask_lanes(w, q));
      __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + 8 * q), m);
      _mm256_storeu_ps(sa + 8 * q, _mm256_add_ps(_mm256_loadu_ps(sa + 8 * q), g));
      _mm256_storeu_ps(sb + 8 * q, _mm256_add_ps(_mm256_loadu_ps(sb + 8 * q), _mm256_mul_ps(g, d)));
      if (dres) _mm256_storeu_ps(dres + 8 * q, dres_fresh ? g : _mm256_add_ps(_mm256_loadu_ps(dres + 8 * q), g));
    }
    return;
  }
#endif
  for (int j = 0; j < len; j++) {
    float g = bn_grad_at(dy, w, j);
    sa[j] += g;
    sb[j] += g * (x[j] - mu);
    if (dres) dres[j] = dres_fresh ? g : dres[j] + g;
  }
}

/* a += sum of g, b += sum of g*(x - mu) over n <= BN_CHUNK values (g and
 * dres as in bn_lane_block; mk: the chunk's mask words, or NULL), all in
 * the one pass. */
static void bn_chunk_sums(const float *x, const float *dy, const uint32_t *mk, float *dres, bool dres_fresh,
                          int64_t n, float mu, double *a, double *b) {
  float sa[BN_LANES] = {0}, sb[BN_LANES] = {0};
  for (int64_t i = 0; i < n; i += BN_LANES)
    bn_lane_block(x + i, dy + i, mk ? mk[i / BN_LANES] : ~0u, dres ? dres + i : NULL, dres_fresh,
                  n - i < BN_LANES ? (int)(n - i) : BN_LANES, mu, sa, sb);
  *a += bn_lanes_total(sa);
  *b += bn_lanes_total(sb);
}

/* Per plane: sum of dy and of dy*(x - mu) (dy masked and dres written as in
 * bn_lane_block), in memory order and parallel over planes, as
 * bn_plane_moments. */
static void bn_plane_sums(const float *x, const float *dy, const uint32_t *mask, float *dres, bool dres_fresh,
                          int64_t N, int64_t C, int64_t inner, const float *mean, double *sdy, double *sdyx) {
  int64_t mw = bn_mask_words(inner);
#pragma omp parallel for schedule(static) if (N * C * inner > GR_PAR_MIN)
  for (int64_t pl = 0; pl < N * C; pl++) {
    int64_t at = pl * inner;
    sdy[pl] = sdyx[pl] = 0;
    for (int64_t i0 = 0; i0 < inner; i0 += BN_CHUNK) {
      int64_t len = inner - i0 < BN_CHUNK ? inner - i0 : BN_CHUNK;
      bn_chunk_sums(x + at + i0, dy + at + i0, mask ? mask + pl * mw + i0 / BN_LANES : NULL,
                    dres ? dres + at + i0 : NULL, dres_fresh, len, mean[pl % C], &sdy[pl], &sdyx[pl]);
    }
  }
}

/* dx = dy*A + (x - mu)*B + D over one plane (B = D = 0 in eval mode), dy
 * masked by the plane's mask words mk (NULL: none); assigned when fresh,
 * else accumulated. */
static void bn_dx_plane(const float *xp, const float *gp, const uint32_t *mk, float *dp, int64_t inner, float mu,
                        float A, float B, float D, bool fresh) {
  int64_t i = 0;
#ifdef __AVX2__
  const __m256 va = _mm256_set1_ps(A), vb = _mm256_set1_ps(B), vd = _mm256_set1_ps(D), vm = _mm256_set1_ps(mu);
  for (; i + BN_LANES <= inner; i += BN_LANES) {
    uint32_t w = mk ? mk[i / BN_LANES] : ~0u;
    for (int q = 0; q < 4; q++) {
      int64_t at = i + 8 * q;
      __m256 g = _mm256_and_ps(_mm256_loadu_ps(gp + at), bn_mask_lanes(w, q));
      __m256 t = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(g, va), _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xp + at), vm), vb)), vd);
      _mm256_storeu_ps(dp + at, fresh ? t : _mm256_add_ps(_mm256_loadu_ps(dp + at), t));
    }
  }
#endif
  for (; i < inner; i++) {
    float g = bn_grad_at(gp + i / BN_LANES * BN_LANES, mk ? mk[i / BN_LANES] : ~0u, (int)(i % BN_LANES));
    float t = g * A + (xp[i] - mu) * B + D;
    dp[i] = fresh ? t : dp[i] + t;
  }
}

/* dx = g*is*(dy - mean(dy) - xhat*mean(dy*xhat)) in training mode, g*is*dy in
 * eval mode, written as dy*A + (x - mu)*B + D per channel so the loop is a
 * few vector FMAs; assigned when the grad is fresh, else accumulated. For
 * batch_norm_relu dy is masked by y > 0 first and is also the residual's
 * gradient. */
static void bn_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2], *res = n->in[3];
  const norm_saved *s = n->saved;
  int64_t N, C, inner;
  bn_layout(x, &N, &C, &inner);
  const float *dy = n->out->grad;
  GR_ASSERT(!s->relu || s->mask); /* recorded with grad mode on: the forward saved the mask */
  bool fresh = false, rfresh = false;
  float *dx = x->requires_grad ? gr_grad_buf_fresh(c, x, &fresh) : NULL;
  float *dres = res && res->requires_grad ? gr_grad_buf_fresh(c, res, &rfresh) : NULL;
  float *dg = gamma && gamma->requires_grad ? gr_grad_buf(c, gamma) : NULL;
  float *db = beta && beta->requires_grad ? gr_grad_buf(c, beta) : NULL;
  double *sdy = gr_scratch_uninit(c, (size_t)(N * C) * sizeof(double));
  double *sdyx = gr_scratch_uninit(c, (size_t)(N * C) * sizeof(double));
  float *coef = gr_scratch_uninit(c, (size_t)(3 * C) * sizeof(float)); /* A, B, D per channel */
  GR_ASSERT(sdy && sdyx && coef); /* step arena exhausted mid-backward (a silent return would lose the gradients) */
  bn_plane_sums(x->data, dy, s->mask, dres, rfresh, N, C, inner, s->mean, sdy, sdyx);
  double M = (double)(N * inner);
  for (int64_t ch = 0; ch < C; ch++) {
    float is = s->invstd[ch], g = gamma ? gamma->data[ch] : 1.0f;
    double ty = 0, tyx = 0;
    for (int64_t b = 0; b < N; b++) {
      ty += sdy[b * C + ch];
      tyx += sdyx[b * C + ch];
    }
    if (dg) dg[ch] += (float)(tyx * is);
    if (db) db[ch] += (float)ty;
    coef[3 * ch] = g * is;
    coef[3 * ch + 1] = s->batch_stats ? (float)(-(double)g * is * is * is * tyx / M) : 0.0f;
    coef[3 * ch + 2] = s->batch_stats ? (float)(-(double)g * is * ty / M) : 0.0f;
  }
  if (!dx) return;
#pragma omp parallel for schedule(static) if (x->numel > GR_PAR_MIN)
  for (int64_t pl = 0; pl < N * C; pl++) {
    const float *k = coef + 3 * (pl % C);
    int64_t at = pl * inner;
    bn_dx_plane(x->data + at, dy + at, s->mask ? s->mask + pl * bn_mask_words(inner) : NULL, dx + at, inner,
                s->mean[pl % C], k[0], k[1], k[2], fresh);
  }
}

static const gr_op_def OP_BATCHNORM = {"batch_norm", bn_backward};

static bool bn_check(const gr_tensor *x, const gr_tensor *const *per_ch, float momentum, float eps) {
  char sx[96], sp[96];
  if (x->ndim < 2) {
    gr_error(GR_ESHAPE, "batch_norm: want x[N,C,...], got x%s", gr_shape_str(x, sx, sizeof sx));
    return false;
  }
  for (int k = 0; k < 4; k++)
    if (per_ch[k] && (per_ch[k]->ndim != 1 || per_ch[k]->shape[0] != x->shape[1])) {
      gr_error(GR_ESHAPE, "batch_norm: per-channel tensor %d is %s, want [%lld] for x%s", k,
               gr_shape_str(per_ch[k], sp, sizeof sp), (long long)x->shape[1], gr_shape_str(x, sx, sizeof sx));
      return false;
    }
  if (!(eps > 0) || !(momentum >= 0 && momentum <= 1)) {
    gr_error(GR_EARG, "batch_norm: eps %g must be > 0 and momentum %g in [0,1]", eps, momentum);
    return false;
  }
  return true;
}

/* s1 += sum of x - shift, s2 += sum of (x - shift)^2 over n <= BN_CHUNK values. */
static inline void bn_lane_moments(const float *x, int len, float shift, float *a, float *b) {
  for (int j = 0; j < len; j++) {
    float d = x[j] - shift;
    a[j] += d;
    b[j] += d * d;
  }
}

static void bn_chunk_moments(const float *x, int64_t n, float shift, double *s1, double *s2) {
  float a[BN_LANES] = {0}, b[BN_LANES] = {0};
  int64_t i = 0;
  for (; i + BN_LANES <= n; i += BN_LANES) bn_lane_moments(x + i, BN_LANES, shift, a, b);
  if (i < n) bn_lane_moments(x + i, (int)(n - i), shift, a, b);
  *s1 += bn_lanes_total(a);
  *s2 += bn_lanes_total(b);
}

/* Shifted sums of every plane (x - x[0] of its channel, so the variance
 * does not cancel when |mean| >> std), in memory order (planes of the later
 * stages are 256 B to 1 KB: walking a channel's planes at a stride of C
 * planes left the prefetchers idle); parallel over planes, so the sums do
 * not depend on the thread count. */
static void bn_plane_moments(const float *x, int64_t N, int64_t C, int64_t inner, double *s1, double *s2) {
#pragma omp parallel for schedule(static) if (N * C * inner > GR_PAR_MIN)
  for (int64_t pl = 0; pl < N * C; pl++) {
    const float *xp = x + pl * inner;
    float shift = x[(pl % C) * inner];
    s1[pl] = s2[pl] = 0;
    for (int64_t i0 = 0; i0 < inner; i0 += BN_CHUNK)
      bn_chunk_moments(xp + i0, inner - i0 < BN_CHUNK ? inner - i0 : BN_CHUNK, shift, &s1[pl], &s2[pl]);
  }
}

/* Mean and biased variance of channel ch from its planes' shifted sums. */
static void bn_channel_moments(const float *x, const double *s1, const double *s2, int64_t N, int64_t C, int64_t inner,
                               int64_t ch, double *mean, double *var) {
  double t1 = 0, t2 = 0;
  for (int64_t n = 0; n < N; n++) {
    t1 += s1[n * C + ch];
    t2 += s2[n * C + ch];
  }
  double M = (double)(N * inner), m1 = t1 / M, v = t2 / M - m1 * m1;
  *mean = x[ch * inner] + m1;
  *var = v > 0 ? v : 0;
}

/* y = (x - m)*a + bb (+ r, then max(0, .) when relu) over one plane; with
 * relu and mk, y > 0 into the plane's mask words. */
static void bn_apply_plane(const float *xp, const float *rp, float *yp, uint32_t *mk, int64_t inner, float m, float a,
                           float bb, bool relu) {
  if (!relu) {
    for (int64_t i = 0; i < inner; i++) yp[i] = (xp[i] - m) * a + bb;
    return;
  }
  int64_t i = 0;
#ifdef __AVX2__
  const __m256 vm = _mm256_set1_ps(m), va = _mm256_set1_ps(a), vb = _mm256_set1_ps(bb), zero = _mm256_setzero_ps();
  for (; i + BN_LANES <= inner; i += BN_LANES) {
    uint32_t w = 0;
    for (int q = 0; q < 4; q++) {
      int64_t at = i + 8 * q;
      __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xp + at), vm), va), vb);
      if (rp) v = _mm256_add_ps(v, _mm256_loadu_ps(rp + at));
      __m256 pos = _mm256_cmp_ps(v, zero, _CMP_GT_OQ); /* as gr_relu: v > 0 ? v : 0 (NaN -> 0) */
      _mm256_storeu_ps(yp + at, _mm256_and_ps(v, pos));
      w |= (uint32_t)_mm256_movemask_ps(pos) << (8 * q);
    }
    if (mk) mk[i / BN_LANES] = w;
  }
#endif
  for (; i < inner; i++) {
    float v = (xp[i] - m) * a + bb;
    if (rp) v += rp[i];
    yp[i] = v > 0 ? v : 0.0f;
    if (mk && i % BN_LANES == 0) mk[i / BN_LANES] = 0;
    if (mk && v > 0) mk[i / BN_LANES] |= 1u << (i % BN_LANES);
  }
}

/* batch_norm (relu false, no residual) and batch_norm_relu. */
static gr_tensor *bn_op(gr_ctx *c, gr_tensor *x, gr_tensor *gamma, gr_tensor *beta, gr_tensor *running_mean,
                        gr_tensor *running_var, float momentum, float eps, gr_tensor *residual, bool relu) {
  gr_tensor *per_ch[4] = {gamma, beta, running_mean, running_var};
  if (!bn_check(x, (const gr_tensor *const *)per_ch, momentum, eps)) return NULL;
  int64_t N, C, inner;
  bn_layout(x, &N, &C, &inner);
  bool batch_stats = gr_ctx_training(c);
  if (!batch_stats && (!running_mean || !running_var)) {
    gr_error(GR_EARG, "batch_norm: eval mode needs running_mean and running_var");
    return NULL;
  }
  if (batch_stats && N * inner < 2) {
    gr_error(GR_ESHAPE, "batch_norm: training needs more than 1 value per channel, got x[%lld,%lld,...] with %lld",
             (long long)N, (long long)C, (long long)(N * inner));
    return NULL;
  }
  gr_tensor *y = gr_tensor_new_uninit(c, x->ndim, x->shape); /* every element written below */
  norm_saved s = {gr_scratch(c, (size_t)C * sizeof(float)), gr_scratch(c, (size_t)C * sizeof(float)), batch_stats,
                  relu, NULL};
  if (relu && gr_ctx_grad(c)) /* for the backward (every word written below) */
    s.mask = gr_scratch_uninit(c, (size_t)(N * C * bn_mask_words(inner)) * sizeof(uint32_t));
  if (!y || !s.mean || !s.invstd || (relu && gr_ctx_grad(c) && !s.mask)) return NULL;
  /* per plane: shifted sums, then per channel: scale a and shift bb */
  double *s1 = batch_stats ? gr_scratch_uninit(c, (size_t)(N * C) * sizeof(double)) : NULL;
  double *s2 = batch_stats ? gr_scratch_uninit(c, (size_t)(N * C) * sizeof(double)) : NULL;
  float *scale = gr_scratch_uninit(c, (size_t)C * sizeof(float)), *shift = gr_scratch_uninit(c, (size_t)C * sizeof(float));
  if ((batch_stats && (!s1 || !s2)) || !scale || !shift) return NULL;
  if (batch_stats) bn_plane_moments(x->data, N, C, inner, s1, s2);
  double M = (double)(N * inner);
  for (int64_t ch = 0; ch < C; ch++) {
    double mu, var;
    if (batch_stats) {
      bn_channel_moments(x->data, s1, s2, N, C, inner, ch, &mu, &var);
      if (running_mean) running_mean->data[ch] = (float)((1 - momentum) * running_mean->data[ch] + momentum * mu);
      if (running_var)
        running_var->data[ch] = (float)((1 - momentum) * running_var->data[ch] + momentum * var * M / (M - 1));
    } else {
      mu = running_mean->data[ch];
      var = running_var->data[ch];
    }
    float is = (float)(1.0 / sqrt(var + eps)), g = gamma ? gamma->data[ch] : 1.0f;
    s.mean[ch] = (float)mu;
    s.invstd[ch] = is;
    scale[ch] = is * g;
    shift[ch] = beta ? beta->data[ch] : 0.0f;
  }
#pragma omp parallel for schedule(static) if (x->numel > GR_PAR_MIN)
  for (int64_t pl = 0; pl < N * C; pl++) {
    int64_t ch = pl % C;
    bn_apply_plane(x->data + pl * inner, residual ? residual->data + pl * inner : NULL, y->data + pl * inner,
                   s.mask ? s.mask + pl * bn_mask_words(inner) : NULL, inner, s.mean[ch], scale[ch], shift[ch], relu);
  }
  gr_node *n = gr_tape_record(c, &OP_BATCHNORM, y, 4, (gr_tensor *[]){x, gamma, beta, residual});
  if (n) {
    n->saved = gr_scratch(c, sizeof s);
    if (!n->saved) return NULL;
    memcpy(n->saved, &s, sizeof s);
  }
  return y;
}

gr_tensor *gr_batch_norm(gr_ctx *c, gr_tensor *x, gr_tensor *gamma, gr_tensor *beta, gr_tensor *running_mean,
                         gr_tensor *running_var, float momentum, float eps) {
  GR_NEED("batch_norm", c);
  GR_NEED("batch_norm", x);
  return bn_op(c, x, gamma, beta, running_mean, running_var, momentum, eps, NULL, false);
}

gr_tensor *gr_batch_norm_relu(gr_ctx *c, gr_tensor *x, gr_tensor *gamma, gr_tensor *beta, gr_tensor *running_mean,
                              gr_tensor *running_var, float momentum, float eps, gr_tensor *residual) {
  GR_NEED("batch_norm_relu", c);
  GR_NEED("batch_norm_relu", x);
  char sx[96], sr[96];
  if (residual && !gr_same_shape(x, residual)) {
    gr_error(GR_ESHAPE, "batch_norm_relu: residual%s must have the shape of x%s", gr_shape_str(residual, sr, sizeof sr),
             gr_shape_str(x, sx, sizeof sx));
    return NULL;
  }
  return bn_op(c, x, gamma, beta, running_mean, running_var, momentum, eps, residual, true);
}

/* ---- layer norm -------------------------------------------------------- */
/* t's values, or (t NULL) D copies of fill in step scratch: gamma as ones
 * and beta as zeros, so the row loops below have no per-element branch and
 * vectorize. NULL when the scratch is exhausted. */
static const float *ln_affine(gr_ctx *c, const gr_tensor *t, int64_t D, float fill) {
  if (t) return t->data;
  float *v = gr_scratch_uninit(c, (size_t)(D ? D : 1) * sizeof(float));
  for (int64_t i = 0; v && i < D; i++) v[i] = fill;
  return v;
}

/* One pass per row for sum(dy*g) and sum(dy*g*xhat), one for
 * dx = is*(dy*g) - is*mean(dy*g) - xhat*is*mean(dy*g*xhat) (assigned when
 * the grad is fresh); dgamma/dbeta accumulate row by row. */
static void ln_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
  const norm_saved *s = n->saved;
  int64_t D = x->shape[x->ndim - 1], rows = D ? x->numel / D : 0;
  const float *dy = n->out->grad, *g = ln_affine(c, gamma, D, 1.0f);
  bool fresh = false;
  float *dx = x->requires_grad ? gr_grad_buf_fresh(c, x, &fresh) : NULL;
  float *dg = gamma && gamma->requires_grad ? gr_grad_buf(c, gamma) : NULL;
  float *db = beta && beta->requires_grad ? gr_grad_buf(c, beta) : NULL;
  GR_ASSERT(g != NULL); /* step arena exhausted mid-backward */
  for (int64_t r = 0; r < rows; r++) {
    const float *xp = x->data + r * D, *gp = dy + r * D;
    float mu = s->mean[r], is = s->invstd[r];
    if (dg)
#pragma omp simd
      for (int64_t i = 0; i < D; i++) dg[i] += gp[i] * ((xp[i] - mu) * is);
    if (db)
#pragma omp simd
      for (int64_t i = 0; i < D; i++) db[i] += gp[i];
    if (!dx) continue;
    double sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
    for (int64_t i = 0; i < D; i++) {
      float gi = gp[i] * g[i];
      sg += gi;
      sgx += (double)(gi * ((xp[i] - mu) * is));
    }
    float a = (float)(is * sg / (double)D), b = (float)(is * sgx / (double)D);
    float *dp = dx + r * D;
    if (fresh)
      for (int64_t i = 0; i < D; i++) dp[i] = is * (gp[i] * g[i]) - a - ((xp[i] - mu) * is) * b;
    else
      for (int64_t i = 0; i < D; i++) dp[i] += is * (gp[i] * g[i]) - a - ((xp[i] - mu) * is) * b;
  }
}

static const gr_op_def OP_LAYERNORM = {"layer_norm", ln_backward};

gr_tensor *gr_layer_norm(gr_ctx *c, gr_tensor *x, gr_tensor *gamma, gr_tensor *beta, float eps) {
  GR_NEED("layer_norm", c);
  GR_NEED("layer_norm", x);
  char sx[96], sp[96];
  if (x->ndim < 1 || x->shape[x->ndim - 1] == 0) {
    gr_error(GR_ESHAPE, "layer_norm: want x[...,D] with D >= 1, got x%s", gr_shape_str(x, sx, sizeof sx));
    return NULL;
  }
  int64_t D = x->shape[x->ndim - 1], rows = x->numel / D;
  const gr_tensor *aff[2] = {gamma, beta};
  for (int k = 0; k < 2; k++)
    if (aff[k] && (aff[k]->ndim != 1 || aff[k]->shape[0] != D)) {
      gr_error(GR_ESHAPE, "layer_norm: %s is %s, want [%lld]", k ? "beta" : "gamma", gr_shape_str(aff[k], sp, sizeof sp),
               (long long)D);
      return NULL;
    }
  if (!(eps > 0)) {
    gr_error(GR_EARG, "layer_norm: eps %g must be > 0", eps);
    return NULL;
  }
  gr_tensor *y = gr_tensor_new_uninit(c, x->ndim, x->shape); /* every element written below */
  norm_saved s = {gr_scratch(c, (size_t)(rows ? rows : 1) * sizeof(float)),
                  gr_scratch(c, (size_t)(rows ? rows : 1) * sizeof(float)), false, false, NULL};
  const float *g = ln_affine(c, gamma, D, 1.0f), *b = ln_affine(c, beta, D, 0.0f);
  if (!y || !s.mean || !s.invstd || !g || !b) return NULL;
#pragma omp parallel for schedule(static) if (x->numel > GR_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *xp = x->data + r * D;
    float *yp = y->data + r * D;
    double sum = 0, sq = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < D; i++) sum += xp[i];
    double mu = sum / D;
#pragma omp simd reduction(+ : sq)
    for (int64_t i = 0; i < D; i++) sq += (xp[i] - mu) * (xp[i] - mu);
    float is = (float)(1.0 / sqrt(sq / D + eps)), m = (float)mu;
    s.mean[r] = m;
    s.invstd[r] = is;
    for (int64_t i = 0; i < D; i++) yp[i] = (xp[i] - m) * is * g[i] + b[i];
  }
  gr_node *n = gr_tape_record(c, &OP_LAYERNORM, y, 3, (gr_tensor *[]){x, gamma, beta});
  if (n) {
    n->saved = gr_scratch(c, sizeof s);
    if (!n->saved) return NULL;
    memcpy(n->saved, &s, sizeof s);
  }
  return y;
}
