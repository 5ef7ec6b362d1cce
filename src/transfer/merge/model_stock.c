/* transfer/merge/model_stock.c — Model Stock (Jang et al. 2024; mergekit
 * merge_methods/model_stock.py): with offsets o_i = θ_i − θ0 (N >= 2 models),
 * cosθ = mean over pairs i<j of <o_i,o_j> / max(‖o_i‖‖o_j‖, 1e-6), clamped to
 * [−1, 1]; t = N cosθ / (1 + (N−1) cosθ); θ = t·mean(θ_i) + (1−t)·θ0.
 * The whole tensor is one vector, or with filter_wise each row of the last
 * dimension (a 1-D tensor is one row). Sums are taken in double. */
#include <math.h>

#include "graft/tensor.h"
#include "transfer/merge/merge_internal.h"

#define STOCK_MAX_MODELS 16

/* Dot products of all offset pairs (and each with itself) over one row. */
static void offset_grams(const gr_merge_args *a, int64_t start, int64_t len, double *gram) {
  int m = a->n_models;
  double g[STOCK_MAX_MODELS * STOCK_MAX_MODELS] = {0};
  int gn = m * m;
#pragma omp parallel for schedule(static, MERGE_CHUNK) reduction(+ : g[:gn]) if (len > MERGE_CHUNK)
  for (int64_t j = start; j < start + len; j++) {
    double o[STOCK_MAX_MODELS];
    for (int i = 0; i < m; i++) o[i] = (double)a->models[i][j] - (double)a->base[j];
    for (int i = 0; i < m; i++)
      for (int k = i; k < m; k++) g[i * m + k] += o[i] * o[k];
  }
  for (int i = 0; i < gn; i++) gram[i] = g[i];
}

static void stock_row(const gr_merge_args *a, int64_t start, int64_t len, float *out) {
  int m = a->n_models;
  double gram[STOCK_MAX_MODELS * STOCK_MAX_MODELS];
  offset_grams(a, start, len, gram);
  double cos_sum = 0;
  int pairs = 0;
  for (int i = 0; i < m; i++)
    for (int k = i + 1; k < m; k++) {
      double norm_product = sqrt(gram[i * m + i]) * sqrt(gram[k * m + k]);
      double c = gram[i * m + k] / (norm_product > 1e-6 ? norm_product : 1e-6);
      cos_sum += c < -1 ? -1 : c > 1 ? 1 : c;
      pairs++;
    }
  double cos_theta = cos_sum / pairs;
  float t = (float)(m * cos_theta / (1.0 + (m - 1) * cos_theta)), u = 1.0f - t;
#pragma omp parallel for schedule(static, MERGE_CHUNK) if (len > MERGE_CHUNK)
  for (int64_t j = start; j < start + len; j++) {
    float avg = 0;
    for (int i = 0; i < m; i++) avg += a->models[i][j];
    out[j] = t * (avg / (float)m) + u * a->base[j];
  }
}

gr_status merge_model_stock(const gr_merge_args *a, float *out) {
  if (a->n_models > STOCK_MAX_MODELS)
    return gr_error(GR_EARG, "model_stock: %d models, at most %d supported", a->n_models, STOCK_MAX_MODELS);
  int64_t n = a->numel, len = n;
  if (a->filter_wise && a->ndim >= 1) len = a->shape[a->ndim - 1];
  if (len <= 0 || n == 0) return GR_OK;
  for (int64_t start = 0; start < n; start += len) stock_row(a, start, len, out);
  return GR_OK;
}
