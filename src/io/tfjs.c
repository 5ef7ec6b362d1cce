/* io/tfjs.c — TF.js layers models in (`graft import model.json`): the Keras
 * topology in model.json and the binary weights its manifest describes,
 * converted to the same graph form as an ONNX import (gr_onnx_model, NCHW),
 * so the executor, model directories and fine-tuning are shared.
 *
 * Untrusted input: model.json is parsed with cJSON and every field used is
 * type-checked; every manifest entry's size is computed with overflow checks
 * and must lie inside the weight bytes, which must be used exactly (a
 * truncated or padded weights file is GR_EFORMAT naming both sizes).
 * Quantized weights (uint8/uint16 affine: w = min + scale*q; float16) are
 * dequantized to f32 here. The layer conversions are in tfjs_layers.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graft/fileio.h"
#include "io/tfjs_internal.h"

#define TFJS_MAX_JSON ((size_t)64 << 20)
#define TFJS_MAX_WEIGHTS ((size_t)1 << 31)

/* ---- small builders --------------------------------------------------------- */

const char *tf_strdup(tf_build *b, const char *s) {
  size_t n = strlen(s);
  char *d = gr_arena_alloc(b->m->arena, n + 1);
  if (d) memcpy(d, s, n + 1);
  else gr_error(GR_ENOMEM, "%s: out of memory", b->what);
  return d;
}

gr_onnx_node *tf_node(tf_build *b, const char *op, const char *name, int n_in, const char *const *in,
                      const char *out) {
  gr_onnx_model *m = b->m;
  if (m->n_nodes == b->cap_nodes) {
    int nc = b->cap_nodes ? 2 * b->cap_nodes : 64;
    gr_onnx_node *nn = gr_arena_alloc(m->arena, (size_t)nc * sizeof *nn);
    if (!nn) return gr_error(GR_ENOMEM, "%s: out of memory", b->what), NULL;
    if (m->n_nodes) memcpy(nn, m->nodes, (size_t)m->n_nodes * sizeof *nn);
    m->nodes = nn, b->cap_nodes = nc;
  }
  gr_onnx_node *n = &m->nodes[m->n_nodes];
  memset(n, 0, sizeof *n);
  n->op_type = op, n->domain = "";
  n->name = tf_strdup(b, name);
  n->in = gr_arena_alloc(m->arena, (size_t)(n_in + 1) * sizeof *n->in);
  n->out = gr_arena_alloc(m->arena, 2 * sizeof *n->out);
  n->attr = gr_arena_alloc(m->arena, 8 * sizeof *n->attr);
  if (!n->name || !n->in || !n->out || !n->attr) return gr_error(GR_ENOMEM, "%s: out of memory", b->what), NULL;
  for (int k = 0; k < n_in; k++)
    if (!(n->in[k] = tf_strdup(b, in[k]))) return NULL;
  if (!(n->out[0] = tf_strdup(b, out))) return NULL;
  n->n_in = n_in, n->n_out = 1;
  m->n_nodes++;
  return n;
}

static gr_onnx_attr *new_attr(tf_build *b, gr_onnx_node *n, const char *name, int type) {
  if (n->n_attr >= 8) return gr_error(GR_EARG, "%s: layer '%s': too many attributes", b->what, b->layer), NULL;
  gr_onnx_attr *a = &n->attr[n->n_attr++];
  memset(a, 0, sizeof *a);
  a->name = name, a->type = type;
  return a;
}

gr_status tf_attr_int(tf_build *b, gr_onnx_node *n, const char *name, int64_t v) {
  gr_onnx_attr *a = new_attr(b, n, name, GR_ONNX_ATTR_INT);
  if (!a) return gr_last_status();
  a->i = v;
  return GR_OK;
}

gr_status tf_attr_float(tf_build *b, gr_onnx_node *n, const char *name, float v) {
  gr_onnx_attr *a = new_attr(b, n, name, GR_ONNX_ATTR_FLOAT);
  if (!a) return gr_last_status();
  a->f = v;
  return GR_OK;
}

gr_status tf_attr_ints(tf_build *b, gr_onnx_node *n, const char *name, int count, const int64_t *v) {
  gr_onnx_attr *a = new_attr(b, n, name, GR_ONNX_ATTR_INTS);
  int64_t *d = a ? gr_arena_alloc(b->m->arena, (size_t)(count + 1) * sizeof *d) : NULL;
  if (!d) return a ? gr_error(GR_ENOMEM, "%s: out of memory", b->what) : gr_last_status();
  memcpy(d, v, (size_t)count * sizeof *d);
  a->ints = d, a->n_ints = count;
  return GR_OK;
}

gr_status tf_attr_str(tf_build *b, gr_onnx_node *n, const char *name, const char *v) {
  gr_onnx_attr *a = new_attr(b, n, name, GR_ONNX_ATTR_STRING);
  if (!a) return gr_last_status();
  a->s = v, a->s_len = strlen(v);
  return GR_OK;
}

gr_onnx_tensor *tf_init(tf_build *b, const char *name, int ndim, const int64_t *dims) {
  gr_onnx_model *m = b->m;
  if (m->n_inits == b->cap_inits) {
    int nc = b->cap_inits ? 2 * b->cap_inits : 64;
    gr_onnx_tensor *nt = gr_arena_alloc(m->arena, (size_t)nc * sizeof *nt);
    if (!nt) return gr_error(GR_ENOMEM, "%s: out of memory", b->what), NULL;
    if (m->n_inits) memcpy(nt, m->inits, (size_t)m->n_inits * sizeof *nt);
    m->inits = nt, b->cap_inits = nc;
  }
  gr_onnx_tensor *t = &m->inits[m->n_inits];
  memset(t, 0, sizeof *t);
  t->name = tf_strdup(b, name);
  t->data_type = GR_ONNX_FLOAT, t->kind = GR_ONNX_KIND_F32, t->ndim = ndim, t->numel = 1;
  for (int d = 0; d < ndim; d++) t->dims[d] = dims[d], t->numel *= dims[d];
  t->f32 = gr_arena_alloc(m->arena, (size_t)(t->numel + 1) * sizeof *t->f32);
  if (!t->name || !t->f32) return gr_error(GR_ENOMEM, "%s: out of memory", b->what), NULL;
  memset(t->f32, 0, (size_t)t->numel * sizeof *t->f32);
  m->n_inits++;
  return t;
}

const tf_weight *tf_weight_find(tf_build *b, const char *layer, const char *param) {
  size_t ll = strlen(layer), pl = strlen(param);
  for (int i = 0; i < b->n_w; i++) {
    const char *n = b->w[i].name;
    size_t nl = strlen(n);
    /* "<layer>/<param>", possibly under a model-name scope ("model/<layer>/<param>") */
    if (nl < ll + pl + 1 || strcmp(n + nl - pl, param) || n[nl - pl - 1] != '/') continue;
    const char *lp = n + nl - pl - 1 - ll;
    if (!strncmp(lp, layer, ll) && (lp == n || lp[-1] == '/')) return &b->w[i];
  }
  gr_error(GR_EFORMAT, "%s: layer '%s' needs weight '%s/%s', which the manifest lacks", b->what, layer, layer, param);
  return NULL;
}

gr_status tf_rank_set(tf_build *b, const char *value, int rank) {
  if (b->n_v == b->cap_v) {
    int nc = b->cap_v ? 2 * b->cap_v : 64;
    const char **nn = gr_arena_alloc(b->m->arena, (size_t)nc * sizeof *nn);
    int *nr = gr_arena_alloc(b->m->arena, (size_t)nc * sizeof *nr);
    if (!nn || !nr) return gr_error(GR_ENOMEM, "%s: out of memory", b->what);
    if (b->n_v) memcpy(nn, b->vnames, (size_t)b->n_v * sizeof *nn), memcpy(nr, b->vranks, (size_t)b->n_v * sizeof *nr);
    b->vnames = nn, b->vranks = nr, b->cap_v = nc;
  }
  b->vnames[b->n_v] = tf_strdup(b, value);
  b->vranks[b->n_v++] = rank;
  return b->vnames[b->n_v - 1] ? GR_OK : GR_ENOMEM;
}

int tf_rank(const tf_build *b, const char *value) {
  for (int i = b->n_v - 1; i >= 0; i--)
    if (!strcmp(b->vnames[i], value)) return b->vranks[i];
  return -1;
}

/* ---- the weights manifest ------------------------------------------------------ */

static const cJSON *member(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static float half_to_float(uint16_t h) {
  int e = (h >> 10) & 31, f = h & 1023;
  float v = e == 0 ? ldexpf((float)f, -24) : e == 31 ? (f ? NAN : INFINITY) : ldexpf((float)(f | 1024), e - 25);
  return (h & 0x8000) ? -v : v;
}

typedef struct tf_quant {
  int bytes;          /* per element in the file */
  int kind;           /* 0 float32, 1 int32, 2 uint8, 3 uint16, 4 float16 */
  float min, scale;
} tf_quant;

static gr_status entry_quant(tf_build *b, const cJSON *e, const char *name, tf_quant *q) {
  const cJSON *dtype = member(e, "dtype"), *qz = member(e, "quantization");
  memset(q, 0, sizeof *q);
  if (!cJSON_IsString(dtype) || (strcmp(dtype->valuestring, "float32") && strcmp(dtype->valuestring, "int32")))
    return gr_error(GR_EUNSUPPORTED, "%s: weight '%s': dtype must be \"float32\" or \"int32\"", b->what, name);
  q->kind = strcmp(dtype->valuestring, "float32") ? 1 : 0;
  q->bytes = 4;
  if (!qz) return GR_OK;
  const cJSON *qd = member(qz, "dtype"), *mn = member(qz, "min"), *sc = member(qz, "scale");
  if (!cJSON_IsString(qd)) return gr_error(GR_EFORMAT, "%s: weight '%s': quantization.dtype missing", b->what, name);
  if (!strcmp(qd->valuestring, "float16")) {
    q->kind = 4, q->bytes = 2;
    return GR_OK;
  }
  bool u8 = !strcmp(qd->valuestring, "uint8");
  if (!u8 && strcmp(qd->valuestring, "uint16"))
    return gr_error(GR_EUNSUPPORTED, "%s: weight '%s': quantization dtype '%s'", b->what, name, qd->valuestring);
  if (!cJSON_IsNumber(mn) || !cJSON_IsNumber(sc) || !isfinite(mn->valuedouble) || !isfinite(sc->valuedouble))
    return gr_error(GR_EFORMAT, "%s: weight '%s': quantization needs finite \"min\" and \"scale\"", b->what, name);
  q->kind = u8 ? 2 : 3, q->bytes = u8 ? 1 : 2;
  q->min = (float)mn->valuedouble, q->scale = (float)sc->valuedouble;
  return GR_OK;
}

static void decode_values(const tf_quant *q, const uint8_t *p, int64_t n, float *out) {
  for (int64_t i = 0; i < n; i++, p += q->bytes) {
    switch (q->kind) {
    case 0: { uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
              memcpy(&out[i], &u, 4); break; }
    case 1: { uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
              out[i] = (float)(int32_t)u; break; }
    case 2: out[i] = q->min + q->scale * (float)p[0]; break;
    case 3: out[i] = q->min + q->scale * (float)(p[0] | p[1] << 8); break;
    default: out[i] = half_to_float((uint16_t)(p[0] | p[1] << 8)); break;
    }
  }
}

static gr_status read_entry(tf_build *b, const cJSON *e, const uint8_t *wb, size_t wlen, size_t *off, tf_weight *w) {
  const cJSON *name = member(e, "name"), *shape = member(e, "shape");
  if (!cJSON_IsString(name) || !cJSON_IsArray(shape))
    return gr_error(GR_EFORMAT, "%s: a weightsManifest entry needs a string \"name\" and a \"shape\" array", b->what);
  w->name = tf_strdup(b, name->valuestring);
  w->ndim = cJSON_GetArraySize(shape);
  if (!w->name) return GR_ENOMEM;
  if (w->ndim > GR_MAX_DIMS) return gr_error(GR_EFORMAT, "%s: weight '%s' has %d dims", b->what, w->name, w->ndim);
  w->numel = 1;
  int d = 0;
  for (const cJSON *v = shape->child; v; v = v->next, d++) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e9 || v->valuedouble != floor(v->valuedouble))
      return gr_error(GR_EFORMAT, "%s: weight '%s': shape[%d] is not a size", b->what, w->name, d);
    w->dims[d] = (int64_t)v->valuedouble;
    if (w->dims[d] && w->numel > INT64_MAX / 8 / w->dims[d])
      return gr_error(GR_EFORMAT, "%s: weight '%s' is absurdly large", b->what, w->name);
    w->numel *= w->dims[d];
  }
  tf_quant q;
  gr_status st = entry_quant(b, e, w->name, &q);
  if (st) return st;
  uint64_t bytes = (uint64_t)w->numel * (uint64_t)q.bytes;
  if (bytes > wlen - *off)
    return gr_error(GR_EFORMAT, "%s: weight '%s' needs %llu bytes at offset %zu, the weights hold %zu", b->what, w->name,
                    (unsigned long long)bytes, *off, wlen);
  float *v = gr_arena_alloc(b->m->arena, (size_t)(w->numel + 1) * sizeof *v);
  if (!v) return gr_error(GR_ENOMEM, "%s: out of memory for weight '%s'", b->what, w->name);
  decode_values(&q, wb + *off, w->numel, v);
  w->values = v;
  *off += (size_t)bytes;
  return GR_OK;
}

static gr_status read_manifest(tf_build *b, const cJSON *man, const uint8_t *wb, size_t wlen) {
  if (!cJSON_IsArray(man)) return gr_error(GR_EFORMAT, "%s: \"weightsManifest\" must be an array", b->what);
  int n = 0;
  for (const cJSON *g = man->child; g; g = g->next) {
    const cJSON *ws = member(g, "weights");
    if (!cJSON_IsArray(ws)) return gr_error(GR_EFORMAT, "%s: a weightsManifest group lacks a \"weights\" array", b->what);
    n += cJSON_GetArraySize(ws);
  }
  b->w = gr_arena_alloc(b->m->arena, (size_t)(n + 1) * sizeof *b->w);
  if (!b->w) return gr_error(GR_ENOMEM, "%s: out of memory", b->what);
  size_t off = 0;
  gr_status st = GR_OK;
  for (const cJSON *g = man->child; g && !st; g = g->next)
    for (const cJSON *e = member(g, "weights")->child; e && !st; e = e->next) st = read_entry(b, e, wb, wlen, &off, &b->w[b->n_w++]);
  if (!st && off != wlen)
    st = gr_error(GR_EFORMAT, "%s: the manifest describes %zu weight bytes, the weight files hold %zu", b->what, off, wlen);
  return st;
}

/* ---- topology ---------------------------------------------------------------- */

#define TF_MAX_INBOUND 16

/* The values a functional-model layer reads: inbound_nodes = [[[name, node,
 * tensor, kwargs], ...]] (Keras 2 layout, one call per layer). */
static gr_status inbound_names(tf_build *b, const cJSON *layer, const char **in, int *n_in) {
  const cJSON *nodes = member(layer, "inbound_nodes");
  *n_in = 0;
  if (!cJSON_IsArray(nodes)) return gr_error(GR_EFORMAT, "%s: layer '%s': \"inbound_nodes\" must be an array", b->what, b->layer);
  int calls = cJSON_GetArraySize(nodes);
  if (calls == 0) return GR_OK;
  if (calls > 1) return gr_error(GR_EUNSUPPORTED, "%s: layer '%s' is called %d times (shared layers are not supported)", b->what, b->layer, calls);
  const cJSON *call = nodes->child;
  if (!cJSON_IsArray(call))
    return gr_error(GR_EUNSUPPORTED, "%s: layer '%s': inbound_nodes in a layout other than Keras 2's [[name, 0, 0, {}]]", b->what, b->layer);
  for (const cJSON *e = call->child; e; e = e->next) {
    const cJSON *nm = cJSON_IsArray(e) ? e->child : NULL, *ti = nm ? nm->next ? nm->next->next : NULL : NULL;
    if (!cJSON_IsString(nm) || (ti && (!cJSON_IsNumber(ti) || ti->valuedouble != 0)))
      return gr_error(GR_EFORMAT, "%s: layer '%s': an inbound entry must be [\"name\", node, 0, {}]", b->what, b->layer);
    if (*n_in == TF_MAX_INBOUND) return gr_error(GR_EUNSUPPORTED, "%s: layer '%s' has more than %d inputs", b->what, b->layer, TF_MAX_INBOUND);
    in[(*n_in)++] = nm->valuestring;
  }
  return GR_OK;
}

/* InputLayer: the graph input, NCHW with symbolic H and W (convolutions do
 * not fix them); the Keras size is kept as a value_info hint (default size). */
static gr_status input_layer(tf_build *b, const cJSON *cfg) {
  const cJSON *shape = member(cfg, "batch_input_shape");
  int n = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : 0;
  gr_onnx_model *m = b->m;
  if (m->n_inputs) return gr_error(GR_EUNSUPPORTED, "%s: more than one InputLayer", b->what);
  if (n != 4 && n != 2) return gr_error(GR_EUNSUPPORTED, "%s: InputLayer '%s': batch_input_shape must be [null,H,W,C] or [null,D]", b->what, b->layer);
  int64_t d[4] = {-1, -1, -1, -1};
  int i = 0;
  for (const cJSON *e = shape->child; e; e = e->next, i++)
    d[i] = cJSON_IsNumber(e) && e->valuedouble >= 1 && e->valuedouble <= 65536 ? (int64_t)e->valuedouble : -1;
  gr_onnx_value_info *in = gr_arena_alloc(m->arena, sizeof *in), *hint = gr_arena_alloc(m->arena, sizeof *hint);
  if (!in || !hint) return gr_error(GR_ENOMEM, "%s: out of memory", b->what);
  memset(in, 0, sizeof *in);
  in->name = tf_strdup(b, b->layer);
  in->elem_type = GR_ONNX_FLOAT;
  in->ndim = n;
  if (n == 4) in->dims[0] = -1, in->dims[1] = d[3], in->dims[2] = -1, in->dims[3] = -1;
  else in->dims[0] = -1, in->dims[1] = d[1];
  *hint = *in;
  if (n == 4) hint->dims[2] = d[1], hint->dims[3] = d[2];
  m->inputs = in, m->n_inputs = 1;
  m->value_info = hint, m->n_value_info = 1;
  return in->name ? tf_rank_set(b, b->layer, n) : GR_ENOMEM;
}

static gr_status one_layer(tf_build *b, const cJSON *layer, bool sequential, const char *prev) {
  const cJSON *name = member(layer, "name"), *cls = member(layer, "class_name"), *cfg = member(layer, "config");
  if (!cJSON_IsString(cls) || !cJSON_IsObject(cfg))
    return gr_error(GR_EFORMAT, "%s: a layer needs \"class_name\" and a \"config\" object", b->what);
  if (!cJSON_IsString(name)) name = member(cfg, "name");
  if (!cJSON_IsString(name) || !name->valuestring[0] || strlen(name->valuestring) >= sizeof b->layer)
    return gr_error(GR_EFORMAT, "%s: a %s layer has no usable name", b->what, cls->valuestring);
  snprintf(b->layer, sizeof b->layer, "%s", name->valuestring);
  if (!strcmp(cls->valuestring, "InputLayer")) return input_layer(b, cfg);
  const char *in[TF_MAX_INBOUND];
  int n_in = 0;
  gr_status st = GR_OK;
  if (!sequential) st = inbound_names(b, layer, in, &n_in);
  else if (prev) in[n_in++] = prev;
  if (!st && n_in == 0) st = gr_error(GR_EUNSUPPORTED, "%s: layer '%s' has no input (a Sequential model needs an InputLayer or batch_input_shape)", b->what, b->layer);
  for (int k = 0; !st && k < n_in; k++)
    if (tf_rank(b, in[k]) < 0) st = gr_error(GR_EFORMAT, "%s: layer '%s' reads '%s', which no earlier layer produces", b->what, b->layer, in[k]);
  return st ? st : tf_convert_layer(b, layer, n_in, in);
}

static gr_status set_output(tf_build *b, const char *name) {
  gr_onnx_model *m = b->m;
  gr_onnx_value_info *out = gr_arena_alloc(m->arena, sizeof *out);
  if (!out) return gr_error(GR_ENOMEM, "%s: out of memory", b->what);
  memset(out, 0, sizeof *out);
  out->name = tf_strdup(b, name);
  out->elem_type = GR_ONNX_FLOAT;
  out->ndim = -1;
  m->outputs = out, m->n_outputs = 1;
  return out->name ? GR_OK : GR_ENOMEM;
}

static gr_status read_topology(tf_build *b, const cJSON *topo) {
  const cJSON *mc = member(topo, "model_config");
  if (mc) topo = mc;
  const cJSON *cls = member(topo, "class_name"), *cfg = member(topo, "config");
  if (!cJSON_IsString(cls)) return gr_error(GR_EFORMAT, "%s: modelTopology has no \"class_name\"", b->what);
  bool seq = !strcmp(cls->valuestring, "Sequential");
  if (!seq && strcmp(cls->valuestring, "Model") && strcmp(cls->valuestring, "Functional"))
    return gr_error(GR_EUNSUPPORTED, "%s: model class '%s' (Model, Functional or Sequential)", b->what, cls->valuestring);
  const cJSON *layers = cJSON_IsArray(cfg) ? cfg : member(cfg, "layers");
  if (!cJSON_IsArray(layers) || !layers->child) return gr_error(GR_EFORMAT, "%s: the model has no \"layers\" array", b->what);
  const char *prev = NULL;
  gr_status st = GR_OK;
  for (const cJSON *l = layers->child; l && !st; l = l->next) {
    st = one_layer(b, l, seq, prev);
    prev = b->layer;
    if (!st && !(prev = tf_strdup(b, b->layer))) st = GR_ENOMEM;
  }
  if (st) return st;
  if (!b->m->n_inputs) return gr_error(GR_EFORMAT, "%s: no InputLayer", b->what);
  const cJSON *outs = seq ? NULL : member(cfg, "output_layers");
  if (!seq && (!cJSON_IsArray(outs) || cJSON_GetArraySize(outs) != 1 || !cJSON_IsArray(outs->child) ||
               !cJSON_IsString(outs->child->child)))
    return gr_error(GR_EUNSUPPORTED, "%s: \"output_layers\" must name exactly one layer", b->what);
  return set_output(b, seq ? prev : outs->child->child->valuestring);
}

/* ---- entry points ----------------------------------------------------------- */

gr_status gr_tfjs_parse(const char *json, size_t len, const void *weights, size_t wlen, const char *what,
                        gr_onnx_model **out) {
  if (!out) return gr_error(GR_EARG, "tfjs: NULL output");
  *out = NULL;
  if (!json || (!weights && wlen)) return gr_error(GR_EARG, "tfjs: NULL buffer");
  tf_build b = {0};
  b.what = what ? what : "<model.json>";
  gr_onnx_model *m = gr_calloc(1, sizeof *m);
  if (m) m->arena = gr_arena_new(wlen * 4 + len + 65536);
  if (!m || !m->arena) {
    gr_free(m);
    return gr_error(GR_ENOMEM, "%s: out of memory", b.what);
  }
  m->producer_name = "tfjs-layers", m->graph_name = "", m->opset = 10;
  b.m = m;
  cJSON *root = cJSON_ParseWithLength(json, len);
  gr_status st = cJSON_IsObject(root) ? GR_OK : gr_error(GR_EFORMAT, "%s: not a JSON object", b.what);
  if (!st) st = read_manifest(&b, member(root, "weightsManifest"), weights, wlen);
  const cJSON *topo = st ? NULL : member(root, "modelTopology");
  if (!st && !cJSON_IsObject(topo)) st = gr_error(GR_EFORMAT, "%s: \"modelTopology\" must be an object", b.what);
  if (!st) st = read_topology(&b, topo);
  cJSON_Delete(root);
  if (st) {
    gr_onnx_free(m);
    return st;
  }
  *out = m;
  return GR_OK;
}

/* Concatenates the manifest's weight files (paths relative to model.json). */
static gr_status read_weight_files(const char *path, const char *json, size_t len, uint8_t **buf, size_t *n) {
  *buf = NULL, *n = 0;
  cJSON *root = cJSON_ParseWithLength(json, len);
  const cJSON *man = cJSON_IsObject(root) ? member(root, "weightsManifest") : NULL;
  gr_status st = cJSON_IsArray(man) ? GR_OK : gr_error(GR_EFORMAT, "%s: no \"weightsManifest\" array", path);
  const char *slash = strrchr(path, '/');
  int dir_len = slash ? (int)(slash - path) : 1;
  const char *dir = slash ? path : ".";
  for (const cJSON *g = st ? NULL : man->child; g && !st; g = g->next) {
    const cJSON *paths = member(g, "paths");
    if (!cJSON_IsArray(paths)) st = gr_error(GR_EFORMAT, "%s: a weightsManifest group lacks \"paths\"", path);
    for (const cJSON *p = st ? NULL : paths->child; p && !st; p = p->next) {
      if (!cJSON_IsString(p) || strstr(p->valuestring, "..") || p->valuestring[0] == '/') {
        st = gr_error(GR_EFORMAT, "%s: weight paths must be plain relative file names", path);
        break;
      }
      char file[4096];
      char *part = NULL;
      size_t plen = 0;
      snprintf(file, sizeof file, "%.*s/%s", dir_len, dir, p->valuestring);
      st = gr_read_file(file, TFJS_MAX_WEIGHTS, &part, &plen);
      uint8_t *nb = st ? NULL : gr_malloc(*n + plen + 1);
      if (!st && !nb) st = gr_error(GR_ENOMEM, "%s: out of memory", file);
      if (!st) {
        if (*n) memcpy(nb, *buf, *n);
        memcpy(nb + *n, part, plen);
        gr_free(*buf);
        *buf = nb, *n += plen;
      }
      gr_free(part);
    }
  }
  cJSON_Delete(root);
  return st;
}

gr_status gr_tfjs_load(const char *path, gr_onnx_model **out) {
  if (!path || !out) return gr_error(GR_EARG, "tfjs: NULL path or output");
  *out = NULL;
  char *json = NULL;
  size_t len = 0;
  uint8_t *w = NULL;
  size_t wlen = 0;
  gr_status st = gr_read_file(path, TFJS_MAX_JSON, &json, &len);
  if (!st) st = read_weight_files(path, json, len, &w, &wlen);
  if (!st) st = gr_tfjs_parse(json, len, w, wlen, path, out);
  gr_free(json);
  gr_free(w);
  return st;
}
