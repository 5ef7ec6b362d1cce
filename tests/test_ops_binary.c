/* add/sub/mul/div with broadcasting, scale, add_scalar: PyTorch reference
 * (forward + backward, incl. 1-sized and 0-sized dims and the parallel
 * path), finite-difference gradients, bad input. */
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "refdata.h"

typedef gr_tensor *(*binary_fn)(gr_ctx *, gr_tensor *, gr_tensor *);
typedef struct { binary_fn f; } binary_op;

static gr_tensor *f_binary(gr_ctx *c, gr_tensor **in, void *ud) { return ((binary_op *)ud)->f(c, in[0], in[1]); }
static gr_tensor *f_scale(gr_ctx *c, gr_tensor **in, void *ud) { return gr_scale(c, in[0], *(float *)ud); }
static gr_tensor *f_add_scalar(gr_ctx *c, gr_tensor **in, void *ud) { return gr_add_scalar(c, in[0], *(float *)ud); }
static gr_tensor *f_square(gr_ctx *c, gr_tensor **in, void *ud) { return gr_mul(c, in[0], in[0]); }
/* add/sub of intermediates (no grad yet when their backward runs: the fresh
 * same-shape path that copies dy), one of them used twice, one broadcast. */
static gr_tensor *f_fresh(gr_ctx *c, gr_tensor **in, void *ud) {
  gr_tensor *u = gr_scale(c, in[0], 2.0f), *v = gr_scale(c, in[1], 3.0f);
  gr_tensor *w = gr_add(c, gr_sub(c, u, v), gr_add(c, u, gr_scale(c, in[2], -1.0f)));
  return gr_mul(c, w, gr_sub(c, v, w));
}

/* Must match SHAPES in tests/ref/ref_ops_binary.py. */
static const char *const SHAPES[] = {"same", "row", "chan", "scalar0", "scalar1", "outer",
                                     "lead", "ones", "empty", "big", "bigchan"};
static const char *const OPS[] = {"add", "sub", "mul", "div"};
static const binary_fn FNS[] = {gr_add, gr_sub, gr_mul, gr_div};

static void test_reference(void) {
  static const char *ab[] = {"a", "b"}, *x[] = {"x"};
  char name[64];
  for (int o = 0; o < 4; o++) {
    binary_op op = {FNS[o]};
    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++) {
      bool big = !strncmp(SHAPES[s], "big", 3);
      if (big) gr_set_threads(2); /* exercise the OpenMP path */
      snprintf(name, sizeof name, "%s_%s", OPS[o], SHAPES[s]);
      CHECK_REF(name, f_binary, &op, 2, ab);
      if (big) gr_set_threads(1);
    }
  }
  float s1 = -1.75f, s2 = 0.625f, s3 = 3.0f;
  CHECK_REF("scale", f_scale, &s1, 1, x);
  CHECK_REF("add_scalar", f_add_scalar, &s2, 1, x);
  gr_set_threads(2);
  CHECK_REF("scale_big", f_scale, &s3, 1, x);
  gr_set_threads(1);
}

static void test_gradients(void) {
  gr_rng r;
  gr_rng_seed(&r, 11);
  /* a [2,3,4] against b [3,1]: b broadcast over dims 0 and 2; then swapped */
  for (int o = 0; o < 4; o++) {
    binary_op op = {FNS[o]};
    float blo = o == 3 ? 0.5f : -1.0f, bhi = o == 3 ? 1.5f : 1.0f;
    gc_input in[2] = {gc_rand(&r, 3, GR_SHAPE(2, 3, 4), -1, 1, true),
                      gc_rand(&r, 2, GR_SHAPE(3, 1), blo, bhi, true)};
    CHECK_GRAD(OPS[o], f_binary, &op, 2, in);
    gc_input sw[2] = {gc_rand(&r, 1, GR_SHAPE(4), -1, 1, true), gc_rand(&r, 2, GR_SHAPE(3, 4), blo, bhi, true)};
    CHECK_GRAD(OPS[o], f_binary, &op, 2, sw);
    for (int k = 0; k < 2; k++) {
      gc_input_free(&in[k]);
      gc_input_free(&sw[k]);
    }
  }
  gc_input sq[1] = {gc_rand(&r, 2, GR_SHAPE(3, 2), -1, 1, true)};
  CHECK_GRAD("mul x*x (input used twice)", f_square, NULL, 1, sq);
  float s = 2.5f;
  CHECK_GRAD("scale", f_scale, &s, 1, sq);
  CHECK_GRAD("add_scalar", f_add_scalar, &s, 1, sq);
  gc_input_free(&sq[0]);
  gc_input fr[3] = {gc_rand(&r, 2, GR_SHAPE(3, 4), -1, 1, true), gc_rand(&r, 2, GR_SHAPE(3, 4), -1, 1, true),
                    gc_rand(&r, 1, GR_SHAPE(4), -1, 1, true)};
  CHECK_GRAD("add/sub of intermediates (fresh grads)", f_fresh, NULL, 3, fr);
  for (int k = 0; k < 3; k++) gc_input_free(&fr[k]);
}

static void test_bad_input(void) {
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *a = gr_tensor_new(c, 2, GR_SHAPE(2, 3)), *b = gr_tensor_new(c, 1, GR_SHAPE(4));
  for (int o = 0; o < 4; o++) {
    CHECK_FAILS(FNS[o](c, a, b) != NULL, GR_ESHAPE);
    CHECK(strstr(gr_last_error(), OPS[o]) != NULL);
    CHECK_FAILS(FNS[o](c, NULL, b) != NULL, GR_EARG);
    CHECK_FAILS(FNS[o](c, a, NULL) != NULL, GR_EARG);
    CHECK_FAILS(FNS[o](NULL, a, a) != NULL, GR_EARG);
  }
  CHECK_FAILS(gr_scale(c, NULL, 1) != NULL, GR_EARG);
  CHECK_FAILS(gr_add_scalar(c, NULL, 1) != NULL, GR_EARG);
  /* 0 against 1 broadcasts to 0; 0 against 2 does not */
  gr_tensor *z = gr_tensor_new(c, 2, GR_SHAPE(0, 1)), *w = gr_tensor_new(c, 2, GR_SHAPE(2, 5));
  gr_tensor *zy = gr_add(c, z, gr_tensor_new(c, 1, GR_SHAPE(5)));
  CHECK(zy && zy->ndim == 2 && zy->shape[0] == 0 && zy->shape[1] == 5);
  CHECK_FAILS(gr_mul(c, z, w) != NULL, GR_ESHAPE);
  gr_ctx_free(c);
}

int main(void) {
  gr_set_threads(1);
  test_reference();
  test_gradients();
  test_bad_input();
  return test_summary();
}
