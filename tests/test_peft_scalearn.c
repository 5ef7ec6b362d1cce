/* ScaLearn: forward and backward against the torch reference
 * (tests/ref/ref_peft_scalearn.py) for per-layer vector omegas on a small
 * CNN and one shared uniform omega (ScaLearnUniform++) on an MLP; a one-hot
 * omega reproduces the single source adapter (LoRA) exactly; the registry
 * row trains source adapters and leaves only omegas and the head
 * trainable; bad input. */
#include <math.h>
#include <string.h>

#include "graft/peft.h"
#include "graft/scalearn.h"
#include "graft/transfer.h"
#include "testmodels.h"

enum { NSRC = 3 };
static const float SCALING[NSRC] = {2.0f, 1.5f, 0.5f};

static gr_model *cnn(void) { return test_cnn(2, 3); }
static gr_model *mlp(void) { return test_mlp(1, 6, 8, 5); }

/* Sources of path from the reference arrays <path>.lora_{A,B}.<i>.weight. */
static gr_status wrap_from_ref(gr_model *m, const ref_file *f, const char *path, gr_scalearn_kind kind,
                               gr_module *share) {
  gr_scalearn_source src[NSRC];
  for (int i = 0; i < NSRC; i++) {
    char ka[96], kb[96];
    snprintf(ka, sizeof ka, "%s.lora_A.%d.weight", path, i), snprintf(kb, sizeof kb, "%s.lora_B.%d.weight", path, i);
    const ref_array *a = ref_get(f, ka), *b = ref_get(f, kb);
    if (!a || !b) return GR_ENOTFOUND;
    src[i] = (gr_scalearn_source){a->data, b->data, (int)a->shape[0], SCALING[i]};
  }
  gr_scalearn_opts o = {.kind = kind, .dropout = 0, .init_scale = 2};
  return gr_scalearn_wrap(m, path, NSRC, src, &o, share);
}

/* y and every gradient the reference holds (d<name>), sources frozen. */
static void compare(const char *name, gr_model *m, const ref_file *f) {
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_tensor *x = ref_tensor(c, f, "x", true), *y = gr_model_forward(m, c, x);
  const ref_array *want = ref_get(f, "y"), *gy = ref_get(f, "gy");
  CHECK(y && want && gy);
  if (y && want && gy) {
    CHECK_CLOSE(name, y->data, want->data, want->numel, 1e-4, 1e-4);
    gr_model_zero_grad(m);
    CHECK_OK(gr_backward_seed(c, y, gy->data));
    CHECK_CLOSE("dx", x->grad, ref_get(f, "dx")->data, x->numel, 1e-4, 1e-4);
    int n_grads = 0;
    for (int i = 0; i < m->n_entries; i++) {
      char dn[GR_NAME_MAX + 1];
      snprintf(dn, sizeof dn, "d%s", m->entries[i].name);
      bool frozen_source = strstr(m->entries[i].name, ".lora_") != NULL;
      CHECK_MSG(m->entries[i].t->requires_grad != frozen_source, "%s: %s trainable?", name, m->entries[i].name);
      if (!ref_has(f, dn)) continue;
      CHECK_CLOSE(dn, m->entries[i].t->grad, ref_get(f, dn)->data, m->entries[i].t->numel, 1e-4, 1e-4);
      n_grads++;
    }
    CHECK_MSG(n_grads >= 3, "%s: %d parameter gradients compared", name, n_grads);
  }
  gr_ctx_free(c);
}

static void reference_cases(void) {
  ref_file *f = ref_open("scalearn_cnn");
  CHECK(f != NULL);
  if (f) {
    gr_model *m = cnn();
    CHECK_OK(wrap_from_ref(m, f, "0", GR_SCALEARN, NULL));
    CHECK_OK(wrap_from_ref(m, f, "3", GR_SCALEARN, NULL));
    CHECK(test_model_load_ref(m, f) == 6 + 4 * NSRC);
    compare("scalearn_cnn y", m, f);
    gr_model_free(m);
    ref_close(f);
  }
  f = ref_open("scalearn_mlp_shared");
  CHECK(f != NULL);
  if (f) {
    gr_model *m = mlp();
    CHECK_OK(wrap_from_ref(m, f, "layers.0", GR_SCALEARN_UNIFORM_PP, NULL));
    gr_module *owner = gr_module_find(m->root, "layers.0");
    /* a vector ++ omega of another width cannot be shared */
    CHECK_FAILS(wrap_from_ref(m, f, "layers.2", GR_SCALEARN_PP, owner) == GR_OK, GR_ESHAPE);
    CHECK_OK(wrap_from_ref(m, f, "layers.2", GR_SCALEARN_UNIFORM_PP, owner));
    CHECK(gr_scalearn_omega(gr_module_find(m->root, "layers.2")) == gr_scalearn_omega(owner));
    CHECK(gr_model_find(m, "layers.2.scalearn_omega") == NULL);
    CHECK(test_model_load_ref(m, f) == 5 + 4 * NSRC);
    compare("scalearn_mlp_shared y", m, f);
    gr_model_free(m);
    ref_close(f);
  }
}

/* omega = e_k (no dropout) gives exactly the LoRA layer with source k. */
static void one_hot_is_single_adapter(void) {
  gr_rng r;
  gr_rng_seed(&r, 4);
  float a[NSRC][2 * 6], b[NSRC][8 * 2], x[4 * 6];
  gr_scalearn_source src[NSRC];
  for (int i = 0; i < NSRC; i++) {
    gr_rng_fill_uniform(&r, a[i], 12, -1, 1), gr_rng_fill_uniform(&r, b[i], 16, -1, 1);
    src[i] = (gr_scalearn_source){a[i], b[i], 2, 2.0f};
  }
  gr_rng_fill_uniform(&r, x, 24, -1, 1);
  gr_model *sl = mlp(), *lo = mlp();
  gr_scalearn_opts o = {.kind = GR_SCALEARN, .dropout = 0.3f, .init_scale = 2};
  CHECK_OK(gr_scalearn_wrap(sl, "layers.0", NSRC, src, &o, NULL));
  gr_lora_opts lopt = {.r = 2, .alpha = 4};
  CHECK_OK(gr_lora_wrap(lo, "layers.0", &lopt));
  memcpy(gr_model_find(lo, "layers.0.lora_A.weight")->data, a[1], sizeof a[1]);
  memcpy(gr_model_find(lo, "layers.0.lora_B.weight")->data, b[1], sizeof b[1]);
  gr_tensor *om = gr_scalearn_omega(gr_module_find(sl->root, "layers.0"));
  CHECK(om && om->shape[0] == NSRC && om->shape[1] == 8);
  double mean = 0;
  for (int64_t i = 0; i < om->numel; i++) mean += om->data[i] / (double)om->numel;
  CHECK_NEAR(mean, 2.0 / NSRC, 0.002); /* init N(2/N, 0.001) */
  for (int64_t i = 0; i < om->numel; i++) om->data[i] = i / 8 == 1 ? 1.0f : 0.0f;
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_ctx_set_grad(c, false);
  sl->inference = lo->inference = true; /* evaluation: omega dropout off */
  gr_tensor *y1 = gr_model_forward(sl, c, gr_tensor_from(c, 2, GR_SHAPE(4, 6), x));
  gr_tensor *y2 = gr_model_forward(lo, c, gr_tensor_from(c, 2, GR_SHAPE(4, 6), x));
  CHECK(y1 && y2);
  if (y1 && y2) CHECK_CLOSE("one-hot omega = LoRA of that source", y1->data, y2->data, y2->numel, 1e-6, 1e-6);
  gr_ctx_free(c);
  gr_model_free(sl), gr_model_free(lo);
}

/* The registry row on a tiny flatten-MLP: source adapters trained, then only
 * omegas and the head trainable. */
static void registry_row(void) {
  gr_dataset *src = gr_dataset_new(48, 1, 4, 4, 3), *tgt = gr_dataset_new(24, 1, 4, 4, 3);
  gr_rng r;
  gr_rng_seed(&r, 8);
  gr_rng_fill_uniform(&r, src->x, src->n * src->dim, -1, 1), gr_rng_fill_uniform(&r, tgt->x, tgt->n * tgt->dim, -1, 1);
  for (int64_t i = 0; i < src->n; i++) src->y[i] = (int32_t)(i % 3);
  for (int64_t i = 0; i < tgt->n; i++) tgt->y[i] = (int32_t)((i + 1) % 3);
  gr_model *models[2];
  for (int k = 0; k < 2; k++) {
    gr_model *m = models[k] = gr_model_new(5 + (uint64_t)k);
    gr_module *s = gr_nn_sequential(m);
    gr_module_add(s, NULL, gr_nn_flatten(m));
    gr_module_add(s, NULL, gr_nn_linear(m, 16, 8, true));
    gr_module_add(s, NULL, gr_nn_relu(m));
    gr_module_add(s, NULL, gr_nn_linear(m, 8, 3, true));
    gr_model_set_root(m, s);
  }
  gr_train_cfg cfg = {.epochs = 1, .batch = 8, .seed = 1};
  gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
  gr_transfer_run run = {models[1], models[0], "3", NULL, NULL, &cfg, &oc, false, src, tgt};
  const gr_transfer_method *meth = gr_transfer_find("scalearn");
  CHECK(meth != NULL);
  float w0[128];
  memcpy(w0, models[0]->data, 128 * sizeof(float)); /* layer 1's weight, first entries */
  CHECK_OK(gr_transfer_prepare(meth, &run));
  gr_module *w = gr_module_find(models[1]->root, "1");
  CHECK(gr_scalearn_is(w));
  CHECK_CLOSE("backbone restored after the source adapters", gr_model_find(models[1], "1.base_layer.weight")->data,
              w0, 128, 0, 0);
  for (int i = 0; i < models[1]->n_entries; i++) {
    const char *n = models[1]->entries[i].name;
    bool want = strstr(n, "scalearn_omega") || !strncmp(n, "3.", 2);
    CHECK_MSG(models[1]->entries[i].t->requires_grad == want, "scalearn: %s trainable=%d", n,
              models[1]->entries[i].t->requires_grad);
  }
  CHECK(gr_model_param_count(models[1], true) == 4 * 8 + 8 * 3 + 3);
  /* the four source adapters differ (each was trained on its own task) */
  float *a0 = gr_model_find(models[1], "1.lora_A.0.weight")->data, *a3 = gr_model_find(models[1], "1.lora_A.3.weight")->data;
  CHECK(memcmp(a0, a3, 2 * sizeof(float)) != 0);
  run.source_data = NULL;
  CHECK_FAILS(meth->setup(&run) == GR_OK, GR_EARG);
  gr_model_free(models[0]), gr_model_free(models[1]);
  gr_dataset_free(src), gr_dataset_free(tgt);
}

static void bad_input(void) {
  gr_model *m = mlp();
  float a[12] = {0}, b[16] = {0};
  gr_scalearn_source src = {a, b, 2, 1};
  gr_scalearn_opts o = {.kind = GR_SCALEARN, .dropout = 0.3f, .init_scale = 2};
  CHECK_FAILS(gr_scalearn_wrap(m, "nope", 1, &src, &o, NULL) == GR_OK, GR_ENOTFOUND);
  CHECK_FAILS(gr_scalearn_wrap(m, "layers.1", 1, &src, &o, NULL) == GR_OK, GR_EUNSUPPORTED);
  CHECK_FAILS(gr_scalearn_wrap(m, "layers.0", 0, &src, &o, NULL) == GR_OK, GR_EARG);
  src.r = 7;
  CHECK_FAILS(gr_scalearn_wrap(m, "layers.0", 1, &src, &o, NULL) == GR_OK, GR_EARG);
  src.r = 2, o.dropout = 1;
  CHECK_FAILS(gr_scalearn_wrap(m, "layers.0", 1, &src, &o, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_scalearn_wrap(m, "layers.0", 1, NULL, &o, NULL) == GR_OK, GR_EARG);
  o.dropout = 0;
  CHECK_OK(gr_scalearn_wrap(m, "layers.0", 1, &src, &o, NULL));
  CHECK_FAILS(gr_scalearn_wrap(m, "layers.0", 1, &src, &o, NULL) == GR_OK, GR_EUNSUPPORTED); /* already wrapped */
  gr_model_free(m);
}

int main(void) {
  reference_cases();
  one_hot_is_single_adapter();
  registry_row();
  bad_input();
  return test_summary();
}
