/* io/onnx_ops_nn.c — ONNX layer ops on graft's layer ops: Conv (1-D and 2-D,
 * groups, strides, dilations, symmetric or auto pads), MaxPool/AveragePool
 * (2-D, floor mode), GlobalAveragePool, BatchNormalization, Gemm and MatMul
 * (numpy batching where graft's matmul has it), Pad (constant, spatial dims;
 * also used for a Conv's asymmetric pads). Anything graft's kernels cannot
 * express exactly (asymmetric pool pads, ceil_mode, pool dilations, 3-D
 * convolution, general batch broadcasting) is GR_EUNSUPPORTED naming the
 * node, never approximated. */
#include <string.h>

#include "io/onnx_exec.h"

/* Spatial attributes shared by Conv and the pools, for 2 spatial dims. */
typedef struct spatial {
  int64_t kernel[2], stride[2], dil[2], pad[2], pad_end[2]; /* pad: before; pad_end: after */
} spatial;

/* Reads a 2-entry INTS attribute (1 entry for 1-D ops, then [1, v]). */
static gr_status ints2(ox_node_run *r, const char *name, int nsp, int64_t dflt, int64_t out[2]) {
  gr_status st = GR_OK;
  const int64_t *v;
  int n = ox_attr_ints(r, name, &v, &st);
  out[0] = out[1] = dflt;
  if (st || n < 0) return st;
  if (n != nsp) return gr_error(GR_EFORMAT, "%s: '%s' has %d entries for %d spatial dims", r->where, name, n, nsp);
  if (nsp == 1) out[0] = 1, out[1] = v[0]; /* the unit H of a 1-D op */
  else out[0] = v[0], out[1] = v[1];
  return GR_OK;
}

/* pads [b0, b1, e0, e1] (or [b, e] for 1-D) or auto_pad -> one symmetric pad per dim. */
static gr_status spatial_pads(ox_node_run *r, int nsp, const int64_t in[2], spatial *s) {
  gr_status st = GR_OK;
  const char *autopad = ox_attr_str(r, "auto_pad", "NOTSET", &st);
  const int64_t *p;
  int n = ox_attr_ints(r, "pads", &p, &st);
  if (st) return st;
  int64_t beg[2] = {0, 0}, end[2] = {0, 0};
  if (!strcmp(autopad, "NOTSET")) {
    if (n >= 0 && n != 2 * nsp) return gr_error(GR_EFORMAT, "%s: 'pads' has %d entries", r->where, n);
    for (int d = 0; n > 0 && d < nsp; d++) beg[d + 2 - nsp] = p[d], end[d + 2 - nsp] = p[d + nsp];
  } else if (!strcmp(autopad, "SAME_UPPER") || !strcmp(autopad, "SAME_LOWER")) {
    for (int d = 0; d < 2; d++) {
      int64_t out = (in[d] + s->stride[d] - 1) / s->stride[d];
      int64_t total = (out - 1) * s->stride[d] + (s->kernel[d] - 1) * s->dil[d] + 1 - in[d];
      if (total < 0) total = 0;
      beg[d] = autopad[5] == 'U' ? total / 2 : total - total / 2;
      end[d] = total - beg[d];
    }
  } else if (strcmp(autopad, "VALID")) {
    return gr_error(GR_EFORMAT, "%s: unknown auto_pad '%s'", r->where, autopad);
  }
  for (int d = 0; d < 2; d++) {
    if (beg[d] < 0 || end[d] < 0 || beg[d] > 1 << 20 || end[d] > 1 << 20)
      return gr_error(GR_EUNSUPPORTED, "%s: negative or huge padding (%lld before, %lld after) is not supported",
                      r->where, (long long)beg[d], (long long)end[d]);
    s->pad[d] = beg[d];
    s->pad_end[d] = end[d];
  }
  return GR_OK;
}

static gr_status symmetric_pads(ox_node_run *r, const spatial *s) {
  for (int d = 0; d < 2; d++)
    if (s->pad[d] != s->pad_end[d])
      return gr_error(GR_EUNSUPPORTED, "%s: asymmetric padding (%lld before, %lld after) is not supported here",
                      r->where, (long long)s->pad[d], (long long)s->pad_end[d]);
  return GR_OK;
}

/* x [N,C,H,W] with t/b rows and l/r columns of value v around it (concat of
 * constant blocks, so the gradient flows to x). */
static gr_tensor *pad_hw(gr_ctx *c, gr_tensor *x, const int64_t beg[2], const int64_t end[2], float v) {
  for (int d = 1; d >= 0 && x; d--) {
    gr_tensor *parts[3];
    int n = 0;
    int64_t shp[4] = {x->shape[0], x->shape[1], x->shape[2], x->shape[3]};
    for (int side = 0; side < 3 && x; side++) {
      int64_t k = side == 0 ? beg[d] : side == 2 ? end[d] : 0;
      if (side == 1) {
        parts[n++] = x;
        continue;
      }
      if (k == 0) continue;
      shp[2 + d] = k;
      gr_tensor *blk = gr_tensor_new(c, 4, shp);
      if (!blk) return NULL;
      for (int64_t i = 0; v != 0.0f && i < blk->numel; i++) blk->data[i] = v;
      parts[n++] = blk;
    }
    if (n > 1) x = gr_concat(c, n, parts, 2 + d);
  }
  return x;
}

/* Pad (constant mode) on the two spatial dims of a 4-D input: pads and value
 * as attributes (opset < 11) or inputs 1 and 2. */
gr_status ox_pad(ox_node_run *r) {
  gr_status st = GR_OK;
  const char *mode = ox_attr_str(r, "mode", "constant", &st);
  const int64_t *pads = NULL;
  int n = ox_attr_ints(r, "pads", &pads, &st);
  float value = ox_attr_float(r, "value", 0.0f, &st);
  gr_tensor *x;
  if (st || (st = ox_in_f32(r, 0, &x))) return st;
  if (strcmp(mode, "constant")) return gr_error(GR_EUNSUPPORTED, "%s: mode '%s' (graft pads with constants)", r->where, mode);
  if (ox_has_in(r, 1)) {
    const ox_val *p;
    if ((st = ox_in_i64(r, 1, &p))) return st;
    pads = p->i, n = (int)p->numel;
  }
  if (ox_has_in(r, 2)) {
    gr_tensor *v;
    if ((st = ox_in_f32(r, 2, &v))) return st;
    if (v->numel != 1) return gr_error(GR_ESHAPE, "%s: constant_value must be a scalar", r->where);
    value = v->data[0];
  }
  if (x->ndim != 4 || n != 8)
    return gr_error(GR_EUNSUPPORTED, "%s: graft pads 4-D inputs (rank %d, %d pads)", r->where, x->ndim, n);
  if (pads[0] || pads[1] || pads[4] || pads[5])
    return gr_error(GR_EUNSUPPORTED, "%s: padding of the batch or channel dim is not supported", r->where);
  int64_t beg[2] = {pads[2], pads[3]}, end[2] = {pads[6], pads[7]};
  for (int d = 0; d < 2; d++)
    if (beg[d] < 0 || end[d] < 0 || beg[d] > 1 << 20 || end[d] > 1 << 20)
      return gr_error(GR_EUNSUPPORTED, "%s: negative or huge pads are not supported", r->where);
  return ox_set_f32(r, 0, pad_hw(r->c, x, beg, end, value));
}

/* Input 0 as a 4-D tensor: 3-D [N,C,W] becomes [N,C,1,W]; *nsp = spatial dims. */
static gr_status spatial_input(ox_node_run *r, gr_tensor **x, int *nsp) {
  gr_status st = ox_in_f32(r, 0, x);
  if (st) return st;
  gr_tensor *t = *x;
  if (t->ndim == 4) {
    *nsp = 2;
    return GR_OK;
  }
  if (t->ndim != 3)
    return gr_error(GR_EUNSUPPORTED, "%s: input of rank %d (graft runs 1-D and 2-D spatial ops)", r->where, t->ndim);
  *nsp = 1;
  *x = gr_reshape(r->c, t, 4, GR_SHAPE(t->shape[0], t->shape[1], 1, t->shape[2]));
  return *x ? GR_OK : ox_op_failed(r);
}

/* Back to [N,C,W] for 1-D ops. */
static gr_status set_spatial_out(ox_node_run *r, gr_tensor *y, int nsp) {
  if (y && nsp == 1) y = gr_reshape(r->c, y, 3, GR_SHAPE(y->shape[0], y->shape[1], y->shape[3]));
  return ox_set_f32(r, 0, y);
}

static gr_status spatial_attrs(ox_node_run *r, int nsp, const int64_t in[2], spatial *s) {
  gr_status st = GR_OK;
  if ((st = ints2(r, "strides", nsp, 1, s->stride)) || (st = ints2(r, "dilations", nsp, 1, s->dil))) return st;
  for (int d = 0; d < 2; d++)
    if (s->stride[d] < 1 || s->dil[d] < 1 || s->stride[d] > 1 << 20 || s->dil[d] > 1 << 20)
      return gr_error(GR_EARG, "%s: invalid stride or dilation", r->where);
  return spatial_pads(r, nsp, in, s);
}

gr_status ox_conv(ox_node_run *r) {
  gr_tensor *x, *w, *b = NULL;
  int nsp;
  gr_status st = spatial_input(r, &x, &nsp);
  if (st || (st = ox_in_f32(r, 1, &w))) return st;
  if (ox_has_in(r, 2) && (st = ox_in_f32(r, 2, &b))) return st;
  if (w->ndim != nsp + 2) return gr_error(GR_ESHAPE, "%s: weight has rank %d for %d-D input", r->where, w->ndim, nsp);
  if (nsp == 1) w = gr_reshape(r->c, w, 4, GR_SHAPE(w->shape[0], w->shape[1], 1, w->shape[2]));
  if (!w) return ox_op_failed(r);
  spatial s;
  s.kernel[0] = w->shape[2];
  s.kernel[1] = w->shape[3];
  int64_t group = ox_attr_int(r, "group", 1, &st);
  if (st || (st = spatial_attrs(r, nsp, x->shape + 2, &s))) return st;
  if (group < 1 || group > x->shape[1] + 1) return gr_error(GR_EARG, "%s: invalid group %lld", r->where, (long long)group);
  if (s.pad[0] != s.pad_end[0] || s.pad[1] != s.pad_end[1]) { /* e.g. TF "same" with stride 2 */
    x = pad_hw(r->c, x, s.pad, s.pad_end, 0.0f);
    if (!x) return ox_op_failed(r);
    s.pad[0] = s.pad[1] = 0;
  }
  gr_conv2d_opts o = {.stride_h = (int)s.stride[0], .stride_w = (int)s.stride[1], .pad_h = (int)s.pad[0],
                      .pad_w = (int)s.pad[1], .dil_h = (int)s.dil[0], .dil_w = (int)s.dil[1], .groups = (int)group};
  return set_spatial_out(r, gr_conv2d(r->c, x, w, b, &o), nsp);
}

static gr_status pool(ox_node_run *r, bool is_max) {
  gr_tensor *x;
  int nsp;
  gr_status st = spatial_input(r, &x, &nsp);
  if (st) return st;
  spatial s;
  if ((st = ints2(r, "kernel_shape", nsp, -1, s.kernel))) return st;
  if (s.kernel[0] < 1 || s.kernel[1] < 1) return gr_error(GR_EFORMAT, "%s: kernel_shape missing or invalid", r->where);
  if ((st = spatial_attrs(r, nsp, x->shape + 2, &s)) || (st = symmetric_pads(r, &s))) return st;
  bool ceil_mode = ox_attr_int(r, "ceil_mode", 0, &st) != 0;
  bool include_pad = ox_attr_int(r, "count_include_pad", 0, &st) != 0;
  if (st) return st;
  if (ceil_mode || s.dil[0] != 1 || s.dil[1] != 1)
    return gr_error(GR_EUNSUPPORTED, "%s: ceil_mode or dilated pooling is not supported", r->where);
  if (r->n_out > 1 && r->node->out[1][0]) return gr_error(GR_EUNSUPPORTED, "%s: the Indices output is not supported", r->where);
  if (2 * s.pad[0] > s.kernel[0] || 2 * s.pad[1] > s.kernel[1])
    return gr_error(GR_EUNSUPPORTED, "%s: padding larger than half the kernel is not supported", r->where);
  gr_pool2d_opts o = {.kernel_h = (int)s.kernel[0], .kernel_w = (int)s.kernel[1], .stride_h = (int)s.stride[0],
                      .stride_w = (int)s.stride[1], .pad_h = (int)s.pad[0], .pad_w = (int)s.pad[1],
                      .count_include_pad = include_pad};
  return set_spatial_out(r, is_max ? gr_max_pool2d(r->c, x, &o) : gr_avg_pool2d(r->c, x, &o), nsp);
}

gr_status ox_max_pool(ox_node_run *r) { return pool(r, true); }
gr_status ox_average_pool(ox_node_run *r) { return pool(r, false); }

gr_status ox_global_average_pool(ox_node_run *r) {
  gr_tensor *x;
  int nsp;
  gr_status st = spatial_input(r, &x, &nsp);
  return st ? st : set_spatial_out(r, gr_global_avg_pool(r->c, x), nsp);
}

gr_status ox_batch_norm(ox_node_run *r) {
  gr_status st = GR_OK;
  float eps = ox_attr_float(r, "epsilon", 1e-5f, &st);
  float momentum = ox_attr_float(r, "momentum", 0.9f, &st);
  int64_t training = ox_attr_int(r, "training_mode", 0, &st);
  if (st) return st;
  if (training || (r->n_out > 1 && r->node->out[1][0]))
    return gr_error(GR_EUNSUPPORTED, "%s: training-mode outputs are not supported", r->where);
  gr_tensor *t[5];
  for (int k = 0; k < 5; k++)
    if ((st = ox_in_f32(r, k, &t[k]))) return st;
  /* ONNX momentum weighs the old running value; graft's (PyTorch's) the new one. */
  return ox_set_f32(r, 0, gr_batch_norm(r->c, t[0], t[1], t[2], t[3], t[4], 1.0f - momentum, eps));
}

gr_status ox_gemm(ox_node_run *r) {
  gr_status st = GR_OK;
  float alpha = ox_attr_float(r, "alpha", 1.0f, &st), beta = ox_attr_float(r, "beta", 1.0f, &st);
  bool ta = ox_attr_int(r, "transA", 0, &st) != 0, tb = ox_attr_int(r, "transB", 0, &st) != 0;
  gr_tensor *a, *b, *cc = NULL;
  if (st || (st = ox_in_f32(r, 0, &a)) || (st = ox_in_f32(r, 1, &b))) return st;
  if (ox_has_in(r, 2) && (st = ox_in_f32(r, 2, &cc))) return st;
  if (a->ndim != 2 || b->ndim != 2) return gr_error(GR_ESHAPE, "%s: A and B must be 2-D", r->where);
  gr_ctx *c = r->c;
  gr_tensor *y = gr_matmul(c, a, b, ta, tb);
  if (y && alpha != 1.0f) y = gr_scale(c, y, alpha);
  if (y && cc && beta != 0.0f) y = gr_add(c, y, beta != 1.0f ? gr_scale(c, cc, beta) : cc);
  return ox_set_f32(r, 0, y);
}

/* numpy matmul: 1-D operands get a unit dim that is dropped again; a 2-D left
 * operand with a batched right one runs as (b^T a^T)^T. */
gr_status ox_matmul(ox_node_run *r) {
  gr_tensor *a, *b;
  gr_status st = ox_in_f32(r, 0, &a);
  if (st || (st = ox_in_f32(r, 1, &b))) return st;
  gr_ctx *c = r->c;
  bool a1 = a->ndim == 1, b1 = b->ndim == 1;
  if (a1) a = gr_reshape(c, a, 2, GR_SHAPE(1, a->shape[0]));
  if (b1) b = gr_reshape(c, b, 2, GR_SHAPE(b->shape[0], 1));
  if (!a || !b) return ox_op_failed(r);
  gr_tensor *y;
  if (a->ndim == 2 && b->ndim > 2) {
    y = gr_matmul(c, b, a, true, true);
    y = y ? gr_transpose(c, y, -1, -2) : NULL;
  } else {
    y = gr_matmul(c, a, b, false, false);
  }
  if (!y) return ox_op_failed(r);
  int64_t dims[GR_MAX_DIMS];
  int nd = 0;
  for (int d = 0; d < y->ndim; d++) {
    if (a1 && d == y->ndim - 2) continue;
    if (b1 && d == y->ndim - 1) continue;
    dims[nd++] = y->shape[d];
  }
  return ox_set_f32(r, 0, nd != y->ndim ? gr_reshape(c, y, nd, dims) : y);
}
