/* graft/optim.h — optimizers, learning-rate schedules, gradient clipping.
 *
 * Optimizers work on a model's flat parameter vector (graft/nn.h) with
 * PyTorch's exact update rules; their state (momentum, Adam moments) is
 * flat too, parallel to model->data. Parameters with requires_grad false
 * (frozen) are skipped entirely, as PyTorch skips params whose grad is
 * None. Per-group settings are set by glob on parameter names (fnmatch):
 * e.g. a 0.1 lr multiplier for "features.*". The optimizer reads the model's
 * parameter list when created: create it after the model's final layout.
 *
 *  SGD:   g = grad + wd p ; b = g (first step) or mu b + (1-dampening) g ;
 *         g = nesterov ? g + mu b : b (mu > 0) ; p -= lr g
 *  AdamW: p *= 1 - lr wd ; m = b1 m + (1-b1) g ; v = b2 v + (1-b2) g^2 ;
 *         p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps) */
#ifndef GRAFT_OPTIM_H
#define GRAFT_OPTIM_H
#include "graft/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gr_optim_kind { GR_OPT_SGD = 0, GR_OPT_ADAMW = 1 } gr_optim_kind;

typedef struct gr_optim_cfg {
  gr_optim_kind kind;
  float lr;
  float weight_decay;
  float momentum, dampening;  /* SGD */
  bool nesterov;              /* SGD: needs momentum > 0, dampening 0 */
  float beta1, beta2, eps;    /* AdamW */
} gr_optim_cfg;

/* PyTorch's defaults: SGD(lr, momentum, weight_decay, nesterov), dampening 0;
 * AdamW(lr, weight_decay) with betas (0.9, 0.999), eps 1e-8. */
gr_optim_cfg gr_sgd_cfg(float lr, float momentum, float weight_decay, bool nesterov);
gr_optim_cfg gr_adamw_cfg(float lr, float weight_decay);

typedef struct gr_optim {
  gr_optim_cfg cfg;
  gr_model *model;
  float lr;            /* current base lr (schedules set it) */
  float *m1, *m2;      /* SGD momentum / Adam exp_avg ; Adam exp_avg_sq */
  int n;               /* parameter entries (model->n_entries at creation) */
  float *lr_scale;     /* per entry */
  float *wd;           /* per entry weight decay */
  int64_t *steps;      /* per entry steps taken (bias correction, first momentum step) */
  int64_t step;        /* optimizer steps taken */
} gr_optim;

/* Validates cfg (lr >= 0, betas in [0,1), ...): GR_EARG naming the field. */
gr_optim *gr_optim_new(gr_model *m, const gr_optim_cfg *cfg);
void gr_optim_free(gr_optim *o);
/* For parameters matching glob: lr multiplier and weight decay (wd < 0 keeps
 * the current value). Returns the number matched, -1 on bad arguments. */
int gr_optim_set_group(gr_optim *o, const char *glob, float lr_scale, float wd);
/* One update of every trainable parameter from its grad. GR_ENUMERIC (and no
 * update at all) if a gradient is not finite. */
gr_status gr_optim_step(gr_optim *o);
/* Global L2 norm over trainable grads; if > max_norm, scales them by
 * max_norm / (norm + 1e-6) (torch.nn.utils.clip_grad_norm_). Returns the norm
 * before clipping (NaN if a grad is not finite; then nothing is scaled). */
float gr_clip_grad_norm(gr_model *m, float max_norm);

/* ---- learning-rate schedules ------------------------------------------------ */
typedef enum gr_sched_kind { GR_SCHED_CONSTANT = 0, GR_SCHED_COSINE, GR_SCHED_STEP } gr_sched_kind;
typedef struct gr_schedule {
  gr_sched_kind kind;
  float base_lr;
  int64_t warmup_steps;  /* linear warmup: factor start..1 over these steps */
  float warmup_start;    /* start factor (PyTorch LinearLR default 1/3) */
  int64_t total_steps;   /* cosine: length including warmup */
  float min_lr;          /* cosine floor (eta_min) */
  int64_t step_size;     /* step decay: every step_size steps after warmup */
  float gamma;           /* step decay factor */
} gr_schedule;
/* lr at step t (0-based):
 *   t < W: base (s + (1-s) t/W)          (LinearLR, start factor s)
 *   cosine: min + (base-min)(1+cos(pi (t-W)/(T-W)))/2, t-W clamped to T-W
 *   step:   base gamma^floor((t-W)/step_size)
 *   constant: base */
float gr_schedule_lr(const gr_schedule *s, int64_t t);
/* Parses "constant", "cosine", "step" into kind; GR_EARG otherwise. */
gr_status gr_schedule_kind_parse(const char *name, gr_sched_kind *out);

#ifdef __cplusplus
}
#endif
#endif
