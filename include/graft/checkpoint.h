/* graft/checkpoint.h — named tensors + string metadata in one safetensors
 * file, written atomically: model weights, optimizer state, RNG state, step
 * and config (JSON as a metadata string). --resume builds on it.
 *
 * A checkpoint is an ordinary safetensors file (graft inspect reads it; so do
 * the HF tools). Numbers and RNG states go into "__metadata__" as strings:
 * gr_ckpt_rng_encode() writes every bit of a gr_rng, so a resumed run draws
 * the same numbers as an uninterrupted one. */
#ifndef GRAFT_CHECKPOINT_H
#define GRAFT_CHECKPOINT_H
#include <stddef.h>
#include <stdint.h>

#include "graft/rng.h"
#include "graft/safetensors.h"
#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One entry of a checkpoint (a model's gr_named_tensor list maps onto it:
 * {e.name, e.t}; optimizer state gets names like "optim.m.<param>"). */
typedef struct gr_ckpt_tensor {
  const char *name;
  gr_tensor *t;
} gr_ckpt_tensor;

/* Writes ts (f32 data converted to dtype: F32, F16, BF16 or F64) and meta to
 * path atomically: the old file survives any failure or crash. Metadata
 * "format" is "pt" (the HF convention, as model files) unless meta sets it. */
gr_status gr_ckpt_save(const char *path, const gr_ckpt_tensor *ts, size_t n, gr_dtype dtype,
                       const gr_st_kv *meta, size_t n_meta);

enum {
  GR_CKPT_STRICT = 0,            /* every tensor present, none extra */
  GR_CKPT_ALLOW_MISSING = 1,     /* tensors absent from the file keep their values */
  GR_CKPT_ALLOW_UNEXPECTED = 2,  /* tensors in the file but not in ts are ignored */
};
/* Fills each ts[i].t from the tensor of the same name in f (any dtype with an
 * f32 conversion); shapes must match exactly. GR_ENOTFOUND / GR_ESHAPE /
 * GR_EFORMAT naming the tensor. Nothing is half-loaded: every tensor is
 * checked before the first is written. */
gr_status gr_ckpt_load(const gr_st_file *f, const gr_ckpt_tensor *ts, size_t n, unsigned flags);

/* Exact text form of a generator ("xoshiro256**:<4 x 16 hex>:<spare flag>:<spare bits>"). */
#define GR_CKPT_RNG_LEN 96
void gr_ckpt_rng_encode(const gr_rng *r, char out[GR_CKPT_RNG_LEN]);
gr_status gr_ckpt_rng_decode(const char *s, gr_rng *r);

/* Metadata helpers: GR_ENOTFOUND if absent, GR_EFORMAT if not a number. */
gr_status gr_ckpt_meta_u64(const gr_st_file *f, const char *key, uint64_t *out);
gr_status gr_ckpt_meta_rng(const gr_st_file *f, const char *key, gr_rng *out);
/* Doubles travel exactly as C99 hex floats ("%a": every bit, inf included). */
#define GR_CKPT_F64_LEN 40
void gr_ckpt_f64_encode(double x, char out[GR_CKPT_F64_LEN]);
gr_status gr_ckpt_meta_f64(const gr_st_file *f, const char *key, double *out);

#ifdef __cplusplus
}
#endif
#endif
