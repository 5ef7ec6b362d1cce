/* transfer/peft/peft_layer.h — internal: the one wrapper every PEFT method of
 * graft/peft.h is built on (the unified view: a change added to a hidden
 * state of a frozen Linear/Conv2d). peft_layer.c owns what the methods
 * share: finding and measuring the target, building the low-rank/bottleneck
 * factor modules, installing the wrapper in the tree (child "base_layer"),
 * recognizing wrappers, freezing, target selection and merge dispatch. A
 * method file (lora.c, dora.c, ia3.c, adapter.c) owns its forward (the
 * change) and its fold (merge/unmerge math), nothing else.
 * Not here: adapter directories (peft_save.c). */
#ifndef GRAFT_TRANSFER_PEFT_LAYER_H
#define GRAFT_TRANSFER_PEFT_LAYER_H
#include "graft/peft.h"

/* The Linear or Conv2d a method wraps. */
typedef struct peft_target {
  char path[GR_NAME_MAX];
  gr_module *base;
  bool conv;
  int64_t in, out; /* weight columns (C_in*kh*kw for a conv) and rows */
  int64_t in_ch;   /* input width: in (Linear) or C_in (Conv2d) */
} peft_target;

/* A wrapper's settings as an adapter config states them. */
typedef struct peft_desc {
  gr_peft_type type;
  int r;
  double alpha, scale;
  bool rslora, dora, feedforward, parallel;
} peft_desc;

typedef struct peft_layer_ops {
  const char *kind;                                    /* module kind: "LoRA", "IA3", "Adapter" */
  gr_status (*fold)(gr_module *w, bool merge);         /* NULL: cannot be merged */
  void (*describe)(const gr_module *w, peft_desc *d);
} peft_layer_ops;

/* First member of every wrapper's cfg. */
typedef struct peft_layer {
  const peft_layer_ops *ops;
  peft_target t;
  bool merged;
} peft_layer;

extern const peft_layer_ops peft_lora_ops, peft_ia3_ops, peft_adapter_ops;

/* The Linear/Conv2d at path with its sizes; errors name method and path. */
gr_status peft_target_get(gr_model *m, const char *path, const char *method, peft_target *t);
/* GR_EARG naming the module unless 1 <= r <= limit. */
gr_status peft_check_rank(const peft_target *t, const char *method, int r, int64_t limit, const char *limit_what);
/* A wrapper module of ops->kind with a zeroed cfg of cfg_size bytes whose
 * peft_layer header is filled in; NULL on OOM. */
gr_module *peft_layer_new(gr_model *m, const peft_layer_ops *ops, gr_module_forward_fn forward, size_t cfg_size,
                          const peft_target *t);
/* Puts w in place of t->base, with t->base as its child "base_layer" and
 * kids[i] named names[i] after it; the model is laid out again. */
gr_status peft_layer_install(gr_model *m, const peft_target *t, gr_module *w, int n, const char *const *names,
                             gr_module *const *kids);
/* The peft_layer header of a wrapper, or NULL. */
peft_layer *peft_layer_of(const gr_module *mod);
/* The down (in->r) and up (r->out) factors of a low-rank or bottleneck
 * change: Linears, or for a Conv2d a k x k conv with the base's
 * stride/padding down and a 1x1 conv up. from_output: down reads the
 * module's output (width out; a 1x1 conv for a Conv2d). */
gr_status peft_make_factors(gr_model *m, const peft_target *t, int r, bool from_output, bool bias, gr_module **down,
                            gr_module **up);
/* y = base_layer(x) of a wrapper. */
gr_tensor *peft_base_forward(gr_module *w, gr_ctx *c, gr_tensor *x);

/* Method checks used by gr_peft_apply before it wraps anything. */
gr_status peft_lora_check(gr_model *m, const char *path, const gr_lora_opts *o);
gr_status peft_adapter_check(gr_model *m, const char *path, const gr_adapter_opts *o);

/* DoRA (dora.c), called by lora.c: the magnitude parameter initialized to
 * the row norms of W + s B A; the output given the base output y, the
 * dropped input xd and the LoRA path's unscaled output ba = B(A(xd)); the
 * merge fold (norm cached in *norm, [out] floats of the model arena). */
gr_status peft_dora_init(gr_module *w, int64_t out, bool conv);
gr_tensor *peft_dora_output(gr_module *w, gr_ctx *c, gr_tensor *y, gr_tensor *xd, gr_tensor *ba, float scaling);
gr_status peft_dora_fold(gr_module *w, float scaling, bool merge, float **norm);
/* Row norms of W + s B A into norm[out] (double accumulation). */
void peft_dora_row_norms(const gr_module *w, float scaling, float *norm);

#endif
