/* bench/bench_gemm.c — graft's gr_matmul against a direct cblas_sgemm call
 * on the same square problems, in the same process, alternating, so the
 * ratio shows what graft's op layer (arena, shape checks, tape) costs on top
 * of OpenBLAS. Sizes 256..2048; the 1024 case carries the >= 90% target.
 * graft runs OpenBLAS single-threaded and splits gemms over its own
 * threads (core/threads.c); the direct call gets OpenBLAS's own threads,
 * as a program calling OpenBLAS with OPENBLAS_NUM_THREADS=N would. The two
 * run in alternating blocks, not call by call: OpenBLAS's idle workers spin
 * for ~0.1 s after each threaded call, and a graft gemm started in that
 * window shared the cores with them (wait_blas_workers_idle).
 * One JSON line per size on stdout (read by bench/driver.py); the PyTorch
 * peer is bench/peer_gemm.py. Usage: bench_gemm --threads N [--quick] */
#include <cblas.h>
#include <math.h>

#include "bench_util.h"

typedef struct gemm_case {
  gr_tensor *a, *b;
  float *direct_out;
  int64_t n;
} gemm_case;

static double time_graft(gr_ctx *c, gemm_case *g, float **out_data) {
  double t0 = bench_now();
  gr_tensor *y = gr_matmul(c, g->a, g->b, false, false);
  double t = bench_now() - t0;
  if (!y) bench_die("gr_matmul");
  if (out_data) *out_data = y->data;
  return t;
}

void openblas_set_num_threads(int n); /* from libopenblas */
static int direct_threads = 1;

static double time_direct(gemm_case *g) {
  int n = (int)g->n;
  openblas_set_num_threads(direct_threads);
  double t0 = bench_now();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, g->a->data, n, g->b->data, n,
              0.0f, g->direct_out, n);
  double t = bench_now() - t0;
  openblas_set_num_threads(1); /* as graft leaves it */
  return t;
}

/* Largest |graft - direct| relative to the largest |direct|: both call the
 * same sgemm, so anything but ~0 means graft computed something else. */
static double compare_outputs(gr_ctx *c, gemm_case *g) {
  float *y;
  time_graft(c, g, &y);
  time_direct(g);
  double maxdiff = 0, maxabs = 0;
  for (int64_t i = 0; i < g->n * g->n; i++) {
    maxdiff = fmax(maxdiff, fabs((double)y[i] - g->direct_out[i]));
    maxabs = fmax(maxabs, fabs((double)g->direct_out[i]));
  }
  gr_ctx_reset(c);
  return maxdiff / (maxabs > 0 ? maxabs : 1);
}

/* After a threaded call, OpenBLAS's workers spin in sched_yield until
 * 2^28 TSC ticks have passed (OPENBLAS_THREAD_TIMEOUT's default; 0.10 s at
 * this machine's 2.6 GHz TSC), then sleep. A graft gemm timed inside that
 * window ran its two halves on two cores shared with a spinning worker, so
 * at about one core's speed (docs/RESULTS.md, "MLP at 1 thread and gemm at
 * 2 threads"). Waits out the spin, then until the process has been idle
 * for 20 ms (a worker starved by other load spins later), at most 1 s. */
static void wait_blas_workers_idle(void) {
  if (direct_threads <= 1) return;
  struct timespec spin = {0, 120 * 1000 * 1000}, tick = {0, 20 * 1000 * 1000};
  nanosleep(&spin, NULL);
  double deadline = bench_now() + 1.0, used;
  do {
    double c0 = bench_cpu_now();
    nanosleep(&tick, NULL);
    used = bench_cpu_now() - c0;
  } while (used > 1e-3 && bench_now() < deadline);
}

/* Alternations of a graft block and a direct block (4 left the ratio at
 * 80-85% in 2 of 10 runs from clock drift between blocks; 8: 10 of 10 in
 * 93-98%). */
#define GEMM_BLOCKS 8

static void bench_size(gr_ctx *c, gr_arena *params, int64_t n, int threads, double budget_s) {
  gemm_case g = {.n = n};
  g.a = gr_tensor_new_in(params, 2, GR_SHAPE(n, n), false);
  g.b = gr_tensor_new_in(params, 2, GR_SHAPE(n, n), false);
  g.direct_out = gr_malloc((size_t)(n * n) * sizeof(float));
  if (!g.a || !g.b || !g.direct_out) bench_die("gemm setup");
  gr_rng_fill_uniform(gr_ctx_rng(c), g.a->data, n * n, -1, 1);
  gr_rng_fill_uniform(gr_ctx_rng(c), g.b->data, n * n, -1, 1);
  double reldiff = compare_outputs(c, &g);
  double est = time_direct(&g);
  int reps = (int)(budget_s / 2 / (est > 1e-6 ? est : 1e-6));
  if (reps < GEMM_BLOCKS) reps = GEMM_BLOCKS;
  if (reps > 200) reps = 200;
  double *tg = malloc(sizeof(double) * (size_t)reps), *td = malloc(sizeof(double) * (size_t)reps);
  for (int blk = 0; blk < GEMM_BLOCKS; blk++) { /* alternate blocks, so drift hits both alike */
    int lo = reps * blk / GEMM_BLOCKS, hi = reps * (blk + 1) / GEMM_BLOCKS;
    wait_blas_workers_idle();
    for (int r = lo; r < hi; r++) {
      tg[r] = time_graft(c, &g, NULL);
      gr_ctx_reset(c);
    }
    for (int r = lo; r < hi; r++) td[r] = time_direct(&g);
  }
  printf("{\"bench\":\"gemm\",\"n\":%lld,\"threads\":%d,\"reps\":%d,\"graft_s\":%.6e,"
         "\"sgemm_s\":%.6e,\"reldiff\":%.3e,",
         (long long)n, threads, reps, bench_median(tg, reps), bench_median(td, reps), reldiff);
  bench_print_blas(stdout);
  printf("}\n");
  fflush(stdout);
  free(tg);
  free(td);
  gr_free(g.direct_out);
  gr_arena_reset(params);
}

int main(int argc, char **argv) {
  bench_args a = {0};
  bench_parse(argc, argv, &a);
  gr_set_threads(a.threads);
  direct_threads = a.threads;
  gr_ctx *c = gr_ctx_new((size_t)64 << 20, 1234);
  gr_arena *params = gr_arena_new((size_t)64 << 20);
  if (!c || !params) bench_die("context");
  gr_ctx_set_grad(c, false);
  static const int64_t sizes[] = {256, 512, 1024, 2048};
  int nsizes = a.quick ? 3 : 4;
  for (int i = 0; i < nsizes; i++) bench_size(c, params, sizes[i], a.threads, a.quick ? 0.15 : 0.6);
  gr_arena_free(params);
  gr_ctx_free(c);
  return 0;
}
