/* graft/atlas.h — aTLAS: task vectors composed with learned anisotropic
 * scaling (Zhang et al., NeurIPS 2024).
 *
 * A model's parameters are split into blocks, one per parameter tensor (each
 * weight and each bias; buffers are not blocks and keep the model's values).
 * Given a frozen base θ0 and T frozen task vectors τ_t (θ_ft,t − θ0), the
 * composed model is, per block b,
 *   θ_b(Λ) = θ0_b + Σ_t λ_{t,b} τ_{t,b}          Λ ∈ R^{T×B}
 * and Λ alone is trained by gradient descent on a labelled set, with
 *   dL/dλ_{t,b} = <dL/dθ_b, τ_{t,b}>             (one backward pass)
 * Isotropic task arithmetic (Ilharco et al. 2023) is the special case where
 * every λ_{t,b} is the same λ: gr_atlas_set_all() then gr_atlas_compose().
 *
 * The atlas borrows the model: it copies the model's current parameters as
 * θ0, writes θ(Λ) into model->data on every compose, and marks every
 * parameter trainable (gradients w.r.t. θ are needed for dL/dΛ). Λ lives in
 * a one-parameter model of its own (named "lambda", shape [T,B]) so the
 * AdamW of optim.h updates it exactly as PyTorch would. */
#ifndef GRAFT_ATLAS_H
#define GRAFT_ATLAS_H
#include "graft/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gr_atlas gr_atlas;

/* Takes θ0 = m's parameters now and T task vectors, each a flat array of
 * m->numel floats laid out like m->data (copied). Λ starts at 0 (θ = θ0).
 * NULL with GR_EARG (NULL, T < 1, a non-finite τ entry naming the vector and
 * tensor) or GR_ENOMEM. */
gr_atlas *gr_atlas_new(gr_model *m, int n_tv, const float *const *tv);
void gr_atlas_free(gr_atlas *a);

int gr_atlas_n_tv(const gr_atlas *a);
int gr_atlas_n_blocks(const gr_atlas *a);
/* State-dict name of block b ("features.0.weight"). */
const char *gr_atlas_block_name(const gr_atlas *a, int b);
/* Λ, row-major [T, B] (λ_{t,b} at t*B + b); writable. */
float *gr_atlas_coef(gr_atlas *a);
/* Every λ_{t,b} = v. */
void gr_atlas_set_all(gr_atlas *a, float v);
/* model->data = θ(Λ), each entry summed in double and rounded once. */
void gr_atlas_compose(gr_atlas *a);
/* Composes, runs the model on x (eval-mode modules: batch-norm uses the
 * model's running stats, no dropout), cross-entropy against y, backward,
 * and writes dL/dΛ into grad[T*B] (may be NULL: the coefficient model's
 * grad). *loss gets the batch loss. Rewinds c's step arena at the end. */
gr_status gr_atlas_loss_grad(gr_atlas *a, gr_ctx *c, gr_tensor *x, const int32_t *y, double *loss, float *grad);
/* Mean cross-entropy and accuracy of θ(Λ) on ds (composes first). */
gr_status gr_atlas_evaluate(gr_atlas *a, gr_ctx *c, const gr_dataset *ds, gr_eval_result *out);

typedef struct gr_atlas_cfg {
  int64_t steps;       /* optimizer steps [200] */
  int64_t batch;       /* [128] */
  float lr;            /* AdamW lr [1e-3] */
  float weight_decay;  /* AdamW weight decay on Λ [0.1] */
  float clip_norm;     /* > 0: clip the norm of dL/dΛ [1.0] */
  int64_t eval_every;  /* > 0 with a validation set: keep the Λ of the best
                          validation accuracy (checked at step 0 too) [0] */
  uint64_t seed;       /* batch order */
} gr_atlas_cfg;
/* The official implementation's defaults (AdamW 1e-3, wd 0.1, clip 1). */
gr_atlas_cfg gr_atlas_cfg_default(void);

typedef struct gr_atlas_fit_result {
  int64_t steps;
  double first_loss;   /* batch loss of the first step */
  double train_loss;   /* mean batch loss of the last min(50, steps) steps */
  int64_t best_step;   /* step whose Λ was kept (steps when no validation) */
  double best_val_acc; /* NaN without validation */
} gr_atlas_fit_result;

/* Trains Λ (starting from its current value) on train; val may be NULL.
 * hooks->on_step gets each batch loss (hooks may be NULL). Leaves the model
 * composed with the kept Λ. */
gr_status gr_atlas_fit(gr_atlas *a, const gr_dataset *train, const gr_dataset *val, const gr_atlas_cfg *cfg,
                       const gr_train_hooks *hooks, gr_atlas_fit_result *res);

#ifdef __cplusplus
}
#endif
#endif
