/* graft/scalearn.h — ScaLearn (Frohmann et al., "ScaLearn: Simple and Highly
 * Parameter-Efficient Task Transfer by Learning to Scale", ACL Findings
 * 2024): the outputs of frozen source adapters, each trained on a source
 * task, are combined for a target task by learned scaling vectors
 * (src/transfer/peft/scalearn.c).
 *
 * graft's source adapters are LoRA adapters on a Linear/Conv2d, so the
 * combination happens at the adapted layer's output:
 *   y = base(x) + sum_{i<N} omega_i (.) u_i,   u_i = s_i B_i(A_i x)
 * (the adapters' outputs without their residual, added to the base output
 * once). omega_i is broadcast over the output features (per output channel
 * for a conv). Variants:
 *   ScaLearn           omega [N, out] per layer
 *   ScaLearnUniform    omega [N, 1]   per layer (one scalar per source)
 *   ScaLearn++         omega [N, out] shared by the layers (graft: shared by
 *                      the layers of equal width, a CNN's widths differ)
 *   ScaLearnUniform++  omega [N, 1]   shared by every layer
 * omega ~ N(init_scale/N, 0.001^2) (paper: init_scale 2), not normalized;
 * during training dropout (paper: p 0.3) drops omega entries (inverted
 * dropout, off in eval). Only omega (and a task head) is trained; the base
 * layer and every source factor are frozen. */
#ifndef GRAFT_SCALEARN_H
#define GRAFT_SCALEARN_H
#include "graft/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gr_scalearn_kind {
  GR_SCALEARN = 0,            /* vector per layer */
  GR_SCALEARN_UNIFORM = 1,    /* scalar per layer */
  GR_SCALEARN_PP = 2,         /* vector shared across layers */
  GR_SCALEARN_UNIFORM_PP = 3, /* scalar shared across layers */
} gr_scalearn_kind;

/* One frozen source adapter of a layer: LoRA factors in graft's layout
 * (A [r, in] or [r, C_in, k, k]; B [out, r] or [out, r, 1, 1]), copied. */
typedef struct gr_scalearn_source {
  const float *a, *b;
  int r;
  float scaling;
} gr_scalearn_source;

typedef struct gr_scalearn_opts {
  gr_scalearn_kind kind;
  float dropout;    /* on omega entries while training, in [0,1) */
  float init_scale; /* omega mean init_scale / N */
} gr_scalearn_opts;

/* Wraps the Linear/Conv2d at path in a "ScaLearn" module: children
 * base_layer, lora_A.<i> and lora_B.<i> (frozen), parameter
 * scalearn_omega. For a ++ kind, share_with (a ScaLearn module of the same
 * model, or NULL for the first layer) lends its omega instead: the layer
 * then has no omega of its own and gradients from every layer accumulate
 * in the one tensor. Errors name the module: GR_ENOTFOUND, GR_EUNSUPPORTED
 * (not a Linear/Conv2d), GR_EARG (n_src < 1, r out of range, bad dropout),
 * GR_ESHAPE (a shared vector omega of another width). */
gr_status gr_scalearn_wrap(gr_model *m, const char *path, int n_src, const gr_scalearn_source *src,
                           const gr_scalearn_opts *o, gr_module *share_with);
/* Whether mod is a ScaLearn module; the omega it uses (own or shared). */
bool gr_scalearn_is(const gr_module *mod);
gr_tensor *gr_scalearn_omega(const gr_module *mod);

#ifdef __cplusplus
}
#endif
#endif
