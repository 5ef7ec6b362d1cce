/* io/onnx_json.c — an ONNX graph as the "graph" object of config.json and
 * back (see onnx_json.h). The reader treats the JSON as untrusted: every
 * field's type and every count is checked, strings are copied into the
 * caller's arena, and nothing is left half-filled on failure that the caller
 * would use (the arena is freed by its owner). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/onnx_json.h"

/* ---- writing -------------------------------------------------------------- */

bool ox_is_weight_constant(const gr_onnx_node *n) {
  return !strcmp(n->op_type, "Constant") && n->n_attr == 1 && n->attr[0].t && n->n_out == 1;
}

static cJSON *attr_json(const gr_onnx_attr *a) {
  switch (a->type) {
  case GR_ONNX_ATTR_FLOAT: return cJSON_CreateNumber(a->f);
  case GR_ONNX_ATTR_INT: return cJSON_CreateNumber((double)a->i);
  case GR_ONNX_ATTR_STRING: return cJSON_CreateString(a->s);
  case GR_ONNX_ATTR_FLOATS: {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < a->n_floats; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(a->floats[i]));
    return arr;
  }
  case GR_ONNX_ATTR_INTS: {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < a->n_ints; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)a->ints[i]));
    return arr;
  }
  case GR_ONNX_ATTR_STRINGS: return cJSON_CreateStringArray(a->strings, a->n_strings);
  default: return NULL;
  }
}

static gr_status node_json(const gr_onnx_node *n, cJSON *nodes) {
  cJSON *o = cJSON_CreateObject(), *attrs = cJSON_CreateObject();
  if (!o || !attrs) {
    cJSON_Delete(o), cJSON_Delete(attrs);
    return gr_error(GR_ENOMEM, "onnx: out of memory writing the graph");
  }
  cJSON_AddStringToObject(o, "op", n->op_type);
  cJSON_AddStringToObject(o, "name", n->name);
  cJSON_AddItemToObject(o, "inputs", cJSON_CreateStringArray(n->in, n->n_in));
  cJSON_AddItemToObject(o, "outputs", cJSON_CreateStringArray(n->out, n->n_out));
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
  for (int i = 0; arr && i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", v[i].name);
    cJSON_AddStringToObject(o, "dtype", gr_onnx_dtype_name(v[i].elem_type));
    if (v[i].ndim < 0) {
      cJSON_AddItemToObject(o, "shape", cJSON_CreateNull());
    } else {
      cJSON *shape = cJSON_CreateArray();
      for (int d = 0; d < v[i].ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)v[i].dims[d]));
      cJSON_AddItemToObject(o, "shape", shape);
    }
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

cJSON *ox_graph_to_json(const gr_onnx_model *m, gr_status *st) {
  cJSON *graph = cJSON_CreateObject(), *nodes = cJSON_CreateArray();
  if (!graph || !nodes) {
    cJSON_Delete(graph), cJSON_Delete(nodes);
    *st = gr_error(GR_ENOMEM, "onnx: out of memory writing the graph");
    return NULL;
  }
  cJSON_AddNumberToObject(graph, "opset", (double)m->opset);
  cJSON_AddStringToObject(graph, "producer", m->producer_name ? m->producer_name : "");
  cJSON_AddItemToObject(graph, "inputs", value_infos_json(m->inputs, m->n_inputs));
  cJSON_AddItemToObject(graph, "outputs", value_infos_json(m->outputs, m->n_outputs));
  cJSON_AddItemToObject(graph, "nodes", nodes);
  *st = GR_OK;
  for (int i = 0; i < m->n_nodes && !*st; i++)
    if (!ox_is_weight_constant(&m->nodes[i])) *st = node_json(&m->nodes[i], nodes);
  if (*st) {
    cJSON_Delete(graph);
    return NULL;
  }
  return graph;
}

/* ---- reading -------------------------------------------------------------- */

#define JSON_MAX_ITEMS (1 << 20)

typedef struct json_reader {
  gr_arena *a;
  const char *where;
} json_reader;

static const char *copy_str(json_reader *r, const char *s) {
  size_t n = strlen(s);
  char *d = gr_arena_alloc(r->a, n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

static void *alloc_items(json_reader *r, int n, size_t size) { return gr_arena_alloc(r->a, (size_t)(n + 1) * size); }

/* An array's length, or -1 with a GR_EFORMAT naming field. */
static int array_len(json_reader *r, const cJSON *arr, const char *field, gr_status *st) {
  int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
  if (n < 0 || n > JSON_MAX_ITEMS) {
    *st = gr_error(GR_EFORMAT, "%s: %s must be an array of at most %d items", r->where, field, JSON_MAX_ITEMS);
    return -1;
  }
  return n;
}

static gr_status string_list(json_reader *r, const cJSON *arr, const char *field, const char ***out, int *n) {
  gr_status st = GR_OK;
  *n = array_len(r, arr, field, &st);
  if (st) return st;
  const char **v = alloc_items(r, *n, sizeof *v);
  if (!v) return gr_error(GR_ENOMEM, "%s: out of memory", r->where);
  int i = 0;
  for (const cJSON *e = arr->child; e; e = e->next, i++) {
    if (!cJSON_IsString(e)) return gr_error(GR_EFORMAT, "%s: %s[%d] must be a string", r->where, field, i);
    if (!(v[i] = copy_str(r, e->valuestring))) return gr_error(GR_ENOMEM, "%s: out of memory", r->where);
  }
  *out = v;
  return GR_OK;
}

static bool is_integral(double v) { return v == floor(v) && fabs(v) < 9007199254740992.0; }

static gr_status number_list_attr(json_reader *r, const cJSON *arr, const char *field, gr_onnx_attr *at) {
  int n = cJSON_GetArraySize(arr);
  bool ints = true;
  for (const cJSON *e = arr->child; e; e = e->next) {
    if (!cJSON_IsNumber(e)) return gr_error(GR_EFORMAT, "%s: %s mixes numbers and other values", r->where, field);
    ints = ints && is_integral(e->valuedouble);
  }
  at->floats = alloc_items(r, n, sizeof *at->floats);
  at->ints = alloc_items(r, n, sizeof *at->ints);
  if (!at->floats || !at->ints) return gr_error(GR_ENOMEM, "%s: out of memory", r->where);
  int i = 0;
  for (const cJSON *e = arr->child; e; e = e->next, i++) {
    at->floats[i] = (float)e->valuedouble;
    at->ints[i] = ints ? (int64_t)e->valuedouble : 0;
  }
  at->type = ints ? GR_ONNX_ATTR_INTS : GR_ONNX_ATTR_FLOATS;
  at->n_ints = ints ? n : 0;
  at->n_floats = ints ? 0 : n;
  return GR_OK;
}

static gr_status attr_from_json(json_reader *r, const cJSON *v, const char *field, gr_onnx_attr *at) {
  memset(at, 0, sizeof *at);
  if (!(at->name = copy_str(r, v->string))) return gr_error(GR_ENOMEM, "%s: out of memory", r->where);
  if (cJSON_IsNumber(v)) {
    bool integral = is_integral(v->valuedouble);
    at->type = integral ? GR_ONNX_ATTR_INT : GR_ONNX_ATTR_FLOAT;
    at->i = integral ? (int64_t)v->valuedouble : 0;
    at->f = (float)v->valuedouble;
    return GR_OK;
  }
  if (cJSON_IsString(v)) {
    at->type = GR_ONNX_ATTR_STRING;
    at->s = copy_str(r, v->valuestring);
    at->s_len = at->s ? strlen(at->s) : 0;
    return at->s ? GR_OK : gr_error(GR_ENOMEM, "%s: out of memory", r->where);
  }
  int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
  if (n < 0 || n > JSON_MAX_ITEMS) return gr_error(GR_EFORMAT, "%s: %s is not a number, string or array", r->where, field);
  if (n > 0 && cJSON_IsString(v->child)) {
    at->type = GR_ONNX_ATTR_STRINGS;
    return string_list(r, v, field, &at->strings, &at->n_strings);
  }
  return number_list_attr(r, v, field, at);
}

static const cJSON *member(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static gr_status node_from_json(json_reader *r, const cJSON *o, int idx, gr_onnx_node *n) {
  char field[32];
  snprintf(field, sizeof field, "graph.nodes[%d]", idx);
  const cJSON *op = member(o, "op"), *name = member(o, "name"), *attrs = member(o, "attrs");
  if (!cJSON_IsObject(o) || !cJSON_IsString(op) || !cJSON_IsString(name) || (attrs && !cJSON_IsObject(attrs)))
    return gr_error(GR_EFORMAT, "%s: %s must be an object with string \"op\" and \"name\"", r->where, field);
  n->op_type = copy_str(r, op->valuestring);
  n->name = copy_str(r, name->valuestring);
  n->domain = "";
  if (!n->op_type || !n->name) return gr_error(GR_ENOMEM, "%s: out of memory", r->where);
  char sub[200];
  snprintf(sub, sizeof sub, "%s.inputs", field);
  gr_status st = string_list(r, member(o, "inputs"), sub, &n->in, &n->n_in);
  snprintf(sub, sizeof sub, "%s.outputs", field);
  if (!st) st = string_list(r, member(o, "outputs"), sub, &n->out, &n->n_out);
  n->n_attr = attrs ? cJSON_GetArraySize(attrs) : 0;
  if (!st && n->n_attr > 4096) st = gr_error(GR_EFORMAT, "%s: %s has %d attributes", r->where, field, n->n_attr);
  if (!st && !(n->attr = alloc_items(r, n->n_attr, sizeof *n->attr))) st = gr_error(GR_ENOMEM, "%s: out of memory", r->where);
  int k = 0;
  for (const cJSON *v = attrs ? attrs->child : NULL; !st && v; v = v->next, k++) {
    snprintf(sub, sizeof sub, "%s.attrs.%.40s", field, v->string ? v->string : "?");
    st = attr_from_json(r, v, sub, &n->attr[k]);
  }
  return st;
}

static int dtype_from_name(const char *s) {
  for (int dt = 0; dt <= GR_ONNX_BFLOAT16; dt++)
    if (!strcmp(gr_onnx_dtype_name(dt), s)) return dt;
  return -1;
}

static gr_status value_info_from_json(json_reader *r, const cJSON *o, const char *field, gr_onnx_value_info *v) {
  const cJSON *name = member(o, "name"), *dtype = member(o, "dtype"), *shape = member(o, "shape");
  v->elem_type = cJSON_IsString(dtype) ? dtype_from_name(dtype->valuestring) : -1;
  if (!cJSON_IsString(name) || v->elem_type < 0 || !(cJSON_IsNull(shape) || cJSON_IsArray(shape)))
    return gr_error(GR_EFORMAT, "%s: %s needs a string \"name\", a known \"dtype\" and a \"shape\" array or null",
                    r->where, field);
  if (!(v->name = copy_str(r, name->valuestring))) return gr_error(GR_ENOMEM, "%s: out of memory", r->where);
  v->ndim = cJSON_IsNull(shape) ? -1 : cJSON_GetArraySize(shape);
  if (v->ndim > GR_MAX_DIMS) return gr_error(GR_EFORMAT, "%s: %s.shape has %d dims (at most %d)", r->where, field, v->ndim, GR_MAX_DIMS);
  int d = 0;
  for (const cJSON *e = cJSON_IsArray(shape) ? shape->child : NULL; e; e = e->next, d++) {
    if (!cJSON_IsNumber(e) || !is_integral(e->valuedouble) || e->valuedouble < -1)
      return gr_error(GR_EFORMAT, "%s: %s.shape[%d] must be an integer >= -1", r->where, field, d);
    v->dims[d] = (int64_t)e->valuedouble;
  }
  return GR_OK;
}

static gr_status value_infos_from_json(json_reader *r, const cJSON *arr, const char *field, gr_onnx_value_info **out,
                                       int *n) {
  gr_status st = GR_OK;
  *n = array_len(r, arr, field, &st);
  if (st) return st;
  if (!(*out = alloc_items(r, *n, sizeof **out))) return gr_error(GR_ENOMEM, "%s: out of memory", r->where);
  int i = 0;
  for (const cJSON *e = arr->child; !st && e; e = e->next, i++) {
    char sub[64];
    snprintf(sub, sizeof sub, "%s[%d]", field, i);
    st = value_info_from_json(r, e, sub, &(*out)[i]);
  }
  return st;
}

gr_status ox_graph_from_json(const cJSON *graph, const char *where, gr_arena *a, gr_onnx_model *out) {
  json_reader r = {a, where ? where : "config.json"};
  memset(out, 0, sizeof *out);
  if (!cJSON_IsObject(graph)) return gr_error(GR_EFORMAT, "%s: \"graph\" must be an object", r.where);
  const cJSON *opset = member(graph, "opset"), *producer = member(graph, "producer");
  if (!cJSON_IsNumber(opset) || !is_integral(opset->valuedouble) || opset->valuedouble < 1 || opset->valuedouble > 1000)
    return gr_error(GR_EFORMAT, "%s: graph.opset must be an integer in 1..1000", r.where);
  out->opset = (int64_t)opset->valuedouble;
  out->ir_version = 0;
  out->producer_name = copy_str(&r, cJSON_IsString(producer) ? producer->valuestring : "");
  out->graph_name = "";
  gr_status st = out->producer_name ? GR_OK : gr_error(GR_ENOMEM, "%s: out of memory", r.where);
  if (!st) st = value_infos_from_json(&r, member(graph, "inputs"), "graph.inputs", &out->inputs, &out->n_inputs);
  if (!st) st = value_infos_from_json(&r, member(graph, "outputs"), "graph.outputs", &out->outputs, &out->n_outputs);
  const cJSON *nodes = member(graph, "nodes");
  if (!st) out->n_nodes = array_len(&r, nodes, "graph.nodes", &st);
  if (!st && !(out->nodes = alloc_items(&r, out->n_nodes, sizeof *out->nodes)))
    st = gr_error(GR_ENOMEM, "%s: out of memory", r.where);
  int i = 0;
  for (const cJSON *e = st ? NULL : nodes->child; !st && e; e = e->next, i++) st = node_from_json(&r, e, i, &out->nodes[i]);
  out->inits = alloc_items(&r, 0, sizeof *out->inits);
  out->value_info = alloc_items(&r, 0, sizeof *out->value_info);
  if (!st && (!out->inits || !out->value_info)) st = gr_error(GR_ENOMEM, "%s: out of memory", r.where);
  return st;
}
