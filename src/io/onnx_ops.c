/* io/onnx_ops.c — ONNX ops as graft ops: the op table, elementwise and
 * activation ops (Clip, HardSigmoid, HardSwish, LeakyRelu are composed from
 * relu/scale/add/mul), softmax, reductions, and the shape ops that also work
 * on int64 host values (Shape, Cast, Reshape, Slice, Concat, Squeeze,
 * Unsqueeze, Constant) so shape subgraphs of exported models run. Layer ops
 * (Conv, pools, BatchNormalization, Gemm, MatMul) are in onnx_ops_nn.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/onnx_exec.h"

/* ---- elementwise ------------------------------------------------------ */

typedef gr_tensor *(*unary_fn)(gr_ctx *, gr_tensor *);

static gr_status unary(ox_node_run *r, unary_fn fn) {
  gr_tensor *x;
  gr_status st = ox_in_f32(r, 0, &x);
  return st ? st : ox_set_f32(r, 0, fn(r->c, x));
}
static gr_status op_relu(ox_node_run *r) { return unary(r, gr_relu); }
static gr_status op_sigmoid(ox_node_run *r) { return unary(r, gr_sigmoid); }
static gr_status op_tanh(ox_node_run *r) { return unary(r, gr_tanh); }
static gr_status op_exp(ox_node_run *r) { return unary(r, gr_exp); }
static gr_status op_log(ox_node_run *r) { return unary(r, gr_log); }
static gr_status op_sqrt(ox_node_run *r) { return unary(r, gr_sqrt); }

static gr_status op_neg(ox_node_run *r) {
  gr_tensor *x;
  gr_status st = ox_in_f32(r, 0, &x);
  return st ? st : ox_set_f32(r, 0, gr_scale(r->c, x, -1.0f));
}

static gr_status op_reciprocal(ox_node_run *r) {
  gr_tensor *x;
  gr_status st = ox_in_f32(r, 0, &x);
  return st ? st : ox_set_f32(r, 0, gr_div(r->c, gr_scalar(r->c, 1.0f), x));
}

/* Identity and inference-mode Dropout: the value itself, whatever its kind. */
static gr_status op_identity(ox_node_run *r) {
  if (!ox_has_in(r, 0)) return gr_error(GR_EFORMAT, "%s: input 0 is missing", r->where);
  if (!strcmp(r->node->op_type, "Dropout")) {
    if (r->n_out > 1 && r->node->out[1][0])
      return gr_error(GR_EUNSUPPORTED, "%s: the mask output is not supported", r->where);
    const ox_val *train;
    if (ox_has_in(r, 2) && !ox_in_i64(r, 2, &train) && train->numel && train->i[0])
      return gr_error(GR_EUNSUPPORTED, "%s: training_mode=true is not supported", r->where);
  }
  r->out[0] = *r->in[0];
  return GR_OK;
}

typedef gr_tensor *(*binary_fn)(gr_ctx *, gr_tensor *, gr_tensor *);

static gr_status binary(ox_node_run *r, binary_fn fn) {
  gr_tensor *a, *b;
  gr_status st = ox_in_f32(r, 0, &a);
  if (!st) st = ox_in_f32(r, 1, &b);
  return st ? st : ox_set_f32(r, 0, fn(r->c, a, b));
}
static gr_status op_add(ox_node_run *r) { return binary(r, gr_add); }
static gr_status op_sub(ox_node_run *r) { return binary(r, gr_sub); }
static gr_status op_mul(ox_node_run *r) { return binary(r, gr_mul); }
static gr_status op_div(ox_node_run *r) { return binary(r, gr_div); }

/* Pow with a constant scalar exponent (gr_pow); a tensor exponent is refused. */
static gr_status op_pow(ox_node_run *r) {
  gr_tensor *x, *p;
  gr_status st = ox_in_f32(r, 0, &x);
  if (!st) st = ox_in_f32(r, 1, &p);
  if (st) return st;
  if (p->numel != 1 || p->ndim > x->ndim)
    return gr_error(GR_EUNSUPPORTED, "%s: only a scalar exponent is supported", r->where);
  return ox_set_f32(r, 0, gr_pow(r->c, x, p->data[0]));
}

/* Sum and Mean of any number of inputs, broadcasting. */
static gr_status op_sum_mean(ox_node_run *r) {
  gr_tensor *acc, *x;
  gr_status st = ox_in_f32(r, 0, &acc);
  for (int k = 1; !st && k < r->n_in; k++)
    if (!(st = ox_in_f32(r, k, &x)) && !(acc = gr_add(r->c, acc, x))) return ox_op_failed(r);
  if (st) return st;
  if (!strcmp(r->node->op_type, "Mean") && r->n_in > 1) acc = gr_scale(r->c, acc, 1.0f / (float)r->n_in);
  return ox_set_f32(r, 0, acc);
}

/* clip(x, lo, hi) = lo + relu(x - lo) - relu(x - hi), dropping the term of an
 * infinite bound; exact at the bounds' side, one rounding inside. */
static gr_tensor *clip(gr_ctx *c, gr_tensor *x, float lo, float hi) {
  gr_tensor *y = x;
  if (isfinite(lo)) y = gr_add_scalar(c, gr_relu(c, gr_add_scalar(c, x, -lo)), lo);
  if (isfinite(hi)) y = gr_sub(c, y, gr_relu(c, gr_add_scalar(c, x, -hi)));
  if (y == x) y = gr_scale(c, x, 1.0f);
  return y;
}

static gr_status scalar_input(ox_node_run *r, int k, float *v) {
  if (!ox_has_in(r, k)) return GR_OK;
  gr_tensor *t;
  gr_status st = ox_in_f32(r, k, &t);
  if (st) return st;
  if (t->numel != 1) return gr_error(GR_ESHAPE, "%s: input %d must be a scalar", r->where, k);
  *v = t->data[0];
  return GR_OK;
}

static gr_status op_clip(ox_node_run *r) {
  gr_status st = GR_OK;
  float lo = -INFINITY, hi = INFINITY;
  if (r->node->n_attr) { /* opset < 11: attributes */
    lo = ox_attr_float(r, "min", -INFINITY, &st);
    hi = ox_attr_float(r, "max", INFINITY, &st);
  }
  if (!st) st = scalar_input(r, 1, &lo);
  if (!st) st = scalar_input(r, 2, &hi);
  gr_tensor *x;
  if (st || (st = ox_in_f32(r, 0, &x))) return st;
  if (lo > hi) return gr_error(GR_EUNSUPPORTED, "%s: min %g > max %g", r->where, lo, hi);
  return ox_set_f32(r, 0, clip(r->c, x, lo, hi));
}

/* hard_sigmoid(x) = clip(alpha x + beta, 0, 1). */
static gr_tensor *hard_sigmoid(gr_ctx *c, gr_tensor *x, float alpha, float beta) {
  return clip(c, gr_add_scalar(c, gr_scale(c, x, alpha), beta), 0.0f, 1.0f);
}

static gr_status op_hard_sigmoid(ox_node_run *r) {
  gr_status st = GR_OK;
  float alpha = ox_attr_float(r, "alpha", 0.2f, &st), beta = ox_attr_float(r, "beta", 0.5f, &st);
  gr_tensor *x;
  if (st || (st = ox_in_f32(r, 0, &x))) return st;
  return ox_set_f32(r, 0, hard_sigmoid(r->c, x, alpha, beta));
}

static gr_status op_hard_swish(ox_node_run *r) {
  gr_tensor *x;
  gr_status st = ox_in_f32(r, 0, &x);
  return st ? st : ox_set_f32(r, 0, gr_mul(r->c, x, hard_sigmoid(r->c, x, 1.0f / 6.0f, 0.5f)));
}

/* leaky_relu(x) = relu(x) - alpha relu(-x). */
static gr_status op_leaky_relu(ox_node_run *r) {
  gr_status st = GR_OK;
  float alpha = ox_attr_float(r, "alpha", 0.01f, &st);
  gr_tensor *x;
  if (st || (st = ox_in_f32(r, 0, &x))) return st;
  gr_ctx *c = r->c;
  return ox_set_f32(r, 0, gr_sub(c, gr_relu(c, x), gr_scale(c, gr_relu(c, gr_scale(c, x, -1.0f)), alpha)));
}

/* ---- softmax ----------------------------------------------------------- */

/* Opset < 13 coerces to 2-D at axis and normalizes over all trailing dims;
 * opset >= 13 normalizes along axis. */
static gr_status op_softmax(ox_node_run *r) {
  gr_status st = GR_OK;
  bool old = r->m->opset < 13;
  int64_t axis = ox_attr_int(r, "axis", old ? 1 : -1, &st);
  gr_tensor *x;
  if (st || (st = ox_in_f32(r, 0, &x))) return st;
  if (axis < -x->ndim || axis >= (x->ndim ? x->ndim : 1)) return gr_error(GR_EARG, "%s: axis %lld out of range", r->where, (long long)axis);
  if (axis < 0) axis += x->ndim;
  bool take_log = !strcmp(r->node->op_type, "LogSoftmax");
  gr_tensor *y;
  if (old && x->ndim) {
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < x->ndim; d++) *(d < axis ? &outer : &inner) *= x->shape[d];
    gr_tensor *x2 = gr_reshape(r->c, x, 2, GR_SHAPE(outer, inner));
    y = take_log ? gr_log_softmax(r->c, x2, 1) : gr_softmax(r->c, x2, 1);
    y = y ? gr_reshape(r->c, y, x->ndim, x->shape) : NULL;
  } else {
    y = take_log ? gr_log_softmax(r->c, x, (int)axis) : gr_softmax(r->c, x, (int)axis);
  }
  return ox_set_f32(r, 0, y);
}

/* ---- reductions -------------------------------------------------------- */

/* Axes from the attribute (older opsets) or input 1; n = -1 when none given. */
static gr_status reduce_axes(ox_node_run *r, int ndim, bool *mark, int *n) {
  gr_status st = GR_OK;
  const int64_t *ax = NULL;
  int k = ox_attr_ints(r, "axes", &ax, &st);
  if (st) return st;
  if (k < 0 && ox_has_in(r, 1)) {
    const ox_val *v;
    if ((st = ox_in_i64(r, 1, &v))) return st;
    ax = v->i;
    k = (int)v->numel;
  }
  *n = k;
  for (int j = 0; j < k; j++) {
    int64_t a = ax[j] < 0 ? ax[j] + ndim : ax[j];
    if (a < 0 || a >= ndim) return gr_error(GR_EARG, "%s: axis %lld out of range for rank %d", r->where, (long long)ax[j], ndim);
    mark[a] = true;
  }
  return GR_OK;
}

static gr_status op_reduce(ox_node_run *r) {
  gr_status st = GR_OK;
  bool keep = ox_attr_int(r, "keepdims", 1, &st) != 0;
  bool noop_empty = ox_attr_int(r, "noop_with_empty_axes", 0, &st) != 0;
  gr_tensor *x;
  if (st || (st = ox_in_f32(r, 0, &x))) return st;
  bool mark[GR_MAX_DIMS] = {0};
  int n;
  if ((st = reduce_axes(r, x->ndim, mark, &n))) return st;
  if (n <= 0 && noop_empty) return ox_set_f32(r, 0, x);
  if (n <= 0)
    for (int d = 0; d < x->ndim; d++) mark[d] = true;
  bool mean = !strcmp(r->node->op_type, "ReduceMean");
  gr_tensor *y = x;
  int64_t dims[GR_MAX_DIMS];
  int nd = 0;
  for (int d = x->ndim - 1; d >= 0 && y; d--)
    if (mark[d]) y = mean ? gr_mean(r->c, y, d, true) : gr_sum(r->c, y, d, true);
  for (int d = 0; d < x->ndim; d++)
    if (!mark[d]) dims[nd++] = x->shape[d];
  if (y && !keep) y = gr_reshape(r->c, y, nd, dims);
  return ox_set_f32(r, 0, y);
}

/* ---- shape ops ----------------------------------------------------------- */

static int val_ndim(const ox_val *v) { return v->kind == GR_ONNX_KIND_F32 ? v->t->ndim : v->ndim; }
static const int64_t *val_dims(const ox_val *v) { return v->kind == GR_ONNX_KIND_F32 ? v->t->shape : v->dims; }

/* Output 0 := input 0 with new dims (a view for f32, shared values for int64). */
static gr_status set_reshaped(ox_node_run *r, int ndim, const int64_t *dims) {
  const ox_val *v = r->in[0];
  char a[96], b[96];
  int64_t numel = 1;
  for (int d = 0; d < ndim; d++) numel *= dims[d];
  int64_t have = v->kind == GR_ONNX_KIND_F32 ? v->t->numel : v->numel;
  if (numel != have)
    return gr_error(GR_ESHAPE, "%s: cannot reshape %s to %s", r->where, ox_dims_str(val_ndim(v), val_dims(v), a, sizeof a),
                    ox_dims_str(ndim, dims, b, sizeof b));
  if (v->kind == GR_ONNX_KIND_F32) return ox_set_f32(r, 0, gr_reshape(r->c, v->t, ndim, dims));
  r->out[0] = *v;
  r->out[0].ndim = ndim;
  if (ndim) memcpy(r->out[0].dims, dims, (size_t)ndim * sizeof *dims);
  return GR_OK;
}

static gr_status op_reshape(ox_node_run *r) {
  gr_status st = GR_OK;
  bool allowzero = ox_attr_int(r, "allowzero", 0, &st) != 0;
  const ox_val *s;
  if (st || (st = ox_in_i64(r, 1, &s))) return st;
  if (!ox_has_in(r, 0)) return gr_error(GR_EFORMAT, "%s: input 0 is missing", r->where);
  if (s->numel > GR_MAX_DIMS) return gr_error(GR_EUNSUPPORTED, "%s: %lld dims", r->where, (long long)s->numel);
  const ox_val *v = r->in[0];
  int64_t dims[GR_MAX_DIMS], known = 1, total = v->kind == GR_ONNX_KIND_F32 ? v->t->numel : v->numel;
  int infer = -1;
  for (int d = 0; d < s->numel; d++) {
    dims[d] = s->i[d];
    if (dims[d] == 0 && !allowzero) {
      if (d >= val_ndim(v)) return gr_error(GR_ESHAPE, "%s: shape[%d] = 0 copies a dim the input lacks", r->where, d);
      dims[d] = val_dims(v)[d];
    }
    if (dims[d] == -1 && infer < 0) infer = d;
    else if (dims[d] < 0) return gr_error(GR_ESHAPE, "%s: invalid shape[%d] = %lld", r->where, d, (long long)dims[d]);
    else known *= dims[d];
  }
  if (infer >= 0) {
    if (known == 0 || total % known) return gr_error(GR_ESHAPE, "%s: cannot infer dim %d", r->where, infer);
    dims[infer] = total / known;
  }
  return set_reshaped(r, (int)s->numel, dims);
}

static gr_status op_flatten(ox_node_run *r) {
  gr_status st = GR_OK;
  int64_t axis = ox_attr_int(r, "axis", 1, &st);
  if (st) return st;
  if (!ox_has_in(r, 0)) return gr_error(GR_EFORMAT, "%s: input 0 is missing", r->where);
  int nd = val_ndim(r->in[0]);
  if (axis < -nd || axis > nd) return gr_error(GR_EARG, "%s: axis %lld out of range", r->where, (long long)axis);
  if (axis < 0) axis += nd;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < nd; d++) *(d < axis ? &outer : &inner) *= val_dims(r->in[0])[d];
  return set_reshaped(r, 2, (int64_t[]){outer, inner});
}

/* Axes from the attribute (opset < 13) or input 1. */
static gr_status axes_arg(ox_node_run *r, const int64_t **ax, int *n) {
  gr_status st = GR_OK;
  *n = ox_attr_ints(r, "axes", ax, &st);
  if (st || *n >= 0 || !ox_has_in(r, 1)) return st;
  const ox_val *v;
  if ((st = ox_in_i64(r, 1, &v))) return st;
  *ax = v->i;
  *n = (int)v->numel;
  return GR_OK;
}

static gr_status op_squeeze(ox_node_run *r) {
  const int64_t *ax;
  int n;
  gr_status st = axes_arg(r, &ax, &n);
  if (st) return st;
  if (!ox_has_in(r, 0)) return gr_error(GR_EFORMAT, "%s: input 0 is missing", r->where);
  int nd = val_ndim(r->in[0]);
  const int64_t *dims = val_dims(r->in[0]);
  bool drop[GR_MAX_DIMS] = {0};
  for (int j = 0; j < n; j++) {
    int64_t a = ax[j] < 0 ? ax[j] + nd : ax[j];
    if (a < 0 || a >= nd || dims[a] != 1) return gr_error(GR_EARG, "%s: cannot squeeze axis %lld", r->where, (long long)ax[j]);
    drop[a] = true;
  }
  int64_t out[GR_MAX_DIMS];
  int k = 0;
  for (int d = 0; d < nd; d++)
    if (!(n > 0 ? drop[d] : dims[d] == 1)) out[k++] = dims[d];
  return set_reshaped(r, k, out);
}

static gr_status op_unsqueeze(ox_node_run *r) {
  const int64_t *ax;
  int n;
  gr_status st = axes_arg(r, &ax, &n);
  if (st) return st;
  if (!ox_has_in(r, 0) || n < 0) return gr_error(GR_EFORMAT, "%s: input 0 or axes missing", r->where);
  int nd = val_ndim(r->in[0]), on = nd + n;
  if (on > GR_MAX_DIMS) return gr_error(GR_EUNSUPPORTED, "%s: result has %d dims", r->where, on);
  bool ins[GR_MAX_DIMS] = {0};
  for (int j = 0; j < n; j++) {
    int64_t a = ax[j] < 0 ? ax[j] + on : ax[j];
    if (a < 0 || a >= on || ins[a]) return gr_error(GR_EARG, "%s: bad axis %lld", r->where, (long long)ax[j]);
    ins[a] = true;
  }
  int64_t out[GR_MAX_DIMS];
  for (int d = 0, k = 0; d < on; d++) out[d] = ins[d] ? 1 : val_dims(r->in[0])[k++];
  return set_reshaped(r, on, out);
}

static gr_status op_transpose(ox_node_run *r) {
  gr_status st = GR_OK;
  const int64_t *p;
  int n = ox_attr_ints(r, "perm", &p, &st);
  gr_tensor *x;
  if (st || (st = ox_in_f32(r, 0, &x))) return st;
  int perm[GR_MAX_DIMS];
  bool used[GR_MAX_DIMS] = {0};
  if (n >= 0 && n != x->ndim) return gr_error(GR_EARG, "%s: perm has %d entries for rank %d", r->where, n, x->ndim);
  for (int d = 0; d < x->ndim; d++) {
    int64_t v = n >= 0 ? p[d] : x->ndim - 1 - d;
    if (v < 0 || v >= x->ndim || used[v]) return gr_error(GR_EARG, "%s: perm is not a permutation", r->where);
    used[v] = true;
    perm[d] = (int)v;
  }
  return ox_set_f32(r, 0, gr_permute(r->c, x, perm));
}

static gr_status op_shape(ox_node_run *r) {
  gr_status st = GR_OK;
  if (!ox_has_in(r, 0)) return gr_error(GR_EFORMAT, "%s: input 0 is missing", r->where);
  int nd = val_ndim(r->in[0]);
  int64_t start = ox_attr_int(r, "start", 0, &st), end = ox_attr_int(r, "end", nd, &st);
  if (st) return st;
  if (start < 0) start += nd;
  if (end < 0) end += nd;
  start = start < 0 ? 0 : start > nd ? nd : start;
  end = end < start ? start : end > nd ? nd : end;
  int64_t *o = ox_set_i64(r, 0, 1, (int64_t[]){end - start});
  if (!o) return GR_ENOMEM;
  for (int64_t d = start; d < end; d++) o[d - start] = val_dims(r->in[0])[d];
  return GR_OK;
}

static gr_status op_cast(ox_node_run *r) {
  gr_status st = GR_OK;
  int64_t to = ox_attr_int(r, "to", 0, &st);
  if (st) return st;
  if (to == GR_ONNX_FLOAT || to == GR_ONNX_DOUBLE || to == GR_ONNX_FLOAT16) {
    gr_tensor *x;
    return (st = ox_in_f32(r, 0, &x)) ? st : ox_set_f32(r, 0, x);
  }
  if (to == GR_ONNX_STRING || to == GR_ONNX_BFLOAT16 || to == GR_ONNX_UNDEFINED || to > GR_ONNX_BFLOAT16)
    return gr_error(GR_EUNSUPPORTED, "%s: cast to %s is not supported", r->where, gr_onnx_dtype_name((int)to));
  if (!ox_has_in(r, 0)) return gr_error(GR_EFORMAT, "%s: input 0 is missing", r->where);
  const ox_val *v = r->in[0];
  int64_t *o = ox_set_i64(r, 0, val_ndim(v), val_dims(v));
  if (!o) return GR_ENOMEM;
  int64_t n = v->kind == GR_ONNX_KIND_F32 ? v->t->numel : v->numel;
  for (int64_t j = 0; j < n; j++) {
    double x = v->kind == GR_ONNX_KIND_F32 ? (double)v->t->data[j] : (double)v->i[j];
    if (!isfinite(x) || fabs(x) > 9.2e18) return gr_error(GR_ENUMERIC, "%s: %g does not fit an integer", r->where, x);
    o[j] = to == GR_ONNX_BOOL ? x != 0 : (int64_t)x;
  }
  return GR_OK;
}

static gr_status op_constant(ox_node_run *r) {
  const gr_onnx_node *n = r->node;
  if (n->n_attr != 1) return gr_error(GR_EFORMAT, "%s: needs exactly one value attribute", r->where);
  const gr_onnx_attr *a = &n->attr[0];
  if (!strcmp(a->name, "value") && a->t) {
    gr_onnx_tensor *t = a->t;
    if (t->kind == GR_ONNX_KIND_I64) {
      int64_t *o = ox_set_i64(r, 0, t->ndim, t->dims);
      if (!o) return GR_ENOMEM;
      memcpy(o, t->i64, (size_t)t->numel * sizeof *o);
      return GR_OK;
    }
    if (t->kind != GR_ONNX_KIND_F32)
      return gr_error(GR_EUNSUPPORTED, "%s: tensor of type %s", r->where, gr_onnx_dtype_name(t->data_type));
    return ox_set_f32(r, 0, gr_tensor_from(r->c, t->ndim, t->dims, t->f32));
  }
  if (!strcmp(a->name, "value_float")) return ox_set_f32(r, 0, gr_tensor_from(r->c, 0, NULL, &a->f));
  if (!strcmp(a->name, "value_floats"))
    return ox_set_f32(r, 0, gr_tensor_from(r->c, 1, (int64_t[]){a->n_floats}, a->floats));
  if (!strcmp(a->name, "value_int") || !strcmp(a->name, "value_ints")) {
    bool one = !strcmp(a->name, "value_int");
    int64_t *o = ox_set_i64(r, 0, one ? 0 : 1, (int64_t[]){a->n_ints});
    if (!o) return GR_ENOMEM;
    if (one) o[0] = a->i;
    else memcpy(o, a->ints, (size_t)a->n_ints * sizeof *o);
    return GR_OK;
  }
  return gr_error(GR_EUNSUPPORTED, "%s: constant attribute '%s' is not supported", r->where, a->name);
}

/* ---- Concat and Slice ----------------------------------------------------- */

static gr_status concat_i64(ox_node_run *r, int64_t axis) {
  const ox_val *v0;
  gr_status st = ox_in_i64(r, 0, &v0);
  if (st) return st;
  if (v0->ndim != 1 || axis != 0) return gr_error(GR_EUNSUPPORTED, "%s: int64 concat of 1-D values only", r->where);
  int64_t total = 0;
  const ox_val *v;
  for (int k = 0; k < r->n_in; k++) {
    if ((st = ox_in_i64(r, k, &v))) return st;
    if (v->ndim != 1) return gr_error(GR_ESHAPE, "%s: input %d is not 1-D", r->where, k);
    total += v->numel;
  }
  int64_t *o = ox_set_i64(r, 0, 1, &total);
  if (!o) return GR_ENOMEM;
  for (int k = 0; k < r->n_in; k++) {
    ox_in_i64(r, k, &v);
    memcpy(o, v->i, (size_t)v->numel * sizeof *o);
    o += v->numel;
  }
  return GR_OK;
}

static gr_status op_concat(ox_node_run *r) {
  gr_status st = GR_OK;
  int64_t axis = ox_attr_int(r, "axis", 0, &st);
  if (st) return st;
  if (r->n_in < 1) return gr_error(GR_EFORMAT, "%s: no inputs", r->where);
  bool all_int = true;
  for (int k = 0; k < r->n_in; k++) all_int = all_int && ox_has_in(r, k) && r->in[k]->kind == GR_ONNX_KIND_I64;
  if (all_int) return concat_i64(r, axis < 0 ? axis + 1 : axis);
  gr_tensor **xs = gr_arena_alloc(gr_ctx_arena(r->c), (size_t)r->n_in * sizeof *xs);
  if (!xs) return gr_error(GR_ENOMEM, "%s: out of memory", r->where);
  for (int k = 0; k < r->n_in; k++)
    if ((st = ox_in_f32(r, k, &xs[k]))) return st;
  return ox_set_f32(r, 0, gr_concat(r->c, r->n_in, xs, (int)axis));
}

/* numpy rules: negative from the end, clamped to [0, dim]. */
static int64_t clamp_index(int64_t i, int64_t dim) {
  if (i < 0) i += dim;
  return i < 0 ? 0 : i > dim ? dim : i;
}

/* starts/ends/axes/steps from attributes (opset < 10) or inputs 1..4. */
static gr_status slice_args(ox_node_run *r, const int64_t *v[4], int n[4]) {
  static const char *names[4] = {"starts", "ends", "axes", "steps"};
  gr_status st = GR_OK;
  for (int j = 0; j < 4; j++) {
    n[j] = ox_attr_ints(r, names[j], &v[j], &st);
    if (st) return st;
    if (n[j] < 0 && ox_has_in(r, j + 1)) {
      const ox_val *iv;
      if ((st = ox_in_i64(r, j + 1, &iv))) return st;
      v[j] = iv->i;
      n[j] = (int)iv->numel;
    }
  }
  if (n[0] < 0 || n[1] != n[0] || (n[2] >= 0 && n[2] != n[0]) || (n[3] >= 0 && n[3] != n[0]))
    return gr_error(GR_EFORMAT, "%s: starts/ends/axes/steps lengths differ", r->where);
  return GR_OK;
}

static gr_status op_slice(ox_node_run *r) {
  const int64_t *v[4];
  int n[4];
  gr_status st = slice_args(r, v, n);
  if (st) return st;
  if (!ox_has_in(r, 0)) return gr_error(GR_EFORMAT, "%s: input 0 is missing", r->where);
  bool is_int = r->in[0]->kind == GR_ONNX_KIND_I64;
  gr_tensor *x = NULL;
  const ox_val *xi = r->in[0];
  if (!is_int && (st = ox_in_f32(r, 0, &x))) return st;
  int nd = val_ndim(xi);
  int64_t lo[GR_MAX_DIMS], hi[GR_MAX_DIMS];
  for (int d = 0; d < nd; d++) lo[d] = 0, hi[d] = val_dims(xi)[d];
  for (int j = 0; j < n[0]; j++) {
    int64_t a = n[2] >= 0 ? v[2][j] : j, step = n[3] >= 0 ? v[3][j] : 1;
    if (a < 0) a += nd;
    if (a < 0 || a >= nd) return gr_error(GR_EARG, "%s: axis %lld out of range", r->where, (long long)a);
    if (step != 1) return gr_error(GR_EUNSUPPORTED, "%s: step %lld (only 1 is supported)", r->where, (long long)step);
    int64_t dim = val_dims(xi)[a];
    lo[a] = clamp_index(v[0][j], dim);
    hi[a] = clamp_index(v[1][j], dim);
    if (hi[a] < lo[a]) hi[a] = lo[a];
  }
  if (!is_int) {
    for (int d = 0; d < nd && x; d++)
      if (lo[d] != 0 || hi[d] != x->shape[d]) x = gr_slice(r->c, x, d, lo[d], hi[d]);
    return ox_set_f32(r, 0, x);
  }
  if (nd != 1) return gr_error(GR_EUNSUPPORTED, "%s: int64 slice of 1-D values only", r->where);
  int64_t *o = ox_set_i64(r, 0, 1, (int64_t[]){hi[0] - lo[0]});
  if (!o) return GR_ENOMEM;
  memcpy(o, xi->i + lo[0], (size_t)(hi[0] - lo[0]) * sizeof *o);
  return GR_OK;
}

/* ---- the table (sorted by name for bsearch) ----------------------------- */

static const ox_op ops[] = {
    {"Add", op_add},
    {"AveragePool", ox_average_pool},
    {"BatchNormalization", ox_batch_norm},
    {"Cast", op_cast},
    {"Clip", op_clip},
    {"Concat", op_concat},
    {"Constant", op_constant},
    {"Conv", ox_conv},
    {"Div", op_div},
    {"Dropout", op_identity},
    {"Exp", op_exp},
    {"Flatten", op_flatten},
    {"Gemm", ox_gemm},
    {"GlobalAveragePool", ox_global_average_pool},
    {"HardSigmoid", op_hard_sigmoid},
    {"HardSwish", op_hard_swish},
    {"Identity", op_identity},
    {"LeakyRelu", op_leaky_relu},
    {"Log", op_log},
    {"LogSoftmax", op_softmax},
    {"MatMul", ox_matmul},
    {"MaxPool", ox_max_pool},
    {"Mean", op_sum_mean},
    {"Mul", op_mul},
    {"Neg", op_neg},
    {"Pad", ox_pad},
    {"Pow", op_pow},
    {"Reciprocal", op_reciprocal},
    {"ReduceMean", op_reduce},
    {"ReduceSum", op_reduce},
    {"Relu", op_relu},
    {"Reshape", op_reshape},
    {"Shape", op_shape},
    {"Sigmoid", op_sigmoid},
    {"Slice", op_slice},
    {"Softmax", op_softmax},
    {"Sqrt", op_sqrt},
    {"Squeeze", op_squeeze},
    {"Sub", op_sub},
    {"Sum", op_sum_mean},
    {"Tanh", op_tanh},
    {"Transpose", op_transpose},
    {"Unsqueeze", op_unsqueeze},
};

static int op_cmp(const void *key, const void *elem) { return strcmp(key, ((const ox_op *)elem)->name); }

const ox_op *ox_op_find(const char *op_type) {
  return bsearch(op_type, ops, sizeof ops / sizeof *ops, sizeof *ops, op_cmp);
}
