/* LoRA / rsLoRA: forward and backward of every parameter against PEFT's math
 * in torch (tests/ref/ref_peft_lora.py) on a small MLP and a small CNN,
 * PEFT's init, merge/unmerge round trips, target selection and errors. */
#include <math.h>
#include <string.h>

#include "graft/peft.h"
#include "refdata.h"
#include "testmodels.h"

static gr_model *mlp(void) { return test_mlp(1, 6, 8, 5); }
static gr_model *cnn(void) { return test_cnn(2, 3); }

static void check_case(const char *name, gr_model *m, const gr_lora_opts *o, const char *p0, const char *p1,
                       int r1) {
  ref_file *f = ref_open(name);
  CHECK(f != NULL);
  if (!f) return;
  gr_lora_opts o1 = *o;
  o1.r = r1;
  o1.init = GR_LORA_INIT_RANDOM;
  CHECK_OK(gr_lora_wrap(m, p0, o));
  CHECK_OK(gr_lora_wrap(m, p1, &o1));
  CHECK_MSG(test_model_load_ref(m, f) == 8, "%s: all 8 parameters found in the reference", name);
  test_model_ref_check(name, m, f);
  ref_close(f);
}

static void reference_cases(void) {
  gr_lora_opts o = {.r = 2, .alpha = 4, .init = GR_LORA_INIT_RANDOM};
  for (int rs = 0; rs < 2; rs++) {
    o.rslora = rs;
    gr_model *m = mlp();
    check_case(rs ? "rslora_mlp" : "lora_mlp", m, &o, "layers.0", "layers.2", 3);
    CHECK_NEAR(gr_lora_scaling(gr_module_find(m->root, "layers.2")), rs ? 4 / sqrtf(3) : 4.0f / 3, 1e-6);
    gr_model_free(m);
  }
  gr_lora_opts oc = {.r = 2, .alpha = 8, .init = GR_LORA_INIT_RANDOM};
  gr_model *m = cnn();
  check_case("lora_cnn", m, &oc, "0", "3", 2);
  gr_model_free(m);
  oc.r = 3, oc.rslora = true;
  m = cnn();
  check_case("rslora_cnn", m, &oc, "0", "3", 3);
  gr_model_free(m);
}

/* Output of the model on a fixed input (copied out of the ctx). */
static void forward_into(gr_model *m, const float *x, int ndim, const int64_t *shape, float *out, int64_t n) {
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_ctx_set_grad(c, false);
  gr_tensor *y = gr_model_forward(m, c, gr_tensor_from(c, ndim, shape, x));
  CHECK(y && y->numel == n);
  if (y && y->numel == n) memcpy(out, y->data, (size_t)n * sizeof(float));
  gr_ctx_free(c);
}

static void merge_roundtrip(gr_model *m, int ndim, const int64_t *xshape, int64_t ny) {
  gr_rng r;
  gr_rng_seed(&r, 11);
  int64_t nx = 1;
  for (int i = 0; i < ndim; i++) nx *= xshape[i];
  float x[256], y0[64], y1[64], y2[64], w0[4096];
  gr_rng_fill_uniform(&r, x, nx, -1, 1);
  CHECK((size_t)m->numel <= sizeof w0 / sizeof w0[0]);
  memcpy(w0, m->data, (size_t)m->numel * sizeof(float));
  forward_into(m, x, ndim, xshape, y0, ny);
  int n = 0;
  CHECK_OK(gr_peft_merge_all(m, true, &n));
  CHECK(n == 2);
  CHECK_FAILS(gr_peft_merge_all(m, true, NULL) == GR_OK, GR_ESTATE);
  forward_into(m, x, ndim, xshape, y1, ny);
  CHECK_CLOSE("merged output = adapter output", y1, y0, ny, 1e-5, 1e-5);
  CHECK_OK(gr_peft_merge_all(m, false, &n));
  CHECK_CLOSE("unmerge restores the weights", m->data, w0, m->numel, 1e-6, 0);
  forward_into(m, x, ndim, xshape, y2, ny);
  CHECK_CLOSE("unmerged output", y2, y0, ny, 1e-5, 1e-5);
}

static void merge_cases(void) {
  gr_lora_opts o = {.r = 3, .alpha = 6, .init = GR_LORA_INIT_RANDOM};
  gr_model *m = mlp();
  CHECK_OK(gr_lora_wrap(m, "layers.0", &o));
  o.rslora = true;
  CHECK_OK(gr_lora_wrap(m, "layers.2", &o));
  merge_roundtrip(m, 2, GR_SHAPE(3, 6), 15);
  gr_model_free(m);
  m = cnn();
  o.r = 2;
  CHECK_OK(gr_lora_wrap(m, "0", &o));
  CHECK_OK(gr_lora_wrap(m, "3", &o));
  merge_roundtrip(m, 4, GR_SHAPE(1, 2, 5, 5), 3);
  gr_model_free(m);

  ref_file *f = ref_open("lora_delta");
  CHECK(f != NULL);
  if (!f) return;
  const ref_array *a = ref_get(f, "a"), *b = ref_get(f, "b"), *w = ref_get(f, "w"), *wt = ref_get(f, "wt");
  const ref_array *mw = ref_get(f, "merged"), *mwt = ref_get(f, "merged_fifo");
  float buf[35];
  memcpy(buf, w->data, sizeof buf);
  gr_lora_delta_apply(buf, a->data, b->data, 5, 7, 3, 1.5f, false);
  CHECK_CLOSE("delta [out,in]", buf, mw->data, 35, 1e-6, 1e-6);
  memcpy(buf, wt->data, sizeof buf);
  gr_lora_delta_apply(buf, a->data, b->data, 5, 7, 3, 1.5f, true);
  CHECK_CLOSE("delta fan_in_fan_out", buf, mwt->data, 35, 1e-6, 1e-6);
  ref_close(f);
}

static void init_cases(void) {
  gr_model *m = mlp();
  gr_lora_opts o = {.r = 4, .alpha = 8};
  CHECK_OK(gr_lora_wrap(m, "layers.0", &o));
  gr_tensor *a = gr_model_find(m, "layers.0.lora_A.weight"), *b = gr_model_find(m, "layers.0.lora_B.weight");
  CHECK(a && b && a->shape[0] == 4 && a->shape[1] == 6 && b->shape[0] == 8 && b->shape[1] == 4);
  float lim = 1 / sqrtf(6), amax = 0, bmax = 0;
  for (int64_t i = 0; a && i < a->numel; i++) amax = fmaxf(amax, fabsf(a->data[i]));
  for (int64_t i = 0; b && i < b->numel; i++) bmax = fmaxf(bmax, fabsf(b->data[i]));
  CHECK(amax > 0 && amax <= lim && bmax == 0);
  CHECK(gr_model_find(m, "layers.0.base_layer.weight") && gr_model_find(m, "layers.0.base_layer.bias"));
  /* gaussian: A ~ N(0, 1/r^2) on a wide layer */
  gr_model *g = gr_model_new(3);
  gr_module *seq = gr_nn_sequential(g);
  gr_module_add(seq, "fc", gr_nn_linear(g, 400, 300, false));
  gr_model_set_root(g, seq);
  gr_lora_opts og = {.r = 5, .alpha = 5, .init = GR_LORA_INIT_GAUSSIAN};
  CHECK_OK(gr_lora_wrap(g, "fc", &og));
  gr_tensor *ga = gr_model_find(g, "fc.lora_A.weight");
  double s2 = 0;
  for (int64_t i = 0; ga && i < ga->numel; i++) s2 += (double)ga->data[i] * ga->data[i];
  CHECK_NEAR(sqrt(s2 / (double)ga->numel), 0.2, 0.01);
  gr_model_free(g);
  gr_model_free(m);
}

static void selection_and_errors(void) {
  gr_model *m = cnn();
  const char *t[] = {"0", "3"};
  gr_peft_config *cfg = gr_peft_config_new(GR_PEFT_LORA, 2, 4, t, 2);
  int n = 0;
  CHECK_OK(gr_lora_apply(m, cfg, GR_LORA_INIT_PEFT, &n));
  CHECK(n == 2);
  CHECK(gr_model_param_count(m, true) == 2 * 2 * 9 + 4 * 2 + 2 * 100 + 3 * 2);
  CHECK_FAILS(gr_lora_apply(m, cfg, GR_LORA_INIT_PEFT, &n) == GR_OK, GR_ENOTFOUND); /* already wrapped */
  gr_peft_config_free(cfg);
  gr_model_free(m);

  m = mlp();
  const char *none[] = {"fc9"};
  cfg = gr_peft_config_new(GR_PEFT_LORA, 2, 4, none, 1);
  CHECK_FAILS(gr_lora_apply(m, cfg, GR_LORA_INIT_PEFT, &n) == GR_OK, GR_ENOTFOUND);
  CHECK(strstr(gr_last_error(), "fc9") != NULL);
  gr_peft_config_free(cfg);
  cfg = gr_peft_config_new(GR_PEFT_LORA, 6, 4, NULL, 0);
  static const char re[] = "layers\\.[02]";
  cfg->target_modules_regex = gr_malloc(sizeof re);
  memcpy(cfg->target_modules_regex, re, sizeof re);
  CHECK_FAILS(gr_lora_apply(m, cfg, GR_LORA_INIT_PEFT, &n) == GR_OK, GR_EARG); /* r 6 > min(8,5) on layers.2 */
  CHECK(strstr(gr_last_error(), "layers.2") != NULL);
  gr_peft_config_free(cfg);
  gr_lora_opts o = {.r = 2, .alpha = 4};
  CHECK_FAILS(gr_lora_wrap(m, "layers.1", &o) == GR_OK, GR_EUNSUPPORTED); /* a ReLU */
  CHECK(strstr(gr_last_error(), "layers.1") != NULL);
  CHECK_FAILS(gr_lora_wrap(m, "nope", &o) == GR_OK, GR_ENOTFOUND);
  CHECK_FAILS(gr_lora_wrap(NULL, "layers.0", &o) == GR_OK, GR_EARG);
  o.r = 0;
  CHECK_FAILS(gr_lora_wrap(m, "layers.0", &o) == GR_OK, GR_EARG);
  o.r = 2, o.dropout = 1.0f;
  CHECK_FAILS(gr_lora_wrap(m, "layers.0", &o) == GR_OK, GR_EARG);
  o.dropout = 0.5f;
  CHECK_OK(gr_lora_wrap(m, "layers.0", &o)); /* eval mode: dropout is identity */
  CHECK_FAILS(gr_lora_merge(gr_module_find(m->root, "layers.2")) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_lora_unmerge(gr_module_find(m->root, "layers.0")) == GR_OK, GR_ESTATE);
  gr_model_free(m);
}

int main(void) {
  reference_cases();
  merge_cases();
  init_cases();
  selection_and_errors();
  return test_summary();
}
