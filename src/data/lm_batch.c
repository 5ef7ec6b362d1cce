/* data/lm_batch.c — language-model training objectives of graft/text.h:
 * causal, prefix-LM and CodeGen2-style span corruption (infill) in
 * decoder-only form, their mixture, and fill-in-the-middle (one span, the
 * format of the infill evaluation, mixed with causal rows), as (ids,
 * targets) batches cut from a token stream. The model and its loss are in nn/gpt.c. */
#include <math.h>
#include <string.h>

#include "graft/text.h"

gr_status gr_lm_objective_parse(const char *name, gr_lm_objective *out) {
  for (int i = 0; name && out && i < GR_LM_OBJECTIVES; i++)
    if (!strcmp(name, gr_lm_objective_name((gr_lm_objective)i))) return *out = (gr_lm_objective)i, GR_OK;
  return gr_error(GR_EARG, "objective '%s' (causal|prefix|infill|mix|fim|fim-spm)", name ? name : "(null)");
}

const char *gr_lm_objective_name(gr_lm_objective o) {
  static const char *const names[GR_LM_OBJECTIVES] = {"causal", "prefix", "infill", "mix", "fim", "fim-spm"};
  return o >= 0 && o < GR_LM_OBJECTIVES ? names[o] : "?";
}

gr_infill_cfg gr_infill_default(void) { return (gr_infill_cfg){.rate = 0.15f, .mean_len = 8.0f, .mix_infill = 0.5f}; }

gr_status gr_lm_format_infill(const gr_tokenizer *t, const int32_t *src, int64_t L, const int64_t *starts,
                              const int64_t *lens, int k, int32_t *seq, int64_t cap, int64_t *n_seq) {
  if (!t || !src || !starts || !lens || !seq || !n_seq) return gr_error(GR_EARG, "infill format: NULL argument");
  if (k < 1 || k > GR_TOK_MASKS) return gr_error(GR_EARG, "infill format: %d spans (1..%d)", k, GR_TOK_MASKS);
  for (int i = 0; i < k; i++)
    if (lens[i] < 1 || starts[i] < (i ? starts[i - 1] + lens[i - 1] : 0) || starts[i] + lens[i] > L)
      return gr_error(GR_EARG, "infill format: span %d (start %lld, length %lld) is empty, overlaps or leaves [0,%lld)", i,
                      (long long)starts[i], (long long)lens[i], (long long)L);
  if (L + 3 * k + 2 > cap)
    return gr_error(GR_EARG, "infill format: %lld tokens formatted exceed the capacity %lld", (long long)(L + 3 * k + 2),
                    (long long)cap);
  int64_t w = 0, at = 0;
  for (int i = 0; i < k; i++) { /* corrupted text: spans replaced by their sentinels */
    memcpy(seq + w, src + at, (size_t)(starts[i] - at) * sizeof(int32_t));
    w += starts[i] - at;
    seq[w++] = t->mask[i];
    at = starts[i] + lens[i];
  }
  memcpy(seq + w, src + at, (size_t)(L - at) * sizeof(int32_t));
  w += L - at;
  seq[w++] = t->eos;
  seq[w++] = t->sep;
  for (int i = 0; i < k; i++) { /* the targets: sentinel, span, end of mask */
    seq[w++] = t->mask[i];
    memcpy(seq + w, src + starts[i], (size_t)lens[i] * sizeof(int32_t));
    w += lens[i];
    seq[w++] = t->eom;
  }
  *n_seq = w;
  return GR_OK;
}

gr_status gr_lm_format_spm(const gr_tokenizer *t, const int32_t *src, int64_t L, int64_t start, int64_t len, int32_t *seq,
                           int64_t cap, int64_t *n_seq) {
  if (!t || !src || !seq || !n_seq) return gr_error(GR_EARG, "spm format: NULL argument");
  if (len < 1 || start < 0 || start + len > L)
    return gr_error(GR_EARG, "spm format: middle (start %lld, length %lld) is empty or leaves [0,%lld)", (long long)start,
                    (long long)len, (long long)L);
  if (L + 3 > cap) return gr_error(GR_EARG, "spm format: %lld tokens formatted exceed the capacity %lld", (long long)(L + 3), (long long)cap);
  int64_t w = 0, end = start + len;
  seq[w++] = t->mask[0];
  memcpy(seq + w, src + end, (size_t)(L - end) * sizeof(int32_t));
  w += L - end;
  seq[w++] = t->sep;
  memcpy(seq + w, src, (size_t)end * sizeof(int32_t)); /* prefix then middle */
  w += end;
  seq[w++] = t->eom;
  *n_seq = w;
  return GR_OK;
}

/* m positive parts summing to n (a random composition) into parts. */
static void random_composition(gr_rng *r, int64_t n, int m, int64_t *parts) {
  int64_t cuts[GR_TOK_MASKS + 2];
  int nc = 0;
  while (nc < m - 1) { /* m-1 distinct cut points in 1..n-1 */
    int64_t c = 1 + (int64_t)gr_rng_below(r, (uint64_t)(n - 1));
    bool dup = false;
    for (int j = 0; j < nc; j++) dup |= cuts[j] == c;
    if (!dup) cuts[nc++] = c;
  }
  for (int i = 1; i < nc; i++) /* insertion sort */
    for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
      int64_t x = cuts[j];
      cuts[j] = cuts[j - 1], cuts[j - 1] = x;
    }
  int64_t prev = 0;
  for (int i = 0; i < m; i++) {
    int64_t c = i < nc ? cuts[i] : n;
    parts[i] = c - prev;
    prev = c;
  }
}

gr_status gr_lm_plan_spans(gr_rng *r, int64_t L, const gr_infill_cfg *cfg, int64_t *starts, int64_t *lens, int *k) {
  if (!r || !cfg || !starts || !lens || !k) return gr_error(GR_EARG, "plan spans: NULL argument");
  if (!(cfg->rate > 0 && cfg->rate < 1) || !(cfg->mean_len >= 1))
    return gr_error(GR_EARG, "plan spans: rate %g must be in (0,1), mean length %g >= 1", (double)cfg->rate, (double)cfg->mean_len);
  int64_t noise = (int64_t)lround((double)L * cfg->rate);
  int m = (int)lround((double)noise / cfg->mean_len);
  m = m < 1 ? 1 : m > GR_TOK_MASKS ? GR_TOK_MASKS : m;
  if (noise < m) noise = m;
  if (L < noise + m + 1) return gr_error(GR_EARG, "plan spans: a source of %lld tokens is too short for %d spans", (long long)L, m);
  /* keep: m+1 gaps, the inner m-1 at least 1 token: a composition of
   * keep + 2 into m+1 positive parts, minus one at each end */
  int64_t keep = L - noise, gaps[GR_TOK_MASKS + 1];
  random_composition(r, noise, m, lens);
  random_composition(r, keep + 2, m + 1, gaps);
  gaps[0]--, gaps[m]--;
  int64_t at = 0;
  for (int i = 0; i < m; i++) {
    at += gaps[i];
    starts[i] = at;
    at += lens[i];
  }
  *k = m;
  return GR_OK;
}

/* ---- batches ------------------------------------------------------------------------ */
gr_status gr_lm_window_row(const gr_token_stream *s, int64_t o, int64_t T, int64_t prefix_len, int32_t *ids,
                           int32_t *targets) {
  if (!s || !ids || !targets) return gr_error(GR_EARG, "lm window: NULL argument");
  if (o < 0 || T < 1 || o + T + 1 > s->n || prefix_len < 0 || prefix_len > T)
    return gr_error(GR_EARG, "lm window: offset %lld + %lld + 1 tokens outside the stream of %lld (prefix %lld)",
                    (long long)o, (long long)T, (long long)s->n, (long long)prefix_len);
  memcpy(ids, s->ids + o, (size_t)T * sizeof(int32_t));
  memcpy(targets, s->ids + o + 1, (size_t)T * sizeof(int32_t));
  for (int64_t i = 0; i + 1 < prefix_len; i++) targets[i] = -1;
  return GR_OK;
}

/* ids = seq[0..T), targets = seq[1..T] where they exist, eos / -1 after. */
static void row_from_seq(const gr_tokenizer *t, const int32_t *seq, int64_t n, int64_t T, int32_t *ids, int32_t *targets) {
  for (int64_t i = 0; i < T; i++) {
    ids[i] = i < n ? seq[i] : t->eos;
    targets[i] = i + 1 < n ? seq[i + 1] : -1;
  }
}

gr_status gr_lm_infill_row(const gr_tokenizer *t, const int32_t *src, int64_t L, const int64_t *starts,
                           const int64_t *lens, int k, int64_t T, int32_t *ids, int32_t *targets) {
  int32_t work[GR_LM_MAX_INFILL + 1];
  int64_t n;
  if (!ids || !targets || T < 1 || T > GR_LM_MAX_INFILL)
    return gr_error(GR_EARG, "infill row: NULL output or length %lld outside 1..%d", (long long)T, GR_LM_MAX_INFILL);
  gr_status st = gr_lm_format_infill(t, src, L, starts, lens, k, work, T + 1, &n);
  if (!st) row_from_seq(t, work, n, T, ids, targets);
  return st;
}

/* A random window of up to budget tokens of one document (cut at the first
 * eos), at least 8 tokens long: its offset and length. */
static gr_status doc_window(const gr_token_stream *s, const gr_tokenizer *t, int64_t budget, gr_rng *r, int64_t *o,
                            int64_t *L) {
  *L = 0;
  for (int tries = 0; tries < 64 && *L < 8; tries++) {
    *o = (int64_t)gr_rng_below(r, (uint64_t)(s->n - budget + 1));
    for (*L = 0; *L < budget && s->ids[*o + *L] != t->eos; ++*L) {}
  }
  return *L < 8 ? gr_error(GR_EARG, "infill: no document of at least 8 tokens found in the stream") : GR_OK;
}

/* A document window span corrupted, as one row of T tokens. */
static gr_status infill_sample(const gr_token_stream *s, const gr_tokenizer *t, const gr_infill_cfg *cfg, int64_t T,
                               gr_rng *r, int32_t *ids, int32_t *targets) {
  int64_t budget = T + 1 - 3 * GR_TOK_MASKS - 2; /* source tokens that fit with the most spans */
  if (budget < 2 * GR_TOK_MASKS + 1)
    return gr_error(GR_EARG, "infill: block size %lld is too small for span corruption (needs >= %d)", (long long)T,
                    5 * GR_TOK_MASKS + 2);
  int64_t L, o, starts[GR_TOK_MASKS], lens[GR_TOK_MASKS];
  int k;
  gr_status st = doc_window(s, t, budget, r, &o, &L);
  if (!st) st = gr_lm_plan_spans(r, L, cfg, starts, lens, &k);
  return st ? st : gr_lm_infill_row(t, s->ids + o, L, starts, lens, k, T, ids, targets);
}

/* Fill in the middle: a document window cut at two distinct uniform points
 * c1 < c2 in [0, L] into prefix, middle (>= 1 token) and suffix, as
 * prefix <mask_1> suffix <eos> <sep> <mask_1> middle <eom> (T + 1 tokens at
 * most), or in SPM order (gr_lm_format_spm). */
static gr_status fim_sample(const gr_token_stream *s, const gr_tokenizer *t, int64_t T, bool spm, gr_rng *r, int32_t *ids,
                            int32_t *targets) {
  if (T < 16) return gr_error(GR_EARG, "fim: block size %lld is too small (needs >= 16)", (long long)T);
  int64_t L, o;
  gr_status st = doc_window(s, t, T + 1 - 5, r, &o, &L);
  if (st) return st;
  int64_t c1 = (int64_t)gr_rng_below(r, (uint64_t)(L + 1)), c2 = c1;
  while (c2 == c1) c2 = (int64_t)gr_rng_below(r, (uint64_t)(L + 1));
  int64_t start = c1 < c2 ? c1 : c2, len = c1 < c2 ? c2 - c1 : c1 - c2;
  if (!spm) return gr_lm_infill_row(t, s->ids + o, L, &start, &len, 1, T, ids, targets);
  int32_t work[GR_LM_MAX_INFILL + 1];
  int64_t n;
  st = gr_lm_format_spm(t, s->ids + o, L, start, len, work, T + 1, &n);
  if (!st) row_from_seq(t, work, n, T, ids, targets);
  return st;
}

gr_status gr_lm_make_batch(gr_lm_objective obj, const gr_token_stream *s, const gr_tokenizer *t,
                           const gr_infill_cfg *cfg, int64_t B, int64_t T, gr_rng *r, int32_t *ids,
                           int32_t *targets, int64_t *prefix_len) {
  if (!s || !t || !cfg || !r || !ids || !targets || !prefix_len) return gr_error(GR_EARG, "lm batch: NULL argument");
  if (B < 1 || T < 2) return gr_error(GR_EARG, "lm batch: batch %lld and length %lld (>= 1, >= 2)", (long long)B, (long long)T);
  if (s->n < T + 1)
    return gr_error(GR_EARG, "lm batch: the token stream (%lld tokens) is shorter than one sequence of %lld + 1",
                    (long long)s->n, (long long)T);
  *prefix_len = 0;
  if (obj < 0 || obj >= GR_LM_OBJECTIVES) return gr_error(GR_EARG, "lm batch: objective %d", (int)obj);
  if (obj >= GR_LM_INFILL && T > GR_LM_MAX_INFILL)
    return gr_error(GR_EARG, "lm batch: infill sequences of %lld tokens exceed %d", (long long)T, GR_LM_MAX_INFILL);
  if (obj == GR_LM_PREFIX) *prefix_len = 1 + (int64_t)gr_rng_below(r, (uint64_t)(T - 1));
  for (int64_t b = 0; b < B; b++) {
    int32_t *x = ids + b * T, *y = targets + b * T;
    bool infill = obj == GR_LM_INFILL || (obj == GR_LM_MIX && gr_rng_uniform(r) < cfg->mix_infill);
    bool fim = (obj == GR_LM_FIM || obj == GR_LM_FIM_SPM) && gr_rng_uniform(r) < cfg->mix_infill;
    gr_status st = infill ? infill_sample(s, t, cfg, T, r, x, y)
                   : fim  ? fim_sample(s, t, T, obj == GR_LM_FIM_SPM, r, x, y)
                          : gr_lm_window_row(s, (int64_t)gr_rng_below(r, (uint64_t)(s->n - T)), T, *prefix_len, x, y);
    if (st) return st;
  }
  return GR_OK;
}
