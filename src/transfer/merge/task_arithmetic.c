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
  bool normalize;
  float lambda;
} gta_plan;

static inline int sign_of(float x) { return (x > 0) - (x < 0); }

/* θ0[j] + λ·mixed for one entry (see graft/merge.h). */
static inline float gta_entry(const gta_plan *p, const float *base, int64_t j) {
  float b = base[j], delta[GTA_MAX_MODELS];
  for (int i = 0; i < p->n; i++) {
    float tau = p->models[i][j] - b;
    float d = p->mask[i] && !p->mask[i][j] ? 0.0f : tau * p->scale[i];
    delta[i] = d * p->weight[i];
  }
  float mixed = 0, div = 0;
  if (p->consensus != GR_CONSENSUS_NONE) {
    float vote = 0;
    for (int i = 0; i < p->n; i++) vote += p->consensus == GR_CONSENSUS_SUM ? delta[i] : (float)sign_of(delta[i]);
    int elect = vote >= 0 ? 1 : -1;
    for (int i = 0; i < p->n; i++)
      if (sign_of(delta[i]) == elect) {
        mixed += delta[i];
        div += p->weight[i];
      }
    if (div == 0) div = 1;
  } else {
    for (int i = 0; i < p->n; i++) {
      mixed += delta[i];
      div += p->weight[i];
    }
    if (fabsf(div) < 1e-8f) div = 1;
  }
  if (p->normalize) mixed /= div;
  if (p->lambda != 1.0f) mixed *= p->lambda;
  return b + mixed;
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
  gta_plan p = {.n = a->n_models, .consensus = info->consensus, .normalize = a->normalize,
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
#pragma omp parallel for schedule(static, MERGE_CHUNK) if (n > MERGE_CHUNK)
    for (int64_t j = 0; j < n; j++) out[j] = gta_entry(&p, a->base, j);
  }
  gr_free(masks);
  return st;
}
