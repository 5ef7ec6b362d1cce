/* graft/lm.h — training and evaluating GPT language models on token
 * streams (graft/text.h), and GPT model directories.
 *
 * Metrics: loss is the mean next-token cross-entropy in nats over scored
 * targets; bpc is bits per byte of text, sum(-log2 p(target)) over the
 * scored targets divided by the bytes of text those targets stand for
 * (tokenizer piece lengths; eos stands for 0 bytes). On ASCII text (KJV, C
 * headers) a byte is a character. The unigram baseline scores the same
 * targets with add-one-smoothed token frequencies of the training stream.
 *
 * A GPT model directory holds model.safetensors (Hugging Face GPT-2 names,
 * graft's [out,in] Linear layout, see gpt.h), config.json (GPT-2 keys
 * vocab_size, n_positions, n_layer, n_head, n_embd, plus "architecture":
 * "gpt", the training data spec and objective, and "tokenizer": the
 * tokenizer's JSON form) and metrics.jsonl (written by the CLI). */
#ifndef GRAFT_LM_H
#define GRAFT_LM_H
#include "graft/gpt.h"
#include "graft/optim.h"
#include "graft/text.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gr_lm_eval {
  int64_t tokens;      /* targets scored */
  int64_t bytes;       /* text bytes they stand for */
  double loss;         /* nats per target */
  double bpc;          /* bits per byte of text */
  double unigram_bpc;  /* the unigram baseline on the same targets (NaN without one) */
} gr_lm_eval;

/* Add-one-smoothed log probabilities (natural log) of every id of t's
 * vocabulary from the token counts of s; logp holds t->vocab doubles. */
gr_status gr_lm_unigram_logp(const gr_token_stream *s, const gr_tokenizer *t, double *logp);
/* Causal LM loss of s in windows of T tokens (T <= block): non-overlapping
 * windows from the start, or, when s holds more than max_tokens (> 0)
 * tokens, that many tokens in windows spread evenly over the stream.
 * unigram_logp may be NULL. */
gr_status gr_lm_evaluate(gr_gpt *g, gr_ctx *c, const gr_token_stream *s, const gr_tokenizer *t, int64_t T,
                         int64_t max_tokens, const double *unigram_logp, gr_lm_eval *out);

typedef struct gr_lm_train_cfg {
  gr_lm_objective objective;
  gr_infill_cfg infill;
  int64_t steps;        /* optimizer steps (> 0) */
  int64_t batch;        /* sequences per step */
  int64_t seq;          /* tokens per sequence (<= the model's block) */
  gr_schedule sched;    /* base_lr 0: the optimizer's lr; cosine total_steps 0: steps */
  float clip_norm;      /* > 0: clip the global gradient norm */
  int64_t eval_every;   /* steps between validation evaluations (0: only at the end) */
  int64_t eval_tokens;  /* tokens per evaluation (0: the whole validation stream) */
  uint64_t seed;        /* batch sampling */
} gr_lm_train_cfg;

typedef struct gr_lm_train_hooks {
  void *ud;
  void (*on_step)(void *ud, int64_t step, int64_t total, double loss);
  void (*on_eval)(void *ud, int64_t step, double train_loss, const gr_lm_eval *ev);
} gr_lm_train_hooks;

typedef struct gr_lm_train_result {
  int64_t steps;
  double train_loss;    /* mean of the last min(50, steps) batches */
  gr_lm_eval eval;      /* final validation evaluation (zero without val) */
} gr_lm_train_result;

/* Trains g with optimizer o on batches of cfg->objective from train;
 * evaluates (causal) on val when not NULL. GR_EARG when cfg->seq exceeds
 * the block size or the stream is too short. hooks may be NULL. */
gr_status gr_lm_train(gr_gpt *g, gr_optim *o, const gr_tokenizer *t, const gr_token_stream *train,
                      const gr_token_stream *val, const double *unigram_logp, const gr_lm_train_cfg *cfg,
                      const gr_lm_train_hooks *hooks, gr_lm_train_result *res);

/* Filling a masked line of held-out text. Each case is a line of s (4..48
 * tokens, no eos) with up to ctx tokens of its document before it (prefix)
 * and after it (suffix). GR_INFILL_PSM: the model gets
 *   prefix <mask_1> suffix <eos> <sep> <mask_1>
 * (GR_INFILL_SPM: <mask_1> suffix <sep> prefix, gr_lm_format_spm's layout)
 * and is scored on the line's tokens, then greedy-decoded until <eom> (exact
 * match: the line then <eom>); GR_INFILL_LEFT_TO_RIGHT: it gets the prefix
 * only, is scored on the line's tokens and greedy-decodes as many tokens
 * (exact match: the line). Cases depend on (s, seed, ctx) only, so two
 * models are compared on the same lines. */
typedef enum gr_infill_format { GR_INFILL_LEFT_TO_RIGHT = 0, GR_INFILL_PSM = 1, GR_INFILL_SPM = 2 } gr_infill_format;
typedef struct gr_infill_eval {
  int64_t cases, span_tokens;
  double span_loss;     /* nats per line token */
  double exact;         /* fraction of lines reproduced exactly */
} gr_infill_eval;
gr_status gr_lm_infill_eval(gr_gpt *g, gr_ctx *c, const gr_tokenizer *t, const gr_token_stream *s, gr_infill_format format,
                            int64_t n_cases, int64_t ctx, uint64_t seed, gr_infill_eval *out);
/* The prompt of format f (the layouts above) for prefix[0..np) and
 * suffix[0..ns) (unused left to right) into out (room for np + ns + 5);
 * returns its length. The one definition of the inference layouts, shared
 * by the evaluation and `graft generate --suffix`. */
int64_t gr_lm_infill_prompt(const gr_tokenizer *t, const int32_t *prefix, int64_t np, const int32_t *suffix, int64_t ns,
                            gr_infill_format f, int32_t *out);

/* ---- GPT model directories ---------------------------------------------------- */
typedef struct gr_gpt_meta {
  char data[256];       /* data spec trained on (informational) */
  char objective[16];
} gr_gpt_meta;
/* Writes dir/model.safetensors and dir/config.json atomically (dir exists). */
gr_status gr_gpt_save_dir(const gr_gpt *g, const gr_tokenizer *t, const gr_gpt_meta *meta, const char *dir);
/* Reads both back, validating config.json's shape and tokenizer (the
 * tokenizer's vocabulary must equal vocab_size) and loading every tensor
 * strictly. meta may be NULL. */
gr_status gr_gpt_load_dir(const char *dir, gr_gpt **g, gr_tokenizer **t, gr_gpt_meta *meta);

#ifdef __cplusplus
}
#endif
#endif
