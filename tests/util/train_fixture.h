/* tests/util/train_fixture.h — small training fixtures shared by the
 * training tests (single process and MPI): Gaussian blobs and an MLP with
 * dropout (so a run draws from the dropout generator). */
#ifndef GRAFT_TRAIN_FIXTURE_H
#define GRAFT_TRAIN_FIXTURE_H
#include "graft/graft.h"

/* k Gaussian blobs in d dims (as 1x1xd images), centers 3 apart on the axes. */
static inline gr_dataset *fixture_blobs(int64_t n, int d, int k, uint64_t seed) {
  gr_dataset *ds = gr_dataset_new(n, 1, 1, d, k);
  gr_rng r;
  gr_rng_seed(&r, seed);
  for (int64_t i = 0; ds && i < n; i++) {
    int y = (int)(i % k);
    ds->y[i] = y;
    for (int j = 0; j < d; j++) ds->x[i * d + j] = gr_rng_normal(&r) + (j == y ? 3.0f : 0.0f);
  }
  return ds;
}

/* Sequential {0 Flatten, 1 Linear(d,hidden), 2 ReLU, 3 Dropout(p),
 * 4 Linear(hidden,k)} for 1x1xd inputs. */
static inline gr_model *fixture_dropout_mlp(int d, int hidden, int k, float p, uint64_t seed) {
  gr_model *m = gr_model_new(seed);
  gr_module *seq = m ? gr_nn_sequential(m) : NULL;
  if (!seq) return m;
  gr_module_add(seq, NULL, gr_nn_flatten(m));
  gr_module_add(seq, NULL, gr_nn_linear(m, d, hidden, true));
  gr_module_add(seq, NULL, gr_nn_relu(m));
  gr_module_add(seq, NULL, gr_nn_dropout(m, p));
  gr_module_add(seq, NULL, gr_nn_linear(m, hidden, k, true));
  gr_model_set_root(m, seq);
  return m;
}

#endif
