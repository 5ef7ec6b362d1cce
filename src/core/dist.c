/* core/dist.c — data-parallel collectives over MPI, or the one-process
 * fallback when built without GRAFT_MPI (see graft/dist.h). Floats are
 * reduced in chunks of at most 2^28 elements to stay within MPI's int counts. */
#include <stdlib.h>

#include "graft/dist.h"

#ifdef GRAFT_MPI
#include <mpi.h>

static uint64_t bytes_sent;
static double comm_seconds;
#define CHUNK ((int64_t)1 << 28)

static gr_status mpi_check(int rc, const char *what) {
  if (rc == MPI_SUCCESS) return GR_OK;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return gr_error(GR_EIO, "%s: MPI error: %s", what, msg);
}

gr_status gr_dist_init(int *argc, char ***argv) {
  int on = 0;
  MPI_Initialized(&on);
  if (on) return GR_OK;
  gr_status st = mpi_check(MPI_Init(argc, argv), "dist init");
  if (!st) MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  return st;
}

void gr_dist_finalize(void) {
  int on = 0, off = 0;
  MPI_Initialized(&on);
  MPI_Finalized(&off);
  if (on && !off) MPI_Finalize();
}

bool gr_dist_built(void) { return true; }

static bool running(void) {
  int on = 0, off = 0;
  MPI_Initialized(&on);
  MPI_Finalized(&off);
  return on && !off;
}

int gr_dist_rank(void) {
  int r = 0;
  if (running()) MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int gr_dist_size(void) {
  int s = 1;
  if (running()) MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

gr_status gr_dist_allreduce_sum(float *buf, int64_t n) {
  if (gr_dist_size() == 1) return GR_OK;
  double t0 = MPI_Wtime();
  for (int64_t off = 0; off < n; off += CHUNK) {
    int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
    gr_status st = mpi_check(MPI_Allreduce(MPI_IN_PLACE, buf + off, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
                             "allreduce");
    if (st) return st;
    bytes_sent += (uint64_t)cnt * sizeof(float);
  }
  comm_seconds += MPI_Wtime() - t0;
  return GR_OK;
}

gr_status gr_dist_allreduce_mean(float *buf, int64_t n) {
  int size = gr_dist_size();
  gr_status st = gr_dist_allreduce_sum(buf, n);
  if (st || size == 1) return st;
  float inv = 1.0f / (float)size;
  for (int64_t i = 0; i < n; i++) buf[i] *= inv;
  return GR_OK;
}

gr_status gr_dist_allreduce_sum_f64(double *buf, int64_t n) {
  if (gr_dist_size() == 1) return GR_OK;
  bytes_sent += (uint64_t)n * sizeof(double);
  double t0 = MPI_Wtime();
  gr_status st = mpi_check(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "allreduce");
  comm_seconds += MPI_Wtime() - t0;
  return st;
}

gr_status gr_dist_broadcast_bytes(void *buf, int64_t n, int root) {
  if (gr_dist_size() == 1) return GR_OK;
  char *p = buf;
  double t0 = MPI_Wtime();
  gr_status st = GR_OK;
  for (int64_t off = 0; off < n && !st; off += CHUNK) {
    int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
    st = mpi_check(MPI_Bcast(p + off, cnt, MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
    if (!st && gr_dist_rank() == root) bytes_sent += (uint64_t)cnt;
  }
  comm_seconds += MPI_Wtime() - t0;
  return st;
}

gr_status gr_dist_broadcast(float *buf, int64_t n, int root) {
  return gr_dist_broadcast_bytes(buf, n * (int64_t)sizeof(float), root);
}

gr_status gr_dist_agree(gr_status mine) {
  if (gr_dist_size() == 1) return mine;
  int in[2] = {mine != GR_OK, mine != GR_OK ? gr_dist_rank() : -1}, out[2];
  double t0 = MPI_Wtime();
  gr_status st = mpi_check(MPI_Allreduce(in, out, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "agree");
  comm_seconds += MPI_Wtime() - t0;
  if (st) return st;
  if (!out[0]) return GR_OK;
  if (mine != GR_OK) return mine;
  return gr_error(GR_ESTATE, "rank %d failed", out[1]);
}

void gr_dist_barrier(void) {
  if (gr_dist_size() == 1) return;
  double t0 = MPI_Wtime();
  MPI_Barrier(MPI_COMM_WORLD);
  comm_seconds += MPI_Wtime() - t0;
}

void gr_dist_abort(int code) {
  if (running() && gr_dist_size() > 1) MPI_Abort(MPI_COMM_WORLD, code);
  exit(code);
}

uint64_t gr_dist_bytes_sent(void) { return bytes_sent; }
double gr_dist_comm_seconds(void) { return comm_seconds; }

#else /* one process */

gr_status gr_dist_init(int *argc, char ***argv) { return GR_OK; }
void gr_dist_finalize(void) {}
bool gr_dist_built(void) { return false; }
int gr_dist_rank(void) { return 0; }
int gr_dist_size(void) { return 1; }
gr_status gr_dist_allreduce_sum(float *buf, int64_t n) { return GR_OK; }
gr_status gr_dist_allreduce_mean(float *buf, int64_t n) { return GR_OK; }
gr_status gr_dist_allreduce_sum_f64(double *buf, int64_t n) { return GR_OK; }
gr_status gr_dist_broadcast(float *buf, int64_t n, int root) { return GR_OK; }
gr_status gr_dist_broadcast_bytes(void *buf, int64_t n, int root) { return GR_OK; }
gr_status gr_dist_agree(gr_status mine) { return mine; }
void gr_dist_barrier(void) {}
void gr_dist_abort(int code) { exit(code); }
uint64_t gr_dist_bytes_sent(void) { return 0; }
double gr_dist_comm_seconds(void) { return 0; }

#endif
