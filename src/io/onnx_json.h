/* io/onnx_json.h — internal: an ONNX graph as the "graph" object of a
 * model directory's config.json (layout in docs/ONNX.md), both ways. The
 * writer is used by `graft import` (onnx_save.c) and by model directories
 * saved after fine-tuning a graph model (onnx_module.c); the reader by the
 * graph module loader. Weights are not in the JSON: they are the model's
 * named parameters and buffers. */
#ifndef GRAFT_IO_ONNX_JSON_H
#define GRAFT_IO_ONNX_JSON_H
#include <cjson/cJSON.h>

#include "graft/nn.h"
#include "graft/onnx.h"

/* The "graph" object: opset, producer, inputs, outputs, nodes (Constant
 * nodes holding weight tensors are left out: their outputs are weight names).
 * NULL with *st set on failure. */
cJSON *ox_graph_to_json(const gr_onnx_model *m, gr_status *st);

/* Reads a "graph" object into *out (no initializers), everything allocated
 * in arena a (out->arena is left NULL: a owns it). Every field is checked;
 * failures are GR_EFORMAT naming `where` and the field. Numbers become INT
 * attributes when integral, else FLOAT (the executor accepts either where the
 * value is exact); number arrays INTS or FLOATS likewise. */
gr_status ox_graph_from_json(const cJSON *graph, const char *where, gr_arena *a, gr_onnx_model *out);

/* True when n is a Constant node holding a weight tensor (it is stored in
 * model.safetensors, not in the graph JSON). */
bool ox_is_weight_constant(const gr_onnx_node *n);

/* Adds a graph module's "graph", "input_scale", "input_shift",
 * "features_at" and "head_in" to a config.json object (modeldir.c). */
gr_status ox_module_write_config(const gr_module *root, cJSON *o);
#endif
