/* cli/lm_runs.c — one language-model training run for the CLI (see
 * cli/lm_runs.h): data and tokenizer, model from a spec or a directory,
 * training with a progress line and metrics.jsonl, the model directory. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/lm_runs.h"
#include "cli/runs.h"
#include "graft/dist.h"

int lm_parse_model(const char *spec, gr_gpt_config *cfg) {
  *cfg = (gr_gpt_config){.block = 128, .n_layer = 4, .n_head = 4, .n_embd = 128};
  if (strncmp(spec, "gpt", 3) || (spec[3] && spec[3] != ':')) {
    fprintf(stderr, "graft: --model '%s': text models are gpt[:layers=L,heads=H,embd=C,block=T]\n", spec);
    return CLI_USAGE;
  }
  char buf[256];
  snprintf(buf, sizeof buf, "%s", spec[3] ? spec + 4 : "");
  for (char *save = NULL, *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(it, '='), *end = NULL;
    long long v = eq ? strtoll(eq + 1, &end, 10) : 0;
    int64_t *dst = !eq ? NULL
                   : !strncmp(it, "layers=", 7) ? &cfg->n_layer
                   : !strncmp(it, "heads=", 6)  ? &cfg->n_head
                   : !strncmp(it, "embd=", 5)   ? &cfg->n_embd
                   : !strncmp(it, "block=", 6)  ? &cfg->block : NULL;
    if (!dst || end == eq + 1 || *end || v < 1) {
      fprintf(stderr, "graft: --model '%s': bad option '%s' (layers, heads, embd, block: positive integers)\n", spec, it);
      return CLI_USAGE;
    }
    *dst = v;
  }
  return CLI_OK;
}

void lm_run_free(lm_run *r) {
  gr_gpt_free(r->g);
  gr_tokenizer_free(r->t);
  gr_token_stream_free(&r->train);
  gr_token_stream_free(&r->val);
  free(r->unigram);
  memset(r, 0, sizeof *r);
}

/* Loads spec's split (val: the spec with split=val unless val_spec). */
static int load_stream(const char *spec, int split, gr_corpus **out) {
  gr_text_spec ts;
  if (gr_text_spec_parse(spec, &ts) || gr_text_load(&ts, split, out)) return cli_fail_status(spec);
  return CLI_OK;
}

static int prepare(const lm_run_opts *o, lm_run *r) {
  gr_corpus *train = NULL, *val = NULL;
  int rc = load_stream(o->data, GR_SPLIT_TRAIN, &train);
  if (!rc) rc = load_stream(o->val_data ? o->val_data : o->data, o->val_data ? -1 : GR_SPLIT_VAL, &val);
  gr_gpt_config cfg;
  if (!rc && o->from && gr_gpt_load_dir(o->from, &r->g, &r->t, NULL)) rc = cli_fail_file(o->from);
  if (!rc && !o->from) {
    if ((rc = lm_parse_model(o->model, &cfg))) rc = CLI_FAIL;
    else if (gr_tokenizer_from_name(o->tokenizer, train->text, (size_t)train->len, &r->t)) rc = cli_fail_status("tokenizer");
    else if ((cfg.vocab = r->t->vocab), gr_gpt_new(&cfg, o->seed, &r->g)) rc = cli_fail_status("model");
  }
  if (!rc && (gr_corpus_tokenize(train, r->t, &r->train) || gr_corpus_tokenize(val, r->t, &r->val)))
    rc = cli_fail_status("tokenizing the data");
  if (!rc && !(r->unigram = malloc((size_t)r->t->vocab * sizeof(double)))) rc = cli_fail("out of memory");
  if (!rc && gr_lm_unigram_logp(&r->train, r->t, r->unigram)) rc = cli_fail_status("unigram baseline");
  gr_corpus_free(train);
  gr_corpus_free(val);
  return rc;
}

typedef struct run_log {
  gr_progress *bar;
  gr_jsonl *jl;
  gr_status st;
  bool quiet;
  const char *label;
} run_log;

static void on_step(void *ud, int64_t step, int64_t total, double loss) {
  run_log *l = ud;
  char s[64];
  snprintf(s, sizeof s, "loss %.4f", loss);
  if (l->bar) gr_progress_update(l->bar, step + 1, s);
}

static void on_eval(void *ud, int64_t step, double train_loss, const gr_lm_eval *ev) {
  run_log *l = ud;
  if (!l->quiet)
    fprintf(stderr, "%s: step %lld train_loss %.4f val_loss %.4f val_bpc %.4f unigram_bpc %.4f\n", l->label,
            (long long)step, train_loss, ev->loss, ev->bpc, ev->unigram_bpc);
  cJSON *o = cJSON_CreateObject();
  if (!o) return (void)(l->st = gr_error(GR_ENOMEM, "metrics: out of memory"));
  cJSON_AddStringToObject(o, "type", "eval");
  cJSON_AddNumberToObject(o, "step", (double)step);
  cJSON_AddNumberToObject(o, "train_loss", train_loss);
  cJSON_AddNumberToObject(o, "val_loss", ev->loss);
  cJSON_AddNumberToObject(o, "val_bpc", ev->bpc);
  cJSON_AddNumberToObject(o, "unigram_bpc", ev->unigram_bpc);
  cJSON_AddNumberToObject(o, "val_tokens", (double)ev->tokens);
  if (l->jl && !l->st) l->st = gr_jsonl_write(l->jl, o);
  cJSON_Delete(o);
}

int lm_run_train(const lm_run_opts *o, lm_run *r) {
  memset(r, 0, sizeof *r);
  int rc = prepare(o, r);
  if (!rc && o->adapt && o->adapt(r->g, o->adapt_ud)) rc = cli_fail_status(o->label ? o->label : "adapting the model");
  if (rc) return lm_run_free(r), rc;
  char path[1100];
  bool lead = gr_dist_rank() == 0; /* data-parallel runs: rank 0 alone writes and prints */
  run_log l = {.quiet = o->quiet || !lead, .label = o->label ? o->label : "train"};
  if (o->out && lead && !(l.jl = gr_jsonl_open(runs_path(path, sizeof path, o->out, "metrics.jsonl"), true)))
    return lm_run_free(r), cli_fail_file(path);
  if (!l.quiet) {
    fprintf(stderr, "%s: %lld parameters (%lld trainable), vocab %d, train %lld tokens, val %lld tokens, objective %s\n", l.label,
            (long long)gr_model_param_count(r->g->model, false), (long long)gr_model_param_count(r->g->model, true), r->t->vocab, (long long)r->train.n, (long long)r->val.n,
            gr_lm_objective_name(o->tc.objective));
    l.bar = gr_progress_new(stderr, l.label, o->tc.steps, GR_PROGRESS_AUTO);
  }
  gr_optim *opt = gr_optim_new(r->g->model, &o->oc);
  gr_lm_train_hooks h = {&l, on_step, on_eval};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  gr_status st = opt ? gr_lm_train(r->g, opt, r->t, &r->train, &r->val, r->unigram, &o->tc, &h, &r->res) : gr_last_status();
  clock_gettime(CLOCK_MONOTONIC, &t1);
  r->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  gr_progress_finish(l.bar, st ? "failed" : NULL);
  gr_optim_free(opt);
  if (!st) st = l.st;
  gr_gpt_meta meta = {0};
  snprintf(meta.data, sizeof meta.data, "%s", o->data);
  snprintf(meta.objective, sizeof meta.objective, "%s", gr_lm_objective_name(o->tc.objective));
  if (!st && o->out && lead && !o->no_model_dir) st = gr_gpt_save_dir(r->g, r->t, &meta, o->out);
  gr_jsonl_close(l.jl);
  if (st) return lm_run_free(r), cli_fail_status("training");
  return CLI_OK;
}
