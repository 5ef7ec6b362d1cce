/* cli/runs.h — what the training verbs share (demo, study, train,
 * finetune, eval): output directories that are never silently clobbered,
 * thread setup, progress hooks, and the transfer grid (methods x label
 * budgets x seeds) that `graft demo` and `graft study` both run. */
#ifndef GRAFT_CLI_RUNS_H
#define GRAFT_CLI_RUNS_H
#include <stdio.h>

#include "cli/cli.h"
#include "graft/report.h"
#include "graft/modeldir.h"
#include "graft/transfer.h"

/* Data-parallel runs (more than one rank): prints the rank count, the
 * bytes per step through rank 0's collectives and its time in them per
 * step, over `steps` steps. */
void runs_print_dist(int64_t steps);
/* Creates dir (and parents). An existing non-empty dir is an error unless
 * force (then files in it are overwritten as they are written). Prints the
 * error; returns CLI_OK or CLI_FAIL. */
int runs_prepare_outdir(const char *dir, bool force);
/* dir/name into buf. */
const char *runs_path(char *buf, size_t n, const char *dir, const char *name);

/* Progress + curve recording for one gr_train call. */
typedef struct runs_monitor {
  gr_progress *bar;
  gr_curve_point curve[256];
  int n_curve;
  int64_t every;           /* record a curve point every this many steps */
  double loss_sum;
  int64_t loss_n;
} runs_monitor;
void runs_monitor_start(runs_monitor *mon, const char *label, int64_t total_steps, bool quiet);
void runs_monitor_finish(runs_monitor *mon, const char *status);
gr_train_hooks runs_monitor_hooks(runs_monitor *mon);

/* The transfer grid. */
#define RUNS_MAX_METHODS 32
#define RUNS_MAX_LIST_CHARS 8192 /* a comma-separated --methods list, joined */
#define RUNS_MAX_BUDGETS 8
#define RUNS_MAX_SEEDS 16
typedef struct runs_grid {
  const char *arch;
  const char *methods[RUNS_MAX_METHODS];
  int n_methods;
  double budgets[RUNS_MAX_BUDGETS];
  int n_budgets;
  uint64_t seeds[RUNS_MAX_SEEDS];
  int n_seeds;
  const char *dataset;     /* label for results ("fmnist:classes=5-9") */
  gr_optim_cfg optim;
  gr_train_cfg train;      /* epochs or steps of one target run */
  int64_t min_steps;       /* at least this many steps per run (small budgets) */
  bool quiet;              /* no progress bars */
  int64_t holdout;         /* > 0: evaluate on this many held-out target training images (seeded
                              split per seed; budgets drawn from the rest), not on target_test */
  const gr_dataset *source_train; /* source task data (CorDA-KP calibration), or NULL */
  const gr_dataset *source_test;  /* with the source model: also measure forgetting, the source-task
                                     accuracy of each adapted model with the source head (extra
                                     "source_acc"), or NULL */
} runs_grid;

/* Runs every (budget, seed, method) on target_train (budgeted per seed),
 * evaluates on target_test, appends each run to out (may be NULL) and rs.
 * source may be NULL when only scratch-like methods run. */
gr_status runs_grid_run(const runs_grid *g, const gr_model *source, const gr_dataset *target_train,
                        const gr_dataset *target_test, gr_jsonl *out, gr_results *rs, FILE *log);
/* The transfer methods a grid can run, with their options, for --help. */
void runs_print_methods(FILE *fp);
/* Parses "a,b,c" lists. */
int runs_parse_list(const char *s, const char **items, int max, char *storage, size_t storage_n);
int runs_parse_doubles(const char *s, double *v, int max);


/* ---- flags and the single training run shared by train / finetune --------- */
typedef struct runs_train_flags {
  const char *data, *test_data, *out, *optim, *schedule, *augment, *resume;
  int seed, threads, epochs, batch, eval_every, patience;
  int64_t steps, warmup, ckpt_every, stop_at;
  double lr, momentum, wd, clip, label_smoothing;
  bool nesterov, force, quiet;
} runs_train_flags;
#define RUNS_TRAIN_NOPTS 25
/* Defaults, and the cli_opt rows for them (opts holds RUNS_TRAIN_NOPTS). */
void runs_train_flags_init(runs_train_flags *f, cli_opt *opts);
/* Validates flags into configs; prints a usage error and returns CLI_USAGE. */
int runs_train_flags_configs(const runs_train_flags *f, gr_train_cfg *tc, gr_optim_cfg *oc);
/* cli_parse + runs_train_flags_configs: CLI_OK, CLI_HELP or CLI_USAGE. */
int runs_train_parse(const cli_spec *spec, int argc, char **argv, const runs_train_flags *f, gr_train_cfg *tc,
                     gr_optim_cfg *oc);
/* Loads the train/test data of the flags (test: --test-data or --data with
 * split=test); prints and returns CLI_FAIL on error. */
int runs_load_data(const runs_train_flags *f, gr_dataset **train, gr_dataset **test);
/* Checkpoints and --resume (cli/resume.c). */
typedef struct runs_ckpt {
  struct cJSON *config;     /* the flags that shape the result */
  char *config_text;        /* its compact JSON: the checkpoint's "config" metadata */
  char threads[16];
  gr_st_kv meta[2];         /* config, run.threads */
  char path[1100];          /* OUT/checkpoint.safetensors */
  char resume_path[1100];
  gr_st_file *resume;       /* the checkpoint continued, or NULL */
  bool paused;              /* set by runs_train_and_save: stopped at --stop-at, no final model */
} runs_ckpt;
/* The config fields train and finetune share; the verb adds its own. */
struct cJSON *runs_train_config(const runs_train_flags *f, const char *verb);
/* Takes config. With --resume, opens the checkpoint (DIR/checkpoint.safetensors
 * or FILE) and refuses one whose config differs from config (naming the
 * field); then prepares --out as runs_prepare_outdir, where continuing a
 * run in the directory that holds its checkpoint needs no --force until a
 * finished model.safetensors is there. Prints errors; CLI_OK or CLI_FAIL.
 * Call runs_ckpt_end in any case. */
int runs_ckpt_begin(const runs_train_flags *f, struct cJSON *config, runs_ckpt *ck);
void runs_ckpt_end(runs_ckpt *ck);
/* tc->ckpt from the flags: checkpoints into OUT with --ckpt-every, --stop-at or --resume. */
void runs_ckpt_train_cfg(const runs_train_flags *f, const runs_ckpt *ck, gr_train_cfg *tc);
/* Resuming: OUT/metrics.jsonl becomes the evaluation records the checkpoint
 * had counted (from the metrics.jsonl beside it); new records are appended. */
gr_status runs_ckpt_metrics_prefix(const runs_train_flags *f, const runs_ckpt *ck);

/* Trains m (optimizer from oc, after setup_optim when not NULL), appends
 * every evaluation and a final record to out/metrics.jsonl, saves the model
 * directory. Prints progress and the final metrics. */
typedef gr_status (*runs_optim_hook)(void *ud, gr_optim *o);
int runs_train_and_save(const runs_train_flags *f, gr_model *m, const gr_model_config *mc, const gr_dataset *train,
                        const gr_dataset *test, const gr_train_cfg *tc, const gr_optim_cfg *oc,
                        runs_optim_hook hook, void *hook_ud, runs_ckpt *ck);
/* Prints evaluation metrics (text or one JSON object). */
void runs_print_eval(FILE *fp, const gr_eval_result *ev, bool json);

#endif  /* GRAFT_CLI_RUNS_H */
