/* cli/demo.h — the demo protocol as options, shared by `graft demo` and
 * `graft study` (which reads the same options from a config file). */
#ifndef GRAFT_CLI_DEMO_H
#define GRAFT_CLI_DEMO_H
#include "cli/runs.h"

typedef struct demo_opts {
  bool quick, force, quiet;
  int seed, threads, seeds, source_epochs, target_epochs, batch;
  int64_t min_steps;
  int64_t holdout; /* study: evaluate on held-out target training images (runs_grid.holdout) */
  double lr, momentum;
  const char *out, *arch, *methods, *budgets;
  const char *source_dir; /* study: load DIR/source-seed<N> instead of pretraining (NULL: pretrain) */
} demo_opts;

void demo_opts_default(demo_opts *o);
/* Validates (usage error: prints, returns CLI_USAGE) and applies --quick. */
int demo_opts_check(demo_opts *o);
/* Pretrain on classes 0-4, the transfer grid on 5-9, table, results.jsonl,
 * report.html in o->out. */
int demo_run(const demo_opts *o);

#endif
