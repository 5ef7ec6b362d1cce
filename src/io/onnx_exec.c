/* io/onnx_exec.c — runs a parsed ONNX graph on graft ops: the value table
 * (name -> value, open addressing in the step arena), feeding the graph
 * inputs, the node loop in file order (ONNX requires topological order; a
 * use before definition is an error naming the node and the value), the
 * up-front check that lists unsupported ops, and the helpers op
 * implementations use to read inputs/attributes and set outputs. The ops
 * themselves are in onnx_ops.c and onnx_ops_nn.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graft/rng.h"
#include "io/onnx_exec.h"

/* ---- value table -------------------------------------------------------- */

typedef struct ox_table {
  const char **names;
  ox_val *vals;
  size_t cap; /* power of two */
} ox_table;

static uint64_t name_hash(const char *s) { return gr_fnv1a(GR_FNV1A_OFFSET, s, strlen(s)); }

/* Slot of name: existing or the empty one where it would go. */
static size_t table_slot(const ox_table *t, const char *name) {
  size_t i = name_hash(name) & (t->cap - 1);
  while (t->names[i] && strcmp(t->names[i], name)) i = (i + 1) & (t->cap - 1);
  return i;
}

static ox_val *table_get(const ox_table *t, const char *name) {
  size_t i = table_slot(t, name);
  return t->names[i] ? &t->vals[i] : NULL;
}

/* A new entry; NULL when the name is already defined. */
static ox_val *table_add(ox_table *t, const char *name) {
  size_t i = table_slot(t, name);
  if (t->names[i]) return NULL;
  t->names[i] = name;
  return &t->vals[i];
}

static gr_status table_init(gr_ctx *c, const gr_onnx_model *m, int n_bind, ox_table *t) {
  size_t n = (size_t)m->n_inits + (size_t)m->n_inputs + (size_t)n_bind + 1;
  for (int i = 0; i < m->n_nodes; i++) n += (size_t)m->nodes[i].n_out;
  t->cap = 16;
  while (t->cap < 2 * n) t->cap *= 2;
  t->names = gr_arena_alloc(gr_ctx_arena(c), t->cap * sizeof *t->names);
  t->vals = gr_arena_alloc(gr_ctx_arena(c), t->cap * sizeof *t->vals);
  if (!t->names || !t->vals) return gr_error(GR_ENOMEM, "onnx: out of memory for %zu values", n);
  return GR_OK;
}

/* ---- constants and feeds ------------------------------------------------- */

/* Wraps a decoded tensor as a value without copying its data. */
static gr_status val_from_tensor(gr_ctx *c, const gr_onnx_tensor *src, const char *where, ox_val *v) {
  memset(v, 0, sizeof *v);
  if (src->kind == GR_ONNX_KIND_I64) {
    v->kind = GR_ONNX_KIND_I64;
    v->ndim = src->ndim;
    memcpy(v->dims, src->dims, sizeof v->dims);
    v->numel = src->numel;
    v->i = src->i64;
    return GR_OK;
  }
  if (src->kind != GR_ONNX_KIND_F32)
    return gr_error(GR_EUNSUPPORTED, "%s: tensor '%s' of type %s is not supported", where, src->name,
                    gr_onnx_dtype_name(src->data_type));
  gr_tensor *t = gr_arena_alloc(gr_ctx_arena(c), sizeof *t);
  if (!t) return gr_error(GR_ENOMEM, "%s: out of memory", where);
  t->ndim = src->ndim;
  memcpy(t->shape, src->dims, sizeof t->shape);
  t->numel = src->numel;
  t->data = src->f32;
  t->name = src->name;
  v->kind = GR_ONNX_KIND_F32;
  v->t = t;
  return GR_OK;
}

static bool is_initializer(const gr_onnx_model *m, const char *name) {
  for (int i = 0; i < m->n_inits; i++)
    if (!strcmp(m->inits[i].name, name)) return true;
  return false;
}

int gr_onnx_n_feeds(const gr_onnx_model *m) {
  int n = 0;
  for (int i = 0; m && i < m->n_inputs; i++) n += !is_initializer(m, m->inputs[i].name);
  return n;
}

const gr_onnx_value_info *gr_onnx_feed(const gr_onnx_model *m, int k) {
  for (int i = 0; m && i < m->n_inputs; i++)
    if (!is_initializer(m, m->inputs[i].name) && k-- == 0) return &m->inputs[i];
  return NULL;
}

static bool is_integer_type(int dt) {
  return dt == GR_ONNX_INT64 || dt == GR_ONNX_INT32 || dt == GR_ONNX_INT16 || dt == GR_ONNX_INT8 ||
         dt == GR_ONNX_UINT8 || dt == GR_ONNX_UINT16 || dt == GR_ONNX_UINT32 || dt == GR_ONNX_BOOL;
}

/* An integer-typed graph input arrives as f32 holding integers (exact below
 * 2^24) and continues as an int64 value. */
static gr_status feed_integer(gr_ctx *c, const gr_onnx_value_info *vi, const gr_tensor *x, ox_val *v) {
  int64_t *d = gr_arena_alloc(gr_ctx_arena(c), (size_t)(x->numel ? x->numel : 1) * sizeof *d);
  if (!d) return gr_error(GR_ENOMEM, "onnx: input '%s': out of memory", vi->name);
  for (int64_t j = 0; j < x->numel; j++) {
    float f = x->data[j];
    if (!(f == floorf(f)) || fabsf(f) > 16777216.0f)
      return gr_error(GR_EARG, "onnx: input '%s' is %s but element %lld is %g", vi->name,
                      gr_onnx_dtype_name(vi->elem_type), (long long)j, f);
    d[j] = (int64_t)f;
  }
  memset(v, 0, sizeof *v);
  v->kind = GR_ONNX_KIND_I64;
  v->ndim = x->ndim;
  memcpy(v->dims, x->shape, sizeof v->dims);
  v->numel = x->numel;
  v->i = d;
  return GR_OK;
}

static gr_status feed_one(gr_ctx *c, const gr_onnx_value_info *vi, gr_tensor *x, ox_val *v) {
  char a[96], b[96];
  if (!x) return gr_error(GR_EARG, "onnx: input '%s' is NULL", vi->name);
  if (vi->ndim >= 0) {
    bool ok = vi->ndim == x->ndim;
    for (int d = 0; ok && d < x->ndim; d++) ok = vi->dims[d] < 0 || vi->dims[d] == x->shape[d];
    if (!ok)
      return gr_error(GR_ESHAPE, "onnx: input '%s' declared %s, got %s", vi->name,
                      ox_dims_str(vi->ndim, vi->dims, a, sizeof a), gr_shape_str(x, b, sizeof b));
  }
  if (is_integer_type(vi->elem_type)) return feed_integer(c, vi, x, v);
  if (vi->elem_type != GR_ONNX_FLOAT && vi->elem_type != GR_ONNX_UNDEFINED)
    return gr_error(GR_EUNSUPPORTED, "onnx: input '%s' has type %s (graft computes in FLOAT)", vi->name,
                    gr_onnx_dtype_name(vi->elem_type));
  memset(v, 0, sizeof *v);
  v->kind = GR_ONNX_KIND_F32;
  v->t = x;
  return GR_OK;
}

/* Caller-owned tensors (a module's parameters) under their value names, so
 * gradients reach them; bound before the model's own initializers. */
static gr_status bind_tensors(const gr_onnx_run_opts *o, ox_table *tab) {
  for (int i = 0; o && i < o->n_bind; i++) {
    if (!o->bind_names[i] || !o->bind[i]) return gr_error(GR_EARG, "onnx: bound tensor %d is NULL", i);
    ox_val *v = table_add(tab, o->bind_names[i]);
    if (!v) return gr_error(GR_EARG, "onnx: tensor '%s' bound twice", o->bind_names[i]);
    memset(v, 0, sizeof *v);
    v->kind = GR_ONNX_KIND_F32;
    v->t = o->bind[i];
  }
  return GR_OK;
}

static gr_status bind_constants_and_feeds(gr_ctx *c, const gr_onnx_model *m, ox_table *tab, int n_in,
                                          gr_tensor *const *inputs) {
  gr_status st;
  for (int i = 0; i < m->n_inits; i++) {
    ox_val *v = table_add(tab, m->inits[i].name);
    if (!v) return gr_error(GR_EFORMAT, "onnx: initializer '%s' defined twice", m->inits[i].name);
    if ((st = val_from_tensor(c, &m->inits[i], "onnx: initializer", v))) return st;
  }
  int want = gr_onnx_n_feeds(m);
  if (n_in != want) return gr_error(GR_EARG, "onnx: the graph takes %d inputs, %d given", want, n_in);
  for (int k = 0; k < want; k++) {
    const gr_onnx_value_info *vi = gr_onnx_feed(m, k);
    ox_val *v = table_add(tab, vi->name);
    if (!v) return gr_error(GR_EFORMAT, "onnx: graph input '%s' declared twice", vi->name);
    if ((st = feed_one(c, vi, inputs[k], v))) return st;
  }
  return GR_OK;
}

/* ---- the check ----------------------------------------------------------- */

bool gr_onnx_op_supported(const char *domain, const char *op_type) {
  if (domain && domain[0] && strcmp(domain, "ai.onnx")) return false;
  return op_type && ox_op_find(op_type);
}

/* Appends ", 'name'" lists per unsupported op to buf (truncating politely). */
static void list_unsupported(const gr_onnx_model *m, char *buf, size_t cap) {
  size_t len = 0;
  for (int i = 0; i < m->n_nodes; i++) {
    const gr_onnx_node *n = &m->nodes[i];
    if (gr_onnx_op_supported(n->domain, n->op_type)) continue;
    bool seen = false;
    for (int j = 0; j < i && !seen; j++)
      seen = !strcmp(m->nodes[j].op_type, n->op_type) && !strcmp(m->nodes[j].domain, n->domain);
    if (seen) continue;
    len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s%s%s%s (nodes", len ? "; " : "",
                            n->domain, n->domain[0] ? "." : "", n->op_type);
    for (int j = i; j < m->n_nodes; j++)
      if (!strcmp(m->nodes[j].op_type, n->op_type) && !strcmp(m->nodes[j].domain, n->domain))
        len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, " '%s'", m->nodes[j].name[0] ? m->nodes[j].name : "?");
    len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, ")");
  }
}

gr_status gr_onnx_check(const gr_onnx_model *m) {
  if (!m) return gr_error(GR_EARG, "onnx: NULL model");
  bool all = true;
  for (int i = 0; i < m->n_nodes && all; i++) all = gr_onnx_op_supported(m->nodes[i].domain, m->nodes[i].op_type);
  if (all) return GR_OK;
  char buf[1024];
  list_unsupported(m, buf, sizeof buf);
  return gr_error(GR_EUNSUPPORTED, "unsupported ONNX ops: %s", buf);
}

/* ---- the node loop ------------------------------------------------------- */

static gr_status run_node(gr_ctx *c, const gr_onnx_model *m, ox_table *tab, int idx) {
  const gr_onnx_node *n = &m->nodes[idx];
  ox_node_run r = {.c = c, .m = m, .node = n, .n_in = n->n_in, .n_out = n->n_out};
  snprintf(r.where, sizeof r.where, "onnx: %s node '%s'", n->op_type, n->name[0] ? n->name : "?");
  const ox_val **in = gr_arena_alloc(gr_ctx_arena(c), (size_t)(n->n_in + 1) * sizeof *in);
  r.out = gr_arena_alloc(gr_ctx_arena(c), (size_t)(n->n_out + 1) * sizeof *r.out);
  if (!in || !r.out) return gr_error(GR_ENOMEM, "%s: out of memory", r.where);
  for (int k = 0; k < n->n_in; k++) {
    if (!n->in[k][0]) continue; /* omitted optional input */
    in[k] = table_get(tab, n->in[k]);
    if (!in[k])
      return gr_error(GR_EFORMAT, "%s: input '%s' is not produced by any earlier node, initializer or graph input",
                      r.where, n->in[k]);
  }
  r.in = in;
  const ox_op *op = ox_op_find(n->op_type);
  GR_ASSERT(op);
  gr_status st = op->fn(&r);
  if (st) return st;
  for (int k = 0; k < n->n_out; k++) {
    if (!n->out[k][0]) continue;
    if (r.out[k].kind == GR_ONNX_KIND_NONE)
      return gr_error(GR_EUNSUPPORTED, "%s: output %d ('%s') is not computed by graft", r.where, k, n->out[k]);
    ox_val *v = table_add(tab, n->out[k]);
    if (!v) return gr_error(GR_EFORMAT, "%s: output '%s' is already defined", r.where, n->out[k]);
    *v = r.out[k];
  }
  return GR_OK;
}

static gr_status collect_output(gr_ctx *c, const ox_val *v, const char *name, gr_tensor **out) {
  if (v->kind == GR_ONNX_KIND_F32) {
    *out = v->t;
    return GR_OK;
  }
  gr_tensor *t = gr_tensor_new(c, v->ndim, v->dims);
  if (!t) return gr_error(GR_ENOMEM, "onnx: output '%s': out of memory", name);
  for (int64_t j = 0; j < v->numel; j++) t->data[j] = (float)v->i[j];
  *out = t;
  return GR_OK;
}

/* True when node i produces the value called name. */
static bool node_produces(const gr_onnx_node *n, const char *name) {
  for (int k = 0; k < n->n_out; k++)
    if (!strcmp(n->out[k], name)) return true;
  return false;
}

gr_status gr_onnx_run_ex(gr_ctx *c, const gr_onnx_model *m, const gr_onnx_run_opts *o, int n_in,
                         gr_tensor *const *inputs, int n_out, gr_tensor **outputs) {
  if (!c || !m || (n_in && !inputs) || (n_out && !outputs)) return gr_error(GR_EARG, "onnx: NULL argument");
  const char *stop = o ? o->stop_at : NULL;
  if (stop && n_out != 1) return gr_error(GR_EARG, "onnx: stopping at '%s' gives 1 output, %d requested", stop, n_out);
  if (!stop && n_out != m->n_outputs)
    return gr_error(GR_EARG, "onnx: the graph has %d outputs, %d requested", m->n_outputs, n_out);
  gr_status st = gr_onnx_check(m);
  ox_table tab = {0};
  if (o && (o->n_bind < 0 || (o->n_bind && (!o->bind_names || !o->bind))))
    return gr_error(GR_EARG, "onnx: bad bound-tensor list");
  if (st || (st = table_init(c, m, o ? o->n_bind : 0, &tab))) return st;
  if ((st = bind_tensors(o, &tab))) return st;
  if ((st = bind_constants_and_feeds(c, m, &tab, n_in, inputs))) return st;
  bool stopped = stop && table_get(&tab, stop);
  for (int i = 0; i < m->n_nodes && !stopped; i++) {
    if ((st = run_node(c, m, &tab, i))) return st;
    stopped = stop && node_produces(&m->nodes[i], stop);
  }
  if (stop && !stopped) return gr_error(GR_ENOTFOUND, "onnx: no value named '%s' in the graph", stop);
  for (int k = 0; k < n_out; k++) {
    const char *name = stop ? stop : m->outputs[k].name;
    const ox_val *v = table_get(&tab, name);
    if (!v) return gr_error(GR_EFORMAT, "onnx: graph output '%s' is never produced", name);
    if ((st = collect_output(c, v, name, &outputs[k]))) return st;
  }
  return GR_OK;
}

gr_status gr_onnx_run(gr_ctx *c, const gr_onnx_model *m, int n_in, gr_tensor *const *inputs, int n_out,
                      gr_tensor **outputs) {
  return gr_onnx_run_ex(c, m, NULL, n_in, inputs, n_out, outputs);
}

/* ---- helpers for op implementations ------------------------------------- */

bool ox_has_in(const ox_node_run *r, int k) { return k < r->n_in && r->in[k]; }

gr_status ox_in_f32(ox_node_run *r, int k, gr_tensor **out) {
  *out = NULL;
  if (!ox_has_in(r, k)) return gr_error(GR_EFORMAT, "%s: input %d is missing", r->where, k);
  const ox_val *v = r->in[k];
  if (v->kind == GR_ONNX_KIND_F32) {
    *out = v->t;
    return GR_OK;
  }
  gr_tensor *t = gr_tensor_new(r->c, v->ndim, v->dims);
  if (!t) return ox_op_failed(r);
  for (int64_t j = 0; j < v->numel; j++) t->data[j] = (float)v->i[j];
  *out = t;
  return GR_OK;
}

gr_status ox_in_i64(ox_node_run *r, int k, const ox_val **out) {
  *out = NULL;
  if (!ox_has_in(r, k)) return gr_error(GR_EFORMAT, "%s: input %d is missing", r->where, k);
  const ox_val *v = r->in[k];
  if (v->kind == GR_ONNX_KIND_I64) {
    *out = v;
    return GR_OK;
  }
  ox_val *w = gr_arena_alloc(gr_ctx_arena(r->c), sizeof *w);
  int64_t *d = w ? gr_arena_alloc(gr_ctx_arena(r->c), (size_t)(v->t->numel + 1) * sizeof *d) : NULL;
  if (!d) return gr_error(GR_ENOMEM, "%s: out of memory", r->where);
  for (int64_t j = 0; j < v->t->numel; j++) {
    float f = v->t->data[j];
    if (!(f == floorf(f)) || fabsf(f) > 9e18f)
      return gr_error(GR_EARG, "%s: input %d must hold integers, element %lld is %g", r->where, k, (long long)j, f);
    d[j] = (int64_t)f;
  }
  w->kind = GR_ONNX_KIND_I64;
  w->ndim = v->t->ndim;
  memcpy(w->dims, v->t->shape, sizeof w->dims);
  w->numel = v->t->numel;
  w->i = d;
  *out = w;
  return GR_OK;
}

gr_status ox_set_f32(ox_node_run *r, int k, gr_tensor *t) {
  if (!t) return ox_op_failed(r);
  if (k >= r->n_out) return GR_OK; /* output not wired */
  memset(&r->out[k], 0, sizeof r->out[k]);
  r->out[k].kind = GR_ONNX_KIND_F32;
  r->out[k].t = t;
  return GR_OK;
}

int64_t *ox_set_i64(ox_node_run *r, int k, int ndim, const int64_t *dims) {
  int64_t numel = 1;
  for (int d = 0; d < ndim; d++) numel *= dims[d];
  if (numel < 0 || numel > ((int64_t)1 << 32)) {
    gr_error(GR_ESHAPE, "%s: int64 result of %lld elements", r->where, (long long)numel);
    return NULL;
  }
  int64_t *d = gr_arena_alloc(gr_ctx_arena(r->c), (size_t)(numel + 1) * sizeof *d);
  if (!d) {
    gr_error(GR_ENOMEM, "%s: out of memory", r->where);
    return NULL;
  }
  if (k < r->n_out) {
    ox_val *v = &r->out[k];
    memset(v, 0, sizeof *v);
    v->kind = GR_ONNX_KIND_I64;
    v->ndim = ndim;
    if (ndim) memcpy(v->dims, dims, (size_t)ndim * sizeof *dims);
    v->numel = numel;
    v->i = d;
  }
  return d;
}

/* A graph read back from config.json cannot tell 6 from 6.0: a numeric
 * attribute is accepted as INT or FLOAT when its value is exact in both. */
static bool numeric_alias(const gr_onnx_attr *a, int type) {
  if (type == GR_ONNX_ATTR_FLOAT && a->type == GR_ONNX_ATTR_INT) return (int64_t)(float)a->i == a->i;
  if (type == GR_ONNX_ATTR_INT && a->type == GR_ONNX_ATTR_FLOAT) return a->f == (float)(int64_t)a->f;
  return false;
}

static const gr_onnx_attr *attr_typed(ox_node_run *r, const char *name, int type, gr_status *st) {
  const gr_onnx_attr *a = gr_onnx_attr_find(r->node, name);
  if (!a || a->type == type || numeric_alias(a, type)) return a;
  *st = gr_error(GR_EFORMAT, "%s: attribute '%s' has type %d, expected %d", r->where, name, a->type, type);
  return NULL;
}

int64_t ox_attr_int(ox_node_run *r, const char *name, int64_t dflt, gr_status *st) {
  const gr_onnx_attr *a = attr_typed(r, name, GR_ONNX_ATTR_INT, st);
  return !a ? dflt : a->type == GR_ONNX_ATTR_FLOAT ? (int64_t)a->f : a->i;
}

float ox_attr_float(ox_node_run *r, const char *name, float dflt, gr_status *st) {
  const gr_onnx_attr *a = attr_typed(r, name, GR_ONNX_ATTR_FLOAT, st);
  return !a ? dflt : a->type == GR_ONNX_ATTR_INT ? (float)a->i : a->f;
}

int ox_attr_ints(ox_node_run *r, const char *name, const int64_t **vals, gr_status *st) {
  const gr_onnx_attr *a = attr_typed(r, name, GR_ONNX_ATTR_INTS, st);
  *vals = a ? a->ints : NULL;
  return a ? a->n_ints : -1;
}

const char *ox_attr_str(ox_node_run *r, const char *name, const char *dflt, gr_status *st) {
  const gr_onnx_attr *a = attr_typed(r, name, GR_ONNX_ATTR_STRING, st);
  return a ? a->s : dflt;
}

gr_status ox_op_failed(ox_node_run *r) {
  gr_status s = gr_last_status();
  char msg[400];
  snprintf(msg, sizeof msg, "%s", gr_last_error());
  return gr_error(s ? s : GR_EARG, "%s: %s", r->where, msg);
}

const char *ox_dims_str(int ndim, const int64_t *dims, char *buf, size_t n) {
  size_t len = (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < ndim && len < n; d++) len += (size_t)snprintf(buf + len, n - len, d ? ",%lld" : "%lld", (long long)dims[d]);
  if (len < n) snprintf(buf + len, n - len, "]");
  return buf;
}
