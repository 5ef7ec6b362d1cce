/* batch_norm (training with running-stat updates, eval, no affine) and
 * layer_norm: PyTorch reference, finite-difference gradients, bad input. */
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "refdata.h"

typedef struct bn_state {
  gr_tensor *rm, *rv; /* running stats, NULL for none */
  bool training;
} bn_state;

static gr_tensor *f_bn(gr_ctx *c, gr_tensor **in, void *ud) {
  bn_state *s = ud;
  gr_ctx_set_training(c, s->training);
  return gr_batch_norm(c, in[0], in[1], in[2], s->rm, s->rv, 0.1f, 1e-5f);
}
static gr_tensor *f_bn_plain(gr_ctx *c, gr_tensor **in, void *ud) {
  gr_ctx_set_training(c, true);
  return gr_batch_norm(c, in[0], NULL, NULL, NULL, NULL, 0.1f, 1e-5f);
}
static gr_tensor *f_ln(gr_ctx *c, gr_tensor **in, void *ud) { return gr_layer_norm(c, in[0], in[1], in[2], 1e-5f); }
static gr_tensor *f_ln_plain(gr_ctx *c, gr_tensor **in, void *ud) { return gr_layer_norm(c, in[0], NULL, NULL, 1e-5f); }

/* Two warm-up training calls, then the compared third call; running stats
 * after it must equal torch's. */
static void bn_train_case(const char *name) {
  static const char *xgb[] = {"x", "gamma", "beta"};
  char pre[64];
  snprintf(pre, sizeof pre, "%s_pre", name);
  ref_file *p = ref_open(pre), *f = ref_open(name);
  if (!p || !f) {
    CHECK_MSG(false, "reference files for %s", name);
    ref_close(p);
    ref_close(f);
    return;
  }
  const ref_array *x0 = ref_get(p, "x0"), *rma = ref_get(f, "rm_after"), *rva = ref_get(f, "rv_after");
  int64_t C = x0->shape[1];
  gr_arena *a = gr_arena_new(1 << 12);
  bn_state s = {gr_tensor_new_in(a, 1, GR_SHAPE(C), false), gr_tensor_new_in(a, 1, GR_SHAPE(C), false), true};
  gr_tensor_fill(s.rv, 1.0f);
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  for (int k = 0; k < 2; k++) {
    const ref_array *xk = ref_get(p, k ? "x1" : "x0");
    gr_tensor *x = gr_tensor_from(c, xk->ndim, xk->shape, xk->data);
    CHECK_PTR(gr_batch_norm(c, x, NULL, NULL, s.rm, s.rv, 0.1f, 1e-5f));
  }
  gr_ctx_free(c);
  CHECK_CLOSE("running_mean before", s.rm->data, ref_get(f, "rm_before")->data, C, 1e-5, 1e-5);
  /* ref_check runs the compared call once more: the stats after it are checked */
  CHECK_REF(name, f_bn, &s, 3, xgb);
  CHECK_CLOSE("running_mean after", s.rm->data, rma->data, C, 1e-5, 1e-5);
  CHECK_CLOSE("running_var after", s.rv->data, rva->data, C, 1e-5, 1e-5);
  gr_arena_free(a);
  ref_close(p);
  ref_close(f);
}

static void bn_eval_case(void) {
  static const char *xgb[] = {"x", "gamma", "beta"};
  ref_file *f = ref_open("bn_eval");
  if (!f) {
    CHECK_MSG(false, "bn_eval reference");
    return;
  }
  gr_arena *a = gr_arena_new(1 << 12);
  bn_state s = {gr_tensor_new_in(a, 1, GR_SHAPE(3), false), gr_tensor_new_in(a, 1, GR_SHAPE(3), false), false};
  memcpy(s.rm->data, ref_get(f, "rm")->data, 3 * sizeof(float));
  memcpy(s.rv->data, ref_get(f, "rv")->data, 3 * sizeof(float));
  CHECK_REF("bn_eval", f_bn, &s, 3, xgb);
  CHECK_CLOSE("eval leaves running_mean", s.rm->data, ref_get(f, "rm")->data, 3, 0, 0);
  gr_arena_free(a);
  ref_close(f);
}

static void gradchecks(void) {
  gr_rng r;
  gr_rng_seed(&r, 5);
  gc_input bn[3] = {gc_rand(&r, 4, GR_SHAPE(3, 2, 2, 3), -2, 2, true), gc_rand(&r, 1, GR_SHAPE(2), 0.5f, 1.5f, true),
                    gc_rand(&r, 1, GR_SHAPE(2), -1, 1, true)};
  bn_state train = {NULL, NULL, true};
  CHECK_GRAD("batch_norm train", f_bn, &train, 3, bn);
  gr_arena *a = gr_arena_new(1 << 12);
  bn_state ev = {gr_tensor_new_in(a, 1, GR_SHAPE(2), false), gr_tensor_new_in(a, 1, GR_SHAPE(2), false), false};
  ev.rm->data[0] = 0.3f, ev.rv->data[0] = 1.7f, ev.rv->data[1] = 0.4f;
  CHECK_GRAD("batch_norm eval", f_bn, &ev, 3, bn);
  CHECK_GRAD("batch_norm no affine", f_bn_plain, NULL, 1, bn);
  gc_input ln[3] = {gc_rand(&r, 3, GR_SHAPE(2, 3, 5), -2, 2, true), gc_rand(&r, 1, GR_SHAPE(5), 0.5f, 1.5f, true),
                    gc_rand(&r, 1, GR_SHAPE(5), -1, 1, true)};
  CHECK_GRAD("layer_norm", f_ln, NULL, 3, ln);
  CHECK_GRAD("layer_norm no affine", f_ln_plain, NULL, 1, ln);
  for (int k = 0; k < 3; k++) {
    gc_input_free(&bn[k]);
    gc_input_free(&ln[k]);
  }
  gr_arena_free(a);
}

static void bad_input(void) {
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x = gr_tensor_new(c, 4, GR_SHAPE(2, 3, 2, 2)), *g4 = gr_tensor_new(c, 1, GR_SHAPE(4));
  gr_tensor *v = gr_tensor_new(c, 1, GR_SHAPE(3)), *one = gr_tensor_new(c, 2, GR_SHAPE(1, 3));
  CHECK_FAILS(gr_batch_norm(c, x, g4, NULL, NULL, NULL, 0.1f, 1e-5f), GR_ESHAPE);
  CHECK_FAILS(gr_batch_norm(c, v, NULL, NULL, NULL, NULL, 0.1f, 1e-5f), GR_ESHAPE);
  CHECK_FAILS(gr_batch_norm(c, one, NULL, NULL, NULL, NULL, 0.1f, 1e-5f), GR_ESHAPE); /* 1 value per channel */
  CHECK_FAILS(gr_batch_norm(c, x, NULL, NULL, NULL, NULL, 0.1f, 0.0f), GR_EARG);
  CHECK_FAILS(gr_batch_norm(c, x, NULL, NULL, NULL, NULL, 1.5f, 1e-5f), GR_EARG);
  gr_ctx_set_training(c, false);
  CHECK_FAILS(gr_batch_norm(c, x, NULL, NULL, NULL, NULL, 0.1f, 1e-5f), GR_EARG); /* eval without stats */
  CHECK_FAILS(gr_batch_norm(c, NULL, NULL, NULL, NULL, NULL, 0.1f, 1e-5f), GR_EARG);
  CHECK_FAILS(gr_layer_norm(c, x, v, NULL, 1e-5f), GR_ESHAPE);
  CHECK_FAILS(gr_layer_norm(c, gr_tensor_new(c, 2, GR_SHAPE(3, 0)), NULL, NULL, 1e-5f), GR_ESHAPE);
  CHECK_FAILS(gr_layer_norm(c, NULL, NULL, NULL, 1e-5f), GR_EARG);
  gr_ctx_free(c);
}

int main(void) {
  bn_train_case("bn_train_4d");
  bn_train_case("bn_train_2d");
  bn_train_case("bn_train_edge");
  bn_eval_case();
  static const char *x[] = {"x"}, *xgb[] = {"x", "gamma", "beta"};
  CHECK_REF("bn_noaffine", f_bn_plain, NULL, 1, x);
  CHECK_REF("ln_3d", f_ln, NULL, 3, xgb);
  CHECK_REF("ln_2d", f_ln, NULL, 3, xgb);
  CHECK_REF("ln_edge", f_ln, NULL, 3, xgb);
  CHECK_REF("ln_noaffine", f_ln_plain, NULL, 1, x);
  gradchecks();
  bad_input();
  return test_summary();
}
