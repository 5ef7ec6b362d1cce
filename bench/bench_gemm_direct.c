/* bench/bench_gemm_direct.c — the unpacked gemm kernels of
 * core/gemm_direct.c against single-threaded OpenBLAS sgemm on the
 * products of the MLP and LeNet classifier layers (forward NT, dx NN, dW
 * TN, batch 64 and a few other batch sizes): CPU time per call
 * (minimum over rounds of several calls), the ratio, and the largest
 * difference of the two results. Not run by `make bench` (no PyTorch twin):
 * the A/B for kernel work. Usage: build/bench_gemm_direct [--cold] [rounds] */
#include <cblas.h>
#include <math.h>

#include "bench_util.h"
#include "core/gemm_direct.h"

static float *random_floats(int64_t n) {
  float *p = malloc((size_t)n * sizeof(float));
  for (int64_t i = 0; p && i < n; i++) p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  return p;
}

typedef struct gemm_case {
  const char *name;
  bool ta, tb;
  int64_t m, n, k;
  float beta;
} gemm_case;

/* OpenBLAS as ops_matmul.c calls it: sgemv for one row times W^T. */
static void run_blas(const gemm_case *g, const float *A, const float *B, float *C) {
  int64_t lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
  if (g->m == 1 && !g->ta && g->tb) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)g->n, (int)g->k, 1.0f, B, (int)ldb, A, 1, g->beta, C, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, (int)g->m,
              (int)g->n, (int)g->k, 1.0f, A, (int)lda, B, (int)ldb, g->beta, C, (int)g->n);
}

static void run_direct(const gemm_case *g, const float *A, const float *B, float *C) {
  int64_t lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
  gr_gemm_direct(g->ta, g->tb, g->m, g->n, g->k, A, lda, B, ldb, g->beta, C, g->n);
}

/* With --cold, each call is timed alone after 4 MB of other writes (the
 * operands out of L2, as in a training step that touched other layers). */
static bool g_cold;
static float g_evict[1 << 20];

/* Minimum over rounds of the CPU time per call (reps calls a round). */
static double time_calls(void (*fn)(const gemm_case *, const float *, const float *, float *), const gemm_case *g,
                         const float *A, const float *B, float *C, int rounds, int reps) {
  double best = 1e9;
  for (int r = 0; r < rounds; r++) {
    double t = 0;
    if (g_cold)
      for (int i = 0; i < reps; i++) {
        for (size_t e = 0; e < sizeof g_evict / sizeof *g_evict; e++) g_evict[e] += 1.0f;
        double t0 = bench_cpu_now();
        fn(g, A, B, C);
        t += (bench_cpu_now() - t0) / reps;
      }
    else {
      double t0 = bench_cpu_now();
      for (int i = 0; i < reps; i++) fn(g, A, B, C);
      t = (bench_cpu_now() - t0) / reps;
    }
    if (t < best) best = t;
  }
  return best;
}

static void run_case(const gemm_case *g, int rounds) {
  float *A = random_floats(g->m * g->k), *B = random_floats(g->k * g->n);
  float *C0 = random_floats(g->m * g->n), *C1 = malloc((size_t)(g->m * g->n) * sizeof(float));
  float *Ct = malloc((size_t)(g->m * g->n) * sizeof(float));
  if (!A || !B || !C0 || !C1 || !Ct) {
    fprintf(stderr, "bench_gemm_direct: out of memory\n");
    exit(1);
  }
  for (int64_t i = 0; i < g->m * g->n; i++) C1[i] = Ct[i] = C0[i];
  run_blas(g, A, B, C1); /* one call from the same C for the comparison */
  run_direct(g, A, B, Ct);
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < g->m * g->n; i++) {
    diff = fmax(diff, fabs((double)C1[i] - (double)Ct[i]));
    scale = fmax(scale, fabs((double)C1[i]));
  }
  double flops = 2.0 * (double)g->m * (double)g->n * (double)g->k;
  int reps = (int)fmax(1, 2e7 / flops);
  /* beta 1 accumulates into C across calls: harmless for timing */
  double tb = time_calls(run_blas, g, A, B, C1, rounds, reps), td = time_calls(run_direct, g, A, B, Ct, rounds, reps);
  printf("%-10s %s%s m=%4lld n=%4lld k=%4lld beta=%g | sgemm %7.2f us %6.1f GF/s | direct %7.2f us %6.1f GF/s | "
         "direct/sgemm time %.3f | max diff %.2e (of %.2e)%s\n",
         g->name, g->ta ? "T" : "N", g->tb ? "T" : "N", (long long)g->m, (long long)g->n, (long long)g->k,
         (double)g->beta, tb * 1e6, flops / tb * 1e-9, td * 1e6, flops / td * 1e-9, td / tb, diff, scale,
         gr_gemm_direct_fits(g->ta, g->tb, g->m, g->n, g->k) ? "" : "  (not taken by gr_sgemm_rm)");
  free(A), free(B), free(C0), free(C1), free(Ct);
}

int main(int argc, char **argv) {
  int a = 1;
  g_cold = argc > 1 && !strcmp(argv[1], "--cold");
  a += g_cold;
  int rounds = argc > a ? atoi(argv[a]) : 20;
  openblas_set_num_threads(1);
  static const gemm_case cases[] = {
      {"mlp fwd1", false, true, 64, 256, 784, 1},   {"mlp fwd2", false, true, 64, 256, 256, 1},
      {"mlp fwd3", false, true, 64, 10, 256, 1},    {"mlp dx3", false, false, 64, 256, 10, 0},
      {"mlp dx2", false, false, 64, 256, 256, 0},   {"mlp dW3", true, false, 10, 256, 64, 1},
      {"mlp dW2", true, false, 256, 256, 64, 1},    {"mlp dW1", true, false, 256, 784, 64, 1},
      {"lenet fwd1", false, true, 64, 120, 400, 1}, {"lenet fwd2", false, true, 64, 84, 120, 1},
      {"lenet fwd3", false, true, 64, 10, 84, 1},   {"lenet dx1", false, false, 64, 400, 120, 0},
      {"lenet dx2", false, false, 64, 120, 84, 0},  {"lenet dx3", false, false, 64, 84, 10, 0},
      {"lenet dW1", true, false, 120, 400, 64, 1},  {"lenet dW2", true, false, 84, 120, 64, 1},
      {"lenet dW3", true, false, 10, 84, 64, 1},    {"b32 fwd1", false, true, 32, 256, 784, 1},
      {"b96 fwd1", false, true, 96, 256, 784, 1},
      {"b128 fwd1", false, true, 128, 256, 784, 1}, {"b256 fwd1", false, true, 256, 256, 784, 1},
      {"b32 dW1", true, false, 256, 784, 32, 1},    {"b128 dW1", true, false, 256, 784, 128, 1},
      {"b128 dx2", false, false, 128, 256, 256, 0}, {"tails", false, true, 63, 257, 781, 1},
      {"tails", true, false, 255, 781, 63, 1},      {"short k", false, true, 64, 64, 64, 1},
      {"short k", false, true, 64, 192, 32, 1},     {"b1 fwd1", false, true, 1, 256, 784, 1},
      {"ft b1 fwd1", false, true, 1, 1024, 784, 1}, {"ft b1 fwd2", false, true, 1, 1024, 1024, 1},      {"tails", false, false, 63, 781, 255, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i], rounds);
  return 0;
}
