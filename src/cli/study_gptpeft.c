/* cli/study_gptpeft.c — `graft study gpt-peft --out DIR`: parameter-
 * efficient transfer of a GPT from the KJV to C code (issue #9; He et al.,
 * "Towards a Unified View of Parameter-Efficient Transfer Learning").
 *  1. source: a GPT pretrained causally on the KJV (byte tokenizer), or the
 *     one in --source-dir (a GPT model directory, e.g. graft study text's kjv/).
 *  2. from that model, equal steps on C headers with each method: full
 *     fine-tuning, LoRA (c_attn, c_proj, c_fc, mlp.c_proj), prefix tuning,
 *     MAM (prefix + scaled parallel adapter on each FFN), and (only when
 *     listed in --methods) CorDA knowledge-preserved: the same LoRA modules
 *     initialized from the r smallest components of SVD(W C), C the input
 *     covariance of each layer over --corda-samples passages of the KJV
 *     training split (the knowledge to keep; graft/corda.h).
 *     --freeze-a (an ablation): lora_A of lora and corda-kp frozen at its
 *     init, only lora_B trains.
 * Per method: trainable parameters (and their share of the model), target
 * validation loss/perplexity, and forgetting: the adapted model's KJV
 * validation loss against the source's. Every run is one lm_run
 * (cli/lm_runs.c) with the method applied by its adapt hook.
 * Writes DIR/kjv/ (unless --source-dir), DIR/<method>/metrics.jsonl,
 * DIR/results.jsonl and DIR/summary.md (also printed). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/lm_runs.h"
#include "cli/runs.h"
#include "graft/corda.h"
#include "graft/peft.h"
#include "graft/peft_prefix.h"

typedef struct study_cfg {
  const char *out, *model, *source_dir, *source, *source_val, *target, *target_val, *target_test, *methods, *prefix_init;
  int64_t source_steps, target_steps, batch, eval_every;
  double lr_source, lr_full, lr_peft;
  int lora_r, prefix_l, mam_l, mam_r, corda_samples, seed, threads;
  bool force, quiet, freeze_a;
} study_cfg;

enum { M_FULL, M_LORA, M_PREFIX, M_MAM, M_CORDA_KP, N_METHODS };
static const char *const METHOD_NAMES[N_METHODS] = {"full", "lora", "prefix", "mam", "corda-kp"};

/* The prefix init of Li & Liang (sec. 7.2, "real words"): the model's own
 * keys and values of the start of a C file; repeated when l is longer. */
static const char PREFIX_INIT_TEXT[] = "#include <stdint.h>\n#include <stddef.h>\n\n/* C header */\nstruct item {\n  int id;\n";

typedef struct method_run {
  const study_cfg *s;
  const gr_tokenizer *t;
  int method;
  int64_t trainable, total;
  double target_loss, test_loss, source_loss, seconds; /* test_loss: NaN without --target-test */
} method_run;

/* CorDA's calibration forwards: one per passage of T tokens, the passages
 * spread evenly over the KJV training split. */
typedef struct kjv_calib {
  gr_gpt *g;
  gr_token_stream ids;
  int64_t passages, T;
} kjv_calib;

static gr_status kjv_forwards(void *ud, gr_model *m, gr_ctx *c) {
  (void)m;
  const kjv_calib *kc = ud;
  for (int64_t k = 0; k < kc->passages; k++) {
    int64_t start = k * (kc->ids.n - kc->T) / kc->passages;
    if (!gr_gpt_forward(kc->g, c, kc->ids.ids + start, 1, kc->T, 0, NULL)) return gr_last_status();
    gr_ctx_reset(c);
  }
  return GR_OK;
}

/* CorDA-KP on the freshly wrapped LoRA modules of g. */
static gr_status corda_kp_init(gr_gpt *g, const method_run *m) {
  kjv_calib kc = {.g = g, .passages = m->s->corda_samples, .T = g->cfg.block < 128 ? g->cfg.block : 128};
  gr_text_spec ts;
  gr_corpus *cp = NULL;
  gr_status st = gr_text_spec_parse(m->s->source, &ts);
  if (!st) st = gr_text_load(&ts, GR_SPLIT_TRAIN, &cp);
  if (!st) st = gr_corpus_tokenize(cp, m->t, &kc.ids);
  if (!st && kc.ids.n <= kc.T) st = gr_error(GR_EARG, "corda-kp: %s holds only %lld tokens", m->s->source, (long long)kc.ids.n);
  if (!st) st = gr_corda_apply_with(g->model, kjv_forwards, &kc, GR_CORDA_KPM, true, NULL);
  gr_token_stream_free(&kc.ids);
  gr_corpus_free(cp);
  return st;
}

static gr_status adapt_model(gr_gpt *g, void *ud) {
  method_run *m = ud;
  const study_cfg *s = m->s;
  gr_status st = GR_OK;
  if (m->method == M_LORA || m->method == M_CORDA_KP) {
    const char *targets[] = {"c_attn", "c_proj", "c_fc"};
    gr_peft_config *cfg = gr_peft_config_new(GR_PEFT_LORA, s->lora_r, 2.0 * s->lora_r, targets, 3);
    st = cfg ? gr_lora_apply(g->model, cfg, GR_LORA_INIT_PEFT, NULL) : gr_error(GR_ENOMEM, "lora: out of memory");
    gr_peft_config_free(cfg);
    if (!st && m->method == M_CORDA_KP) st = corda_kp_init(g, m);
    if (!st && s->freeze_a && gr_model_freeze(g->model, "*.lora_A.*", true) < 1)
      st = gr_error(GR_ENOTFOUND, "--freeze-a: no lora_A parameter");
  } else if (m->method == M_PREFIX || m->method == M_MAM) {
    int l = m->method == M_PREFIX ? s->prefix_l : s->mam_l;
    int32_t *text = NULL, *ids = NULL;
    int64_t n = 0;
    bool from_tokens = !strcmp(s->prefix_init, "tokens");
    if (from_tokens) st = gr_tokenizer_encode(m->t, PREFIX_INIT_TEXT, strlen(PREFIX_INIT_TEXT), &text, &n);
    if (!st && from_tokens && !(ids = gr_malloc((size_t)l * sizeof *ids))) st = gr_error(GR_ENOMEM, "prefix: out of memory");
    for (int i = 0; !st && from_tokens && i < l; i++) ids[i] = text[i % n];
    gr_prefix_opts po = {.n_virtual = l, .init_ids = ids};
    if (!st) st = m->method == M_PREFIX ? gr_prefix_attach(g, &po)
                                        : gr_mam_attach(g, &(gr_mam_opts){.prefix = po, .pa_r = s->mam_r, .pa_scale = 4.0f});
    gr_free(text);
    gr_free(ids);
  }
  m->trainable = gr_model_param_count(g->model, true);
  m->total = gr_model_param_count(g->model, false);
  return st;
}

static lm_run_opts run_opts(const study_cfg *s, const char *data, const char *val, const char *from, int64_t steps,
                            double lr, const char *label) {
  lm_run_opts o = {.model = from ? NULL : s->model, .from = from, .data = data, .val_data = val, .tokenizer = "byte",
                   .oc = gr_adamw_cfg((float)lr, 0.01f), .seed = (uint64_t)s->seed, .quiet = s->quiet, .label = label};
  o.tc = (gr_lm_train_cfg){.objective = GR_LM_CAUSAL, .infill = gr_infill_default(), .steps = steps, .batch = s->batch,
                           .seq = 128, .clip_norm = 1.0f, .eval_every = s->eval_every, .eval_tokens = 8192,
                           .seed = (uint64_t)s->seed};
  o.tc.sched = (gr_schedule){.kind = GR_SCHED_COSINE, .warmup_steps = steps / 20, .warmup_start = 0.1f, .min_lr = (float)lr / 10};
  return o;
}

/* Causal validation loss of g on a text spec (8192 tokens, as in training). */
static int eval_on(gr_gpt *g, const gr_tokenizer *t, const char *spec, double *loss) {
  gr_text_spec ts;
  gr_corpus *cp = NULL;
  gr_token_stream st = {0};
  gr_lm_eval ev = {0};
  gr_ctx *c = gr_ctx_new(16 << 20, 1);
  gr_status e = c ? GR_OK : gr_error(GR_ENOMEM, "evaluation: out of memory");
  if (!e) e = gr_text_spec_parse(spec, &ts);
  if (!e) e = gr_text_load(&ts, -1, &cp);
  if (!e) e = gr_corpus_tokenize(cp, t, &st);
  if (!e) e = gr_lm_evaluate(g, c, &st, t, 128, 8192, NULL, &ev);
  *loss = ev.loss;
  gr_ctx_free(c);
  gr_token_stream_free(&st);
  gr_corpus_free(cp);
  return e ? cli_fail_status(spec) : CLI_OK;
}

static int write_result(gr_jsonl *jl, const method_run *m, double source_before) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "run", METHOD_NAMES[m->method]);
  cJSON_AddNumberToObject(j, "trainable_params", (double)m->trainable);
  cJSON_AddNumberToObject(j, "params", (double)m->total);
  cJSON_AddNumberToObject(j, "trainable_pct", 100.0 * (double)m->trainable / (double)m->total);
  cJSON_AddNumberToObject(j, "target_val_loss", m->target_loss);
  cJSON_AddNumberToObject(j, "target_val_ppl", exp(m->target_loss));
  if (!isnan(m->test_loss)) cJSON_AddNumberToObject(j, "target_test_loss", m->test_loss);
  cJSON_AddNumberToObject(j, "source_val_loss", m->source_loss);
  cJSON_AddNumberToObject(j, "source_val_loss_before", source_before);
  cJSON_AddNumberToObject(j, "forgetting", m->source_loss - source_before);
  cJSON_AddNumberToObject(j, "seconds", m->seconds);
  gr_status st = gr_jsonl_write(jl, j);
  cJSON_Delete(j);
  return st ? cli_fail_status("results.jsonl") : CLI_OK;
}

static int run_method(const study_cfg *s, const gr_tokenizer *t, const char *src_dir, int method, method_run *m) {
  *m = (method_run){.s = s, .t = t, .method = method};
  char dir[1100];
  runs_path(dir, sizeof dir, s->out, METHOD_NAMES[method]);
  if (runs_prepare_outdir(dir, true)) return CLI_FAIL;
  lm_run_opts o = run_opts(s, s->target, s->target_val, src_dir, s->target_steps,
                           method == M_FULL ? s->lr_full : s->lr_peft, METHOD_NAMES[method]);
  o.out = dir;
  o.no_model_dir = method != M_FULL;
  o.adapt = adapt_model;
  o.adapt_ud = m;
  lm_run r;
  int rc = lm_run_train(&o, &r);
  if (rc) return rc;
  m->target_loss = r.res.eval.loss;
  m->seconds = r.seconds;
  rc = eval_on(r.g, r.t, s->source_val, &m->source_loss);
  m->test_loss = NAN;
  if (!rc && s->target_test && *s->target_test) rc = eval_on(r.g, r.t, s->target_test, &m->test_loss);
  lm_run_free(&r);
  return rc;
}

/* Whether name is in the comma-separated list. */
static bool method_listed(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; p && *p;) {
    const char *end = strchr(p, ',');
    size_t k = end ? (size_t)(end - p) : strlen(p);
    if (k == n && !strncmp(p, name, n)) return true;
    p = end ? end + 1 : p + k;
  }
  return false;
}

/* One table cell: the number in fmt, or "-" for NaN (not measured). */
static void cell(char *buf, size_t n, const char *fmt, double v) {
  if (isnan(v)) snprintf(buf, n, "-");
  else snprintf(buf, n, fmt, v);
}

static void summary(FILE *fp, const study_cfg *s, const method_run *m, const bool *ran, double source_before) {
  fprintf(fp, "## graft study gpt-peft\n\nKJV -> C headers (%s, val %s), %lld steps per method, batch %lld x 128 bytes, "
              "AdamW cosine, lr %g (full) / %g (PEFT), seed %d.\nSource KJV val loss %.4f nats/char.\n\n",
          s->target, s->target_val, (long long)s->target_steps, (long long)s->batch, s->lr_full, s->lr_peft, s->seed,
          source_before);
  fprintf(fp, "| method | trainable | %% of model | C val loss | C val ppl | gap to full | C test loss | KJV val loss | forgetting |\n");
  fprintf(fp, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int i = 0; i < N_METHODS; i++) {
    if (!ran[i]) continue;
    char gap[32], test[32]; /* "-" where not measured: full not run, no test split */
    cell(gap, sizeof gap, "%+.4f", ran[0] ? m[i].target_loss - m[0].target_loss : NAN);
    cell(test, sizeof test, "%.4f", m[i].test_loss);
    fprintf(fp, "| %s | %lld | %.2f | %.4f | %.3f | %s | %s | %.4f | %+.4f |\n", METHOD_NAMES[i], (long long)m[i].trainable,
            100.0 * (double)m[i].trainable / (double)m[i].total, m[i].target_loss, exp(m[i].target_loss), gap, test,
            m[i].source_loss, m[i].source_loss - source_before);
  }
  fprintf(fp, "\n(loss in nats per byte = per character; LoRA r=%d alpha=%d on c_attn/c_proj/c_fc/mlp.c_proj; prefix l=%d "
              "direct; MAM prefix l=%d + scaled parallel adapter r=%d s=4 per FFN; prefix init: %s; corda-kp: the LoRA "
              "modules from the smallest components, covariance of %d KJV training passages%s)\n",
          s->lora_r, 2 * s->lora_r, s->prefix_l, s->mam_l, s->mam_r,
          strcmp(s->prefix_init, "tokens") ? "N(0,1) (PEFT's)" : "keys/values of C text (Li & Liang)", s->corda_samples,
          s->freeze_a ? "; lora_A frozen at its init (--freeze-a)" : "");
}

static int study_run(const study_cfg *s) {
  char path[1100], src_dir[1100];
  gr_jsonl *jl = gr_jsonl_open(runs_path(path, sizeof path, s->out, "results.jsonl"), true);
  if (!jl) return cli_fail_file(path);
  int rc = CLI_OK;
  if (s->source_dir) snprintf(src_dir, sizeof src_dir, "%s", s->source_dir);
  else {
    runs_path(src_dir, sizeof src_dir, s->out, "kjv");
    lm_run_opts o = run_opts(s, s->source, s->source_val, NULL, s->source_steps, s->lr_source, "kjv");
    o.out = src_dir;
    lm_run r;
    if (!(rc = runs_prepare_outdir(src_dir, true))) rc = lm_run_train(&o, &r);
    if (!rc) lm_run_free(&r);
  }
  double before = NAN;
  gr_gpt *g = NULL;
  gr_tokenizer *t = NULL;
  if (!rc && gr_gpt_load_dir(src_dir, &g, &t, NULL)) rc = cli_fail_file(src_dir);
  if (!rc) rc = eval_on(g, t, s->source_val, &before);
  gr_gpt_free(g);
  method_run m[N_METHODS] = {0};
  bool ran[N_METHODS] = {0};
  for (int i = 0; i < N_METHODS && !rc; i++) {
    if (!method_listed(s->methods, METHOD_NAMES[i])) continue;
    rc = run_method(s, t, src_dir, i, &m[i]);
    if (!rc) rc = write_result(jl, &m[i], before);
    ran[i] = true;
  }
  gr_tokenizer_free(t);
  FILE *fp = NULL;
  if (!rc && !(fp = fopen(runs_path(path, sizeof path, s->out, "summary.md"), "w"))) rc = cli_fail("%s: cannot write", path);
  if (!rc) summary(fp, s, m, ran, before), fclose(fp), summary(stdout, s, m, ran, before);
  gr_jsonl_close(jl);
  return rc;
}

int study_gptpeft_main(int argc, char **argv) {
  study_cfg s = {.model = "gpt:layers=4,heads=4,embd=144,block=128", .source = "kjv", .source_val = "kjv:split=val",
                 .target = "ccode:max=2M", .target_val = "ccode:split=val,max=512K",
                 .target_test = "ccode:split=test,max=512K", .source_steps = 250,
                 .target_steps = 200, .batch = 8, .eval_every = 50, .lr_source = 3e-3, .lr_full = 1e-3,
                 .lr_peft = 5e-3, .methods = "full,lora,prefix,mam", .prefix_init = "tokens", .lora_r = 4, .prefix_l = 16, .mam_l = 8, .mam_r = 32, .corda_samples = 256, .seed = 1, .threads = 1};
  const cli_opt opts[] = {
      {"--out", CLI_STR, &s.out, "output directory"},
      {"--force", CLI_BOOL, &s.force, "overwrite a non-empty output directory"},
      {"--model", CLI_STR, &s.model, "GPT shape of the source model (block must be 128)"},
      {"--source-dir", CLI_STR, &s.source_dir, "use this KJV GPT model directory instead of pretraining one"},
      {"--source", CLI_STR, &s.source, "source text spec"},
      {"--source-val", CLI_STR, &s.source_val, "source validation text (forgetting)"},
      {"--target", CLI_STR, &s.target, "target training text spec"},
      {"--target-val", CLI_STR, &s.target_val, "target validation text spec (choosing settings)"},
      {"--target-test", CLI_STR, &s.target_test, "target test text spec, evaluated once at the end ('' for none)"},
      {"--source-steps", CLI_I64, &s.source_steps, "source pretraining steps"},
      {"--target-steps", CLI_I64, &s.target_steps, "steps of each method"},
      {"--batch", CLI_I64, &s.batch, "sequences per step"},
      {"--eval-every", CLI_I64, &s.eval_every, "steps between validation evaluations"},
      {"--lr-source", CLI_FLOAT, &s.lr_source, "pretraining peak learning rate"},
      {"--lr-full", CLI_FLOAT, &s.lr_full, "full fine-tuning peak learning rate"},
      {"--lr-peft", CLI_FLOAT, &s.lr_peft, "LoRA/prefix/MAM peak learning rate"},
      {"--methods", CLI_STR, &s.methods, "comma-separated subset of full,lora,prefix,mam,corda-kp"},
      {"--prefix-init", CLI_STR, &s.prefix_init, "tokens (the model's keys/values of C text) | random (N(0,1))"},
      {"--lora-r", CLI_INT, &s.lora_r, "LoRA rank (alpha = 2r)"},
      {"--prefix-l", CLI_INT, &s.prefix_l, "prefix length of prefix tuning"},
      {"--mam-l", CLI_INT, &s.mam_l, "MAM prefix length"},
      {"--mam-r", CLI_INT, &s.mam_r, "MAM FFN adapter bottleneck"},
      {"--corda-samples", CLI_INT, &s.corda_samples, "corda-kp: KJV training passages for the covariance"},
      {"--freeze-a", CLI_BOOL, &s.freeze_a, "lora, corda-kp: lora_A stays at its init, only lora_B trains (an ablation)"},
      {"--seed", CLI_INT, &s.seed, "seed"},
      {"--threads", CLI_INT, &s.threads, "threads"},
      {"--quiet", CLI_BOOL, &s.quiet, "no progress output"},
  };
  cli_spec spec = {"study gpt-peft", "graft study gpt-peft --out DIR [--source-dir KJV_MODEL_DIR] [options]",
                   "KJV -> C transfer of a GPT by full fine-tuning, LoRA, prefix tuning and MAM: target perplexity "
                   "against trainable parameters, and forgetting of the source.",
                   opts, (int)(sizeof opts / sizeof opts[0]), 0, 0};
  int np = 0, rc = cli_parse(&spec, argc, argv, NULL, &np);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  gr_gpt_config probe;
  if (!s.out) return fprintf(stderr, "graft study gpt-peft: --out DIR is required\n"), CLI_USAGE;
  if (s.source_steps < 1 || s.target_steps < 1 || s.batch < 1 || s.eval_every < 0 || !(s.lr_source > 0) ||
      !(s.lr_full > 0) || !(s.lr_peft > 0) || s.lora_r < 1 || s.prefix_l < 1 || s.mam_l < 1 || s.mam_r < 1 || s.corda_samples < 1 || s.threads < 0)
    return fprintf(stderr, "graft study gpt-peft: a numeric option is out of range\n"), CLI_USAGE;
  if (strcmp(s.prefix_init, "tokens") && strcmp(s.prefix_init, "random"))
    return fprintf(stderr, "graft study gpt-peft: --prefix-init is tokens or random\n"), CLI_USAGE;
  bool any = false;
  for (int i = 0; i < N_METHODS; i++) any = any || method_listed(s.methods, METHOD_NAMES[i]);
  if (!any) return fprintf(stderr, "graft study gpt-peft: --methods lists none of full,lora,prefix,mam,corda-kp\n"), CLI_USAGE;
  if (!s.source_dir && (rc = lm_parse_model(s.model, &probe))) return rc;
  if (!s.source_dir && probe.block != 128) return fprintf(stderr, "graft study gpt-peft: the study uses block=128\n"), CLI_USAGE;
  gr_set_threads(s.threads);
  if ((rc = runs_prepare_outdir(s.out, s.force))) return rc;
  return study_run(&s);
}
