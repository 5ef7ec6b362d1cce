/* gr_train resume on 2 ranks with dropout: rank 0 writes the checkpoint
 * with both ranks' dropout generators (they differ), both ranks read it,
 * and the paused + resumed run equals the uninterrupted 2-rank run bit for
 * bit on every rank. */
#include <string.h>
#include <unistd.h>

#include "graft/dist.h"
#include "testutil.h"
#include "train_fixture.h"

static gr_model *train(const gr_dataset *tr, const gr_dataset *te, gr_train_cfg cfg, gr_train_result *res) {
  gr_model *m = fixture_dropout_mlp(8, 32, 3, 0.3f, 5);
  gr_optim_cfg oc = gr_adamw_cfg(0.03f, 0.01f);
  gr_optim *o = gr_optim_new(m, &oc);
  CHECK_OK(gr_train(m, o, tr, te, &cfg, NULL, res));
  gr_optim_free(o);
  return m;
}

int main(int argc, char **argv) {
  CHECK_OK(gr_dist_init(&argc, &argv));
  CHECK(gr_dist_size() == 2);
  gr_set_threads(1);
  int pid = (int)getpid();
  CHECK_OK(gr_dist_broadcast_bytes(&pid, sizeof pid, 0));
  char path[600];
  snprintf(path, sizeof path, "%s/mpi_resume_%d.safetensors", test_tmpdir(), pid);
  gr_dataset *tr = fixture_blobs(192, 8, 3, 1), *te = fixture_blobs(90, 8, 3, 2);
  gr_train_cfg cfg = {.steps = 50, .batch = 16, .eval_every = 10, .seed = 4};
  gr_train_result ra, rb, rc;
  gr_model *a = train(tr, te, cfg, &ra);
  gr_train_cfg pause = cfg;
  pause.ckpt = (gr_train_ckpt){.path = path, .stop_at = 17};
  gr_model *b = train(tr, te, pause, &rb);
  CHECK(rb.paused && rb.steps == 17);
  gr_st_file *f = NULL;
  CHECK_OK(gr_st_open(path, &f));
  const char *d0 = f ? gr_st_metadata_get(f, "rng.dropout.rank0") : NULL;
  const char *d1 = f ? gr_st_metadata_get(f, "rng.dropout.rank1") : NULL;
  CHECK(d0 && d1 && strcmp(d0, d1) != 0);
  gr_train_cfg resume = cfg;
  resume.ckpt = (gr_train_ckpt){.resume = f};
  gr_model *c = train(tr, te, resume, &rc);
  CHECK(rc.resumed_at == 17 && rc.steps == 50);
  CHECK_MSG(!memcmp(a->data, c->data, (size_t)a->numel * sizeof(float)), "rank %d: resumed weights differ",
            gr_dist_rank());
  CHECK(!memcmp(&ra.eval.loss, &rc.eval.loss, sizeof(double)) && !memcmp(&ra.train_loss, &rc.train_loss, sizeof(double)));
  gr_st_close(f);
  gr_dist_barrier();
  if (gr_dist_rank() == 0) unlink(path);
  gr_model_free(a), gr_model_free(b), gr_model_free(c);
  gr_dataset_free(tr), gr_dataset_free(te);
  int code = test_summary();
  gr_dist_finalize();
  return code;
}
