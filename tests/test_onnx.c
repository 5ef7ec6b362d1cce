/* test_onnx.c — the ONNX reader and executor on bad input: every prefix of a
 * real model (truncation), byte flips, lying lengths and counts, unknown ops
 * (listed with their node names), wrong input shapes, and the replay of the
 * malformed corpus in tests/fuzz/corpus/onnx. Each must give a status with a
 * message, never a crash (run under `make asan` too). Models come from the
 * libonnx-testdata suite; the test skips (77) without it. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "graft/onnx.h"
#include "testutil.h"

#define NODE_DIR "/usr/share/libonnx-testdata/data/node"

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  fclose(f);
  return b;
}

/* Parse and, when it parses, run with a zero input of the declared shape:
 * any status is fine, a crash is not. Returns the parse status. */
static gr_status parse_and_try(const uint8_t *buf, size_t len) {
  gr_onnx_model *m = NULL;
  gr_clear_error();
  gr_status st = gr_onnx_parse(buf, len, "mutant", &m);
  if (st) {
    CHECK_MSG(!m && gr_last_error()[0], "failed parse must leave no model and a message");
    return st;
  }
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_ctx_set_training(c, false);
  int nf = gr_onnx_n_feeds(m);
  gr_tensor *x[4] = {0}, *y[4];
  for (int k = 0; k < nf && k < 4; k++) {
    const gr_onnx_value_info *vi = gr_onnx_feed(m, k);
    int64_t dims[GR_MAX_DIMS], numel = 1;
    int nd = vi->ndim < 0 ? 1 : vi->ndim;
    for (int d = 0; d < nd; d++) numel *= dims[d] = vi->ndim < 0 || vi->dims[d] < 0 ? 1 : vi->dims[d] % 64;
    x[k] = numel < 100000 ? gr_tensor_new(c, nd, dims) : NULL;
  }
  if (nf <= 4 && m->n_outputs <= 4) gr_onnx_run(c, m, nf, x, m->n_outputs, y);
  gr_ctx_free(c);
  gr_onnx_free(m);
  return GR_OK;
}

static void test_truncation_and_flips(void) {
  size_t len;
  uint8_t *b = slurp(NODE_DIR "/test_conv_with_strides_padding/model.onnx", &len);
  CHECK_PTR(b);
  if (!b) return;
  CHECK_OK(parse_and_try(b, len));
  int failed = 0;
  for (size_t n = 0; n < len; n++) failed += parse_and_try(b, n) != GR_OK;
  CHECK_MSG(failed > (int)len / 2, "only %d of %zu prefixes rejected", failed, len);
  uint8_t *m = malloc(len);
  for (size_t i = 0; i < len; i++)
    for (int bit = 0; bit < 8; bit += 3) {
      memcpy(m, b, len);
      m[i] ^= (uint8_t)(1u << bit);
      parse_and_try(m, len);
    }
  free(m);
  free(b);
}

static void test_lying_lengths(void) {
  /* graph (field 7) with a length far past the end */
  const uint8_t huge_len[] = {0x08, 0x07, 0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a};
  CHECK_FAILS(parse_and_try(huge_len, sizeof huge_len) == GR_OK, GR_EFORMAT);
  CHECK(strstr(gr_last_error(), "past the end"));
  /* an 11-byte varint */
  const uint8_t long_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  CHECK_FAILS(parse_and_try(long_varint, sizeof long_varint) == GR_OK, GR_EFORMAT);
  /* group wire type (3) */
  const uint8_t group[] = {0x0b, 0x0c};
  CHECK_FAILS(parse_and_try(group, sizeof group) == GR_OK, GR_EFORMAT);
  /* no graph at all */
  const uint8_t nograph[] = {0x08, 0x07};
  CHECK_FAILS(parse_and_try(nograph, sizeof nograph) == GR_OK, GR_EFORMAT);
  CHECK(strstr(gr_last_error(), "no graph"));
  CHECK_FAILS(gr_onnx_parse(NULL, 3, "x", &(gr_onnx_model *){0}) == GR_OK, GR_EARG);
}

static void test_unsupported_ops_listed(void) {
  gr_onnx_model *m = NULL;
  CHECK_OK(gr_onnx_load(NODE_DIR "/test_lstm_defaults/model.onnx", &m));
  if (!m) return;
  m->nodes[0].name = "my_lstm";
  CHECK_FAILS(gr_onnx_check(m) == GR_OK, GR_EUNSUPPORTED);
  CHECK_MSG(strstr(gr_last_error(), "LSTM (nodes 'my_lstm')"), "message: %s", gr_last_error());
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x[3] = {gr_scalar(c, 0), gr_scalar(c, 0), gr_scalar(c, 0)}, *y[2];
  CHECK_FAILS(gr_onnx_run(c, m, gr_onnx_n_feeds(m), x, m->n_outputs, y) == GR_OK, GR_EUNSUPPORTED);
  gr_ctx_free(c);
  gr_onnx_free(m);
}

static void test_wrong_input_shape(void) {
  gr_onnx_model *m = NULL;
  CHECK_OK(gr_onnx_load(NODE_DIR "/test_conv_with_strides_padding/model.onnx", &m));
  if (!m) return;
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x[2] = {gr_tensor_new(c, 4, GR_SHAPE(1, 1, 7, 6)), gr_tensor_new(c, 4, GR_SHAPE(1, 1, 3, 3))}, *y[1];
  CHECK_FAILS(gr_onnx_run(c, m, 2, x, 1, y) == GR_OK, GR_ESHAPE);
  CHECK_MSG(strstr(gr_last_error(), "input 'x'"), "message: %s", gr_last_error());
  CHECK_FAILS(gr_onnx_run(c, m, 1, x, 1, y) == GR_OK, GR_EARG);
  x[0] = NULL;
  CHECK_FAILS(gr_onnx_run(c, m, 2, x, 1, y) == GR_OK, GR_EARG);
  gr_ctx_free(c);
  gr_onnx_free(m);
}

/* Every file in the committed malformed corpus must fail to parse or run
 * without crashing; the names say which are expected to parse. */
static void test_corpus_replay(void) {
  char dir[1024];
  const char *src = getenv("GRAFT_SRC");
  snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/onnx", src ? src : ".");
  DIR *d = opendir(dir);
  CHECK_MSG(d, "%s missing", dir);
  if (!d) return;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char p[1400];
    size_t len;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    uint8_t *b = slurp(p, &len);
    if (!b) continue;
    gr_status st = parse_and_try(b, len);
    bool want_ok = !strncmp(e->d_name, "ok_", 3);
    CHECK_MSG((st == GR_OK) == want_ok, "%s: parse status %d", e->d_name, st);
    free(b);
    n++;
  }
  closedir(d);
  CHECK_MSG(n >= 8, "only %d corpus files", n);
}

int main(void) {
  DIR *d = opendir(NODE_DIR);
  if (!d) {
    fprintf(stderr, "skip: %s missing (apt-get install libonnx-testdata)\n", NODE_DIR);
    return 77;
  }
  closedir(d);
  test_truncation_and_flips();
  test_lying_lengths();
  test_unsupported_ops_listed();
  test_wrong_input_shape();
  test_corpus_replay();
  return test_summary();
}
