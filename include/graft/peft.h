/* graft/peft.h — parameter-efficient transfer methods that wrap modules of a
 * gr_model by dotted name (src/transfer/peft/, one file per method).
 *
 * One mechanism (He et al., "Towards a Unified View of Parameter-Efficient
 * Transfer Learning", 2022): every method adds a learned change to a hidden
 * state of a frozen Linear or Conv2d. The targeted module is replaced by a
 * wrapper whose child "base_layer" is the untouched module
 * (peft_layer.c: target checks, installation, freezing, target selection,
 * merge dispatch, adapter directories); the methods differ only in the
 * form and placement of the change:
 *   LoRA   (lora.c)   y = base(x) + s * B(A(dropout(x)))       parallel, linear
 *          s = alpha/r (alpha/sqrt(r) with rslora); A [r,in] kaiming-uniform
 *          (a=sqrt 5), B = 0; Conv2d: A a k x k conv in->r with the base's
 *          stride/padding, B a 1x1 conv r->out (PEFT's conv LoRA)
 *   DoRA   (dora.c)   y = base(x) + (g-1) (W xd) + g s B(A(xd)),  xd = dropout(x)
 *          (= g (W x + s B A x) + b without dropout),
 *          g = m / ||W + s B A||_row (the norm detached), m [out]
 *          initialized to that norm (use_dora in a LoRA config)
 *   IA3    (ia3.c)    y = l * base(x)   (l [out,1]) or, for feed-forward
 *          modules, y = base(l * x) (l [1,in]); l = 1 at init
 *   bottleneck adapter (adapter.c), f = ReLU, up = 0 at init:
 *          sequential (Houlsby/Pfeiffer)  y = h + s * up(f(down(h))), h = base(x)
 *          parallel (He et al.)           y = base(x) + s * up(f(down(x)))
 *          scaled parallel: the same with s = 4
 * Parameter names are PEFT's (module path + local name):
 *   <path>.base_layer.weight, <path>.lora_A.weight, <path>.lora_B.weight,
 *   <path>.lora_magnitude_vector ([out]; [1,out,1,1] for a Conv2d),
 *   <path>.ia3_l ([out,1] / [1,in]; [1,C,1,1] for a Conv2d),
 *   <path>.adapter_down.{weight,bias}, <path>.adapter_up.{weight,bias}
 * so the adapter keys PEFT saves are base_model.model.<parameter name>.
 *
 * Merging folds LoRA, DoRA and IA3 into the base weights (exactly: PEFT's
 * formulas of FORMATS.md §2.3; IA3's unmerge divides by l itself, not
 * l + 1e-8) and unmerging takes them out again; a merged wrapper's forward
 * is the base module's. Bottleneck adapters are nonlinear and cannot be
 * merged (GR_EUNSUPPORTED naming the module). */
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
  bool dora;           /* DoRA: add the magnitude vector (Linear or Conv2d) */
} gr_lora_opts;

/* Wraps the Linear or Conv2d at path in a LoRA module (kind "LoRA"); the
 * base module becomes its child "base_layer" and keeps its values and
 * requires_grad. Initial randomness comes from the model's rng. Errors name
 * the module: GR_ENOTFOUND (no such path), GR_EUNSUPPORTED (not a Linear or
 * Conv2d), GR_EARG (r out of range, r > min(in,out), bad dropout). */
gr_status gr_lora_wrap(gr_model *m, const char *path, const gr_lora_opts *o);
/* IA3 on the Linear or Conv2d at path: ia3_l ones (or N(0,1) draws from
 * the model's rng when !init_ones, PEFT's init_ia3_weights=false). */
gr_status gr_ia3_wrap(gr_model *m, const char *path, bool feedforward, bool init_ones);

typedef enum gr_adapter_placement {
  GR_ADAPTER_SEQUENTIAL = 0, /* Δh from the module's output h: y = h + s f(h) */
  GR_ADAPTER_PARALLEL = 1,   /* Δh from the module's input x: y = h + s f(x) */
} gr_adapter_placement;

typedef struct gr_adapter_opts {
  int r;                         /* bottleneck width, 1 <= r <= the adapted width */
  gr_adapter_placement placement;
  float scale;                   /* s: 1 (Houlsby/Pfeiffer, PA), 4 (scaled PA) */
  bool random_up;                /* up ~ PyTorch's default init instead of 0 (tests) */
} gr_adapter_opts;

/* Bottleneck adapter on the Linear or Conv2d at path, or on a GPT's
 * feed-forward sublayer "transformer.h.<i>.mlp" (graft/gpt.h; a C -> C map:
 * the FFN site of the unified view, used by MAM). down: Linear (in or
 * out)->r, or for a Conv2d a k x k conv with the base's stride/padding
 * (parallel) or a 1x1 conv out->r (sequential); up: r->out (1x1 conv); both
 * with bias. down keeps PyTorch's default init, up and both biases start 0. */
gr_status gr_adapter_wrap(gr_model *m, const char *path, const gr_adapter_opts *o);

/* Wraps every Linear/Conv2d the config targets (gr_peft_targets: suffixes or
 * a full-match regex) with the config's method: LoRA (use_dora: DoRA) with
 * its per-module rank and alpha (rank_pattern, alpha_pattern), lora_dropout
 * and use_rslora; IA3 with feedforward_modules; bottleneck adapters with
 * r, adapter_placement and adapter_scaling. Every target is checked before
 * the first is wrapped (all or nothing). Then freezes every parameter but
 * the adapters' and those of modules_to_save (PEFT's
 * mark_only_adapters_as_trainable, bias="none"). GR_ENOTFOUND naming the
 * targets when nothing matches (or a modules_to_save entry matches
 * nothing); GR_EARG naming the module when r does not fit it.
 * (fan_in_fan_out describes the checkpoint's layout, HF GPT-2 Conv1D;
 * graft's Linears are [out,in] in memory, so modules are wrapped the same
 * either way.) *n_wrapped (may be NULL) gets the count. */
gr_status gr_peft_apply(gr_model *m, const gr_peft_config *cfg, gr_lora_init init, int *n_wrapped);
/* gr_peft_apply for a LoRA config (kept for its callers). */
gr_status gr_lora_apply(gr_model *m, const gr_peft_config *cfg, gr_lora_init init, int *n_wrapped);

/* Whether mod is any PEFT wrapper (LoRA/DoRA, IA3, adapter); whether it is a
 * LoRA (or DoRA) one; its scaling; its rank. */
bool gr_peft_is_layer(const gr_module *mod);
bool gr_lora_is(const gr_module *mod);
float gr_lora_scaling(const gr_module *mod);
int gr_lora_rank(const gr_module *mod);
/* Whether the parameter is an adapter parameter (owned by a wrapper or by
 * one of its children other than base_layer). */
bool gr_peft_param_is_adapter(const gr_named_tensor *e);
/* Whether the parameter is in an adapter's up factor (lora_B, adapter_up):
 * the factor LoRA+ trains at a larger lr. */
bool gr_peft_param_is_up(const gr_named_tensor *e);

/* Folds the adapter into base_layer's weight (and bias, IA3) or takes it out
 * again. Merging a merged module (or unmerging an unmerged one) is
 * GR_ESTATE; an adapter that cannot be merged is GR_EUNSUPPORTED. */
gr_status gr_lora_merge(gr_module *mod);
gr_status gr_lora_unmerge(gr_module *mod);
gr_status gr_peft_merge(gr_module *mod, bool merge);
/* Merges (or unmerges) every PEFT wrapper of the model, after checking that
 * all of them can be (nothing changes otherwise); count through n (may be
 * NULL). */
gr_status gr_peft_merge_all(gr_model *m, bool merge, int *n);
/* Declares every wrapper merged without changing any weight: the base
 * weights already hold merged values (a merged model file loaded under its
 * adapter, to unmerge it). DoRA needs the row norms of W + sBA that merging
 * saw, which the merged weights do not determine: norms[i] for the i-th
 * DoRA wrapper in tree order as returned by gr_peft_dora_norms (NULL when
 * there is no DoRA wrapper); GR_EARG naming the module otherwise. */
gr_status gr_peft_mark_merged(gr_model *m, const gr_tensor *const *norms, int n_norms);
/* The cached norms of merged DoRA wrappers, tree order, into out[0..max)
 * (tensors of the model arena, named <path>.dora_weight_norm); count
 * returned through n. */
gr_status gr_peft_dora_norms(gr_model *m, gr_tensor **out, int max, int *n);
/* Replaces every wrapper by its base_layer (plain module names again,
 * adapter parameters dropped): a merged wrapper's change stays in the base
 * weights (PEFT's merge_and_unload), an unmerged one's is gone (unload). */
gr_status gr_peft_unwrap_all(gr_model *m);

/* The adapter config describing the model's wrappers (all of one method):
 * target_modules the wrapped paths, r and lora_alpha of the first one,
 * rank_pattern/alpha_pattern for the others that differ, use_rslora,
 * use_dora, feedforward_modules, adapter fields; modules_to_save the
 * modules whose non-adapter parameters are trainable. NULL with
 * GR_ENOTFOUND when the model has no wrapper, GR_EUNSUPPORTED when methods
 * are mixed. */
gr_peft_config *gr_peft_config_from_model(gr_model *m);
/* Writes the model's adapter as a PEFT adapter directory (config from
 * gr_peft_config_from_model, tensors base_model.model.<name>). */
gr_status gr_peft_save(gr_model *m, const char *dir);
/* Opens an adapter directory (validated), wraps the model as its config
 * says (gr_peft_apply) and loads every adapter and modules_to_save tensor
 * by name. GR_EFORMAT naming the tensor/module when a tensor's shape does
 * not fit the model, a tensor names no parameter of the model, or an
 * adapter parameter has no tensor. *cfg_out (may be NULL) gets the config. */
gr_status gr_peft_load(gr_model *m, const char *dir, gr_peft_config **cfg_out);

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
