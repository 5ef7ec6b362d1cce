/* cli/grid.c — the transfer grid shared by `graft demo` and `graft study`:
 * for each label budget and seed, a stratified subset of the target
 * labels; for each registered method, a fresh target model prepared by the
 * method, trained and evaluated; one results record per run. */
#include <math.h>
#include <string.h>

#include "cli/runs.h"

typedef struct grid_cell {
  const runs_grid *g;
  const gr_transfer_method *method;
  const char *spec; /* "name" or "name:key=value:..." as listed in the grid */
  const gr_model *source;
  const gr_dataset *train, *test;
  double budget;
  uint64_t seed;
} grid_cell;

static void fill_result(gr_run_result *r, const grid_cell *cell, const gr_model *m, const gr_train_result *res,
                        double seconds) {
  gr_run_result_init(r);
  snprintf(r->method, sizeof r->method, "%s", cell->spec);
  snprintf(r->dataset, sizeof r->dataset, "%s", cell->g->dataset ? cell->g->dataset : "");
  r->budget = cell->budget;
  r->n_labels = cell->train->n;
  r->seed = cell->seed;
  r->accuracy = res->eval.accuracy;
  r->loss = res->eval.loss;
  r->trainable_params = gr_model_param_count(m, true);
  r->total_params = gr_model_param_count(m, false);
  r->seconds = seconds;
  r->peak_rss_bytes = gr_peak_rss_bytes();
  gr_run_result_set_extra(r, "ece", res->eval.ece);
  gr_run_result_set_extra(r, "steps", (double)res->steps);
}

/* Forgetting: the adapted model's accuracy on the source task with the
 * source head swapped in (parameters named like the head, same shapes), the
 * target head restored afterwards. NaN when the heads do not match. */
static double source_accuracy(gr_model *m, const gr_model *source, const char *head, const gr_dataset *test) {
  size_t hn = strlen(head);
  gr_tensor *swap[8][2];
  int n = 0;
  for (int i = 0; i < source->n_entries && n < 8; i++) {
    const gr_named_tensor *e = &source->entries[i];
    if (strncmp(e->name, head, hn) || e->name[hn] != '.') continue;
    gr_tensor *t = gr_model_find(m, e->name);
    if (!t || !gr_same_shape(t, e->t)) return NAN;
    swap[n][0] = t, swap[n++][1] = e->t;
  }
  float *keep[8] = {0};
  bool ok = n > 0;
  for (int k = 0; k < n && ok; k++) {
    size_t bytes = (size_t)swap[k][0]->numel * sizeof(float);
    if (!(keep[k] = gr_malloc(bytes))) ok = false;
    else memcpy(keep[k], swap[k][0]->data, bytes), memcpy(swap[k][0]->data, swap[k][1]->data, bytes);
  }
  gr_ctx *c = ok ? gr_ctx_new(1 << 20, 0) : NULL;
  gr_eval_result ev = {0};
  ok = c && gr_evaluate(m, c, test, 500, &ev) == GR_OK;
  for (int k = 0; k < n; k++)
    if (keep[k]) memcpy(swap[k][0]->data, keep[k], (size_t)swap[k][0]->numel * sizeof(float)), gr_free(keep[k]);
  gr_ctx_free(c);
  return ok ? ev.accuracy : NAN;
}

/* The run's result record, with its forgetting (source accuracy). */
static gr_status grid_record(const grid_cell *cell, gr_model *m, const gr_train_result *res, const runs_monitor *mon,
                             bool diverged, double seconds, gr_jsonl *out, gr_results *rs) {
  const gr_arch_info *arch = gr_arch_lookup(cell->g->arch);
  gr_run_result r;
  fill_result(&r, cell, m, res, seconds);
  r.curve = mon->curve, r.n_curve = mon->n_curve;
  if (diverged) gr_run_result_set_extra(&r, "diverged", 1);
  else if (cell->g->source_test && cell->source && arch)
    gr_run_result_set_extra(&r, "source_accuracy", source_accuracy(m, cell->source, arch->head, cell->g->source_test));
  gr_status s = out ? gr_jsonl_write_result(out, &r) : GR_OK;
  return s ? s : gr_results_add(rs, &r);
}

/* One method on one (budget, seed) subset. */
static gr_status grid_cell_run(const grid_cell *cell, gr_jsonl *out, gr_results *rs, FILE *log) {
  const runs_grid *g = cell->g;
  gr_model *m = gr_model_new(cell->seed * 7919 + 17);
  const gr_arch_info *arch = gr_arch_lookup(g->arch);
  gr_module *root = m && arch ? gr_arch_build(m, g->arch, cell->train->c, cell->train->h, cell->train->w,
                                              cell->train->n_classes) : NULL;
  gr_status s = root ? gr_model_set_root(m, root) : gr_last_status();
  gr_train_cfg cfg = g->train;
  gr_optim_cfg ocfg = g->optim;
  char opts[256] = "";
  const char *colon = strchr(cell->spec, ':');
  snprintf(opts, sizeof opts, "%s", colon ? colon + 1 : "");
  for (char *p = opts; *p; p++) *p = *p == ':' ? ',' : *p;
  gr_transfer_run run = {m,     cell->source, arch ? arch->head : NULL, arch ? arch->early : NULL, opts[0] ? opts : NULL,
                         &cfg,  &ocfg,        false,                    g->source_train,           cell->train};
  gr_peak_rss_reset();
  double t0 = gr_wall_seconds();
  if (!s) s = gr_transfer_prepare(cell->method, &run);
  gr_optim *o = s ? NULL : gr_optim_new(m, &ocfg);
  if (!s && !o) s = gr_last_status();
  if (!s) s = gr_transfer_prepare_optim(cell->method, &run, o);
  gr_train_result res = {0};
  if (!s) {
    cfg.steps = gr_train_total_steps(&cfg, cell->train->n);
    if (cfg.steps < g->min_steps) cfg.steps = g->min_steps;
    cfg.seed = cell->seed;
    char label[192];
    snprintf(label, sizeof label, "%s %g%% seed %llu", cell->spec, cell->budget * 100,
             (unsigned long long)cell->seed);
    runs_monitor mon;
    runs_monitor_start(&mon, label, cfg.steps, g->quiet);
    gr_train_hooks hooks = runs_monitor_hooks(&mon);
    s = gr_train(m, o, cell->train, cell->test, &cfg, &hooks, &res);
    bool diverged = s == GR_ENUMERIC; /* a too-large lr in a sweep: recorded, the grid goes on */
    if (diverged) s = GR_OK, res.eval.accuracy = res.eval.loss = NAN;
    char st[64];
    snprintf(st, sizeof st, diverged ? "diverged" : "test acc %.2f%%", 100 * res.eval.accuracy);
    runs_monitor_finish(&mon, s ? "failed" : st);
    if (!s) s = grid_record(cell, m, &res, &mon, diverged, gr_wall_seconds() - t0, out, rs);
  }
  if (log && !s && g->quiet)
    fprintf(log, "  %-24s %6.2f%% labels seed %llu: test acc %.2f%%\n", cell->spec, cell->budget * 100,
            (unsigned long long)cell->seed, 100 * res.eval.accuracy);
  gr_optim_free(o);
  gr_model_free(m);
  return s;
}

/* With g->holdout > 0: a seeded split of target_train into held-out
 * evaluation images (holdout of them) and the pool the label budgets are
 * drawn from (the rest), for choosing settings without the test set. */
static gr_status holdout_split(const runs_grid *g, const gr_dataset *train, uint64_t seed, gr_dataset **pool,
                               gr_dataset **val) {
  *pool = *val = NULL;
  if (g->holdout <= 0) return GR_OK;
  if (g->holdout >= train->n)
    return gr_error(GR_EARG, "holdout %lld must be below the %lld target training images", (long long)g->holdout,
                    (long long)train->n);
  int64_t *perm = gr_malloc((size_t)train->n * sizeof *perm);
  if (!perm) return gr_error(GR_ENOMEM, "holdout split: out of memory");
  gr_rng r = gr_rng_stream(seed, 0x40dd);
  gr_rng_permutation(&r, train->n, perm);
  *val = gr_dataset_take(train, perm, g->holdout);
  *pool = gr_dataset_take(train, perm + g->holdout, train->n - g->holdout);
  gr_free(perm);
  return *val && *pool ? GR_OK : gr_last_status();
}

static gr_status grid_seed_run(const runs_grid *g, const gr_transfer_method *const *methods, const gr_model *source,
                               const gr_dataset *pool, const gr_dataset *test, double budget, uint64_t seed,
                               gr_jsonl *out, gr_results *rs, FILE *log) {
  gr_dataset *sub = NULL;
  const gr_dataset *train = pool;
  if (budget < 1) {
    gr_status s = gr_dataset_budget(pool, 0, budget, seed, &sub);
    if (s) return s;
    train = sub;
  }
  gr_status s = GR_OK;
  for (int mi = 0; mi < g->n_methods && !s; mi++) {
    grid_cell cell = {g, methods[mi], g->methods[mi], source, train, test, budget, seed};
    s = grid_cell_run(&cell, out, rs, log);
  }
  gr_dataset_free(sub);
  return s;
}

void runs_print_methods(FILE *fp) {
  fprintf(fp, "\nmethods (name, or name:key=value:... with a key of every method (%s) or the method's own):\n",
          gr_transfer_common_keys());
  for (int i = 0; i < gr_transfer_count(); i++) {
    const gr_transfer_method *m = gr_transfer_at(i);
    fprintf(fp, "  %-24s %s%s%s%s\n", m->name, m->about, m->keys ? " [" : "", m->keys ? m->keys : "",
            m->keys ? "]" : "");
  }
}

gr_status runs_grid_run(const runs_grid *g, const gr_model *source, const gr_dataset *target_train,
                        const gr_dataset *target_test, gr_jsonl *out, gr_results *rs, FILE *log) {
  const gr_transfer_method *methods[RUNS_MAX_METHODS];
  for (int i = 0; i < g->n_methods; i++) {
    if (!(methods[i] = gr_transfer_find(g->methods[i]))) return gr_last_status();
    if (strlen(g->methods[i]) >= sizeof ((gr_run_result *)NULL)->method) /* results would merge truncated names */
      return gr_error(GR_EARG, "method spec '%s' is longer than %zu characters", g->methods[i],
                      sizeof ((gr_run_result *)NULL)->method - 1);
  }
  for (int b = 0; b < g->n_budgets; b++) {
    if (!(g->budgets[b] > 0 && g->budgets[b] <= 1)) return gr_error(GR_EARG, "label budget %g not in (0,1]", g->budgets[b]);
    for (int si = 0; si < g->n_seeds; si++) {
      gr_dataset *pool = NULL, *val = NULL;
      gr_status s = holdout_split(g, target_train, g->seeds[si], &pool, &val);
      if (!s)
        s = grid_seed_run(g, methods, source, pool ? pool : target_train, val ? val : target_test, g->budgets[b],
                          g->seeds[si], out, rs, log);
      gr_dataset_free(pool), gr_dataset_free(val);
      if (s) return s;
    }
  }
  return GR_OK;
}
