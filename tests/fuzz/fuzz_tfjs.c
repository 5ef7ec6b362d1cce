/* fuzz_tfjs.c — libFuzzer target for the TF.js layers reader (gr_tfjs_parse).
 * Input: a little-endian u16 n, then n weight bytes (fewer if the input is
 * shorter), then model.json text. A failed parse must report a status with
 * a message and no model; a parsed model is walked so ASan sees any read
 * past what was built. Seeds: corpus/tfjs (make_tfjs_corpus.py); the
 * `tfjs` ctest replays them. Built by tests/fuzz/CMakeLists.txt. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graft/onnx.h"

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t wn = (size_t)data[0] | (size_t)data[1] << 8;
  if (wn > size - 2) wn = size - 2;
  const uint8_t *w = data + 2;
  const char *json = (const char *)(data + 2 + wn);
  size_t jn = size - 2 - wn;
  gr_onnx_model *m = NULL;
  if (gr_tfjs_parse(json, jn, w, wn, "fuzz", &m) != GR_OK) {
    if (m || !gr_last_error()[0]) abort();
    return 0;
  }
  for (int i = 0; i < m->n_nodes; i++) {
    const gr_onnx_node *n = &m->nodes[i];
    sink += strlen(n->name) + strlen(n->op_type);
    for (int k = 0; k < n->n_in; k++) sink += strlen(n->in[k]);
    for (int k = 0; k < n->n_attr; k++)
      for (int j = 0; j < n->attr[k].n_ints; j++) sink += (size_t)n->attr[k].ints[j];
  }
  for (int i = 0; i < m->n_inits; i++)
    for (int64_t j = 0; j < m->inits[i].numel; j++) sink += m->inits[i].f32[j] != 0;
  gr_onnx_free(m);
  return 0;
}
