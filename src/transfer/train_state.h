/* transfer/train_state.h — internal: the state of one gr_train run, shared
 * by the loop (train.c) and its checkpoints (train_ckpt.c). */
#ifndef GRAFT_TRANSFER_TRAIN_STATE_H
#define GRAFT_TRANSFER_TRAIN_STATE_H
#include "graft/train.h"
#include "transfer/train_dist.h"

typedef struct best_state {
  float *data, *buf;       /* best weights (patience > 0) */
  double loss;
  int64_t step;
  int bad_evals;
} best_state;

typedef struct train_run {
  gr_model *m;
  gr_optim *o;
  gr_ctx *c;
  gr_loader l;
  const gr_dataset *eval;
  const gr_train_cfg *cfg;
  const gr_train_hooks *hooks;
  best_state best;
  double window_sum;       /* loss over the recent window */
  int64_t window_n;
  int64_t evals;           /* evaluations reported through on_eval so far */
  int64_t start;           /* first step of this call (resume) */
  bool stop;               /* early stopping: patience is out */
  gr_eval_result last;     /* latest evaluation */
  gr_dp dp;                /* data-parallel state (several ranks) */
} train_run;

/* Writes the run's state after `step` of `total` to cfg->ckpt.path (rank 0;
 * every rank must call: the dropout generators are gathered). */
gr_status gr_train_state_save(const train_run *r, int64_t step, int64_t total);
/* Restores the state from cfg->ckpt.resume into r (r->start = its step).
 * Everything is checked before anything is changed. */
gr_status gr_train_state_restore(train_run *r, int64_t total);

#endif
