/* test_tfjs.c — TF.js layers import (io/tfjs.c, tfjs_layers.c): a tiny Keras
 * model written by tests/ref/ref_tfjs.py (uint8 / float16 / float32 weights,
 * ZeroPadding, strided Conv2D+ReLU, DepthwiseConv2D, BatchNormalization,
 * ReLU6, Add, NHWC Flatten, Dense+softmax) gives PyTorch's output within
 * 1e-4; every prefix and many bit flips of its JSON, truncated or padded
 * weights, unknown layers and missing weights fail with named errors, never
 * a crash. With the nsfwjs MobileNetV2 fetched (scripts/fetch_models.sh):
 * out_relu features at 96 px and the classifier output at 224 px equal a
 * hand-written PyTorch MobileNetV2 fed the same weights within 1e-4, and the
 * imported directory loads as a module with a new head. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "graft/modeldir.h"
#include "graft/onnx.h"
#include "util/refdata.h"

static const char *refdir(void) { return getenv("GRAFT_REF_DIR") ? getenv("GRAFT_REF_DIR") : "ref"; }

static gr_tensor *run_to(gr_ctx *c, const gr_onnx_model *m, gr_tensor *x, const char *stop) {
  gr_onnx_run_opts o = {0, NULL, NULL, stop};
  gr_tensor *y = NULL;
  gr_ctx_set_training(c, false);
  if (gr_onnx_run_ex(c, m, &o, 1, &x, 1, &y)) fprintf(stderr, "run: %s\n", gr_last_error());
  return y;
}

static void check_tiny_numerics(void) {
  char path[700];
  snprintf(path, sizeof path, "%s/tiny.json", refdir());
  gr_onnx_model *m = NULL;
  CHECK_OK(gr_tfjs_load(path, &m));
  ref_file *rf = ref_open("tfjs_tiny");
  if (m && rf) {
    CHECK(gr_onnx_check(m) == GR_OK);
    gr_ctx *c = gr_ctx_new(1 << 20, 1);
    gr_tensor *y = run_to(c, m, ref_tensor(c, rf, "x", false), NULL);
    const ref_array *want = ref_get(rf, "y");
    CHECK(y && want && y->numel == want->numel);
    if (y && want && y->numel == want->numel) CHECK_CLOSE("tiny tfjs model", y->data, want->data, y->numel, 1e-4, 1e-4);
    gr_ctx_free(c);
  }
  ref_close(rf);
  gr_onnx_free(m);
}

/* Parses json/weights; never crashes; returns the status. */
static gr_status parse(const char *json, size_t n, const void *w, size_t wn) {
  gr_onnx_model *m = NULL;
  gr_status s = gr_tfjs_parse(json, n, w, wn, "t.json", &m);
  CHECK((s == GR_OK) == (m != NULL));
  if (s) CHECK(strlen(gr_last_error()) > 0);
  gr_onnx_free(m);
  return s;
}

static char *replace(const char *s, const char *from, const char *to) {
  const char *p = strstr(s, from);
  if (!p) return NULL;
  size_t n = strlen(s) + strlen(to) + 1;
  char *out = malloc(n);
  snprintf(out, n, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
  return out;
}

static void check_malformed(void) {
  char path[700];
  size_t jn = 0, wn = 0;
  snprintf(path, sizeof path, "%s/tiny.json", refdir());
  char *json = (char *)test_read_file(path, &jn);
  snprintf(path, sizeof path, "%s/tiny.bin", refdir());
  uint8_t *w = test_read_file(path, &wn);
  CHECK(json && w);
  if (!json || !w) return;
  CHECK_OK(parse(json, jn, w, wn));
  /* every prefix of the JSON fails cleanly */
  for (size_t k = 0; k < jn; k += 7) CHECK(parse(json, k, w, wn) != GR_OK);
  /* bit flips: any status, no crash (the ASan build checks memory) */
  gr_rng r;
  gr_rng_seed(&r, 4);
  char *flip = malloc(jn);
  for (int i = 0; i < 300; i++) {
    memcpy(flip, json, jn);
    size_t at = (size_t)(gr_rng_next(&r) % jn);
    flip[at] ^= (char)(1u << (gr_rng_next(&r) % 8));
    parse(flip, jn, w, wn);
  }
  free(flip);
  /* weights: truncated, padded */
  CHECK_FAILS(parse(json, jn, w, wn - 1) == GR_OK, GR_EFORMAT);
  CHECK(strstr(gr_last_error(), "bytes") != NULL);
  uint8_t *big = malloc(wn + 4);
  memcpy(big, w, wn);
  memset(big + wn, 0, 4);
  CHECK_FAILS(parse(json, jn, big, wn + 4) == GR_OK, GR_EFORMAT);
  free(big);
  /* an unknown layer class is named; so is a weight the manifest lacks */
  char *s = replace(json, "\"Add\"", "\"Multiply\"");
  CHECK(s && parse(s, strlen(s), w, wn) == GR_EUNSUPPORTED && strstr(gr_last_error(), "Multiply"));
  free(s);
  s = replace(json, "\"dw/depthwise_kernel\"", "\"dw/kernelx\"");
  CHECK(s && parse(s, strlen(s), w, wn) == GR_EFORMAT && strstr(gr_last_error(), "dw/depthwise_kernel"));
  free(s);
  /* a shape that does not match the data, a negative dim, an absurd dim */
  s = replace(json, "[36, 4]", "[37, 4]");
  CHECK(s && parse(s, strlen(s), w, wn) == GR_EFORMAT);
  free(s);
  s = replace(json, "[36, 4]", "[-36, 4]");
  CHECK(s && parse(s, strlen(s), w, wn) == GR_EFORMAT);
  free(s);
  s = replace(json, "[36, 4]", "[999999999, 999999999]");
  CHECK(s && parse(s, strlen(s), w, wn) == GR_EFORMAT);
  free(s);
  /* a huge padding (found by fuzz_tfjs: once an out-of-range cast) */
  s = replace(json, "[[0, 1], [0, 1]]", "[[0, 1e88], [0, 1]]");
  CHECK(s && parse(s, strlen(s), w, wn) == GR_EFORMAT && strstr(gr_last_error(), "pad"));
  free(s);
  /* a layer reading a value nobody produced */
  s = replace(json, "[[[\"flat\", 0, 0, {}]]]", "[[[\"nothing\", 0, 0, {}]]]");
  CHECK(s && parse(s, strlen(s), w, wn) == GR_EFORMAT && strstr(gr_last_error(), "nothing"));
  free(s);
  CHECK_FAILS(gr_tfjs_load("/nonexistent/model.json", NULL) == GR_OK, GR_EARG);
  gr_onnx_model *m = NULL;
  CHECK_FAILS(gr_tfjs_load("/nonexistent/model.json", &m) == GR_OK, GR_ENOTFOUND);
  free(json);
  free(w);
}

/* The fuzz seeds (tests/fuzz/corpus/tfjs, u16 weight length + weights +
 * JSON) are valid models: each parses and passes the op check. */
static void replay_fuzz_seeds(void) {
  const char *src = getenv("GRAFT_SRC") ? getenv("GRAFT_SRC") : ".";
  const char *names[] = {"functional_conv_dense", "sequential_dw_bn", "add_pool"};
  for (int i = 0; i < 3; i++) {
    char path[700];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/tfjs/%s", src, names[i]);
    uint8_t *d = test_read_file(path, &n);
    CHECK(d && n > 2);
    if (!d || n <= 2) continue;
    size_t wn = (size_t)d[0] | (size_t)d[1] << 8;
    CHECK(wn <= n - 2);
    gr_onnx_model *m = NULL;
    if (wn <= n - 2) CHECK_OK(gr_tfjs_parse((const char *)d + 2 + wn, n - 2 - wn, d + 2, wn, names[i], &m));
    if (m) CHECK_OK(gr_onnx_check(m));
    gr_onnx_free(m);
    free(d);
  }
}

static void check_mobilenet(void) {
  const char *src = getenv("GRAFT_SRC") ? getenv("GRAFT_SRC") : ".";
  char path[700];
  if (getenv("GRAFT_MODELS")) snprintf(path, sizeof path, "%s/mobilenet_v2/model.json", getenv("GRAFT_MODELS"));
  else snprintf(path, sizeof path, "%s/build/models/mobilenet_v2/model.json", src);
  gr_onnx_model *m = NULL;
  if (gr_tfjs_load(path, &m)) {
    printf("note: %s not loaded (%s): MobileNetV2 part skipped\n", path, gr_last_error());
    return;
  }
  ref_file *rf = ref_open("tfjs_mobilenet");
  CHECK(rf != NULL);
  gr_ctx *c = gr_ctx_new(64 << 20, 1);
  if (rf) {
    gr_tensor *f = run_to(c, m, ref_tensor(c, rf, "x96", false), "out_relu");
    f = f ? gr_reshape(c, gr_global_avg_pool(c, f), 2, GR_SHAPE(f->shape[0], -1)) : NULL;
    const ref_array *want = ref_get(rf, "feat96");
    CHECK(f && want && f->numel == want->numel);
    if (f && want && f->numel == want->numel) CHECK_CLOSE("MobileNetV2 out_relu features", f->data, want->data, f->numel, 1e-4, 1e-4);
    gr_tensor *p = run_to(c, m, ref_tensor(c, rf, "x224", false), NULL);
    want = ref_get(rf, "probs224");
    CHECK(p && want && p->numel == want->numel);
    if (p && want && p->numel == want->numel) CHECK_CLOSE("MobileNetV2 classifier", p->data, want->data, p->numel, 1e-4, 1e-4);
  }
  /* as a model directory at 96 px with a new 10-class head on out_relu */
  char dir[700], cmd[1600];
  snprintf(dir, sizeof dir, "%s/mnv2", test_tmpdir());
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
  CHECK(system(cmd) == 0);
  gr_onnx_input_spec in = {0, 96, 96, 1.0f, 0.0f};
  CHECK_OK(gr_onnx_save_dir(m, &in, dir));
  gr_model_config cfg;
  gr_model *mod = NULL;
  CHECK_OK(gr_model_load_dir(dir, 1, &cfg, &mod));
  CHECK(cfg.in_ch == 3 && cfg.h == 96 && cfg.w == 96);
  if (mod) {
    CHECK_OK(gr_onnx_module_set_head(mod, "out_relu", 10));
    gr_tensor *hw = gr_model_find(mod, "head.weight");
    CHECK(hw && hw->shape[1] == 1280);
    CHECK(gr_model_find(mod, "Conv1.weight") && gr_model_find(mod, "bn_Conv1.running_var"));
    gr_model_train(mod, false);
    gr_tensor *x = gr_tensor_new(c, 4, GR_SHAPE(2, 1, 28, 28));
    gr_tensor *y = gr_model_forward(mod, c, x);
    CHECK(y && y->shape[0] == 2 && y->shape[1] == 10);
  }
  gr_model_free(mod);
  gr_ctx_free(c);
  ref_close(rf);
  gr_onnx_free(m);
}

int main(void) {
  check_tiny_numerics();
  check_malformed();
  replay_fuzz_seeds();
  check_mobilenet();
  return test_summary();
}
