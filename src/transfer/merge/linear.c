/* transfer/merge/linear.c — linear merge / model soup (Wortsman et al. 2022;
 * mergekit merge_methods/linear.py): θ = Σ w_i θ_i, divided by Σ w_i when
 * normalize is on (the default). The uniform soup is w_i = 1. The base model
 * takes no part unless it is listed among the models. A zero weight sum with
 * normalize is an error here (mergekit divides and writes NaN/Inf). */
#include <math.h>

#include "graft/tensor.h"
#include "transfer/merge/merge_internal.h"

gr_status merge_linear(const gr_merge_args *a, float *out) {
  float wsum = 0;
  for (int i = 0; i < a->n_models; i++) wsum += (float)a->params[i].weight;
  if (a->normalize && wsum == 0)
    return gr_error(GR_EARG, "linear: tensor '%s': the weights sum to 0 and normalize is on", a->name);
  int m = a->n_models;
  int64_t n = a->numel;
#pragma omp parallel for schedule(static, MERGE_CHUNK) if (n > MERGE_CHUNK)
  for (int64_t j = 0; j < n; j++) {
    float acc = 0;
    for (int i = 0; i < m; i++) acc += (float)a->params[i].weight * a->models[i][j];
    out[j] = a->normalize ? acc / wsum : acc;
  }
  return GR_OK;
}
