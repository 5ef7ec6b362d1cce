/* graft/peft_prefix.h — prefix tuning for the GPT of graft/gpt.h
 * (transfer/peft/prefix.c).
 *
 * Li & Liang, "Prefix-Tuning" (2021): every layer's attention attends to l
 * learned key and value positions in front of the real ones; the model is
 * frozen, only the prefixes train. As Hugging Face PEFT's PrefixEncoder,
 * the prefixes of all layers come from one module, "prompt_encoder":
 *   direct:        P = embedding.weight                 [l, n_layer*2*C]
 *   reparametrized (prefix_projection, encoder_hidden_size = hidden):
 *                  P = transform.2(tanh(transform.0(embedding.weight)))
 *                  embedding [l, C], transform.0 C->hidden, transform.2
 *                  hidden->n_layer*2*C (the MLP trains, and counts as
 *                  trainable; gr_prefix_fold replaces it by its output).
 * Parameter names: prompt_encoder.embedding.weight,
 * prompt_encoder.transform.{0,2}.{weight,bias} (PEFT's, without the
 * adapter name "default"). Init as PEFT: embedding N(0,1), Linears
 * PyTorch's default; or, direct, the model's keys/values of real tokens. */
#ifndef GRAFT_PEFT_PREFIX_H
#define GRAFT_PEFT_PREFIX_H
#include "graft/gpt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gr_prefix_opts {
  int n_virtual;         /* l (num_virtual_tokens), 1..block */
  int projection_hidden; /* > 0: reparametrize through the MLP of that width; 0: direct */
  /* direct only, may be NULL: Li & Liang's init from real words (sec. 7.2):
   * the table starts as the frozen model's own keys and values of these
   * n_virtual token ids (positions 0..l-1), instead of N(0,1) */
  const int32_t *init_ids;
} gr_prefix_opts;

/* Adds the prompt encoder to g and freezes every other parameter of the
 * model (PEFT's get_peft_model). Randomness from the model's rng. GR_EARG
 * for bad options, GR_ESTATE if g already has one. */
gr_status gr_prefix_attach(gr_gpt *g, const gr_prefix_opts *o);
/* l of the attached prompt encoder; 0 when there is none. */
int gr_prefix_length(const gr_gpt *g);
/* Computes the prefix table once and replaces a reparametrized encoder by a
 * direct one holding it (Li & Liang drop the MLP after training); the model
 * computes the same function. Trainable as before. No-op for a direct one. */
gr_status gr_prefix_fold(gr_gpt *g);

/* MAM adapter (He et al., "Towards a Unified View of Parameter-Efficient
 * Transfer Learning", ICLR 2022, sec. 4.4; transfer/peft/mam.c): prefix
 * tuning at every attention sublayer plus a scaled parallel adapter
 * (graft/peft.h, gr_adapter_wrap) on every feed-forward sublayer
 * "transformer.h.<i>.mlp": FFN(x) + s up(ReLU(down(x))), up = 0 at init.
 * The paper: l = 30, r = 512, s = 4. Only the prefix and the adapters train. */
typedef struct gr_mam_opts {
  gr_prefix_opts prefix;
  int pa_r;        /* adapter bottleneck, 1..n_embd */
  float pa_scale;  /* s */
} gr_mam_opts;
/* Checks every option before changing the model; GR_EARG naming the bad
 * one, GR_ESTATE if g already carries a prefix or FFN adapters. */
gr_status gr_mam_attach(gr_gpt *g, const gr_mam_opts *o);

#ifdef __cplusplus
}
#endif
#endif
