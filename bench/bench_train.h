/* bench/bench_train.h — the training and inference loops shared by the model
 * benchmarks (bench_mlp.c, bench_lenet.c, bench_resnet.c): a graft model
 * built from nn modules (graft/nn.h), the same init and data as the PyTorch
 * peer (a raw float32 init file written here, read there), the optimizer
 * API's plain SGD, a fixed cycle of batches, warm-up steps, then timed
 * steps; prints the JSON records the driver compares (loss before the first
 * update, loss at the last step, how far the parameters moved, checksums of
 * inference outputs). Header only; see bench_util.h. */
#ifndef GRAFT_BENCH_TRAIN_H
#define GRAFT_BENCH_TRAIN_H
#include <math.h>

#include "bench_util.h"
#include "graft/nn.h"
#include "graft/optim.h"

/* The same constants are in bench/peerlib.py (a mismatch shows as a loss mismatch). */
#define BENCH_NBATCHES 8   /* batches in the cycle the model trains on */
#define BENCH_WARMUP 5     /* untimed steps (still part of the loss trajectory) */
#define BENCH_LR 0.05f
#define BENCH_CLASSES 10

typedef struct bench_model {
  gr_model *model;
  int sample_ndim;      /* shape of one input sample, e.g. {784} or {1,28,28} */
  int64_t sample_shape[4];
  double train_flops;   /* per sample: forward + backward as performed */
  double fwd_flops;     /* per sample: forward only */
} bench_model;

typedef struct bench_data {
  float *x;      /* [BENCH_NBATCHES * batch, sample...] */
  float *y;      /* labels as floats (exact small integers) */
  int32_t *yi;
  int64_t batch, sample_numel;
} bench_data;

static inline void bench_data_alloc(bench_data *d, const bench_model *m, int64_t batch) {
  d->batch = batch;
  d->sample_numel = 1;
  for (int i = 0; i < m->sample_ndim; i++) d->sample_numel *= m->sample_shape[i];
  int64_t n = BENCH_NBATCHES * batch;
  d->x = gr_malloc((size_t)(n * d->sample_numel) * sizeof(float));
  d->y = gr_malloc((size_t)n * sizeof(float));
  d->yi = gr_malloc((size_t)n * sizeof(int32_t));
  if (!d->x || !d->y || !d->yi) bench_die("data");
}

/* "<init>.names": one "name numel" line per parameter, in the order of the
 * init file, so the peer can check its parameters are the same ones. */
static inline void bench_write_names(const gr_model *m, const char *init_path) {
  char path[4096];
  snprintf(path, sizeof path, "%s.names", init_path);
  FILE *f = fopen(path, "w");
  if (!f) { perror(path); exit(1); }
  for (int i = 0; i < m->n_entries; i++)
    if (!m->entries[i].buffer) fprintf(f, "%s %lld\n", m->entries[i].name, (long long)m->entries[i].t->numel);
  if (fclose(f)) { perror(path); exit(1); }
}

/* The init file: every parameter (state_dict order, no buffers), then x, then y. */
static inline void bench_blob_io(bench_model *bm, bench_data *d, const char *path, int write) {
  gr_model *m = bm->model;
  float *arrays[256];
  int64_t counts[256];
  int n = 0;
  for (int i = 0; i < m->n_entries; i++) {
    if (m->entries[i].buffer) continue;
    GR_ASSERT(n + 2 < 256);
    arrays[n] = m->entries[i].t->data;
    counts[n++] = m->entries[i].t->numel;
  }
  arrays[n] = d->x;
  counts[n++] = BENCH_NBATCHES * d->batch * d->sample_numel;
  arrays[n] = d->y;
  counts[n++] = BENCH_NBATCHES * d->batch;
  bench_blob blob = {arrays, counts, n};
  if (write) {
    bench_blob_write(&blob, path);
    bench_write_names(m, path);
  } else {
    bench_blob_read(&blob, path);
  }
  for (int64_t i = 0; i < BENCH_NBATCHES * d->batch; i++) d->yi[i] = (int32_t)d->y[i];
}

/* Data for --write-init: inputs uniform in [0,1), labels uniform in 0..9. */
static inline void bench_data_random(bench_data *d, gr_rng *r) {
  int64_t n = BENCH_NBATCHES * d->batch;
  gr_rng_fill_uniform(r, d->x, n * d->sample_numel, 0, 1);
  for (int64_t i = 0; i < n; i++) d->y[i] = (float)gr_rng_below(r, BENCH_CLASSES);
}

/* Batch k (its first `rows` samples) as a view into the data: no copy, like
 * the peer's tensor slice. */
static inline gr_tensor *bench_batch(gr_tensor *view, const bench_model *m, const bench_data *d, int k,
                                     int64_t rows) {
  memset(view, 0, sizeof *view);
  view->ndim = m->sample_ndim + 1;
  view->shape[0] = rows;
  for (int i = 0; i < m->sample_ndim; i++) view->shape[i + 1] = m->sample_shape[i];
  view->numel = rows * d->sample_numel;
  view->data = d->x + k * d->batch * d->sample_numel;
  return view;
}

/* One training step on batch k; returns the loss before the update. */
static inline float bench_step(gr_ctx *c, bench_model *m, gr_optim *opt, const bench_data *d, int k) {
  gr_tensor view, *x = bench_batch(&view, m, d, k, d->batch);
  gr_tensor *logits = gr_model_forward(m->model, c, x);
  gr_tensor *loss = gr_cross_entropy(c, logits, d->yi + k * d->batch, 0.0f, -100);
  if (!loss || gr_backward(c, loss) || gr_optim_step(opt)) bench_die("training step");
  float l = loss->data[0];
  gr_model_zero_grad(m->model);
  gr_ctx_reset(c);
  return l;
}

/* sqrt(sum over all parameters of (p - p0)^2): how far training moved the
 * model. Compared with the peer's, it catches a wrong update rule or step
 * size that the loss alone would hide (the loss moves little in N steps). */
static inline double bench_update_norm(const gr_model *m, const float *p0) {
  double s = 0;
  for (int64_t j = 0; j < m->numel; j++) {
    double d = (double)m->data[j] - p0[j];
    s += d * d;
  }
  return sqrt(s);
}

typedef struct bench_train_loop {
  gr_ctx *c;
  bench_model *m;
  gr_optim *opt;
  const bench_data *d;
} bench_train_loop;

static float bench_train_step(void *arg, int s) {
  bench_train_loop *l = arg;
  return bench_step(l->c, l->m, l->opt, l->d, s % BENCH_NBATCHES);
}

static inline void bench_train(gr_ctx *c, bench_model *m, const bench_data *d, const char *name,
                               int steps) {
  gr_optim_cfg cfg = gr_sgd_cfg(BENCH_LR, 0, 0, false);
  gr_optim *opt = gr_optim_new(m->model, &cfg);
  float *p0 = gr_malloc((size_t)m->model->numel * sizeof(float));
  if (!opt || !p0) bench_die("optimizer");
  memcpy(p0, m->model->data, (size_t)m->model->numel * sizeof(float));
  gr_model_train(m->model, true);
  bench_train_loop loop = {c, m, opt, d};
  float loss0 = 0;
  for (int s = 0; s < BENCH_WARMUP; s++) {
    float loss = bench_train_step(&loop, s);
    if (s == 0) loss0 = loss;
  }
  bench_timing t = bench_time_steps(name, bench_train_step, &loop, BENCH_WARMUP, steps);
  double per_step = t.wall_s / steps, cpu_per_step = t.cpu_s / steps;
  float loss = t.loss;
  printf("{\"bench\":\"%s\",\"case\":\"train\",\"time_s\":%.6e,\"cpu_s\":%.6e,\"items\":%lld,"
         "\"flops\":%.6e,\"loss0\":%.7g,\"loss_final\":%.7g,\"update_norm\":%.7g,\"steps\":%d,",
         name, per_step, cpu_per_step, (long long)d->batch, m->train_flops * (double)d->batch, loss0, loss,
         bench_update_norm(m->model, p0), BENCH_WARMUP + steps);
  bench_print_blas(stdout);
  printf("}\n");
  fflush(stdout);
  gr_free(p0);
  gr_optim_free(opt);
}

/* Median latency of a no-grad eval-mode forward on the first `rows`
 * samples; the checksum (mean |logit|) lets the driver check both sides agree. */
static inline void bench_infer(gr_ctx *c, bench_model *m, const bench_data *d, const char *name,
                               int64_t rows, int reps) {
  gr_ctx_set_grad(c, false);
  gr_model_train(m->model, false);
  double *t = malloc(sizeof(double) * (size_t)reps), checksum = 0;
  char section[32];
  snprintf(section, sizeof section, "infer_b%lld", (long long)rows);
  for (int r = -1; r < reps; r++) { /* r = -1: warm-up and checksum */
    if (r == 0) bench_await_go(section);
    double t0 = bench_now();
    gr_tensor view, *x = bench_batch(&view, m, d, 0, rows);
    gr_tensor *y = gr_model_forward(m->model, c, x);
    if (!y) bench_die("inference");
    if (r >= 0) t[r] = bench_now() - t0;
    else
      for (int64_t i = 0; i < y->numel; i++) checksum += fabs(y->data[i]) / (double)y->numel;
    gr_ctx_reset(c);
  }
  printf("{\"bench\":\"%s\",\"case\":\"infer_b%lld\",\"time_s\":%.6e,\"items\":%lld,\"flops\":%.6e,"
         "\"out_checksum\":%.7g,",
         name, (long long)rows, bench_median(t, reps), (long long)rows, m->fwd_flops * (double)rows,
         checksum);
  bench_print_blas(stdout);
  printf("}\n");
  fflush(stdout);
  free(t);
  gr_ctx_set_grad(c, true);
}

/* main() of every model benchmark once its model is built: --write-init
 * writes the init file (parameters as initialized + random data) and stops;
 * otherwise read it, time inference at batch 1 and the training batch, then
 * training. */
static inline int bench_main(int argc, char **argv, bench_model *m, const char *name, int batch,
                             int steps, size_t arena_bytes) {
  bench_args a = {.batch = batch, .steps = steps};
  bench_parse(argc, argv, &a);
  bench_check_blocks(name, a.steps);
  gr_set_threads(a.threads);
  gr_ctx *c = gr_ctx_new(arena_bytes, 42);
  if (!c) bench_die("context");
  bench_data d;
  bench_data_alloc(&d, m, a.batch);
  int rc = 0;
  if (a.write_init_path) {
    bench_data_random(&d, gr_ctx_rng(c));
    bench_blob_io(m, &d, a.write_init_path, 1);
  } else if (a.init_path) {
    bench_blob_io(m, &d, a.init_path, 0);
    bench_infer(c, m, &d, name, 1, a.quick ? 100 : 500);
    bench_infer(c, m, &d, name, a.batch, a.quick ? 10 : 50);
    bench_train(c, m, &d, name, a.steps);
  } else {
    fprintf(stderr, "bench_%s: --init FILE (or --write-init FILE) is required\n", name);
    rc = 2;
  }
  gr_free(d.x);
  gr_free(d.y);
  gr_free(d.yi);
  gr_model_free(m->model);
  gr_ctx_free(c);
  return rc;
}
#endif
