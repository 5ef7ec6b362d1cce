/* cli/study_merge.c — `graft study merge --out DIR [--quick]`: multi-task
 * merging of graft-made fine-tunes. A 10-class LeNet is pretrained on plain
 * Fashion-MNIST (the base θ0); one copy is fine-tuned per domain shift (the
 * tasks: inverted, rotated, flipped images, all 10 classes, so the head is
 * shared and each task vector τ_t = θ_t − θ0 covers the whole network). The
 * fine-tunes are then merged into one model by
 *   task_arithmetic  θ0 + λ Σ τ_t                       (Ilharco et al. 2023)
 *   ties             trim to density, elect sign, disjoint mean, × λ
 *   dare_ties/linear random drop to density, L1 rescale, (sign election), × λ
 *   atlas            θ0 + Σ_t Σ_b λ_{t,b} τ_{t,b}, Λ learned (graft/atlas.h),
 *                    from 0 (the paper) and from task arithmetic's λ
 * λ of the merges is picked on a validation split (held-out training images
 * of every task), where aTLAS also learns Λ; everything is reported on the
 * test split: per-task accuracy, its mean, and the accuracy normalized by
 * each task's own fine-tune (mean over tasks), plus plain-domain accuracy.
 * Writes results.jsonl and merge_table.md. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "cli/study_domains.h"

#define SM_MAX_METHODS 8

typedef struct sm_opts {
  sd_opts sd;
  double ties_density, dare_density, lambda_max, lambda_step;
  int64_t atlas_steps, atlas_batch;
  double atlas_lr;
} sm_opts;

/* One merged model of one seed. */
typedef struct sm_row {
  char method[32];
  double lambda;            /* picked on validation (NaN: not a global-λ method) */
  int64_t coefficients;     /* trained or picked scalars */
  double acc[SD_MAX_TASKS]; /* test accuracy per task */
  double test_norm, val_norm, orig;
} sm_row;

typedef struct sm_seed {
  const sm_opts *o;
  const char *tasks[SD_MAX_TASKS];
  int T;
  uint64_t seed;
  gr_model *base, *ft[SD_MAX_TASKS], *m; /* m: the model being evaluated */
  gr_dataset *val[SD_MAX_TASKS], *test[SD_MAX_TASKS], *val_all, *orig;
  double ft_val[SD_MAX_TASKS], ft_test[SD_MAX_TASKS];
  gr_ctx *c;
  sm_row rows[SM_MAX_METHODS];
  int n_rows;
} sm_seed;

/* Mean accuracy normalized by each task's fine-tune, on val or test; acc[] gets the raw accuracies. */
static gr_status sm_eval(sm_seed *z, bool val, double *acc, double *norm) {
  double sum = 0;
  for (int t = 0; t < z->T; t++) {
    gr_status s = sd_accuracy(z->m, z->c, val ? z->val[t] : z->test[t], &acc[t]);
    if (s) return s;
    sum += acc[t] / (val ? z->ft_val[t] : z->ft_test[t]);
  }
  *norm = sum / z->T;
  return GR_OK;
}

/* Test-side numbers of the model now in z->m into a new row. */
static gr_status sm_finish_row(sm_seed *z, const char *method, double lambda, int64_t coefficients, double val_norm) {
  sm_row *r = &z->rows[z->n_rows++];
  snprintf(r->method, sizeof r->method, "%s", method);
  r->lambda = lambda, r->coefficients = coefficients, r->val_norm = val_norm;
  gr_status s = sm_eval(z, false, r->acc, &r->test_norm);
  return s ? s : sd_accuracy(z->m, z->c, z->orig, &r->orig);
}

/* The merge direction d (θ = θ0 + λ d) of a mergekit method with weights 1, λ 1. */
static gr_status sm_direction(sm_seed *z, gr_merge_method kind, double density, float *dir) {
  const gr_model *b = z->base;
  gr_merge_model_params p[SD_MAX_TASKS];
  for (int t = 0; t < z->T; t++) p[t] = gr_merge_model_params_defaults(), p[t].weight = 1, p[t].density = density;
  for (int i = 0; i < b->n_entries; i++) {
    const gr_named_tensor *e = &b->entries[i];
    if (e->buffer) continue;
    const float *models[SD_MAX_TASKS];
    for (int t = 0; t < z->T; t++) models[t] = z->ft[t]->data + e->offset;
    gr_merge_args a = gr_merge_args_defaults(kind);
    a.name = e->name, a.numel = e->t->numel, a.ndim = e->t->ndim, a.shape = e->t->shape;
    a.base = b->data + e->offset, a.n_models = z->T, a.models = models, a.params = p, a.lambda = 1;
    a.seed = z->seed;
    gr_status s = gr_merge_tensor(&a, dir + e->offset, NULL);
    if (s) return s;
    gr_taskvec_axpy(dir + e->offset, NULL, 1.0, dir + e->offset, b->data + e->offset, e->t->numel);
  }
  return GR_OK;
}

/* Sweeps λ on validation for one direction; leaves the best in z->m and returns it. */
static gr_status sm_sweep(sm_seed *z, const float *dir, double *best_lambda, double *best_norm) {
  double acc[SD_MAX_TASKS];
  *best_norm = -1, *best_lambda = 0;
  int n = (int)floor(z->o->lambda_max / z->o->lambda_step + 1e-9);
  for (int k = 0; k <= n; k++) {
    double lam = k * z->o->lambda_step, norm;
    gr_taskvec_axpy(z->m->data, z->base->data, lam, dir, NULL, z->base->numel);
    gr_status s = sm_eval(z, true, acc, &norm);
    if (s) return s;
    if (norm > *best_norm) *best_norm = norm, *best_lambda = lam;
  }
  gr_taskvec_axpy(z->m->data, z->base->data, *best_lambda, dir, NULL, z->base->numel);
  return GR_OK;
}

static gr_status sm_global_methods(sm_seed *z, double *ta_lambda) {
  const struct {
    const char *name;
    gr_merge_method kind;
    double density;
  } ms[] = {{"task_arithmetic", GR_MERGE_TASK_ARITHMETIC, 1.0},
            {"ties", GR_MERGE_TIES, z->o->ties_density},
            {"dare_ties", GR_MERGE_DARE_TIES, z->o->dare_density},
            {"dare_linear", GR_MERGE_DARE_LINEAR, z->o->dare_density}};
  float *dir = gr_malloc((size_t)z->base->numel * sizeof(float) + 4);
  gr_status s = dir ? GR_OK : gr_error(GR_ENOMEM, "study merge: out of memory");
  for (size_t i = 0; !s && i < sizeof ms / sizeof ms[0]; i++) {
    double lam, vnorm;
    s = sm_direction(z, ms[i].kind, ms[i].density, dir);
    if (!s) s = sm_sweep(z, dir, &lam, &vnorm);
    if (!s) s = sm_finish_row(z, ms[i].name, lam, 1, vnorm);
    if (!s && i == 0) *ta_lambda = lam;
  }
  gr_free(dir);
  return s;
}

static gr_status sm_atlas(sm_seed *z, double ta_lambda) {
  float *tv[SD_MAX_TASKS] = {0};
  gr_status s = GR_OK;
  for (int t = 0; !s && t < z->T; t++) {
    tv[t] = gr_malloc((size_t)z->base->numel * sizeof(float) + 4);
    if (!tv[t]) s = gr_error(GR_ENOMEM, "study merge: out of memory");
    else gr_taskvec_axpy(tv[t], NULL, 1.0, z->ft[t]->data, z->base->data, z->base->numel);
  }
  if (!s) sd_copy_weights(z->m, z->base);
  gr_atlas *a = s ? NULL : gr_atlas_new(z->m, z->T, (const float *const *)tv);
  if (!s && !a) s = gr_last_status();
  gr_atlas_cfg cfg = gr_atlas_cfg_default();
  cfg.steps = z->o->atlas_steps, cfg.batch = z->o->atlas_batch, cfg.lr = (float)z->o->atlas_lr;
  cfg.weight_decay = 0, cfg.seed = z->seed;
  for (int run = 0; !s && run < 2; run++) {
    gr_atlas_set_all(a, run == 0 ? 0.0f : (float)ta_lambda);
    gr_atlas_fit_result res;
    char label[64];
    snprintf(label, sizeof label, "atlas%s seed %llu", run ? " from TA" : "", (unsigned long long)z->seed);
    runs_monitor mon;
    runs_monitor_start(&mon, label, cfg.steps, z->o->sd.quiet);
    gr_train_hooks hooks = runs_monitor_hooks(&mon);
    s = gr_atlas_fit(a, z->val_all, NULL, &cfg, &hooks, &res);
    runs_monitor_finish(&mon, s ? "failed" : "done");
    double acc[SD_MAX_TASKS], vnorm = NAN;
    if (!s) s = sm_eval(z, true, acc, &vnorm);
    int64_t n_coef = (int64_t)gr_atlas_n_tv(a) * gr_atlas_n_blocks(a);
    if (!s) s = sm_finish_row(z, run ? "atlas (init: TA lambda)" : "atlas (init 0)", NAN, n_coef, vnorm);
  }
  gr_atlas_free(a);
  for (int t = 0; t < z->T; t++) gr_free(tv[t]);
  return s;
}

/* Base and fine-tunes, the evaluation sets and the fine-tunes' own accuracies. */
static gr_status sm_prepare(sm_seed *z, const sd_data *d) {
  const sd_opts *o = &z->o->sd;
  int64_t n_pre = o->base_steps * o->batch, n_ft = o->ft_steps * o->batch;
  gr_dataset *pre = NULL, *ft = NULL;
  char label[64];
  z->base = sd_lenet(z->seed), z->m = sd_lenet(z->seed);
  gr_status s = z->base && z->m ? sd_train_set(d, "none", 0, n_pre, &pre) : gr_last_status();
  snprintf(label, sizeof label, "base (plain) seed %llu", (unsigned long long)z->seed);
  if (!s) s = sd_train(z->base, pre, o->base_steps, o, z->seed, label);
  gr_dataset_free(pre);
  for (int t = 0; !s && t < z->T; t++) {
    if (!(z->ft[t] = sd_lenet(z->seed))) s = gr_last_status();
    if (!s) sd_copy_weights(z->ft[t], z->base);
    if (!s) s = sd_train_set(d, z->tasks[t], n_pre + t * n_ft, n_ft, &ft);
    snprintf(label, sizeof label, "finetune %s seed %llu", z->tasks[t], (unsigned long long)z->seed);
    if (!s) s = sd_train(z->ft[t], ft, o->ft_steps, o, z->seed + 100 + t, label);
    gr_dataset_free(ft), ft = NULL;
    if (!s) s = sd_val_set(d, z->tasks[t], t, o->val_per_task, &z->val[t]);
    if (!s) s = sd_test_set(d, z->tasks[t], o->test_per_task, &z->test[t]);
    if (!s) s = sd_accuracy(z->ft[t], z->c, z->val[t], &z->ft_val[t]);
    if (!s) s = sd_accuracy(z->ft[t], z->c, z->test[t], &z->ft_test[t]);
  }
  if (!s) s = sd_concat(z->val, z->T, &z->val_all);
  if (!s) s = sd_test_set(d, "none", o->test_per_task, &z->orig);
  return s;
}

static void sm_seed_free(sm_seed *z) {
  gr_model_free(z->base), gr_model_free(z->m);
  for (int t = 0; t < z->T; t++) gr_model_free(z->ft[t]), gr_dataset_free(z->val[t]), gr_dataset_free(z->test[t]);
  gr_dataset_free(z->val_all), gr_dataset_free(z->orig);
  gr_ctx_free(z->c);
}

/* The individual fine-tunes (each on its own task) and the base, as rows. */
static gr_status sm_reference_rows(sm_seed *z) {
  sm_row *r = &z->rows[z->n_rows++];
  snprintf(r->method, sizeof r->method, "fine-tunes (own task)");
  r->lambda = NAN, r->coefficients = 0, r->test_norm = 1, r->val_norm = 1, r->orig = NAN;
  for (int t = 0; t < z->T; t++) r->acc[t] = z->ft_test[t];
  sd_copy_weights(z->m, z->base);
  double acc[SD_MAX_TASKS], vnorm;
  gr_status s = sm_eval(z, true, acc, &vnorm);
  return s ? s : sm_finish_row(z, "base (no merge)", 0, 0, vnorm);
}

static gr_status sm_write_records(const sm_seed *z, gr_jsonl *out) {
  static const char *names[] = {"normalized_accuracy", "val_normalized_accuracy", "plain_accuracy", "lambda",
                                "coefficients"};
  gr_status s = GR_OK;
  for (int i = 0; !s && i < z->n_rows; i++) {
    const sm_row *r = &z->rows[i];
    double mean = 0;
    for (int t = 0; !s && t < z->T; t++) {
      double norm = r->acc[t] / z->ft_test[t];
      s = sd_write_record(out, "merge", r->method, z->tasks[t], z->seed, r->acc[t], names, &norm, 1);
      mean += r->acc[t] / z->T;
    }
    double ex[5] = {r->test_norm, r->val_norm, r->orig, r->lambda, (double)r->coefficients};
    if (!s) s = sd_write_record(out, "merge", r->method, "mean of tasks", z->seed, mean, names, ex, 5);
  }
  return s;
}

static gr_status sm_run_seed(sm_seed *z, const sd_data *d, gr_jsonl *out) {
  z->c = gr_ctx_new(8 << 20, z->seed);
  gr_status s = z->c ? sm_prepare(z, d) : gr_error(GR_ENOMEM, "study merge: out of memory");
  double ta_lambda = 0;
  if (!s) s = sm_reference_rows(z);
  if (!s) s = sm_global_methods(z, &ta_lambda);
  if (!s) s = sm_atlas(z, ta_lambda);
  if (!s) s = sm_write_records(z, out);
  return s;
}

/* Mean (± sample std) over seeds of rows[seed][i]. */
static void mean_std(sm_seed *const *zs, int n, int i, size_t field, double *mean, double *sd) {
  double s = 0, ss = 0;
  for (int k = 0; k < n; k++) s += *(const double *)((const char *)&zs[k]->rows[i] + field);
  *mean = s / n;
  for (int k = 0; k < n; k++) {
    double v = *(const double *)((const char *)&zs[k]->rows[i] + field) - *mean;
    ss += v * v;
  }
  *sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

static gr_status sm_table(sm_seed *const *zs, int n, const char *dir) {
  const sm_seed *z0 = zs[0];
  const char *heads[6 + SD_MAX_TASKS];
  int nc = 0;
  heads[nc++] = "method", heads[nc++] = "lambda (val)", heads[nc++] = "coefs";
  for (int t = 0; t < z0->T; t++) heads[nc++] = z0->tasks[t];
  heads[nc++] = "normalized acc (test)", heads[nc++] = "normalized acc (val)", heads[nc++] = "plain acc";
  gr_table *tb = gr_table_new(nc, heads);
  gr_status s = tb ? GR_OK : gr_error(GR_ENOMEM, "study merge: out of memory");
  for (int i = 0; !s && i < z0->n_rows; i++) {
    char line[512], lam_s[16] = "", plain_s[16] = "-";
    double m, sd, lam, vn, pl;
    mean_std(zs, n, i, offsetof(sm_row, lambda), &lam, &sd);
    if (!isnan(lam)) snprintf(lam_s, sizeof lam_s, "%.2f", lam);
    int k = snprintf(line, sizeof line, "%s\t%s\t%lld", z0->rows[i].method, lam_s, (long long)z0->rows[i].coefficients);
    for (int t = 0; t < z0->T; t++) {
      mean_std(zs, n, i, offsetof(sm_row, acc) + (size_t)t * sizeof(double), &m, &sd);
      k += snprintf(line + k, sizeof line - (size_t)k, "\t%.2f%%", 100 * m);
    }
    mean_std(zs, n, i, offsetof(sm_row, val_norm), &vn, &sd);
    mean_std(zs, n, i, offsetof(sm_row, orig), &pl, &sd);
    if (!isnan(pl)) snprintf(plain_s, sizeof plain_s, "%.2f%%", 100 * pl);
    mean_std(zs, n, i, offsetof(sm_row, test_norm), &m, &sd);
    if (n > 1) k += snprintf(line + k, sizeof line - (size_t)k, "\t%.2f ± %.2f%%", 100 * m, 100 * sd);
    else k += snprintf(line + k, sizeof line - (size_t)k, "\t%.2f%%", 100 * m);
    snprintf(line + k, sizeof line - (size_t)k, "\t%.2f%%\t%s", 100 * vn, plain_s);
    s = gr_table_addf(tb, "%s", line);
  }
  char heading[256];
  snprintf(heading, sizeof heading, "## graft study merge: %d tasks, %d seed%s (accuracy: test mean over seeds)", z0->T, n,
           n > 1 ? "s" : "");
  if (!s) s = sd_emit_table(tb, dir, "merge_table.md", heading);
  gr_table_free(tb);
  return s;
}

static int sm_run(const sm_opts *o, const char *const *tasks, int T) {
  sd_data d;
  gr_status s = sd_data_load(&d);
  char path[1100];
  gr_jsonl *out = s ? NULL : gr_jsonl_open(runs_path(path, sizeof path, o->sd.out, "results.jsonl"), true);
  if (!s && !out) s = gr_last_status();
  sm_seed *zs[RUNS_MAX_SEEDS] = {0};
  int n = 0;
  for (; !s && n < o->sd.seeds; n++) {
    zs[n] = gr_calloc(1, sizeof *zs[n]);
    if (!zs[n]) {
      s = gr_error(GR_ENOMEM, "study merge: out of memory");
      break;
    }
    *zs[n] = (sm_seed){.o = o, .T = T, .seed = (uint64_t)o->sd.seed + (uint64_t)n};
    memcpy(zs[n]->tasks, tasks, (size_t)T * sizeof *tasks);
    sd_data_reseed(&d, zs[n]->seed, (int64_t)T * o->sd.val_per_task);
    s = sm_run_seed(zs[n], &d, out);
  }
  if (!s) s = sm_table(zs, n, o->sd.out);
  gr_status cs = gr_jsonl_close(out);
  if (!s) s = cs;
  for (int k = 0; k < n; k++) {
    if (zs[k]) sm_seed_free(zs[k]);
    gr_free(zs[k]);
  }
  sd_data_free(&d);
  return s ? cli_fail_status("study merge") : CLI_OK;
}

int study_merge_main(int argc, char **argv) {
  sm_opts o = {.ties_density = 0.2, .dare_density = 0.5, .lambda_max = 2.0, .lambda_step = 0.05, .atlas_steps = 300,
               .atlas_batch = 128, .atlas_lr = 1e-2};
  sd_opts_default(&o.sd);
  o.sd.tasks = "invert,rot90,vflip,rot270";
  const cli_opt opts[] = {
      {"--out", CLI_STR, &o.sd.out, "output directory (results.jsonl, merge_table.md)"},
      {"--quick", CLI_BOOL, &o.sd.quick, "tiny run (seconds): checks the pipeline, not the claims"},
      {"--tasks", CLI_STR, &o.sd.tasks, "domain shifts fine-tuned and merged (none, invert, rot90, rot180, rot270, hflip, vflip, transpose)"},
      {"--seed", CLI_INT, &o.sd.seed, "first seed"},
      {"--seeds", CLI_INT, &o.sd.seeds, "seeds (each pretrains its own base)"},
      {"--base-steps", CLI_I64, &o.sd.base_steps, "SGD steps pretraining the base on plain images"},
      {"--ft-steps", CLI_I64, &o.sd.ft_steps, "SGD steps of each fine-tune"},
      {"--batch", CLI_I64, &o.sd.batch, "batch size of pretraining and fine-tuning"},
      {"--lr", CLI_FLOAT, &o.sd.lr, "SGD learning rate"},
      {"--momentum", CLI_FLOAT, &o.sd.momentum, "SGD momentum"},
      {"--val", CLI_I64, &o.sd.val_per_task, "validation images per task (pick lambda, train aTLAS)"},
      {"--test", CLI_I64, &o.sd.test_per_task, "test images per task"},
      {"--ties-density", CLI_FLOAT, &o.ties_density, "ties: fraction of each task vector kept"},
      {"--dare-density", CLI_FLOAT, &o.dare_density, "dare_*: keep probability"},
      {"--lambda-max", CLI_FLOAT, &o.lambda_max, "largest lambda of the validation sweep"},
      {"--lambda-step", CLI_FLOAT, &o.lambda_step, "step of the lambda sweep"},
      {"--atlas-steps", CLI_I64, &o.atlas_steps, "aTLAS AdamW steps"},
      {"--atlas-batch", CLI_I64, &o.atlas_batch, "aTLAS batch"},
      {"--atlas-lr", CLI_FLOAT, &o.atlas_lr, "aTLAS AdamW learning rate (weight decay 0, clip 1)"},
      {"--threads", CLI_INT, &o.sd.threads, "threads (0: GRAFT_THREADS or all cores)"},
      {"--force", CLI_BOOL, &o.sd.force, "overwrite a non-empty output directory"},
      {"--quiet", CLI_BOOL, &o.sd.quiet, "no progress bars"},
  };
  cli_spec spec = {"study merge", "graft study merge --out DIR [--quick] [--tasks invert,rot90,...] [--seeds N]",
                   "Fine-tune a Fashion-MNIST LeNet on several domain shifts, merge the fine-tunes (task arithmetic, "
                   "TIES, DARE with lambda picked on validation; aTLAS learned on validation) and report test accuracy "
                   "normalized by the individual fine-tunes.",
                   opts, (int)(sizeof opts / sizeof opts[0]), 0, 0};
  int np = 0, rc = cli_parse(&spec, argc, argv, NULL, &np);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  const char *tasks[SD_MAX_TASKS];
  char storage[256];
  int T = sd_parse_tasks(o.sd.tasks, tasks, storage, sizeof storage);
  if (T < 2) {
    fprintf(stderr, "graft study merge: --tasks needs 2..%d known shifts, got '%s'\n", SD_MAX_TASKS, o.sd.tasks);
    return CLI_USAGE;
  }
  if (o.sd.quick) o.atlas_steps = o.atlas_steps < 15 ? o.atlas_steps : 15, o.lambda_step = o.lambda_step > 0.25 ? o.lambda_step : 0.25;
  if (!(o.ties_density > 0 && o.ties_density <= 1) || !(o.dare_density > 0 && o.dare_density <= 1) ||
      !(o.lambda_step > 0) || !(o.lambda_max >= 0) || o.lambda_max / o.lambda_step > 1000 || o.atlas_steps < 1 ||
      o.atlas_batch < 1 || !(o.atlas_lr >= 0)) {
    fprintf(stderr, "graft study merge: densities in (0,1], lambda step > 0 (at most 1000 points), aTLAS steps/batch >= 1\n");
    return CLI_USAGE;
  }
  if ((rc = sd_opts_finish(&o.sd, "merge"))) return rc;
  gr_set_threads(o.sd.threads);
  return sm_run(&o, tasks, T);
}
