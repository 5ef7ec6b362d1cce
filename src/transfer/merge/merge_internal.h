/* transfer/merge/merge_internal.h — pieces shared by the merge kernels:
 * the sparsifiers (sparsify.c) and the per-method entry points that
 * merge_method.c dispatches to. Not a public header. */
#ifndef GRAFT_MERGE_INTERNAL_H
#define GRAFT_MERGE_INTERNAL_H
#include "graft/merge.h"

/* Elements per OpenMP chunk of an elementwise pass (and below which a pass
 * stays single-threaded). */
#define MERGE_CHUNK 65536

/* One model's sparsified task vector δ = mask ⊙ (θ − θ0) · scale.
 * mask == NULL means every entry is kept. */
typedef struct merge_sparse {
  uint8_t *mask;
  float scale;
  bool quirk_zeroed; /* breadcrumbs n_top == 0 zeroed it */
} merge_sparse;

/* Sparsifies model i of a (method's sparsifier, density, rescale). mask_buf
 * (numel bytes) and scratch (numel floats) are caller-owned; out->mask points
 * into mask_buf when a mask is used. */
gr_status merge_sparsify(const gr_merge_args *a, int i, uint8_t *mask_buf, float *scratch,
                         merge_sparse *out);

gr_status merge_task_arithmetic(const gr_merge_args *a, float *out, gr_merge_report *rep);
gr_status merge_linear(const gr_merge_args *a, float *out);
gr_status merge_slerp(const gr_merge_args *a, float *out);
gr_status merge_model_stock(const gr_merge_args *a, float *out);

#endif
