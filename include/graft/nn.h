/* graft/nn.h — modules with PyTorch-style dotted parameter names.
 *
 * A gr_model owns a tree of gr_module nodes, all allocated in the model's
 * persistent arena, and one flat parameter vector: every parameter tensor's
 * data (and grad) is a named view into model->data (model->grad), so
 * optimizers, clipping, task vectors and save/load see one vector. Buffers
 * (batch-norm running stats) live in a second flat vector, model->buf.
 * Names follow PyTorch's state_dict: a module's full name is the dotted path
 * of child names from the root ("features.0"), a parameter's name appends
 * its local name ("features.0.weight", "layer1.0.bn1.running_mean").
 *
 * Building: create modules with the gr_nn_* constructors (each takes the
 * model, whose seeded rng gives PyTorch's default init), attach children
 * with gr_module_add(), then gr_model_set_root(). Later work may replace a
 * module by dotted name (gr_module_replace: LoRA wraps a Linear, an adapter
 * wraps a block); the flat vectors are laid out again and every existing
 * value is kept.
 *
 * Train/eval mode is per module (gr_module_train, recursive); batch-norm and
 * dropout read their own module's mode, or eval mode while model->inference
 * is set (evaluation sets it without touching the modules' own modes). Frozen parameters have
 * requires_grad = false: no gradient is computed for them and optimizers
 * skip them. */
#ifndef GRAFT_NN_H
#define GRAFT_NN_H
#include <stdbool.h>
#include <stdint.h>

#include "graft/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gr_module gr_module;
typedef struct gr_model gr_model;
typedef gr_tensor *(*gr_module_forward_fn)(gr_module *m, gr_ctx *c, gr_tensor *x);

#define GR_MODULE_MAX_PARAMS 6
#define GR_NAME_MAX 160

typedef struct gr_module_param {
  const char *name;  /* local: "weight", "bias", "running_mean" */
  gr_tensor *t;
  bool buffer;       /* state, not a parameter: no grad, not in model->data */
} gr_module_param;

struct gr_module {
  const char *kind;            /* "Linear", "Conv2d", "Sequential", ... */
  char name[48];               /* local name in the parent ("fc", "0") */
  gr_module *parent;
  gr_module **children;
  int n_children, cap_children;
  gr_module_param p[GR_MODULE_MAX_PARAMS];
  int n_p;
  gr_module_forward_fn forward;
  bool training;
  void *cfg;                   /* kind-specific settings (model arena) */
  gr_model *model;
  struct gr_module_hook *hook; /* input hook, see gr_module_hook_input (NULL: none) */
};

/* One parameter or buffer of the model, in state_dict order. */
typedef struct gr_named_tensor {
  char name[GR_NAME_MAX];
  gr_tensor *t;
  gr_module *owner;
  bool buffer;
  int64_t offset;              /* into model->data (or model->buf) */
} gr_named_tensor;

struct gr_model {
  gr_arena *arena;
  gr_rng rng;                  /* init randomness */
  gr_module *root;
  float *data, *grad;          /* flat parameters and their grads */
  int64_t numel;
  float *buf;                  /* flat buffers */
  int64_t buf_numel;
  gr_named_tensor *entries;    /* parameters and buffers, state_dict order */
  int n_entries;
  bool inference;              /* evaluation override: every module acts in eval mode */
};

/* ---- model ------------------------------------------------------------- */
gr_model *gr_model_new(uint64_t seed);
void gr_model_free(gr_model *m);
/* Sets the root module and lays out the flat vectors. */
gr_status gr_model_set_root(gr_model *m, gr_module *root);
/* Re-lays out the flat vectors after the tree changed; values are kept. */
gr_status gr_model_layout(gr_model *m);
gr_tensor *gr_model_forward(gr_model *m, gr_ctx *c, gr_tensor *x);
/* The parameter or buffer of that full name, or NULL (GR_ENOTFOUND). */
gr_tensor *gr_model_find(gr_model *m, const char *name);
/* Every parameter's grad to zero: marked (grad_zero, graft/tensor.h), not
 * written; the next backward's first write to a grad stores instead of
 * accumulating. Grads a backward did not reach are written with zeros at
 * the end of that backward if the tape holds a gr_model_forward of m, and
 * always by gr_model_grad_sync. */
void gr_model_zero_grad(gr_model *m);
/* Writes the zeros of grads still marked zero, so model->grad and every
 * parameter's grad hold their values. Whatever reads grads outside a
 * backward calls it first (optimizers, clipping, the dist exchange, atlas). */
void gr_model_grad_sync(gr_model *m);
/* Sets requires_grad = !frozen on parameters whose full name matches the
 * glob (fnmatch, '*' crosses dots); returns the match count (0 = no match). */
int gr_model_freeze(gr_model *m, const char *glob, bool frozen);
/* Number of scalar parameters; trainable ones only when trainable_only. */
int64_t gr_model_param_count(const gr_model *m, bool trainable_only);
void gr_model_train(gr_model *m, bool training);

/* ---- module tree --------------------------------------------------------- */
/* Adds child under parent with local name (NULL: its index, as Sequential). */
gr_status gr_module_add(gr_module *parent, const char *name, gr_module *child);
/* The module at a dotted path below root ("" is root itself), or NULL. */
gr_module *gr_module_find(gr_module *root, const char *path);
/* Replaces the module at path with repl (which takes its local name) and
 * re-lays out the model. The old module stays allocated in the arena. */
gr_status gr_module_replace(gr_model *m, const char *path, gr_module *repl);
/* Full dotted name of a module into buf. */
const char *gr_module_path(const gr_module *mod, char *buf, size_t n);
void gr_module_train(gr_module *mod, bool training);
/* A module's local parameter by name ("weight"), or NULL. */
gr_tensor *gr_module_param_get(gr_module *mod, const char *local);
/* A new module of kind with no parameters; for module kinds defined
 * elsewhere (transfer methods): fill cfg and forward, add params with
 * gr_module_new_param. */
gr_module *gr_module_new(gr_model *m, const char *kind, gr_module_forward_fn forward);
/* A new parameter (or buffer) of mod, zero-filled until the next layout
 * moves it into the flat vector. */
gr_tensor *gr_module_new_param(gr_module *mod, const char *local, int ndim, const int64_t *shape, bool buffer);

/* ---- input hooks (PyTorch's forward pre-hooks) ---------------------------
 * fn(ud, mod, x) sees the input of every forward of mod before mod runs
 * (whoever calls mod->forward: its parent, a wrapper, the model); a non-OK
 * return makes that forward fail with the hook's status. One hook per
 * module: hooking a hooked module is GR_ESTATE. Unhooking restores the
 * module's own forward; unhooking an unhooked module does nothing. Used to
 * collect activation statistics (CorDA's covariances) without forking a
 * module. */
typedef gr_status (*gr_module_input_hook_fn)(void *ud, gr_module *mod, const gr_tensor *x);
gr_status gr_module_hook_input(gr_module *mod, gr_module_input_hook_fn fn, void *ud);
void gr_module_unhook_input(gr_module *mod);
/* Frees the storage of a module tree that was built but never joined its
 * model (after a failure): parameters not yet laid out own their values. The
 * module itself lives in the model's arena. */
void gr_module_discard(gr_module *mod);

/* ---- layers -------------------------------------------------------------- */
gr_module *gr_nn_linear(gr_model *m, int64_t in, int64_t out, bool bias);
gr_module *gr_nn_conv2d(gr_model *m, int64_t in_ch, int64_t out_ch, int k, int stride, int pad, bool bias);
/* The stride/padding of a Conv2d module (NULL if mod is not one). */
const gr_conv2d_opts *gr_nn_conv2d_opts(const gr_module *mod);
gr_module *gr_nn_batchnorm2d(gr_model *m, int64_t ch);  /* eps 1e-5, momentum 0.1 */
/* relu(bn(x) + residual) (residual may be NULL) for a BatchNorm2d module bn,
 * as one op (gr_batch_norm_relu) in bn's train/eval mode; a hooked module
 * (or another kind) runs its forward, gr_add and gr_relu. NULL x: NULL. */
gr_tensor *gr_nn_batchnorm_relu(gr_module *bn, gr_ctx *c, gr_tensor *x, gr_tensor *residual);
gr_module *gr_nn_layernorm(gr_model *m, int64_t dim);   /* eps 1e-5 */
gr_module *gr_nn_dropout(gr_model *m, float p);
gr_module *gr_nn_maxpool2d(gr_model *m, int k, int stride);
/* The window of a MaxPool2d module (NULL if mod is not one, or is hooked). */
const gr_pool2d_opts *gr_nn_maxpool2d_opts(const gr_module *mod);
gr_module *gr_nn_avgpool2d(gr_model *m, int k, int stride);
gr_module *gr_nn_global_avgpool(gr_model *m);           /* [N,C,H,W] -> [N,C] */
gr_module *gr_nn_flatten(gr_model *m);                  /* [N,...] -> [N,-1] */
gr_module *gr_nn_relu(gr_model *m);
gr_module *gr_nn_tanh(gr_model *m);
gr_module *gr_nn_gelu(gr_model *m);
gr_module *gr_nn_sequential(gr_model *m);               /* children in order */

/* ---- architectures (PyTorch-equivalent state_dict names) ------------------ */
/* features.{0 conv(in,6,5,pad 2),1 relu,2 maxpool2,3 conv(6,16,5),4 relu,5 maxpool2},
 * classifier.{0 linear(16*5*5,120),1 relu,2 linear(120,84),3 relu,4 linear(84,classes)};
 * for 28x28 inputs. Head: "classifier.4". */
gr_module *gr_arch_lenet(gr_model *m, int in_ch, int n_classes);
/* layers.{0,2,..} Linear + activation ("relu"|"tanh"|"gelu"|"none"),
 * last Linear to n_out. Head: the last Linear ("layers.<2*n_hidden>"). */
gr_module *gr_arch_mlp(gr_model *m, int64_t in, const int64_t *hidden, int n_hidden, int64_t n_out,
                       const char *act);
/* CIFAR-style ResNet-(6n+2) for small images: conv1,bn1, layer1..3 of n
 * BasicBlocks (width w, 2w, 4w; stride 2 at layer2/3 with 1x1 conv +
 * bn "downsample"), global avg pool, fc. depth 8 -> n=1, 20 -> n=3. */
gr_module *gr_arch_resnet(gr_model *m, int depth, int in_ch, int width, int n_classes);

/* Architectures by name, for model directories and the CLI: "lenet",
 * "mlp" (flatten, 256-128 ReLU hidden), "resnet8", "resnet20" (width 16).
 * head: dotted name of the classifier module; early: glob of the layers a
 * "frozen early layers" transfer freezes. */
typedef struct gr_arch_info {
  const char *name, *head, *early;
} gr_arch_info;
/* NULL with GR_EARG listing the known names. */
const gr_arch_info *gr_arch_lookup(const char *name);
gr_module *gr_arch_build(gr_model *m, const char *name, int in_ch, int h, int w, int n_classes);

/* ---- initializers -------------------------------------------------------- */
typedef enum gr_init_kind {
  GR_INIT_TORCH_DEFAULT = 0, /* kaiming_uniform(a=sqrt 5) weight, U(+-1/sqrt fan_in) bias */
  GR_INIT_KAIMING_NORMAL,    /* N(0, 2/fan_in), bias 0 */
  GR_INIT_KAIMING_UNIFORM,   /* U(+-sqrt(6/fan_in)), bias 0 */
  GR_INIT_XAVIER_NORMAL,     /* N(0, 2/(fan_in+fan_out)), bias 0 */
  GR_INIT_XAVIER_UNIFORM,    /* U(+-sqrt(6/(fan_in+fan_out))), bias 0 */
  GR_INIT_NORMAL,            /* N(0, std^2), bias 0 */
  GR_INIT_CRITICAL,          /* W ~ N(0, C_W/fan_in), b ~ N(0, C_b): PDLT criticality */
} gr_init_kind;

/* fan_in = in (x k*k), fan_out = out (x k*k) of a Linear/Conv2d weight. */
void gr_init_fans(const gr_tensor *w, int64_t *fan_in, int64_t *fan_out);
/* Re-initializes every Linear/Conv2d weight and bias below mod. std is used
 * by GR_INIT_NORMAL; cw, cb by GR_INIT_CRITICAL. */
gr_status gr_init_module(gr_module *mod, gr_rng *r, gr_init_kind kind, float std, float cw, float cb);
/* Critical (C_W, C_b) of the PDLT book for an activation: relu (2, 0),
 * tanh (1, 0), linear/none (1, 0).
 * GR_EARG for an unknown name. */
gr_status gr_init_critical_params(const char *act, float *cw, float *cb);

#ifdef __cplusplus
}
#endif
#endif
