/* core/threads.c — graft's one thread count. The threads are OpenMP's:
 * OpenBLAS always runs single-threaded on the calling thread, and large
 * gemms are split over the OpenMP threads by gr_sgemm_rm (ops_matmul.c).
 * With both pools active, OpenBLAS's idle workers spin in sched_yield for
 * ~0.1 s after every threaded call: on 2 cores that was 55% of a 2-thread
 * ResNet-8 step's CPU time and made 2 threads slower than 1 (ResNet-8
 * 532 vs 675 img/s, LeNet 10.4k vs 17k; docs/RESULTS.md, "Two threads"). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/op.h"

void openblas_set_num_threads(int n); /* from libopenblas */

static int n_threads;

int gr_threads_default(void) {
  const char *env = getenv("GRAFT_THREADS");
  int n = env ? atoi(env) : 0;
  if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? n : 1;
}

void gr_set_threads(int n) {
  if (n <= 0) n = gr_threads_default();
  n_threads = n;
  openblas_set_num_threads(1);
  omp_set_num_threads(n);
}

int gr_threads(void) {
  if (!n_threads) gr_set_threads(0);
  return n_threads;
}

/* Copies n floats (src NULL: zeroes them), over the OpenMP threads above
 * GR_PAR_MIN in fixed blocks: the gradient buffers' zero fill and the
 * residual adds' dy copy were the largest serial parts of a 2-thread
 * ResNet-8 step (2% of its CPU time, all on the first thread). */
void gr_fill_floats(float *dst, const float *src, int64_t n) {
  enum { BLOCK = 16384 };
  int64_t nblk = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (n > GR_PAR_MIN)
  for (int64_t b = 0; b < nblk; b++) {
    int64_t i0 = b * BLOCK, len = n - i0 < BLOCK ? n - i0 : BLOCK;
    if (src) memcpy(dst + i0, src + i0, (size_t)len * sizeof(float));
    else memset(dst + i0, 0, (size_t)len * sizeof(float));
  }
}
