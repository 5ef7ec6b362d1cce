/* bench/bench_host.c — how steady the CPUs of this machine are: on each CPU
 * in turn (pinned), a fixed AVX2 FMA loop is timed in 20 ms slices for
 * --seconds S (default 1); prints one JSON line per CPU with its best slice
 * rate (GFLOP/s), the median, and the share of its slices below 3/4 of the
 * best slice of any CPU.
 * On a shared host a CPU's FP throughput drops to about half for a second
 * or two at a time when another guest runs on its sibling hardware thread
 * (invisible to load and /proc/pressure: our process is not waiting, it
 * runs slower); bench/driver.py prints this before and after the
 * benchmarks, so a run that met such periods shows it.
 * Usage: bench_host [--seconds S] */
#include <immintrin.h>
#include <sched.h>

#include "bench_util.h"

enum { CHAINS = 8, SLICE_MS = 20 };
static volatile float bench_host_sink;

/* FLOPs done in one call: CHAINS independent FMA chains of 8 floats. */
static double fma_burst(__m256 *acc, long reps) {
  const __m256 b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
  for (long r = 0; r < reps; r++)
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
  return (double)reps * CHAINS * 8 * 2;
}

/* rate[0..n): GFLOP/s of each 20 ms slice on `cpu`; returns the best. */
static double probe_cpu(int cpu, double *rate, int n) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set)) { perror("sched_setaffinity"); exit(1); }
  __m256 acc[CHAINS];
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps(1.0f + (float)i * 1e-7f);
  long reps = 1000; /* grown until one burst takes ~1 ms */
  for (double t = 0; t < 1e-3; reps *= 2) {
    double t0 = bench_now();
    fma_burst(acc, reps);
    t = bench_now() - t0;
  }
  double best = 0;
  for (int s = 0; s < n; s++) {
    double t0 = bench_now(), flops = 0, t;
    while ((t = bench_now() - t0) < SLICE_MS * 1e-3) flops += fma_burst(acc, reps);
    rate[s] = flops / t / 1e9;
    if (rate[s] > best) best = rate[s];
  }
  float last[8];
  _mm256_storeu_ps(last, acc[0]);
  bench_host_sink = last[0]; /* keeps the loop */
  return best;
}

int main(int argc, char **argv) {
  double seconds = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
    else { fprintf(stderr, "usage: bench_host [--seconds S]\n"); return 2; }
  }
  if (!(seconds >= 0.02 && seconds <= 600)) { fprintf(stderr, "bench_host: --seconds must be in [0.02, 600]\n"); return 2; }
  cpu_set_t mine;
  if (sched_getaffinity(0, sizeof mine, &mine)) { perror("sched_getaffinity"); return 1; }
  int cpus[CPU_SETSIZE], ncpu = 0, n = (int)(seconds * 1000 / SLICE_MS);
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
    if (CPU_ISSET(cpu, &mine)) cpus[ncpu++] = cpu;
  double *rate = malloc(sizeof(double) * (size_t)(n * ncpu)), *best = malloc(sizeof(double) * (size_t)ncpu),
         top = 0;
  if (!rate || !best) { fprintf(stderr, "bench_host: out of memory\n"); return 1; }
  for (int i = 0; i < ncpu; i++) {
    best[i] = probe_cpu(cpus[i], rate + i * n, n);
    if (best[i] > top) top = best[i];
  }
  for (int i = 0; i < ncpu; i++) { /* slow: below 3/4 of the best slice of any CPU */
    int slow = 0;
    for (int s = 0; s < n; s++) slow += rate[i * n + s] < 0.75 * top;
    printf("{\"cpu\":%d,\"slices\":%d,\"best_gflops\":%.2f,\"median_gflops\":%.2f,\"slow_share\":%.3f}\n",
           cpus[i], n, best[i], bench_median(rate + i * n, n), (double)slow / n);
  }
  free(rate);
  free(best);
  return 0;
}
