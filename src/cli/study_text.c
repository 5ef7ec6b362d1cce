/* cli/study_text.c — `graft study text --out DIR`: the text transfer study.
 *  1. source: a GPT pretrained on the KJV (causal, byte tokenizer); its
 *     validation bits per char next to the unigram baseline, and samples.
 *  2. transfer: C headers (ccode) at equal steps from scratch and
 *     fine-tuned from the KJV model; validation loss along the way.
 *  3. infill: the KJV model fine-tuned on C with an infill objective (fim:
 *     50% fill-in-the-middle + 50% causal by default; or the CodeGen2 mix)
 *     against the one fine-tuned causally (same init, same steps), filling
 *     masked lines of held-out C headers (loss on the line, exact match):
 *     the infill model in the infill format (it sees prefix and suffix),
 *     the causal model left to right (prefix only).
 * With --source-dir KJV_DIR --causal-dir C_DIR (model directories of an
 * earlier study) only part 3 runs: the infill model is trained from KJV_DIR
 * and compared with the causal model in C_DIR.
 * Every run is one lm_run (cli/lm_runs.c), the same code as graft train.
 * Writes DIR/{kjv,c_scratch,c_finetune,c_infill}/ model directories,
 * results.jsonl, samples.txt and summary.md (also printed). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/lm_runs.h"
#include "cli/runs.h"

typedef struct study_cfg {
  const char *out, *model, *source, *target, *target_val, *target_test, *infill_objective;
  const char *source_dir, *causal_dir; /* infill part only: reuse these model directories */
  int64_t source_steps, target_steps, batch, eval_every, cases;
  double lr;
  gr_lm_objective infill_obj;
  int seed, threads;
  bool force, quiet;
} study_cfg;

static lm_run_opts run_opts(const study_cfg *s, const char *data, const char *val, const char *from, gr_lm_objective obj,
                            int64_t steps, const char *label) {
  lm_run_opts o = {.model = from ? NULL : s->model, .from = from, .data = data, .val_data = val, .tokenizer = "byte",
                   .out = NULL, .oc = gr_adamw_cfg((float)s->lr, 0.01f), .seed = (uint64_t)s->seed, .quiet = s->quiet,
                   .label = label};
  o.tc = (gr_lm_train_cfg){.objective = obj, .infill = gr_infill_default(), .steps = steps, .batch = s->batch,
                           .seq = 128, .clip_norm = 1.0f, .eval_every = s->eval_every, .eval_tokens = 8192,
                           .seed = (uint64_t)s->seed};
  o.tc.sched = (gr_schedule){.kind = GR_SCHED_COSINE, .warmup_steps = steps / 20, .warmup_start = 0.1f, .min_lr = (float)s->lr / 10};
  return o;
}

/* metrics.jsonl of a run directory -> "step:val_loss" pairs for the summary. */
static void curve_text(const char *dir, char *buf, size_t n) {
  char path[1100];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  FILE *fp = fopen(path, "r");
  size_t k = 0;
  buf[0] = 0;
  char line[1024];
  while (fp && fgets(line, sizeof line, fp)) {
    cJSON *o = cJSON_Parse(line);
    const cJSON *st = cJSON_GetObjectItem(o, "step"), *vl = cJSON_GetObjectItem(o, "val_loss");
    if (cJSON_IsNumber(st) && cJSON_IsNumber(vl) && k < n) k += (size_t)snprintf(buf + k, n - k, "%s%d:%.3f", k ? " " : "", st->valueint, vl->valuedouble);
    cJSON_Delete(o);
  }
  if (fp) fclose(fp);
}

static int train_one(const study_cfg *s, const char *name, lm_run_opts o, lm_run *r, gr_jsonl *jl) {
  char dir[1100];
  runs_path(dir, sizeof dir, s->out, name);
  if (runs_prepare_outdir(dir, true)) return CLI_FAIL;
  o.out = dir;
  int rc = lm_run_train(&o, r);
  if (rc) return rc;
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "run", name);
  cJSON_AddStringToObject(j, "data", o.data);
  cJSON_AddStringToObject(j, "init", o.from ? o.from : "scratch");
  cJSON_AddStringToObject(j, "objective", gr_lm_objective_name(o.tc.objective));
  cJSON_AddNumberToObject(j, "steps", (double)r->res.steps);
  cJSON_AddNumberToObject(j, "params", (double)gr_model_param_count(r->g->model, false));
  cJSON_AddNumberToObject(j, "val_loss", r->res.eval.loss);
  cJSON_AddNumberToObject(j, "val_bpc", r->res.eval.bpc);
  cJSON_AddNumberToObject(j, "unigram_bpc", r->res.eval.unigram_bpc);
  cJSON_AddNumberToObject(j, "seconds", r->seconds);
  gr_status st = gr_jsonl_write(jl, j);
  cJSON_Delete(j);
  return st ? cli_fail_status("results.jsonl") : CLI_OK;
}

static int infill_compare(const study_cfg *s, lm_run *causal, lm_run *mix, gr_infill_eval ev[3], gr_jsonl *jl) {
  gr_text_spec ts;
  gr_corpus *test = NULL;
  gr_token_stream st = {0};
  if (gr_text_spec_parse(s->target_test, &ts) || gr_text_load(&ts, -1, &test) || gr_corpus_tokenize(test, causal->t, &st))
    return gr_corpus_free(test), cli_fail_status(s->target_test);
  gr_ctx *c = gr_ctx_new(8 << 20, 1);
  gr_infill_format f = s->infill_obj == GR_LM_FIM_SPM ? GR_INFILL_SPM : GR_INFILL_PSM;
  gr_status e = gr_lm_infill_eval(causal->g, c, causal->t, &st, GR_INFILL_LEFT_TO_RIGHT, s->cases, 32, 7, &ev[0]);
  if (!e) e = gr_lm_infill_eval(mix->g, c, mix->t, &st, f, s->cases, 32, 7, &ev[1]);
  if (!e) e = gr_lm_infill_eval(mix->g, c, mix->t, &st, GR_INFILL_LEFT_TO_RIGHT, s->cases, 32, 7, &ev[2]);
  const char *names[3] = {"c_finetune (causal), left to right", "c_infill, infill format", "c_infill, left to right"};
  for (int i = 0; !e && i < 3; i++) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "run", "infill_eval");
    cJSON_AddStringToObject(j, "model", names[i]);
    cJSON_AddNumberToObject(j, "cases", (double)ev[i].cases);
    cJSON_AddNumberToObject(j, "line_tokens", (double)ev[i].span_tokens);
    cJSON_AddNumberToObject(j, "line_loss", ev[i].span_loss);
    cJSON_AddNumberToObject(j, "exact_match", ev[i].exact);
    e = gr_jsonl_write(jl, j);
    cJSON_Delete(j);
  }
  gr_ctx_free(c);
  gr_token_stream_free(&st);
  gr_corpus_free(test);
  return e ? cli_fail_status("infill evaluation") : CLI_OK;
}

static void write_samples(const study_cfg *s, lm_run *src, FILE *out) {
  static const char *const prompts[] = {"And God said", "In the beginning", "And it came to pass"};
  gr_ctx *c = gr_ctx_new(8 << 20, 1);
  gr_rng r;
  gr_rng_seed(&r, (uint64_t)s->seed);
  gr_gpt_sample_opts so = {.temperature = 0.8f, .top_k = 0, .stop_id = -1};
  for (int i = 0; c && i < 3; i++) {
    int32_t *ids = NULL, out_ids[128];
    int64_t n = 0, n_out = 0;
    char *text = NULL;
    size_t len = 0;
    if (gr_tokenizer_encode(src->t, prompts[i], strlen(prompts[i]), &ids, &n) ||
        gr_gpt_generate(src->g, c, ids, n, 100, &so, &r, out_ids, &n_out, NULL) ||
        gr_tokenizer_decode(src->t, out_ids, n_out, &text, &len))
      fprintf(out, "(sample failed: %s)\n", gr_last_error());
    else fprintf(out, "> %s%.*s\n\n", prompts[i], (int)len, text);
    gr_free(ids);
    gr_free(text);
  }
  gr_ctx_free(c);
}

static void summary(FILE *fp, const study_cfg *s, lm_run r[4], gr_infill_eval ev[3]) {
  char curve[3][512], dir[1100];
  const char *names[3] = {"c_scratch", "c_finetune", "c_infill"};
  for (int i = 0; i < 3; i++) curve_text(runs_path(dir, sizeof dir, s->out, names[i]), curve[i], sizeof curve[i]);
  fprintf(fp, "## graft study text\n\nModel %s, %lld parameters, byte tokenizer, batch %lld x 128 tokens, AdamW lr %g cosine.\n\n",
          s->model, (long long)gr_model_param_count(r[0].g->model, false), (long long)s->batch, s->lr);
  fprintf(fp, "1. KJV source (%s, %lld steps, %.0f s): val bits/char %.4f, unigram baseline %.4f\n", s->source,
          (long long)r[0].res.steps, r[0].seconds, r[0].res.eval.bpc, r[0].res.eval.unigram_bpc);
  fprintf(fp, "2. C headers (%s), %lld steps each, val loss (nats/token) at step:\n   scratch:   %s\n   from KJV:  %s\n",
          s->target, (long long)s->target_steps, curve[0], curve[1]);
  fprintf(fp, "   final val bpc: scratch %.4f, from KJV %.4f (unigram %.4f)\n", r[1].res.eval.bpc, r[2].res.eval.bpc,
          r[1].res.eval.unigram_bpc);
  fprintf(fp, "3. infill of %lld masked lines of held-out C (%s), 32 tokens of context each side:\n", (long long)ev[0].cases,
          s->target_test);
  fprintf(fp, "   (both fine-tuned from the KJV model for %lld steps on C: causal vs objective %s)\n", (long long)s->target_steps,
          gr_lm_objective_name(s->infill_obj));
  fprintf(fp, "   causal model, left to right: line loss %.4f nats/token, exact match %.1f%%\n", ev[0].span_loss, 100 * ev[0].exact);
  fprintf(fp, "   infill model, infill format: line loss %.4f nats/token, exact match %.1f%%\n", ev[1].span_loss, 100 * ev[1].exact);
  fprintf(fp, "   infill model, left to right: line loss %.4f nats/token, exact match %.1f%%\n", ev[2].span_loss, 100 * ev[2].exact);
  fprintf(fp, "   infill model val loss (causal) along the way: %s\n", curve[2]);
}

/* Part 3 alone, reusing an earlier study's source and causal models. */
static int study_infill_only(const study_cfg *s, gr_jsonl *jl) {
  lm_run causal = {0}, infill = {0};
  gr_infill_eval ev[3] = {0};
  int rc = gr_gpt_load_dir(s->causal_dir, &causal.g, &causal.t, NULL) ? cli_fail_file(s->causal_dir) : CLI_OK;
  if (!rc)
    rc = train_one(s, "c_infill", run_opts(s, s->target, s->target_val, s->source_dir, s->infill_obj, s->target_steps, "c infill from kjv"),
                   &infill, jl);
  if (!rc) rc = infill_compare(s, &causal, &infill, ev, jl);
  const char *names[3] = {"causal model (--causal-dir), left to right", "infill model, infill format", "infill model, left to right"};
  for (int i = 0; !rc && i < 3; i++)
    printf("%s: line loss %.4f nats/token over %lld lines (%lld tokens), exact match %.1f%%\n", names[i], ev[i].span_loss,
           (long long)ev[i].cases, (long long)ev[i].span_tokens, 100 * ev[i].exact);
  lm_run_free(&causal);
  lm_run_free(&infill);
  return rc;
}

static int study_run(const study_cfg *s) {
  char path[1100], kjv_dir[1100];
  gr_jsonl *jl = gr_jsonl_open(runs_path(path, sizeof path, s->out, "results.jsonl"), true);
  if (!jl) return cli_fail_file(path);
  if (s->causal_dir) {
    int rc = study_infill_only(s, jl);
    gr_jsonl_close(jl);
    return rc;
  }
  lm_run r[4] = {0};
  gr_infill_eval ev[3] = {0};
  runs_path(kjv_dir, sizeof kjv_dir, s->out, "kjv");
  int rc = train_one(s, "kjv", run_opts(s, s->source, NULL, NULL, GR_LM_CAUSAL, s->source_steps, "kjv"), &r[0], jl);
  if (!rc) rc = train_one(s, "c_scratch", run_opts(s, s->target, s->target_val, NULL, GR_LM_CAUSAL, s->target_steps, "c scratch"), &r[1], jl);
  if (!rc) rc = train_one(s, "c_finetune", run_opts(s, s->target, s->target_val, kjv_dir, GR_LM_CAUSAL, s->target_steps, "c from kjv"), &r[2], jl);
  if (!rc) rc = train_one(s, "c_infill", run_opts(s, s->target, s->target_val, kjv_dir, s->infill_obj, s->target_steps, "c infill from kjv"), &r[3], jl);
  if (!rc) rc = infill_compare(s, &r[2], &r[3], ev, jl);
  FILE *fp = NULL;
  if (!rc && !(fp = fopen(runs_path(path, sizeof path, s->out, "samples.txt"), "w"))) rc = cli_fail("%s: cannot write", path);
  if (!rc) write_samples(s, &r[0], fp), fclose(fp);
  if (!rc && !(fp = fopen(runs_path(path, sizeof path, s->out, "summary.md"), "w"))) rc = cli_fail("%s: cannot write", path);
  if (!rc) {
    summary(fp, s, r, ev), fclose(fp);
    summary(stdout, s, r, ev);
    printf("\nsamples (KJV model, temperature 0.8):\n");
    write_samples(s, &r[0], stdout);
  }
  for (int i = 0; i < 4; i++) lm_run_free(&r[i]);
  gr_jsonl_close(jl);
  return rc;
}

int study_text_main(int argc, char **argv) {
  study_cfg s = {.model = "gpt:layers=4,heads=4,embd=144,block=128", .source = "kjv", .target = "ccode:max=2M",
                 .target_val = "ccode:split=val,max=512K", .target_test = "ccode:split=test,max=512K", .infill_objective = "fim",
                 .source_steps = 250, .target_steps = 600, .batch = 8, .eval_every = 100, .cases = 300, .lr = 3e-3,
                 .seed = 1, .threads = 1};
  const cli_opt opts[] = {
      {"--out", CLI_STR, &s.out, "output directory"},
      {"--force", CLI_BOOL, &s.force, "overwrite a non-empty output directory"},
      {"--model", CLI_STR, &s.model, "GPT shape of every run"},
      {"--source", CLI_STR, &s.source, "source text spec"},
      {"--target", CLI_STR, &s.target, "target training text spec"},
      {"--target-val", CLI_STR, &s.target_val, "target validation text spec"},
      {"--target-test", CLI_STR, &s.target_test, "held-out text for the infill evaluation"},
      {"--source-steps", CLI_I64, &s.source_steps, "source pretraining steps"},
      {"--target-steps", CLI_I64, &s.target_steps, "steps of each target run"},
      {"--batch", CLI_I64, &s.batch, "sequences per step"},
      {"--eval-every", CLI_I64, &s.eval_every, "steps between validation evaluations"},
      {"--infill-objective", CLI_STR, &s.infill_objective, "objective of the infill run: fim (50% FIM in PSM order + causal) | fim-spm (SPM order) | mix (CodeGen2)"},
      {"--source-dir", CLI_STR, &s.source_dir, "with --causal-dir: the KJV model directory to fine-tune the infill model from"},
      {"--causal-dir", CLI_STR, &s.causal_dir, "only the infill comparison, against this causally fine-tuned model directory"},
      {"--cases", CLI_I64, &s.cases, "masked lines in the infill evaluation"},
      {"--lr", CLI_FLOAT, &s.lr, "AdamW peak learning rate (cosine to a tenth)"},
      {"--seed", CLI_INT, &s.seed, "seed"},
      {"--threads", CLI_INT, &s.threads, "threads"},
      {"--quiet", CLI_BOOL, &s.quiet, "no progress output"},
  };
  cli_spec spec = {"study text", "graft study text --out DIR [--source-steps N] [--target-steps N] [options]",
                   "Text transfer study: KJV pretraining vs unigram, KJV -> C fine-tuning vs scratch at equal steps, "
                   "fill-in-the-middle (or CodeGen2 mix) vs causal on infilling held-out C lines.",
                   opts, (int)(sizeof opts / sizeof opts[0]), 0, 0};
  int np = 0, rc = cli_parse(&spec, argc, argv, NULL, &np);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  gr_gpt_config probe;
  if (!s.out) return fprintf(stderr, "graft study text: --out DIR is required\n"), CLI_USAGE;
  if (s.source_steps < 1 || s.target_steps < 1 || s.batch < 1 || s.eval_every < 0 || s.cases < 1 || !(s.lr > 0) || s.threads < 0)
    return fprintf(stderr, "graft study text: a numeric option is out of range\n"), CLI_USAGE;
  if (!s.source_dir != !s.causal_dir) return fprintf(stderr, "graft study text: --source-dir and --causal-dir go together\n"), CLI_USAGE;
  if ((rc = lm_parse_model(s.model, &probe))) return rc;
  if (gr_lm_objective_parse(s.infill_objective, &s.infill_obj) || s.infill_obj < GR_LM_MIX)
    return fprintf(stderr, "graft study text: --infill-objective '%s' (fim|fim-spm|mix)\n", s.infill_objective), CLI_USAGE;
  if (probe.block != 128) return fprintf(stderr, "graft study text: the study uses block=128\n"), CLI_USAGE;
  gr_set_threads(s.threads);
  if ((rc = runs_prepare_outdir(s.out, s.force))) return rc;
  return study_run(&s);
}
