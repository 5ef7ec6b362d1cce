/* MPI collectives on 2 ranks: mean and sum allreduce, f64 sums, broadcast, and
 * failure agreement (one rank failing is seen by all), bytes and time
 * counted in collectives. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "graft/dist.h"
#include "testutil.h"

int main(int argc, char **argv) {
  CHECK_OK(gr_dist_init(&argc, &argv));
  int rank = gr_dist_rank(), size = gr_dist_size();
  CHECK(gr_dist_built());
  CHECK(size == 2);
  enum { N = 1000 };
  static float buf[N];
  for (int i = 0; i < N; i++) buf[i] = (float)(rank + 1) * (float)i;
  CHECK_OK(gr_dist_allreduce_mean(buf, N));
  bool ok = true;
  for (int i = 0; i < N; i++) ok &= fabsf(buf[i] - 1.5f * (float)i) <= 1e-6f * (float)i;
  CHECK(ok);
  float two[2] = {1.5f, (float)rank};
  CHECK_OK(gr_dist_allreduce_sum(two, 2));
  CHECK(two[0] == 3.0f && two[1] == 1.0f);
  double d[2] = {1.0, (double)rank};
  CHECK_OK(gr_dist_allreduce_sum_f64(d, 2));
  CHECK(d[0] == 2.0 && d[1] == 1.0);
  float b[3] = {0, 0, 0};
  if (rank == 0) b[0] = 7, b[1] = 8, b[2] = 9;
  CHECK_OK(gr_dist_broadcast(b, 3, 0));
  CHECK(b[0] == 7 && b[1] == 8 && b[2] == 9);
  CHECK_OK(gr_dist_agree(GR_OK));
  gr_status st = gr_dist_agree(rank == 1 ? gr_error(GR_EIO, "shard missing") : GR_OK);
  CHECK(st != GR_OK);
  CHECK(gr_dist_bytes_sent() > 0);
  /* time in collectives: rank 1 arrives 50 ms late, rank 0 waits for it */
  double before = gr_dist_comm_seconds();
  if (rank == 1) {
    struct timespec nap = {0, 50 * 1000 * 1000};
    nanosleep(&nap, NULL);
  }
  CHECK_OK(gr_dist_allreduce_mean(buf, N));
  double waited = gr_dist_comm_seconds() - before;
  CHECK(waited >= 0 && (rank == 1 || waited >= 0.04));
  int rc = test_summary();
  gr_dist_finalize();
  return rc;
}
