/* io/tfjs_internal.h — internal: building an ONNX-style graph (gr_onnx_model,
 * NCHW) from a TF.js layers model. tfjs.c reads model.json and the weight
 * manifest (dequantizing on the way); tfjs_layers.c turns each Keras layer
 * into nodes and initializers with the helpers declared here. */
#ifndef GRAFT_IO_TFJS_INTERNAL_H
#define GRAFT_IO_TFJS_INTERNAL_H
#include <cjson/cJSON.h>

#include "graft/onnx.h"

/* One entry of the weights manifest, dequantized to f32 on demand. */
typedef struct tf_weight {
  const char *name;       /* "Conv1/kernel" */
  int ndim;
  int64_t dims[GR_MAX_DIMS];
  int64_t numel;
  const float *values;    /* decoded (model arena) */
} tf_weight;

typedef struct tf_build {
  gr_onnx_model *m;       /* arena owns everything */
  const char *what;       /* file name for messages */
  int cap_nodes, cap_inits;
  tf_weight *w;
  int n_w;
  char layer[128];        /* current layer, for messages */
  const char **vnames;    /* rank of each value produced so far */
  int *vranks;
  int n_v, cap_v;
} tf_build;

/* Records / looks up the rank of a value (-1 when unknown). */
gr_status tf_rank_set(tf_build *b, const char *value, int rank);
int tf_rank(const tf_build *b, const char *value);

/* A new node (inputs/outputs copied); attributes are added with tf_attr_*. */
gr_onnx_node *tf_node(tf_build *b, const char *op, const char *name, int n_in, const char *const *in,
                      const char *out);
gr_status tf_attr_int(tf_build *b, gr_onnx_node *n, const char *name, int64_t v);
gr_status tf_attr_float(tf_build *b, gr_onnx_node *n, const char *name, float v);
gr_status tf_attr_ints(tf_build *b, gr_onnx_node *n, const char *name, int count, const int64_t *v);
gr_status tf_attr_str(tf_build *b, gr_onnx_node *n, const char *name, const char *v);
/* A new f32 initializer named name of the given dims (values zeroed). */
gr_onnx_tensor *tf_init(tf_build *b, const char *name, int ndim, const int64_t *dims);
/* The manifest weight "<layer>/<param>", or NULL with GR_EFORMAT naming it. */
const tf_weight *tf_weight_find(tf_build *b, const char *layer, const char *param);
/* A string copy in the model arena. */
const char *tf_strdup(tf_build *b, const char *s);

/* Converts one layer of the topology (tfjs_layers.c). `in` holds the names
 * of its inbound values (n_in of them), the output value is the layer name
 * (its rank recorded with tf_rank_set). */
gr_status tf_convert_layer(tf_build *b, const cJSON *layer, int n_in, const char *const *in);
#endif
