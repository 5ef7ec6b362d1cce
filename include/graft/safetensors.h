/* graft/safetensors.h — reading and writing safetensors files (and sharded
 * model directories), validated exactly like the reference Rust crate.
 *
 * Reading
 * -------
 * gr_st_open() maps the file read-only and validates the whole header before
 * returning: 8-byte little-endian length N (<= 100 MB), UTF-8 JSON object,
 * known dtypes, integer shapes, [BEGIN,END) offsets that tile the data buffer
 * with no hole, overlap or trailing byte, checked shape x dtype arithmetic,
 * unique names, a string->string "__metadata__". Tensor data is not read:
 * gr_st_tensor.data points into the mapping and is paged in on first touch.
 * Every failure is GR_EFORMAT (GR_EIO for the OS, GR_ENOMEM for memory) with a
 * message naming the file and the tensor or field, and a gr_st_err kind
 * (gr_st_last_err()) so callers and tests can tell the exact class apart.
 * Tensor data in a mapping is only as aligned as the writer made it: use
 * gr_st_read_f32() (or memcpy) rather than casting the pointer.
 *
 * Writing
 * -------
 * A writer is begun with the full list of tensors (name, dtype, shape) and the
 * metadata, which fixes the header; the header and offsets are exactly those
 * of the reference writer (dtype descending in gr_dtype order, then name
 * byte-wise; "__metadata__" first with keys sorted; compact JSON padded with
 * spaces to 8 bytes). Then each tensor's bytes are written, one call per
 * tensor, in any order, so a file larger than memory is produced one tensor at
 * a time. Everything goes to a temporary file beside the target; finish()
 * fsyncs it and renames it over the target, so an existing file is replaced
 * only by a complete one. abort() (or any failure) removes the temporary file.
 *
 * Names are arbitrary UTF-8 without NUL; "__metadata__" is reserved.
 * A mapped file must not be truncated in place by another program while it
 * is open (reads would fault); graft's own writers never modify a file in
 * place: they rename a new one over it, which leaves open mappings valid. */
#ifndef GRAFT_SAFETENSORS_H
#define GRAFT_SAFETENSORS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dtypes ------------------------------------------------------------ */
/* Declared in the reference crate's order (increasing alignment); writers sort
 * by it, so the values are part of the file format. Only ever appended. */
typedef enum gr_dtype {
  GR_DT_BOOL, GR_DT_F4, GR_DT_F6_E2M3, GR_DT_F6_E3M2, GR_DT_U8, GR_DT_I8,
  GR_DT_F8_E5M2, GR_DT_F8_E4M3, GR_DT_F8_E8M0, GR_DT_F8_E4M3FNUZ, GR_DT_F8_E5M2FNUZ,
  GR_DT_I16, GR_DT_U16, GR_DT_F16, GR_DT_BF16, GR_DT_I32, GR_DT_U32, GR_DT_F32,
  GR_DT_C64, GR_DT_F64, GR_DT_I64, GR_DT_U64,
  GR_DT_COUNT
} gr_dtype;

const char *gr_dtype_name(gr_dtype dt);              /* "F32"; "?" if invalid */
/* Exact, case-sensitive match of the first len bytes of s ("F32"). */
gr_status gr_dtype_parse(const char *s, size_t len, gr_dtype *out);
unsigned gr_dtype_bits(gr_dtype dt);                 /* 4, 6, 8, 16, 32, 64 */
/* True when graft converts this dtype to f32 (all but F4, F6_*, C64). */
bool gr_dtype_to_f32_supported(gr_dtype dt);
/* Converts n elements (little-endian bytes, any alignment) to f32.
 * GR_EUNSUPPORTED for the dtypes above. */
gr_status gr_dtype_to_f32(gr_dtype dt, const void *src, float *dst, int64_t n);
/* Converts n f32 values to F32, F64, F16 or BF16 (round to nearest even;
 * overflow to Inf, NaN stays NaN). GR_EUNSUPPORTED for other dtypes. */
gr_status gr_dtype_from_f32(gr_dtype dt, const float *src, void *dst, int64_t n);
uint16_t gr_f32_to_f16(float x);
float gr_f16_to_f32(uint16_t h);
uint16_t gr_f32_to_bf16(float x);
float gr_bf16_to_f32(uint16_t h);

/* ---- error kinds ------------------------------------------------------- */
/* The exact class of the last safetensors failure on this thread. Kinds 1-16
 * refine the reference crate's SafeTensorError variants (gr_st_err_rust()
 * names the variant); the others are graft's own. Only ever appended. */
typedef enum gr_st_err {
  GR_ST_OK = 0,
  GR_ST_HEADER_TOO_SMALL,      /* fewer than 8 bytes */
  GR_ST_HEADER_TOO_LARGE,      /* N > 100,000,000 */
  GR_ST_INVALID_HEADER_LENGTH, /* 8 + N beyond the end of the file */
  GR_ST_INVALID_UTF8,          /* header bytes are not UTF-8 */
  GR_ST_BAD_JSON,              /* JSON syntax (incl. trailing characters) */
  GR_ST_NOT_OBJECT,            /* header or a tensor entry is not an object */
  GR_ST_BAD_TENSOR_INFO,       /* missing/duplicated/mistyped dtype, shape, data_offsets */
  GR_ST_UNKNOWN_DTYPE,         /* dtype string not in gr_dtype */
  GR_ST_BAD_SHAPE,             /* shape not an array of non-negative u64 integers */
  GR_ST_BAD_OFFSETS,           /* data_offsets not [u64, u64] */
  GR_ST_BAD_METADATA,          /* __metadata__ not a string->string object */
  GR_ST_INVALID_OFFSET,        /* hole, overlap or END < BEGIN (names the tensor) */
  GR_ST_VALIDATION_OVERFLOW,   /* prod(shape) x bits overflows u64 */
  GR_ST_MISALIGNED_SLICE,      /* sub-byte dtype with a partial byte */
  GR_ST_TENSOR_INVALID_INFO,   /* END-BEGIN != bytes of the shape */
  GR_ST_INCOMPLETE_BUFFER,     /* data buffer not exactly covered (short or trailing bytes) */
  GR_ST_DUPLICATE_KEY,         /* a name (tensor or metadata key) appears twice */
  GR_ST_RESERVED_NAME,         /* writing a tensor named "__metadata__" */
  GR_ST_BAD_NAME,              /* a name/value containing NUL (read) or not UTF-8 (write) */
  GR_ST_NOT_FOUND,             /* lookup of an absent tensor */
  GR_ST_UNSUPPORTED_DTYPE,     /* conversion not implemented for this dtype */
  GR_ST_IO,                    /* open/map/read/write/fsync/rename failed */
  GR_ST_BAD_ARG,               /* NULL, size mismatch, call out of order */
  GR_ST_BAD_INDEX,             /* sharded index JSON malformed or inconsistent */
  GR_ST_ERR_COUNT
} gr_st_err;

gr_st_err gr_st_last_err(void);          /* GR_ST_OK after a success */
const char *gr_st_err_name(gr_st_err e); /* "InvalidOffset", "DuplicateKey", ... */
/* The reference crate's variant for kinds it has ("InvalidHeaderDeserialization"
 * for the JSON kinds), NULL for graft-only kinds. */
const char *gr_st_err_rust(gr_st_err e);

#define GR_ST_MAX_HEADER 100000000ull

/* ---- reading ----------------------------------------------------------- */
typedef struct gr_st_file gr_st_file;

typedef struct gr_st_tensor {
  const char *name;
  gr_dtype dtype;
  int ndim;                /* 0 for a scalar */
  const uint64_t *shape;   /* ndim dims */
  uint64_t numel;          /* product of shape (1 for a scalar) */
  uint64_t nbytes;         /* END - BEGIN */
  uint64_t begin, end;     /* data_offsets, relative to the data buffer */
  uint64_t file_offset;    /* 8 + N + BEGIN */
  const void *data;        /* into the mapping; valid until close */
} gr_st_tensor;

/* Maps and validates a file. *out is NULL on failure. */
gr_status gr_st_open(const char *path, gr_st_file **out);
/* Validates a buffer already in memory (not copied: it must outlive *out).
 * `what` names it in messages (NULL: "<buffer>"). */
gr_status gr_st_parse(const void *buf, size_t len, const char *what, gr_st_file **out);
void gr_st_close(gr_st_file *f);

const char *gr_st_path(const gr_st_file *f);
size_t gr_st_count(const gr_st_file *f);
/* i-th tensor in data-offset order (i < count). */
const gr_st_tensor *gr_st_at(const gr_st_file *f, size_t i);
/* NULL with GR_ENOTFOUND / GR_ST_NOT_FOUND when absent. */
const gr_st_tensor *gr_st_find(const gr_st_file *f, const char *name);
uint64_t gr_st_header_len(const gr_st_file *f); /* N */
uint64_t gr_st_file_len(const gr_st_file *f);

size_t gr_st_metadata_count(const gr_st_file *f);
/* i-th metadata pair, keys sorted byte-wise. */
void gr_st_metadata_at(const gr_st_file *f, size_t i, const char **key, const char **value);
const char *gr_st_metadata_get(const gr_st_file *f, const char *key); /* NULL if absent */

/* Converts the tensor to f32 into dst, which holds dst_numel floats (must be
 * >= numel). GR_EUNSUPPORTED for dtypes without an f32 conversion. */
gr_status gr_st_read_f32(const gr_st_tensor *t, float *dst, uint64_t dst_numel);

/* ---- writing ----------------------------------------------------------- */
typedef struct gr_st_entry {
  const char *name;
  gr_dtype dtype;
  int ndim;
  const int64_t *shape; /* ndim dims, each >= 0; NULL allowed when ndim == 0 */
} gr_st_entry;

typedef struct gr_st_kv {
  const char *key;
  const char *value;
} gr_st_kv;

typedef struct gr_st_writer gr_st_writer;

/* Fixes the layout, creates the temporary file and writes the header.
 * Fails (GR_EFORMAT) on duplicate or reserved names, a header over 100 MB,
 * sub-byte sizes; *out is NULL on failure. */
gr_status gr_st_writer_begin(const char *path, const gr_st_entry *entries, size_t n,
                             const gr_st_kv *meta, size_t n_meta, gr_st_writer **out);
/* Writes one tensor's raw little-endian bytes (exactly its size). */
gr_status gr_st_writer_write(gr_st_writer *w, const char *name, const void *bytes, uint64_t nbytes);
/* Writes one tensor from f32 values, converting to its dtype (F32/F64/F16/BF16). */
gr_status gr_st_writer_write_f32(gr_st_writer *w, const char *name, const float *src, uint64_t numel);
/* All tensors written: fsync, rename over the target, fsync the directory.
 * Frees w whatever the outcome; on failure the target is untouched. */
gr_status gr_st_writer_finish(gr_st_writer *w);
/* Removes the temporary file and frees w (NULL is a no-op). */
void gr_st_writer_abort(gr_st_writer *w);

/* The exact header bytes (8-byte length included) the writer produces for
 * these entries; *out is gr_malloc'd. For tests and tools. */
gr_status gr_st_header_bytes(const gr_st_entry *entries, size_t n, const gr_st_kv *meta,
                             size_t n_meta, uint8_t **out, size_t *out_len);

/* One call: entries[i] data is datas[i] (raw bytes of its dtype). */
gr_status gr_st_save(const char *path, const gr_st_entry *entries, const void *const *datas,
                     size_t n, const gr_st_kv *meta, size_t n_meta);

/* ---- sharded models (HF layout) ---------------------------------------- */
/* A model is a single file, a directory holding model.safetensors, or a
 * directory / index path with model.safetensors.index.json and its shards.
 * The index is validated: shard names are plain file names, every tensor is
 * in the shard the weight_map says, no tensor is missing or doubled. */
typedef struct gr_st_model gr_st_model;
gr_status gr_st_model_open(const char *path, gr_st_model **out);
void gr_st_model_close(gr_st_model *m);
size_t gr_st_model_count(const gr_st_model *m);
const gr_st_tensor *gr_st_model_at(const gr_st_model *m, size_t i); /* shard by shard */
const gr_st_tensor *gr_st_model_find(const gr_st_model *m, const char *name);
size_t gr_st_model_shards(const gr_st_model *m);
const gr_st_file *gr_st_model_shard(const gr_st_model *m, size_t i);
/* Path of the index JSON, or NULL for a single file. */
const char *gr_st_model_index_path(const gr_st_model *m);

/* Streaming sharded writer: tensors go to shards in the given order, a new
 * shard starting when the next tensor would push the current one past
 * max_shard_bytes (a bigger tensor gets a shard of its own). One shard is
 * written as dir/<prefix>.safetensors; several as
 * dir/<prefix>-0000i-of-0000k.safetensors plus dir/<prefix>.safetensors.index.json
 * ({"metadata":{"total_size":...},"weight_map":{...}}), written last.
 * meta goes into every shard. */
typedef struct gr_st_sharded_writer gr_st_sharded_writer;
gr_status gr_st_sharded_begin(const char *dir, const char *prefix, const gr_st_entry *entries,
                              size_t n, uint64_t max_shard_bytes, const gr_st_kv *meta,
                              size_t n_meta, gr_st_sharded_writer **out);
gr_status gr_st_sharded_write(gr_st_sharded_writer *w, const char *name, const void *bytes,
                              uint64_t nbytes);
gr_status gr_st_sharded_write_f32(gr_st_sharded_writer *w, const char *name, const float *src,
                                  uint64_t numel);
gr_status gr_st_sharded_finish(gr_st_sharded_writer *w); /* frees w */
void gr_st_sharded_abort(gr_st_sharded_writer *w);

#ifdef __cplusplus
}
#endif
#endif
