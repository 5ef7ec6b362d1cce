/* graft/peft.h — parameter-efficient transfer methods that wrap modules of a
 * gr_model by dotted name (src/transfer/peft/, one file per method).
 *
 * LoRA (and rsLoRA) follows Hugging Face PEFT exactly (FORMATS.md §2.3):
 *   y = base(x) + scaling * B(A(dropout(x))),  scaling = alpha/r
 *   (alpha/sqrt(r) with rslora); A [r,in] kaiming-uniform(a=sqrt 5), B = 0.
 * A wrapped module keeps PEFT's child names, so parameters are named
 *   <path>.base_layer.weight, <path>.lora_A.weight, <path>.lora_B.weight
 * and the adapter keys PEFT saves are base_model.model.<path>.lora_A.weight.
 * Conv2d targets use PEFT's conv LoRA: A a k x k conv in->r with the base's
 * stride/padding, B a 1x1 conv r->out.
 *
 * Merging folds the adapter into the base weight (W' = W + scaling B A,
 * transposed with fan_in_fan_out); unmerging subtracts it again. A merged
 * module's forward is the base module's. */
#ifndef GRAFT_PEFT_H
#define GRAFT_PEFT_H
#include "graft/nn.h"
#include "graft/peft_io.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gr_lora_init {
  GR_LORA_INIT_PEFT = 0, /* A kaiming-uniform(a=sqrt 5) = U(+-1/sqrt fan_in), B = 0 */
  GR_LORA_INIT_GAUSSIAN, /* A ~ N(0, (1/r)^2), B = 0 (init_lora_weights="gaussian") */
  GR_LORA_INIT_RANDOM,   /* A and B both random (init_lora_weights=false; tests) */
} gr_lora_init;

typedef struct gr_lora_opts {
  int r;               /* rank, 1 <= r <= min(in, out) of the layer */
  float alpha;         /* lora_alpha */
  float dropout;       /* on the LoRA path's input, in [0,1) */
  bool rslora;         /* scaling alpha/sqrt(r) instead of alpha/r */
  bool fan_in_fan_out; /* base weight stored [in,out] (GPT-2 Conv1D layout) */
  gr_lora_init init;
} gr_lora_opts;

/* Wraps the Linear or Conv2d at path in a LoRA module (kind "LoRA"); the
 * base module becomes its child "base_layer" and keeps its values and
 * requires_grad. Initial randomness comes from the model's rng. Errors name
 * the module: GR_ENOTFOUND (no such path), GR_EUNSUPPORTED (not a Linear or
 * Conv2d), GR_EARG (r out of range, r > min(in,out), bad dropout). */
gr_status gr_lora_wrap(gr_model *m, const char *path, const gr_lora_opts *o);
/* Wraps every Linear/Conv2d the config targets (gr_peft_targets: suffixes or
 * a full-match regex), with its per-module rank and alpha (rank_pattern,
 * alpha_pattern), lora_dropout and use_rslora (fan_in_fan_out describes the
 * checkpoint's layout, HF GPT-2 Conv1D; graft's Linears are [out,in] in
 * memory, so the modules are wrapped the same either way); then freezes
 * every parameter of the model except the lora_* ones (PEFT's
 * mark_only_lora_as_trainable with bias="none"). GR_ENOTFOUND naming the
 * targets when nothing matches. *n_wrapped (may be NULL) gets the count. */
gr_status gr_lora_apply(gr_model *m, const gr_peft_config *cfg, gr_lora_init init, int *n_wrapped);

/* Whether mod is a LoRA wrapper; its scaling; its rank. */
bool gr_lora_is(const gr_module *mod);
float gr_lora_scaling(const gr_module *mod);
int gr_lora_rank(const gr_module *mod);
/* Folds scaling*B*A into base_layer.weight (merge) or takes it out again
 * (unmerge). Merging a merged module (or unmerging an unmerged one) is
 * GR_ESTATE. */
gr_status gr_lora_merge(gr_module *mod);
gr_status gr_lora_unmerge(gr_module *mod);
/* Merges (or unmerges) every LoRA module of the model; returns the count
 * through n (may be NULL). */
gr_status gr_peft_merge_all(gr_model *m, bool merge, int *n);

/* The raw merge rule on arrays: w[out,in] += sign*scale*(b[out,r] @ a[r,in]),
 * or w[in,out] += sign*scale*(b@a)^T with fan_in_fan_out. in counts every
 * element of one output row (C_in*kh*kw for a conv). Used by the modules and
 * by `graft peft merge` on files. */
void gr_lora_delta_apply(float *w, const float *a, const float *b, int64_t out, int64_t in, int r, float scale,
                         bool fan_in_fan_out);

#ifdef __cplusplus
}
#endif
#endif
