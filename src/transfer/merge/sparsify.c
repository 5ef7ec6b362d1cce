/* transfer/merge/sparsify.c — the sparsifiers of mergekit's generalized task
 * arithmetic (mergekit/sparsify.py), applied to τ = θ_i − θ0 of one tensor:
 *  - magnitude (TIES, Yadav et al. 2023): keep the k = int(d·numel) largest |τ|
 *    (k = 0 is an error, as mergekit asserts);
 *  - random (DARE, Yu et al. 2023): keep each entry with probability d;
 *  - magnitude_outliers (Model Breadcrumbs, Davari & Belilovsky 2023): drop the
 *    n_top = int(γ·numel) largest and the smallest, keeping int(d·numel);
 *    n_top == 0 zeroes the tensor like mergekit's empty slice [n_bot:-0]
 *    unless breadcrumbs_keep_top is set;
 *  - della_magprune (DELLA, Deep et al. 2024): keep with probability
 *    p = (d−ε) + 2ε·rank/(L−1), rank of |τ| within each row along dim 1.
 * Then the rescale: ‖τ‖₁/‖mask⊙τ‖₁ (mergekit) or 1/d (DARE paper, PEFT).
 * The output is a 0/1 mask and a scale; the kernels apply them on the fly. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "graft/rng.h"
#include "graft/tensor.h"
#include "transfer/merge/merge_internal.h"

static inline float abs_delta(const float *m, const float *b, int64_t j) {
  return fabsf(m[j] - (b ? b[j] : 0.0f));
}

/* Ranks of |τ| are found by radix selection on the bits of |τ| (for
 * non-negative floats the bit patterns order like the values): one parallel
 * pass histograms the high 16 bits, a second the low 16 bits inside the
 * bucket holding the wanted rank. No copy of the tensor is made. */
#define RADIX_BINS 65536

static inline uint32_t abs_bits(const float *m, const float *b, int64_t j) {
  float a = abs_delta(m, b, j);
  uint32_t u;
  memcpy(&u, &a, sizeof u);
  return u;
}

/* Where rank k falls in a histogram: the bin, and the count below it. */
static int rank_bin(const int64_t *hist, int64_t k, int64_t *below) {
  int64_t c = 0;
  for (int i = 0; i < RADIX_BINS; i++) {
    if (k < c + hist[i]) {
      *below = c;
      return i;
    }
    c += hist[i];
  }
  *below = c;
  return RADIX_BINS - 1;
}

/* Histograms of |τ| bits: high halves (prefix < 0), or the low halves of the
 * entries whose high half is prefix[0] / prefix[1] into hist / hist + BINS. */
static void radix_hist(const float *m, const float *b, int64_t n, const int *prefix, int64_t *hist, int64_t *local,
                       int n_threads) {
  int n_hist = prefix && prefix[1] != prefix[0] ? 2 : 1;
  memset(local, 0, sizeof(int64_t) * RADIX_BINS * 2 * (size_t)n_threads);
#pragma omp parallel num_threads(n_threads) if (n > MERGE_CHUNK)
  {
    int64_t *h = local + (size_t)omp_get_thread_num() * RADIX_BINS * 2;
#pragma omp for schedule(static)
    for (int64_t j = 0; j < n; j++) {
      uint32_t u = abs_bits(m, b, j);
      if (!prefix) h[u >> 16]++;
      else if ((int)(u >> 16) == prefix[0]) h[u & 0xffff]++;
      else if ((int)(u >> 16) == prefix[1]) h[RADIX_BINS + (u & 0xffff)]++;
    }
  }
  memset(hist, 0, sizeof(int64_t) * RADIX_BINS * 2);
  for (int t = 0; t < n_threads; t++)
    for (int i = 0; i < RADIX_BINS * n_hist; i++) hist[i] += local[(size_t)t * RADIX_BINS * 2 + i];
}

typedef struct rank_value {
  float v;
  int64_t below, equal; /* entries < v and == v */
} rank_value;

static float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* The values of ascending ranks r[0] and r[1] of |m − b|; GR_ENUMERIC on NaN. */
static gr_status select_two_ranks(const float *m, const float *b, int64_t n, const int64_t *r, rank_value *out,
                                  const char *name) {
  int n_threads = omp_get_max_threads();
  int64_t *hist = gr_malloc(sizeof(int64_t) * RADIX_BINS * 2);
  int64_t *local = gr_malloc(sizeof(int64_t) * RADIX_BINS * 2 * (size_t)n_threads);
  if (!hist || !local) {
    gr_free(hist);
    gr_free(local);
    return gr_error(GR_ENOMEM, "merge: no memory to rank tensor '%s'", name);
  }
  radix_hist(m, b, n, NULL, hist, local, n_threads);
  int64_t nan = 0;
  for (int i = 0x7f81; i < 0x8000; i++) nan += hist[i];
  int prefix[2];
  int64_t below_hi[2], below_lo[2];
  for (int q = 0; q < 2; q++) prefix[q] = rank_bin(hist, r[q], &below_hi[q]);
  if (!nan) radix_hist(m, b, n, prefix, hist, local, n_threads);
  for (int q = 0; q < 2 && !nan; q++) {
    const int64_t *h = hist + (prefix[q] == prefix[0] ? 0 : RADIX_BINS);
    int low = rank_bin(h, r[q] - below_hi[q], &below_lo[q]);
    out[q].v = bits_float(((uint32_t)prefix[q] << 16) | (uint32_t)low);
    out[q].below = below_hi[q] + below_lo[q];
    out[q].equal = h[low];
  }
  gr_free(hist);
  gr_free(local);
  if (nan) return gr_error(GR_ENUMERIC, "merge: tensor '%s': %lld NaN entries in a task vector", name, (long long)nan);
  return GR_OK;
}

/* Ties at a boundary value: ranks by index order, one sequential pass. */
static void tie_break_mask(const float *m, const float *b, int64_t n, int64_t lo, int64_t hi, const rank_value *v,
                           uint8_t *mask) {
  int64_t seen_lo = 0, seen_hi = 0;
  for (int64_t j = 0; j < n; j++) {
    float a = abs_delta(m, b, j);
    int64_t r;
    if (a == v[0].v) {
      r = v[0].below + seen_lo++;
      mask[j] = r >= lo && r < hi;
    } else if (a == v[1].v) {
      r = v[1].below + seen_hi++;
      mask[j] = r < hi;
    }
  }
}

/* Entries of |m − b| whose ascending rank (ties broken by index) is in [lo, hi). */
static gr_status rank_window_mask(const float *m, const float *b, int64_t n, int64_t lo, int64_t hi, uint8_t *mask,
                                  const char *name) {
  if (lo < 0) lo = 0;
  if (hi > n) hi = n;
  if (lo >= hi) {
    memset(mask, 0, (size_t)n);
    return GR_OK;
  }
  rank_value v[2];
  gr_status st = select_two_ranks(m, b, n, (const int64_t[]){lo, hi - 1}, v, name);
  if (st) return st;
#pragma omp parallel for schedule(static) if (n > MERGE_CHUNK)
  for (int64_t j = 0; j < n; j++) {
    float a = abs_delta(m, b, j);
    mask[j] = a >= v[0].v && a <= v[1].v;
  }
  /* With a single entry at each boundary value its rank is exactly lo (hi−1)
   * and the pass above is already right; otherwise rank the ties by index. */
  if (v[0].equal > 1 || v[1].equal > 1) tie_break_mask(m, b, n, lo, hi, v, mask);
  return GR_OK;
}

static void random_mask(const gr_merge_args *a, int i, double p, uint8_t *mask) {
  gr_rng r = gr_rng_stream(a->seed, gr_merge_stream_id(a->name, i));
  for (int64_t j = 0; j < a->numel; j++) mask[j] = gr_rng_bernoulli(&r, (float)p);
}

typedef struct rank_item {
  float v;
  int64_t pos;
} rank_item;

static int rank_item_cmp(const void *x, const void *y) {
  const rank_item *p = x, *q = y;
  if (p->v != q->v) return p->v < q->v ? -1 : 1;
  return p->pos < q->pos ? -1 : p->pos > q->pos;
}

/* Della keep probabilities into prob[numel]: rank of |τ| along dim 1 (the
 * whole tensor is one row when ndim < 2). A row of length 1 gets rank 0,
 * where mergekit's 0/0 would give NaN. */
static gr_status della_probabilities(const gr_merge_args *a, int i, double d, double eps, float *prob) {
  int64_t outer = 1, len = a->numel, inner = 1;
  if (a->ndim >= 2) {
    outer = a->shape[0];
    len = a->shape[1];
    inner = len ? a->numel / (outer * len) : 0;
  }
  if (len == 0 || outer == 0) return GR_OK;
  rank_item *items = gr_malloc(sizeof(rank_item) * (size_t)len);
  if (!items) return gr_error(GR_ENOMEM, "della: no memory to rank tensor '%s'", a->name);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      int64_t base = o * len * inner + in;
      for (int64_t l = 0; l < len; l++) {
        items[l].pos = base + l * inner;
        items[l].v = abs_delta(a->models[i], a->base, items[l].pos);
      }
      qsort(items, (size_t)len, sizeof *items, rank_item_cmp);
      for (int64_t l = 0; l < len; l++) {
        double rank_norm = len > 1 ? (double)l / (double)(len - 1) : 0.0;
        prob[items[l].pos] = (float)((d - eps) + 2.0 * eps * rank_norm);
      }
    }
  gr_free(items);
  return GR_OK;
}

static gr_status della_mask(const gr_merge_args *a, int i, double d, double eps, uint8_t *mask,
                            float *prob) {
  if (!(d - eps > 0) || !(d + eps < 1))
    return gr_error(GR_EARG, "%s: tensor '%s' model %d: epsilon %g must keep density %g +/- epsilon in (0, 1)",
                    gr_merge_info(a->method)->name, a->name, i, eps, d);
  gr_status st = della_probabilities(a, i, d, eps, prob);
  if (st) return st;
  gr_rng r = gr_rng_stream(a->seed, gr_merge_stream_id(a->name, i));
  for (int64_t j = 0; j < a->numel; j++) mask[j] = gr_rng_bernoulli(&r, prob[j]);
  return GR_OK;
}

/* mergekit's rescaled_masked_tensor with the L1 norm. */
static float l1_rescale(const float *m, const float *b, const uint8_t *mask, int64_t n) {
  double before = 0, after = 0;
#pragma omp parallel for schedule(static) reduction(+ : before, after) if (n > MERGE_CHUNK)
  for (int64_t j = 0; j < n; j++) {
    double v = abs_delta(m, b, j);
    before += v;
    if (mask[j]) after += v;
  }
  if (before < 1e-7 || after < 1e-7) return 1.0f;
  return (float)(before / after);
}

static gr_status build_mask(const gr_merge_args *a, int i, uint8_t *mask, float *scratch, merge_sparse *out) {
  const gr_merge_model_params *p = &a->params[i];
  const gr_merge_method_info *info = gr_merge_info(a->method);
  const float *m = a->models[i], *b = a->base;
  int64_t n = a->numel;
  double d = p->density;
  bool injected = a->masks_in && a->masks_in[i];
  if (injected && (info->sparsify == GR_SPARSIFY_RANDOM || info->sparsify == GR_SPARSIFY_DELLA)) {
    for (int64_t j = 0; j < n; j++) mask[j] = a->masks_in[i][j] != 0;
    return GR_OK;
  }
  switch (info->sparsify) {
    case GR_SPARSIFY_MAGNITUDE: {
      int64_t k = (int64_t)(d * (double)n);
      if (k <= 0 && n > 0 && a->peft_semantics) { /* PEFT's topk(k=0) keeps nothing */
        memset(mask, 0, (size_t)n);
        return GR_OK;
      }
      if (k <= 0 && n > 0)
        return gr_error(GR_EARG, "%s: tensor '%s' model %d: density %g keeps int(%g*%lld) = 0 entries",
                        info->name, a->name, i, d, d, (long long)n);
      return rank_window_mask(m, b, n, n - k, n, mask, a->name);
    }
    case GR_SPARSIFY_MAGNITUDE_OUTLIERS: {
      int64_t target = (int64_t)(d * (double)n), n_top = (int64_t)(p->gamma * (double)n);
      int64_t n_bot = n - target - n_top;
      if (n_bot < 0) {
        n_top += n_bot;
        n_bot = 0;
      }
      if (n_top == 0 && !a->breadcrumbs_keep_top) {
        memset(mask, 0, (size_t)n);
        out->quirk_zeroed = true;
        return GR_OK;
      }
      return rank_window_mask(m, b, n, n_bot, n - n_top, mask, a->name);
    }
    case GR_SPARSIFY_RANDOM: random_mask(a, i, d, mask); return GR_OK;
    case GR_SPARSIFY_DELLA:
      if (d <= 0) {
        memset(mask, 0, (size_t)n);
        return GR_OK;
      }
      return della_mask(a, i, d, p->epsilon, mask, scratch);
    case GR_SPARSIFY_NONE: break;
  }
  return GR_OK;
}

gr_status merge_sparsify(const gr_merge_args *a, int i, uint8_t *mask_buf, float *scratch, merge_sparse *out) {
  const gr_merge_method_info *info = gr_merge_info(a->method);
  out->mask = NULL;
  out->scale = 1.0f;
  out->quirk_zeroed = false;
  double d = a->params[i].density;
  if (info->sparsify == GR_SPARSIFY_NONE || d >= 1) return GR_OK;
  gr_status st = build_mask(a, i, mask_buf, scratch, out);
  if (st) return st;
  out->mask = mask_buf;
  if (a->rescale) {
    if (a->rescale_mode == GR_RESCALE_INV_DENSITY) out->scale = d > 0 ? (float)(1.0 / d) : 1.0f;
    else out->scale = l1_rescale(a->models[i], a->base, mask_buf, a->numel);
  }
  return GR_OK;
}
