/* graft/corda.h — CorDA (Yang et al., "CorDA: Context-Oriented Decomposition
 * Adaptation of Large Language Models", NeurIPS 2024): a LoRA adapter whose
 * factors come from an SVD of the layer weight multiplied by the covariance
 * of its inputs on a calibration set (src/transfer/peft/corda.c).
 *
 * Per adapted layer y = W x, W [out, in] (a Conv2d's weight viewed as
 * [out, C_in*kh*kw], its inputs as unfolded kh x kw patches):
 *   C  = (1/calls) sum_calls X^T X,  X [rows, in] the inputs of one forward
 *        call divided by |max X| (Hugging Face PEFT's calib_cov_distribution)
 *   C' = C + damp * mean(diag C) * I, damp = 0.01 doubled until
 *        ||C' C'^-1 - I||_F < 0.05 (PEFT's collect_eigens_for_layer)
 *   W C' = U S V^T (thin SVD), Vhat^T = V^T C'^-1, so W = U S Vhat^T
 *   components: instruction-previewed (IPM) the r largest, knowledge-
 *        preserved (KPM) the r smallest
 *   S' = S / scaling, A = diag(sqrt S') Vhat^T [r, in], B = U diag(sqrt S')
 *        [out, r], base weight <- W - scaling * B A (the frozen residual)
 * balanced (a graft option, off in PEFT): each component's scale split so
 *        that ||A_k|| = ||B_k|| (B A, W_res and the model are unchanged; with
 *        PEFT's split C'^-1 lands in A only, and the factors' scales follow
 *        the arbitrary scale of C).
 * The module stays a plain LoRA module (graft/peft.h): same forward, merge
 * and adapter layout; its output at initialization equals the base layer's.
 * KPM takes C from data whose behaviour must survive (the source task), IPM
 * from the fine-tuning task. Linear and Conv2d layers; fan_in_fan_out
 * layers are not supported. */
#ifndef GRAFT_CORDA_H
#define GRAFT_CORDA_H
#include "graft/data.h"
#include "graft/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gr_corda_mode {
  GR_CORDA_IPM = 0, /* instruction-previewed: adapt the r largest components */
  GR_CORDA_KPM = 1, /* knowledge-preserved: adapt the r smallest components */
} gr_corda_mode;

/* Input covariance of one layer, accumulated call by call. */
typedef struct gr_corda_cov {
  int64_t dim;   /* input features per row */
  double *c;     /* [dim, dim], sum of X^T X until finished, then the mean */
  int64_t calls; /* forward calls accumulated */
} gr_corda_cov;

/* Sets up an empty covariance of dim features (GR_ENOMEM, GR_EARG). */
gr_status gr_corda_cov_init(gr_corda_cov *cov, int64_t dim);
void gr_corda_cov_free(gr_corda_cov *cov);
/* One forward call: x [rows, dim] divided by |max x| (PEFT), then
 * C += x^T x. GR_ENUMERIC naming `what` when x holds NaN/Inf or max x is 0. */
gr_status gr_corda_cov_add(gr_corda_cov *cov, const float *x, int64_t rows, const char *what);
/* Divides by the call count (GR_ESTATE when no call was added). */
gr_status gr_corda_cov_finish(gr_corda_cov *cov);

/* The decomposition on arrays: w [out, in], cov [in, in] (finished), rank r
 * in [1, min(out, in)], LoRA scaling > 0. Writes a [r, in], b [out, r] and
 * w_res [out, in] (w_res may alias w) and the damping used (damp may be
 * NULL); balanced: see above. Double precision, LAPACK dgesvd. GR_ENUMERIC when the damping loop
 * does not converge or the inputs are not finite. */
gr_status gr_corda_decompose(const float *w, int64_t out, int64_t in, const double *cov, int r, float scaling,
                             gr_corda_mode mode, bool balanced, float *a, float *b, float *w_res, double *damp);

/* Re-initializes the LoRA module lora (gr_lora_is) from cov, the covariance
 * of its base layer's inputs: lora_A, lora_B and base_layer.weight change. */
gr_status gr_corda_init(gr_module *lora, const gr_corda_cov *cov, gr_corda_mode mode, bool balanced);

/* For every LoRA module of m: collects the covariance of its base layer's
 * inputs over n_samples samples of calib (evenly spaced, one forward call
 * per sample as PEFT does; eval mode, no tape), then gr_corda_init. The
 * LoRA modules must be freshly wrapped (B = 0) so the collected inputs are
 * the base model's. *n_done (may be NULL) gets the module count. */
gr_status gr_corda_apply(gr_model *m, const gr_dataset *calib, int64_t n_samples, gr_corda_mode mode, bool balanced,
                         int *n_done);

/* The calibration forwards of gr_corda_apply_with: run the model on the
 * calibration data (one forward call per sample, as PEFT does) in ctx c
 * (no tape; reset it between calls as needed); the model is in inference
 * mode meanwhile. */
typedef gr_status (*gr_corda_calib_fn)(void *ud, gr_model *m, gr_ctx *c);
/* gr_corda_apply with the forwards done by run (for models whose forward
 * is not gr_model_forward on a gr_dataset batch, e.g. a GPT on token ids). */
gr_status gr_corda_apply_with(gr_model *m, gr_corda_calib_fn run, void *ud, gr_corda_mode mode, bool balanced,
                              int *n_done);

#ifdef __cplusplus
}
#endif
#endif
