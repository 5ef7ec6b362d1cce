/* transfer/lm_infill.c — filling a masked line of held-out text
 * (graft/lm.h gr_lm_infill_eval): the same lines scored and greedily
 * decoded either in an infill format (PSM or SPM: the model sees the text
 * after the line) or left to right (prefix only). */
#include <math.h>
#include <string.h>

#include "graft/lm.h"
#include "transfer/lm_internal.h"

#define SPAN_MIN_TOKENS 4
#define SPAN_MAX_TOKENS 48

typedef struct infill_case {
  int64_t pre, a, b, suf; /* prefix s[pre..a), line s[a..b), suffix s[b..suf) */
} infill_case;

/* A line (between two newline tokens, no eos) near a random position, with
 * up to ctx tokens of the same document on either side; false if none. */
static bool pick_case(const gr_token_stream *s, const gr_tokenizer *t, int32_t nl, int64_t ctx, gr_rng *r,
                      infill_case *k) {
  int64_t i = (int64_t)gr_rng_below(r, (uint64_t)s->n);
  while (i < s->n && s->ids[i] != nl) i++; /* the newline before the line */
  int64_t a = i + 1, b = a;
  while (b < s->n && s->ids[b] != nl && s->ids[b] != t->eos && b - a <= SPAN_MAX_TOKENS) b++;
  if (b >= s->n || s->ids[b] != nl || b - a < SPAN_MIN_TOKENS || b - a > SPAN_MAX_TOKENS) return false;
  k->a = a, k->b = b, k->pre = a, k->suf = b;
  while (k->pre > 0 && a - k->pre < ctx && s->ids[k->pre - 1] != t->eos) k->pre--;
  while (k->suf < s->n && k->suf - b < ctx && s->ids[k->suf] != t->eos) k->suf++;
  return a - k->pre >= SPAN_MIN_TOKENS; /* some left context */
}

/* The prompt of a case into seq; *n its length, *first where the line's
 * tokens would start if appended. */
int64_t gr_lm_infill_prompt(const gr_tokenizer *t, const int32_t *prefix, int64_t np, const int32_t *suffix, int64_t ns,
                            gr_infill_format f, int32_t *out) {
  int64_t w = 0;
  if (f == GR_INFILL_SPM) {
    out[w++] = t->mask[0];
    for (int64_t i = 0; i < ns; i++) out[w++] = suffix[i];
    out[w++] = t->sep;
  }
  for (int64_t i = 0; i < np; i++) out[w++] = prefix[i];
  if (f == GR_INFILL_PSM) {
    out[w++] = t->mask[0];
    for (int64_t i = 0; i < ns; i++) out[w++] = suffix[i];
    out[w++] = t->eos, out[w++] = t->sep, out[w++] = t->mask[0];
  }
  return w;
}

/* Case k's prompt (its prefix and suffix out of s) into seq. */
static void build_prompt(const gr_token_stream *s, const gr_tokenizer *t, const infill_case *k, gr_infill_format f,
                         int32_t *seq, int64_t *n) {
  *n = gr_lm_infill_prompt(t, s->ids + k->pre, k->a - k->pre, s->ids + k->b, k->suf - k->b, f, seq);
}

static double case_nll(gr_gpt *g, gr_ctx *c, const gr_token_stream *s, const infill_case *k, int32_t *seq,
                       int64_t n_prompt, gr_status *st) {
  int64_t L = k->b - k->a, V = g->cfg.vocab;
  memcpy(seq + n_prompt, s->ids + k->a, (size_t)L * sizeof(int32_t));
  gr_ctx_reset(c);
  gr_tensor *logits = gr_gpt_forward(g, c, seq, 1, n_prompt + L - 1, 0, NULL);
  if (!logits) return *st = gr_last_status(), 0;
  double nll = 0;
  for (int64_t j = 0; j < L; j++) nll += lm_token_nll(logits->data + (n_prompt - 1 + j) * V, V, seq[n_prompt + j]);
  return nll;
}

static bool case_exact(gr_gpt *g, gr_ctx *c, const gr_tokenizer *t, const gr_token_stream *s, const infill_case *k,
                       const int32_t *seq, int64_t n_prompt, bool infill, gr_status *st) {
  int64_t L = k->b - k->a, n_out = 0;
  int32_t out[SPAN_MAX_TOKENS + 2];
  gr_gpt_sample_opts o = {.temperature = 0, .stop_id = infill ? t->eom : -1};
  *st = gr_gpt_generate(g, c, seq, n_prompt, infill ? L + 1 : L, &o, NULL, out, &n_out, NULL);
  if (*st || n_out < L) return false;
  if (memcmp(out, s->ids + k->a, (size_t)L * sizeof(int32_t))) return false;
  return !infill || (n_out == L + 1 && out[L] == t->eom);
}

gr_status gr_lm_infill_eval(gr_gpt *g, gr_ctx *c, const gr_tokenizer *t, const gr_token_stream *s, gr_infill_format format,
                            int64_t n_cases, int64_t ctx, uint64_t seed, gr_infill_eval *out) {
  if (!g || !c || !t || !s || !out) return gr_error(GR_EARG, "infill eval: NULL argument");
  if (format < GR_INFILL_LEFT_TO_RIGHT || format > GR_INFILL_SPM) return gr_error(GR_EARG, "infill eval: format %d", (int)format);
  bool infill_format = format != GR_INFILL_LEFT_TO_RIGHT;
  memset(out, 0, sizeof *out);
  if (n_cases < 1 || ctx < SPAN_MIN_TOKENS) return gr_error(GR_EARG, "infill eval: %lld cases, context %lld", (long long)n_cases, (long long)ctx);
  if (2 * ctx + SPAN_MAX_TOKENS + 6 > g->cfg.block)
    return gr_error(GR_EARG, "infill eval: 2 x context %lld + a line of %d + 6 exceed the block size %lld", (long long)ctx,
                    SPAN_MAX_TOKENS, (long long)g->cfg.block);
  int32_t *nl_ids = NULL;
  int64_t n_nl = 0;
  gr_status st = gr_tokenizer_encode(t, "\n", 1, &nl_ids, &n_nl);
  if (st) return st;
  int32_t nl = n_nl == 1 ? nl_ids[0] : -1;
  gr_free(nl_ids);
  if (nl < 0) return gr_error(GR_EARG, "infill eval: the tokenizer has no single newline token");
  int32_t *seq = gr_malloc((size_t)g->cfg.block * sizeof(int32_t));
  if (!seq) return gr_error(GR_ENOMEM, "infill eval: out of memory");
  bool grad = gr_ctx_grad(c);
  gr_ctx_set_grad(c, false);
  gr_rng r = gr_rng_stream(seed, 0x696e66696c6cull);
  double nll = 0;
  int64_t exact = 0;
  for (int64_t tries = 0; !st && out->cases < n_cases && tries < 1000 * n_cases; tries++) {
    infill_case k;
    int64_t n;
    if (!pick_case(s, t, nl, ctx, &r, &k)) continue;
    build_prompt(s, t, &k, format, seq, &n);
    nll += case_nll(g, c, s, &k, seq, n, &st);
    if (!st) exact += case_exact(g, c, t, s, &k, seq, n, infill_format, &st);
    out->cases++;
    out->span_tokens += k.b - k.a;
  }
  gr_ctx_reset(c);
  gr_ctx_set_grad(c, grad);
  gr_free(seq);
  if (st) return st;
  if (out->cases == 0) return gr_error(GR_EARG, "infill eval: no line of %d..%d tokens found", SPAN_MIN_TOKENS, SPAN_MAX_TOKENS);
  out->span_loss = nll / (double)out->span_tokens;
  out->exact = (double)exact / (double)out->cases;
  return GR_OK;
}
