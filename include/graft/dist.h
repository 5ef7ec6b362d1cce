/* graft/dist.h — data-parallel communication (MPI), optional at build time.
 *
 * The plain build (library `graft`, binary `graft`) has no MPI dependency:
 * every function here then behaves as a single process (rank 0 of 1) and
 * the collectives are no-ops. The MPI build (library `graft_mpi`, binary
 * `graft-mpi`, compiled with GRAFT_MPI) runs the same code over
 * MPI_COMM_WORLD. Collectives are blocking and must be called by every rank
 * in the same order. Errors from MPI become gr_status values. */
#ifndef GRAFT_DIST_H
#define GRAFT_DIST_H
#include <stdbool.h>
#include <stdint.h>

#include "graft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Starts MPI when built with it (safe to call more than once). */
gr_status gr_dist_init(int *argc, char ***argv);
void gr_dist_finalize(void);
bool gr_dist_built(void);   /* compiled with MPI */
int gr_dist_rank(void);     /* 0 without MPI */
int gr_dist_size(void);     /* 1 without MPI */
/* buf[i] = sum over ranks of buf[i]. */
gr_status gr_dist_allreduce_sum(float *buf, int64_t n);
/* buf[i] = mean over ranks of buf[i] (sum / size). */
gr_status gr_dist_allreduce_mean(float *buf, int64_t n);
/* buf[i] = sum over ranks (double, for metrics: counts, losses). */
gr_status gr_dist_allreduce_sum_f64(double *buf, int64_t n);
/* Copies root's buf to every rank (float data and raw bytes). */
gr_status gr_dist_broadcast(float *buf, int64_t n, int root);
gr_status gr_dist_broadcast_bytes(void *buf, int64_t n, int root);
/* All ranks learn whether any rank failed: returns GR_OK only if every rank
 * passed GR_OK; otherwise GR_ESTATE with a message naming a failed rank. */
gr_status gr_dist_agree(gr_status mine);
void gr_dist_barrier(void);
/* Ends every rank with exit code `code` (MPI_Abort); exits locally otherwise. */
void gr_dist_abort(int code);
/* Bytes sent by this rank's collectives so far (for scaling reports). */
uint64_t gr_dist_bytes_sent(void);
/* Wall seconds this rank has spent inside collectives so far: the transfer
 * plus the wait for ranks that arrive later (for scaling reports). */
double gr_dist_comm_seconds(void);

#ifdef __cplusplus
}
#endif
#endif
