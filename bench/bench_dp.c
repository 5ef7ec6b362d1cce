/* bench/bench_dp.c — data-parallel step times through the library's own
 * training loops: LeNet on Fashion-MNIST (gr_train, SGD lr 0.05 momentum
 * 0.9) or the char-GPT on KJV (gr_lm_train: 4 layers, width 128, 4 heads,
 * 64-token sequences, char tokenizer, AdamW 3e-3, clip 1). Rank 0 records
 * the wall time of every step (on_step hook) and, after the warm-up, the
 * bytes and seconds of its collectives (graft/dist.h). Built twice:
 * bench_dp (one process) and, with MPI, bench_dp_mpi (under mpirun the
 * ranks split each global batch, so the steps are the same). Per-step
 * statistics are less disturbed by other processes than a run's total:
 * a step preempted by another program is one slow step, not a slower run.
 *
 * Usage: bench_dp lenet|gpt BATCH STEPS [WARMUP]  (1 thread unless GRAFT_THREADS)
 *        bench_dp allreduce FLOATS CALLS  (the collective alone, see run_allreduce)
 * Prints one JSON line: model, ranks, batch, timed steps, step_ms_median,
 * step_ms_p10, step_ms_mean, comm_ms_per_step, bytes_per_step, units_per_step
 * (samples or tokens of the global batch). scripts/bench_dp.py drives it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graft/dist.h"
#include "graft/lm.h"
#include "graft/train.h"

typedef struct step_clock {
  double *t;            /* t[i]: time at the end of step i (rank 0) */
  int64_t n, warmup;
  double comm0;         /* collectives' seconds and bytes at the end of the warm-up */
  uint64_t bytes0;
} step_clock;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_step_at(step_clock *k, int64_t i) {
  if (i < 0 || i >= k->n) return;
  k->t[i] = now();
  if (i == k->warmup - 1) k->comm0 = gr_dist_comm_seconds(), k->bytes0 = gr_dist_bytes_sent();
}
/* gr_train passes the number of steps done (1-based), gr_lm_train the step index. */
static void on_train_step(void *ud, int64_t done, int64_t total, double loss) { on_step_at(ud, done - 1); }
static void on_lm_step(void *ud, int64_t step, int64_t total, double loss) { on_step_at(ud, step); }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void report(const char *model, int64_t batch, double units, step_clock *k) {
  int64_t m = k->n - k->warmup;
  double *d = malloc((size_t)m * sizeof(double)), sum = 0;
  if (!d) return;
  for (int64_t i = 0; i < m; i++) sum += d[i] = k->t[k->warmup + i] - k->t[k->warmup + i - 1];
  qsort(d, (size_t)m, sizeof(double), cmp_double);
  printf("{\"model\":\"%s\",\"ranks\":%d,\"batch\":%lld,\"steps\":%lld,\"step_ms_median\":%.4f,\"step_ms_p10\":%.4f,"
         "\"step_ms_mean\":%.4f,\"comm_ms_per_step\":%.4f,\"bytes_per_step\":%.1f,\"units_per_step\":%.0f}\n",
         model, gr_dist_size(), (long long)batch, (long long)m, 1e3 * d[m / 2], 1e3 * d[m / 10], 1e3 * sum / (double)m,
         1e3 * (gr_dist_comm_seconds() - k->comm0) / (double)m, (double)(gr_dist_bytes_sent() - k->bytes0) / (double)m, units);
  free(d);
}

static gr_status run_lenet(int64_t batch, step_clock *k) {
  gr_data_spec spec;
  gr_dataset *ds = NULL;
  gr_status s = gr_data_spec_parse("fmnist:limit=4096", &spec);
  if (!s) s = gr_data_load(&spec, NULL, 1, &ds);
  gr_model *m = s ? NULL : gr_model_new(1);
  gr_module *root = m ? gr_arch_build(m, "lenet", ds->c, ds->h, ds->w, ds->n_classes) : NULL;
  if (!s) s = root ? gr_model_set_root(m, root) : gr_last_status();
  gr_optim_cfg oc = gr_sgd_cfg(0.05f, 0.9f, 0.0f, false);
  gr_optim *o = s ? NULL : gr_optim_new(m, &oc);
  if (!s && !o) s = gr_last_status();
  gr_train_cfg tc = {.steps = k->n, .batch = batch, .seed = 1};
  gr_train_hooks h = {k, on_train_step, NULL};
  gr_train_result res;
  if (!s) s = gr_train(m, o, ds, NULL, &tc, gr_dist_rank() == 0 ? &h : NULL, &res);
  if (!s && gr_dist_rank() == 0) report("lenet", batch, (double)batch, k);
  gr_optim_free(o);
  gr_model_free(m);
  gr_dataset_free(ds);
  return s;
}

static gr_status run_gpt(int64_t batch, step_clock *k) {
  gr_text_spec spec;
  gr_corpus *corpus = NULL;
  gr_tokenizer *t = NULL;
  gr_token_stream ids = {0};
  gr_gpt *g = NULL;
  gr_status s = gr_text_spec_parse("kjv", &spec);
  if (!s) s = gr_text_load(&spec, GR_SPLIT_TRAIN, &corpus);
  if (!s) s = gr_tokenizer_from_name("char", corpus->text, (size_t)corpus->len, &t);
  if (!s) s = gr_corpus_tokenize(corpus, t, &ids);
  gr_gpt_config gc = {.vocab = t ? t->vocab : 0, .block = 64, .n_layer = 4, .n_head = 4, .n_embd = 128};
  if (!s) s = gr_gpt_new(&gc, 1, &g);
  gr_optim_cfg oc = gr_adamw_cfg(3e-3f, 0.0f);
  gr_optim *o = s ? NULL : gr_optim_new(g->model, &oc);
  if (!s && !o) s = gr_last_status();
  gr_lm_train_cfg tc = {.objective = GR_LM_CAUSAL, .steps = k->n, .batch = batch, .seq = 64, .clip_norm = 1.0f, .seed = 1};
  gr_lm_train_hooks h = {k, gr_dist_rank() == 0 ? on_lm_step : NULL, NULL};
  gr_lm_train_result res;
  if (!s) s = gr_lm_train(g, o, t, &ids, NULL, NULL, &tc, &h, &res);
  if (!s && gr_dist_rank() == 0) report("gpt", batch, (double)(batch * 64), k);
  gr_optim_free(o);
  gr_gpt_free(g);
  gr_token_stream_free(&ids);
  gr_tokenizer_free(t);
  gr_corpus_free(corpus);
  return s;
}

/* `allreduce N CALLS`: the time of one gr_dist_allreduce_sum of N floats
 * with nothing else running between calls (min and median over CALLS; the
 * minimum is the transfer without waits for a descheduled rank). */
static gr_status run_allreduce(int64_t n, int64_t calls) {
  float *buf = calloc((size_t)n, sizeof(float));
  double *d = malloc((size_t)calls * sizeof(double));
  gr_status s = buf && d ? GR_OK : gr_error(GR_ENOMEM, "bench_dp: out of memory");
  for (int64_t i = 0; !s && i < calls; i++) {
    double t0 = now();
    s = gr_dist_allreduce_sum(buf, n);
    d[i] = now() - t0;
  }
  if (!s && gr_dist_rank() == 0) {
    qsort(d, (size_t)calls, sizeof(double), cmp_double);
    printf("{\"allreduce_floats\":%lld,\"ranks\":%d,\"calls\":%lld,\"ms_min\":%.4f,\"ms_median\":%.4f}\n", (long long)n,
           gr_dist_size(), (long long)calls, 1e3 * d[0], 1e3 * d[calls / 2]);
  }
  free(buf);
  free(d);
  return s;
}

int main(int argc, char **argv) {
  if (gr_dist_init(&argc, &argv)) return fprintf(stderr, "bench_dp: %s\n", gr_last_error()), 1;
  if (argc == 4 && !strcmp(argv[1], "allreduce") && atoll(argv[2]) > 0 && atoll(argv[3]) > 0) {
    gr_status s = run_allreduce(atoll(argv[2]), atoll(argv[3]));
    if (s) fprintf(stderr, "bench_dp: %s\n", gr_last_error());
    gr_dist_finalize();
    return s ? 1 : 0;
  }
  if (argc < 4 || (strcmp(argv[1], "lenet") && strcmp(argv[1], "gpt"))) {
    fprintf(stderr, "usage: bench_dp lenet|gpt BATCH STEPS [WARMUP] | bench_dp allreduce FLOATS CALLS\n");
    gr_dist_finalize();
    return 2;
  }
  int64_t batch = atoll(argv[2]);
  step_clock k = {.n = atoll(argv[3]), .warmup = argc > 4 ? atoll(argv[4]) : 10};
  if (batch < 1 || k.warmup < 1 || k.n < k.warmup + 10) {
    fprintf(stderr, "bench_dp: need BATCH >= 1, WARMUP >= 1 and STEPS >= WARMUP + 10\n");
    gr_dist_finalize();
    return 2;
  }
  k.t = calloc((size_t)k.n, sizeof(double));
  gr_set_threads(getenv("GRAFT_THREADS") ? 0 : 1);
  gr_status s = !k.t ? gr_error(GR_ENOMEM, "bench_dp: out of memory")
                : !strcmp(argv[1], "lenet") ? run_lenet(batch, &k) : run_gpt(batch, &k);
  if (s) fprintf(stderr, "bench_dp: %s\n", gr_last_error());
  free(k.t);
  if (s && gr_dist_size() > 1) gr_dist_abort(1);
  gr_dist_finalize();
  return s ? 1 : 0;
}
