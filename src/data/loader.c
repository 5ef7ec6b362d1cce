/* data/loader.c — shuffled mini-batches and image augmentation (random crop
 * with zero padding, horizontal flip). Batches are written into the step
 * arena of a gr_ctx, so a training loop does no malloc per step. */
#include <string.h>

#include "graft/data.h"

gr_status gr_loader_init(gr_loader *l, const gr_dataset *ds, int64_t batch, bool shuffle, uint64_t seed) {
  if (!l || !ds) return gr_error(GR_EARG, "loader: NULL argument");
  memset(l, 0, sizeof *l);
  if (batch <= 0) return gr_error(GR_EARG, "loader: batch size %lld must be > 0", (long long)batch);
  if (ds->n == 0) return gr_error(GR_EARG, "loader: dataset is empty");
  l->ds = ds;
  l->batch = batch;
  l->shuffle = shuffle;
  l->rng = gr_rng_stream(seed, 0x10ADE5);
  l->perm = gr_malloc((size_t)ds->n * sizeof *l->perm);
  if (!l->perm) return gr_error(GR_ENOMEM, "loader: out of memory");
  for (int64_t i = 0; i < ds->n; i++) l->perm[i] = i;
  if (shuffle) gr_rng_permutation(&l->rng, ds->n, l->perm);
  return GR_OK;
}

void gr_loader_free(gr_loader *l) {
  if (!l) return;
  gr_free(l->perm);
  l->perm = NULL;
}

int64_t gr_loader_batches(const gr_loader *l) {
  if (l->drop_last) return l->ds->n / l->batch;
  return (l->ds->n + l->batch - 1) / l->batch;
}

void gr_augment_sample(const gr_augment *aug, gr_rng *r, float *x, int c, int h, int w, float *scratch) {
  int p = aug->crop_pad;
  if (p > 0) {
    /* output(i,j) = padded(i+dy, j+dx), padded = x shifted by p with pad_value */
    int dy = (int)gr_rng_below(r, (uint64_t)(2 * p + 1)), dx = (int)gr_rng_below(r, (uint64_t)(2 * p + 1));
    memcpy(scratch, x, (size_t)c * h * w * sizeof(float));
    for (int ch = 0; ch < c; ch++)
      for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
          int si = i + dy - p, sj = j + dx - p;
          bool in = si >= 0 && si < h && sj >= 0 && sj < w;
          x[((int64_t)ch * h + i) * w + j] = in ? scratch[((int64_t)ch * h + si) * w + sj] : aug->pad_value;
        }
  }
  if (aug->hflip && gr_rng_bernoulli(r, 0.5f)) {
    for (int ch = 0; ch < c; ch++)
      for (int i = 0; i < h; i++) {
        float *row = x + ((int64_t)ch * h + i) * w;
        for (int j = 0; j < w / 2; j++) {
          float t = row[j];
          row[j] = row[w - 1 - j];
          row[w - 1 - j] = t;
        }
      }
  }
}

static gr_status alloc_batch(const gr_dataset *ds, gr_ctx *c, int64_t k, gr_tensor **x_out, int32_t **y_out) {
  *x_out = gr_tensor_new(c, 4, GR_SHAPE(k, ds->c, ds->h, ds->w));
  *y_out = *x_out ? gr_arena_alloc(gr_ctx_arena(c), (size_t)k * sizeof(int32_t) + 1) : NULL;
  return *y_out ? GR_OK : gr_error(GR_ENOMEM, "loader: out of memory for a batch of %lld", (long long)k);
}

gr_status gr_loader_next(gr_loader *l, gr_ctx *c, gr_tensor **x_out, const int32_t **y_out) {
  if (!l || !l->perm || !c || !x_out || !y_out) return gr_error(GR_EARG, "loader_next: NULL argument or loader not initialized");
  const gr_dataset *ds = l->ds;
  int64_t left = ds->n - l->pos;
  if (left <= 0 || (l->drop_last && left < l->batch)) {
    l->pos = 0;
    l->epoch++;
    if (l->shuffle) gr_rng_permutation(&l->rng, ds->n, l->perm);
    left = ds->n;
  }
  int64_t k = left < l->batch ? left : l->batch;
  int32_t *y;
  gr_tensor *x;
  gr_status s = alloc_batch(ds, c, k, &x, &y);
  if (s) return s;
  bool aug = l->aug.crop_pad > 0 || l->aug.hflip;
  float *scratch = aug ? gr_arena_alloc(gr_ctx_arena(c), (size_t)ds->dim * sizeof(float)) : NULL;
  if (aug && !scratch) return gr_error(GR_ENOMEM, "loader: out of memory");
  for (int64_t i = 0; i < k; i++) {
    int64_t src = l->perm[l->pos + i];
    memcpy(x->data + i * ds->dim, ds->x + src * ds->dim, (size_t)ds->dim * sizeof(float));
    y[i] = ds->y[src];
    if (aug) gr_augment_sample(&l->aug, &l->rng, x->data + i * ds->dim, ds->c, ds->h, ds->w, scratch);
  }
  l->pos += k;
  *x_out = x;
  *y_out = y;
  return GR_OK;
}

gr_status gr_dataset_batch(const gr_dataset *ds, gr_ctx *c, int64_t start, int64_t k, gr_tensor **x_out,
                           const int32_t **y_out) {
  if (!ds || !c || !x_out || !y_out) return gr_error(GR_EARG, "dataset_batch: NULL argument");
  if (start < 0 || k <= 0 || start + k > ds->n)
    return gr_error(GR_EARG, "dataset_batch: samples [%lld,%lld) outside 0..%lld", (long long)start,
                    (long long)(start + k), (long long)ds->n);
  int32_t *y;
  gr_tensor *x;
  gr_status s = alloc_batch(ds, c, k, &x, &y);
  if (s) return s;
  memcpy(x->data, ds->x + start * ds->dim, (size_t)(k * ds->dim) * sizeof(float));
  memcpy(y, ds->y + start, (size_t)k * sizeof(int32_t));
  *x_out = x;
  *y_out = y;
  return GR_OK;
}
