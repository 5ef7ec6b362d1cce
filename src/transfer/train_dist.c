/* transfer/train_dist.c — data-parallel training (see train_dist.h). Every
 * rank runs the same loader (same seed: the same global batch order and
 * augmentation), keeps its contiguous slice of each global batch, and the
 * gradients of the trainable parameters are averaged with one allreduce per
 * contiguous run of trainable parameters in the flat grad vector (frozen
 * parameters are skipped). Each rank's gradient is scaled by
 * size * (its samples / global samples) first, so an uneven last batch
 * still gives the exact global-mean gradient. Batch norm: statistics are
 * per rank (each rank normalizes its own slice) and running statistics
 * are averaged over the ranks after every step, so all ranks hold the same
 * model; for models without batch norm the result equals one process. */
#include <string.h>

#include "graft/dist.h"
#include "transfer/train_dist.h"

gr_status gr_dp_begin(gr_model *m, int64_t batch) {
  int n = gr_dist_size();
  if (n == 1) return GR_OK;
  if (batch % n != 0)
    return gr_error(GR_EARG, "train: global batch %lld is not divisible by the %d ranks", (long long)batch, n);
  gr_status s = gr_dist_broadcast(m->data, m->numel, 0);
  if (!s && m->buf_numel) s = gr_dist_broadcast(m->buf, m->buf_numel, 0);
  return s;
}

uint64_t gr_dp_local_seed(uint64_t seed) {
  int r = gr_dist_rank();
  if (r == 0) return seed;
  gr_rng g = gr_rng_stream(seed, (uint64_t)r);
  return gr_rng_next(&g);
}

gr_status gr_dp_rows(int64_t b, int64_t *lo, int64_t *hi) {
  int n = gr_dist_size(), r = gr_dist_rank();
  *lo = 0, *hi = b;
  if (n == 1) return GR_OK;
  if (b < n) return gr_error(GR_EARG, "train: a batch of %lld samples cannot be split over %d ranks", (long long)b, n);
  *lo = b * r / n, *hi = b * (r + 1) / n;
  return GR_OK;
}

gr_status gr_dp_shard(gr_ctx *c, gr_tensor **x, const int32_t **y, double *weight) {
  *weight = 1.0;
  if (gr_dist_size() == 1) return GR_OK;
  int64_t b = (*x)->shape[0], lo, hi;
  gr_status st = gr_dp_rows(b, &lo, &hi);
  if (st) return st;
  int64_t row = (*x)->numel / b;
  int64_t shape[GR_MAX_DIMS];
  memcpy(shape, (*x)->shape, sizeof shape);
  shape[0] = hi - lo;
  gr_tensor *xs = gr_tensor_from(c, (*x)->ndim, shape, (*x)->data + lo * row);
  if (!xs) return gr_last_status();
  *x = xs;
  *y += lo;
  *weight = (double)(hi - lo) / (double)b;
  return GR_OK;
}

static gr_status reduce_run(gr_model *m, int64_t lo, int64_t hi, float scale) {
  if (scale != 1.0f)
    for (int64_t i = lo; i < hi; i++) m->grad[i] *= scale;
  return gr_dist_allreduce_mean(m->grad + lo, hi - lo);
}

/* Trainable parameters as maximal contiguous runs [lo, hi) of the flat grad. */
static gr_status reduce_grads(gr_model *m, float scale) {
  int64_t lo = -1, hi = -1;
  gr_status s = GR_OK;
  for (int i = 0; i < m->n_entries && !s; i++) {
    const gr_named_tensor *e = &m->entries[i];
    if (e->buffer || !e->t->requires_grad) continue;
    if (e->offset == hi) {
      hi += e->t->numel;
      continue;
    }
    if (lo >= 0) s = reduce_run(m, lo, hi, scale);
    lo = e->offset, hi = e->offset + e->t->numel;
  }
  if (!s && lo >= 0) s = reduce_run(m, lo, hi, scale);
  return s;
}

gr_status gr_dp_reduce(gr_model *m, double weight, double *loss) {
  int n = gr_dist_size();
  if (n == 1) return GR_OK;
  gr_status s = reduce_grads(m, (float)(weight * n));
  double l = *loss * weight;
  if (!s) s = gr_dist_allreduce_sum_f64(&l, 1);
  if (!s) *loss = l;
  if (!s && m->buf_numel) s = gr_dist_allreduce_mean(m->buf, m->buf_numel);
  return s;
}
