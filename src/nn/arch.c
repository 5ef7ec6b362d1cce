/* nn/arch.c — dense architectures: MLP with PyTorch-twin state_dict names.
 * Convolutional ones (LeNet, ResNet) are in arch_cnn.c. */
#include <stdio.h>
#include <string.h>

#include "graft/nn.h"

static gr_module *activation(gr_model *m, const char *act) {
  if (!strcmp(act, "relu")) return gr_nn_relu(m);
  if (!strcmp(act, "tanh")) return gr_nn_tanh(m);
  if (!strcmp(act, "gelu")) return gr_nn_gelu(m);
  gr_error(GR_EARG, "mlp: activation '%s' (relu|tanh|gelu|none)", act);
  return NULL;
}

gr_module *gr_arch_mlp(gr_model *m, int64_t in, const int64_t *hidden, int n_hidden, int64_t n_out,
                       const char *act) {
  if (!act || n_hidden < 0 || (n_hidden && !hidden)) {
    gr_error(GR_EARG, "mlp: bad arguments");
    return NULL;
  }
  bool none = !strcmp(act, "none") || !strcmp(act, "linear");
  if (!none && strcmp(act, "relu") && strcmp(act, "tanh") && strcmp(act, "gelu")) {
    gr_error(GR_EARG, "mlp: activation '%s' (relu|tanh|gelu|none)", act);
    return NULL;
  }
  gr_module *layers = gr_nn_sequential(m), *root = gr_nn_sequential(m), *flat = gr_nn_flatten(m);
  if (!layers || !root || !flat) return NULL;
  int64_t prev = in;
  for (int i = 0; i < n_hidden; i++) {
    char name[16];
    snprintf(name, sizeof name, "%d", 2 * i);
    if (gr_module_add(layers, name, gr_nn_linear(m, prev, hidden[i], true))) return NULL;
    snprintf(name, sizeof name, "%d", 2 * i + 1);
    if (!none && gr_module_add(layers, name, activation(m, act))) return NULL;
    prev = hidden[i];
  }
  char name[16];
  snprintf(name, sizeof name, "%d", 2 * n_hidden);
  if (gr_module_add(layers, name, gr_nn_linear(m, prev, n_out, true))) return NULL;
  if (gr_module_add(root, "flatten", flat) || gr_module_add(root, "layers", layers)) return NULL;
  return root;
}

