/* transfer/lm_train.c — the language-model training loop and its
 * validation metric (graft/lm.h): batches of an objective from a token
 * stream, AdamW/SGD steps with a schedule and clipping, periodic causal
 * evaluation in bits per byte next to a unigram baseline. The masked-line
 * infill evaluation is in lm_infill.c. Data-parallel (graft/dist.h): every
 * rank draws the same global batch and trains on its contiguous rows; the
 * gradients are averaged weighted by each rank's share of the scored
 * targets, so the steps equal one process's on the whole batch. */
#include <math.h>
#include <string.h>

#include "graft/lm.h"
#include "transfer/lm_internal.h"
#include "transfer/train_dist.h"

gr_status gr_lm_unigram_logp(const gr_token_stream *s, const gr_tokenizer *t, double *logp) {
  if (!s || !t || !logp) return gr_error(GR_EARG, "unigram: NULL argument");
  for (int32_t i = 0; i < t->vocab; i++) logp[i] = 1.0; /* add-one */
  for (int64_t i = 0; i < s->n; i++) {
    if (s->ids[i] < 0 || s->ids[i] >= t->vocab) return gr_error(GR_EARG, "unigram: id %d outside the vocabulary", s->ids[i]);
    logp[s->ids[i]] += 1.0;
  }
  double total = (double)s->n + t->vocab;
  for (int32_t i = 0; i < t->vocab; i++) logp[i] = log(logp[i] / total);
  return GR_OK;
}

double lm_token_nll(const float *row, int64_t V, int32_t target) {
  float mx = row[0];
  for (int64_t v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
  double z = 0;
  for (int64_t v = 0; v < V; v++) z += exp((double)(row[v] - mx));
  return log(z) - (double)(row[target] - mx);
}

/* Start offsets of the evaluation windows: n_win windows of T+1 tokens. */
static int64_t window_start(const gr_token_stream *s, int64_t T, int64_t n_win, int64_t w, bool spread) {
  if (!spread) return w * T;
  int64_t span = s->n - T - 1;
  return n_win > 1 ? span * w / (n_win - 1) : 0;
}

gr_status gr_lm_evaluate(gr_gpt *g, gr_ctx *c, const gr_token_stream *s, const gr_tokenizer *t, int64_t T,
                         int64_t max_tokens, const double *unigram_logp, gr_lm_eval *out) {
  if (!g || !c || !s || !t || !out) return gr_error(GR_EARG, "lm evaluate: NULL argument");
  memset(out, 0, sizeof *out);
  if (T < 1 || T > g->cfg.block) return gr_error(GR_EARG, "lm evaluate: window %lld outside 1..block %lld", (long long)T, (long long)g->cfg.block);
  if (s->n < T + 1) return gr_error(GR_EARG, "lm evaluate: stream of %lld tokens is shorter than a window of %lld + 1", (long long)s->n, (long long)T);
  int64_t n_win = (s->n - 1) / T;
  bool spread = max_tokens > 0 && n_win * T > max_tokens;
  if (spread) n_win = max_tokens / T > 0 ? max_tokens / T : 1;
  bool grad = gr_ctx_grad(c);
  gr_ctx_set_grad(c, false);
  double nll = 0, uni = 0;
  gr_status st = GR_OK;
  enum { EVAL_BATCH = 8 };
  int32_t *x = gr_malloc((size_t)(EVAL_BATCH * T) * sizeof(int32_t));
  if (!x) st = gr_error(GR_ENOMEM, "lm evaluate: out of memory");
  for (int64_t w0 = 0; !st && w0 < n_win; w0 += EVAL_BATCH) {
    int64_t B = n_win - w0 < EVAL_BATCH ? n_win - w0 : EVAL_BATCH;
    for (int64_t b = 0; b < B; b++) memcpy(x + b * T, s->ids + window_start(s, T, n_win, w0 + b, spread), (size_t)T * sizeof(int32_t));
    gr_ctx_reset(c);
    gr_tensor *logits = gr_gpt_forward(g, c, x, B, T, 0, NULL);
    if (!logits) {
      st = gr_last_status();
      break;
    }
    for (int64_t b = 0; b < B; b++) {
      const int32_t *y = s->ids + window_start(s, T, n_win, w0 + b, spread) + 1;
      for (int64_t i = 0; i < T; i++) {
        nll += lm_token_nll(logits->data + (b * T + i) * g->cfg.vocab, g->cfg.vocab, y[i]);
        if (unigram_logp) uni -= unigram_logp[y[i]];
        out->bytes += t->piece_len[y[i]];
        out->tokens++;
      }
    }
  }
  gr_ctx_reset(c);
  gr_ctx_set_grad(c, grad);
  gr_free(x);
  if (st) return st;
  out->loss = nll / (double)out->tokens;
  out->bpc = out->bytes ? nll / log(2.0) / (double)out->bytes : NAN;
  out->unigram_bpc = unigram_logp && out->bytes ? uni / log(2.0) / (double)out->bytes : NAN;
  return GR_OK;
}

static gr_status check_train_args(gr_gpt *g, gr_optim *o, const gr_tokenizer *t, const gr_token_stream *train,
                                  const gr_lm_train_cfg *cfg, gr_lm_train_result *res) {
  if (!g || !o || !t || !train || !cfg || !res) return gr_error(GR_EARG, "lm train: NULL argument");
  if (cfg->steps < 1 || cfg->batch < 1 || cfg->seq < 2 || cfg->eval_every < 0 || cfg->eval_tokens < 0)
    return gr_error(GR_EARG, "lm train: steps %lld, batch %lld, sequence %lld out of range", (long long)cfg->steps,
                    (long long)cfg->batch, (long long)cfg->seq);
  if (cfg->seq > g->cfg.block)
    return gr_error(GR_EARG, "lm train: sequences of %lld tokens exceed the model's block size %lld", (long long)cfg->seq,
                    (long long)g->cfg.block);
  if (t->vocab != g->cfg.vocab)
    return gr_error(GR_EARG, "lm train: tokenizer vocabulary %d differs from the model's %lld", t->vocab, (long long)g->cfg.vocab);
  return GR_OK;
}

static gr_status run_eval(gr_gpt *g, gr_ctx *c, const gr_tokenizer *t, const gr_token_stream *val,
                          const double *uni, const gr_lm_train_cfg *cfg, int64_t step, double train_loss,
                          const gr_lm_train_hooks *h, gr_lm_eval *ev) {
  gr_status st = gr_lm_evaluate(g, c, val, t, cfg->seq, cfg->eval_tokens, uni, ev);
  if (!st && h && h->on_eval) h->on_eval(h->ud, step, train_loss, ev);
  return st;
}

/* Rows [lo, hi)'s share of the batch's scored targets (not -1): the
 * weight of their mean loss in the batch mean. */
static double scored_share(const int32_t *targets, int64_t B, int64_t T, int64_t lo, int64_t hi) {
  int64_t mine = 0, all = 0;
  for (int64_t i = 0; i < B * T; i++) {
    bool scored = targets[i] != -1;
    all += scored;
    mine += scored && i >= lo * T && i < hi * T;
  }
  return all ? (double)mine / (double)all : (double)(hi - lo) / (double)B;
}

gr_status gr_lm_train(gr_gpt *g, gr_optim *o, const gr_tokenizer *t, const gr_token_stream *train,
                      const gr_token_stream *val, const double *unigram_logp, const gr_lm_train_cfg *cfg,
                      const gr_lm_train_hooks *hooks, gr_lm_train_result *res) {
  gr_status st = check_train_args(g, o, t, train, cfg, res);
  if (st) return st;
  memset(res, 0, sizeof *res);
  int64_t B = cfg->batch, T = cfg->seq, prefix;
  gr_schedule sched = cfg->sched;
  sched.base_lr = sched.base_lr > 0 ? sched.base_lr : o->cfg.lr;
  if (sched.kind == GR_SCHED_COSINE && sched.total_steps <= 0) sched.total_steps = cfg->steps;
  if (sched.kind == GR_SCHED_STEP && sched.step_size <= 0) sched.step_size = cfg->steps / 3 > 0 ? cfg->steps / 3 : 1;
  int64_t lo, hi; /* this rank's rows of each batch */
  gr_dp dp = {0};
  if ((st = gr_dp_rows(B, &lo, &hi)) || (st = gr_dp_begin(&dp, g->model, B))) return gr_dp_end(&dp), st;
  int32_t *ids = gr_malloc((size_t)(2 * B * T) * sizeof(int32_t));
  gr_ctx *c = gr_ctx_new(16 << 20, gr_dp_local_seed(cfg->seed));
  if (!ids || !c) st = gr_error(GR_ENOMEM, "lm train: out of memory");
  gr_rng r = gr_rng_stream(cfg->seed, 0x7465787431ull);
  double recent[50] = {0};
  for (int64_t step = 0; !st && step < cfg->steps; step++) {
    st = gr_lm_make_batch(cfg->objective, train, t, &cfg->infill, B, T, &r, ids, ids + B * T, &prefix);
    if (st) break;
    o->lr = gr_schedule_lr(&sched, step);
    gr_model_zero_grad(g->model);
    gr_ctx_reset(c);
    const int32_t *targets = ids + B * T;
    gr_tensor *loss = gr_gpt_loss(g, c, ids + lo * T, targets + lo * T, hi - lo, T, prefix);
    if (!loss || (st = gr_backward(c, loss))) {
      st = st ? st : gr_last_status();
      break;
    }
    double batch_loss = loss->data[0];
    if ((st = gr_dp_reduce(&dp, g->model, scored_share(targets, B, T, lo, hi), &batch_loss))) break;
    if (cfg->clip_norm > 0) gr_clip_grad_norm(g->model, cfg->clip_norm);
    if ((st = gr_optim_step(o))) break;
    recent[step % 50] = batch_loss;
    res->steps = step + 1;
    int64_t k = res->steps < 50 ? res->steps : 50;
    res->train_loss = 0;
    for (int64_t i = 0; i < k; i++) res->train_loss += recent[i] / (double)k;
    if (hooks && hooks->on_step) hooks->on_step(hooks->ud, step, cfg->steps, batch_loss);
    bool last = step + 1 == cfg->steps;
    if (val && (last || (cfg->eval_every > 0 && (step + 1) % cfg->eval_every == 0)))
      st = run_eval(g, c, t, val, unigram_logp, cfg, step + 1, res->train_loss, hooks, &res->eval);
  }
  gr_ctx_free(c);
  gr_free(ids);
  gr_dp_end(&dp);
  return st;
}
