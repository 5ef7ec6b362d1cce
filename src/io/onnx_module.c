/* io/onnx_module.c — an imported graph as an ordinary graft module, so a
 * model directory with "architecture": "onnx_graph" loads, evaluates,
 * fine-tunes and saves like any other (see graft/onnx.h).
 *
 * Tree: the root (kind "OnnxGraph") runs the graph with gr_onnx_run_ex,
 * binding every weight value to a parameter or buffer of the model, so
 * gradients reach the weights and freezing by name works. The weights live
 * in children of kind "OnnxWeights", one per name prefix (up to the last dot;
 * at most GR_MODULE_MAX_PARAMS per child, more children share a prefix when
 * needed), so every state_dict name equals the graph's value name. Weights
 * a Conv/Gemm/MatMul/PRelu or a BatchNormalization scale/bias reads are
 * parameters; batch-norm running statistics and every other constant are
 * buffers. An optional child "head" (Linear) classifies the features at a cut
 * value ("features_at"; a 4-D value is globally average-pooled first).
 *
 * Input: a batch [N,C,H,W] of another size is resized bilinearly (PyTorch's
 * align_corners=False) to the graph's size, one channel is repeated to the
 * graph's channel count, then x*input_scale + input_shift. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graft/data.h"
#include "graft/fileio.h"
#include "graft/safetensors.h"
#include "io/onnx_json.h"

#define CONFIG_MAX_BYTES (64u << 20)

typedef struct ox_graph_module {
  gr_onnx_model graph;       /* model arena */
  int n_w;
  const char **w_names;      /* value names = state_dict names */
  gr_tensor **w;
  int in_ch, h, w_px;        /* the size the graph is fed */
  float scale, shift;
  const char *features_at;   /* NULL: the graph's first output */
  gr_module *head;           /* NULL: none */
} ox_graph_module;

static const char *KIND = "OnnxGraph";

bool gr_onnx_module_is(const gr_module *root) { return root && root->kind == KIND; }

/* ---- input preparation ----------------------------------------------------- */

/* R [out, in]: bilinear weights, align_corners=False, edge-clamped. */
static gr_tensor *resize_matrix(gr_ctx *c, int64_t out, int64_t in) {
  gr_tensor *r = gr_tensor_new(c, 2, GR_SHAPE(out, in));
  for (int64_t i = 0; r && i < out; i++) {
    double src = ((double)i + 0.5) * (double)in / (double)out - 0.5;
    if (src < 0) src = 0;
    int64_t i0 = (int64_t)src, i1 = i0 + 1 < in ? i0 + 1 : in - 1;
    float l = (float)(src - (double)i0);
    r->data[i * in + i0] += 1.0f - l;
    r->data[i * in + i1] += l;
  }
  return r;
}

/* x [N,C,h,w] -> [N,C,H,W]: (Rh x) Rw^T as two matmuls. */
static gr_tensor *resize_bilinear(gr_ctx *c, gr_tensor *x, int64_t H, int64_t W) {
  gr_tensor *rw = resize_matrix(c, W, x->shape[3]), *rh = resize_matrix(c, H, x->shape[2]);
  if (!rw || !rh) return NULL;
  gr_tensor *y = gr_matmul(c, x, rw, false, true);        /* [N,C,h,W] */
  y = y ? gr_transpose(c, y, 2, 3) : NULL;                  /* [N,C,W,h] */
  y = y ? gr_matmul(c, y, rh, false, true) : NULL;          /* [N,C,W,H] */
  return y ? gr_transpose(c, y, 2, 3) : NULL;
}

static gr_tensor *prepare_input(const ox_graph_module *g, gr_ctx *c, gr_tensor *x) {
  char a[64];
  if (!x || x->ndim != 4 || (x->shape[1] != g->in_ch && x->shape[1] != 1)) {
    gr_error(GR_ESHAPE, "OnnxGraph: input %s, expected [N,%d,H,W] or [N,1,H,W]", x ? gr_shape_str(x, a, sizeof a) : "NULL",
             g->in_ch);
    return NULL;
  }
  if (x->shape[2] != g->h || x->shape[3] != g->w_px) x = resize_bilinear(c, x, g->h, g->w_px);
  if (x && x->shape[1] != g->in_ch) {
    gr_tensor *copies[16];
    for (int i = 0; i < g->in_ch && i < 16; i++) copies[i] = x;
    x = g->in_ch <= 16 ? gr_concat(c, g->in_ch, copies, 1) : NULL;
  }
  if (x && g->scale != 1.0f) x = gr_scale(c, x, g->scale);
  if (x && g->shift != 0.0f) x = gr_add_scalar(c, x, g->shift);
  return x;
}

/* A cut value as features [N,F]: 4-D is globally average-pooled. */
static gr_tensor *as_features(gr_ctx *c, gr_tensor *y) {
  if (y && y->ndim == 4) y = gr_global_avg_pool(c, y);
  return y ? gr_reshape(c, y, 2, GR_SHAPE(y->shape[0], -1)) : NULL;
}

static gr_tensor *run_graph(ox_graph_module *g, gr_ctx *c, gr_tensor *x, bool training) {
  gr_tensor *in = prepare_input(g, c, x);
  if (!in) return NULL;
  bool prev = gr_ctx_training(c);
  gr_ctx_set_training(c, training);
  const char *stop = g->features_at ? g->features_at : g->graph.outputs[0].name;
  gr_onnx_run_opts o = {g->n_w, g->w_names, g->w, stop};
  gr_tensor *y = NULL;
  gr_status st = gr_onnx_run_ex(c, &g->graph, &o, 1, &in, 1, &y);
  gr_ctx_set_training(c, prev);
  return st ? NULL : y;
}

static gr_tensor *graph_forward(gr_module *mod, gr_ctx *c, gr_tensor *x) {
  ox_graph_module *g = mod->cfg;
  gr_tensor *y = run_graph(g, c, x, mod->training && !mod->model->inference);
  if (y && g->features_at) y = as_features(c, y);
  if (y && g->head) y = g->head->forward(g->head, c, y);
  return y;
}

/* ---- weights ------------------------------------------------------------------ */

/* True when a node reads name as a trainable weight. */
static bool is_trainable_weight(const gr_onnx_model *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++) {
    const gr_onnx_node *n = &g->nodes[i];
    const char *op = n->op_type;
    for (int k = 0; k < n->n_in; k++) {
      if (strcmp(n->in[k], name)) continue;
      if (!strcmp(op, "BatchNormalization")) {
        if (k == 1 || k == 2) return true;
      } else if (!strcmp(op, "MatMul") || (k >= 1 && (!strcmp(op, "Conv") || !strcmp(op, "Gemm") || !strcmp(op, "PRelu")))) {
        return true;
      }
    }
  }
  return false;
}

/* The child holding a weight of this prefix (with room), or a new one. */
static gr_module *holder_for(gr_module *root, const char *prefix, size_t plen) {
  for (int i = root->n_children - 1; i >= 0; i--) {
    gr_module *h = root->children[i];
    if (strlen(h->name) == plen && !strncmp(h->name, prefix, plen) && h->n_p < GR_MODULE_MAX_PARAMS) return h;
  }
  gr_module *h = gr_module_new(root->model, "OnnxWeights", NULL);
  char tmp[24];
  snprintf(tmp, sizeof tmp, "w%d", root->n_children);
  if (!h || gr_module_add(root, tmp, h)) return NULL;
  /* the prefix may hold dots: the state_dict name must be the value name */
  memcpy(h->name, prefix, plen);
  h->name[plen] = 0;
  return h;
}

static gr_status add_weight(gr_module *root, ox_graph_module *g, const gr_st_tensor *st) {
  const char *name = st->name, *dot = strrchr(name, '.');
  size_t plen = dot ? (size_t)(dot - name) : 0;
  while (plen >= sizeof root->name) { /* prefix too long for a module name: keep more in the local name */
    const char *d = memrchr(name, '.', plen);
    plen = d ? (size_t)(d - name) : 0;
  }
  gr_module *h = holder_for(root, name, plen);
  if (!h) return gr_last_status();
  int64_t shape[GR_MAX_DIMS];
  if (st->ndim > GR_MAX_DIMS) return gr_error(GR_EFORMAT, "OnnxGraph: weight '%s' has %d dims", name, st->ndim);
  for (int d = 0; d < st->ndim; d++) shape[d] = (int64_t)st->shape[d];
  bool buffer = !is_trainable_weight(&g->graph, name);
  const char *local = name + plen + (plen ? 1 : 0);
  gr_tensor *t = gr_module_new_param(h, local, st->ndim, shape, buffer);
  if (!t) return gr_last_status();
  g->w_names[g->n_w] = name;
  g->w[g->n_w++] = t;
  return GR_OK;
}

/* Creates every tensor of the weights file (values are loaded later). */
static gr_status add_weights(gr_module *root, ox_graph_module *g, const char *weights_path) {
  gr_st_file *f = NULL;
  gr_status s = gr_st_open(weights_path, &f);
  if (s) return s;
  size_t n = gr_st_count(f);
  gr_arena *a = root->model->arena;
  g->w_names = gr_arena_alloc(a, (n + 1) * sizeof *g->w_names);
  g->w = gr_arena_alloc(a, (n + 1) * sizeof *g->w);
  if (!g->w_names || !g->w) s = gr_error(GR_ENOMEM, "%s: out of memory", weights_path);
  for (size_t i = 0; !s && i < n; i++) {
    const gr_st_tensor *t = gr_st_at(f, i);
    if (!strncmp(t->name, "head.", 5)) continue; /* the classifier head's own */
    size_t len = strlen(t->name);
    char *name = gr_arena_alloc(a, len + 1);
    if (!name) s = gr_error(GR_ENOMEM, "%s: out of memory", weights_path);
    else memcpy(name, t->name, len + 1);
    gr_st_tensor copy = *t;
    copy.name = name;
    if (!s) s = add_weight(root, g, &copy);
  }
  gr_st_close(f);
  return s;
}

/* ---- config ------------------------------------------------------------------- */

static const cJSON *member(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static float number_or(const cJSON *o, const char *key, float dflt, const char *path, gr_status *st) {
  const cJSON *v = member(o, key);
  if (!v) return dflt;
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
    *st = gr_error(GR_EFORMAT, "%s: \"%s\" must be a finite number", path, key);
    return dflt;
  }
  return (float)v->valuedouble;
}

static const char *arena_str(gr_arena *a, const char *s) {
  size_t n = strlen(s);
  char *d = gr_arena_alloc(a, n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

/* Graph, input preparation and cut point from config.json; *head_in > 0
 * when the directory holds a trained head. */
static gr_status read_graph_config(const char *path, gr_arena *a, ox_graph_module *g, int64_t *head_in) {
  char *txt = NULL;
  size_t len = 0;
  gr_status st = gr_read_file(path, CONFIG_MAX_BYTES, &txt, &len);
  if (st) return st;
  cJSON *o = cJSON_ParseWithLength(txt, len);
  gr_free(txt);
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    return gr_error(GR_EFORMAT, "%s: not a JSON object", path);
  }
  st = ox_graph_from_json(member(o, "graph"), path, a, &g->graph);
  g->scale = number_or(o, "input_scale", 1.0f, path, &st);
  g->shift = number_or(o, "input_shift", 0.0f, path, &st);
  *head_in = (int64_t)number_or(o, "head_in", 0.0f, path, &st);
  const cJSON *cut = member(o, "features_at");
  if (!st && cut && !cJSON_IsString(cut)) st = gr_error(GR_EFORMAT, "%s: \"features_at\" must be a string", path);
  if (!st && cut && !(g->features_at = arena_str(a, cut->valuestring))) st = gr_error(GR_ENOMEM, "%s: out of memory", path);
  if (!st && *head_in < 0) st = gr_error(GR_EFORMAT, "%s: \"head_in\" must be >= 0", path);
  cJSON_Delete(o);
  if (st) return st;
  if (gr_onnx_n_feeds(&g->graph) != 1 || g->graph.n_outputs < 1)
    return gr_error(GR_EUNSUPPORTED, "%s: a graph module takes 1 input and gives at least 1 output (this graph: %d, %d)",
                    path, gr_onnx_n_feeds(&g->graph), g->graph.n_outputs);
  return gr_onnx_check(&g->graph);
}

static gr_status attach_head(gr_module *root, ox_graph_module *g, int64_t in, int n_classes) {
  gr_module *head = gr_nn_linear(root->model, in, n_classes, true);
  if (!head) return gr_last_status();
  gr_status st = gr_module_add(root, "head", head);
  if (!st) g->head = head;
  return st;
}

gr_module *gr_onnx_module_build(gr_model *m, const char *config_path, const char *weights_path,
                                const gr_onnx_module_shape *shape) {
  if (!m || !config_path || !weights_path || !shape) {
    gr_error(GR_EARG, "OnnxGraph: NULL argument");
    return NULL;
  }
  gr_module *root = gr_module_new(m, KIND, graph_forward);
  ox_graph_module *g = root ? gr_arena_alloc(m->arena, sizeof *g) : NULL;
  if (!g) return NULL;
  memset(g, 0, sizeof *g);
  root->cfg = g;
  g->in_ch = shape->in_ch, g->h = shape->h, g->w_px = shape->w;
  int64_t head_in = 0;
  gr_status st = read_graph_config(config_path, m->arena, g, &head_in);
  if (!st) st = add_weights(root, g, weights_path);
  if (!st && head_in > 0) st = attach_head(root, g, head_in, shape->n_classes);
  return st ? NULL : root;
}

gr_status gr_onnx_module_set_head(gr_model *m, const char *features_at, int n_classes) {
  if (!m || !gr_onnx_module_is(m->root) || n_classes < 1)
    return gr_error(GR_EARG, "OnnxGraph head: not a graph model, or %d classes", n_classes);
  ox_graph_module *g = m->root->cfg;
  if (g->head) return gr_error(GR_ESTATE, "OnnxGraph head: the model already has a head");
  if (features_at && !(g->features_at = arena_str(m->arena, features_at))) return GR_ENOMEM;
  if (!g->features_at) {
    gr_status st = gr_onnx_default_cut(&g->graph, &g->features_at);
    if (st) return st;
  }
  /* one eval-mode pass on a zero image gives the feature width */
  gr_ctx *c = gr_ctx_new(1 << 20, 0);
  gr_tensor *x = c ? gr_tensor_new(c, 4, GR_SHAPE(1, g->in_ch, g->h, g->w_px)) : NULL;
  if (c) gr_ctx_set_grad(c, false);
  gr_tensor *y = x ? as_features(c, run_graph(g, c, x, false)) : NULL;
  int64_t in = y ? y->shape[1] : 0;
  gr_ctx_free(c);
  if (!y) return gr_last_status() ? gr_last_status() : GR_ENOMEM;
  gr_status st = attach_head(m->root, g, in, n_classes);
  return st ? st : gr_model_layout(m);
}

gr_status gr_onnx_default_cut(const gr_onnx_model *g, const char **out) {
  *out = NULL;
  for (int i = g->n_nodes - 1; i >= 0 && !*out; i--) {
    const gr_onnx_node *n = &g->nodes[i];
    if ((!strcmp(n->op_type, "MatMul") || !strcmp(n->op_type, "Gemm")) && n->n_in > 0) *out = n->in[0];
  }
  return *out ? GR_OK : gr_error(GR_ENOTFOUND, "OnnxGraph: no MatMul/Gemm classifier to cut before; give a features layer");
}

gr_tensor *gr_onnx_module_features(gr_model *m, gr_ctx *c, gr_tensor *x) {
  if (!m || !gr_onnx_module_is(m->root) || !c) {
    gr_error(GR_EARG, "OnnxGraph features: not a graph model");
    return NULL;
  }
  ox_graph_module *g = m->root->cfg;
  if (!g->features_at && gr_onnx_default_cut(&g->graph, &g->features_at)) return NULL;
  return as_features(c, run_graph(g, c, x, m->root->training && !m->inference));
}

/* The tensor bound to weight value name (NULL: none). */
static gr_tensor *bound_weight(const ox_graph_module *g, const char *name) {
  for (int j = 0; j < g->n_w; j++)
    if (!strcmp(g->w_names[j], name)) return g->w[j];
  return NULL;
}

/* Sets t to N(0, std^2) (Box-Muller on the model's rng). */
static void fill_const(gr_tensor *t, float v) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = v;
}

/* The role of weight k of node n: 'w' weight, 'g' BN scale, 'm' BN mean,
 * 'v' BN variance, 'z' zero (biases, BN shift), 0 constant. */
static char weight_role(const gr_onnx_node *n, int k) {
  const char *op = n->op_type;
  if (!strcmp(op, "BatchNormalization")) return "?gzmv"[k < 5 ? k : 0];
  if (!strcmp(op, "Conv") || !strcmp(op, "Gemm")) return k == 1 ? 'w' : k == 2 ? 'z' : 0;
  if (!strcmp(op, "MatMul")) return 'w';
  return 0;
}

/* fan_in of the weight node n reads at input 1 (conv: in/groups*kh*kw;
 * Gemm/MatMul: the contracted dim); 0 when it is not bound. */
static double weight_fan_in(const ox_graph_module *g, const gr_onnx_node *n) {
  gr_tensor *w = n->n_in > 1 ? bound_weight(g, n->in[1]) : NULL;
  if (!w || w->ndim < 1) return 0;
  if (!strcmp(n->op_type, "Conv")) return w->ndim == 4 ? (double)(w->shape[1] * w->shape[2] * w->shape[3]) : 0;
  const gr_onnx_attr *tb = gr_onnx_attr_find(n, "transB");
  bool trans = !strcmp(n->op_type, "Gemm") && tb && tb->i;
  return (double)w->shape[trans && w->ndim == 2 ? 1 : 0];
}

/* Weight or bias t (role 'w' or 'z') of node n drawn as init says. */
static void reinit_weight(const ox_graph_module *g, const gr_onnx_node *n, gr_tensor *t, char role, gr_onnx_init init,
                          gr_rng *r) {
  bool is_bias = role == 'z' && strcmp(n->op_type, "BatchNormalization");
  if (init == GR_ONNX_INIT_TORCH_DEFAULT && (role == 'w' || is_bias)) {
    double fan = weight_fan_in(g, n);
    float bound = fan > 0 ? (float)(1.0 / sqrt(fan)) : 0.0f;
    gr_rng_fill_uniform(r, t->data, t->numel, -bound, bound);
  } else if (role == 'w' && t->ndim == 4) {
    gr_rng_fill_normal(r, t->data, t->numel, 0.0f, (float)sqrt(2.0 / (double)(t->shape[0] * t->shape[2] * t->shape[3])));
  } else if (role == 'w') {
    gr_rng_fill_normal(r, t->data, t->numel, 0.0f, 0.01f);
  } else {
    fill_const(t, role == 'g' || role == 'v' ? 1.0f : 0.0f);
  }
}

gr_status gr_onnx_module_reinit(gr_model *m, gr_rng *r, gr_onnx_init init) {
  if (!m || !r || !gr_onnx_module_is(m->root)) return gr_error(GR_EARG, "OnnxGraph reinit: not a graph model");
  if (init != GR_ONNX_INIT_TORCHVISION && init != GR_ONNX_INIT_TORCH_DEFAULT)
    return gr_error(GR_EARG, "OnnxGraph reinit: unknown init %d", (int)init);
  ox_graph_module *g = m->root->cfg;
  for (int i = 0; i < g->graph.n_nodes; i++) {
    const gr_onnx_node *n = &g->graph.nodes[i];
    for (int k = 1; k < n->n_in; k++) {
      char role = weight_role(n, k);
      gr_tensor *t = role ? bound_weight(g, n->in[k]) : NULL;
      if (t) reinit_weight(g, n, t, role, init, r);
    }
  }
  if (g->head) return gr_init_module(g->head, r, GR_INIT_TORCH_DEFAULT, 0, 0, 0);
  return GR_OK;
}

/* ---- batch-norm recalibration ------------------------------------------------ */

/* One batch-norm node's running statistics and their accumulated batch values. */
typedef struct bn_recal {
  gr_tensor *mean, *var;
  float momentum;   /* graft's (PyTorch's): the weight of the new batch value */
  double *sum_mean, *sum_var;
  float *saved;     /* mean then variance as they were, restored on failure */
} bn_recal;

/* The batch-norm nodes up to the one producing the cut value; *n their count. */
static gr_status bn_nodes(const ox_graph_module *g, bn_recal *out, int *n) {
  const char *stop = g->features_at ? g->features_at : g->graph.outputs[0].name;
  *n = 0;
  for (int i = 0; i < g->graph.n_nodes; i++) {
    const gr_onnx_node *nd = &g->graph.nodes[i];
    if (!strcmp(nd->op_type, "BatchNormalization")) {
      const gr_onnx_attr *a = gr_onnx_attr_find(nd, "momentum");
      float mom = 1.0f - (a ? a->f : 0.9f);
      gr_tensor *mean = nd->n_in == 5 ? bound_weight(g, nd->in[3]) : NULL, *var = nd->n_in == 5 ? bound_weight(g, nd->in[4]) : NULL;
      if (!mean || !var || mean->numel != var->numel)
        return gr_error(GR_EUNSUPPORTED, "OnnxGraph recalibrate: batch-norm '%s' has no bound running statistics", nd->name);
      if (!(mom > 0.0f && mom <= 1.0f))
        return gr_error(GR_EUNSUPPORTED, "OnnxGraph recalibrate: batch-norm '%s' momentum %g keeps no batch statistics",
                        nd->name, (double)(1.0f - mom));
      out[(*n)++] = (bn_recal){mean, var, mom, NULL, NULL, NULL};
    }
    for (int k = 0; k < nd->n_out; k++)
      if (!strcmp(nd->out[k], stop)) return GR_OK;
  }
  return GR_OK;
}

/* One batch in training mode: running stats start at 0, so after the update
 * they hold momentum * the batch value. */
static gr_status recal_batch(gr_model *m, gr_ctx *c, const struct gr_dataset *d, int64_t start, int64_t k, bn_recal *bn,
                             int n_bn) {
  for (int j = 0; j < n_bn; j++)
    memset(bn[j].mean->data, 0, (size_t)bn[j].mean->numel * sizeof(float)),
        memset(bn[j].var->data, 0, (size_t)bn[j].var->numel * sizeof(float));
  gr_tensor *x;
  const int32_t *y;
  gr_status s = gr_dataset_batch(d, c, start, k, &x, &y);
  if (!s && !gr_onnx_module_features(m, c, x)) s = gr_last_status();
  for (int j = 0; !s && j < n_bn; j++)
    for (int64_t q = 0; q < bn[j].mean->numel; q++) {
      bn[j].sum_mean[q] += bn[j].mean->data[q] / bn[j].momentum;
      bn[j].sum_var[q] += bn[j].var->data[q] / bn[j].momentum;
    }
  gr_ctx_reset(c);
  return s;
}

gr_status gr_onnx_module_recalibrate_bn(gr_model *m, const struct gr_dataset *d, int64_t batch) {
  if (!m || !gr_onnx_module_is(m->root)) return gr_error(GR_EARG, "OnnxGraph recalibrate: not a graph model");
  if (!d || d->n < 1 || batch < 1)
    return gr_error(GR_EARG, "OnnxGraph recalibrate: needs a non-empty data set and batch >= 1 (got %lld)", (long long)batch);
  ox_graph_module *g = m->root->cfg;
  bn_recal *bn = gr_calloc((size_t)g->graph.n_nodes + 1, sizeof *bn);
  int n_bn = 0;
  gr_status s = bn ? bn_nodes(g, bn, &n_bn) : gr_error(GR_ENOMEM, "OnnxGraph recalibrate: out of memory");
  for (int j = 0; !s && j < n_bn; j++) {
    bn[j].sum_mean = gr_calloc((size_t)bn[j].mean->numel, sizeof(double));
    bn[j].sum_var = gr_calloc((size_t)bn[j].mean->numel, sizeof(double));
    bn[j].saved = gr_calloc(2 * (size_t)bn[j].mean->numel, sizeof(float));
    if (!bn[j].sum_mean || !bn[j].sum_var || !bn[j].saved) s = gr_error(GR_ENOMEM, "OnnxGraph recalibrate: out of memory");
    else memcpy(bn[j].saved, bn[j].mean->data, (size_t)bn[j].mean->numel * sizeof(float)),
         memcpy(bn[j].saved + bn[j].mean->numel, bn[j].var->data, (size_t)bn[j].mean->numel * sizeof(float));
  }
  gr_ctx *c = s ? NULL : gr_ctx_new(16 << 20, 1);
  if (!s && !c) s = gr_last_status();
  bool was_training = m->root->training;
  int64_t n_batches = 0;
  if (!s) gr_ctx_set_grad(c, false), gr_model_train(m, true);
  for (int64_t start = 0; !s && start < d->n; start += batch, n_batches++)
    s = recal_batch(m, c, d, start, d->n - start < batch ? d->n - start : batch, bn, n_bn);
  for (int j = 0; !s && j < n_bn; j++)
    for (int64_t q = 0; q < bn[j].mean->numel; q++) {
      bn[j].mean->data[q] = (float)(bn[j].sum_mean[q] / (double)n_batches);
      bn[j].var->data[q] = (float)(bn[j].sum_var[q] / (double)n_batches);
    }
  if (c) gr_model_train(m, was_training);
  for (int j = 0; s && bn && j < n_bn && bn[j].saved; j++) /* a failed run leaves the statistics as they were */
    memcpy(bn[j].mean->data, bn[j].saved, (size_t)bn[j].mean->numel * sizeof(float)),
        memcpy(bn[j].var->data, bn[j].saved + bn[j].mean->numel, (size_t)bn[j].mean->numel * sizeof(float));
  for (int j = 0; bn && j < n_bn; j++) gr_free(bn[j].sum_mean), gr_free(bn[j].sum_var), gr_free(bn[j].saved);
  gr_free(bn);
  gr_ctx_free(c);
  return s;
}

gr_status ox_module_write_config(const gr_module *root, cJSON *o) {
  const ox_graph_module *g = root->cfg;
  gr_status st = GR_OK;
  cJSON *graph = ox_graph_to_json(&g->graph, &st);
  if (!graph) return st;
  cJSON_AddItemToObject(o, "graph", graph);
  cJSON_AddNumberToObject(o, "input_scale", g->scale);
  cJSON_AddNumberToObject(o, "input_shift", g->shift);
  if (g->features_at) cJSON_AddStringToObject(o, "features_at", g->features_at);
  if (g->head) cJSON_AddNumberToObject(o, "head_in", (double)gr_module_param_get(g->head, "weight")->shape[1]);
  return GR_OK;
}
