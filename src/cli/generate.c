/* cli/generate.c — `graft generate --model DIR --prompt TEXT`: continue a
 * prompt with a GPT model directory (graft/lm.h) by greedy, temperature or
 * top-k sampling, stopping at <|endoftext|>. With --suffix TEXT it fills
 * the gap between prompt and suffix in the span-corruption infill format
 * (prompt <mask_1> suffix <eos> <sep> <mask_1> ... <eom>), for models
 * trained with --objective infill, mix or fim; a model trained with
 * fim-spm gets the SPM layout (<mask_1> suffix <sep> prompt ... <eom>).
 * Prints the text to stdout. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "graft/lm.h"

/* The prompt's ids (infill layout when suffix is set: PSM, or SPM when spm)
 * into a gr_malloc'd array. */
static gr_status build_prompt(const gr_tokenizer *t, const char *prompt, const char *suffix, bool spm, int32_t **ids,
                              int64_t *n) {
  int32_t *p = NULL, *s = NULL;
  int64_t np = 0, ns = 0;
  gr_status st = gr_tokenizer_encode(t, prompt, strlen(prompt), &p, &np);
  if (!st && suffix) st = gr_tokenizer_encode(t, suffix, strlen(suffix), &s, &ns);
  if (!st && !(*ids = gr_malloc((size_t)(np + ns + 5) * sizeof(int32_t)))) st = gr_error(GR_ENOMEM, "generate: out of memory");
  gr_infill_format f = !suffix ? GR_INFILL_LEFT_TO_RIGHT : spm ? GR_INFILL_SPM : GR_INFILL_PSM;
  if (!st) *n = gr_lm_infill_prompt(t, p, np, s, ns, f, *ids);
  gr_free(p);
  gr_free(s);
  return st;
}

static int print_ids(const gr_tokenizer *t, const int32_t *ids, int64_t n) {
  char *text = NULL;
  size_t len = 0;
  if (gr_tokenizer_decode(t, ids, n, &text, &len)) return cli_fail_status("decoding");
  fwrite(text, 1, len, stdout);
  gr_free(text);
  return CLI_OK;
}

int cmd_generate(int argc, char **argv) {
  const char *model = NULL, *prompt = NULL, *suffix = NULL;
  int64_t tokens = 0;
  double temperature = 0.8;
  int top_k = 0, seed = 1, threads = 1;
  bool no_cache = false;
  const cli_opt opts[] = {
      {"--model", CLI_STR, &model, "GPT model directory (graft train --model gpt:...)"},
      {"--prompt", CLI_STR, &prompt, "text to continue (not empty)"},
      {"--suffix", CLI_STR, &suffix, "infill: text after the gap (models trained with --objective infill|mix|fim)"},
      {"--tokens", CLI_I64, &tokens, "new tokens at most (0: until the block size is reached)"},
      {"--temperature", CLI_FLOAT, &temperature, "sampling temperature (0: greedy)"},
      {"--top-k", CLI_INT, &top_k, "sample among the k most likely tokens (0: all)"},
      {"--seed", CLI_INT, &seed, "sampling seed"},
      {"--threads", CLI_INT, &threads, "threads"},
      {"--no-cache", CLI_BOOL, &no_cache, "recompute every position at each step (reference path)"},
  };
  cli_spec spec = {"generate", "graft generate --model DIR --prompt TEXT [--tokens N] [--temperature T] [--top-k K] [--seed S]",
                   "Continue a prompt (or fill the gap before --suffix) with a GPT model directory.", opts,
                   (int)(sizeof opts / sizeof opts[0]), 0, 0};
  int n_pos = 0, rc = cli_parse(&spec, argc, argv, NULL, &n_pos);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  if (!model || !prompt) return fprintf(stderr, "graft generate: --model DIR and --prompt TEXT are required\n"), CLI_USAGE;
  if (tokens < 0 || top_k < 0 || !(temperature >= 0) || threads < 0)
    return fprintf(stderr, "graft generate: --tokens >= 0, --top-k >= 0, --temperature >= 0\n"), CLI_USAGE;
  if (!prompt[0]) return cli_fail("generate: the prompt is empty (give at least one character)");
  gr_set_threads(threads);
  gr_gpt *g = NULL;
  gr_tokenizer *t = NULL;
  gr_gpt_meta meta = {0};
  if (gr_gpt_load_dir(model, &g, &t, &meta)) return cli_fail_file(model);
  int32_t *ids = NULL, *out = NULL;
  int64_t n = 0, n_out = 0;
  if (build_prompt(t, prompt, suffix, !strcmp(meta.objective, "fim-spm"), &ids, &n)) rc = cli_fail_status("prompt");
  if (!rc && tokens == 0) tokens = g->cfg.block - n > 0 ? g->cfg.block - n : 1; /* too long a prompt fails below */
  if (!rc) out = gr_malloc((size_t)tokens * sizeof(int32_t));
  gr_ctx *c = gr_ctx_new(8 << 20, (uint64_t)seed);
  gr_rng r;
  gr_rng_seed(&r, (uint64_t)seed);
  gr_gpt_sample_opts so = {.temperature = (float)temperature, .top_k = top_k, .no_cache = no_cache,
                           .stop_id = suffix ? t->eom : t->eos};
  if (!rc && (!out || !c)) rc = cli_fail("generate: out of memory");
  else if (!rc && gr_gpt_generate(g, c, ids, n, tokens, &so, &r, out, &n_out, NULL)) rc = cli_fail_status("generate");
  if (!rc && n_out && out[n_out - 1] == so.stop_id) n_out--; /* the stop token is not text */
  if (!rc) fputs(prompt, stdout); /* decode(encode(x)) == x for every tokenizer */
  if (!rc) rc = print_ids(t, out, n_out);
  if (!rc && suffix) fputs(suffix, stdout);
  if (!rc) putchar('\n');
  gr_free(ids);
  gr_free(out);
  gr_ctx_free(c);
  gr_gpt_free(g);
  gr_tokenizer_free(t);
  return rc;
}
