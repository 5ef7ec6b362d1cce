/* io/onnx_exec.h — internal: what an ONNX op implementation sees. The run
 * loop (onnx_exec.c) resolves a node's inputs to values and hands them to the
 * op's function from the table (onnx_ops*.c), which fills the outputs. */
#ifndef GRAFT_IO_ONNX_EXEC_H
#define GRAFT_IO_ONNX_EXEC_H
#include "graft/onnx.h"
#include "graft/ops.h"

/* A value flowing through the graph: an f32 gr_tensor (differentiable) or a
 * small int64 host array (shapes, axes, indices). */
typedef struct ox_val {
  gr_onnx_kind kind;         /* NONE: not produced */
  gr_tensor *t;              /* F32 */
  int ndim;                  /* I64: shape and values */
  int64_t dims[GR_MAX_DIMS];
  int64_t numel;
  const int64_t *i;
} ox_val;

typedef struct ox_node_run {
  gr_ctx *c;
  const gr_onnx_model *m;
  const gr_onnx_node *node;
  char where[160];           /* "Conv node 'conv1'" for messages */
  int n_in, n_out;
  const ox_val *const *in;   /* NULL for an omitted optional input */
  ox_val *out;
} ox_node_run;

typedef gr_status (*ox_op_fn)(ox_node_run *r);
typedef struct ox_op {
  const char *name;
  ox_op_fn fn;
} ox_op;

/* The op table lookup (onnx_ops.c): NULL when op_type is not implemented. */
const ox_op *ox_op_find(const char *op_type);

/* ---- helpers for op implementations (onnx_exec.c) ---- */
/* Input k as f32 (an int64 value is converted); GR_EARG naming the node when absent. */
gr_status ox_in_f32(ox_node_run *r, int k, gr_tensor **out);
/* Input k as int64 values (f32 input with integer values converted). */
gr_status ox_in_i64(ox_node_run *r, int k, const ox_val **out);
/* True when input k is given (not omitted, not past n_in). */
bool ox_has_in(const ox_node_run *r, int k);
/* Output k := t (f32) / a new int64 value with ndim dims (values to fill). */
gr_status ox_set_f32(ox_node_run *r, int k, gr_tensor *t);
int64_t *ox_set_i64(ox_node_run *r, int k, int ndim, const int64_t *dims);
/* Attributes with defaults; a present attribute of the wrong type is GR_EFORMAT. */
int64_t ox_attr_int(ox_node_run *r, const char *name, int64_t dflt, gr_status *st);
float ox_attr_float(ox_node_run *r, const char *name, float dflt, gr_status *st);
/* INTS attribute: count (-1 when absent), values in *vals. */
int ox_attr_ints(ox_node_run *r, const char *name, const int64_t **vals, gr_status *st);
const char *ox_attr_str(ox_node_run *r, const char *name, const char *dflt, gr_status *st);
/* The ctx's error for a failed graft op, prefixed with the node. */
gr_status ox_op_failed(ox_node_run *r);
/* Shape [ndim dims] for messages. */
const char *ox_dims_str(int ndim, const int64_t *dims, char *buf, size_t n);



/* Op implementations in onnx_ops_nn.c (listed in onnx_ops.c's table). */
gr_status ox_conv(ox_node_run *r);
gr_status ox_max_pool(ox_node_run *r);
gr_status ox_average_pool(ox_node_run *r);
gr_status ox_global_average_pool(ox_node_run *r);
gr_status ox_batch_norm(ox_node_run *r);
gr_status ox_gemm(ox_node_run *r);
gr_status ox_matmul(ox_node_run *r);
gr_status ox_pad(ox_node_run *r);
#endif
