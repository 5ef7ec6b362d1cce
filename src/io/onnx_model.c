/* io/onnx_model.c — ONNX's schema on top of the wire reader (onnx_pb.c):
 * ModelProto, GraphProto, NodeProto, AttributeProto, ValueInfoProto and
 * TensorProto decoded into the gr_onnx_* structs of graft/onnx.h, field
 * numbers as in onnx.proto (ONNX 1.12). Repeated messages are counted in one
 * pass and filled in a second, so every array is sized by what the bytes
 * hold. Tensor payloads are validated against dims x dtype before they are
 * converted. Running the graph is onnx_exec.c's job. */
#include <stdio.h>
#include <string.h>

#include "graft/onnx.h"
#include "graft/safetensors.h"
#include "io/onnx_pb.h"
#include "io/st_internal.h"

#define WHERE_MAX 192
#define ONNX_MAX_FILE ((size_t)2 << 30) /* protobuf's own 2 GB message limit */

/* A field of the wrong wire type is malformed, whatever its number. */
static gr_status want_wire(const pb_field *f, int wire, const char *where, const char *field) {
  if (f->wire == wire) return GR_OK;
  return gr_error(GR_EFORMAT, "%s.%s: wire type %d, expected %d", where, field, f->wire, wire);
}

/* Number of occurrences of field num in m (m already walked once without error). */
static int count_field(pb_msg m, uint32_t num, const char *where, gr_status *st) {
  pb_field f;
  int n = 0, r;
  while ((r = pb_next(&m, &f, where)) > 0) n += f.num == num;
  if (r < 0) *st = GR_EFORMAT;
  return n;
}

static void *alloc_array(gr_arena *a, int n, size_t size, const char *where, gr_status *st) {
  if (n == 0 || *st) return NULL;
  void *p = gr_arena_alloc(a, (size_t)n * size);
  if (!p) *st = gr_error(GR_ENOMEM, "%s: out of memory for %d entries", where, n);
  return p;
}

/* ---- TensorProto --------------------------------------------------------- */

static int dtype_bytes(int dt) {
  switch (dt) {
  case GR_ONNX_FLOAT: case GR_ONNX_INT32: case GR_ONNX_UINT32: return 4;
  case GR_ONNX_DOUBLE: case GR_ONNX_INT64: case GR_ONNX_UINT64: return 8;
  case GR_ONNX_FLOAT16: case GR_ONNX_BFLOAT16: case GR_ONNX_INT16: case GR_ONNX_UINT16: return 2;
  case GR_ONNX_INT8: case GR_ONNX_UINT8: case GR_ONNX_BOOL: return 1;
  default: return 0;
  }
}

static gr_onnx_kind dtype_kind(int dt) {
  switch (dt) {
  case GR_ONNX_FLOAT: case GR_ONNX_DOUBLE: case GR_ONNX_FLOAT16: case GR_ONNX_BFLOAT16: return GR_ONNX_KIND_F32;
  case GR_ONNX_STRING: case GR_ONNX_COMPLEX64: case GR_ONNX_COMPLEX128: case GR_ONNX_UNDEFINED: return GR_ONNX_KIND_NONE;
  default: return dtype_bytes(dt) ? GR_ONNX_KIND_I64 : GR_ONNX_KIND_NONE;
  }
}

const char *gr_onnx_dtype_name(int dt) {
  static const char *names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING",
                                "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
  return dt >= 0 && dt < (int)(sizeof names / sizeof *names) ? names[dt] : "?";
}

/* One element from `bits` (a raw little-endian element or a typed-field value). */
static void store_elem(gr_onnx_tensor *t, int64_t i, uint64_t bits) {
  switch (t->data_type) {
  case GR_ONNX_FLOAT: { uint32_t u = (uint32_t)bits; memcpy(&t->f32[i], &u, 4); return; }
  case GR_ONNX_DOUBLE: { double d; memcpy(&d, &bits, 8); t->f32[i] = (float)d; return; }
  case GR_ONNX_FLOAT16: t->f32[i] = gr_f16_to_f32((uint16_t)bits); return;
  case GR_ONNX_BFLOAT16: t->f32[i] = gr_bf16_to_f32((uint16_t)bits); return;
  case GR_ONNX_INT8: t->i64[i] = (int8_t)bits; return;
  case GR_ONNX_INT16: t->i64[i] = (int16_t)bits; return;
  case GR_ONNX_INT32: t->i64[i] = (int32_t)bits; return;
  case GR_ONNX_UINT8: t->i64[i] = (uint8_t)bits; return;
  case GR_ONNX_UINT16: t->i64[i] = (uint16_t)bits; return;
  case GR_ONNX_UINT32: t->i64[i] = (uint32_t)bits; return;
  case GR_ONNX_BOOL: t->i64[i] = (bits & 0xff) != 0; return;
  default: t->i64[i] = (int64_t)bits; return;
  }
}

/* Which typed field carries the values of a data type, and its encoding. */
static uint32_t typed_field(int dt, int *wire) {
  *wire = PB_VARINT;
  switch (dt) {
  case GR_ONNX_FLOAT: *wire = PB_FIXED32; return 4;
  case GR_ONNX_DOUBLE: *wire = PB_FIXED64; return 10;
  case GR_ONNX_INT64: return 7;
  case GR_ONNX_UINT32: case GR_ONNX_UINT64: return 11;
  default: return 5; /* int32_data: INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16, BFLOAT16 */
  }
}

static gr_status tensor_dims(gr_onnx_tensor *t, pb_msg m, gr_arena *a, const char *where) {
  uint64_t *dims;
  int64_t n;
  gr_status st = pb_repeated(m, 1, PB_VARINT, a, where, &dims, &n);
  if (st) return st;
  if (n > GR_MAX_DIMS) return gr_error(GR_EUNSUPPORTED, "%s.dims: %lld dims (graft allows %d)", where, (long long)n, GR_MAX_DIMS);
  t->ndim = (int)n;
  t->numel = 1;
  for (int d = 0; d < t->ndim; d++) {
    int64_t v = (int64_t)dims[d];
    if (v < 0) return gr_error(GR_EFORMAT, "%s.dims[%d]: negative dim %lld", where, d, (long long)v);
    t->dims[d] = v;
    if (v && t->numel > GR_MAX_NUMEL / v) return gr_error(GR_EFORMAT, "%s.dims: element count overflows", where);
    t->numel *= v;
  }
  return GR_OK;
}

static gr_status tensor_values(gr_onnx_tensor *t, pb_msg m, const pb_field *raw, gr_arena *a, const char *where) {
  t->kind = dtype_kind(t->data_type);
  if (t->kind == GR_ONNX_KIND_NONE) return GR_OK; /* kept by type only; the executor refuses it */
  int eb = dtype_bytes(t->data_type), wire;
  uint64_t *vals = NULL;
  int64_t have;
  if (raw) {
    if ((uint64_t)raw->len != (uint64_t)t->numel * (uint64_t)eb)
      return gr_error(GR_EFORMAT, "%s.raw_data: %zu bytes, dims x %s need %lld", where, raw->len,
                      gr_onnx_dtype_name(t->data_type), (long long)(t->numel * eb));
    have = t->numel;
  } else {
    uint32_t num = typed_field(t->data_type, &wire);
    gr_status st = pb_repeated(m, num, wire, a, where, &vals, &have);
    if (st) return st;
    if (have != t->numel)
      return gr_error(GR_EFORMAT, "%s: %lld values in field %u, dims say %lld", where, (long long)have, num,
                      (long long)t->numel);
  }
  size_t esz = t->kind == GR_ONNX_KIND_F32 ? sizeof(float) : sizeof(int64_t);
  void *dst = gr_arena_alloc(a, (size_t)(t->numel ? t->numel : 1) * esz);
  if (!dst) return gr_error(GR_ENOMEM, "%s: out of memory for %lld values", where, (long long)t->numel);
  if (t->kind == GR_ONNX_KIND_F32) t->f32 = dst;
  else t->i64 = dst;
  for (int64_t i = 0; i < t->numel; i++) {
    uint64_t bits = 0;
    if (raw) memcpy(&bits, raw->data + i * eb, (size_t)eb); /* little-endian host */
    else bits = vals[i];
    store_elem(t, i, bits);
  }
  return GR_OK;
}

static gr_status parse_tensor(pb_msg m, gr_arena *a, const char *where, gr_onnx_tensor *t) {
  memset(t, 0, sizeof *t);
  t->name = "";
  pb_field f, raw = {0};
  bool has_raw = false;
  int r;
  gr_status st = GR_OK;
  pb_msg it = m;
  while (!st && (r = pb_next(&it, &f, where)) > 0) {
    if (f.num == 2 && !(st = want_wire(&f, PB_VARINT, where, "data_type"))) t->data_type = (int)f.v;
    else if (f.num == 8) st = pb_string(&f, a, where, "name", &t->name);
    else if (f.num == 9 && !(st = want_wire(&f, PB_LEN, where, "raw_data"))) raw = f, has_raw = true;
    else if (f.num == 14 && f.v == 1) st = gr_error(GR_EUNSUPPORTED, "%s: external data is not supported", where);
    else if (f.num == 3) st = gr_error(GR_EUNSUPPORTED, "%s: segmented tensors are not supported", where);
  }
  if (st) return st;
  if (r < 0) return GR_EFORMAT;
  if ((st = tensor_dims(t, m, a, where))) return st;
  return tensor_values(t, m, has_raw ? &raw : NULL, a, where);
}

gr_status gr_onnx_parse_tensor(const void *buf, size_t len, const char *what, gr_arena *a, gr_onnx_tensor *out) {
  if (!buf && len) return gr_error(GR_EARG, "onnx: NULL buffer");
  if (!a || !out) return gr_error(GR_EARG, "onnx: NULL arena or output");
  char where[WHERE_MAX];
  snprintf(where, sizeof where, "%s: TensorProto", what ? what : "<buffer>");
  pb_msg m = {buf, (const uint8_t *)buf + len};
  return parse_tensor(m, a, where, out);
}

gr_status gr_onnx_load_tensor(const char *path, gr_arena *a, gr_onnx_tensor *out) {
  char *buf;
  size_t len;
  gr_status st = st_read_file(path, ONNX_MAX_FILE, &buf, &len);
  if (st) return st;
  st = gr_onnx_parse_tensor(buf, len, path, a, out);
  gr_free(buf);
  return st;
}

/* ---- AttributeProto ------------------------------------------------------ */

static gr_status attr_lists(gr_onnx_attr *at, pb_msg m, gr_arena *a, const char *where) {
  uint64_t *v;
  int64_t n;
  gr_status st = pb_repeated(m, 7, PB_FIXED32, a, where, &v, &n);
  if (st) return st;
  at->n_floats = (int)n;
  at->floats = n ? gr_arena_alloc(a, (size_t)n * sizeof(float)) : NULL;
  if (n && !at->floats) return gr_error(GR_ENOMEM, "%s.floats: out of memory", where);
  for (int64_t i = 0; i < n; i++) {
    uint32_t u = (uint32_t)v[i];
    memcpy(&at->floats[i], &u, 4);
  }
  if ((st = pb_repeated(m, 8, PB_VARINT, a, where, &v, &n))) return st;
  at->n_ints = (int)n;
  at->ints = (int64_t *)v; /* same bits: two's complement int64 */
  return GR_OK;
}

static gr_status attr_field(gr_onnx_attr *at, const pb_field *f, gr_arena *a, const char *where, int *n_str) {
  gr_status st = GR_OK;
  switch (f->num) {
  case 1: return pb_string(f, a, where, "name", &at->name);
  case 20: if (!(st = want_wire(f, PB_VARINT, where, "type"))) at->type = (int)f->v; return st;
  case 2: if (!(st = want_wire(f, PB_FIXED32, where, "f"))) { uint32_t u = (uint32_t)f->v; memcpy(&at->f, &u, 4); } return st;
  case 3: if (!(st = want_wire(f, PB_VARINT, where, "i"))) at->i = (int64_t)f->v; return st;
  case 4: {
    if ((st = want_wire(f, PB_LEN, where, "s"))) return st;
    char *s = gr_arena_alloc(a, f->len + 1);
    if (!s) return gr_error(GR_ENOMEM, "%s.s: out of memory", where);
    memcpy(s, f->data, f->len);
    at->s = s;
    at->s_len = f->len;
    return GR_OK;
  }
  case 5:
    if ((st = want_wire(f, PB_LEN, where, "t"))) return st;
    if (!(at->t = gr_arena_alloc(a, sizeof *at->t))) return gr_error(GR_ENOMEM, "%s.t: out of memory", where);
    return parse_tensor(pb_sub(f), a, where, at->t);
  case 9:
    if ((st = want_wire(f, PB_LEN, where, "strings"))) return st;
    return pb_string(f, a, where, "strings", &at->strings[(*n_str)++]);
  default: return GR_OK; /* g, graphs, tensors, sparse_tensor, doc_string: not decoded */
  }
}

static int attr_infer_type(const gr_onnx_attr *at, bool has[32]) {
  if (has[5]) return GR_ONNX_ATTR_TENSOR;
  if (has[6]) return GR_ONNX_ATTR_GRAPH;
  if (has[4]) return GR_ONNX_ATTR_STRING;
  if (has[2]) return GR_ONNX_ATTR_FLOAT;
  if (has[3]) return GR_ONNX_ATTR_INT;
  if (at->n_floats) return GR_ONNX_ATTR_FLOATS;
  if (at->n_ints) return GR_ONNX_ATTR_INTS;
  if (at->n_strings) return GR_ONNX_ATTR_STRINGS;
  return GR_ONNX_ATTR_UNDEFINED;
}

static gr_status parse_attr(pb_msg m, gr_arena *a, const char *node_where, int idx, gr_onnx_attr *at) {
  char where[WHERE_MAX + 32];
  snprintf(where, sizeof where, "%s.attribute[%d]", node_where, idx);
  memset(at, 0, sizeof *at);
  at->name = "";
  gr_status st = GR_OK;
  int n_str = count_field(m, 9, where, &st);
  at->strings = alloc_array(a, n_str, sizeof *at->strings, where, &st);
  if (st || (st = attr_lists(at, m, a, where))) return st;
  bool has[32] = {0};
  pb_field f;
  int r, k = 0;
  while (!st && (r = pb_next(&m, &f, where)) > 0) {
    if (f.num < 32) has[f.num] = true;
    st = attr_field(at, &f, a, where, &k);
  }
  if (st) return st;
  at->n_strings = k;
  if (!at->name[0]) return gr_error(GR_EFORMAT, "%s: attribute without a name", where);
  if (at->type == GR_ONNX_ATTR_UNDEFINED) at->type = attr_infer_type(at, has);
  return GR_OK;
}

/* ---- NodeProto ----------------------------------------------------------- */

static gr_status parse_node(pb_msg m, gr_arena *a, int idx, gr_onnx_node *n) {
  char where[WHERE_MAX];
  snprintf(where, sizeof where, "NodeProto[%d]", idx);
  memset(n, 0, sizeof *n);
  n->name = n->op_type = n->domain = "";
  gr_status st = GR_OK;
  int cap_in = count_field(m, 1, where, &st), cap_out = count_field(m, 2, where, &st);
  int cap_attr = count_field(m, 5, where, &st);
  n->in = alloc_array(a, cap_in, sizeof *n->in, where, &st);
  n->out = alloc_array(a, cap_out, sizeof *n->out, where, &st);
  n->attr = alloc_array(a, cap_attr, sizeof *n->attr, where, &st);
  pb_msg it = m;
  pb_field f;
  while (!st && pb_next(&it, &f, where) > 0) { /* names first, so messages can name the node */
    if (f.num == 3) st = pb_string(&f, a, where, "name", &n->name);
    else if (f.num == 4) st = pb_string(&f, a, where, "op_type", &n->op_type);
    else if (f.num == 7) st = pb_string(&f, a, where, "domain", &n->domain);
  }
  if (st) return st;
  snprintf(where, sizeof where, "NodeProto[%d] '%s' (%s)", idx, n->name, n->op_type);
  it = m;
  while (!st && pb_next(&it, &f, where) > 0) {
    if (f.num == 1) st = pb_string(&f, a, where, "input", &n->in[n->n_in++]);
    else if (f.num == 2) st = pb_string(&f, a, where, "output", &n->out[n->n_out++]);
    else if (f.num == 5 && !(st = want_wire(&f, PB_LEN, where, "attribute")))
      st = parse_attr(pb_sub(&f), a, where, n->n_attr, &n->attr[n->n_attr]), n->n_attr++;
  }
  if (!st && !n->op_type[0]) st = gr_error(GR_EFORMAT, "%s: node without op_type", where);
  return st;
}

const gr_onnx_attr *gr_onnx_attr_find(const gr_onnx_node *n, const char *name) {
  for (int i = 0; n && i < n->n_attr; i++)
    if (!strcmp(n->attr[i].name, name)) return &n->attr[i];
  return NULL;
}

/* ---- ValueInfoProto ------------------------------------------------------ */

static gr_status parse_shape(pb_msg m, const char *where, gr_onnx_value_info *v) {
  pb_field f, g;
  int r;
  v->ndim = 0;
  while ((r = pb_next(&m, &f, where)) > 0) {
    if (f.num != 1) continue;
    if (f.wire != PB_LEN) return gr_error(GR_EFORMAT, "%s.shape.dim: wire type %d", where, f.wire);
    if (v->ndim == GR_MAX_DIMS) return gr_error(GR_EUNSUPPORTED, "%s.shape: more than %d dims", where, GR_MAX_DIMS);
    int64_t d = -1;
    pb_msg dm = pb_sub(&f);
    while ((r = pb_next(&dm, &g, where)) > 0)
      if (g.num == 1 && g.wire == PB_VARINT) d = (int64_t)g.v < 0 ? -1 : (int64_t)g.v;
    if (r < 0) return GR_EFORMAT;
    v->dims[v->ndim++] = d;
  }
  return r < 0 ? GR_EFORMAT : GR_OK;
}

static gr_status parse_type(pb_msg m, const char *where, gr_onnx_value_info *v) {
  pb_field f, g;
  int r;
  while ((r = pb_next(&m, &f, where)) > 0) {
    if (f.num != 1 || f.wire != PB_LEN) continue; /* sequence, map, optional types: no tensor type */
    pb_msg tm = pb_sub(&f);
    while ((r = pb_next(&tm, &g, where)) > 0) {
      if (g.num == 1 && g.wire == PB_VARINT) v->elem_type = (int)g.v;
      else if (g.num == 2 && g.wire == PB_LEN && parse_shape(pb_sub(&g), where, v)) return GR_EFORMAT;
    }
    if (r < 0) return GR_EFORMAT;
  }
  return r < 0 ? GR_EFORMAT : GR_OK;
}

static gr_status parse_value_info(pb_msg m, gr_arena *a, const char *list, int idx, gr_onnx_value_info *v) {
  char where[WHERE_MAX];
  snprintf(where, sizeof where, "GraphProto.%s[%d]", list, idx);
  memset(v, 0, sizeof *v);
  v->name = "";
  v->ndim = -1;
  pb_field f;
  int r;
  gr_status st = GR_OK;
  while (!st && (r = pb_next(&m, &f, where)) > 0) {
    if (f.num == 1) st = pb_string(&f, a, where, "name", &v->name);
    else if (f.num == 2 && !(st = want_wire(&f, PB_LEN, where, "type"))) st = parse_type(pb_sub(&f), where, v);
  }
  if (st) return st;
  return r < 0 ? GR_EFORMAT : GR_OK;
}

/* ---- GraphProto and ModelProto -------------------------------------------- */

static gr_status graph_alloc(gr_onnx_model *md, pb_msg m, const char *where) {
  gr_status st = GR_OK;
  gr_arena *a = md->arena;
  md->nodes = alloc_array(a, count_field(m, 1, where, &st), sizeof *md->nodes, where, &st);
  md->inits = alloc_array(a, count_field(m, 5, where, &st), sizeof *md->inits, where, &st);
  md->inputs = alloc_array(a, count_field(m, 11, where, &st), sizeof *md->inputs, where, &st);
  md->outputs = alloc_array(a, count_field(m, 12, where, &st), sizeof *md->outputs, where, &st);
  md->value_info = alloc_array(a, count_field(m, 13, where, &st), sizeof *md->value_info, where, &st);
  return st;
}

static gr_status graph_field(gr_onnx_model *md, const pb_field *f, const char *where) {
  gr_arena *a = md->arena;
  char w2[WHERE_MAX];
  if (f->num == 2) return pb_string(f, a, where, "name", &md->graph_name);
  if (f->num == 15) return gr_error(GR_EUNSUPPORTED, "%s: sparse_initializer is not supported", where);
  if (f->num != 1 && f->num != 5 && (f->num < 11 || f->num > 13)) return GR_OK;
  gr_status st = want_wire(f, PB_LEN, where, "node/initializer/input/output/value_info");
  if (st) return st;
  switch (f->num) {
  case 1: st = parse_node(pb_sub(f), a, md->n_nodes, &md->nodes[md->n_nodes]); md->n_nodes++; return st;
  case 5:
    snprintf(w2, sizeof w2, "GraphProto.initializer[%d]", md->n_inits);
    st = parse_tensor(pb_sub(f), a, w2, &md->inits[md->n_inits]);
    md->n_inits++;
    return st;
  case 11: st = parse_value_info(pb_sub(f), a, "input", md->n_inputs, &md->inputs[md->n_inputs]); md->n_inputs++; return st;
  case 12: st = parse_value_info(pb_sub(f), a, "output", md->n_outputs, &md->outputs[md->n_outputs]); md->n_outputs++; return st;
  default:
    st = parse_value_info(pb_sub(f), a, "value_info", md->n_value_info, &md->value_info[md->n_value_info]);
    md->n_value_info++;
    return st;
  }
}

static gr_status parse_graph(gr_onnx_model *md, pb_msg m) {
  const char *where = "GraphProto";
  gr_status st = graph_alloc(md, m, where);
  pb_field f;
  while (!st && pb_next(&m, &f, where) > 0) st = graph_field(md, &f, where);
  return st;
}

static gr_status parse_opset(gr_onnx_model *md, pb_msg m) {
  const char *where = "ModelProto.opset_import";
  pb_field f;
  int r;
  bool default_domain = true;
  int64_t version = 0;
  while ((r = pb_next(&m, &f, where)) > 0) {
    if (f.num == 1 && f.wire == PB_LEN) default_domain = !f.len || (f.len == 7 && !memcmp(f.data, "ai.onnx", 7));
    else if (f.num == 2 && f.wire == PB_VARINT) version = (int64_t)f.v;
  }
  if (r < 0) return GR_EFORMAT;
  if (default_domain) md->opset = version;
  return GR_OK;
}

static gr_status parse_model(gr_onnx_model *md, pb_msg m) {
  const char *where = "ModelProto";
  pb_field f, graph = {0};
  int r;
  gr_status st = GR_OK;
  while (!st && (r = pb_next(&m, &f, where)) > 0) {
    if (f.num == 1 && !(st = want_wire(&f, PB_VARINT, where, "ir_version"))) md->ir_version = (int64_t)f.v;
    else if (f.num == 2) st = pb_string(&f, md->arena, where, "producer_name", &md->producer_name);
    else if (f.num == 7 && !(st = want_wire(&f, PB_LEN, where, "graph"))) graph = f;
    else if (f.num == 8 && !(st = want_wire(&f, PB_LEN, where, "opset_import"))) st = parse_opset(md, pb_sub(&f));
  }
  if (st) return st;
  if (r < 0) return GR_EFORMAT;
  if (!graph.data) return gr_error(GR_EFORMAT, "%s: no graph", where);
  return parse_graph(md, pb_sub(&graph));
}

gr_status gr_onnx_parse(const void *buf, size_t len, const char *what, gr_onnx_model **out) {
  if (!out) return gr_error(GR_EARG, "onnx: NULL output");
  *out = NULL;
  if (!buf && len) return gr_error(GR_EARG, "onnx: NULL buffer");
  gr_onnx_model *md = gr_calloc(1, sizeof *md);
  gr_arena *a = md ? gr_arena_new((len < ((size_t)64 << 20) ? len : ((size_t)64 << 20)) + 4096) : NULL;
  if (!a) {
    gr_free(md);
    return gr_error(GR_ENOMEM, "onnx: out of memory");
  }
  md->arena = a;
  md->producer_name = md->graph_name = "";
  gr_status st = parse_model(md, (pb_msg){buf, (const uint8_t *)buf + len});
  if (st) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", gr_last_error());
    gr_onnx_free(md);
    return gr_error(st, "%s: %s", what ? what : "<buffer>", msg);
  }
  *out = md;
  return GR_OK;
}

gr_status gr_onnx_load(const char *path, gr_onnx_model **out) {
  if (!path || !out) return gr_error(GR_EARG, "onnx: NULL path or output");
  *out = NULL;
  char *buf;
  size_t len;
  gr_status st = st_read_file(path, ONNX_MAX_FILE, &buf, &len);
  if (st) return st;
  st = gr_onnx_parse(buf, len, path, out);
  gr_free(buf);
  return st;
}

void gr_onnx_free(gr_onnx_model *m) {
  if (!m) return;
  gr_arena_free(m->arena);
  gr_free(m);
}
