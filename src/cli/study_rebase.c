/* cli/study_rebase.c — `graft study rebase --out DIR [--quick]`: fine-tuning
 * transfer (Lin et al., EMNLP 2025; `graft rebase`) on graft-made models.
 * v1 is a 10-class LeNet pretrained on plain Fashion-MNIST; v2 is v1
 * pretrained further on other plain images (a continued-pretraining
 * release). For each task (a domain shift) v1 is fine-tuned and its diff
 * Δ = v1_ft − v1 is added to v2 with no training: v2 + Δ. It is measured
 * against v2 as released and v2 fine-tuned directly on the same data:
 *   recovery = (acc(v2 + Δ) − acc(v2)) / (acc(v2_ft) − acc(v2))
 * and against a control, a model pretrained from another initialization
 * for as long as v2 (not linearly connected to v1), which gets the same Δ
 * and is also fine-tuned directly. Plain-domain accuracy shows what the
 * transferred diff costs on the pretraining domain. Test split only (no
 * choice is made on it). Writes results.jsonl and rebase_table.md. */
#include <math.h>
#include <string.h>

#include "cli/study_domains.h"

enum { RB_V2, RB_V2_DIFF, RB_V2_FT, RB_CTRL, RB_CTRL_DIFF, RB_CTRL_FT, RB_V1, RB_V1_FT, RB_N };
static const char *const rb_names[RB_N] = {"v2",      "v2 + diff(v1)",      "v2 fine-tuned", "control",
                                           "control + diff(v1)", "control fine-tuned", "v1", "v1 fine-tuned"};

typedef struct rb_task_result {
  double acc[RB_N], plain[RB_N];
} rb_task_result;

typedef struct rb_run {
  const sd_opts *o;
  int64_t continue_steps;
  const sd_data *d;
  uint64_t seed;
  gr_model *v1, *v2, *ctrl, *work;
  gr_ctx *c;
  gr_dataset *plain_test;
} rb_run;

static gr_status rb_pretrain(rb_run *r) {
  const sd_opts *o = r->o;
  int64_t n_pre = o->base_steps * o->batch, n_cont = r->continue_steps * o->batch;
  gr_dataset *pre = NULL, *cont = NULL, *both = NULL;
  char label[64];
  r->v1 = sd_lenet(r->seed), r->v2 = sd_lenet(r->seed), r->work = sd_lenet(r->seed);
  r->ctrl = sd_lenet(r->seed + 7777);
  gr_status s = r->v1 && r->v2 && r->ctrl && r->work ? GR_OK : gr_last_status();
  if (!s) s = sd_train_set(r->d, "none", 0, n_pre, &pre);
  if (!s) s = sd_train_set(r->d, "none", n_pre, n_cont, &cont);
  snprintf(label, sizeof label, "v1 pretrain seed %llu", (unsigned long long)r->seed);
  if (!s) s = sd_train(r->v1, pre, o->base_steps, o, r->seed, label);
  if (!s) sd_copy_weights(r->v2, r->v1);
  snprintf(label, sizeof label, "v2 = v1 continued seed %llu", (unsigned long long)r->seed);
  if (!s) s = sd_train(r->v2, cont, r->continue_steps, o, r->seed + 1, label);
  gr_dataset *parts[2] = {pre, cont};
  if (!s) s = sd_concat(parts, 2, &both);
  snprintf(label, sizeof label, "control (other init) seed %llu", (unsigned long long)r->seed);
  if (!s) s = sd_train(r->ctrl, both, o->base_steps + r->continue_steps, o, r->seed + 2, label);
  gr_dataset_free(pre), gr_dataset_free(cont), gr_dataset_free(both);
  if (!s) s = sd_test_set(r->d, "none", o->test_per_task, &r->plain_test);
  return s;
}

/* Accuracy on the task and on plain images of the model in r->work. */
static gr_status rb_measure(rb_run *r, const gr_dataset *test, rb_task_result *res, int which) {
  gr_status s = sd_accuracy(r->work, r->c, test, &res->acc[which]);
  return s ? s : sd_accuracy(r->work, r->c, r->plain_test, &res->plain[which]);
}

/* work = from fine-tuned on ft_data; measured as `which`. */
static gr_status rb_finetune(rb_run *r, const gr_model *from, const gr_dataset *ft_data, const gr_dataset *test,
                             const char *task, rb_task_result *res, int which) {
  char label[96];
  snprintf(label, sizeof label, "%s on %s seed %llu", rb_names[which], task, (unsigned long long)r->seed);
  sd_copy_weights(r->work, from);
  gr_status s = sd_train(r->work, ft_data, r->o->ft_steps, r->o, r->seed + 300, label);
  return s ? s : rb_measure(r, test, res, which);
}

static gr_status rb_task(rb_run *r, const char *task, int t, rb_task_result *res) {
  const sd_opts *o = r->o;
  int64_t n_ft = o->ft_steps * o->batch, start = (o->base_steps + r->continue_steps) * o->batch + t * n_ft;
  gr_dataset *ft = NULL, *test = NULL;
  float *diff = gr_malloc((size_t)r->v1->numel * sizeof(float) + 4);
  gr_status s = diff ? sd_train_set(r->d, task, start, n_ft, &ft) : gr_error(GR_ENOMEM, "study rebase: out of memory");
  if (!s) s = sd_test_set(r->d, task, o->test_per_task, &test);
  const gr_model *plain[3] = {r->v1, r->v2, r->ctrl};
  const int plain_row[3] = {RB_V1, RB_V2, RB_CTRL};
  for (int k = 0; !s && k < 3; k++) {
    sd_copy_weights(r->work, plain[k]);
    s = rb_measure(r, test, res, plain_row[k]);
  }
  if (!s) s = rb_finetune(r, r->v1, ft, test, task, res, RB_V1_FT);
  if (!s) gr_taskvec_axpy(diff, NULL, 1.0, r->work->data, r->v1->data, r->v1->numel); /* Δ = v1_ft − v1 */
  if (!s) gr_taskvec_axpy(r->work->data, r->v2->data, 1.0, diff, NULL, r->v1->numel);
  if (!s) s = rb_measure(r, test, res, RB_V2_DIFF);
  if (!s) gr_taskvec_axpy(r->work->data, r->ctrl->data, 1.0, diff, NULL, r->v1->numel);
  if (!s) s = rb_measure(r, test, res, RB_CTRL_DIFF);
  if (!s) s = rb_finetune(r, r->v2, ft, test, task, res, RB_V2_FT);
  if (!s) s = rb_finetune(r, r->ctrl, ft, test, task, res, RB_CTRL_FT);
  gr_free(diff);
  gr_dataset_free(ft), gr_dataset_free(test);
  return s;
}

static double recovery(const rb_task_result *r, int plain, int diff, int ft) {
  return (r->acc[diff] - r->acc[plain]) / (r->acc[ft] - r->acc[plain]);
}

static gr_status rb_records(gr_jsonl *out, const char *task, uint64_t seed, const rb_task_result *res) {
  static const char *names[] = {"plain_accuracy", "recovery"};
  gr_status s = GR_OK;
  for (int k = 0; !s && k < RB_N; k++) {
    double ex[2] = {res->plain[k], NAN};
    if (k == RB_V2_DIFF) ex[1] = recovery(res, RB_V2, RB_V2_DIFF, RB_V2_FT);
    if (k == RB_CTRL_DIFF) ex[1] = recovery(res, RB_CTRL, RB_CTRL_DIFF, RB_CTRL_FT);
    s = sd_write_record(out, "rebase", rb_names[k], task, seed, res->acc[k], names, ex, isnan(ex[1]) ? 1 : 2);
  }
  return s;
}

static void rb_run_free(rb_run *r) {
  gr_model_free(r->v1), gr_model_free(r->v2), gr_model_free(r->ctrl), gr_model_free(r->work);
  gr_dataset_free(r->plain_test);
  gr_ctx_free(r->c);
}

static gr_status rb_table(const char *const *tasks, int T, int n_seeds, rb_task_result (*res)[SD_MAX_TASKS],
                          const char *dir) {
  static const char *heads[] = {"task", "v2", "v2 + diff(v1)", "v2 fine-tuned", "recovery", "control + diff",
                                "control recovery", "v1 fine-tuned", "plain acc: v2 / v2 + diff / v2 fine-tuned"};
  gr_table *tb = gr_table_new(9, heads);
  gr_status s = tb ? GR_OK : gr_error(GR_ENOMEM, "study rebase: out of memory");
  for (int t = 0; !s && t < T; t++) {
    rb_task_result m = {0};
    double rec = 0, crec = 0;
    for (int k = 0; k < n_seeds; k++) {
      for (int j = 0; j < RB_N; j++) m.acc[j] += res[k][t].acc[j] / n_seeds, m.plain[j] += res[k][t].plain[j] / n_seeds;
      rec += recovery(&res[k][t], RB_V2, RB_V2_DIFF, RB_V2_FT) / n_seeds;
      crec += recovery(&res[k][t], RB_CTRL, RB_CTRL_DIFF, RB_CTRL_FT) / n_seeds;
    }
    s = gr_table_addf(tb, "%s\t%.2f%%\t%.2f%%\t%.2f%%\t%.0f%%\t%.2f%%\t%.0f%%\t%.2f%%\t%.1f / %.1f / %.1f%%", tasks[t],
                      100 * m.acc[RB_V2], 100 * m.acc[RB_V2_DIFF], 100 * m.acc[RB_V2_FT], 100 * rec,
                      100 * m.acc[RB_CTRL_DIFF], 100 * crec, 100 * m.acc[RB_V1_FT], 100 * m.plain[RB_V2],
                      100 * m.plain[RB_V2_DIFF], 100 * m.plain[RB_V2_FT]);
  }
  char heading[160];
  snprintf(heading, sizeof heading, "## graft study rebase: %d seed%s (test accuracy, mean over seeds; recovery = mean of per-seed ratios)",
           n_seeds, n_seeds > 1 ? "s" : "");
  if (!s) s = sd_emit_table(tb, dir, "rebase_table.md", heading);
  gr_table_free(tb);
  return s;
}

static int rb_main_run(const sd_opts *o, int64_t continue_steps, const char *const *tasks, int T) {
  sd_data d;
  gr_status s = sd_data_load(&d);
  char path[1100];
  gr_jsonl *out = s ? NULL : gr_jsonl_open(runs_path(path, sizeof path, o->out, "results.jsonl"), true);
  if (!s && !out) s = gr_last_status();
  rb_task_result (*res)[SD_MAX_TASKS] = s ? NULL : gr_calloc((size_t)o->seeds, sizeof *res);
  if (!s && !res) s = gr_error(GR_ENOMEM, "study rebase: out of memory");
  for (int k = 0; !s && k < o->seeds; k++) {
    rb_run r = {.o = o, .continue_steps = continue_steps, .d = &d, .seed = (uint64_t)o->seed + (uint64_t)k};
    sd_data_reseed(&d, r.seed, 0);
    r.c = gr_ctx_new(8 << 20, r.seed);
    s = r.c ? rb_pretrain(&r) : gr_error(GR_ENOMEM, "study rebase: out of memory");
    for (int t = 0; !s && t < T; t++) {
      s = rb_task(&r, tasks[t], t, &res[k][t]);
      if (!s) s = rb_records(out, tasks[t], r.seed, &res[k][t]);
    }
    rb_run_free(&r);
  }
  if (!s) s = rb_table(tasks, T, o->seeds, res, o->out);
  gr_status cs = gr_jsonl_close(out);
  if (!s) s = cs;
  gr_free(res);
  sd_data_free(&d);
  return s ? cli_fail_status("study rebase") : CLI_OK;
}

int study_rebase_main(int argc, char **argv) {
  sd_opts o;
  sd_opts_default(&o);
  o.tasks = "invert,rot90,vflip";
  int64_t continue_steps = -1;
  const cli_opt opts[] = {
      {"--out", CLI_STR, &o.out, "output directory (results.jsonl, rebase_table.md)"},
      {"--quick", CLI_BOOL, &o.quick, "tiny run (seconds): checks the pipeline, not the claims"},
      {"--tasks", CLI_STR, &o.tasks, "domain shifts to fine-tune on (invert, rot90, rot180, rot270, hflip, vflip, transpose)"},
      {"--seed", CLI_INT, &o.seed, "first seed"},
      {"--seeds", CLI_INT, &o.seeds, "seeds (each pretrains its own v1, v2 and control)"},
      {"--base-steps", CLI_I64, &o.base_steps, "SGD steps pretraining v1"},
      {"--continue-steps", CLI_I64, &continue_steps, "SGD steps from v1 to v2 on other plain images (-1: --base-steps)"},
      {"--ft-steps", CLI_I64, &o.ft_steps, "SGD steps of each fine-tune"},
      {"--batch", CLI_I64, &o.batch, "batch size"},
      {"--lr", CLI_FLOAT, &o.lr, "SGD learning rate"},
      {"--momentum", CLI_FLOAT, &o.momentum, "SGD momentum"},
      {"--test", CLI_I64, &o.test_per_task, "test images per task"},
      {"--threads", CLI_INT, &o.threads, "threads (0: GRAFT_THREADS or all cores)"},
      {"--force", CLI_BOOL, &o.force, "overwrite a non-empty output directory"},
      {"--quiet", CLI_BOOL, &o.quiet, "no progress bars"},
  };
  cli_spec spec = {"study rebase", "graft study rebase --out DIR [--quick] [--tasks invert,...] [--seeds N]",
                   "Fine-tune v1 of a Fashion-MNIST LeNet on domain shifts, add the diff to v2 (v1 pretrained "
                   "further) without training, and compare with v2 and v2 fine-tuned directly (and a control model).",
                   opts, (int)(sizeof opts / sizeof opts[0]), 0, 0};
  int np = 0, rc = cli_parse(&spec, argc, argv, NULL, &np);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  const char *tasks[SD_MAX_TASKS];
  char storage[256];
  int T = sd_parse_tasks(o.tasks, tasks, storage, sizeof storage);
  if (T < 1) {
    fprintf(stderr, "graft study rebase: --tasks needs 1..%d known shifts, got '%s'\n", SD_MAX_TASKS, o.tasks);
    return CLI_USAGE;
  }
  if ((rc = sd_opts_finish(&o, "rebase"))) return rc;
  if (continue_steps < 0) continue_steps = o.base_steps;
  if (continue_steps < 1) {
    fprintf(stderr, "graft study rebase: --continue-steps must be >= 1\n");
    return CLI_USAGE;
  }
  gr_set_threads(o.threads);
  return rb_main_run(&o, continue_steps, tasks, T);
}
