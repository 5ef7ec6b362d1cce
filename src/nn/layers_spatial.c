/* nn/layers_spatial.c — image and normalization layer kinds: Conv2d,
 * BatchNorm2d, LayerNorm, Dropout, max/avg/global pools. Same contract as
 * layers.c: PyTorch names and default init, forwards call core ops. */
#include <string.h>

#include "graft/nn.h"

typedef struct conv_cfg {
  gr_conv2d_opts o;
} conv_cfg;
typedef struct norm_cfg {
  float eps, momentum;
} norm_cfg;
typedef struct pool_cfg {
  gr_pool2d_opts o;
} pool_cfg;
typedef struct dropout_cfg {
  float p;
} dropout_cfg;

static void *cfg_new(gr_module *mod, size_t bytes) {
  if (!mod) return NULL;
  mod->cfg = gr_arena_alloc(mod->model->arena, bytes);
  return mod->cfg;
}

/* ---- Conv2d ------------------------------------------------------------------ */
static gr_tensor *conv_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  conv_cfg *cf = m->cfg;
  return gr_conv2d(c, x, m->p[0].t, m->n_p > 1 ? m->p[1].t : NULL, &cf->o);
}

gr_module *gr_nn_conv2d(gr_model *m, int64_t in_ch, int64_t out_ch, int k, int stride, int pad, bool bias) {
  if (in_ch <= 0 || out_ch <= 0 || k <= 0 || stride <= 0 || pad < 0) {
    gr_error(GR_EARG, "Conv2d: bad in=%lld out=%lld k=%d stride=%d pad=%d", (long long)in_ch, (long long)out_ch, k,
             stride, pad);
    return NULL;
  }
  gr_module *mod = gr_module_new(m, "Conv2d", conv_forward);
  conv_cfg *cf = cfg_new(mod, sizeof *cf);
  if (!cf) return NULL;
  cf->o = (gr_conv2d_opts){.stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad};
  if (!gr_module_new_param(mod, "weight", 4, GR_SHAPE(out_ch, in_ch, k, k), false)) return NULL;
  if (bias && !gr_module_new_param(mod, "bias", 1, GR_SHAPE(out_ch), false)) return NULL;
  return gr_init_module(mod, &m->rng, GR_INIT_TORCH_DEFAULT, 0, 0, 0) ? NULL : mod;
}

const gr_conv2d_opts *gr_nn_conv2d_opts(const gr_module *mod) {
  if (!mod || !mod->kind || strcmp(mod->kind, "Conv2d") || !mod->cfg) return NULL;
  return &((const conv_cfg *)mod->cfg)->o;
}

/* ---- norms and dropout: run in the module's own train/eval mode ------------ */
/* BatchNorm2d m on x in the module's own mode: gr_batch_norm, or with relu
 * gr_batch_norm_relu (residual added before the ReLU, NULL: none). */
static gr_tensor *bn_run(gr_module *m, gr_ctx *c, gr_tensor *x, bool relu, gr_tensor *residual) {
  norm_cfg *cf = m->cfg;
  bool prev = gr_ctx_training(c);
  gr_ctx_set_training(c, m->training && !m->model->inference);
  gr_tensor *y = relu ? gr_batch_norm_relu(c, x, m->p[0].t, m->p[1].t, m->p[2].t, m->p[3].t, cf->momentum, cf->eps,
                                           residual)
                      : gr_batch_norm(c, x, m->p[0].t, m->p[1].t, m->p[2].t, m->p[3].t, cf->momentum, cf->eps);
  gr_ctx_set_training(c, prev);
  return y;
}

static gr_tensor *bn_forward(gr_module *m, gr_ctx *c, gr_tensor *x) { return bn_run(m, c, x, false, NULL); }

gr_tensor *gr_nn_batchnorm_relu(gr_module *m, gr_ctx *c, gr_tensor *x, gr_tensor *residual) {
  if (!m || !x) return NULL; /* an earlier failure, its message kept */
  if (m->forward != bn_forward) { /* hooked, or not a BatchNorm2d: the composed ops */
    gr_tensor *y = m->forward(m, c, x);
    if (y && residual) y = gr_add(c, y, residual);
    return y ? gr_relu(c, y) : NULL;
  }
  return bn_run(m, c, x, true, residual);
}

gr_module *gr_nn_batchnorm2d(gr_model *m, int64_t ch) {
  if (ch <= 0) {
    gr_error(GR_EARG, "BatchNorm2d: channels %lld must be > 0", (long long)ch);
    return NULL;
  }
  gr_module *mod = gr_module_new(m, "BatchNorm2d", bn_forward);
  norm_cfg *cf = cfg_new(mod, sizeof *cf);
  if (!cf) return NULL;
  *cf = (norm_cfg){1e-5f, 0.1f};
  gr_tensor *w = gr_module_new_param(mod, "weight", 1, GR_SHAPE(ch), false);
  gr_tensor *b = gr_module_new_param(mod, "bias", 1, GR_SHAPE(ch), false);
  gr_tensor *rm = gr_module_new_param(mod, "running_mean", 1, GR_SHAPE(ch), true);
  gr_tensor *rv = gr_module_new_param(mod, "running_var", 1, GR_SHAPE(ch), true);
  if (!w || !b || !rm || !rv) return NULL;
  gr_tensor_fill(w, 1.0f);
  gr_tensor_fill(rv, 1.0f);
  return mod;
}

static gr_tensor *ln_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  norm_cfg *cf = m->cfg;
  return gr_layer_norm(c, x, m->p[0].t, m->p[1].t, cf->eps);
}

gr_module *gr_nn_layernorm(gr_model *m, int64_t dim) {
  if (dim <= 0) {
    gr_error(GR_EARG, "LayerNorm: dim %lld must be > 0", (long long)dim);
    return NULL;
  }
  gr_module *mod = gr_module_new(m, "LayerNorm", ln_forward);
  norm_cfg *cf = cfg_new(mod, sizeof *cf);
  if (!cf) return NULL;
  *cf = (norm_cfg){1e-5f, 0};
  gr_tensor *w = gr_module_new_param(mod, "weight", 1, GR_SHAPE(dim), false);
  if (!w || !gr_module_new_param(mod, "bias", 1, GR_SHAPE(dim), false)) return NULL;
  gr_tensor_fill(w, 1.0f);
  return mod;
}

static gr_tensor *dropout_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  dropout_cfg *cf = m->cfg;
  bool prev = gr_ctx_training(c);
  gr_ctx_set_training(c, m->training && !m->model->inference);
  gr_tensor *y = gr_dropout(c, x, cf->p);
  gr_ctx_set_training(c, prev);
  return y;
}

gr_module *gr_nn_dropout(gr_model *m, float p) {
  if (!(p >= 0 && p < 1)) {
    gr_error(GR_EARG, "Dropout: p=%g must be in [0,1)", p);
    return NULL;
  }
  gr_module *mod = gr_module_new(m, "Dropout", dropout_forward);
  dropout_cfg *cf = cfg_new(mod, sizeof *cf);
  if (!cf) return NULL;
  cf->p = p;
  return mod;
}

/* ---- pools, flatten, activations ------------------------------------------- */
static gr_tensor *maxpool_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  return gr_max_pool2d(c, x, &((pool_cfg *)m->cfg)->o);
}
static gr_tensor *avgpool_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  return gr_avg_pool2d(c, x, &((pool_cfg *)m->cfg)->o);
}

static gr_module *pool_new(gr_model *m, const char *kind, gr_module_forward_fn f, int k, int stride) {
  if (k <= 0 || stride < 0) {
    gr_error(GR_EARG, "%s: kernel %d stride %d", kind, k, stride);
    return NULL;
  }
  gr_module *mod = gr_module_new(m, kind, f);
  pool_cfg *cf = cfg_new(mod, sizeof *cf);
  if (!cf) return NULL;
  cf->o = (gr_pool2d_opts){.kernel_h = k, .kernel_w = k, .stride_h = stride, .stride_w = stride,
                           .count_include_pad = true};
  return mod;
}

gr_module *gr_nn_maxpool2d(gr_model *m, int k, int stride) { return pool_new(m, "MaxPool2d", maxpool_forward, k, stride); }

const gr_pool2d_opts *gr_nn_maxpool2d_opts(const gr_module *mod) {
  return mod && mod->forward == maxpool_forward ? &((const pool_cfg *)mod->cfg)->o : NULL;
}
gr_module *gr_nn_avgpool2d(gr_model *m, int k, int stride) { return pool_new(m, "AvgPool2d", avgpool_forward, k, stride); }

static gr_tensor *gap_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  gr_tensor *y = gr_global_avg_pool(c, x);
  return y ? gr_reshape(c, y, 2, GR_SHAPE(y->shape[0], y->shape[1])) : NULL;
}

gr_module *gr_nn_global_avgpool(gr_model *m) { return gr_module_new(m, "AdaptiveAvgPool2d", gap_forward); }
