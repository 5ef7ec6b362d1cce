/* permute, transpose, concat, slice, embedding, causal softmax: PyTorch
 * reference (forward + backward), finite-difference gradients, bad input. */
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "refdata.h"

static gr_tensor *f_permute(gr_ctx *c, gr_tensor **in, void *ud) { return gr_permute(c, in[0], ud); }
static gr_tensor *f_transpose_neg(gr_ctx *c, gr_tensor **in, void *ud) { return gr_transpose(c, in[0], -1, -3); }
static gr_tensor *f_cat1(gr_ctx *c, gr_tensor **in, void *ud) { return gr_concat(c, 3, in, 1); }
static gr_tensor *f_cat_last(gr_ctx *c, gr_tensor **in, void *ud) { return gr_concat(c, 2, in, -1); }
static gr_tensor *f_slice_mid(gr_ctx *c, gr_tensor **in, void *ud) { return gr_slice(c, in[0], 1, 1, 4); }
static gr_tensor *f_slice_neg(gr_ctx *c, gr_tensor **in, void *ud) { return gr_slice(c, in[0], -1, -3, 100); }
static gr_tensor *f_causal(gr_ctx *c, gr_tensor **in, void *ud) { return gr_causal_softmax(c, in[0]); }
static gr_tensor *f_embed(gr_ctx *c, gr_tensor **in, void *ud) {
  const int32_t *ids = ud;
  return gr_embedding(c, in[0], ids, 6);
}
/* a tensor used twice through two shape ops: grads must add */
static gr_tensor *f_twice(gr_ctx *c, gr_tensor **in, void *ud) {
  gr_tensor *t = gr_transpose(c, in[0], 0, 1);
  gr_tensor *parts[2] = {gr_slice(c, in[0], 0, 0, 2), gr_slice(c, t, 0, 1, 3)};
  return gr_concat(c, 2, parts, 0);
}

static void refs(void) {
  static const char *x[] = {"x"}, *abc[] = {"a", "b", "c"}, *w[] = {"w"};
  int p4[] = {2, 0, 3, 1}, p3[] = {1, 2, 0};
  CHECK_REF("permute_4d", f_permute, p4, 1, x);
  CHECK_REF("permute_3d", f_permute, p3, 1, x);
  CHECK_REF("transpose_neg", f_transpose_neg, NULL, 1, x);
  CHECK_REF("concat_axis1", f_cat1, NULL, 3, abc);
  CHECK_REF("concat_last", f_cat_last, NULL, 2, abc);
  CHECK_REF("slice_mid", f_slice_mid, NULL, 1, x);
  CHECK_REF("slice_neg", f_slice_neg, NULL, 1, x);
  CHECK_REF("causal_square", f_causal, NULL, 1, x);
  CHECK_REF("causal_cache", f_causal, NULL, 1, x);
  CHECK_REF("causal_one", f_causal, NULL, 1, x);
  ref_file *f = ref_open("embedding");
  const ref_array *ids = f ? ref_get(f, "ids") : NULL;
  CHECK(ids && ids->numel == 6);
  if (ids) {
    int32_t id32[6];
    for (int i = 0; i < 6; i++) id32[i] = (int32_t)ids->data[i];
    CHECK_REF("embedding", f_embed, id32, 1, w);
  }
  ref_close(f);
}

static void gradchecks(void) {
  gr_rng r;
  gr_rng_seed(&r, 9);
  int p4[] = {3, 1, 0, 2};
  gc_input x4 = gc_rand(&r, 4, GR_SHAPE(2, 3, 2, 3), -1, 1, true);
  CHECK_GRAD("permute", f_permute, p4, 1, &x4);
  CHECK_GRAD("transpose", f_transpose_neg, NULL, 1, &x4);
  gc_input cat[3] = {gc_rand(&r, 3, GR_SHAPE(2, 3, 4), -1, 1, true), gc_rand(&r, 3, GR_SHAPE(2, 1, 4), -1, 1, true),
                     gc_rand(&r, 3, GR_SHAPE(2, 2, 4), -1, 1, true)};
  CHECK_GRAD("concat", f_cat1, NULL, 3, cat);
  CHECK_GRAD("slice", f_slice_mid, NULL, 1, &cat[0]);
  gc_input sq = gc_rand(&r, 2, GR_SHAPE(3, 3), -1, 1, true);
  CHECK_GRAD("used twice through transpose/slice/concat", f_twice, NULL, 1, &sq);
  gc_input sc = gc_rand(&r, 3, GR_SHAPE(2, 3, 4), -2, 2, true);
  CHECK_GRAD("causal_softmax", f_causal, NULL, 1, &sc);
  int32_t ids[6] = {1, 1, 0, 2, 1, 0};
  gc_input emb = gc_rand(&r, 2, GR_SHAPE(3, 2), -1, 1, true);
  CHECK_GRAD("embedding", f_embed, ids, 1, &emb);
  gc_input_free(&x4);
  for (int k = 0; k < 3; k++) gc_input_free(&cat[k]);
  gc_input_free(&sq);
  gc_input_free(&sc);
  gc_input_free(&emb);
}

static void bad_input(void) {
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x = gr_tensor_new(c, 3, GR_SHAPE(2, 3, 4)), *y = gr_tensor_new(c, 3, GR_SHAPE(2, 3, 5));
  int dup[] = {0, 0, 1}, oob[] = {0, 1, 3};
  CHECK_FAILS(gr_permute(c, x, dup), GR_EARG);
  CHECK_FAILS(gr_permute(c, x, oob), GR_EARG);
  CHECK_FAILS(gr_transpose(c, x, 0, 3), GR_EARG);
  gr_tensor *xy[] = {x, y}, *xn[] = {x, NULL};
  CHECK_FAILS(gr_concat(c, 2, xy, 1), GR_ESHAPE);
  CHECK_FAILS(gr_concat(c, 2, xn, 0), GR_EARG);
  CHECK_FAILS(gr_concat(c, 0, xy, 0), GR_EARG);
  CHECK_FAILS(gr_slice(c, x, 5, 0, 1), GR_EARG);
  gr_tensor *s = gr_slice(c, x, 2, 3, 1); /* end < start: empty, not an error */
  CHECK(s && s->shape[2] == 0);
  gr_tensor *w = gr_tensor_new(c, 2, GR_SHAPE(4, 2));
  int32_t bad_ids[] = {0, 4}, neg_ids[] = {-1};
  CHECK_FAILS(gr_embedding(c, w, bad_ids, 2), GR_EARG);
  CHECK(strstr(gr_last_error(), "ids[1]") != NULL);
  CHECK_FAILS(gr_embedding(c, w, neg_ids, 1), GR_EARG);
  CHECK_FAILS(gr_embedding(c, x, bad_ids, 1), GR_ESHAPE);
  CHECK_FAILS(gr_causal_softmax(c, gr_tensor_new(c, 2, GR_SHAPE(5, 3))), GR_ESHAPE); /* T > S */
  CHECK_FAILS(gr_causal_softmax(c, NULL), GR_EARG);
  gr_ctx_free(c);
}

int main(void) {
  refs();
  gradchecks();
  bad_input();
  return test_summary();
}
