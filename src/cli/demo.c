/* cli/demo.c — `graft demo`: pretrain a CNN on Fashion-MNIST classes 0-4,
 * transfer it to classes 5-9 with 1%, 10% and 100% of the target labels by
 * several methods (the transfer registry), print a table and write
 * results.jsonl and report.html. --quick is a one-minute version for tests. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/demo.h"

typedef struct demo_data {
  gr_dataset *src_train, *src_test, *tgt_train, *tgt_test;
} demo_data;

static void demo_data_free(demo_data *d) {
  gr_dataset_free(d->src_train), gr_dataset_free(d->src_test);
  gr_dataset_free(d->tgt_train), gr_dataset_free(d->tgt_test);
}

/* classes [lo, lo+5) of split, normalized; limit > 0 subsamples. */
static gr_status load_classes(const char *split, int lo, int64_t limit, uint64_t seed, gr_dataset **out) {
  gr_data_spec spec;
  char s[96];
  snprintf(s, sizeof s, "fmnist:split=%s,classes=%d-%d", split, lo, lo + 4);
  gr_status st = gr_data_spec_parse(s, &spec);
  if (!st && limit > 0) spec.limit = limit;
  return st ? st : gr_data_load(&spec, NULL, seed, out);
}

static gr_status demo_load(const demo_opts *o, demo_data *d) {
  int64_t tr = o->quick ? 6000 : 0, te = o->quick ? 1000 : 0;
  gr_status s = load_classes("train", 0, tr, 1, &d->src_train);
  if (!s) s = load_classes("test", 0, te, 2, &d->src_test);
  if (!s) s = load_classes("train", 5, tr, 3, &d->tgt_train);
  if (!s) s = load_classes("test", 5, te, 4, &d->tgt_test);
  return s;
}

/* The source model every demo seed pretrains (or loads with source_dir):
 * the arch on Fashion-MNIST classes 0-4, 1x28x28 images, 5 classes. */
static gr_model_config demo_source_config(const demo_opts *o) {
  gr_model_config mc = {.in_ch = 1, .h = 28, .w = 28, .n_classes = 5};
  snprintf(mc.arch, sizeof mc.arch, "%s", o->arch);
  snprintf(mc.data, sizeof mc.data, "fmnist:classes=0-4");
  return mc;
}

/* Writes the source model of one seed as the model directory
 * <out>/source-seed<N> (config.json + model.safetensors): it can be
 * fine-tuned again with `graft finetune`, and the PyTorch peer probes the
 * very same weights with --source-dir (a paired comparison). */
static gr_status demo_save_source(const demo_opts *o, uint64_t seed, const gr_model *m) {
  char dir[1100];
  snprintf(dir, sizeof dir, "%s/source-seed%llu", o->out, (unsigned long long)seed);
  if (mkdir(dir, 0777) && errno != EEXIST) return gr_error(GR_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
  gr_model_config mc = demo_source_config(o);
  return gr_model_save_dir(m, &mc, dir);
}

/* Trains the source model of one seed; records it as a "pretrain" result. */
static gr_status demo_pretrain(const demo_opts *o, uint64_t seed, const demo_data *d, gr_model **out, gr_jsonl *jl,
                               gr_results *rs) {
  gr_model_config mc = demo_source_config(o);
  gr_model *m = gr_model_new(seed);
  gr_module *root = m ? gr_arch_build(m, mc.arch, mc.in_ch, mc.h, mc.w, mc.n_classes) : NULL;
  gr_status s = root ? gr_model_set_root(m, root) : gr_last_status();
  gr_optim_cfg oc = gr_sgd_cfg((float)o->lr, (float)o->momentum, 0, false);
  gr_optim *opt = s ? NULL : gr_optim_new(m, &oc);
  if (!s && !opt) s = gr_last_status();
  gr_train_cfg cfg = {.epochs = o->source_epochs, .batch = o->batch, .seed = seed};
  gr_train_result res = {0};
  gr_peak_rss_reset();
  double t0 = gr_wall_seconds();
  runs_monitor mon;
  if (!s) {
    char label[64];
    snprintf(label, sizeof label, "pretrain on classes 0-4, seed %llu", (unsigned long long)seed);
    runs_monitor_start(&mon, label, gr_train_total_steps(&cfg, d->src_train->n), o->quiet);
    gr_train_hooks hooks = runs_monitor_hooks(&mon);
    s = gr_train(m, opt, d->src_train, d->src_test, &cfg, &hooks, &res);
    char st[64];
    snprintf(st, sizeof st, "source test acc %.2f%%", 100 * res.eval.accuracy);
    runs_monitor_finish(&mon, s ? "failed" : st);
  }
  if (!s) {
    gr_run_result r;
    gr_run_result_init(&r);
    snprintf(r.phase, sizeof r.phase, "pretrain");
    snprintf(r.method, sizeof r.method, "%s", o->arch);
    snprintf(r.dataset, sizeof r.dataset, "fmnist:classes=0-4");
    r.budget = 1.0, r.n_labels = d->src_train->n, r.seed = seed;
    r.accuracy = res.eval.accuracy, r.loss = res.eval.loss;
    r.trainable_params = r.total_params = gr_model_param_count(m, false);
    r.seconds = gr_wall_seconds() - t0, r.peak_rss_bytes = gr_peak_rss_bytes();
    r.curve = mon.curve, r.n_curve = mon.n_curve;
    gr_run_result_set_extra(&r, "ece", res.eval.ece);
    s = gr_jsonl_write_result(jl, &r);
    if (!s) s = gr_results_add(rs, &r);
  }
  if (!s) s = demo_save_source(o, seed, m);
  gr_optim_free(opt);
  if (s) gr_model_free(m);
  else *out = m;
  return s;
}

static int demo_grid_setup(const demo_opts *o, runs_grid *g, char *storage, size_t n) {
  memset(g, 0, sizeof *g);
  g->arch = o->arch;
  g->dataset = "fmnist:classes=5-9";
  g->n_methods = runs_parse_list(o->methods, g->methods, RUNS_MAX_METHODS, storage, n);
  if (g->n_methods <= 0) return cli_fail("--methods: bad list '%s' (at most %d methods, %d characters)", o->methods,
                                       RUNS_MAX_METHODS, RUNS_MAX_LIST_CHARS - 1);
  for (int i = 0; i < g->n_methods; i++)
    if (!gr_transfer_find(g->methods[i])) return cli_fail_status("--methods");
  g->n_budgets = runs_parse_doubles(o->budgets, g->budgets, RUNS_MAX_BUDGETS);
  if (g->n_budgets <= 0) return cli_fail("--budgets: bad list '%s' (e.g. 0.01,0.1,1 or 1%%,10%%)", o->budgets);
  if (o->seeds < 1 || o->seeds > RUNS_MAX_SEEDS) return cli_fail("--seeds must be 1..%d", RUNS_MAX_SEEDS);
  g->n_seeds = o->seeds;
  for (int i = 0; i < o->seeds; i++) g->seeds[i] = (uint64_t)o->seed + (uint64_t)i;
  g->optim = gr_sgd_cfg((float)o->lr, (float)o->momentum, 0, false);
  g->train = (gr_train_cfg){.epochs = o->target_epochs, .batch = o->batch};
  g->min_steps = o->min_steps;
  g->holdout = o->holdout;
  g->quiet = o->quiet;
  return CLI_OK;
}

static gr_status demo_report(const demo_opts *o, const gr_results *rs, double seconds) {
  char path[1100], config[512];
  snprintf(config, sizeof config,
           "graft demo%s --seed %d --seeds %d --arch %s\nsource: fmnist classes 0-4, %d epochs; target: classes 5-9, "
           "budgets %s, %d epochs (at least %lld steps)\nmethods: %s\nSGD lr %g momentum %g, batch %d",
           o->quick ? " --quick" : "", o->seed, o->seeds, o->arch, o->source_epochs, o->budgets, o->target_epochs,
           (long long)o->min_steps, o->methods, o->lr, o->momentum, o->batch);
  gr_report_info info = {"graft demo: Fashion-MNIST 0-4 -> 5-9",
                         "A CNN pretrained on Fashion-MNIST classes 0-4 is transferred to classes 5-9 with a "
                         "fraction of the target labels, by each method; accuracy is on the full target test set.",
                         config, gr_threads(), seconds};
  return gr_report_write_html(runs_path(path, sizeof path, o->out, "report.html"), &info, rs);
}

/* The source model of one seed from o->source_dir/source-seed<N> (written
 * by an earlier demo or study), checked against the demo's arch and shapes. */
static gr_status demo_load_source(const demo_opts *o, uint64_t seed, gr_model **out) {
  char dir[1100];
  snprintf(dir, sizeof dir, "%s/source-seed%llu", o->source_dir, (unsigned long long)seed);
  gr_model_config mc, want = demo_source_config(o);
  gr_status s = gr_model_load_dir(dir, seed, &mc, out);
  if (!s && (strcmp(mc.arch, want.arch) || mc.in_ch != want.in_ch || mc.h != want.h || mc.w != want.w ||
             mc.n_classes != want.n_classes)) {
    s = gr_error(GR_EARG, "%s: source model is %s %dx%dx%d with %d classes, the study wants %s %dx%dx%d with %d", dir,
                 mc.arch, mc.in_ch, mc.h, mc.w, mc.n_classes, want.arch, want.in_ch, want.h, want.w, want.n_classes);
    gr_model_free(*out), *out = NULL;
  }
  return s;
}

/* Every seed pretrains its own source model and transfers it, so the spread
 * over seeds includes the source model's (one shared source would make every
 * seed of a cell depend on one pretraining run). */
static gr_status demo_seeds(const demo_opts *o, const runs_grid *all, const demo_data *d, gr_jsonl *jl,
                            gr_results *rs) {
  gr_status s = GR_OK;
  for (int i = 0; i < all->n_seeds && !s; i++) {
    runs_grid g = *all;
    g.seeds[0] = all->seeds[i], g.n_seeds = 1;
    g.source_train = d->src_train, g.source_test = d->src_test;
    gr_model *source = NULL;
    s = o->source_dir ? demo_load_source(o, g.seeds[0], &source) : demo_pretrain(o, g.seeds[0], d, &source, jl, rs);
    if (!s) s = runs_grid_run(&g, source, d->tgt_train, d->tgt_test, jl, rs, stderr);
    gr_model_free(source);
  }
  return s;
}

int demo_run(const demo_opts *o) {
  double t0 = gr_wall_seconds();
  char storage[RUNS_MAX_LIST_CHARS], path[1100];
  runs_grid g;
  int rc = demo_grid_setup(o, &g, storage, sizeof storage);
  if (rc) return rc;
  if (!gr_arch_lookup(o->arch)) return cli_fail_status("--arch");
  if ((rc = runs_prepare_outdir(o->out, o->force))) return rc;
  demo_data d = {0};
  if (demo_load(o, &d)) {
    demo_data_free(&d);
    return cli_fail_status("loading Fashion-MNIST");
  }
  gr_jsonl *jl = gr_jsonl_open(runs_path(path, sizeof path, o->out, "results.jsonl"), true);
  gr_results rs = {0};
  gr_status s = jl ? demo_seeds(o, &g, &d, jl, &rs) : gr_last_status();
  if (!s) s = gr_results_print_summary(&rs, stdout, GR_TABLE_TEXT);
  if (!s) s = demo_report(o, &rs, gr_wall_seconds() - t0);
  gr_status sc = gr_jsonl_close(jl);
  if (!s) s = sc;
  gr_results_free(&rs);
  demo_data_free(&d);
  if (s) return cli_fail_status("demo");
  printf("wrote %s/results.jsonl and %s/report.html (%.1fs)\n", o->out, o->out, gr_wall_seconds() - t0);
  return CLI_OK;
}

void demo_opts_default(demo_opts *o) {
  *o = (demo_opts){.seed = 1, .threads = 0, .seeds = 1, .source_epochs = 3, .target_epochs = 3, .batch = 64,
                   .min_steps = 100, .lr = 0.01, .momentum = 0.9, .out = "demo-out", .arch = "lenet",
                   .methods = "scratch,linear-probe,finetune,finetune-frozen-early", .budgets = "0.01,0.1,1"};
}

int demo_opts_check(demo_opts *o) {
  if (o->seeds < 1 || o->source_epochs < 1 || o->target_epochs < 1 || o->batch < 1 || o->min_steps < 0 ||
      o->threads < 0 || !(o->lr > 0) || !(o->momentum >= 0)) {
    fprintf(stderr, "graft: seeds, source/target epochs and batch must be >= 1, min steps >= 0, lr > 0\n");
    return CLI_USAGE;
  }
  if (o->quick) {
    o->source_epochs = 1, o->target_epochs = 1;
    if (o->min_steps > 60) o->min_steps = 60;
  }
  return CLI_OK;
}

int cmd_demo(int argc, char **argv) {
  demo_opts o;
  demo_opts_default(&o);
  const cli_opt opts[] = {
      {"--quick", CLI_BOOL, &o.quick, "a one-minute version: 6000 train / 1000 test images per task, 1 epoch"},
      {"--out", CLI_STR, &o.out, "output directory (results.jsonl, report.html)"},
      {"--force", CLI_BOOL, &o.force, "overwrite a non-empty output directory"},
      {"--seed", CLI_INT, &o.seed, "base seed (seeds are seed, seed+1, ...)"},
      {"--seeds", CLI_INT, &o.seeds, "seeds per (method, budget)"},
      {"--threads", CLI_INT, &o.threads, "threads (0: GRAFT_THREADS or all cores)"},
      {"--arch", CLI_STR, &o.arch, "architecture: lenet|mlp|resnet8|resnet20"},
      {"--methods", CLI_STR, &o.methods, "comma-separated transfer methods"},
      {"--budgets", CLI_STR, &o.budgets, "comma-separated label fractions of the target training set"},
      {"--source-epochs", CLI_INT, &o.source_epochs, "pretraining epochs"},
      {"--target-epochs", CLI_INT, &o.target_epochs, "epochs of each transfer run"},
      {"--min-steps", CLI_I64, &o.min_steps, "at least this many steps per transfer run"},
      {"--lr", CLI_FLOAT, &o.lr, "SGD learning rate"},
      {"--momentum", CLI_FLOAT, &o.momentum, "SGD momentum"},
      {"--batch", CLI_INT, &o.batch, "batch size"},
      {"--quiet", CLI_BOOL, &o.quiet, "no progress bars (one line per run)"},
  };
  cli_spec spec = {"demo", "graft demo [--quick] [--out DIR] [--force] [options]",
                   "Pretrain a CNN on Fashion-MNIST classes 0-4, transfer it to classes 5-9 with 1%, 10% and 100% "
                   "of the target labels by several methods, print a table, write results.jsonl and report.html.",
                   opts, (int)(sizeof opts / sizeof opts[0]), 0, 0};
  const char *pos[1];
  int np = 0, rc = cli_parse(&spec, argc, argv, pos, &np);
  if (rc == CLI_HELP) return runs_print_methods(stdout), CLI_OK;
  if (rc) return rc;
  if ((rc = demo_opts_check(&o))) return rc;
  gr_set_threads(o.threads);
  return demo_run(&o);
}
