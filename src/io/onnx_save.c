/* io/onnx_save.c — an imported ONNX graph as a graft model directory:
 * model.safetensors holds every initializer and every Constant node's tensor
 * (under its ONNX name; float types as F32, integer types as I64) and
 * config.json describes the graph ("architecture": "onnx_graph", layout in
 * docs/ONNX.md). Both files are written atomically. Reading the directory
 * back is not implemented yet. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "graft/onnx.h"
#include "graft/safetensors.h"
#include "io/st_internal.h"

static bool is_weight_constant(const gr_onnx_node *n) {
  return !strcmp(n->op_type, "Constant") && n->n_attr == 1 && n->attr[0].t && n->n_out == 1;
}

static cJSON *attr_json(const gr_onnx_attr *a) {
  switch (a->type) {
  case GR_ONNX_ATTR_FLOAT: return cJSON_CreateNumber(a->f);
  case GR_ONNX_ATTR_INT: return cJSON_CreateNumber((double)a->i);
  case GR_ONNX_ATTR_STRING: return cJSON_CreateString(a->s);
  case GR_ONNX_ATTR_FLOATS: {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < a->n_floats; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(a->floats[i]));
    return arr;
  }
  case GR_ONNX_ATTR_INTS: {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < a->n_ints; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)a->ints[i]));
    return arr;
  }
  case GR_ONNX_ATTR_STRINGS: return cJSON_CreateStringArray(a->strings, a->n_strings);
  default: return NULL;
  }
}

static cJSON *names_json(const char *const *names, int n) { return cJSON_CreateStringArray(names, n); }

static gr_status node_json(const gr_onnx_node *n, cJSON *nodes) {
  cJSON *o = cJSON_CreateObject(), *attrs = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "op", n->op_type);
  cJSON_AddStringToObject(o, "name", n->name);
  cJSON_AddItemToObject(o, "inputs", names_json(n->in, n->n_in));
  cJSON_AddItemToObject(o, "outputs", names_json(n->out, n->n_out));
  cJSON_AddItemToObject(o, "attrs", attrs);
  cJSON_AddItemToArray(nodes, o);
  for (int k = 0; k < n->n_attr; k++) {
    cJSON *v = attr_json(&n->attr[k]);
    if (!v)
      return gr_error(GR_EUNSUPPORTED, "onnx: %s node '%s': attribute '%s' of type %d cannot be saved", n->op_type,
                      n->name, n->attr[k].name, n->attr[k].type);
    cJSON_AddItemToObject(attrs, n->attr[k].name, v);
  }
  return GR_OK;
}

static cJSON *value_infos_json(const gr_onnx_value_info *v, int n) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; i < n; i++) {
    cJSON *o = cJSON_CreateObject(), *shape = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "name", v[i].name);
    cJSON_AddStringToObject(o, "dtype", gr_onnx_dtype_name(v[i].elem_type));
    for (int d = 0; d < v[i].ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)v[i].dims[d]));
    cJSON_AddItemToObject(o, "shape", v[i].ndim < 0 ? cJSON_CreateNull() : shape);
    if (v[i].ndim < 0) cJSON_Delete(shape);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

static gr_status write_config(const gr_onnx_model *m, const char *path) {
  cJSON *root = cJSON_CreateObject(), *graph = cJSON_CreateObject(), *nodes = cJSON_CreateArray();
  cJSON_AddStringToObject(root, "architecture", "onnx_graph");
  cJSON_AddStringToObject(root, "framework", "graft");
  cJSON_AddItemToObject(root, "graph", graph);
  cJSON_AddNumberToObject(graph, "opset", (double)m->opset);
  cJSON_AddStringToObject(graph, "producer", m->producer_name);
  cJSON_AddItemToObject(graph, "inputs", value_infos_json(m->inputs, m->n_inputs));
  cJSON_AddItemToObject(graph, "outputs", value_infos_json(m->outputs, m->n_outputs));
  cJSON_AddItemToObject(graph, "nodes", nodes);
  gr_status st = GR_OK;
  for (int i = 0; i < m->n_nodes && !st; i++)
    if (!is_weight_constant(&m->nodes[i])) st = node_json(&m->nodes[i], nodes);
  char *txt = st ? NULL : cJSON_Print(root);
  cJSON_Delete(root);
  if (st) return st;
  if (!txt) return gr_error(GR_ENOMEM, "%s: out of memory", path);
  st = st_atomic_write_file(path, txt, strlen(txt));
  cJSON_free(txt);
  return st;
}

/* Every weight tensor: initializers, then Constant node values. */
static int collect_weights(const gr_onnx_model *m, const gr_onnx_tensor **w, const char **names) {
  int n = 0;
  for (int i = 0; i < m->n_inits; i++) names[n] = m->inits[i].name, w[n++] = &m->inits[i];
  for (int i = 0; i < m->n_nodes; i++)
    if (is_weight_constant(&m->nodes[i])) names[n] = m->nodes[i].out[0], w[n++] = m->nodes[i].attr[0].t;
  return n;
}

static gr_status write_weights(const gr_onnx_model *m, const char *path) {
  int cap = m->n_inits + m->n_nodes + 1;
  const gr_onnx_tensor **w = gr_calloc((size_t)cap, sizeof *w);
  const char **names = gr_calloc((size_t)cap, sizeof *names);
  gr_st_entry *e = gr_calloc((size_t)cap, sizeof *e);
  const void **datas = gr_calloc((size_t)cap, sizeof *datas);
  gr_status st = w && names && e && datas ? GR_OK : gr_error(GR_ENOMEM, "%s: out of memory", path);
  int n = st ? 0 : collect_weights(m, w, names);
  for (int i = 0; i < n && !st; i++) {
    if (w[i]->kind == GR_ONNX_KIND_NONE)
      st = gr_error(GR_EUNSUPPORTED, "onnx: tensor '%s' of type %s cannot be saved", names[i], gr_onnx_dtype_name(w[i]->data_type));
    e[i] = (gr_st_entry){names[i], w[i]->kind == GR_ONNX_KIND_F32 ? GR_DT_F32 : GR_DT_I64, w[i]->ndim, w[i]->dims};
    datas[i] = w[i]->kind == GR_ONNX_KIND_F32 ? (const void *)w[i]->f32 : (const void *)w[i]->i64;
  }
  gr_st_kv meta[] = {{"format", "pt"}, {"graft_source", "onnx"}};
  if (!st) st = gr_st_save(path, e, datas, (size_t)n, meta, 2);
  gr_free(w);
  gr_free(names);
  gr_free(e);
  gr_free(datas);
  return st;
}

gr_status gr_onnx_save_dir(const gr_onnx_model *m, const char *dir) {
  if (!m || !dir) return gr_error(GR_EARG, "onnx: NULL model or directory");
  char path[4096];
  gr_status st = st_path_join(path, sizeof path, dir, "model.safetensors");
  if (!st) st = write_weights(m, path);
  if (!st) st = st_path_join(path, sizeof path, dir, "config.json");
  if (!st) st = write_config(m, path);
  return st;
}
