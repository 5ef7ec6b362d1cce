/* io/onnx_save.c — an imported ONNX graph as a graft model directory:
 * model.safetensors holds every initializer and every Constant node's tensor
 * (under its ONNX name; float types as F32, integer types as I64) and
 * config.json describes the graph ("architecture": "onnx_graph", layout in
 * docs/ONNX.md). Both files are written atomically; onnx_module.c reads the
 * directory back as a module. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "graft/onnx.h"
#include "graft/safetensors.h"
#include "io/onnx_json.h"
#include "io/st_internal.h"


/* The fed size: given, else the declared fixed dims of the only graph feed. */
static gr_status input_size(const gr_onnx_model *m, const gr_onnx_input_spec *in, int size[3]) {
  const gr_onnx_value_info *vi = gr_onnx_n_feeds(m) == 1 ? gr_onnx_feed(m, 0) : NULL;
  if (!vi) return gr_error(GR_EUNSUPPORTED, "onnx: a model directory graph takes 1 input (this one %d)", gr_onnx_n_feeds(m));
  int given[3] = {in ? in->in_ch : 0, in ? in->h : 0, in ? in->w : 0};
  const gr_onnx_value_info *hint = NULL; /* a default size for symbolic dims (TF.js import) */
  for (int i = 0; i < m->n_value_info; i++)
    if (!strcmp(m->value_info[i].name, vi->name) && m->value_info[i].ndim == 4) hint = &m->value_info[i];
  for (int d = 0; d < 3; d++) {
    int64_t decl = vi->ndim == 4 ? vi->dims[d + 1] : -1;
    int64_t dflt = decl > 0 ? decl : hint ? hint->dims[d + 1] : -1;
    size[d] = given[d] > 0 ? given[d] : (int)dflt;
    if (size[d] <= 0 || size[d] > 65536)
      return gr_error(GR_EARG, "onnx: input '%s' has no fixed %s: give the input size (graft import --input-size CxHxW)",
                      vi->name, d == 0 ? "channel count" : d == 1 ? "height" : "width");
    if (decl > 0 && size[d] != decl)
      return gr_error(GR_EARG, "onnx: input '%s' is declared with %lld at dim %d, not %d", vi->name, (long long)decl,
                      d + 1, size[d]);
  }
  return GR_OK;
}

static gr_status write_config(const gr_onnx_model *m, const gr_onnx_input_spec *in, const char *path) {
  int size[3];
  gr_status st = input_size(m, in, size);
  if (st) return st;
  const gr_onnx_value_info *out = &m->outputs[0];
  int64_t classes = m->n_outputs > 0 && out->ndim >= 1 && out->dims[out->ndim - 1] > 0 ? out->dims[out->ndim - 1] : 1;
  cJSON *root = cJSON_CreateObject(), *graph = ox_graph_to_json(m, &st);
  if (!root || !graph) {
    cJSON_Delete(root), cJSON_Delete(graph);
    return st ? st : gr_error(GR_ENOMEM, "%s: out of memory", path);
  }
  cJSON_AddStringToObject(root, "architecture", "onnx_graph");
  cJSON_AddStringToObject(root, "framework", "graft");
  cJSON_AddNumberToObject(root, "in_channels", size[0]);
  cJSON_AddNumberToObject(root, "height", size[1]);
  cJSON_AddNumberToObject(root, "width", size[2]);
  cJSON_AddNumberToObject(root, "num_classes", (double)classes);
  cJSON_AddNumberToObject(root, "input_scale", in && in->scale != 0 ? in->scale : 1.0);
  cJSON_AddNumberToObject(root, "input_shift", in ? in->shift : 0.0);
  cJSON_AddItemToObject(root, "graph", graph);
  char *txt = cJSON_Print(root);
  cJSON_Delete(root);
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
    if (ox_is_weight_constant(&m->nodes[i])) names[n] = m->nodes[i].out[0], w[n++] = m->nodes[i].attr[0].t;
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

gr_status gr_onnx_save_dir(const gr_onnx_model *m, const gr_onnx_input_spec *in, const char *dir) {
  if (!m || !dir) return gr_error(GR_EARG, "onnx: NULL model or directory");
  char path[4096];
  int size[3];
  gr_status st = input_size(m, in, size); /* before anything is written */
  if (!st) st = st_path_join(path, sizeof path, dir, "model.safetensors");
  if (!st) st = write_weights(m, path);
  if (!st) st = st_path_join(path, sizeof path, dir, "config.json");
  if (!st) st = write_config(m, in, path);
  return st;
}
