/* transfer/train_dist.c — data-parallel training (see train_dist.h). Every
 * rank runs the same loader (same seed: the same global batch order and
 * augmentation), keeps its contiguous slice of each global batch, and the
 * gradients of the trainable parameters (frozen ones are skipped), the
 * batch-norm buffers and the loss travel in one packed buffer through one
 * allreduce (a sum) per step. Each rank's gradient is scaled by its
 * samples / global samples first, so an uneven last batch still gives the
 * exact global-mean gradient. Batch norm: statistics are
 * per rank (each rank normalizes its own slice) and running statistics
 * are averaged over the ranks after every step, so all ranks hold the same
 * model; for models without batch norm the result equals one process. */
#include <string.h>

#include "graft/dist.h"
#include "transfer/train_dist.h"

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

/* Trainable parameters as maximal contiguous runs [lo, hi) of the flat
 * grad; calls visit(lo, hi) for each and returns their total length. */
static int64_t trainable_runs(const gr_model *m, void (*visit)(void *ud, int64_t lo, int64_t hi), void *ud) {
  int64_t lo = -1, hi = -1, total = 0;
  for (int i = 0; i < m->n_entries; i++) {
    const gr_named_tensor *e = &m->entries[i];
    if (e->buffer || !e->t->requires_grad) continue;
    if (e->offset == hi) {
      hi += e->t->numel;
      continue;
    }
    if (lo >= 0 && visit) visit(ud, lo, hi);
    total += hi - lo;
    lo = e->offset, hi = e->offset + e->t->numel;
  }
  if (lo >= 0 && visit) visit(ud, lo, hi);
  return lo >= 0 ? total + hi - lo : total;
}

gr_status gr_dp_begin(gr_dp *dp, gr_model *m, int64_t batch) {
  int n = gr_dist_size();
  if (n == 1) return GR_OK;
  if (batch % n != 0)
    return gr_error(GR_EARG, "train: global batch %lld is not divisible by the %d ranks", (long long)batch, n);
  gr_status s = gr_dist_broadcast(m->data, m->numel, 0);
  if (!s && m->buf_numel) s = gr_dist_broadcast(m->buf, m->buf_numel, 0);
  dp->cap = trainable_runs(m, NULL, NULL) + m->buf_numel + 1;
  if (!s && !(dp->pack = gr_malloc((size_t)dp->cap * sizeof(float))))
    s = gr_error(GR_ENOMEM, "train: out of memory for the data-parallel buffer (%lld floats)", (long long)dp->cap);
  return s;
}

void gr_dp_end(gr_dp *dp) {
  gr_free(dp->pack);
  dp->pack = NULL, dp->cap = 0;
}

typedef struct pack_cursor {
  float *grad, *pack, scale;
  int64_t at;
  bool out; /* false: grad runs into the pack (scaled); true: back */
} pack_cursor;

static void pack_run(void *ud, int64_t lo, int64_t hi) {
  pack_cursor *p = ud;
  float *dst = p->pack + p->at, *g = p->grad + lo;
  if (p->out) memcpy(g, dst, (size_t)(hi - lo) * sizeof(float));
  else
    for (int64_t i = 0; i < hi - lo; i++) dst[i] = g[i] * p->scale;
  p->at += hi - lo;
}

/* The pack: [trainable grads * weight | buffers / size | loss * weight];
 * its sum over the ranks is [global-batch grads | mean buffers | global loss]. */
gr_status gr_dp_reduce(gr_dp *dp, gr_model *m, double weight, double *loss) {
  int n = gr_dist_size();
  if (n == 1) return GR_OK;
  if (!dp->pack || trainable_runs(m, NULL, NULL) + m->buf_numel + 1 != dp->cap)
    return gr_error(GR_ESTATE, "train: data-parallel reduce without gr_dp_begin, or the trainable parameters changed since");
  gr_model_grad_sync(m);
  pack_cursor p = {.grad = m->grad, .pack = dp->pack, .scale = (float)weight};
  trainable_runs(m, pack_run, &p);
  float inv = 1.0f / (float)n, *bufs = dp->pack + p.at;
  for (int64_t i = 0; i < m->buf_numel; i++) bufs[i] = m->buf[i] * inv;
  dp->pack[dp->cap - 1] = (float)(*loss * weight);
  gr_status s = gr_dist_allreduce_sum(dp->pack, dp->cap);
  if (s) return s;
  p.at = 0, p.out = true;
  trainable_runs(m, pack_run, &p);
  memcpy(m->buf, bufs, (size_t)m->buf_numel * sizeof(float));
  *loss = dp->pack[dp->cap - 1];
  return GR_OK;
}
