/* fuzz_onnx.c — libFuzzer target for the ONNX protobuf reader (gr_onnx_parse
 * on arbitrary bytes). A failed parse must report a status with a message
 * and no model; a model that parses is walked (every node's strings and
 * attributes, every tensor's values) so ASan sees any read past what was
 * decoded. Built by tests/fuzz/CMakeLists.txt (`make fuzz`). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graft/onnx.h"

static volatile size_t sink;

static void touch_tensor(const gr_onnx_tensor *t) {
  for (int64_t i = 0; i < t->numel && i < 4096; i++)
    sink += t->kind == GR_ONNX_KIND_F32 ? (size_t)(t->f32[i] != 0) : t->kind == GR_ONNX_KIND_I64 ? (size_t)t->i64[i] : 0;
  sink += strlen(t->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gr_onnx_model *m = NULL;
  if (gr_onnx_parse(data, size, "fuzz", &m) != GR_OK) {
    if (m || !gr_last_error()[0]) abort();
    return 0;
  }
  for (int i = 0; i < m->n_nodes; i++) {
    const gr_onnx_node *n = &m->nodes[i];
    sink += strlen(n->name) + strlen(n->op_type) + strlen(n->domain);
    for (int k = 0; k < n->n_in; k++) sink += strlen(n->in[k]);
    for (int k = 0; k < n->n_out; k++) sink += strlen(n->out[k]);
    for (int k = 0; k < n->n_attr; k++) {
      const gr_onnx_attr *a = &n->attr[k];
      if (gr_onnx_attr_find(n, a->name) == NULL) abort();
      for (int j = 0; j < a->n_ints; j++) sink += (size_t)a->ints[j];
      for (int j = 0; j < a->n_floats; j++) sink += (size_t)(a->floats[j] != 0);
      for (int j = 0; j < a->n_strings; j++) sink += strlen(a->strings[j]);
      if (a->s) sink += a->s[a->s_len] == 0;
      if (a->t) touch_tensor(a->t);
    }
  }
  for (int i = 0; i < m->n_inits; i++) touch_tensor(&m->inits[i]);
  gr_onnx_free(m);
  return 0;
}
