/* matmul and linear: PyTorch reference (forward + backward, incl. one-row
 * products), finite-difference
 * gradients, shape errors. */
#include <math.h>

#include "gradcheck.h"
#include "refdata.h"

typedef struct { bool ta, tb; } mm_opt;

static gr_tensor *f_matmul(gr_ctx *c, gr_tensor **in, void *ud) {
  mm_opt *o = ud;
  return gr_matmul(c, in[0], in[1], o->ta, o->tb);
}
static gr_tensor *f_linear(gr_ctx *c, gr_tensor **in, void *ud) { return gr_linear(c, in[0], in[1], in[2]); }
static gr_tensor *f_linear_nb(gr_ctx *c, gr_tensor **in, void *ud) { return gr_linear(c, in[0], in[1], NULL); }
static gr_tensor *f_square_use(gr_ctx *c, gr_tensor **in, void *ud) { /* a used twice */
  return gr_matmul(c, in[0], in[0], false, true);
}

int main(void) {
  static const char *ab[] = {"a", "b"}, *xwb[] = {"x", "w", "b"};
  char name[64];
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      mm_opt o = {ta, tb};
      const char *kinds[] = {"2d", "batched", "shared", "row"};
      for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "matmul_%s_t%d%d", kinds[k], ta, tb);
        CHECK_REF(name, f_matmul, &o, 2, ab);
      }
      gr_rng r;
      gr_rng_seed(&r, 7);
      gc_input in[2] = {gc_rand(&r, 3, ta ? GR_SHAPE(2, 4, 3) : GR_SHAPE(2, 3, 4), -1, 1, true),
                        gc_rand(&r, 2, tb ? GR_SHAPE(5, 4) : GR_SHAPE(4, 5), -1, 1, true)};
      snprintf(name, sizeof name, "matmul_shared_t%d%d", ta, tb);
      CHECK_GRAD(name, f_matmul, &o, 2, in);
      gc_input_free(&in[0]);
      gc_input_free(&in[1]);
    }
  mm_opt o0 = {0, 0};
  CHECK_REF("matmul_edge1", f_matmul, &o0, 2, ab);
  CHECK_REF("linear_bias", f_linear, NULL, 3, xwb);
  CHECK_REF("linear_nobias", f_linear_nb, NULL, 2, xwb);
  CHECK_REF("linear_row", f_linear, NULL, 3, xwb);

  gr_rng r;
  gr_rng_seed(&r, 3);
  gc_input lin[3] = {gc_rand(&r, 3, GR_SHAPE(2, 2, 5), -1, 1, true), gc_rand(&r, 2, GR_SHAPE(3, 5), -1, 1, true),
                     gc_rand(&r, 1, GR_SHAPE(3), -1, 1, true)};
  CHECK_GRAD("linear", f_linear, NULL, 3, lin);
  gc_input sq[1] = {gc_rand(&r, 2, GR_SHAPE(3, 4), -1, 1, true)};
  CHECK_GRAD("matmul a@a^T (input used twice)", f_square_use, NULL, 1, sq);
  for (int k = 0; k < 3; k++) gc_input_free(&lin[k]);
  gc_input_free(&sq[0]);

  /* bad input: error status and message, never a crash */
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *a = gr_tensor_new(c, 2, GR_SHAPE(2, 3)), *b = gr_tensor_new(c, 2, GR_SHAPE(4, 5));
  gr_tensor *v = gr_tensor_new(c, 1, GR_SHAPE(3));
  CHECK_FAILS(gr_matmul(c, a, b, false, false), GR_ESHAPE);
  CHECK_FAILS(gr_matmul(c, a, v, false, false), GR_ESHAPE);
  CHECK_FAILS(gr_matmul(c, NULL, b, false, false), GR_EARG);
  CHECK_FAILS(gr_linear(c, a, b, NULL), GR_ESHAPE);
  CHECK_FAILS(gr_linear(c, a, NULL, NULL), GR_EARG);
  gr_tensor *z = gr_tensor_new(c, 2, GR_SHAPE(0, 3)), *w = gr_tensor_new(c, 2, GR_SHAPE(3, 2));
  gr_tensor *zy = gr_matmul(c, z, w, false, false);
  CHECK(zy && zy->shape[0] == 0 && zy->shape[1] == 2);
  gr_ctx_free(c);
  return test_summary();
}
