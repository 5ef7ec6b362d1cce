/* transfer/merge/task_arithmetic.c — mergekit's generalized task arithmetic
 * (merge_methods/generalized_task_arithmetic.py), one kernel for
 * task_arithmetic (Ilharco et al. 2023, θ = θ0 + λ Σ w_i τ_i), ties, dare_ties,
 * dare_linear, breadcrumbs(_ties) and della(_linear): sparsify each τ_i
 * (sparsify.c), weight it, optionally elect a sign per entry on the weighted
 * deltas and keep the agreeing ones (TIES' disjoint merge), divide by the
 * matching weight sum when normalizing, add λ·mixed to the base.
 * The arithmetic is float32 in mergekit's order so results match it to
 * rounding; the elementwise pass runs in OpenMP chunks. */
#include <math.h>
#include <string.h>

#include "graft/tensor.h"
#include "transfer/merge/merge_internal.h"

#define GTA_MAX_MODELS 64

typedef struct gta_plan {
  int n;
  const float *models[GTA_MAX_MODELS];
  const uint8_t *mask[GTA_MAX_MODELS];
  float scale[GTA_MAX_MODELS], weight[GTA_MAX_MODELS];
  gr_consensus consensus;
  bool normalize, peft;
  float lambda;
} gta_plan;

#define GTA_BLOCK 256

static inline float sign_of(float x) { return (float)((x > 0) - (x < 0)); }

/* Σ over agreeing entries, mergekit's way: the sign is elected on the
 * weighted deltas and the divisor is Σ w_i over the agreeing models. PEFT's
 * way (merge_utils.ties/dare_ties): elected on the unweighted deltas, the
 * weighted sum divided by the number of agreeing models (at least 1). */
static void gta_consensus(const gta_plan *p, float delta[][GTA_BLOCK], int len, float *mixed, float *div, float *elect) {
  bool by_sum = p->consensus == GR_CONSENSUS_SUM;
  for (int i = 0; i < p->n; i++) {
    float w = p->peft ? 1.0f : p->weight[i];
    for (int t = 0; t < len; t++) elect[t] += by_sum ? delta[i][t] * w : sign_of(delta[i][t] * w);
  }
  for (int t = 0; t < len; t++) elect[t] = elect[t] >= 0 ? 1.0f : -1.0f;
  for (int i = 0; i < p->n; i++) {
    float w = p->weight[i], vote_w = p->peft ? 1.0f : w, count = p->peft ? 1.0f : w;
    for (int t = 0; t < len; t++) {
      bool agree = sign_of(delta[i][t] * vote_w) == elect[t];
      mixed[t] += agree ? delta[i][t] * w : 0.0f;
      div[t] += agree ? count : 0.0f;
    }
  }
  for (int t = 0; t < len; t++) div[t] = div[t] == 0 ? 1.0f : div[t];
}

/* θ0 + λ·mixed for entries [j0, j0+len) (see graft/merge.h). Loops run over
 * the block so they vectorize; per entry the models are summed in index
 * order, as mergekit's sum over the stacked deltas. delta holds δ_i before
 * weighting; (δ_i·w_i) is formed where used, the same rounding as mergekit's
 * weighted_deltas. */
static void gta_block(const gta_plan *p, const float *base, int64_t j0, int len, float *out) {
  float delta[GTA_MAX_MODELS][GTA_BLOCK], mixed[GTA_BLOCK], div[GTA_BLOCK], elect[GTA_BLOCK];
  const float *b = base + j0;
  for (int i = 0; i < p->n; i++) {
    const float *m = p->models[i] + j0;
    float s = p->scale[i];
    if (p->mask[i]) {
      const uint8_t *k = p->mask[i] + j0;
      for (int t = 0; t < len; t++) delta[i][t] = k[t] ? (m[t] - b[t]) * s : 0.0f;
    } else
      for (int t = 0; t < len; t++) delta[i][t] = (m[t] - b[t]) * s;
  }
  for (int t = 0; t < len; t++) mixed[t] = div[t] = elect[t] = 0;
  if (p->consensus != GR_CONSENSUS_NONE) gta_consensus(p, delta, len, mixed, div, elect);
  else {
    for (int i = 0; i < p->n; i++)
      for (int t = 0; t < len; t++) {
        mixed[t] += delta[i][t] * p->weight[i];
        div[t] += p->weight[i];
      }
    for (int t = 0; t < len; t++) div[t] = fabsf(div[t]) < 1e-8f ? 1.0f : div[t];
  }
  bool normalize = p->normalize || (p->peft && p->consensus != GR_CONSENSUS_NONE);
  for (int t = 0; t < len; t++) {
    float x = normalize ? mixed[t] / div[t] : mixed[t];
    out[j0 + t] = b[t] + (p->lambda != 1.0f ? x * p->lambda : x);
  }
}

static gr_status gta_sparsify_all(const gr_merge_args *a, gta_plan *p, uint8_t *masks, float *scratch,
                                  gr_merge_report *rep) {
  int64_t n = a->numel;
  for (int i = 0; i < a->n_models; i++) {
    merge_sparse sp;
    gr_status st = merge_sparsify(a, i, masks ? masks + (size_t)i * (size_t)n : NULL, scratch, &sp);
    if (st) return st;
    p->mask[i] = sp.mask;
    p->scale[i] = sp.scale;
    if (sp.quirk_zeroed && rep) rep->quirk_zeroed++;
    if (a->masks_out && a->masks_out[i]) {
      if (sp.mask) memcpy(a->masks_out[i], sp.mask, (size_t)n);
      else memset(a->masks_out[i], 1, (size_t)n);
    }
    if (rep && i < 16) {
      int64_t kept = n;
      if (sp.mask) {
        kept = 0;
        for (int64_t j = 0; j < n; j++) kept += sp.mask[j];
      }
      rep->kept_fraction[i] = n ? (double)kept / (double)n : 1.0;
    }
  }
  return GR_OK;
}

gr_status merge_task_arithmetic(const gr_merge_args *a, float *out, gr_merge_report *rep) {
  const gr_merge_method_info *info = gr_merge_info(a->method);
  if (a->n_models > GTA_MAX_MODELS)
    return gr_error(GR_EARG, "%s: %d models, at most %d supported", info->name, a->n_models, GTA_MAX_MODELS);
  gta_plan p = {.n = a->n_models, .consensus = info->consensus, .normalize = a->normalize, .peft = a->peft_semantics,
                .lambda = (float)a->lambda};
  int64_t n = a->numel;
  uint8_t *masks = NULL;
  float *scratch = NULL;
  if (info->sparsify != GR_SPARSIFY_NONE && n > 0) {
    masks = gr_malloc((size_t)a->n_models * (size_t)n);
    scratch = gr_malloc(sizeof(float) * (size_t)n);
    if (!masks || !scratch) {
      gr_free(masks);
      gr_free(scratch);
      return gr_error(GR_ENOMEM, "%s: no memory for the masks of tensor '%s' (%lld entries)", info->name, a->name,
                      (long long)n);
    }
  }
  for (int i = 0; i < a->n_models; i++) {
    p.models[i] = a->models[i];
    p.weight[i] = (float)a->params[i].weight;
  }
  gr_status st = gta_sparsify_all(a, &p, masks, scratch, rep);
  gr_free(scratch);
  if (st == GR_OK) {
#pragma omp parallel for schedule(static, MERGE_CHUNK / GTA_BLOCK) if (n > MERGE_CHUNK)
    for (int64_t j0 = 0; j0 < n; j0 += GTA_BLOCK) gta_block(&p, a->base, j0, (int)(n - j0 < GTA_BLOCK ? n - j0 : GTA_BLOCK), out);
  }
  gr_free(masks);
  return st;
}
