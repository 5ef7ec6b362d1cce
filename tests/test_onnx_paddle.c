/* test_onnx_paddle.c — a real pretrained network through the ONNX importer:
 * the PaddleOCR text-orientation classifier (ch_ppocr_mobile_v2.0_cls_infer,
 * 53 Conv with groups and strides (2,1), BatchNormalization, HardSigmoid,
 * hard-swish as Add/Clip/Mul/Div, squeeze-excite, a Shape/Cast/Slice/Concat
 * subgraph feeding Reshape, MatMul, Softmax) run on fixed inputs and compared
 * with onnxruntime-node's outputs saved by scripts/onnx_reference.js
 * (tests/data/onnx/ppocr_cls_ref.txt; the input formula is the same on both
 * sides) within 1e-4. The model is fetched by scripts/fetch_models.sh into
 * build/models (or $GRAFT_MODELS); the test skips (77) without it. Also checks
 * that a gradient flows back to the input through the imported graph. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/onnx.h"
#include "testutil.h"

#define MODEL "ch_ppocr_mobile_v2.0_cls_infer.onnx"

static int read_ref(const char *path, float *v, int cap) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[256];
  int n = 0;
  while (n < cap && fgets(line, sizeof line, f))
    if (line[0] != '#') v[n++] = strtof(line, NULL);
  fclose(f);
  return n;
}

int main(void) {
  const char *src = getenv("GRAFT_SRC") ? getenv("GRAFT_SRC") : ".";
  char path[1024], ref[1024];
  if (getenv("GRAFT_MODELS")) snprintf(path, sizeof path, "%s/%s", getenv("GRAFT_MODELS"), MODEL);
  else snprintf(path, sizeof path, "%s/build/models/%s", src, MODEL);
  snprintf(ref, sizeof ref, "%s/tests/data/onnx/ppocr_cls_ref.txt", src);
  FILE *probe = fopen(path, "rb");
  if (!probe) {
    fprintf(stderr, "skip: %s missing (run scripts/fetch_models.sh)\n", path);
    return 77;
  }
  fclose(probe);
  gr_onnx_model *m = NULL;
  CHECK_OK(gr_onnx_load(path, &m));
  if (!m) return test_summary();
  CHECK_OK(gr_onnx_check(m));
  CHECK(gr_onnx_n_feeds(m) == 1 && m->n_outputs == 1);

  gr_ctx *c = gr_ctx_new(64 << 20, 1);
  gr_ctx_set_training(c, false);
  const int64_t per = 3 * 48 * 192;
  float *xv = malloc(sizeof(float) * 2 * per);
  for (int b = 0; b < 2; b++)
    for (int64_t i = 0; i < per; i++) xv[b * per + i] = (float)(0.8 * sin(0.0137 * (double)i + b));
  gr_tensor *x = gr_leaf(c, 4, GR_SHAPE(2, 3, 48, 192), xv), *y = NULL;
  CHECK_OK(gr_onnx_run(c, m, 1, &x, 1, &y));
  float want[8];
  int n = read_ref(ref, want, 8);
  CHECK_MSG(n == 4, "%s: %d values", ref, n);
  if (y && n == 4) {
    CHECK(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 2);
    CHECK_CLOSE("ppocr cls vs onnxruntime", y->data, want, 4, 1e-4, 1e-4);
    printf("graft: %.7f %.7f %.7f %.7f\nonnxruntime: %.7f %.7f %.7f %.7f\n", y->data[0], y->data[1], y->data[2],
           y->data[3], want[0], want[1], want[2], want[3]);
    float seed[4] = {1, -1, 0.5f, -0.5f};
    CHECK_OK(gr_backward_seed(c, y, seed));
    double g2 = 0;
    bool finite = x->grad != NULL;
    for (int64_t i = 0; finite && i < x->numel; i++) finite = isfinite(x->grad[i]), g2 += x->grad[i] * x->grad[i];
    CHECK_MSG(finite && g2 > 0, "input gradient missing, zero or not finite (|g|^2 = %g)", g2);
  }
  free(xv);
  gr_ctx_free(c);
  gr_onnx_free(m);
  return test_summary();
}
