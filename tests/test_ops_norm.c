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
static gr_tensor *f_bnr(gr_ctx *c, gr_tensor **in, void *ud) {
  bn_state *s = ud;
  gr_ctx_set_training(c, s->training);
  return gr_batch_norm_relu(c, in[0], in[1], in[2], s->rm, s->rv, 0.1f, 1e-5f, in[3]);
}
static gr_tensor *f_bnr_nores(gr_ctx *c, gr_tensor **in, void *ud) {
  gr_ctx_set_training(c, true);
  return gr_batch_norm_relu(c, in[0], in[1], in[2], NULL, NULL, 0.1f, 1e-5f, NULL);
}
/* The composed ops that gr_batch_norm_relu fuses. */
static gr_tensor *f_bnr_composed(gr_ctx *c, gr_tensor **in, void *ud) {
  bn_state *s = ud;
  gr_ctx_set_training(c, s->training);
  gr_tensor *y = gr_batch_norm(c, in[0], in[1], in[2], s->rm, s->rv, 0.1f, 1e-5f);
  return gr_relu(c, in[3] ? gr_add(c, y, in[3]) : y);
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

/* Eval-mode state with the 3 channels' running stats "rm" / "rv" of a
 * reference file, in arena a. */
static bn_state eval_state_from_ref(gr_arena *a, ref_file *f) {
  bn_state s = {gr_tensor_new_in(a, 1, GR_SHAPE(3), false), gr_tensor_new_in(a, 1, GR_SHAPE(3), false), false};
  memcpy(s.rm->data, ref_get(f, "rm")->data, 3 * sizeof(float));
  memcpy(s.rv->data, ref_get(f, "rv")->data, 3 * sizeof(float));
  return s;
}

static void bn_eval_case(void) {
  static const char *xgb[] = {"x", "gamma", "beta"};
  ref_file *f = ref_open("bn_eval");
  if (!f) {
    CHECK_MSG(false, "bn_eval reference");
    return;
  }
  gr_arena *a = gr_arena_new(1 << 12);
  bn_state s = eval_state_from_ref(a, f);
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
  CHECK_FAILS(gr_batch_norm_relu(c, x, NULL, NULL, NULL, NULL, 0.1f, 1e-5f, v), GR_ESHAPE); /* residual shape */
  CHECK_FAILS(gr_batch_norm_relu(c, NULL, NULL, NULL, NULL, NULL, 0.1f, 1e-5f, NULL), GR_EARG);
  CHECK_FAILS(gr_layer_norm(c, x, v, NULL, 1e-5f), GR_ESHAPE);
  CHECK_FAILS(gr_layer_norm(c, gr_tensor_new(c, 2, GR_SHAPE(3, 0)), NULL, NULL, 1e-5f), GR_ESHAPE);
  CHECK_FAILS(gr_layer_norm(c, NULL, NULL, NULL, 1e-5f), GR_EARG);
  gr_ctx_free(c);
}

/* batch_norm_relu against PyTorch (training with and without a residual, eval). */
static void bnr_refs(void) {
  static const char *xgbr[] = {"x", "gamma", "beta", "residual"}, *xgb[] = {"x", "gamma", "beta"};
  bn_state train = {NULL, NULL, true};
  CHECK_REF("bnr_train_res", f_bnr, &train, 4, xgbr);
  CHECK_REF("bnr_train", f_bnr_nores, NULL, 3, xgb);
  CHECK_REF("bnr_train_res_chunk", f_bnr, &train, 4, xgbr);
  ref_file *f = ref_open("bnr_eval_res");
  if (!f) {
    CHECK_MSG(false, "bnr_eval_res reference");
    return;
  }
  gr_arena *a = gr_arena_new(1 << 12);
  bn_state ev = eval_state_from_ref(a, f);
  CHECK_REF("bnr_eval_res", f_bnr, &ev, 4, xgbr);
  gr_arena_free(a);
  ref_close(f);
}

/* Outputs, gradients of every input and running stats of gr_batch_norm_relu
 * and of batch_norm -> add -> relu on the same data (ResNet-sized planes). */
static void bnr_vs_composed(bool training, bool residual) {
  enum { N = 4, C = 3, H = 8, W = 9, n = N * C * H * W };
  static float x[n], res[n], seed[n], gam[C], bet[C];
  gr_rng r;
  gr_rng_seed(&r, 9);
  for (int i = 0; i < n; i++) x[i] = gr_rng_uniform(&r) * 4 - 1, res[i] = gr_rng_uniform(&r) - 0.5f, seed[i] = gr_rng_uniform(&r);
  for (int k = 0; k < C; k++) gam[k] = 0.5f + gr_rng_uniform(&r), bet[k] = gr_rng_uniform(&r) - 0.5f;
  float got[2][3 * n + 2 * C + 2 * C]; /* y, dx, dres, dgamma, dbeta, running mean and var */
  for (int v = 0; v < 2; v++) {
    gr_ctx *c = gr_ctx_new(1 << 22, 1);
    gr_arena *a = gr_arena_new(1 << 12);
    bn_state s = {gr_tensor_new_in(a, 1, GR_SHAPE(C), false), gr_tensor_new_in(a, 1, GR_SHAPE(C), false), training};
    for (int k = 0; k < C; k++) s.rm->data[k] = 0.2f * (float)k, s.rv->data[k] = 1.0f + 0.3f * (float)k;
    gr_tensor *in[4] = {gr_leaf(c, 4, GR_SHAPE(N, C, H, W), x), gr_leaf(c, 1, GR_SHAPE(C), gam),
                        gr_leaf(c, 1, GR_SHAPE(C), bet), residual ? gr_leaf(c, 4, GR_SHAPE(N, C, H, W), res) : NULL};
    gr_tensor *y = (v ? f_bnr_composed : f_bnr)(c, in, &s);
    CHECK(y && gr_backward_seed(c, y, seed) == GR_OK);
    if (y) {
      memcpy(got[v], y->data, sizeof x);
      memcpy(got[v] + n, in[0]->grad, sizeof x);
      if (residual) memcpy(got[v] + 2 * n, in[3]->grad, sizeof x);
      else memset(got[v] + 2 * n, 0, sizeof x);
      memcpy(got[v] + 3 * n, in[1]->grad, sizeof gam);
      memcpy(got[v] + 3 * n + C, in[2]->grad, sizeof bet);
      memcpy(got[v] + 3 * n + 2 * C, s.rm->data, sizeof gam);
      memcpy(got[v] + 3 * n + 3 * C, s.rv->data, sizeof gam);
    }
    gr_arena_free(a);
    gr_ctx_free(c);
  }
  CHECK_CLOSE(training ? (residual ? "bnr = composed, train, residual" : "bnr = composed, train")
                       : "bnr = composed, eval, residual",
              got[0], got[1], 3 * n + 4 * C, 1e-5, 1e-5);
}

/* Finite differences with the pre-activations kept 0.1 or more from the ReLU
 * kink: the residual is moved by 0.25 where batch_norm(x) + residual is
 * closer to 0 (eps 1e-2 moves a pre-activation by much less than 0.1). */
static void bnr_gradcheck(void) {
  gr_rng r;
  gr_rng_seed(&r, 7);
  gc_input in[4] = {gc_rand(&r, 4, GR_SHAPE(3, 2, 2, 3), -2, 2, true), gc_rand(&r, 1, GR_SHAPE(2), 0.5f, 1.5f, true),
                    gc_rand(&r, 1, GR_SHAPE(2), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(3, 2, 2, 3), -1, 1, true)};
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *bn = gr_batch_norm(c, gr_tensor_from(c, 4, in[0].shape, in[0].data), gr_tensor_from(c, 1, in[1].shape, in[1].data),
                                gr_tensor_from(c, 1, in[2].shape, in[2].data), NULL, NULL, 0.1f, 1e-5f);
  CHECK(bn != NULL);
  for (int64_t i = 0; bn && i < bn->numel; i++)
    if (fabsf(bn->data[i] + in[3].data[i]) < 0.1f) in[3].data[i] += 0.25f;
  gr_ctx_free(c);
  bn_state train = {NULL, NULL, true};
  CHECK_GRAD("batch_norm_relu train, residual", f_bnr, &train, 4, in);
  for (int k = 0; k < 4; k++) gc_input_free(&in[k]);
}

int main(void) {
  bnr_refs();
  bnr_vs_composed(true, true);
  bnr_vs_composed(true, false);
  bnr_vs_composed(false, true);
  bnr_gradcheck();
  bn_train_case("bn_train_4d");
  bn_train_case("bn_train_2d");
  bn_train_case("bn_train_edge");
  bn_train_case("bn_train_wide");
  bn_train_case("bn_train_chunk");
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
