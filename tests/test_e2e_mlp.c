/* End to end: an 8-16-16-3 ReLU MLP trained by plain SGD (the update loop is
 * written here: w -= lr * grad, zero grads) must reproduce PyTorch's 20
 * per-step losses and final parameters (tests/ref/ref_e2e_mlp.py, same init
 * and data) within 1e-4; and, after one warm-up step, a training step
 * (forward, backward, update, gr_ctx_reset) must not allocate at all. */
#include <math.h>
#include <string.h>

#include "refdata.h"

enum { N = 64, BATCH = 16, STEPS = 20, N_PARAMS = 6 };
#define LR 0.1f

static const char *const PARAM_NAMES[N_PARAMS] = {"0_weight", "0_bias", "2_weight", "2_bias", "4_weight", "4_bias"};

typedef struct mlp {
  gr_tensor *p[N_PARAMS]; /* w1 b1 w2 b2 w3 b3 in the persistent arena */
} mlp;

static bool mlp_load(gr_arena *a, const ref_file *f, mlp *m) {
  char name[64];
  for (int k = 0; k < N_PARAMS; k++) {
    snprintf(name, sizeof name, "init_%s", PARAM_NAMES[k]);
    const ref_array *r = ref_get(f, name);
    if (!r || !(m->p[k] = gr_tensor_new_in(a, r->ndim, r->shape, true))) return false;
    memcpy(m->p[k]->data, r->data, (size_t)r->numel * sizeof(float));
    m->p[k]->name = PARAM_NAMES[k];
  }
  return true;
}

/* One SGD step on rows [lo, lo+BATCH); returns the loss (NAN on error). */
static float train_step(gr_ctx *c, mlp *m, const float *x, const int32_t *y, int lo, int64_t dim) {
  gr_tensor *xb = gr_tensor_from(c, 2, GR_SHAPE(BATCH, dim), x + lo * dim);
  gr_tensor *h = gr_relu(c, gr_linear(c, xb, m->p[0], m->p[1]));
  h = gr_relu(c, gr_linear(c, h, m->p[2], m->p[3]));
  gr_tensor *loss = gr_cross_entropy(c, gr_linear(c, h, m->p[4], m->p[5]), y + lo, 0.0f, -100);
  float value = loss ? loss->data[0] : NAN;
  if (!loss || gr_backward(c, loss) != GR_OK) value = NAN;
  for (int k = 0; k < N_PARAMS; k++) {
    gr_tensor *p = m->p[k];
    for (int64_t i = 0; i < p->numel; i++) p->data[i] -= LR * p->grad[i];
    gr_tensor_zero_grad(p);
  }
  gr_ctx_reset(c);
  return value;
}

int main(void) {
  gr_set_threads(1);
  ref_file *f = ref_open("e2e_mlp");
  CHECK_PTR(f);
  if (!f) return test_summary();
  const ref_array *x = ref_get(f, "x"), *y = ref_get(f, "y"), *want = ref_get(f, "losses");
  CHECK(x && y && want && x->shape[0] == N && want->numel == STEPS);
  gr_arena *arena = gr_arena_new(1 << 14);
  gr_ctx *c = gr_ctx_new(4096, 1); /* small on purpose: the warm-up step must grow it */
  mlp m;
  bool loaded = x && y && want && mlp_load(arena, f, &m);
  CHECK(loaded);
  if (loaded) {
    int32_t labels[N];
    for (int i = 0; i < N; i++) labels[i] = (int32_t)y->data[i];
    float losses[STEPS];
    uint64_t before = gr_alloc_count(), after_warmup = 0, after_ten = 0;
    for (int s = 0; s < STEPS; s++) {
      losses[s] = train_step(c, &m, x->data, labels, (s * BATCH) % N, x->shape[1]);
      if (s == 0) after_warmup = gr_alloc_count();
      if (s == 10) after_ten = gr_alloc_count();
    }
    CHECK(after_warmup > before); /* the counter is live: warm-up grew the 4 KiB arena */
    CHECK_MSG(after_ten == after_warmup, "steady-state steps allocated %llu times",
              (unsigned long long)(after_ten - after_warmup));
    CHECK_CLOSE("per-step losses", losses, want->data, STEPS, 1e-4, 0);
    CHECK(losses[STEPS - 1] < losses[0]);
    char name[64];
    for (int k = 0; k < N_PARAMS; k++) {
      snprintf(name, sizeof name, "final_%s", PARAM_NAMES[k]);
      const ref_array *fin = ref_get(f, name);
      CHECK(fin && fin->numel == m.p[k]->numel);
      if (fin) CHECK_CLOSE(name, m.p[k]->data, fin->data, fin->numel, 1e-4, 0);
    }
    double worst = 0;
    for (int s = 0; s < STEPS; s++) worst = fmax(worst, fabs(losses[s] - want->data[s]));
    printf("loss step 1 %.6f (torch %.6f), step 20 %.6f (torch %.6f), max |diff| %.3g; "
           "allocations in 10 steady steps: %llu\n", losses[0], want->data[0], losses[STEPS - 1],
           want->data[STEPS - 1], worst, (unsigned long long)(after_ten - after_warmup));
  }
  gr_ctx_free(c);
  gr_arena_free(arena);
  ref_close(f);
  return test_summary();
}
