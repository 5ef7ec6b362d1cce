/* tests/util/gradcheck.h — finite-difference gradient check.
 * The function under test maps inputs to any output y. With a fixed random
 * seed gradient R, the scalar L = sum(y * R) (accumulated in double) is
 * differentiated by central differences, (L(x+eps) - L(x-eps)) / 2eps, for
 * every element of every input marked `grad`, and compared with graft's
 * backward: |analytic - numeric| <= atol + rtol |numeric|. Each evaluation
 * runs in a fresh context with the same seed (so dropout masks repeat). */
#ifndef GRAFT_GRADCHECK_H
#define GRAFT_GRADCHECK_H
#include "testutil.h"

typedef gr_tensor *(*gc_fn)(gr_ctx *c, gr_tensor **in, void *ud);

typedef struct gc_input {
  int ndim;
  int64_t shape[GR_MAX_DIMS];
  float *data; /* owned (gc_input_free) */
  bool grad;   /* check the gradient w.r.t. this input */
} gc_input;

/* Random-uniform [lo,hi) input of the given shape. */
gc_input gc_rand(gr_rng *r, int ndim, const int64_t *shape, float lo, float hi, bool grad);
void gc_input_free(gc_input *in);

/* Default tolerances for f32 central differences: eps 1e-2, atol 2e-3, rtol 2e-2. */
bool gradcheck(const char *name, gc_fn f, void *ud, int n, gc_input *in);
bool gradcheck_tol(const char *name, gc_fn f, void *ud, int n, gc_input *in, double eps, double atol,
                   double rtol);
#define CHECK_GRAD(name, f, ud, n, in)                                             \
  do {                                                                             \
    test_checks++;                                                                 \
    if (!gradcheck(name, f, ud, n, in)) test_fail(__FILE__, __LINE__, "gradcheck %s", name); \
  } while (0)

#endif
