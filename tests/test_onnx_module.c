/* test_onnx_module.c — an imported graph as a graft module (io/onnx_module.c):
 * the model directory written by tests/ref/ref_onnx_module.py loads with
 * gr_model_load_dir; parameters/buffers carry the graph's value names; the
 * forward (resize, channel repeat, scale/shift, Conv, BN, Relu, GAP, Gemm)
 * and every weight gradient equal PyTorch within 1e-4; finite differences
 * agree through the whole module; a new head at a cut value; save/reload
 * keeps graph, cut and head; bad directories fail with named errors;
 * batch-norm recalibration equals PyTorch's cumulative average, leaves nodes
 * after the cut alone and keeps the statistics on failure. Re-init draws
 * within PyTorch's default bounds (or torchvision's init). The feature
 * cache gives the module's own features, extracts each image once, survives
 * a save/reload, and refuses another key, a truncated or garbled file and a
 * backbone of another width. The PaddleOCR classifier (when fetched) gives the same outputs as a module as
 * through gr_onnx_run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/data.h"
#include "graft/graft.h"
#include "graft/modeldir.h"
#include "graft/onnx.h"
#include "util/gradcheck.h"
#include "util/refdata.h"

static char g_dir[600];

static void write_text(const char *path, const char *s) {
  FILE *f = fopen(path, "wb");
  if (f) fputs(s, f), fclose(f);
}

static gr_model *load(const char *dir) {
  gr_model_config cfg;
  gr_model *m = NULL;
  if (gr_model_load_dir(dir, 1, &cfg, &m)) fprintf(stderr, "load %s: %s\n", dir, gr_last_error());
  return m;
}

static void check_names_and_roles(gr_model *m) {
  gr_tensor *w = gr_model_find(m, "conv.weight"), *rm = gr_model_find(m, "bn.running_mean");
  CHECK(w && w->requires_grad && w->shape[0] == 4);
  CHECK(rm && !rm->requires_grad);
  CHECK(gr_model_param_count(m, false) == 4 * 2 * 9 + 4 + 4 + 4 + 12 + 3);
  CHECK(gr_model_freeze(m, "conv.*", true) == 2);
  CHECK(gr_model_param_count(m, true) == 4 + 4 + 12 + 3);
  gr_model_freeze(m, "*", false);
}

/* forward + backward against PyTorch */
static void check_against_torch(gr_model *m, const ref_file *rf) {
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_model_train(m, false);
  gr_model_zero_grad(m);
  gr_tensor *x = ref_tensor(c, rf, "x", true), *y = gr_model_forward(m, c, x);
  const ref_array *want = ref_get(rf, "y"), *gy = ref_get(rf, "gy"), *dx = ref_get(rf, "dx");
  CHECK(y && want && gy && dx && y->numel == want->numel);
  if (y && want && gy && dx && y->numel == want->numel) {
    CHECK_CLOSE("y", y->data, want->data, y->numel, 1e-4, 1e-4);
    CHECK_OK(gr_backward_seed(c, y, gy->data));
    CHECK_CLOSE("dx", x->grad, dx->data, x->numel, 1e-4, 1e-4);
    const char *names[] = {"conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias"};
    for (int i = 0; i < 6; i++) {
      char dn[64];
      snprintf(dn, sizeof dn, "d%s", names[i]);
      gr_tensor *t = gr_model_find(m, names[i]);
      const ref_array *g = ref_get(rf, dn);
      CHECK(t && g && t->numel == g->numel);
      if (t && g && t->numel == g->numel) CHECK_CLOSE(dn, t->grad, g->data, t->numel, 1e-4, 1e-4);
    }
  }
  gr_ctx_free(c);
}

static gr_model *g_model;
static gr_tensor *module_fn(gr_ctx *c, gr_tensor **in, void *ud) { return gr_model_forward(g_model, c, in[0]); }

static void check_finite_differences(gr_model *m) {
  gr_rng r;
  gr_rng_seed(&r, 3);
  gc_input in[1] = {gc_rand(&r, 4, GR_SHAPE(2, 1, 5, 7), 0.0f, 1.0f, true)};
  g_model = m;
  gr_model_train(m, false);
  /* a step of 1e-3, not 1e-2: the Relu inside must not switch within it */
  test_checks++;
  if (!gradcheck_tol("graph module d/dx", module_fn, NULL, 1, in, 1e-3, 2e-3, 2e-2))
    test_fail(__FILE__, __LINE__, "gradcheck graph module d/dx");
  gc_input_free(&in[0]);
}

static void check_head_and_roundtrip(gr_model *m, const ref_file *rf) {
  char dir[700];
  snprintf(dir, sizeof dir, "%s/with_head", test_tmpdir());
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
  CHECK(system(cmd) == 0);
  CHECK_FAILS(gr_onnx_module_set_head(m, "no_such_value", 5) == GR_OK, GR_ENOTFOUND);
  CHECK_OK(gr_onnx_module_set_head(m, "relu_out", 5));
  gr_tensor *hw = gr_model_find(m, "head.weight");
  CHECK(hw && hw->shape[0] == 5 && hw->shape[1] == 4);
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_model_train(m, false);
  gr_tensor *x = ref_tensor(c, rf, "x", false), *y = gr_model_forward(m, c, x);
  CHECK(y && y->shape[0] == 2 && y->shape[1] == 5);
  gr_model_config cfg = {"onnx_graph", 2, 6, 6, 5, "test"};
  CHECK_OK(gr_model_save_dir(m, &cfg, dir));
  gr_model *back = load(dir);
  CHECK(back && back->numel == m->numel);
  if (back && y) {
    gr_model_train(back, false);
    gr_tensor *y2 = gr_model_forward(back, c, x);
    CHECK(y2 && y2->numel == y->numel);
    if (y2) CHECK_CLOSE("reloaded head output", y2->data, y->data, y->numel, 0, 0);
  }
  gr_model_free(back);
  gr_ctx_free(c);
}

static bool same_floats(const gr_tensor *t, const float *v) { return t && !memcmp(t->data, v, (size_t)t->numel * sizeof(float)); }

/* gr_onnx_module_recalibrate_bn against torch.nn.BatchNorm2d(momentum=None). */
static void check_recalibrate_bn(void) {
  ref_file *rf = ref_open("onnx_module_recal");
  const ref_array *x = rf ? ref_get(rf, "x") : NULL, *mean = rf ? ref_get(rf, "mean") : NULL, *var = rf ? ref_get(rf, "var") : NULL;
  gr_dataset *d = gr_dataset_new(7, 1, 5, 7, 3), *bad = gr_dataset_new(2, 3, 5, 7, 3);
  gr_model *m = load(g_dir), *cut = load(g_dir);
  CHECK(x && mean && var && d && bad && m && cut && x->numel == 7 * 35);
  if (!x || !mean || !var || !d || !bad || !m || !cut || x->numel != 7 * 35) goto done;
  memcpy(d->x, x->data, sizeof(float) * 7 * 35);
  gr_tensor *rm = gr_model_find(m, "bn.running_mean"), *rv = gr_model_find(m, "bn.running_var");
  float loaded[8];
  memcpy(loaded, rm->data, 4 * sizeof(float)), memcpy(loaded + 4, rv->data, 4 * sizeof(float));
  gr_model_train(m, false);
  /* wrong channel count: fails naming the graph, statistics unchanged */
  CHECK_FAILS(gr_onnx_module_recalibrate_bn(m, bad, 3) == GR_OK, GR_ESHAPE);
  CHECK(same_floats(rm, loaded) && same_floats(rv, loaded + 4));
  CHECK_FAILS(gr_onnx_module_recalibrate_bn(m, NULL, 3) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_onnx_module_recalibrate_bn(m, d, 0) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_onnx_module_recalibrate_bn(NULL, d, 3) == GR_OK, GR_EARG);
  CHECK_OK(gr_onnx_module_recalibrate_bn(m, d, 3));
  CHECK_CLOSE("recalibrated mean", rm->data, mean->data, 4, 1e-4, 1e-4);
  CHECK_CLOSE("recalibrated var", rv->data, var->data, 4, 1e-4, 1e-4);
  CHECK(!m->root->training);
  /* features cut before the batch-norm: it does not run, nothing changes */
  CHECK_OK(gr_onnx_module_set_head(cut, "conv_out", 3));
  CHECK_OK(gr_onnx_module_recalibrate_bn(cut, d, 3));
  CHECK(same_floats(gr_model_find(cut, "bn.running_mean"), loaded) && same_floats(gr_model_find(cut, "bn.running_var"), loaded + 4));
done:
  gr_model_free(m);
  gr_model_free(cut);
  gr_dataset_free(d);
  gr_dataset_free(bad);
  ref_close(rf);
}

static bool all_equal(const gr_tensor *t, float v) {
  for (int64_t i = 0; t && i < t->numel; i++)
    if (t->data[i] != v) return false;
  return t != NULL;
}

/* max |t| (the tensor's), NaN when absent. */
static double max_abs(const gr_tensor *t) {
  double m = t ? 0 : NAN;
  for (int64_t i = 0; t && i < t->numel; i++) m = fabs(t->data[i]) > m ? fabs(t->data[i]) : m;
  return m;
}

/* gr_onnx_module_reinit: PyTorch's default U(-1/sqrt(fan_in), +) for conv
 * (fan_in 2*3*3) and Gemm (transB: fan_in 4) weights and biases; torchvision's
 * zero biases; batch-norm reset either way; bad arguments. */
static void check_reinit(void) {
  gr_model *m = load(g_dir);
  gr_rng r;
  gr_rng_seed(&r, 5);
  CHECK(m != NULL);
  if (!m) return;
  CHECK_FAILS(gr_onnx_module_reinit(m, &r, (gr_onnx_init)7) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_onnx_module_reinit(NULL, &r, GR_ONNX_INIT_TORCH_DEFAULT) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_onnx_module_reinit(m, NULL, GR_ONNX_INIT_TORCH_DEFAULT) == GR_OK, GR_EARG);
  CHECK_OK(gr_onnx_module_reinit(m, &r, GR_ONNX_INIT_TORCH_DEFAULT));
  double bc = 1 / sqrt(18.0), bf = 0.5;
  gr_tensor *cw = gr_model_find(m, "conv.weight"), *cb = gr_model_find(m, "conv.bias");
  gr_tensor *fw = gr_model_find(m, "fc.weight"), *fb = gr_model_find(m, "fc.bias");
  /* all 72 below 0.5 b has probability 2^-72: the bound is used, not a smaller one */
  CHECK(max_abs(cw) <= bc && max_abs(cw) > 0.5 * bc);
  CHECK(max_abs(cb) <= bc && max_abs(cb) > 0);
  CHECK(max_abs(fw) <= bf && max_abs(fw) > 0.25 * bf && max_abs(fb) <= bf && max_abs(fb) > 0);
  CHECK(all_equal(gr_model_find(m, "bn.weight"), 1) && all_equal(gr_model_find(m, "bn.bias"), 0));
  CHECK(all_equal(gr_model_find(m, "bn.running_mean"), 0) && all_equal(gr_model_find(m, "bn.running_var"), 1));
  CHECK_OK(gr_onnx_module_reinit(m, &r, GR_ONNX_INIT_TORCHVISION));
  CHECK(all_equal(cb, 0) && all_equal(fb, 0) && max_abs(fw) < 0.06 && max_abs(cw) > 0);
  gr_model_free(m);
}

static void write_bytes(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f) fwrite(b, 1, n, f), fclose(f);
}

/* Reopening path (holding bytes b[0..n)) under key fails with GR_EFORMAT. */
static void check_cache_refused(const char *path, const uint8_t *b, size_t n, const char *key, const char *what) {
  gr_feature_cache *fc = NULL;
  write_bytes(path, b, n);
  gr_clear_error();
  gr_status s = gr_feature_cache_open(path, key, &fc);
  if (s != GR_EFORMAT || fc || !strstr(gr_last_error(), path))
    test_fail(__FILE__, __LINE__, "cache %s: got %s (%s)", what, gr_strerror(s), gr_last_error());
  test_checks++;
  gr_feature_cache_free(fc);
}

/* A saved cache of 6 rows of 4 features, then garbled copies of its bytes. */
static void check_cache_file_errors(const char *path, const char *key) {
  size_t n = 0;
  uint8_t *b = test_read_file(path, &n), *c = b ? malloc(n + 8) : NULL;
  size_t hdr = 8 + 4 + 4 + strlen(key) + 4 + 8;
  CHECK(b && c && n == hdr + 6 * (8 + 16));
  if (!b || !c || n != hdr + 6 * (8 + 16)) goto done;
  char other[64];
  snprintf(other, sizeof other, "%s2", key);
  check_cache_refused(path, b, n, other, "other key");
  for (size_t cut = 0; cut < n; cut += 5) check_cache_refused(path, b, cut, key, "truncated");
  memcpy(c, b, n), c[n] = 0;
  check_cache_refused(path, c, n + 1, key, "a trailing byte");
  memcpy(c, b, n), c[0] ^= 1;
  check_cache_refused(path, c, n, key, "bad magic");
  memcpy(c, b, n), c[8] = 9;
  check_cache_refused(path, c, n, key, "version 9");
  memcpy(c, b, n), memset(c + 12, 0xff, 4);
  check_cache_refused(path, c, n, key, "huge key length");
  memcpy(c, b, n), memset(c + hdr - 12, 0x7f, 4);
  check_cache_refused(path, c, n, key, "huge dim");
  memcpy(c, b, n), memset(c + hdr - 8, 0x7f, 8);
  check_cache_refused(path, c, n, key, "huge row count");
  memcpy(c, b, n), memset(c + hdr + 8 + 4, 0xff, 4); /* row 0, feature 1: a NaN */
  check_cache_refused(path, c, n, key, "NaN feature");
  memcpy(c, b, n), memcpy(c + hdr + 24, c + hdr, 8); /* row 1 repeats row 0's hash */
  check_cache_refused(path, c, n, key, "repeated hash");
  write_bytes(path, b, n);
done:
  free(b);
  free(c);
}

/* gr_onnx_features_cached against gr_onnx_module_features. */
static void check_feature_cache(void) {
  gr_model *m = load(g_dir), *wide = load(g_dir);
  gr_dataset *d = gr_dataset_new(7, 1, 5, 7, 3), *f = NULL, *f2 = NULL;
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_rng r;
  gr_rng_seed(&r, 11);
  char path[800];
  snprintf(path, sizeof path, "%s/features.grfc", test_tmpdir());
  remove(path);
  CHECK(m && wide && d && c);
  if (!m || !wide || !d || !c) goto done;
  test_fill(&r, d->x, d->n * d->dim, 0, 1);
  for (int i = 0; i < 7; i++) d->y[i] = i % 3;
  memcpy(d->x + 6 * d->dim, d->x, (size_t)d->dim * sizeof(float)); /* image 6 repeats image 0 */
  gr_model_train(m, false);
  gr_ctx_set_grad(c, false);
  gr_tensor *x = gr_tensor_new(c, 4, (int64_t[]){7, 1, 5, 7});
  CHECK(x != NULL);
  if (!x) goto done;
  memcpy(x->data, d->x, sizeof(float) * 7 * 35);
  gr_tensor *want = gr_onnx_module_features(m, c, x);
  gr_feature_cache *fc = NULL;
  CHECK_OK(gr_feature_cache_open(path, "test-key", &fc));
  CHECK(fc && gr_feature_cache_count(fc) == 0);
  CHECK_FAILS(gr_onnx_features_cached(m, fc, d, 0, &f) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_onnx_features_cached(NULL, fc, d, 3, &f) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_feature_cache_open(path, NULL, &fc) == GR_OK, GR_EARG);
  CHECK_OK(gr_onnx_features_cached(m, fc, d, 3, &f));
  CHECK(want && f && f->n == 7 && f->dim == 4 && f->y[4] == 1 && gr_feature_cache_count(fc) == 6);
  if (want && f && f->dim == 4) CHECK_CLOSE("cached features", f->x, want->data, 28, 1e-6, 1e-6);
  CHECK_OK(gr_feature_cache_save(fc));
  gr_feature_cache_free(fc);
  fc = NULL;
  /* reloaded: every row comes from the file */
  CHECK_OK(gr_feature_cache_open(path, "test-key", &fc));
  CHECK(fc && gr_feature_cache_count(fc) == 6 && gr_feature_cache_dim(fc) == 4);
  CHECK_OK(gr_onnx_features_cached(wide, fc, d, 2, &f2));
  if (f && f2) CHECK_CLOSE("reloaded features", f2->x, f->x, 28, 0, 0);
  CHECK(wide->root->training && !wide->inference); /* extraction ran in eval mode without leaving it set */
  /* a backbone of another width: cut at the graph input (2 channels pooled) */
  CHECK_OK(gr_onnx_module_set_head(wide, "x", 3));
  gr_dataset_free(f2), f2 = NULL;
  d->x[3] += 0.5f; /* image 0 now new: must be extracted, and its width differs */
  CHECK_FAILS(gr_onnx_features_cached(wide, fc, d, 2, &f2) == GR_OK, GR_ESHAPE);
  gr_feature_cache_free(fc);
  check_cache_file_errors(path, "test-key");
done:
  gr_dataset_free(f);
  gr_dataset_free(f2);
  gr_dataset_free(d);
  gr_ctx_free(c);
  gr_model_free(m);
  gr_model_free(wide);
}

static void check_bad_directories(void) {
  char dir[700], path[800], cmd[4096];
  snprintf(dir, sizeof dir, "%s/bad", test_tmpdir());
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dir, g_dir, dir);
  CHECK(system(cmd) == 0);
  snprintf(path, sizeof path, "%s/config.json", dir);
  gr_model_config cfg;
  gr_model *m = NULL;
  /* an op graft does not run is listed by name */
  snprintf(cmd, sizeof cmd, "sed -i 's/\"Relu\"/\"Celu\"/' '%s'", path);
  CHECK(system(cmd) == 0);
  CHECK_FAILS(gr_model_load_dir(dir, 1, &cfg, &m) == GR_OK, GR_EUNSUPPORTED);
  CHECK(strstr(gr_last_error(), "Celu") != NULL);
  /* truncated config */
  snprintf(cmd, sizeof cmd, "cp '%s/config.json' '%s' && truncate -s 700 '%s'", g_dir, path, path);
  CHECK(system(cmd) == 0);
  CHECK_FAILS(gr_model_load_dir(dir, 1, &cfg, &m) == GR_OK, GR_EFORMAT);
  /* a node field of the wrong type */
  write_text(path, "{\"architecture\":\"onnx_graph\",\"in_channels\":2,\"height\":6,\"width\":6,\"num_classes\":3,"
                   "\"graph\":{\"opset\":13,\"inputs\":[{\"name\":\"x\",\"dtype\":\"FLOAT\",\"shape\":null}],"
                   "\"outputs\":[{\"name\":\"y\",\"dtype\":\"FLOAT\",\"shape\":null}],"
                   "\"nodes\":[{\"op\":\"Relu\",\"name\":\"r\",\"inputs\":\"x\",\"outputs\":[\"y\"]}]}}");
  CHECK_FAILS(gr_model_load_dir(dir, 1, &cfg, &m) == GR_OK, GR_EFORMAT);
  CHECK(strstr(gr_last_error(), "graph.nodes[0].inputs") != NULL);
  /* a weight of the wrong shape fails at the node, naming it */
  snprintf(cmd, sizeof cmd, "cp '%s/config.json' '%s' && sed -i 's/\"fc.weight\"/\"conv.weight\"/' '%s'", g_dir, path, path);
  CHECK(system(cmd) == 0);
  m = load(dir);
  CHECK(m != NULL);
  if (m) {
    gr_ctx *c = gr_ctx_new(1 << 20, 1);
    gr_tensor *x = gr_tensor_new(c, 4, GR_SHAPE(1, 2, 6, 6));
    CHECK(gr_model_forward(m, c, x) == NULL);
    CHECK(strstr(gr_last_error(), "Gemm node 'fc'") != NULL);
    /* 2 channels are neither the graph's nor one to repeat */
    gr_tensor *x3 = gr_tensor_new(c, 4, GR_SHAPE(1, 3, 6, 6));
    CHECK(gr_model_forward(m, c, x3) == NULL);
    gr_ctx_free(c);
  }
  gr_model_free(m);
}

/* The real classifier: module forward == gr_onnx_run on the same input. */
static void check_paddle(void) {
  const char *src = getenv("GRAFT_SRC") ? getenv("GRAFT_SRC") : ".";
  char path[700], dir[700];
  if (getenv("GRAFT_MODELS")) snprintf(path, sizeof path, "%s/ch_ppocr_mobile_v2.0_cls_infer.onnx", getenv("GRAFT_MODELS"));
  else snprintf(path, sizeof path, "%s/build/models/ch_ppocr_mobile_v2.0_cls_infer.onnx", src);
  gr_onnx_model *om = NULL;
  if (gr_onnx_load(path, &om)) {
    printf("note: %s missing (scripts/fetch_models.sh): PaddleOCR part skipped\n", path);
    return;
  }
  snprintf(dir, sizeof dir, "%s/paddle", test_tmpdir());
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
  CHECK(system(cmd) == 0);
  CHECK_FAILS(gr_onnx_save_dir(om, NULL, dir) == GR_OK, GR_EARG); /* symbolic H, W */
  gr_onnx_input_spec in = {3, 48, 192, 1.0f, 0.0f};
  CHECK_OK(gr_onnx_save_dir(om, &in, dir));
  gr_model *m = load(dir);
  CHECK(m != NULL);
  gr_ctx *c = gr_ctx_new(8 << 20, 1);
  gr_tensor *x = gr_tensor_new(c, 4, GR_SHAPE(2, 3, 48, 192));
  gr_rng r;
  gr_rng_seed(&r, 11);
  test_fill(&r, x->data, x->numel, -1.0f, 1.0f);
  gr_tensor *want = NULL;
  gr_ctx_set_training(c, false);
  CHECK_OK(gr_onnx_run(c, om, 1, &x, 1, &want));
  if (m && want) {
    gr_model_train(m, false);
    gr_tensor *y = gr_model_forward(m, c, x);
    CHECK(y && y->numel == want->numel);
    if (y) CHECK_CLOSE("paddle module vs run", y->data, want->data, y->numel, 0, 0);
    CHECK(gr_model_find(m, "conv2d_0.w_0") && gr_model_find(m, "batch_norm_0.w_1") &&
          !gr_model_find(m, "batch_norm_0.w_1")->requires_grad);
  }
  gr_ctx_free(c);
  gr_model_free(m);
  gr_onnx_free(om);
}

int main(void) {
  const char *refdir = getenv("GRAFT_REF_DIR") ? getenv("GRAFT_REF_DIR") : "ref";
  snprintf(g_dir, sizeof g_dir, "%s/onnx_module_dir", refdir);
  ref_file *rf = ref_open("onnx_module");
  gr_model *m = load(g_dir);
  CHECK(rf && m);
  if (rf && m) {
    check_names_and_roles(m);
    check_against_torch(m, rf);
    check_finite_differences(m);
    check_head_and_roundtrip(m, rf);
  }
  gr_model_free(m);
  ref_close(rf);
  check_recalibrate_bn();
  check_reinit();
  check_feature_cache();
  check_bad_directories();
  check_paddle();
  return test_summary();
}
