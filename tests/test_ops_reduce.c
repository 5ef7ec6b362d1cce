/* sum and mean over an axis (negative allowed) or all, keepdim: PyTorch
 * reference (forward + backward, scalar, 1-sized, 0-sized and parallel-sized
 * inputs), finite-difference gradients, output shapes, bad input. */
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "refdata.h"

typedef struct reduce_case {
  bool mean;
  int axis;
  bool keepdim;
} reduce_case;

static gr_tensor *f_reduce(gr_ctx *c, gr_tensor **in, void *ud) {
  const reduce_case *o = ud;
  return o->mean ? gr_mean(c, in[0], o->axis, o->keepdim) : gr_sum(c, in[0], o->axis, o->keepdim);
}

/* Must match SHAPES/AXES in tests/ref/ref_ops_reduce.py. */
static const struct { const char *name; int ndim; int64_t shape[3]; } SHAPES[] = {
    {"cube", 3, {3, 4, 5}}, {"one", 1, {1}}, {"scalar", 0, {0}},
    {"empty", 3, {2, 0, 3}}, {"big", 2, {300, 200}}, {"long", 1, {70000}}};
static const int AXES[] = {0, 1, -1, GR_AXIS_ALL};

static void test_reference(void) {
  static const char *x[] = {"x"};
  char name[96], axis_name[16];
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  for (int m = 0; m < 2; m++)
    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++)
      for (int a = 0; a < 4; a++) {
        int axis = AXES[a], nd = SHAPES[s].ndim;
        if (axis != GR_AXIS_ALL && (axis < -nd || axis >= nd)) continue;
        int64_t count = 1;
        for (int d = 0; d < nd; d++)
          if (axis == GR_AXIS_ALL || d == (axis + nd) % nd) count *= SHAPES[s].shape[d];
        for (int k = 0; k < 2; k++) {
          reduce_case rc = {m == 1, axis, k == 1};
          if (rc.mean && count == 0) { /* mean of nothing: an error, not NaN */
            gr_tensor *t = gr_tensor_new(c, nd, SHAPES[s].shape);
            CHECK_FAILS(gr_mean(c, t, axis, k) != NULL, GR_ESHAPE);
            continue;
          }
          if (axis == GR_AXIS_ALL) snprintf(axis_name, sizeof axis_name, "all");
          else snprintf(axis_name, sizeof axis_name, "%d", axis);
          snprintf(name, sizeof name, "%s_%s_a%s_k%d", m ? "mean" : "sum", SHAPES[s].name, axis_name, k);
          bool big = SHAPES[s].shape[0] >= 300;
          if (big) gr_set_threads(2); /* exercise the OpenMP path */
          CHECK_REF(name, f_reduce, &rc, 1, x);
          if (big) gr_set_threads(1);
        }
      }
  gr_ctx_free(c);
}

static void test_shapes_and_gradients(void) {
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x = gr_tensor_new(c, 3, GR_SHAPE(2, 3, 4));
  gr_tensor *y = gr_sum(c, x, -2, false), *yk = gr_mean(c, x, 1, true), *ya = gr_sum(c, x, GR_AXIS_ALL, false);
  gr_tensor *yak = gr_mean(c, x, GR_AXIS_ALL, true);
  CHECK(y && y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 4);
  CHECK(yk && yk->ndim == 3 && yk->shape[1] == 1 && yk->shape[2] == 4);
  CHECK(ya && ya->ndim == 0 && ya->numel == 1);
  CHECK(yak && yak->ndim == 3 && yak->numel == 1);
  CHECK_FAILS(gr_sum(c, x, 3, false) != NULL, GR_EARG);
  CHECK_FAILS(gr_mean(c, x, -4, false) != NULL, GR_EARG);
  CHECK_FAILS(gr_sum(c, NULL, 0, false) != NULL, GR_EARG);
  CHECK_FAILS(gr_mean(NULL, x, 0, false) != NULL, GR_EARG);
  gr_ctx_free(c);

  gr_rng r;
  gr_rng_seed(&r, 9);
  gc_input in = gc_rand(&r, 3, GR_SHAPE(2, 3, 4), -1, 1, true);
  for (int m = 0; m < 2; m++)
    for (int a = 0; a < 4; a++) {
      reduce_case rc = {m == 1, AXES[a], a % 2 == 0};
      CHECK_GRAD(m ? "mean" : "sum", f_reduce, &rc, 1, &in);
    }
  gc_input_free(&in);
}

/* A long sum gives the same bits on 1 and 2 threads (fixed blocking). */
static void test_thread_determinism(void) {
  enum { N = 100003 };
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_tensor *x = gr_tensor_new(c, 1, GR_SHAPE(N));
  gr_rng r;
  gr_rng_seed(&r, 4);
  gr_rng_fill_uniform(&r, x->data, N, -1, 1);
  float got[2];
  for (int t = 0; t < 2; t++) {
    gr_set_threads(t + 1);
    gr_tensor *y = gr_sum(c, x, GR_AXIS_ALL, false);
    got[t] = y ? y->data[0] : NAN;
  }
  gr_set_threads(1);
  CHECK(!memcmp(&got[0], &got[1], sizeof(float)));
  gr_ctx_free(c);
}

int main(void) {
  gr_set_threads(1);
  test_reference();
  test_shapes_and_gradients();
  test_thread_determinism();
  return test_summary();
}
