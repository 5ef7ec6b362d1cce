/* cli/trainflags.c — the flags and the single training run shared by
 * `graft train` and `graft finetune`: optimizer, schedule, clipping,
 * evaluation, augmentation; metrics.jsonl and the model directory. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "cli/runs.h"
#include "graft/dist.h"

void runs_train_flags_init(runs_train_flags *f, cli_opt *o) {
  *f = (runs_train_flags){.optim = "sgd", .schedule = "constant", .augment = "none", .seed = 1, .epochs = 3,
                          .batch = 64, .lr = 0.01, .momentum = 0.9};
  const cli_opt rows[RUNS_TRAIN_NOPTS] = {
      {"--data", CLI_STR, &f->data, "training data spec, e.g. fmnist:classes=5-9,labels=10%"},
      {"--test-data", CLI_STR, &f->test_data, "evaluation data spec (default: --data with split=test)"},
      {"--out", CLI_STR, &f->out, "output model directory"},
      {"--force", CLI_BOOL, &f->force, "overwrite a non-empty output directory"},
      {"--seed", CLI_INT, &f->seed, "seed (init, label budget, shuffling)"},
      {"--threads", CLI_INT, &f->threads, "threads (0: GRAFT_THREADS or all cores)"},
      {"--epochs", CLI_INT, &f->epochs, "epochs (ignored with --steps)"},
      {"--steps", CLI_I64, &f->steps, "optimizer steps (0: use --epochs)"},
      {"--batch", CLI_INT, &f->batch, "batch size"},
      {"--optim", CLI_STR, &f->optim, "sgd|adamw"},
      {"--lr", CLI_FLOAT, &f->lr, "learning rate"},
      {"--momentum", CLI_FLOAT, &f->momentum, "SGD momentum"},
      {"--nesterov", CLI_BOOL, &f->nesterov, "SGD Nesterov momentum"},
      {"--wd", CLI_FLOAT, &f->wd, "weight decay (AdamW: decoupled)"},
      {"--schedule", CLI_STR, &f->schedule, "constant|cosine|step (step: x0.1 every third of the run)"},
      {"--warmup", CLI_I64, &f->warmup, "linear warmup steps"},
      {"--clip", CLI_FLOAT, &f->clip, "clip the global gradient norm (0: off)"},
      {"--label-smoothing", CLI_FLOAT, &f->label_smoothing, "cross-entropy label smoothing"},
      {"--eval-every", CLI_INT, &f->eval_every, "evaluate every N steps (0: at the end)"},
      {"--patience", CLI_INT, &f->patience, "early stopping after N evaluations without improvement (0: off)"},
      {"--augment", CLI_STR, &f->augment, "none|crop|flip|crop,flip (random crop pads 2 pixels)"},
      {"--quiet", CLI_BOOL, &f->quiet, "no progress bar"},
      {"--ckpt-every", CLI_I64, &f->ckpt_every, "write OUT/checkpoint.safetensors every N steps and at the end (0: off)"},
      {"--resume", CLI_STR, &f->resume, "continue the run of this checkpoint (DIR or FILE; same flags; bit-identical result)"},
      {"--stop-at", CLI_I64, &f->stop_at, "pause after step N: write the checkpoint and exit (continue with --resume OUT)"},
  };
  memcpy(o, rows, sizeof rows);
}

static int usage(const char *fmt, const char *v) {
  fprintf(stderr, "graft: ");
  fprintf(stderr, fmt, v);
  fprintf(stderr, "\n");
  return CLI_USAGE;
}

int runs_train_flags_configs(const runs_train_flags *f, gr_train_cfg *tc, gr_optim_cfg *oc) {
  if (!f->data) return usage("--data SPEC is required%s", "");
  if (!f->out) return usage("--out DIR is required%s", "");
  if (f->epochs < 1 || f->batch < 1 || f->steps < 0 || f->warmup < 0 || f->eval_every < 0 || f->patience < 0 ||
      f->threads < 0 || f->ckpt_every < 0 || f->stop_at < 0 || !(f->lr > 0) || !(f->momentum >= 0) || !(f->wd >= 0) || !(f->clip >= 0) ||
      !(f->label_smoothing >= 0 && f->label_smoothing < 1))
    return usage("a numeric flag is out of range (see --help)%s", "");
  if (!strcmp(f->optim, "sgd")) *oc = gr_sgd_cfg((float)f->lr, (float)f->momentum, (float)f->wd, f->nesterov);
  else if (!strcmp(f->optim, "adamw")) *oc = gr_adamw_cfg((float)f->lr, (float)f->wd);
  else return usage("--optim '%s' (sgd|adamw)", f->optim);
  if (f->nesterov && !(f->momentum > 0)) return usage("--nesterov needs --momentum > 0%s", "");
  *tc = (gr_train_cfg){.epochs = f->epochs, .steps = f->steps, .batch = f->batch, .clip_norm = (float)f->clip,
                       .label_smoothing = (float)f->label_smoothing, .eval_every = f->eval_every,
                       .patience = f->patience, .seed = (uint64_t)f->seed};
  if (gr_schedule_kind_parse(f->schedule, &tc->sched.kind)) return usage("--schedule '%s' (constant|cosine|step)", f->schedule);
  tc->sched.warmup_steps = f->warmup;
  tc->sched.warmup_start = 1.0f / 3.0f;
  tc->sched.gamma = 0.1f;
  if (!strcmp(f->augment, "none")) return CLI_OK;
  if (!strcmp(f->augment, "crop")) tc->aug.crop_pad = 2;
  else if (!strcmp(f->augment, "flip")) tc->aug.hflip = true;
  else if (!strcmp(f->augment, "crop,flip")) tc->aug.crop_pad = 2, tc->aug.hflip = true;
  else return usage("--augment '%s' (none|crop|flip|crop,flip)", f->augment);
  tc->aug.pad_value = -GR_FMNIST_MEAN / GR_FMNIST_STD; /* a black pixel after normalization */
  return CLI_OK;
}

int runs_train_parse(const cli_spec *spec, int argc, char **argv, const runs_train_flags *f, gr_train_cfg *tc,
                     gr_optim_cfg *oc) {
  const char *pos[1];
  int np = 0, rc = cli_parse(spec, argc, argv, pos, &np);
  return rc ? rc : runs_train_flags_configs(f, tc, oc);
}

int runs_load_data(const runs_train_flags *f, gr_dataset **train, gr_dataset **test) {
  gr_data_spec ts, es;
  *train = *test = NULL;
  if (gr_data_spec_parse(f->data, &ts)) return cli_fail_status("--data");
  if (gr_data_spec_parse(f->test_data ? f->test_data : f->data, &es)) return cli_fail_status("--test-data");
  if (gr_data_load(&ts, NULL, (uint64_t)f->seed, train)) return cli_fail_status("loading --data");
  if (gr_data_load(&es, f->test_data ? NULL : "test", (uint64_t)f->seed, test)) {
    gr_dataset_free(*train);
    *train = NULL;
    return cli_fail_status("loading the evaluation data");
  }
  return CLI_OK;
}

void runs_print_eval(FILE *fp, const gr_eval_result *ev, bool json) {
  if (json) {
    fprintf(fp, "{\"n\":%lld,\"accuracy\":%.6f,\"loss\":%.6f,\"ece\":%.6f,\"per_class_accuracy\":[", (long long)ev->n,
            ev->accuracy, ev->loss, ev->ece);
    for (int k = 0; k < ev->n_classes; k++) fprintf(fp, isnan(ev->per_class_acc[k]) ? "%snull" : "%s%.6f", k ? "," : "", ev->per_class_acc[k]);
    fprintf(fp, "]}\n");
    return;
  }
  fprintf(fp, "samples %lld  accuracy %.2f%%  loss %.4f  ECE %.4f\nper-class accuracy:", (long long)ev->n,
          100 * ev->accuracy, ev->loss, ev->ece);
  for (int k = 0; k < ev->n_classes; k++) fprintf(fp, " %d:%.1f%%", k, 100 * ev->per_class_acc[k]);
  fputc('\n', fp);
}

typedef struct metrics_log {
  runs_monitor mon;
  gr_jsonl *jl;
  gr_status st;
} metrics_log;

static cJSON *eval_json(int64_t step, double train_loss, const gr_eval_result *ev) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddNumberToObject(o, "step", (double)step);
  if (isfinite(train_loss)) cJSON_AddNumberToObject(o, "train_loss", train_loss);
  cJSON_AddNumberToObject(o, "loss", ev->loss);
  cJSON_AddNumberToObject(o, "accuracy", ev->accuracy);
  cJSON_AddNumberToObject(o, "ece", ev->ece);
  return o;
}

static void log_step(void *ud, int64_t step, int64_t total, double loss) {
  metrics_log *l = ud;
  runs_monitor_hooks(&l->mon).on_step(&l->mon, step, total, loss);
}

static void log_eval(void *ud, int64_t step, double train_loss, const gr_eval_result *ev) {
  metrics_log *l = ud;
  cJSON *o = eval_json(step, train_loss, ev);
  if (!l->st) l->st = o ? gr_jsonl_write(l->jl, o) : gr_error(GR_ENOMEM, "metrics: out of memory");
  cJSON_Delete(o);
}

static gr_status write_final(gr_jsonl *jl, const gr_train_result *res, const gr_model *m) {
  cJSON *o = eval_json(res->steps, res->train_loss, &res->eval);
  if (!o) return gr_error(GR_ENOMEM, "metrics: out of memory");
  cJSON_AddStringToObject(o, "type", "final");
  cJSON_AddNumberToObject(o, "best_step", (double)res->best_step);
  cJSON_AddBoolToObject(o, "stopped_early", res->stopped_early);
  cJSON_AddNumberToObject(o, "trainable_params", (double)gr_model_param_count(m, true));
  cJSON *pc = cJSON_AddArrayToObject(o, "per_class_accuracy");
  for (int k = 0; pc && k < res->eval.n_classes; k++) cJSON_AddItemToArray(pc, cJSON_CreateNumber(res->eval.per_class_acc[k]));
  gr_status s = gr_jsonl_write(jl, o);
  cJSON_Delete(o);
  return s;
}

int runs_train_and_save(const runs_train_flags *f, gr_model *m, const gr_model_config *mc, const gr_dataset *train,
                        const gr_dataset *test, const gr_train_cfg *tc, const gr_optim_cfg *oc,
                        runs_optim_hook hook, void *hook_ud, runs_ckpt *ck) {
  char path[1100];
  gr_optim *o = gr_optim_new(m, oc);
  if (!o) return cli_fail_status("optimizer");
  if (hook && hook(hook_ud, o)) {
    gr_optim_free(o);
    return cli_fail_status("optimizer setup");
  }
  bool lead = gr_dist_rank() == 0; /* data-parallel runs: rank 0 alone writes and prints */
  gr_status s = runs_ckpt_metrics_prefix(f, ck);
  metrics_log l = {0};
  if (!s && lead) l.jl = gr_jsonl_open(runs_path(path, sizeof path, f->out, "metrics.jsonl"), !ck->resume);
  if (!s && lead && !l.jl) s = gr_last_status();
  gr_train_result res = {0};
  gr_train_cfg tcc = *tc;
  runs_ckpt_train_cfg(f, ck, &tcc);
  if (!s) {
    runs_monitor_start(&l.mon, "train", gr_train_total_steps(tc, train->n), f->quiet || !lead);
    gr_train_hooks hooks = {&l, log_step, log_eval};
    s = gr_train(m, o, train, test, &tcc, lead ? &hooks : NULL, &res);
    runs_monitor_finish(&l.mon, s ? "failed" : NULL);
    if (!s) s = l.st;
    if (!s && lead && !res.paused) s = write_final(l.jl, &res, m);
  }
  gr_status sc = gr_jsonl_close(l.jl);
  if (!s) s = sc;
  if (!s && lead && !res.paused) s = gr_model_save_dir(m, mc, f->out);
  gr_optim_free(o);
  if (s) return cli_fail_status("training");
  ck->paused = res.paused;
  if (!lead) return CLI_OK;
  if (res.resumed_at > 0) printf("resumed %s at step %lld\n", ck->resume_path, (long long)res.resumed_at);
  if (res.paused) {
    printf("paused after step %lld of %lld; wrote %s (continue with --resume %s)\n", (long long)res.steps,
           (long long)gr_train_total_steps(tc, train->n), ck->path, f->out);
    return CLI_OK;
  }
  runs_print_dist(res.steps);
  runs_print_eval(stdout, &res.eval, false);
  printf("trainable parameters %lld of %lld; wrote %s/{model.safetensors,config.json,metrics.jsonl}\n",
         (long long)gr_model_param_count(m, true), (long long)gr_model_param_count(m, false), f->out);
  if (tcc.ckpt.path) printf("checkpoint %s\n", ck->path);
  return CLI_OK;
}
