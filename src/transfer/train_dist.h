/* transfer/train_dist.h — internal: the data-parallel pieces of gr_train
 * (graft/dist.h). With one process every function is a no-op, so the
 * single-process loop is unchanged. */
#ifndef GRAFT_TRANSFER_TRAIN_DIST_H
#define GRAFT_TRANSFER_TRAIN_DIST_H
#include "graft/train.h"

/* One data-parallel run: the buffer that carries a step's gradients, loss
 * and buffers through a single allreduce. */
typedef struct gr_dp {
  float *pack;
  int64_t cap;
} gr_dp;

/* Checks that the global batch splits evenly over the ranks, copies rank
 * 0's parameters and buffers to every rank (identical initialization) and
 * prepares dp (zeroed by the caller; free with gr_dp_end). */
gr_status gr_dp_begin(gr_dp *dp, gr_model *m, int64_t batch);
void gr_dp_end(gr_dp *dp);
/* Seed for rank-local randomness (dropout): rank 0 keeps `seed`, other
 * ranks get an independent stream derived from it. */
uint64_t gr_dp_local_seed(uint64_t seed);
/* This rank's contiguous slice [*lo, *hi) of a global batch of b rows
 * (the whole batch with one process); GR_EARG when b < ranks. */
gr_status gr_dp_rows(int64_t b, int64_t *lo, int64_t *hi);
/* Replaces the global batch (*x, *y: the same on every rank) by this rank's
 * contiguous slice; *weight gets slice/global sample count. */
gr_status gr_dp_shard(gr_ctx *c, gr_tensor **x, const int32_t **y, double *weight);
/* Averages the trainable parameters' gradients over the ranks, weighting
 * each rank by its share `weight` of the global loss's terms (samples or
 * scored tokens; the shares sum to 1); *loss (this rank's mean) becomes
 * the global batch loss; buffers (batch-norm running statistics) become
 * the mean over the ranks. One allreduce per step. */
gr_status gr_dp_reduce(gr_dp *dp, gr_model *m, double weight, double *loss);

#endif
