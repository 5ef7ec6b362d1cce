/* nn/layers.c — dense layer kinds: Linear, Flatten, activations,
 * Sequential. Each constructor makes the parameters with PyTorch's names and
 * default init; each forward calls the ops of core/ (no math here). Spatial
 * and normalization layers are in layers_spatial.c. */
#include <string.h>

#include "graft/nn.h"

/* ---- Linear ---------------------------------------------------------------- */
static gr_tensor *linear_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  return gr_linear(c, x, m->p[0].t, m->n_p > 1 ? m->p[1].t : NULL);
}

gr_module *gr_nn_linear(gr_model *m, int64_t in, int64_t out, bool bias) {
  if (in <= 0 || out <= 0) {
    gr_error(GR_EARG, "Linear: in=%lld out=%lld must be > 0", (long long)in, (long long)out);
    return NULL;
  }
  gr_module *mod = gr_module_new(m, "Linear", linear_forward);
  if (!mod || !gr_module_new_param(mod, "weight", 2, GR_SHAPE(out, in), false)) return NULL;
  if (bias && !gr_module_new_param(mod, "bias", 1, GR_SHAPE(out), false)) return NULL;
  return gr_init_module(mod, &m->rng, GR_INIT_TORCH_DEFAULT, 0, 0, 0) ? NULL : mod;
}

static gr_tensor *flatten_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  if (!x) return NULL;
  if (x->ndim < 1) {
    gr_error(GR_ESHAPE, "Flatten: input is a scalar");
    return NULL;
  }
  return gr_reshape(c, x, 2, GR_SHAPE(x->shape[0], -1));
}
static gr_tensor *relu_forward(gr_module *m, gr_ctx *c, gr_tensor *x) { return gr_relu(c, x); }
static gr_tensor *tanh_forward(gr_module *m, gr_ctx *c, gr_tensor *x) { return gr_tanh(c, x); }
static gr_tensor *gelu_forward(gr_module *m, gr_ctx *c, gr_tensor *x) { return gr_gelu(c, x); }

gr_module *gr_nn_flatten(gr_model *m) { return gr_module_new(m, "Flatten", flatten_forward); }
gr_module *gr_nn_relu(gr_model *m) { return gr_module_new(m, "ReLU", relu_forward); }
gr_module *gr_nn_tanh(gr_model *m) { return gr_module_new(m, "Tanh", tanh_forward); }
gr_module *gr_nn_gelu(gr_model *m) { return gr_module_new(m, "GELU", gelu_forward); }

/* Children in order; a ReLU next to a MaxPool2d (either order, neither
 * hooked: a hook replaces the forward) runs as one gr_max_pool2d_relu, the
 * same function (max and ReLU commute) with the ReLU on the pooled outputs
 * only. The separate ReLU passes over LeNet's conv outputs were 8% of its
 * training step. */
static gr_tensor *sequential_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  for (int i = 0; i < m->n_children && x; i++) {
    gr_module *a = m->children[i], *b = i + 1 < m->n_children ? m->children[i + 1] : NULL;
    const gr_pool2d_opts *pool = NULL;
    if (b && a->forward == relu_forward) pool = gr_nn_maxpool2d_opts(b);
    else if (b && b->forward == relu_forward) pool = gr_nn_maxpool2d_opts(a);
    if (pool) {
      x = gr_max_pool2d_relu(c, x, pool);
      i++;
    } else {
      x = a->forward(a, c, x);
    }
  }
  return x;
}

gr_module *gr_nn_sequential(gr_model *m) { return gr_module_new(m, "Sequential", sequential_forward); }
