/* core/threads.c — one thread count for OpenBLAS and OpenMP together.
 * graft never calls BLAS from inside an OpenMP parallel region, so setting
 * both pools to n threads keeps at most n busy at any time. */
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
  openblas_set_num_threads(n);
  omp_set_num_threads(n);
}

int gr_threads(void) {
  if (!n_threads) gr_set_threads(0);
  return n_threads;
}
