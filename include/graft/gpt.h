/* graft/gpt.h — a GPT-2-shaped decoder-only transformer, its KV cache and
 * sampling. Tokenizers, text corpora and objectives: graft/text.h;
 * training, evaluation and GPT model directories: graft/lm.h.
 *
 * Architecture (GPT-2): h = wte[ids] + wpe[pos]; n_layer pre-LN blocks
 *   h = h + attn.c_proj(MHA(attn.c_attn(ln_1(h))))   causal (or prefix-LM)
 *   h = h + mlp.c_proj(gelu_tanh(mlp.c_fc(ln_2(h))))
 * then ln_f and logits = h @ wte^T (the head is tied to the token embedding;
 * there is no lm_head.weight tensor). LayerNorm eps 1e-5, all Linears biased.
 *
 * Parameter names are GPT-2's Hugging Face names ("transformer.wte.weight",
 * "transformer.h.0.attn.c_attn.weight", "transformer.ln_f.bias", ...).
 * Layout decision: graft stores every Linear weight as [out,in] (PyTorch
 * nn.Linear, what gr_linear and LoRA expect). HF GPT-2 checkpoints store the
 * four Conv1D weights (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) as
 * [in,out]: an HF GPT-2 importer must transpose exactly those four (not
 * written yet); everything else maps by name as is. A PyTorch twin with
 * nn.Linear uses graft's layout directly.
 *
 * The blocks are modules of the model tree, and each block's Linears are
 * called through their module's forward, so LoRA or adapters that replace
 * "transformer.h.0.attn.c_attn" by name take effect.
 *
 * Prefix tuning hook: when the root module has a child named
 * GR_GPT_PROMPT_ENCODER, each forward calls it once (x = NULL) for a table
 * P [l, n_layer*2*n_embd] (per virtual token: layer, key/value, head,
 * head_dim, PEFT's past_key_values layout), and the attention of layer i
 * attends to [P_k; K] and [P_v; V]: every query sees all l prefix
 * positions, before the causal (or prefix-LM) mask of the real ones. The
 * real tokens keep positions 0..T-1 (Hugging Face GPT-2 shifts them by l
 * because it feeds the prefix as past keys; graft does not, so a prefix
 * costs no block length). transfer/peft/prefix.c (graft/peft_prefix.h)
 * builds the encoder. */
#ifndef GRAFT_GPT_H
#define GRAFT_GPT_H
#include "graft/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GR_GPT_PROMPT_ENCODER "prompt_encoder"

typedef struct gr_gpt_config {
  int64_t vocab;    /* vocab_size */
  int64_t block;    /* n_positions: longest sequence */
  int64_t n_layer;
  int64_t n_head;
  int64_t n_embd;   /* divisible by n_head */
} gr_gpt_config;

typedef struct gr_gpt {
  gr_model *model;  /* owns parameters; root module kind "GPT" */
  gr_gpt_config cfg;
} gr_gpt;

/* Checks cfg (every field > 0, n_embd % n_head == 0, sizes sane) and builds
 * the model with GPT-2's init: weights N(0, 0.02), residual projections
 * (attn.c_proj, mlp.c_proj) N(0, 0.02/sqrt(2 n_layer)), biases 0,
 * LayerNorm 1/0. Deterministic in seed. */
gr_status gr_gpt_new(const gr_gpt_config *cfg, uint64_t seed, gr_gpt **out);
void gr_gpt_free(gr_gpt *g);
gr_status gr_gpt_config_check(const gr_gpt_config *cfg);

/* Keys and values of past positions for incremental decoding (inference:
 * nothing flows back into the cache). One per batch of B sequences. */
typedef struct gr_gpt_cache {
  int64_t batch, len, cap;   /* len positions filled, cap = block */
  int64_t n_layer, n_head, head_dim;
  float *k, *v;              /* [n_layer][batch][n_head][cap][head_dim] */
} gr_gpt_cache;
gr_status gr_gpt_cache_new(const gr_gpt *g, int64_t batch, gr_gpt_cache **out);
void gr_gpt_cache_free(gr_gpt_cache *kv);
void gr_gpt_cache_reset(gr_gpt_cache *kv);

/* Logits [B,T,vocab] for ids [B*T] (row-major [B,T]). prefix_len p > 0:
 * prefix-LM attention (positions < p see each other both ways, causal
 * after). cache != NULL: the T new positions follow cache->len earlier ones
 * (then p must be 0) and the cache is extended. GR_EARG for ids outside
 * [0,vocab), T == 0, or positions beyond block. */
gr_tensor *gr_gpt_forward(gr_gpt *g, gr_ctx *c, const int32_t *ids, int64_t B, int64_t T,
                          int64_t prefix_len, gr_gpt_cache *cache);
/* Mean next-token cross-entropy: logits of ids [B,T] against targets
 * [B,T]; target -1 is ignored (prefix positions, padding). Scalar. */
gr_tensor *gr_gpt_loss(gr_gpt *g, gr_ctx *c, const int32_t *ids, const int32_t *targets, int64_t B,
                       int64_t T, int64_t prefix_len);

typedef struct gr_gpt_sample_opts {
  float temperature;  /* <= 0: greedy (argmax) */
  int top_k;          /* > 0: sample among the k most likely */
  bool no_cache;      /* recompute the whole window at each step (reference path) */
  int32_t stop_id;    /* stop after emitting this id; < 0: never */
} gr_gpt_sample_opts;

/* Appends up to n_new tokens to prompt[0..n_prompt) (n_prompt >= 1) into
 * out[0..n_new); *n_out is how many were written. The prompt plus the new
 * tokens must fit in block. logits_out (may be NULL) receives the vocab
 * logits that chose each new token ([n_new][vocab]). */
gr_status gr_gpt_generate(gr_gpt *g, gr_ctx *c, const int32_t *prompt, int64_t n_prompt, int64_t n_new,
                          const gr_gpt_sample_opts *o, gr_rng *rng, int32_t *out, int64_t *n_out,
                          float *logits_out);

#ifdef __cplusplus
}
#endif
#endif
