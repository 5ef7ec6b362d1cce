/* nn/gpt_sample.c — autoregressive generation for graft/gpt.h: greedy,
 * temperature and top-k sampling, with the KV cache (one new position per
 * step) or, as the reference path, by recomputing the whole sequence. */
#include <math.h>
#include <string.h>

#include "graft/gpt.h"

/* Picks the next id from one row of logits. Greedy: the first maximum. */
static int32_t pick_token(const float *logits, int64_t V, const gr_gpt_sample_opts *o, gr_rng *rng, float *work) {
  int64_t best = 0;
  for (int64_t i = 1; i < V; i++)
    if (logits[i] > logits[best]) best = i;
  if (o->temperature <= 0) return (int32_t)best;
  float kth = -INFINITY; /* logits below the k-th largest are excluded */
  if (o->top_k > 0 && o->top_k < V) {
    memcpy(work, logits, (size_t)V * sizeof(float));
    for (int k = 0; k < o->top_k; k++) { /* partial selection: k passes */
      int64_t arg = -1;
      for (int64_t i = 0; i < V; i++)
        if (work[i] != -INFINITY && (arg < 0 || work[i] > work[arg])) arg = i;
      kth = work[arg];
      work[arg] = -INFINITY;
    }
  }
  double total = 0;
  for (int64_t i = 0; i < V; i++) {
    work[i] = logits[i] >= kth ? expf((logits[i] - logits[best]) / o->temperature) : 0.0f;
    total += work[i];
  }
  double u = gr_rng_uniform(rng) * total, acc = 0;
  for (int64_t i = 0; i < V; i++) {
    acc += work[i];
    if (u < acc && work[i] > 0) return (int32_t)i;
  }
  return (int32_t)best;
}

static gr_status generate_args(const gr_gpt *g, gr_ctx *c, const int32_t *prompt, int64_t n_prompt, int64_t n_new,
                               const gr_gpt_sample_opts *o, gr_rng *rng, const int32_t *out, const int64_t *n_out) {
  if (!g || !c || !o || !out || !n_out || (o->temperature > 0 && !rng))
    return gr_error(GR_EARG, "gpt generate: NULL argument");
  if (!prompt || n_prompt <= 0) return gr_error(GR_EARG, "gpt generate: the prompt is empty (at least one token needed)");
  if (n_new < 0 || n_prompt + n_new > g->cfg.block)
    return gr_error(GR_EARG, "gpt generate: prompt (%lld tokens) + %lld new tokens exceed block size %lld",
                    (long long)n_prompt, (long long)n_new, (long long)g->cfg.block);
  if (!isfinite(o->temperature)) return gr_error(GR_EARG, "gpt generate: temperature is not finite");
  return GR_OK;
}

gr_status gr_gpt_generate(gr_gpt *g, gr_ctx *c, const int32_t *prompt, int64_t n_prompt, int64_t n_new,
                          const gr_gpt_sample_opts *o, gr_rng *rng, int32_t *out, int64_t *n_out, float *logits_out) {
  gr_status st = generate_args(g, c, prompt, n_prompt, n_new, o, rng, out, n_out);
  if (st) return st;
  *n_out = 0;
  int64_t V = g->cfg.vocab, n_seq = n_prompt + n_new;
  int32_t *seq = gr_malloc((size_t)n_seq * sizeof(int32_t));
  float *work = gr_malloc((size_t)V * sizeof(float));
  gr_gpt_cache *kv = NULL;
  if (!seq || !work || (!o->no_cache && (st = gr_gpt_cache_new(g, 1, &kv)))) {
    st = st ? st : gr_error(GR_ENOMEM, "gpt generate: out of memory");
    goto done;
  }
  memcpy(seq, prompt, (size_t)n_prompt * sizeof(int32_t));
  bool grad = gr_ctx_grad(c);
  gr_ctx_set_grad(c, false);
  int64_t len = n_prompt;
  for (int64_t step = 0; step < n_new; step++) {
    gr_ctx_reset(c);
    int64_t from = o->no_cache ? 0 : kv->len, T = len - from;
    gr_tensor *logits = gr_gpt_forward(g, c, seq + from, 1, T, 0, kv);
    if (!logits) {
      st = gr_last_status();
      break;
    }
    const float *last = logits->data + (T - 1) * V;
    if (logits_out) memcpy(logits_out + step * V, last, (size_t)V * sizeof(float));
    int32_t id = pick_token(last, V, o, rng, work);
    out[step] = seq[len++] = id;
    *n_out = step + 1;
    if (o->stop_id >= 0 && id == o->stop_id) break;
  }
  gr_ctx_reset(c);
  gr_ctx_set_grad(c, grad);
done:
  gr_gpt_cache_free(kv);
  gr_free(seq);
  gr_free(work);
  return st;
}
