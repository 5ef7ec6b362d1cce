/* nn: module tree, dotted names, flat layout, find/replace, freezing,
 * train/eval, initializer distributions, critical init kernel propagation,
 * an MLP forward/backward against its PyTorch twin, zero_grad's zero mark
 * (stores on the first backward write, zeros for grads no backward reached,
 * accumulation without zero_grad), bad input. */
#include <math.h>
#include <string.h>

#include "graft/nn.h"
#include "graft/optim.h"
#include "refdata.h"

static gr_model *mlp_model(const char *act, uint64_t seed) {
  gr_model *m = gr_model_new(seed);
  gr_module *r = gr_arch_mlp(m, 10, (const int64_t[]){16, 8}, 2, 3, act);
  if (!r || gr_model_set_root(m, r)) return NULL;
  return m;
}

static void test_names_and_layout(void) {
  gr_model *m = mlp_model("tanh", 1);
  CHECK_PTR(m);
  if (!m) return;
  const char *want[] = {"layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias", "layers.4.weight",
                        "layers.4.bias"};
  CHECK(m->n_entries == 6);
  int64_t off = 0;
  for (int i = 0; i < 6 && i < m->n_entries; i++) {
    CHECK_MSG(!strcmp(m->entries[i].name, want[i]), "entry %d is %s", i, m->entries[i].name);
    CHECK(m->entries[i].t->data == m->data + off && m->entries[i].t->grad == m->grad + off);
    off += m->entries[i].t->numel;
  }
  CHECK(m->numel == off && off == 10 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3);
  CHECK(gr_model_param_count(m, false) == off);
  CHECK(gr_model_find(m, "layers.2.bias") == m->entries[3].t);
  CHECK_FAILS(gr_model_find(m, "layers.9.bias") != NULL, GR_ENOTFOUND);

  /* freezing by glob */
  CHECK(gr_model_freeze(m, "layers.0.*", true) == 2);
  CHECK(!m->entries[0].t->requires_grad && m->entries[2].t->requires_grad);
  CHECK(gr_model_param_count(m, true) == off - 176);
  CHECK(gr_model_freeze(m, "*", false) == 6);
  CHECK(gr_model_freeze(m, "nomatch*", true) == 0);

  /* find and replace by dotted name keeps every other value */
  gr_module *l2 = gr_module_find(m->root, "layers.2");
  CHECK(l2 && !strcmp(l2->kind, "Linear"));
  CHECK(gr_module_find(m->root, "") == m->root);
  CHECK_FAILS(gr_module_find(m->root, "layers.7") != NULL, GR_ENOTFOUND);
  char path[GR_NAME_MAX];
  CHECK(!strcmp(gr_module_path(l2, path, sizeof path), "layers.2"));
  float w0 = m->entries[0].t->data[5], w4 = gr_model_find(m, "layers.4.weight")->data[7];
  gr_module *repl = gr_nn_linear(m, 16, 8, false);
  CHECK_OK(gr_module_replace(m, "layers.2", repl));
  CHECK(m->n_entries == 5 && !strcmp(m->entries[2].name, "layers.2.weight") && !strcmp(m->entries[3].name, "layers.4.weight"));
  CHECK(m->entries[0].t->data[5] == w0 && gr_model_find(m, "layers.4.weight")->data[7] == w4);
  CHECK(m->entries[2].t->data == m->data + 176);
  CHECK_FAILS(gr_module_replace(m, "layers.8", repl) == GR_OK, GR_ENOTFOUND);

  /* train/eval is recursive */
  gr_model_train(m, false);
  CHECK(!m->root->training && !gr_module_find(m->root, "layers.4")->training);
  gr_model_train(m, true);
  CHECK(gr_module_find(m->root, "layers.4")->training);

  /* bad module trees */
  gr_module *s = gr_nn_sequential(m), *a = gr_nn_relu(m), *b = gr_nn_relu(m);
  CHECK_OK(gr_module_add(s, "x", a));
  CHECK_FAILS(gr_module_add(s, "x", b) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_module_add(s, "a.b", b) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_module_add(s, NULL, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_nn_linear(m, 0, 3, true) != NULL, GR_EARG);
  CHECK_FAILS(gr_arch_mlp(m, 4, (const int64_t[]){3}, 1, 2, "swish") != NULL, GR_EARG);
  gr_model_free(m);

  gr_model *e = gr_model_new(1);
  gr_ctx *c = gr_ctx_new(1 << 12, 1);
  CHECK_FAILS(gr_model_forward(e, c, gr_tensor_new(c, 2, GR_SHAPE(1, 1))) != NULL, GR_ESTATE);
  gr_ctx_free(c);
  gr_model_free(e);
}

static double sample_std(const float *x, int64_t n, double *mean_out) {
  double s = 0, ss = 0;
  for (int64_t i = 0; i < n; i++) s += x[i];
  double mu = s / n;
  for (int64_t i = 0; i < n; i++) ss += (x[i] - mu) * (x[i] - mu);
  *mean_out = mu;
  return sqrt(ss / n);
}

static void test_init_distributions(void) {
  gr_model *m = gr_model_new(3);
  gr_module *lin = gr_nn_linear(m, 400, 300, true);
  gr_model_set_root(m, lin);
  gr_tensor *w = gr_module_param_get(lin, "weight"), *b = gr_module_param_get(lin, "bias");
  double mu, sd, bound = 1.0 / sqrt(400.0), maxabs = 0;
  for (int64_t i = 0; i < w->numel; i++) maxabs = fmax(maxabs, fabs(w->data[i]));
  sd = sample_std(w->data, w->numel, &mu);
  CHECK(maxabs <= bound && maxabs > 0.99 * bound); /* U(-1/sqrt(fan_in), +) */
  CHECK_NEAR(sd, bound / sqrt(3.0), 0.01 * bound);
  CHECK_NEAR(mu, 0, 0.01 * bound);
  maxabs = 0;
  for (int64_t i = 0; i < b->numel; i++) maxabs = fmax(maxabs, fabs(b->data[i]));
  CHECK(maxabs <= bound && maxabs > 0.9 * bound);
  struct {
    gr_init_kind k;
    double want;
  } cases[] = {{GR_INIT_KAIMING_NORMAL, sqrt(2.0 / 400)},
               {GR_INIT_KAIMING_UNIFORM, sqrt(6.0 / 400) / sqrt(3.0)},
               {GR_INIT_XAVIER_NORMAL, sqrt(2.0 / 700)},
               {GR_INIT_XAVIER_UNIFORM, sqrt(6.0 / 700) / sqrt(3.0)},
               {GR_INIT_NORMAL, 0.02},
               {GR_INIT_CRITICAL, sqrt(2.0 / 400)}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK_OK(gr_init_module(lin, &m->rng, cases[i].k, 0.02f, 2.0f, 0.0f));
    sd = sample_std(w->data, w->numel, &mu);
    CHECK_MSG(fabs(sd - cases[i].want) < 0.01 * cases[i].want, "init %d: std %g want %g", cases[i].k, sd, cases[i].want);
    CHECK(b->data[0] == 0 && b->data[299] == 0);
  }
  CHECK_FAILS(gr_init_module(lin, &m->rng, GR_INIT_CRITICAL, 0, -1, 0) == GR_OK, GR_EARG);
  float cw, cb;
  CHECK_OK(gr_init_critical_params("relu", &cw, &cb));
  CHECK(cw == 2.0f && cb == 0.0f);
  CHECK_OK(gr_init_critical_params("tanh", &cw, &cb));
  CHECK(cw == 1.0f);
  CHECK_FAILS(gr_init_critical_params("softsign", &cw, &cb) == GR_OK, GR_EARG);
  gr_model_free(m);
}

/* Critical init keeps the preactivation second moment K through depth for
 * ReLU (C_W = 2); C_W = 1 halves it at every layer. */
static double kernel_ratio(float cw, uint64_t seed) {
  enum { WIDTH = 512, DEPTH = 20, N = 8 };
  int64_t hidden[DEPTH];
  for (int i = 0; i < DEPTH; i++) hidden[i] = WIDTH;
  gr_model *m = gr_model_new(seed);
  gr_module *root = gr_arch_mlp(m, WIDTH, hidden, DEPTH, WIDTH, "relu");
  gr_model_set_root(m, root);
  gr_init_module(root, &m->rng, GR_INIT_CRITICAL, 0, cw, 0);
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_rng r;
  gr_rng_seed(&r, 5);
  gr_tensor *x = gr_tensor_new(c, 2, GR_SHAPE(N, WIDTH));
  gr_rng_fill_normal(&r, x->data, x->numel, 0, 1);
  gr_module *layers = gr_module_find(root, "layers");
  gr_tensor *h = x;
  double k1 = 0, kl = 0;
  for (int i = 0; i < layers->n_children; i++) {
    h = layers->children[i]->forward(layers->children[i], c, h);
    if (!strcmp(layers->children[i]->kind, "Linear")) {
      double k = 0;
      for (int64_t j = 0; j < h->numel; j++) k += (double)h->data[j] * h->data[j];
      k /= (double)h->numel;
      if (i == 0) k1 = k;
      kl = k;
    }
  }
  gr_ctx_free(c);
  gr_model_free(m);
  return kl / k1;
}

static void test_critical_init(void) {
  /* at width n the log of K random-walks with variance ~5/n per layer, so
   * average the ratio over a few init draws (its expectation is 1) */
  double crit = 0, sub = 0;
  for (uint64_t s = 0; s < 4; s++) crit += kernel_ratio(2.0f, 100 + s) / 4, sub += kernel_ratio(1.0f, 100 + s) / 4;
  CHECK_MSG(crit > 0.5 && crit < 2.0, "critical K ratio %g", crit);
  CHECK_MSG(sub < 1e-4, "C_W=1 K ratio %g", sub);
}

static void test_mlp_reference(void) {
  ref_file *f = ref_open("nn_mlp");
  CHECK(f != NULL);
  if (!f) return;
  gr_model *m = mlp_model("tanh", 1);
  for (int i = 0; i < m->n_entries; i++) {
    const ref_array *a = ref_get(f, m->entries[i].name);
    CHECK(a && a->numel == m->entries[i].t->numel);
    if (a) memcpy(m->entries[i].t->data, a->data, (size_t)a->numel * sizeof(float));
  }
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x = ref_tensor(c, f, "x", false);
  gr_tensor *y = gr_model_forward(m, c, x);
  CHECK_PTR(y);
  if (y) {
    CHECK_CLOSE("mlp y", y->data, ref_get(f, "y")->data, y->numel, 1e-5, 1e-4);
    gr_model_zero_grad(m);
    CHECK_OK(gr_backward_seed(c, y, ref_get(f, "gy")->data));
    for (int i = 0; i < m->n_entries; i++) {
      char name[GR_NAME_MAX + 8];
      snprintf(name, sizeof name, "grad.%s", m->entries[i].name);
      CHECK_CLOSE(name, m->entries[i].t->grad, ref_get(f, name)->data, m->entries[i].t->numel, 1e-5, 1e-4);
    }
  }
  gr_ctx_free(c);
  gr_model_free(m);
  ref_close(f);
}

/* Forward + backward of sum(model(x)) on batch x [4, 10] of the MLP (or of
 * its first layer only, bypassing gr_model_forward, when first_only). */
static void mlp_backward(gr_model *m, const float *xv, bool first_only) {
  CHECK(gr_module_find(m->root, "layers.0") && gr_model_find(m, "layers.4.weight"));
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_tensor *x = gr_tensor_from(c, 2, GR_SHAPE(4, 10), xv);
  gr_module *first = gr_module_find(m->root, "layers.0");
  gr_tensor *y = first_only ? first->forward(first, c, x) : gr_model_forward(m, c, x);
  gr_tensor *loss = y ? gr_sum(c, y, GR_AXIS_ALL, false) : NULL;
  CHECK(loss != NULL);
  if (loss) CHECK_OK(gr_backward(c, loss));
  gr_ctx_free(c);
}

static float *grad_copy(const gr_model *m) {
  float *g = gr_malloc((size_t)m->numel * sizeof(float));
  memcpy(g, m->grad, (size_t)m->numel * sizeof(float));
  return g;
}

static bool all_zero(const float *g, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (g[i] != 0.0f) return false;
  return true;
}

/* gr_model_zero_grad only marks grads zero: a backward after it gives the
 * same grads as on zero-filled ones; two backwards without it sum; grads a
 * backward did not reach (a frozen layer; a layer outside the tape) read as
 * zeros after the backward or after gr_model_grad_sync, and an optimizer
 * step updates such a parameter as with a zero grad. */
static void test_zero_grad_mark(void) {
  gr_model *m = mlp_model("relu", 4);
  CHECK(m != NULL);
  if (!m) return;
  gr_rng r;
  gr_rng_seed(&r, 17);
  float x1[40], x2[40];
  gr_rng_fill_uniform(&r, x1, 40, -1, 1);
  gr_rng_fill_uniform(&r, x2, 40, -1, 1);
  memset(m->grad, 0, (size_t)m->numel * sizeof(float)); /* zero-filled, no mark: the reference */
  mlp_backward(m, x1, false);
  float *g1 = grad_copy(m);
  CHECK(!all_zero(g1, m->numel));
  gr_model_zero_grad(m);
  mlp_backward(m, x2, false);
  float *g2 = grad_copy(m);
  memset(m->grad, 0, (size_t)m->numel * sizeof(float));
  mlp_backward(m, x2, false);
  CHECK_CLOSE("grads after zero_grad vs on zero-filled grads", g2, m->grad, m->numel, 0, 0);
  gr_model_zero_grad(m);
  mlp_backward(m, x1, false);
  CHECK_CLOSE("grads after zero_grad (again)", g1, m->grad, m->numel, 0, 0);
  mlp_backward(m, x2, false); /* no zero_grad: accumulates */
  for (int64_t i = 0; i < m->numel; i++) g2[i] += g1[i];
  CHECK_CLOSE("two backwards without zero_grad sum", g2, m->grad, m->numel, 1e-6, 1e-6);

  /* a frozen first layer: its stale nonzero grad reads as zero after the backward */
  gr_tensor *w0 = gr_model_find(m, "layers.0.weight"), *w4 = gr_model_find(m, "layers.4.weight");
  CHECK(w0 && w4 && !all_zero(w0->grad, w0->numel));
  CHECK(gr_model_freeze(m, "layers.0.*", true) == 2);
  gr_model_zero_grad(m);
  CHECK(w0->grad_zero);
  mlp_backward(m, x1, false);
  CHECK_MSG(!w0->grad_zero && all_zero(w0->grad, w0->numel), "frozen layer's grad after zero_grad + backward");
  CHECK(!all_zero(w4->grad, w4->numel));
  gr_model_freeze(m, "layers.0.*", false);

  /* only layer 0 on the tape (no gr_model_forward): layer 4's grad stays
   * marked until a sync; the optimizer syncs and decays it as a zero grad */
  mlp_backward(m, x2, false);
  gr_model_zero_grad(m);
  mlp_backward(m, x1, true);
  CHECK(!w0->grad_zero && w4->grad_zero && !all_zero(w4->grad, w4->numel));
  float *p4 = gr_malloc((size_t)w4->numel * sizeof(float));
  memcpy(p4, w4->data, (size_t)w4->numel * sizeof(float));
  gr_optim_cfg cfg = gr_sgd_cfg(0.1f, 0, 0.5f, false);
  gr_optim *o = gr_optim_new(m, &cfg);
  CHECK_OK(gr_optim_step(o));
  CHECK(!w4->grad_zero && all_zero(w4->grad, w4->numel));
  for (int64_t i = 0; i < w4->numel; i++) p4[i] -= 0.1f * (0.0f + 0.5f * p4[i]);
  CHECK_CLOSE("unreached parameter after an SGD step with weight decay", p4, w4->data, w4->numel, 0, 0);
  gr_optim_free(o);

  /* zero_grad then sync without a backward: zeros, no marks */
  mlp_backward(m, x2, false);
  gr_model_zero_grad(m);
  gr_model_grad_sync(m);
  CHECK(all_zero(m->grad, m->numel) && !w0->grad_zero && !w4->grad_zero);
  gr_free(p4), gr_free(g1), gr_free(g2);
  gr_model_free(m);
}

/* Counts the inputs a hooked module sees. */
static gr_status count_input(void *ud, gr_module *mod, const gr_tensor *x) {
  (void)mod, (void)x;
  ++*(int *)ud;
  return GR_OK;
}

/* Sequential runs a ReLU next to a MaxPool2d (either order) as one
 * gr_max_pool2d_relu: same output and input gradient as the two ops one
 * after the other; a hooked ReLU is not fused (its hook sees the input). */
static void test_relu_pool_fusion(void) {
  enum { N = 2, C = 3, H = 6, W = 8 };
  for (int order = 0; order < 3; order++) {
    gr_model *m = gr_model_new(3);
    gr_module *s = gr_nn_sequential(m), *relu = gr_nn_relu(m), *pool = gr_nn_maxpool2d(m, 2, 2);
    bool ok = s && relu && pool && !gr_module_add(s, NULL, order == 1 ? pool : relu) &&
              !gr_module_add(s, NULL, order == 1 ? relu : pool) && !gr_model_set_root(m, s);
    CHECK_MSG(ok, "sequential relu/pool order %d", order);
    int seen = 0;
    if (ok && order == 2) CHECK_OK(gr_module_hook_input(relu, count_input, &seen));
    gr_ctx *c = gr_ctx_new(1 << 20, 1), *c2 = gr_ctx_new(1 << 20, 1); /* model, composed ops */
    gr_rng r;
    gr_rng_seed(&r, 9);
    float xv[N * C * H * W], seed[N * C * H * W / 4];
    gr_rng_fill_uniform(&r, xv, N * C * H * W, -1, 1);
    gr_rng_fill_uniform(&r, seed, N * C * H * W / 4, -1, 1);
    gr_tensor *x = gr_leaf(c, 4, GR_SHAPE(N, C, H, W), xv), *x2 = gr_leaf(c2, 4, GR_SHAPE(N, C, H, W), xv);
    gr_pool2d_opts po = {.kernel_h = 2, .kernel_w = 2};
    gr_tensor *y = ok ? gr_model_forward(m, c, x) : NULL, *y2 = gr_max_pool2d(c2, gr_relu(c2, x2), &po);
    CHECK(y && y2 && y->numel == y2->numel);
    if (y && y2 && y->numel == y2->numel) {
      CHECK_CLOSE("fused relu/pool y", y->data, y2->data, y->numel, 0, 0);
      CHECK_OK(gr_backward_seed(c, y, seed));
      CHECK_OK(gr_backward_seed(c2, y2, seed));
      CHECK_CLOSE("fused relu/pool dx", x->grad, x2->grad, x->numel, 0, 0);
    }
    CHECK_MSG(seen == (order == 2), "hooked relu saw %d inputs", seen);
    gr_ctx_free(c);
    gr_ctx_free(c2);
    gr_model_free(m);
  }
}

int main(void) {
  test_names_and_layout();
  test_init_distributions();
  test_critical_init();
  test_mlp_reference();
  test_zero_grad_mark();
  test_relu_pool_fusion();
  return test_summary();
}
