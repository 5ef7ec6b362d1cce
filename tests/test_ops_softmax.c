/* softmax and log_softmax over any axis: PyTorch reference (forward +
 * backward; huge logits and equal rows for stability; 1-sized, 0-sized and
 * parallel-sized inputs), finite-difference gradients, bad input. */
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "refdata.h"

typedef struct softmax_case {
  bool take_log;
  int axis;
} softmax_case;

static gr_tensor *f_softmax(gr_ctx *c, gr_tensor **in, void *ud) {
  const softmax_case *o = ud;
  return o->take_log ? gr_log_softmax(c, in[0], o->axis) : gr_softmax(c, in[0], o->axis);
}

/* Must match SHAPES/AXES in tests/ref/ref_ops_softmax.py. */
static const struct { const char *name; int ndim; } SHAPES[] = {
    {"cube", 3}, {"one", 1}, {"rows", 2}, {"empty", 3}, {"extreme", 2}, {"big", 2}};
static const int AXES[] = {0, 1, -1};

static void test_reference(void) {
  static const char *x[] = {"x"};
  char name[96];
  for (int m = 0; m < 2; m++)
    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++)
      for (int a = 0; a < 3; a++) {
        int axis = AXES[a], nd = SHAPES[s].ndim;
        if (axis < -nd || axis >= nd) continue;
        softmax_case sc = {m == 1, axis};
        snprintf(name, sizeof name, "%s_%s_a%d", m ? "log_softmax" : "softmax", SHAPES[s].name, axis);
        bool big = !strcmp(SHAPES[s].name, "big");
        if (big) gr_set_threads(2); /* exercise the OpenMP path */
        CHECK_REF(name, f_softmax, &sc, 1, x);
        if (big) gr_set_threads(1);
      }
}

static void test_gradients(void) {
  gr_rng r;
  gr_rng_seed(&r, 13);
  gc_input in = gc_rand(&r, 3, GR_SHAPE(2, 3, 4), -2, 2, true);
  for (int m = 0; m < 2; m++)
    for (int a = 0; a < 3; a++) {
      softmax_case sc = {m == 1, AXES[a]};
      CHECK_GRAD(m ? "log_softmax" : "softmax", f_softmax, &sc, 1, &in);
    }
  gc_input_free(&in);
}

static void test_bad_input(void) {
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x = gr_tensor_new(c, 2, GR_SHAPE(2, 3)), *s = gr_scalar(c, 1);
  CHECK_FAILS(gr_softmax(c, x, 2) != NULL, GR_EARG);
  CHECK_FAILS(gr_log_softmax(c, x, -3) != NULL, GR_EARG);
  CHECK_FAILS(gr_softmax(c, s, 0) != NULL, GR_EARG);
  CHECK_FAILS(gr_softmax(c, NULL, 0) != NULL, GR_EARG);
  CHECK_FAILS(gr_log_softmax(NULL, x, 0) != NULL, GR_EARG);
  gr_ctx_free(c);
}

int main(void) {
  gr_set_threads(1);
  test_reference();
  test_gradients();
  test_bad_input();
  return test_summary();
}
