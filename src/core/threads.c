/* core/threads.c — graft's one thread count. The threads are OpenMP's:
 * OpenBLAS always runs single-threaded on the calling thread, and large
 * gemms are split over the OpenMP threads by gr_sgemm_rm (ops_matmul.c).
 * With both pools active, OpenBLAS's idle workers spin in sched_yield for
 * ~0.1 s after every threaded call: on 2 cores that was 55% of a 2-thread
 * ResNet-8 step's CPU time and made 2 threads slower than 1 (ResNet-8
 * 532 vs 675 img/s, LeNet 10.4k vs 17k; docs/RESULTS.md, "Two threads"). */
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include "graft/tensor.h"

void openblas_set_num_threads(int n); /* from libopenblas */

static int n_threads;

void gr_set_threads(int n) {
  if (n <= 0) {
    const char *env = getenv("GRAFT_THREADS");
    n = env ? atoi(env) : 0;
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0) n = 1;
  }
  n_threads = n;
  openblas_set_num_threads(1);
  omp_set_num_threads(n);
}

int gr_threads(void) {
  if (!n_threads) gr_set_threads(0);
  return n_threads;
}
