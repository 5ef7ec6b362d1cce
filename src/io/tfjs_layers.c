/* io/tfjs_layers.c — Keras layers as ONNX-style nodes in NCHW, for the TF.js
 * importer (tfjs.c): ZeroPadding2D -> Pad, Conv2D / DepthwiseConv2D -> Conv
 * (kernels [kh,kw,in,out] / [kh,kw,in,mult] transposed to [out,in,kh,kw] /
 * [in*mult,1,kh,kw] with group=in; "same" -> SAME_UPPER, TF's asymmetric
 * split), BatchNormalization (channel axis), ReLU (max_value -> Clip,
 * negative_slope -> LeakyRelu), Activation, Add, Global/Average/MaxPooling2D,
 * Flatten (NHWC order kept by a Transpose first), Dense -> Gemm(transB) with
 * a PyTorch-layout [out,in] weight, Dropout (identity at inference).
 * Weights get PyTorch-style names: "<layer>.weight", ".bias",
 * ".running_mean", ".running_var". Anything else is GR_EUNSUPPORTED naming
 * the layer and its class. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/tfjs_internal.h"

static const cJSON *member(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* A JSON integer in [-4096, 4096], else fallback (no out-of-range casts). */
static int64_t small_int(const cJSON *v, int64_t fallback) {
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= -4096 && v->valuedouble <= 4096) || v->valuedouble != floor(v->valuedouble))
    return fallback;
  return (int64_t)v->valuedouble;
}

static gr_status bad(tf_build *b, const char *what) {
  return gr_error(GR_EFORMAT, "%s: layer '%s': %s", b->what, b->layer, what);
}

/* A 2-int config field (an int n means [n, n]). */
static gr_status pair(tf_build *b, const cJSON *cfg, const char *key, int64_t dflt, int64_t out[2]) {
  const cJSON *v = member(cfg, key);
  out[0] = out[1] = dflt;
  if (!v) return GR_OK;
  if (cJSON_IsNumber(v)) out[0] = out[1] = small_int(v, -1);
  else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2)
    out[0] = small_int(v->child, -1), out[1] = small_int(v->child->next, -1);
  else return gr_error(GR_EFORMAT, "%s: layer '%s': \"%s\" must be an int or [int, int]", b->what, b->layer, key);
  if (out[0] < 1 || out[1] < 1 || out[0] > 4096 || out[1] > 4096)
    return gr_error(GR_EFORMAT, "%s: layer '%s': \"%s\" out of range", b->what, b->layer, key);
  return GR_OK;
}

static gr_status channels_last(tf_build *b, const cJSON *cfg) {
  const cJSON *df = member(cfg, "data_format");
  if (df && (!cJSON_IsString(df) || strcmp(df->valuestring, "channels_last")))
    return gr_error(GR_EUNSUPPORTED, "%s: layer '%s': data_format must be channels_last", b->what, b->layer);
  return GR_OK;
}

static gr_status need_rank(tf_build *b, const char *in, int rank) {
  int r = tf_rank(b, in);
  if (r != rank) return gr_error(GR_ESHAPE, "%s: layer '%s' needs a rank-%d input, '%s' has rank %d", b->what, b->layer, rank, in, r);
  return GR_OK;
}

static const char *wname(tf_build *b, const char *local) {
  char buf[200];
  snprintf(buf, sizeof buf, "%s.%s", b->layer, local);
  return tf_strdup(b, buf);
}

/* The activation of a layer config after the node that produced pre. */
static gr_status activation(tf_build *b, const char *act, const char *pre, int rank) {
  const char *op = !strcmp(act, "relu") ? "Relu" : !strcmp(act, "sigmoid") ? "Sigmoid" : !strcmp(act, "tanh") ? "Tanh"
                 : !strcmp(act, "softmax") ? "Softmax" : !strcmp(act, "relu6") ? "Clip" : NULL;
  if (!op) return gr_error(GR_EUNSUPPORTED, "%s: layer '%s': activation '%s'", b->what, b->layer, act);
  gr_onnx_node *n = tf_node(b, op, b->layer, 1, &pre, b->layer);
  gr_status st = n ? GR_OK : gr_last_status();
  if (!st && !strcmp(act, "relu6")) st = tf_attr_float(b, n, "min", 0.0f), st = st ? st : tf_attr_float(b, n, "max", 6.0f);
  if (!st && !strcmp(op, "Softmax")) st = tf_attr_int(b, n, "axis", 1);
  return st ? st : tf_rank_set(b, b->layer, rank);
}

/* Output of a weighted layer: the layer name, or "<layer>/linear" followed
 * by the activation node. */
static gr_status finish_with_activation(tf_build *b, const cJSON *cfg, gr_onnx_node *n, int rank) {
  const cJSON *act = member(cfg, "activation");
  if (act && !cJSON_IsString(act)) return bad(b, "\"activation\" must be a string");
  if (!act || !strcmp(act->valuestring, "linear")) return tf_rank_set(b, b->layer, rank);
  char pre[200];
  snprintf(pre, sizeof pre, "%s/linear", b->layer);
  if (!(n->out[0] = tf_strdup(b, pre))) return GR_ENOMEM;
  return activation(b, act->valuestring, pre, rank);
}

static gr_status zero_padding(tf_build *b, const cJSON *cfg, const char *in) {
  const cJSON *p = member(cfg, "padding");
  int64_t t, bo, l, r;
  if (cJSON_IsNumber(p)) {
    t = bo = l = r = small_int(p, -1);
  } else if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 2 && cJSON_IsNumber(p->child)) {
    t = bo = small_int(p->child, -1), l = r = small_int(p->child->next, -1);
  } else if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 2 && cJSON_GetArraySize(p->child) == 2 &&
             cJSON_GetArraySize(p->child->next) == 2) {
    const cJSON *h = p->child->child, *w = p->child->next->child;
    t = small_int(h, -1), bo = small_int(h->next, -1), l = small_int(w, -1), r = small_int(w->next, -1);
  } else {
    return bad(b, "\"padding\" must be n, [h, w] or [[top, bottom], [left, right]]");
  }
  if (t < 0 || bo < 0 || l < 0 || r < 0 || t > 4096 || bo > 4096 || l > 4096 || r > 4096) return bad(b, "padding out of range");
  gr_status st = channels_last(b, cfg);
  if (st || (st = need_rank(b, in, 4))) return st;
  gr_onnx_node *n = tf_node(b, "Pad", b->layer, 1, &in, b->layer);
  int64_t pads[8] = {0, 0, t, l, 0, 0, bo, r};
  if (!n || (st = tf_attr_ints(b, n, "pads", 8, pads)) || (st = tf_attr_str(b, n, "mode", "constant"))) return n ? st : gr_last_status();
  return tf_rank_set(b, b->layer, 4);
}

/* Conv2D (depthwise false) and DepthwiseConv2D. */
static gr_status conv(tf_build *b, const cJSON *cfg, const char *in, bool depthwise) {
  int64_t stride[2], dil[2];
  gr_status st = channels_last(b, cfg);
  if (st || (st = pair(b, cfg, "strides", 1, stride)) || (st = pair(b, cfg, "dilation_rate", 1, dil)) ||
      (st = need_rank(b, in, 4)))
    return st;
  const cJSON *pad = member(cfg, "padding"), *use_bias = member(cfg, "use_bias");
  if (!cJSON_IsString(pad) || (strcmp(pad->valuestring, "valid") && strcmp(pad->valuestring, "same")))
    return bad(b, "\"padding\" must be \"valid\" or \"same\"");
  const tf_weight *k = tf_weight_find(b, b->layer, depthwise ? "depthwise_kernel" : "kernel");
  if (!k) return gr_last_status();
  if (k->ndim != 4) return bad(b, "the kernel must be 4-D");
  int64_t kh = k->dims[0], kw = k->dims[1], ci = k->dims[2], co = k->dims[3]; /* co: out, or the multiplier */
  int64_t wd[4] = {depthwise ? ci * co : co, depthwise ? 1 : ci, kh, kw};
  gr_onnx_tensor *w = tf_init(b, wname(b, "weight"), 4, wd);
  if (!w) return gr_last_status();
  for (int64_t i = 0; i < kh; i++)
    for (int64_t j = 0; j < kw; j++)
      for (int64_t c = 0; c < ci; c++)
        for (int64_t o = 0; o < co; o++) {
          float v = k->values[((i * kw + j) * ci + c) * co + o];
          if (depthwise) w->f32[((c * co + o) * kh + i) * kw + j] = v;
          else w->f32[((o * ci + c) * kh + i) * kw + j] = v;
        }
  const char *ins[3] = {in, w->name, NULL};
  int n_in = 2;
  if (!cJSON_IsFalse(use_bias)) {
    const tf_weight *bias = tf_weight_find(b, b->layer, "bias");
    gr_onnx_tensor *bt = bias && bias->numel == wd[0] ? tf_init(b, wname(b, "bias"), 1, &wd[0]) : NULL;
    if (!bt) return bias ? bad(b, "bias size differs from the output channels") : gr_last_status();
    memcpy(bt->f32, bias->values, (size_t)bt->numel * sizeof *bt->f32);
    ins[n_in++] = bt->name;
  }
  gr_onnx_node *n = tf_node(b, "Conv", b->layer, n_in, ins, b->layer);
  if (!n) return gr_last_status();
  int64_t ks[2] = {kh, kw};
  if ((st = tf_attr_ints(b, n, "kernel_shape", 2, ks)) || (st = tf_attr_ints(b, n, "strides", 2, stride)) ||
      (st = tf_attr_ints(b, n, "dilations", 2, dil)) || (st = tf_attr_int(b, n, "group", depthwise ? ci : 1)))
    return st;
  if (!strcmp(pad->valuestring, "same") && (st = tf_attr_str(b, n, "auto_pad", "SAME_UPPER"))) return st;
  return finish_with_activation(b, cfg, n, 4);
}

static gr_status copy_or_fill(tf_build *b, const char *param, bool present, float fill, int64_t ch, const char **name,
                              const char *local) {
  gr_onnx_tensor *t = tf_init(b, wname(b, local), 1, &ch);
  if (!t) return gr_last_status();
  *name = t->name;
  if (!present) {
    for (int64_t i = 0; i < ch; i++) t->f32[i] = fill;
    return GR_OK;
  }
  const tf_weight *w = tf_weight_find(b, b->layer, param);
  if (!w) return gr_last_status();
  if (w->numel != ch) return bad(b, "batch-norm parameters of different sizes");
  memcpy(t->f32, w->values, (size_t)ch * sizeof *t->f32);
  return GR_OK;
}

static gr_status batch_norm(tf_build *b, const cJSON *cfg, const char *in) {
  const cJSON *axis = member(cfg, "axis"), *eps = member(cfg, "epsilon"), *mom = member(cfg, "momentum");
  int rank = tf_rank(b, in);
  int ax = (int)small_int(cJSON_IsArray(axis) ? axis->child : axis, -1);
  if (ax != -1 && ax != rank - 1) return bad(b, "batch normalization must be over the channel (last) axis");
  if (rank != 2 && rank != 4) return bad(b, "batch normalization of a rank other than 2 or 4");
  const tf_weight *mean = tf_weight_find(b, b->layer, "moving_mean");
  if (!mean) return gr_last_status();
  int64_t ch = mean->numel;
  const char *names[5] = {in};
  gr_status st = copy_or_fill(b, "gamma", !cJSON_IsFalse(member(cfg, "scale")), 1.0f, ch, &names[1], "weight");
  if (!st) st = copy_or_fill(b, "beta", !cJSON_IsFalse(member(cfg, "center")), 0.0f, ch, &names[2], "bias");
  if (!st) st = copy_or_fill(b, "moving_mean", true, 0.0f, ch, &names[3], "running_mean");
  if (!st) st = copy_or_fill(b, "moving_variance", true, 1.0f, ch, &names[4], "running_var");
  gr_onnx_node *n = st ? NULL : tf_node(b, "BatchNormalization", b->layer, 5, names, b->layer);
  if (!n) return st ? st : gr_last_status();
  if ((st = tf_attr_float(b, n, "epsilon", cJSON_IsNumber(eps) ? (float)eps->valuedouble : 1e-3f)) ||
      (st = tf_attr_float(b, n, "momentum", cJSON_IsNumber(mom) ? (float)mom->valuedouble : 0.99f)))
    return st;
  return tf_rank_set(b, b->layer, rank);
}

static gr_status relu_layer(tf_build *b, const cJSON *cfg, const char *in) {
  const cJSON *mx = member(cfg, "max_value"), *slope = member(cfg, "negative_slope"), *th = member(cfg, "threshold");
  float s = cJSON_IsNumber(slope) ? (float)slope->valuedouble : 0.0f;
  if (cJSON_IsNumber(th) && th->valuedouble != 0) return gr_error(GR_EUNSUPPORTED, "%s: layer '%s': ReLU threshold", b->what, b->layer);
  if (cJSON_IsNumber(mx) && s != 0) return gr_error(GR_EUNSUPPORTED, "%s: layer '%s': ReLU with both max_value and negative_slope", b->what, b->layer);
  const char *op = cJSON_IsNumber(mx) ? "Clip" : s != 0 ? "LeakyRelu" : "Relu";
  gr_onnx_node *n = tf_node(b, op, b->layer, 1, &in, b->layer);
  gr_status st = n ? GR_OK : gr_last_status();
  if (!st && cJSON_IsNumber(mx)) st = tf_attr_float(b, n, "min", 0.0f), st = st ? st : tf_attr_float(b, n, "max", (float)mx->valuedouble);
  if (!st && s != 0) st = tf_attr_float(b, n, "alpha", s);
  return st ? st : tf_rank_set(b, b->layer, tf_rank(b, in));
}

static gr_status add_layer(tf_build *b, int n_in, const char *const *in) {
  if (n_in < 2) return bad(b, "Add needs at least two inputs");
  int rank = tf_rank(b, in[0]);
  const char *acc = in[0];
  for (int k = 1; k < n_in; k++) {
    char out[200];
    if (k < n_in - 1) snprintf(out, sizeof out, "%s/sum%d", b->layer, k);
    else snprintf(out, sizeof out, "%s", b->layer);
    const char *pair_in[2] = {acc, in[k]};
    gr_onnx_node *n = tf_node(b, "Add", b->layer, 2, pair_in, out);
    if (!n) return gr_last_status();
    acc = n->out[0];
  }
  return tf_rank_set(b, b->layer, rank);
}

static gr_status pooling(tf_build *b, const cJSON *cfg, const char *in, const char *op) {
  int64_t k[2], s[2];
  gr_status st = channels_last(b, cfg);
  if (st || (st = need_rank(b, in, 4)) || (st = pair(b, cfg, "pool_size", 2, k))) return st;
  if ((st = pair(b, cfg, "strides", 0, s)) && member(cfg, "strides") && !cJSON_IsNull(member(cfg, "strides"))) return st;
  gr_clear_error();
  if (!member(cfg, "strides") || cJSON_IsNull(member(cfg, "strides"))) s[0] = k[0], s[1] = k[1];
  const cJSON *pad = member(cfg, "padding");
  if (pad && (!cJSON_IsString(pad) || strcmp(pad->valuestring, "valid")))
    return gr_error(GR_EUNSUPPORTED, "%s: layer '%s': pooling with padding other than \"valid\"", b->what, b->layer);
  gr_onnx_node *n = tf_node(b, op, b->layer, 1, &in, b->layer);
  if (!n || (st = tf_attr_ints(b, n, "kernel_shape", 2, k)) || (st = tf_attr_ints(b, n, "strides", 2, s)))
    return n ? st : gr_last_status();
  return tf_rank_set(b, b->layer, 4);
}

/* GlobalAveragePooling2D: [N,C,H,W] -> [N,C] (GlobalAveragePool + Flatten). */
static gr_status global_avg(tf_build *b, const cJSON *cfg, const char *in) {
  gr_status st = channels_last(b, cfg);
  if (st || (st = need_rank(b, in, 4))) return st;
  char mid[200];
  snprintf(mid, sizeof mid, "%s/pool", b->layer);
  gr_onnx_node *n = tf_node(b, "GlobalAveragePool", b->layer, 1, &in, mid);
  const char *pin = n ? n->out[0] : NULL;
  gr_onnx_node *f = n ? tf_node(b, "Flatten", b->layer, 1, &pin, b->layer) : NULL;
  if (!f || (st = tf_attr_int(b, f, "axis", 1))) return f ? st : gr_last_status();
  return tf_rank_set(b, b->layer, 2);
}

/* Flatten in Keras order: NHWC, so NCHW values are transposed first. */
static gr_status flatten(tf_build *b, const char *in) {
  const char *src = in;
  gr_status st;
  if (tf_rank(b, in) == 4) {
    char mid[200];
    snprintf(mid, sizeof mid, "%s/nhwc", b->layer);
    gr_onnx_node *t = tf_node(b, "Transpose", b->layer, 1, &in, mid);
    int64_t perm[4] = {0, 2, 3, 1};
    if (!t || (st = tf_attr_ints(b, t, "perm", 4, perm))) return t ? st : gr_last_status();
    src = t->out[0];
  }
  gr_onnx_node *f = tf_node(b, "Flatten", b->layer, 1, &src, b->layer);
  if (!f || (st = tf_attr_int(b, f, "axis", 1))) return f ? st : gr_last_status();
  return tf_rank_set(b, b->layer, 2);
}

static gr_status dense(tf_build *b, const cJSON *cfg, const char *in) {
  gr_status st = need_rank(b, in, 2);
  if (st) return st;
  const tf_weight *k = tf_weight_find(b, b->layer, "kernel");
  if (!k) return gr_last_status();
  if (k->ndim != 2) return bad(b, "the kernel must be 2-D");
  int64_t fin = k->dims[0], fout = k->dims[1], wd[2] = {fout, fin};
  gr_onnx_tensor *w = tf_init(b, wname(b, "weight"), 2, wd);
  if (!w) return gr_last_status();
  for (int64_t i = 0; i < fin; i++)
    for (int64_t o = 0; o < fout; o++) w->f32[o * fin + i] = k->values[i * fout + o];
  const char *ins[3] = {in, w->name, NULL};
  int n_in = 2;
  if (!cJSON_IsFalse(member(cfg, "use_bias"))) {
    const tf_weight *bias = tf_weight_find(b, b->layer, "bias");
    gr_onnx_tensor *bt = bias && bias->numel == fout ? tf_init(b, wname(b, "bias"), 1, &fout) : NULL;
    if (!bt) return bias ? bad(b, "bias size differs from units") : gr_last_status();
    memcpy(bt->f32, bias->values, (size_t)fout * sizeof *bt->f32);
    ins[n_in++] = bt->name;
  }
  gr_onnx_node *n = tf_node(b, "Gemm", b->layer, n_in, ins, b->layer);
  if (!n || (st = tf_attr_int(b, n, "transB", 1))) return n ? st : gr_last_status();
  return finish_with_activation(b, cfg, n, 2);
}

static gr_status passthrough(tf_build *b, const char *op, const char *in) {
  gr_onnx_node *n = tf_node(b, op, b->layer, 1, &in, b->layer);
  return n ? tf_rank_set(b, b->layer, tf_rank(b, in)) : gr_last_status();
}

gr_status tf_convert_layer(tf_build *b, const cJSON *layer, int n_in, const char *const *in) {
  const char *cls = member(layer, "class_name")->valuestring;
  const cJSON *cfg = member(layer, "config");
  if (strcmp(cls, "Add") && n_in != 1)
    return gr_error(GR_EUNSUPPORTED, "%s: layer '%s' (%s) with %d inputs", b->what, b->layer, cls, n_in);
  if (!strcmp(cls, "ZeroPadding2D")) return zero_padding(b, cfg, in[0]);
  if (!strcmp(cls, "Conv2D")) return conv(b, cfg, in[0], false);
  if (!strcmp(cls, "DepthwiseConv2D")) return conv(b, cfg, in[0], true);
  if (!strcmp(cls, "BatchNormalization")) return batch_norm(b, cfg, in[0]);
  if (!strcmp(cls, "ReLU")) return relu_layer(b, cfg, in[0]);
  if (!strcmp(cls, "Activation")) {
    const cJSON *a = member(cfg, "activation");
    if (!cJSON_IsString(a)) return bad(b, "\"activation\" must be a string");
    return strcmp(a->valuestring, "linear") ? activation(b, a->valuestring, in[0], tf_rank(b, in[0]))
                                            : passthrough(b, "Identity", in[0]);
  }
  if (!strcmp(cls, "Add")) return add_layer(b, n_in, in);
  if (!strcmp(cls, "GlobalAveragePooling2D")) return global_avg(b, cfg, in[0]);
  if (!strcmp(cls, "AveragePooling2D")) return pooling(b, cfg, in[0], "AveragePool");
  if (!strcmp(cls, "MaxPooling2D")) return pooling(b, cfg, in[0], "MaxPool");
  if (!strcmp(cls, "Flatten")) return flatten(b, in[0]);
  if (!strcmp(cls, "Dense")) return dense(b, cfg, in[0]);
  if (!strcmp(cls, "Dropout")) return passthrough(b, "Dropout", in[0]);
  return gr_error(GR_EUNSUPPORTED, "%s: layer '%s' of class %s is not supported", b->what, b->layer, cls);
}
