/* graft/onnx.h — ONNX models in: a protobuf wire-format reader for
 * ModelProto / TensorProto and a graph executor that runs the graph on graft
 * ops (so gradients flow through an imported network like through any other).
 *
 * Reading
 * -------
 * gr_onnx_parse() decodes a serialized ModelProto from a buffer; no protobuf
 * library is used. The bytes are untrusted: every varint is at most 10 bytes,
 * every length is checked against the bytes left, element counts are checked
 * against the data actually present before anything is allocated, tensors
 * have at most GR_MAX_DIMS dims, and nesting is fixed by the schema (model ->
 * graph -> node -> attribute -> tensor; subgraph attributes of If/Loop/Scan
 * are recorded by name only, never descended into). Every failure is
 * GR_EFORMAT naming the message and field ("NodeProto 'conv1'.attribute[2]:
 * length 900 past the end"), GR_ENOMEM for memory. Everything a model holds
 * lives in one arena freed by gr_onnx_free().
 *
 * Tensor values are decoded at parse time into f32 (FLOAT, DOUBLE, FLOAT16,
 * BFLOAT16) or int64 (INT8..INT64, UINT8..UINT64, BOOL); other types (STRING,
 * COMPLEX) keep their dtype with no data and are refused by the executor.
 * External data (data_location = EXTERNAL) is refused with GR_EUNSUPPORTED.
 *
 * Running
 * -------
 * gr_onnx_run() evaluates the graph on a gr_ctx: float values are gr_tensors
 * made by graft ops (recorded on the tape when grad mode is on), integer
 * values (shapes, indices) are small host arrays computed on the fly (Shape,
 * Cast, Slice, Concat, Unsqueeze ... on int64 feed Reshape). Nodes must be in
 * topological order, as the ONNX spec requires. gr_onnx_check() lists every
 * op the executor does not implement with the node names where it occurs
 * (GR_EUNSUPPORTED), before anything runs; an attribute value the executor
 * cannot honour (asymmetric pads, ceil_mode, 3-D conv, ...) is
 * GR_EUNSUPPORTED naming the node at run time. Batch-norm follows the ctx's
 * training mode (eval: running statistics). docs/ONNX.md lists the ops. */
#ifndef GRAFT_ONNX_H
#define GRAFT_ONNX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/nn.h"
#include "graft/tensor.h"

struct gr_dataset; /* graft/data.h */

#ifdef __cplusplus
extern "C" {
#endif

/* TensorProto.DataType values (onnx.proto). */
enum {
  GR_ONNX_UNDEFINED = 0, GR_ONNX_FLOAT = 1, GR_ONNX_UINT8 = 2, GR_ONNX_INT8 = 3,
  GR_ONNX_UINT16 = 4, GR_ONNX_INT16 = 5, GR_ONNX_INT32 = 6, GR_ONNX_INT64 = 7,
  GR_ONNX_STRING = 8, GR_ONNX_BOOL = 9, GR_ONNX_FLOAT16 = 10, GR_ONNX_DOUBLE = 11,
  GR_ONNX_UINT32 = 12, GR_ONNX_UINT64 = 13, GR_ONNX_COMPLEX64 = 14,
  GR_ONNX_COMPLEX128 = 15, GR_ONNX_BFLOAT16 = 16
};

/* AttributeProto.AttributeType values. */
enum {
  GR_ONNX_ATTR_UNDEFINED = 0, GR_ONNX_ATTR_FLOAT = 1, GR_ONNX_ATTR_INT = 2,
  GR_ONNX_ATTR_STRING = 3, GR_ONNX_ATTR_TENSOR = 4, GR_ONNX_ATTR_GRAPH = 5,
  GR_ONNX_ATTR_FLOATS = 6, GR_ONNX_ATTR_INTS = 7, GR_ONNX_ATTR_STRINGS = 8,
  GR_ONNX_ATTR_TENSORS = 9, GR_ONNX_ATTR_GRAPHS = 10
};

/* What kind of values a decoded tensor holds. */
typedef enum gr_onnx_kind { GR_ONNX_KIND_NONE, GR_ONNX_KIND_F32, GR_ONNX_KIND_I64 } gr_onnx_kind;

typedef struct gr_onnx_tensor {
  const char *name;      /* "" when unnamed */
  int data_type;         /* GR_ONNX_FLOAT, ... */
  int ndim;
  int64_t dims[GR_MAX_DIMS];
  int64_t numel;
  gr_onnx_kind kind;
  float *f32;            /* numel values when kind == F32 */
  int64_t *i64;          /* numel values when kind == I64 */
} gr_onnx_tensor;

typedef struct gr_onnx_attr {
  const char *name;
  int type;              /* GR_ONNX_ATTR_*; inferred from the fields when 0 */
  float f;
  int64_t i;
  const char *s;         /* NUL-terminated copy; s_len bytes before the NUL */
  size_t s_len;
  gr_onnx_tensor *t;
  int n_floats, n_ints, n_strings;
  float *floats;
  int64_t *ints;
  const char **strings;
} gr_onnx_attr;

typedef struct gr_onnx_node {
  const char *name, *op_type, *domain;
  int n_in, n_out, n_attr;
  const char **in;       /* "" for an omitted optional input */
  const char **out;
  gr_onnx_attr *attr;
} gr_onnx_node;

/* A graph input/output/value_info: name, element type and shape as declared
 * (a symbolic or missing dim is -1; ndim -1 when the shape is absent). */
typedef struct gr_onnx_value_info {
  const char *name;
  int elem_type;
  int ndim;
  int64_t dims[GR_MAX_DIMS];
} gr_onnx_value_info;

typedef struct gr_onnx_model {
  int64_t ir_version;
  int64_t opset;         /* version of the default ("" / "ai.onnx") domain */
  const char *producer_name, *graph_name;
  int n_nodes, n_inits, n_inputs, n_outputs, n_value_info;
  gr_onnx_node *nodes;
  gr_onnx_tensor *inits;
  gr_onnx_value_info *inputs, *outputs, *value_info;
  gr_arena *arena;       /* owns everything above */
} gr_onnx_model;

/* Decodes a ModelProto. `what` names the buffer in messages (NULL: "<buffer>").
 * The buffer is not referenced after return. *out is NULL on failure. */
gr_status gr_onnx_parse(const void *buf, size_t len, const char *what, gr_onnx_model **out);
/* Reads and decodes a file (GR_EIO / GR_ENOTFOUND naming it). */
gr_status gr_onnx_load(const char *path, gr_onnx_model **out);
void gr_onnx_free(gr_onnx_model *m);

/* TF.js layers models (src/io/tfjs.c): model.json (Keras topology +
 * weightsManifest) and the weight files it names (relative paths beside
 * it), converted to the same graph form (NCHW, opset 10; the input is
 * [-1,C,-1,-1] with the Keras size as a value_info hint). Quantized weights
 * are dequantized (uint8/uint16: min + scale*q; float16). Layers:
 * tfjs_layers.c. Errors name the file, the layer and the field. */
gr_status gr_tfjs_load(const char *model_json, gr_onnx_model **out);
/* The same from buffers: the JSON text and the weight bytes (the manifest's
 * files concatenated in order). `what` names them in messages. */
gr_status gr_tfjs_parse(const char *json, size_t len, const void *weights, size_t wlen, const char *what,
                        gr_onnx_model **out);

/* Decodes one TensorProto (the input_N.pb / output_N.pb files of the ONNX
 * test suite) into a tensor allocated in arena a. */
gr_status gr_onnx_parse_tensor(const void *buf, size_t len, const char *what, gr_arena *a,
                               gr_onnx_tensor *out);
/* Reads a TensorProto file into arena a. */
gr_status gr_onnx_load_tensor(const char *path, gr_arena *a, gr_onnx_tensor *out);

/* The attribute called name on node n, or NULL. */
const gr_onnx_attr *gr_onnx_attr_find(const gr_onnx_node *n, const char *name);
/* "FLOAT", "INT64", ... ("?" when unknown). */
const char *gr_onnx_dtype_name(int data_type);

/* How a model directory feeds the graph: its input size (0: the declared
 * dim, which must then be fixed) and x*scale + shift applied first (a zero
 * scale means 1). */
typedef struct gr_onnx_input_spec {
  int in_ch, h, w;
  float scale, shift;
} gr_onnx_input_spec;

/* Writes dir/model.safetensors (initializers and Constant tensors by ONNX
 * name; F32, or I64 for integer types) and dir/config.json ("architecture":
 * "onnx_graph", in_channels/height/width from in (NULL: all declared),
 * num_classes from the output's last dim (1 when symbolic), input_scale,
 * input_shift, "graph": opset, inputs, outputs, nodes with attributes; see
 * docs/ONNX.md), atomically. dir must exist. GR_EARG naming the input when a
 * size is neither declared nor given. */
gr_status gr_onnx_save_dir(const gr_onnx_model *m, const gr_onnx_input_spec *in, const char *dir);

/* ---- executor ---------------------------------------------------------- */
/* True when the executor implements op_type in the default domain. */
bool gr_onnx_op_supported(const char *domain, const char *op_type);
/* GR_OK when every node's op is implemented; else GR_EUNSUPPORTED with a
 * message listing each unsupported op and the nodes where it occurs:
 * "unsupported ONNX ops: LSTM (nodes 'lstm_1', 'lstm_2'); Loop (node 'l')". */
gr_status gr_onnx_check(const gr_onnx_model *m);

/* Runs the graph. inputs[i] feeds the i-th graph input that is not also an
 * initializer (f32; shapes are checked against the declared dims that are
 * fixed). outputs[i] receives the i-th graph output (step arena of c, f32;
 * an int64 output is converted to f32). Initializers and Constant tensors
 * are wrapped, not copied: the step arena holds views of the model's data. */
gr_status gr_onnx_run(gr_ctx *c, const gr_onnx_model *m, int n_in, gr_tensor *const *inputs,
                      int n_out, gr_tensor **outputs);

/* Options of gr_onnx_run_ex. bind: caller-owned f32 tensors (a module's
 * parameters) used for the values of those names instead of the model's
 * initializers, so their gradients accumulate on the tape like any
 * parameter's. stop_at: the name of a value (a node output) at which the
 * run stops; the single output is that value (a cut point for features). */
typedef struct gr_onnx_run_opts {
  int n_bind;
  const char *const *bind_names;
  gr_tensor *const *bind;
  const char *stop_at;
} gr_onnx_run_opts;
/* gr_onnx_run with options (NULL: as gr_onnx_run). An unknown stop_at is
 * GR_ENOTFOUND; a name bound twice GR_EARG. */
gr_status gr_onnx_run_ex(gr_ctx *c, const gr_onnx_model *m, const gr_onnx_run_opts *o, int n_in,
                         gr_tensor *const *inputs, int n_out, gr_tensor **outputs);

/* The graph inputs that are fed at run time (declared inputs that are not
 * initializers): count, and the i-th one. */
int gr_onnx_n_feeds(const gr_onnx_model *m);
const gr_onnx_value_info *gr_onnx_feed(const gr_onnx_model *m, int i);

/* ---- graph models as graft modules -------------------------------------- */
/* A model directory written by `graft import` ("architecture": "onnx_graph")
 * loads as a module tree (src/io/onnx_module.c): root kind "OnnxGraph" runs
 * the graph on graft ops with every weight bound to a named parameter (those
 * a Conv, Gemm, MatMul, PRelu or batch-norm scale/bias reads) or buffer
 * (batch-norm statistics, other constants) whose state_dict name is the
 * graph's value name; an optional Linear child "head" classifies the
 * features at a cut value (config "features_at"; 4-D values are globally
 * average-pooled). A batch of another size is resized bilinearly to the
 * graph's input size and a single channel repeated; then x*input_scale +
 * input_shift (config keys, defaults 1 and 0). */
typedef struct gr_onnx_module_shape {
  int in_ch, h, w;       /* the size the graph is fed */
  int n_classes;         /* of the head, when the directory has one */
} gr_onnx_module_shape;
/* Builds the tree from config.json's graph and the tensor names/shapes of
 * the weights file (values are loaded afterwards with gr_model_load_weights).
 * NULL with the error set on failure. */
gr_module *gr_onnx_module_build(gr_model *m, const char *config_path, const char *weights_path,
                                const gr_onnx_module_shape *shape);
bool gr_onnx_module_is(const gr_module *root);
/* Adds a fresh head of n_classes on the features at value features_at (NULL:
 * gr_onnx_default_cut) and lays the model out again. */
gr_status gr_onnx_module_set_head(gr_model *m, const char *features_at, int n_classes);
/* The features [N,F] at the cut (set by the head, else the default cut),
 * without the head; follows the model's train/eval mode. NULL on error. */
gr_tensor *gr_onnx_module_features(gr_model *m, gr_ctx *c, gr_tensor *x);
/* How gr_onnx_module_reinit draws weights. */
typedef enum gr_onnx_init {
  /* torchvision's MobileNetV2/ResNet init: conv weights N(0, 2/fan_out)
   * (fan_out = out*kh*kw), MatMul/Gemm weights N(0, 0.01^2), biases 0 */
  GR_ONNX_INIT_TORCHVISION = 0,
  /* PyTorch's layer defaults (nn.Conv2d / nn.Linear reset_parameters:
   * kaiming_uniform with a = sqrt(5)): weights and biases U(-b, b) with
   * b = 1/sqrt(fan_in), fan_in = in/groups*kh*kw (conv) or in (MatMul/Gemm) */
  GR_ONNX_INIT_TORCH_DEFAULT = 1
} gr_onnx_init;
/* Random weights in place of the imported ones (the "same architecture from
 * random init" baseline) drawn as init says; batch-norm scale 1, shift 0,
 * running mean 0, variance 1 either way; the head PyTorch's default. GR_EARG
 * for an init outside the enum. */
gr_status gr_onnx_module_reinit(gr_model *m, gr_rng *r, gr_onnx_init init);
/* Batch-norm recalibration (e.g. for a randomly initialized graph, whose
 * running statistics 0/1 do not describe its activations): every
 * BatchNormalization node the features pass through gets as running mean
 * and variance the average over the batches of d (batch images at a time,
 * the last one may be smaller) of its batch mean and unbiased batch
 * variance, computed with the graph in training mode (batch statistics
 * throughout): PyTorch's cumulative average (momentum=None, as in
 * torch.optim.swa_utils.update_bn). No weight changes; nodes after the cut
 * keep their statistics; the model's train/eval mode is restored. */
gr_status gr_onnx_module_recalibrate_bn(gr_model *m, const struct gr_dataset *d, int64_t batch);
/* ---- feature cache (io/onnx_featcache.c) ---------------------------------- */
/* A frozen backbone's features, one row per input image, keyed by a hash of
 * the image (gr_feature_cache_hash), so studies that draw new labelled
 * subsets per seed extract each image once. key names the feature source
 * (backbone, cut, init, ...): a cache file written under another key is
 * GR_EFORMAT ("delete it to rebuild"), as is a truncated or garbled one
 * (each field checked, values finite, no repeated hash). The file format is
 * in the source's banner. */
typedef struct gr_feature_cache gr_feature_cache;
/* Opens the cache at path (NULL: in memory only); a missing file is an empty
 * cache. */
gr_status gr_feature_cache_open(const char *path, const char *key, gr_feature_cache **out);
/* Writes the cache to its path atomically when rows were added (no-op for a
 * memory-only or unchanged cache). */
gr_status gr_feature_cache_save(gr_feature_cache *fc);
void gr_feature_cache_free(gr_feature_cache *fc);
/* 64-bit FNV-1a of the shape (c, h, w as int32) and the c*h*w floats of x. */
uint64_t gr_feature_cache_hash(const float *x, int c, int h, int w);
/* The cached row for hash h (dim floats), or NULL. */
const float *gr_feature_cache_get(const gr_feature_cache *fc, uint64_t h);
int64_t gr_feature_cache_count(const gr_feature_cache *fc);
int64_t gr_feature_cache_dim(const gr_feature_cache *fc); /* 0 while empty */
/* *out: the features of every sample of d at m's cut (gr_onnx_module_features,
 * eval mode, batch images at a time for those not cached yet; those are
 * added to fc), labels copied: a new [d->n, F] dataset. GR_ESHAPE when m's
 * feature count differs from the cache's. */
gr_status gr_onnx_features_cached(gr_model *m, gr_feature_cache *fc, const struct gr_dataset *d, int64_t batch,
                                  struct gr_dataset **out);

/* The input of the last MatMul/Gemm (the penultimate features). */
gr_status gr_onnx_default_cut(const gr_onnx_model *g, const char **out);

#ifdef __cplusplus
}
#endif
#endif
