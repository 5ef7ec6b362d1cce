/* cli/tensor_stream.h — the model files the merge-family verbs (merge,
 * taskvec, rebase) stream through: a read-only model (a directory with
 * model.safetensors or a sharded index, or one .safetensors file) whose
 * tensors are read one at a time as f32, and an output directory written
 * into a temporary sibling and renamed into place only when complete, so an
 * existing or partial output is never left half-written. Thin layer over the
 * io library (graft/safetensors.h); the verbs see only this. */
#ifndef GRAFT_CLI_TENSOR_STREAM_H
#define GRAFT_CLI_TENSOR_STREAM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/graft.h"

typedef struct ts_tensor {
  const char *name;
  char dtype[16]; /* safetensors dtype string: "F32", "BF16", ... */
  int ndim;
  int64_t shape[GR_MAX_DIMS];
  int64_t numel;
  int64_t nbytes;
  bool is_float; /* F64/F32/F16/BF16: mergeable */
} ts_tensor;

bool ts_same_shape(const ts_tensor *a, const ts_tensor *b);
/* Bytes per element of a dtype string (0 when unknown). */
int64_t ts_dtype_size(const char *dtype);

typedef struct ts_model ts_model;

gr_status ts_model_open(const char *path, ts_model **out);
void ts_model_close(ts_model *m);
const char *ts_model_path(const ts_model *m);
int ts_model_count(const ts_model *m);
const ts_tensor *ts_model_tensor(const ts_model *m, int i);
int ts_model_find(const ts_model *m, const char *name); /* -1 when absent */
/* Tensor i as f32: *data points into the mapping when the file holds aligned
 * f32, else into a converted buffer returned in *owned (free with
 * ts_model_done). */
gr_status ts_model_read_f32(ts_model *m, int i, const float **data, float **owned);
/* Raw little-endian bytes of tensor i (for tensors copied unchanged). */
gr_status ts_model_read_raw(ts_model *m, int i, const void **bytes);
/* Done with tensor i: frees *owned and lets the OS drop its mapped pages,
 * which keeps the resident set at a few tensors. */
void ts_model_done(ts_model *m, int i, float *owned);

typedef struct ts_out ts_out;

/* Prepares DIR (created at commit): fails if it exists and is not empty
 * unless force. Work happens in DIR.tmp-<pid> beside it. Tensors go to
 * model.safetensors, or to shards of at most shard_bytes plus an index
 * (0: 5e9, mergekit's default). */
gr_status ts_out_open(const char *dir, bool force, uint64_t shard_bytes, ts_out **out);
/* Declares every output tensor (name, dtype, shape) before any data. */
gr_status ts_out_declare(ts_out *o, int n, const ts_tensor *specs);
/* Tensor i's data, in declaration order: f32 converted to its dtype, or raw bytes. */
gr_status ts_out_write_f32(ts_out *o, int i, const float *data);
gr_status ts_out_write_raw(ts_out *o, int i, const void *bytes);
/* Path of an extra file inside the (temporary) output directory. */
const char *ts_out_path(ts_out *o, const char *file);
/* Copies file `name` from directory src_dir into the output, if it exists. */
gr_status ts_out_copy_file(ts_out *o, const char *src_dir, const char *name);
/* Finishes the tensors and renames the directory into place; frees o. */
gr_status ts_out_commit(ts_out *o);
/* Removes the temporary directory; frees o (NULL is fine). */
void ts_out_abort(ts_out *o);

#endif
