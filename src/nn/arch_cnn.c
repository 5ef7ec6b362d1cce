/* nn/arch_cnn.c — convolutional architectures with the state_dict names of
 * their PyTorch twins: a LeNet-5 style CNN and a CIFAR-style ResNet. */
#include <stdio.h>
#include <string.h>

#include "graft/nn.h"

/* Adds children in order (names "0", "1", ...); NULL anywhere fails. */
static gr_module *seq_of(gr_model *m, int n, gr_module **mods) {
  gr_module *s = gr_nn_sequential(m);
  if (!s) return NULL;
  for (int i = 0; i < n; i++)
    if (!mods[i] || gr_module_add(s, NULL, mods[i])) return NULL;
  return s;
}

gr_module *gr_arch_lenet(gr_model *m, int in_ch, int n_classes) {
  if (in_ch <= 0 || n_classes <= 0) {
    gr_error(GR_EARG, "lenet: in_ch=%d classes=%d", in_ch, n_classes);
    return NULL;
  }
  gr_module *f[] = {gr_nn_conv2d(m, in_ch, 6, 5, 1, 2, true), gr_nn_relu(m), gr_nn_maxpool2d(m, 2, 2),
                    gr_nn_conv2d(m, 6, 16, 5, 1, 0, true), gr_nn_relu(m), gr_nn_maxpool2d(m, 2, 2)};
  gr_module *features = seq_of(m, 6, f);
  gr_module *cl[] = {gr_nn_linear(m, 16 * 5 * 5, 120, true), gr_nn_relu(m), gr_nn_linear(m, 120, 84, true),
                     gr_nn_relu(m), gr_nn_linear(m, 84, n_classes, true)};
  gr_module *classifier = seq_of(m, 5, cl);
  gr_module *root = gr_nn_sequential(m), *flat = gr_nn_flatten(m);
  if (!features || !classifier || !root || !flat) return NULL;
  if (gr_module_add(root, "features", features) || gr_module_add(root, "flatten", flat) ||
      gr_module_add(root, "classifier", classifier))
    return NULL;
  return root;
}

/* ---- ResNet ------------------------------------------------------------------ */
/* out = relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x)); each bn with
 * what follows it is one op (gr_nn_batchnorm_relu). */
static gr_tensor *basic_block_forward(gr_module *b, gr_ctx *c, gr_tensor *x) {
  gr_module *conv1 = b->children[0], *bn1 = b->children[1], *conv2 = b->children[2], *bn2 = b->children[3];
  gr_module *down = b->n_children > 4 ? b->children[4] : NULL;
  gr_tensor *h = gr_nn_batchnorm_relu(bn1, c, conv1->forward(conv1, c, x), NULL);
  gr_tensor *sc = down ? down->forward(down, c, x) : x;
  return sc ? gr_nn_batchnorm_relu(bn2, c, conv2->forward(conv2, c, h), sc) : NULL;
}

static gr_module *basic_block(gr_model *m, int64_t in, int64_t out, int stride) {
  gr_module *b = gr_module_new(m, "BasicBlock", basic_block_forward);
  if (!b) return NULL;
  if (gr_module_add(b, "conv1", gr_nn_conv2d(m, in, out, 3, stride, 1, false)) ||
      gr_module_add(b, "bn1", gr_nn_batchnorm2d(m, out)) ||
      gr_module_add(b, "conv2", gr_nn_conv2d(m, out, out, 3, 1, 1, false)) ||
      gr_module_add(b, "bn2", gr_nn_batchnorm2d(m, out)))
    return NULL;
  if (stride != 1 || in != out) {
    gr_module *d[] = {gr_nn_conv2d(m, in, out, 1, stride, 0, false), gr_nn_batchnorm2d(m, out)};
    if (gr_module_add(b, "downsample", seq_of(m, 2, d))) return NULL;
  }
  return b;
}

static gr_tensor *stem_forward(gr_module *r, gr_ctx *c, gr_tensor *x) {
  for (int i = 0; i < r->n_children && x; i++)
    if (i == 1) x = gr_nn_batchnorm_relu(r->children[1], c, x, NULL); /* bn1, relu */
    else x = r->children[i]->forward(r->children[i], c, x);
  return x;
}

gr_module *gr_arch_resnet(gr_model *m, int depth, int in_ch, int width, int n_classes) {
  if (depth < 8 || (depth - 2) % 6 || in_ch <= 0 || width <= 0 || n_classes <= 0) {
    gr_error(GR_EARG, "resnet: depth %d must be 6n+2 >= 8 (in_ch=%d width=%d classes=%d)", depth, in_ch, width,
             n_classes);
    return NULL;
  }
  int n = (depth - 2) / 6;
  gr_module *root = gr_module_new(m, "ResNet", stem_forward);
  if (!root || gr_module_add(root, "conv1", gr_nn_conv2d(m, in_ch, width, 3, 1, 1, false)) ||
      gr_module_add(root, "bn1", gr_nn_batchnorm2d(m, width)))
    return NULL;
  int64_t ch = width;
  for (int l = 0; l < 3; l++) {
    gr_module *layer = gr_nn_sequential(m);
    int64_t out = (int64_t)width << l;
    for (int i = 0; i < n; i++) {
      if (gr_module_add(layer, NULL, basic_block(m, ch, out, (l > 0 && i == 0) ? 2 : 1))) return NULL;
      ch = out;
    }
    char name[16];
    snprintf(name, sizeof name, "layer%d", l + 1);
    if (gr_module_add(root, name, layer)) return NULL;
  }
  if (gr_module_add(root, "avgpool", gr_nn_global_avgpool(m)) || gr_module_add(root, "fc", gr_nn_linear(m, ch, n_classes, true)))
    return NULL;
  return root;
}

/* ---- architectures by name ------------------------------------------------------ */
static const gr_arch_info archs[] = {
    {"lenet", "classifier.4", "features.*"},
    {"mlp", "layers.4", "layers.0.*"},
    {"resnet8", "fc", "conv1.*"},
    {"resnet20", "fc", "conv1.*"},
};

const gr_arch_info *gr_arch_lookup(const char *name) {
  for (size_t i = 0; name && i < sizeof archs / sizeof archs[0]; i++)
    if (!strcmp(archs[i].name, name)) return &archs[i];
  gr_error(GR_EARG, "unknown architecture '%s' (lenet|mlp|resnet8|resnet20)", name ? name : "(null)");
  return NULL;
}

gr_module *gr_arch_build(gr_model *m, const char *name, int in_ch, int h, int w, int n_classes) {
  const gr_arch_info *a = gr_arch_lookup(name);
  if (!a) return NULL;
  if (!strcmp(a->name, "lenet")) {
    if (h != 28 || w != 28) {
      gr_error(GR_EARG, "lenet: wants 28x28 inputs, got %dx%d", h, w);
      return NULL;
    }
    return gr_arch_lenet(m, in_ch, n_classes);
  }
  if (!strcmp(a->name, "mlp"))
    return gr_arch_mlp(m, (int64_t)in_ch * h * w, (const int64_t[]){256, 128}, 2, n_classes, "relu");
  return gr_arch_resnet(m, !strcmp(a->name, "resnet8") ? 8 : 20, in_ch, 16, n_classes);
}
