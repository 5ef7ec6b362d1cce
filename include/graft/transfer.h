/* graft/transfer.h — the registry of transfer methods shared by
 * `graft demo`, `graft study` and `graft finetune`.
 *
 * A method is one row of a table (src/transfer/registry.c): a name, a line
 * of help, whether it starts from the source model's weights, and a setup
 * function that changes the target model before training (freeze layers,
 * wrap or replace modules by dotted name, insert adapters) plus an optional
 * optimizer hook (parameter groups). Adding a method is writing those
 * functions in its own file and adding its row to the table: nothing else
 * (demo, study, CLI, report) needs to change.
 *
 * The caller builds the target model with the source architecture and the
 * target class count (its head freshly initialized), then calls
 * gr_transfer_prepare(), creates the optimizer from run->optim, calls
 * gr_transfer_prepare_optim(), and trains with gr_train(). */
#ifndef GRAFT_TRANSFER_H
#define GRAFT_TRANSFER_H
#include "graft/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gr_transfer_run {
  gr_model *model;          /* the target model (trained in place) */
  const gr_model *source;   /* the pretrained source model, or NULL */
  const char *head;         /* dotted name of the classifier head ("classifier.4") */
  const char *early;        /* glob of the early layers ("features.*") */
  const char *options;      /* method options "key=value,..." (may be NULL); for every
                               method "lr=X" sets the run's learning rate (optim->lr),
                               "clip=C" clips the global grad norm (train->clip_norm) and
                               "adapter_lr=K" multiplies the adapter parameters' lr by K
                               (gr_peft_param_is_adapter; the new head keeps lr), "b_lr=K"
                               multiplies the up factors' (lora_B, adapter_up) lr by K
                               more (LoRA+); "adamw=1"
                               (AdamW, weight decay 0), "warmup=N" (linear from 0 over N
                               steps), "cosine=1" (cosine decay to 0) set optim/train->sched */
  gr_train_cfg *train;      /* the method may adjust these before training */
  gr_optim_cfg *optim;
  bool copy_head;           /* also copy the source head (same classes) */
  const gr_dataset *source_data; /* the source task's training set, or NULL (CorDA-KP calibration) */
  const gr_dataset *target_data; /* the target training set of this run, or NULL (CorDA-IP calibration) */
} gr_transfer_run;

typedef struct gr_transfer_method {
  const char *name;         /* "finetune", "linear-probe", ... */
  const char *about;        /* one line for --help and reports */
  bool uses_source;         /* copy the source weights (all but the head) first */
  gr_status (*setup)(gr_transfer_run *run);                 /* may be NULL */
  gr_status (*setup_optim)(gr_transfer_run *run, gr_optim *o); /* may be NULL */
  const char *keys;         /* the option keys setup reads, ',' separated; NULL: none
                               (every method also takes gr_transfer_common_keys()) */
} gr_transfer_method;

int gr_transfer_count(void);
/* The option keys every method takes, ',' separated ("lr,clip,..."). */
const char *gr_transfer_common_keys(void);
const gr_transfer_method *gr_transfer_at(int i);
/* NULL with GR_ENOTFOUND listing the known names. A method spec
 * "name:key=value:..." (demo/study --methods) finds "name"; the options
 * after the first ':' are the run's options with ':' read as ','. NULL with
 * GR_EARG naming the option when one is not "key=value" with a key the
 * method takes, so a typo is caught before any training. */
const gr_transfer_method *gr_transfer_find(const char *name);
/* Takes "key=NUMBER" out of an options string "k=v,k=v": *value gets the
 * number (unchanged when the key is absent; *found, may be NULL, says which),
 * rest[0..n) the other options in their order. GR_EARG naming the option
 * when the value is not a finite number. */
gr_status gr_transfer_take_option(const char *opts, const char *key, char *rest, size_t n, double *value, bool *found);

/* Copies every parameter and buffer of src whose name and shape match one in
 * dst, except those under the module prefix `skip` (NULL: none). Returns the
 * number copied (>= 0) or -1 with gr_last_error(). */
int gr_transfer_copy_weights(gr_model *dst, const gr_model *src, const char *skip);

/* Copies the source weights when the method uses them, then runs setup.
 * GR_EARG when the method needs a source and run->source is NULL. */
gr_status gr_transfer_prepare(const gr_transfer_method *m, gr_transfer_run *run);
gr_status gr_transfer_prepare_optim(const gr_transfer_method *m, gr_transfer_run *run, gr_optim *o);

#ifdef __cplusplus
}
#endif
#endif
