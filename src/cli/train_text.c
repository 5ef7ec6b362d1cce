/* cli/train_text.c — `graft train --model gpt:... --data kjv|ccode|wordnet`:
 * train a GPT language model on a text spec with an objective (causal,
 * prefix, infill, mix), optionally starting from a GPT model directory
 * (--from: fine-tuning, its tokenizer is kept). cmd_train hands over here
 * when --model names a gpt or --from is given. Writes a GPT model directory
 * (graft/lm.h) with metrics.jsonl. */
#include <string.h>

#include "cli/lm_runs.h"
#include "cli/runs.h"
#include "graft/dist.h"

/* True when argv asks for a text model (--model gpt... or --from DIR). */
bool train_text_wanted(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strncmp(a, "--model=gpt", 11) || !strncmp(a, "--from", 6)) return true;
    if (!strcmp(a, "--model") && i + 1 < argc && !strncmp(argv[i + 1], "gpt", 3)) return true;
  }
  return false;
}

#define TEXT_NOPTS 8

int cmd_train_text(int argc, char **argv) {
  runs_train_flags f;
  cli_opt opts[RUNS_TRAIN_NOPTS + TEXT_NOPTS];
  runs_train_flags_init(&f, opts);
  f.optim = "adamw", f.lr = 3e-3, f.batch = 16, f.momentum = 0, f.schedule = "cosine", f.clip = 1.0;
  const char *model = NULL, *from = NULL, *tokenizer = "byte", *objective = "causal";
  int64_t seq = 0, eval_tokens = 32768;
  double mix = 0.5, span_len = 8;
  const cli_opt extra[TEXT_NOPTS] = {
      {"--model", CLI_STR, &model, "gpt[:layers=4,heads=4,embd=128,block=128]"},
      {"--from", CLI_STR, &from, "start from this GPT model directory (fine-tuning; keeps its tokenizer)"},
      {"--tokenizer", CLI_STR, &tokenizer, "byte|char|bpe:N (char and bpe learn from the training text)"},
      {"--objective", CLI_STR, &objective, "causal|prefix|infill|mix|fim|fim-spm"},
      {"--seq", CLI_I64, &seq, "tokens per training sequence (0: the block size)"},
      {"--eval-tokens", CLI_I64, &eval_tokens, "validation tokens per evaluation (0: all)"},
      {"--mix", CLI_FLOAT, &mix, "mix, fim: fraction of span-corrupted / FIM sequences"},
      {"--span-len", CLI_FLOAT, &span_len, "infill: mean span length in tokens"},
  };
  memcpy(opts + RUNS_TRAIN_NOPTS, extra, sizeof extra);
  cli_spec spec = {"train", "graft train --model gpt[:...] --data kjv|ccode|wordnet[:opts] --steps N --out DIR [options]",
                   "Train a GPT language model on text (validation: the data's val split unless --test-data); "
                   "--from DIR fine-tunes a GPT model directory instead.",
                   opts, RUNS_TRAIN_NOPTS + TEXT_NOPTS, 0, 0};
  gr_train_cfg tc;
  gr_optim_cfg oc;
  int rc = runs_train_parse(&spec, argc, argv, &f, &tc, &oc);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  gr_gpt_config probe;
  lm_run_opts o = {.model = model, .from = from, .data = f.data, .val_data = f.test_data, .tokenizer = tokenizer,
                   .out = f.out, .oc = oc, .seed = (uint64_t)f.seed, .quiet = f.quiet, .label = "train"};
  if (f.steps < 1) return fprintf(stderr, "graft train: text models need --steps N\n"), CLI_USAGE;
  if (!!model == !!from) return fprintf(stderr, "graft train: give exactly one of --model gpt[:...] and --from DIR\n"), CLI_USAGE;
  if (model && (rc = lm_parse_model(model, &probe))) return rc;
  if (model && seq > probe.block)
    return fprintf(stderr, "graft train: --seq %lld exceeds the model's block size %lld\n", (long long)seq, (long long)probe.block), CLI_USAGE;
  if (gr_lm_objective_parse(objective, &o.tc.objective)) return fprintf(stderr, "graft train: %s\n", gr_last_error()), CLI_USAGE;
  if (f.resume || f.ckpt_every || f.stop_at)
    return fprintf(stderr, "graft train: checkpoints and --resume are not supported for text models yet\n"), CLI_USAGE;
  if (f.patience || f.label_smoothing > 0 || strcmp(f.augment, "none") || seq < 0 || eval_tokens < 0 || !(mix >= 0 && mix <= 1) ||
      !(span_len >= 1))
    return fprintf(stderr, "graft train: text models take no --patience, --label-smoothing or --augment; "
                           "--seq, --eval-tokens >= 0, --mix in [0,1], --span-len >= 1\n"), CLI_USAGE;
  o.tc.infill = gr_infill_default();
  o.tc.infill.mix_infill = (float)mix, o.tc.infill.mean_len = (float)span_len;
  o.tc.steps = f.steps, o.tc.batch = f.batch, o.tc.sched = tc.sched, o.tc.clip_norm = tc.clip_norm;
  o.tc.eval_every = f.eval_every, o.tc.eval_tokens = eval_tokens, o.tc.seed = (uint64_t)f.seed;
  o.tc.seq = seq > 0 ? seq : model ? probe.block : 0;
  gr_set_threads(f.threads);
  if ((rc = runs_prepare_outdir(f.out, f.force))) return rc;
  lm_run r;
  if (from && o.tc.seq == 0) { /* the block size of the loaded model */
    gr_gpt *g = NULL;
    gr_tokenizer *t = NULL;
    if (gr_gpt_load_dir(from, &g, &t, NULL)) return cli_fail_file(from);
    o.tc.seq = g->cfg.block;
    gr_gpt_free(g), gr_tokenizer_free(t);
  }
  if ((rc = lm_run_train(&o, &r))) return rc;
  if (gr_dist_rank() != 0) return lm_run_free(&r), CLI_OK; /* data-parallel runs: rank 0 prints */
  runs_print_dist(r.res.steps);
  printf("steps %lld  train_loss %.4f  val_loss %.4f  val_bpc %.4f  unigram_bpc %.4f  (%.1f s)\n", (long long)r.res.steps,
         r.res.train_loss, r.res.eval.loss, r.res.eval.bpc, r.res.eval.unigram_bpc, r.seconds);
  lm_run_free(&r);
  return CLI_OK;
}
