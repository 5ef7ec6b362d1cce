/* graft/merge.h — model merging kernels and task vectors, per tensor.
 *
 * Every kernel maps the f32 arrays of one tensor (a base θ0 and models θ_i,
 * all of the same element count) to one output array, exactly as mergekit
 * computes it (FORMATS.md §3). What reads the models, evaluates the YAML
 * settings per tensor and writes the result lives elsewhere (mergekit.h,
 * cli/merge.c); nothing here does I/O.
 *
 * Generalized task arithmetic (task_arithmetic, ties, dare_*, breadcrumbs*,
 * della*), per element j:
 *   τ_i = θ_i − θ0;  δ_i = sparsify(τ_i, d_i) (mask_i ⊙ τ_i · s_i);  Δ_i = w_i δ_i
 *   consensus: elect = +1 if Σ_i Δ_i >= 0 else −1 ("count": Σ sign(Δ_i));
 *              M_i = [sign(Δ_i) == elect]; mixed = Σ M_i Δ_i; div = Σ M_i w_i, 0 → 1
 *   otherwise: mixed = Σ Δ_i; div = Σ w_i, |div| < 1e-8 → 1
 *   normalize: mixed /= div;   θ = θ0 + λ mixed
 * Sparsifiers keep the tensor whole when d >= 1; the rescale factor s_i is
 * ‖τ‖₁/‖mask⊙τ‖₁ (mergekit; 1 when either norm < 1e-7) or 1/d (the DARE
 * paper and PEFT), chosen by gr_merge_args.rescale_mode.
 * Random masks come from gr_rng_stream(seed, gr_merge_stream_id(name, i)):
 * the same seed, tensor name and model index give the same mask on every
 * machine and thread count. Tests inject masks instead (masks_in). */
#ifndef GRAFT_MERGE_H
#define GRAFT_MERGE_H
#include <stdbool.h>
#include <stdint.h>

#include "graft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gr_merge_method {
  GR_MERGE_LINEAR = 0,
  GR_MERGE_TASK_ARITHMETIC = 1,
  GR_MERGE_TIES = 2,
  GR_MERGE_DARE_TIES = 3,
  GR_MERGE_DARE_LINEAR = 4,
  GR_MERGE_BREADCRUMBS = 5,
  GR_MERGE_BREADCRUMBS_TIES = 6,
  GR_MERGE_DELLA = 7,
  GR_MERGE_DELLA_LINEAR = 8,
  GR_MERGE_SLERP = 9,
  GR_MERGE_MODEL_STOCK = 10,
  GR_MERGE_N_METHODS
} gr_merge_method;

typedef enum gr_sparsify {
  GR_SPARSIFY_NONE = 0,
  GR_SPARSIFY_MAGNITUDE = 1,          /* top k = int(d·numel) by |τ| */
  GR_SPARSIFY_RANDOM = 2,             /* Bernoulli(d) */
  GR_SPARSIFY_MAGNITUDE_OUTLIERS = 3, /* breadcrumbs: drop the γ largest and the smallest */
  GR_SPARSIFY_DELLA = 4,              /* Bernoulli with rank-dependent probability per row */
} gr_sparsify;

typedef enum gr_consensus { GR_CONSENSUS_NONE = 0, GR_CONSENSUS_SUM = 1, GR_CONSENSUS_COUNT = 2 } gr_consensus;

typedef enum gr_rescale_mode {
  GR_RESCALE_L1 = 0,          /* mergekit: s = ‖τ‖₁ / ‖mask⊙τ‖₁ */
  GR_RESCALE_INV_DENSITY = 1, /* DARE paper / PEFT: s = 1/d */
} gr_rescale_mode;

/* What a merge method is, as mergekit's registry defines it. */
typedef struct gr_merge_method_info {
  const char *name;       /* "ties" */
  gr_sparsify sparsify;
  gr_consensus consensus;
  bool default_normalize, default_rescale;
  bool is_task_arithmetic; /* one of the generalized task arithmetic family */
  bool needs_base;
  int min_models, max_models; /* non-base models; max 0 = unbounded */
} gr_merge_method_info;

const gr_merge_method_info *gr_merge_info(gr_merge_method m);
/* GR_EUNSUPPORTED naming the method when it is not one graft implements. */
gr_status gr_merge_method_from_name(const char *name, gr_merge_method *out);

/* Per-model settings, already evaluated for the tensor at hand. */
typedef struct gr_merge_model_params {
  double weight;  /* w_i */
  double density; /* d_i, 1 = keep all */
  double gamma;   /* breadcrumbs: fraction of largest entries dropped [0.01] */
  double epsilon; /* della: probability spread [0.15] */
} gr_merge_model_params;

typedef struct gr_merge_args {
  gr_merge_method method;
  const char *name;          /* tensor name: messages and the RNG stream */
  int64_t numel;
  /* Row structure used by della (rank within rows along dim 1) and by
   * model_stock filter_wise (rows of the last dim): pass the tensor shape. */
  int ndim;
  const int64_t *shape;
  const float *base;         /* θ0; required except for linear (ignored there) */
  int n_models;              /* models other than the base */
  const float *const *models;
  const gr_merge_model_params *params; /* n_models entries */
  bool normalize, rescale;   /* start from gr_merge_args_defaults() */
  double lambda;             /* [1] */
  gr_rescale_mode rescale_mode;
  double t;                  /* slerp */
  bool filter_wise;          /* model_stock */
  /* breadcrumbs with n_top == int(γ·numel) == 0: mergekit's slice [n_bot:-0]
   * is empty and zeroes the whole task vector. Reproduced when false (the
   * default, for parity); true keeps [n_bot:] instead. */
  bool breadcrumbs_keep_top;
  /* PEFT's merge_utils semantics for the consensus methods (ties, dare_ties):
   * sign elected on the unweighted deltas, the agreeing weighted deltas
   * divided by how many agree (always); use with GR_RESCALE_INV_DENSITY. */
  bool peft_semantics;
  uint64_t seed;
  const uint8_t *const *masks_in; /* optional, n_models masks of numel (0/1) for random sparsifiers */
  uint8_t *const *masks_out;      /* optional, receives the masks used (all 1 where not sparsified) */
} gr_merge_args;

/* What a merge of one tensor reports back. */
typedef struct gr_merge_report {
  int quirk_zeroed; /* task vectors zeroed by the breadcrumbs n_top == 0 quirk */
  double kept_fraction[16]; /* per model (first 16): fraction of τ entries kept */
} gr_merge_report;

/* Method defaults: normalize/rescale from the registry, λ 1, t 0.5. */
gr_merge_args gr_merge_args_defaults(gr_merge_method m);
gr_merge_model_params gr_merge_model_params_defaults(void);

/* Merges one tensor into out[numel] (may not alias an input). Errors name
 * the method and tensor: GR_EARG (NULL, model count, density, ε out of
 * range), GR_ENUMERIC (NaN in a tensor that must be ranked, magnitude
 * k = 0), GR_ENOMEM. report may be NULL. Uses OpenMP over chunks. */
gr_status gr_merge_tensor(const gr_merge_args *a, float *out, gr_merge_report *report);

/* Stream id of model i's random mask for a tensor (FNV-1a of the name). */
uint64_t gr_merge_stream_id(const char *name, int model_index);

/* Names like embed_tokens / lm_head / wte whose rows may be truncated to the
 * base's when vocabularies differ (mergekit's is_embed). */
bool gr_merge_is_embedding(const char *name);

/* ---- task vectors --------------------------------------------------- */
/* out = a + alpha (b − c), elementwise with the sum taken in double and
 * rounded once: extract τ = ft − base (a=NULL treated as 0, alpha 1),
 * apply θ = base + λ τ, rebase θ' = C + α (B − A). Any of b/c may be NULL
 * (treated as 0). */
void gr_taskvec_axpy(float *out, const float *a, double alpha, const float *b, const float *c, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
