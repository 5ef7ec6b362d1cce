/* graft/train.h — the training loop and evaluation (one place for both):
 * epochs or steps over a gr_loader, the optimizer and schedule of optim.h,
 * gradient clipping, evaluation every N steps (loss, accuracy, ECE,
 * per-class accuracy), optional early stopping that restores the best
 * weights. Progress and metrics go to caller hooks, so the CLI decides what
 * is printed or written (the library never prints). */
#ifndef GRAFT_TRAIN_H
#define GRAFT_TRAIN_H
#include "graft/checkpoint.h"
#include "graft/data.h"
#include "graft/nn.h"
#include "graft/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GR_ECE_BINS 15

typedef struct gr_eval_result {
  int64_t n;               /* samples evaluated */
  double loss;             /* mean cross-entropy */
  double accuracy;         /* in [0,1] */
  double ece;              /* expected calibration error, GR_ECE_BINS equal-width bins */
  int n_classes;
  double per_class_acc[GR_DATA_MAX_CLASSES]; /* NaN for a class with no sample */
} gr_eval_result;

/* Evaluates m (eval mode, no tape) on ds in batches; restores m's mode. */
gr_status gr_evaluate(gr_model *m, gr_ctx *c, const gr_dataset *ds, int64_t batch, gr_eval_result *out);

/* Checkpoints of a run (graft/checkpoint.h), one safetensors file holding
 * the whole training state: parameters and buffers under their model
 * names, optimizer state ("optimizer.momentum_buffer.<param>" for SGD,
 * "optimizer.exp_avg.<param>" / "optimizer.exp_avg_sq.<param>" for AdamW,
 * trainable parameters only), the early-stopping best weights
 * ("best.<name>", with patience), the loader's epoch order ("loader.perm")
 * and, as metadata, the step, every generator the loop draws from (loader:
 * shuffling and augmentation; dropout, one per rank; model), the loader
 * position, the loss window, the early-stopping state and per-parameter
 * optimizer step counts. Resuming restores all of it, so the run continues
 * with the same bits as one that never stopped (same threads and ranks).
 * With MPI, rank 0 writes (every rank takes part: the dropout generators
 * are gathered) and every rank reads the file. */
typedef struct gr_train_ckpt {
  const char *path;          /* NULL: no checkpoints */
  int64_t every;             /* also write after every this many steps (0: only at a pause and the end) */
  int64_t stop_at;           /* > 0: pause after this step (checkpoint written, no final evaluation) */
  const gr_st_kv *meta;      /* extra metadata in every checkpoint (e.g. the caller's "config") */
  size_t n_meta;
  const gr_st_file *resume;  /* continue from this checkpoint (NULL: start fresh) */
} gr_train_ckpt;

typedef struct gr_train_cfg {
  int64_t epochs;          /* used when steps == 0 */
  int64_t steps;           /* > 0: exactly this many optimizer steps */
  int64_t batch;           /* default 64 */
  gr_schedule sched;       /* base_lr 0: the optimizer's lr; kind constant by default;
                              cosine total_steps 0: the run; step step_size 0: a third of the run */
  float clip_norm;         /* > 0: clip the global grad norm */
  float label_smoothing;
  int64_t eval_every;      /* steps between evaluations on the eval set (0: only at the end) */
  int patience;            /* > 0: stop after this many evaluations without a better eval loss,
                              restore the best weights */
  gr_augment aug;
  uint64_t seed;           /* shuffling and augmentation */
  int64_t eval_batch;      /* default 500 */
  gr_train_ckpt ckpt;      /* checkpoints and resume (all zero: none) */
} gr_train_cfg;

typedef struct gr_train_result {
  int64_t steps;           /* optimizer steps taken */
  double train_loss;       /* mean loss of the last epoch or last 50 steps */
  gr_eval_result eval;     /* final evaluation (after restoring the best weights) */
  int64_t best_step;       /* step of the best evaluation (early stopping) */
  bool stopped_early;
  int64_t resumed_at;      /* step the run continued from (0: a fresh start) */
  bool paused;             /* stopped at ckpt.stop_at: no final evaluation, eval is empty */
} gr_train_result;

typedef struct gr_train_hooks {
  void *ud;
  /* after every optimizer step: loss of that batch */
  void (*on_step)(void *ud, int64_t step, int64_t total_steps, double loss);
  /* after each evaluation */
  void (*on_eval)(void *ud, int64_t step, double train_loss, const gr_eval_result *ev);
} gr_train_hooks;

/* Total optimizer steps cfg implies for n training samples. */
int64_t gr_train_total_steps(const gr_train_cfg *cfg, int64_t n);
/* Trains m on train with optimizer o (created by the caller, so parameter
 * groups and frozen parameters are already set); evaluates on eval (may be
 * NULL: no evaluations, no early stopping). hooks may be NULL. With
 * cfg->ckpt.resume the state is restored first; a checkpoint from another
 * run is refused before anything is changed: GR_EFORMAT naming the field
 * (total steps, batch, sample count, optimizer, a damaged value),
 * GR_ESHAPE / GR_ENOTFOUND naming the tensor (another model or freezing). */
gr_status gr_train(gr_model *m, gr_optim *o, const gr_dataset *train, const gr_dataset *eval,
                   const gr_train_cfg *cfg, const gr_train_hooks *hooks, gr_train_result *res);

#ifdef __cplusplus
}
#endif
#endif
