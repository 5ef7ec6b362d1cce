/* cli/study_domains.h — what `graft study merge` and `graft study rebase`
 * share: Fashion-MNIST split into disjoint pools (pretraining, fine-tuning,
 * validation) and the test set, each seen through a domain shift
 * (gr_dataset_shift: invert, rot90, vflip, ...) with all 10 classes, so every
 * model is a 10-class LeNet and every fine-tune's task vector covers the
 * whole network; short SGD runs with progress; evaluation; the results
 * records and the markdown table file. */
#ifndef GRAFT_CLI_STUDY_DOMAINS_H
#define GRAFT_CLI_STUDY_DOMAINS_H
#include "cli/runs.h"
#include "cli/study_verbs.h"

#define SD_MAX_TASKS 8

typedef struct sd_opts {
  const char *out, *tasks;      /* tasks: comma-separated shifts */
  int seed, seeds, threads;
  int64_t base_steps, ft_steps, batch;
  int64_t val_per_task, test_per_task;
  double lr, momentum;
  bool quick, quiet, force;
} sd_opts;

/* The Fashion-MNIST images, raw [0,1] pixels, and one seed's split of the
 * training images into pools (indices into train). */
typedef struct sd_data {
  gr_dataset *train, *test;
  int64_t *perm;                /* seeded permutation of the training images */
  int64_t n_val_pool;           /* the last n_val_pool of perm: validation */
} sd_data;

/* Loads both splits (prints nothing; gr_status on error). */
gr_status sd_data_load(sd_data *d);
void sd_data_free(sd_data *d);
/* Reshuffles the pools for a seed. */
void sd_data_reseed(sd_data *d, uint64_t seed, int64_t n_val_pool);
/* Training images perm[start, start+count) (clamped to the non-validation
 * part) seen through shift, normalized. */
gr_status sd_train_set(const sd_data *d, const char *shift, int64_t start, int64_t count, gr_dataset **out);
/* Validation block `block` (count images from the validation pool) through shift. */
gr_status sd_val_set(const sd_data *d, const char *shift, int block, int64_t count, gr_dataset **out);
/* The first count test images through shift. */
gr_status sd_test_set(const sd_data *d, const char *shift, int64_t count, gr_dataset **out);
/* Concatenation of n datasets of one shape. */
gr_status sd_concat(gr_dataset *const *parts, int n, gr_dataset **out);

/* A fresh 10-class LeNet (init from seed). NULL with gr_last_error(). */
gr_model *sd_lenet(uint64_t seed);
/* dst's parameters and buffers = src's (same architecture). */
void sd_copy_weights(gr_model *dst, const gr_model *src);
/* steps of SGD (o->lr, o->momentum, batch) on train, progress labelled. */
gr_status sd_train(gr_model *m, const gr_dataset *train, int64_t steps, const sd_opts *o, uint64_t seed,
                   const char *label);
/* Test accuracy of m on ds. */
gr_status sd_accuracy(gr_model *m, gr_ctx *c, const gr_dataset *ds, double *acc);

/* Parses the task list into names (storage holds the strings). */
int sd_parse_tasks(const char *list, const char **names, char *storage, size_t n);
/* One results.jsonl record. */
gr_status sd_write_record(gr_jsonl *out, const char *phase, const char *method, const char *dataset, uint64_t seed,
                          double acc, const char *const *extra_names, const double *extra, int n_extra);
/* Prints t as markdown to stdout and writes it to dir/name atomically. */
gr_status sd_emit_table(const gr_table *t, const char *dir, const char *name, const char *heading);
/* Common flags (quick presets applied by sd_opts_finish). */
void sd_opts_default(sd_opts *o);
int sd_opts_finish(sd_opts *o, const char *verb);
#endif
