/* transfer/merge/merge_method.c — the merge method registry (names, defaults
 * and family, as mergekit's merge_methods/registry.py defines them), argument
 * checks, and dispatch of one tensor to its kernel (task_arithmetic.c,
 * linear.c, slerp.c, model_stock.c). Also the task-vector arithmetic
 * (task vectors: Ilharco et al. 2023; fine-tuning transfer: Lin et al. 2025). */
#include <math.h>
#include <string.h>

#include "graft/merge.h"
#include "graft/tensor.h"
#include "transfer/merge/merge_internal.h"

static const gr_merge_method_info methods[GR_MERGE_N_METHODS] = {
    [GR_MERGE_LINEAR] = {"linear", GR_SPARSIFY_NONE, GR_CONSENSUS_NONE, true, false, false, false, 1, 0},
    [GR_MERGE_TASK_ARITHMETIC] = {"task_arithmetic", GR_SPARSIFY_NONE, GR_CONSENSUS_NONE, false, false, true, true, 1, 0},
    [GR_MERGE_TIES] = {"ties", GR_SPARSIFY_MAGNITUDE, GR_CONSENSUS_SUM, true, false, true, true, 1, 0},
    [GR_MERGE_DARE_TIES] = {"dare_ties", GR_SPARSIFY_RANDOM, GR_CONSENSUS_SUM, false, true, true, true, 1, 0},
    [GR_MERGE_DARE_LINEAR] = {"dare_linear", GR_SPARSIFY_RANDOM, GR_CONSENSUS_NONE, false, true, true, true, 1, 0},
    [GR_MERGE_BREADCRUMBS] = {"breadcrumbs", GR_SPARSIFY_MAGNITUDE_OUTLIERS, GR_CONSENSUS_NONE, false, false, true, true, 1, 0},
    [GR_MERGE_BREADCRUMBS_TIES] = {"breadcrumbs_ties", GR_SPARSIFY_MAGNITUDE_OUTLIERS, GR_CONSENSUS_SUM, false, false, true, true, 1, 0},
    [GR_MERGE_DELLA] = {"della", GR_SPARSIFY_DELLA, GR_CONSENSUS_SUM, true, true, true, true, 1, 0},
    [GR_MERGE_DELLA_LINEAR] = {"della_linear", GR_SPARSIFY_DELLA, GR_CONSENSUS_NONE, false, true, true, true, 1, 0},
    [GR_MERGE_SLERP] = {"slerp", GR_SPARSIFY_NONE, GR_CONSENSUS_NONE, false, false, false, true, 1, 1},
    [GR_MERGE_MODEL_STOCK] = {"model_stock", GR_SPARSIFY_NONE, GR_CONSENSUS_NONE, false, false, false, true, 2, 0},
};

const gr_merge_method_info *gr_merge_info(gr_merge_method m) {
  return (unsigned)m < GR_MERGE_N_METHODS ? &methods[m] : NULL;
}

gr_status gr_merge_method_from_name(const char *name, gr_merge_method *out) {
  for (int m = 0; m < GR_MERGE_N_METHODS; m++)
    if (name && !strcmp(methods[m].name, name)) {
      *out = (gr_merge_method)m;
      return GR_OK;
    }
  return gr_error(GR_EUNSUPPORTED,
                  "unknown merge_method '%s' (graft knows linear, task_arithmetic, ties, dare_ties, dare_linear, "
                  "breadcrumbs, breadcrumbs_ties, della, della_linear, slerp, model_stock)",
                  name ? name : "(null)");
}

gr_merge_args gr_merge_args_defaults(gr_merge_method m) {
  gr_merge_args a = {.method = m, .lambda = 1.0, .t = 0.5, .rescale_mode = GR_RESCALE_L1};
  const gr_merge_method_info *info = gr_merge_info(m);
  if (info) {
    a.normalize = info->default_normalize;
    a.rescale = info->default_rescale;
  }
  return a;
}

gr_merge_model_params gr_merge_model_params_defaults(void) {
  return (gr_merge_model_params){.weight = 1.0, .density = 1.0, .gamma = 0.01, .epsilon = 0.15};
}

uint64_t gr_merge_stream_id(const char *name, int model_index) {
  uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
  for (const unsigned char *p = (const unsigned char *)(name ? name : ""); *p; p++) h = (h ^ *p) * 0x100000001b3ULL;
  return h ^ ((uint64_t)(model_index + 1) * 0x9e3779b97f4a7c15ULL);
}

bool gr_merge_is_embedding(const char *name) {
  static const char *const keys[] = {"embed_tokens.", "lm_head.", "wte.", "word_embeddings.", "embed_out.",
                                     "tok_embeddings."};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (name && strstr(name, keys[i])) return true;
  return false;
}

static gr_status check_args(const gr_merge_args *a, const gr_merge_method_info *info, const float *out) {
  const char *nm = a->name ? a->name : "(unnamed)";
  if (!out || a->numel < 0 || (a->n_models > 0 && (!a->models || !a->params)))
    return gr_error(GR_EARG, "%s: tensor '%s': NULL output, models or params", info->name, nm);
  if (a->n_models < info->min_models || (info->max_models && a->n_models > info->max_models))
    return gr_error(GR_EARG, "%s: tensor '%s': %d models given, needs %d%s (besides the base)", info->name, nm,
                    a->n_models, info->min_models, info->max_models ? " exactly" : " or more");
  if (info->needs_base && !a->base) return gr_error(GR_EARG, "%s: tensor '%s': needs a base model", info->name, nm);
  for (int i = 0; i < a->n_models; i++) {
    if (!a->models[i]) return gr_error(GR_EARG, "%s: tensor '%s': model %d is NULL", info->name, nm, i);
    const gr_merge_model_params *p = &a->params[i];
    if (!isfinite(p->weight) || !isfinite(p->density) || p->density < 0)
      return gr_error(GR_EARG, "%s: tensor '%s' model %d: weight %g / density %g out of range", info->name, nm, i,
                      p->weight, p->density);
    if (info->sparsify == GR_SPARSIFY_MAGNITUDE_OUTLIERS && !(p->gamma >= 0 && p->gamma <= 1))
      return gr_error(GR_EARG, "%s: tensor '%s' model %d: gamma %g not in [0, 1]", info->name, nm, i, p->gamma);
  }
  if (a->method == GR_MERGE_SLERP && !isfinite(a->t))
    return gr_error(GR_EARG, "slerp: tensor '%s': t is not finite", nm);
  return GR_OK;
}

gr_status gr_merge_tensor(const gr_merge_args *a, float *out, gr_merge_report *report) {
  if (!a) return gr_error(GR_EARG, "merge: NULL arguments");
  const gr_merge_method_info *info = gr_merge_info(a->method);
  if (!info) return gr_error(GR_EARG, "merge: unknown method %d", (int)a->method);
  gr_status st = check_args(a, info, out);
  if (st) return st;
  if (report) memset(report, 0, sizeof *report);
  if (info->is_task_arithmetic) return merge_task_arithmetic(a, out, report);
  switch (a->method) {
    case GR_MERGE_LINEAR: return merge_linear(a, out);
    case GR_MERGE_SLERP: return merge_slerp(a, out);
    case GR_MERGE_MODEL_STOCK: return merge_model_stock(a, out);
    default: break;
  }
  return gr_error(GR_EUNSUPPORTED, "merge: method '%s' has no kernel", info->name);
}

void gr_taskvec_axpy(float *out, const float *a, double alpha, const float *b, const float *c, int64_t n) {
#pragma omp parallel for schedule(static, MERGE_CHUNK) if (n > MERGE_CHUNK)
  for (int64_t j = 0; j < n; j++) {
    double d = (b ? (double)b[j] : 0.0) - (c ? (double)c[j] : 0.0);
    out[j] = (float)((a ? (double)a[j] : 0.0) + alpha * d);
  }
}
