/* training loop, evaluation metrics, early stopping and the transfer
 * registry on small synthetic data (MLPs; the LeNet/torch comparison is in
 * test_lenet_ref). */
#include <math.h>
#include <string.h>

#include "graft/transfer.h"
#include "testutil.h"
#include "train_fixture.h"

static gr_model *mlp(int d, int k, uint64_t seed) {
  gr_model *m = gr_model_new(seed);
  gr_model_set_root(m, gr_arch_mlp(m, d, (const int64_t[]){16}, 1, k, "relu"));
  return m;
}

typedef struct hook_log {
  int steps, evals;
  double last_loss;
} hook_log;
static void on_step(void *ud, int64_t step, int64_t total, double loss) {
  hook_log *h = ud;
  h->steps++;
  h->last_loss = loss;
}
static void on_eval(void *ud, int64_t step, double tl, const gr_eval_result *ev) { ((hook_log *)ud)->evals++; }

static void test_train_fixture_blobs(void) {
  gr_dataset *tr = fixture_blobs(600, 8, 3, 1), *te = fixture_blobs(300, 8, 3, 2);
  gr_model *m = mlp(8, 3, 3);
  gr_optim_cfg oc = gr_sgd_cfg(0.05f, 0.9f, 0, false);
  gr_optim *o = gr_optim_new(m, &oc);
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_eval_result before;
  CHECK_OK(gr_evaluate(m, c, te, 128, &before));
  gr_train_cfg cfg = {.epochs = 3, .batch = 32, .eval_every = 20, .seed = 4};
  hook_log h = {0};
  gr_train_hooks hooks = {&h, on_step, on_eval};
  gr_train_result res;
  CHECK_OK(gr_train(m, o, tr, te, &cfg, &hooks, &res));
  CHECK(res.steps == 3 * 19 && h.steps == 57);
  CHECK(h.evals == 3); /* steps 20, 40 and the end */
  CHECK_MSG(res.eval.accuracy > 0.9 && before.accuracy < 0.7, "acc %g -> %g", before.accuracy, res.eval.accuracy);
  CHECK(res.eval.loss < before.loss && res.train_loss < 0.5);
  CHECK(res.eval.n == 300 && res.eval.n_classes == 3);
  for (int k = 0; k < 3; k++) CHECK(res.eval.per_class_acc[k] > 0.8);
  /* same seed, same bits */
  gr_model *m2 = mlp(8, 3, 3);
  gr_optim *o2 = gr_optim_new(m2, &oc);
  gr_train_result res2;
  CHECK_OK(gr_train(m2, o2, tr, te, &cfg, NULL, &res2));
  CHECK(memcmp(m->data, m2->data, (size_t)m->numel * sizeof(float)) == 0);
  /* bad input */
  gr_train_cfg none = {0};
  CHECK_FAILS(gr_train(m, o, tr, te, &none, NULL, &res) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_train(m, o2, tr, te, &cfg, NULL, &res) == GR_OK, GR_EARG);
  gr_dataset *wrong = fixture_blobs(10, 8, 4, 1);
  CHECK_FAILS(gr_evaluate(m, c, wrong, 5, &before) == GR_OK, GR_ESHAPE);
  gr_dataset_free(wrong);
  gr_optim_free(o), gr_optim_free(o2);
  gr_model_free(m), gr_model_free(m2);
  gr_ctx_free(c);
  gr_dataset_free(tr), gr_dataset_free(te);
}

/* A 2-class linear model with known logits: checks loss, accuracy, ECE and
 * per-class accuracy against a direct computation. */
static void test_eval_metrics(void) {
  gr_model *m = gr_model_new(1);
  gr_model_set_root(m, gr_arch_mlp(m, 1, NULL, 0, 2, "none"));
  gr_tensor *w = gr_model_find(m, "layers.0.weight");
  gr_tensor_fill(gr_model_find(m, "layers.0.bias"), 0);
  w->data[0] = 1.0f, w->data[1] = -1.0f; /* logits (x, -x) */
  gr_dataset *ds = gr_dataset_new(4, 1, 1, 1, 2);
  float xs[] = {2.0f, 0.5f, -1.0f, 0.1f};
  int32_t ys[] = {0, 1, 1, 0};
  memcpy(ds->x, xs, sizeof xs);
  memcpy(ds->y, ys, sizeof ys);
  double loss = 0, ece_conf[15] = {0}, ece_ok[15] = {0};
  int ok = 0;
  for (int i = 0; i < 4; i++) {
    double p0 = 1.0 / (1.0 + exp(-2.0 * xs[i])), py = ys[i] == 0 ? p0 : 1 - p0;
    loss -= log(py) / 4;
    int pred = p0 >= 0.5 ? 0 : 1;
    double conf = pred == 0 ? p0 : 1 - p0;
    int bin = (int)(conf * 15);
    ece_conf[bin] += conf, ece_ok[bin] += pred == ys[i];
    ok += pred == ys[i];
  }
  double ece = 0;
  for (int b = 0; b < 15; b++) ece += fabs(ece_ok[b] - ece_conf[b]) / 4;
  gr_ctx *c = gr_ctx_new(1 << 12, 1);
  gr_eval_result ev;
  CHECK_OK(gr_evaluate(m, c, ds, 3, &ev));
  CHECK_NEAR(ev.loss, loss, 1e-6);
  CHECK_NEAR(ev.accuracy, ok / 4.0, 1e-12);
  CHECK_NEAR(ev.ece, ece, 1e-6);
  CHECK_NEAR(ev.per_class_acc[0], 1.0, 1e-12); /* x=2 -> 0 right, x=0.1 -> 0 right */
  CHECK_NEAR(ev.per_class_acc[1], 0.5, 1e-12); /* x=0.5 -> 0 wrong, x=-1 -> 1 right */
  gr_ctx_free(c);
  gr_dataset_free(ds);
  gr_model_free(m);
}

static void test_early_stopping(void) {
  /* labels are noise: the eval loss stops improving quickly */
  gr_dataset *tr = fixture_blobs(200, 8, 2, 5), *te = fixture_blobs(200, 8, 2, 6);
  gr_rng r;
  gr_rng_seed(&r, 1);
  for (int64_t i = 0; i < tr->n; i++) tr->y[i] = (int32_t)gr_rng_below(&r, 2);
  gr_model *m = mlp(8, 2, 1);
  gr_optim_cfg oc = gr_sgd_cfg(0.2f, 0.9f, 0, false);
  gr_optim *o = gr_optim_new(m, &oc);
  gr_train_cfg cfg = {.steps = 400, .batch = 20, .eval_every = 10, .patience = 3, .seed = 1};
  gr_train_result res;
  CHECK_OK(gr_train(m, o, tr, te, &cfg, NULL, &res));
  CHECK_MSG(res.stopped_early && res.steps < 400, "steps %lld", (long long)res.steps);
  CHECK(res.best_step > 0 && res.best_step <= res.steps - 30);
  gr_ctx *c = gr_ctx_new(1 << 12, 1);
  gr_eval_result ev;
  CHECK_OK(gr_evaluate(m, c, te, 100, &ev));
  CHECK_NEAR(ev.loss, res.eval.loss, 1e-9); /* the restored best weights */
  gr_ctx_free(c);
  gr_optim_free(o);
  gr_model_free(m);
  gr_dataset_free(tr), gr_dataset_free(te);
}

static void test_registry(void) {
  CHECK(gr_transfer_count() >= 4);
  const char *want[] = {"scratch", "linear-probe", "finetune", "finetune-frozen-early", "finetune-discriminative"};
  for (int i = 0; i < 5; i++) CHECK_MSG(gr_transfer_find(want[i]) != NULL, "method %s", want[i]);
  CHECK_FAILS(gr_transfer_find("lora-xyz") != NULL, GR_ENOTFOUND);
  CHECK(strstr(gr_last_error(), "linear-probe") != NULL);

  gr_dataset *tr = fixture_blobs(200, 8, 3, 7);
  gr_model *src = mlp(8, 3, 11);
  gr_train_cfg cfg = {.steps = 20, .batch = 20, .seed = 1};
  gr_optim_cfg oc = gr_sgd_cfg(0.05f, 0.9f, 0, false);
  for (int i = 0; i < 5; i++) {
    const gr_transfer_method *meth = gr_transfer_find(want[i]);
    gr_model *dst = mlp(8, 3, 12);
    gr_transfer_run run = {dst, src, "layers.2", "layers.0.*", NULL, &cfg, &oc, false, NULL, NULL};
    CHECK_OK(gr_transfer_prepare(meth, &run));
    gr_tensor *w0 = gr_model_find(dst, "layers.0.weight"), *head = gr_model_find(dst, "layers.2.weight");
    bool copied = memcmp(w0->data, gr_model_find(src, "layers.0.weight")->data, (size_t)w0->numel * 4) == 0;
    CHECK(copied == meth->uses_source);
    CHECK(memcmp(head->data, gr_model_find(src, "layers.2.weight")->data, (size_t)head->numel * 4) != 0);
    float w0_before = w0->data[3], head_before = head->data[1];
    gr_optim *o = gr_optim_new(dst, &oc);
    CHECK_OK(gr_transfer_prepare_optim(meth, &run, o));
    if (!strcmp(meth->name, "finetune-discriminative")) CHECK(o->lr_scale[0] == 0.1f && o->lr_scale[3] == 1.0f);
    gr_train_result res;
    CHECK_OK(gr_train(dst, o, tr, NULL, &cfg, NULL, &res));
    bool early_frozen = !strcmp(meth->name, "linear-probe") || !strcmp(meth->name, "finetune-frozen-early");
    CHECK_MSG((w0->data[3] == w0_before) == early_frozen, "%s: early layer %s", meth->name,
              early_frozen ? "changed" : "unchanged");
    CHECK(head->data[1] != head_before);
    if (!strcmp(meth->name, "linear-probe")) CHECK(gr_model_param_count(dst, true) == 16 * 3 + 3);
    gr_optim_free(o);
    gr_model_free(dst);
  }
  gr_model *other = gr_model_new(1);
  gr_model_set_root(other, gr_arch_mlp(other, 8, (const int64_t[]){32}, 1, 3, "relu"));
  CHECK_FAILS(gr_transfer_copy_weights(other, src, "layers.2") >= 0, GR_ESHAPE);
  gr_transfer_run nosrc = {other, NULL, "layers.2", NULL, NULL, &cfg, &oc, false, NULL, NULL};
  CHECK_FAILS(gr_transfer_prepare(gr_transfer_find("finetune"), &nosrc) == GR_OK, GR_EARG);
  gr_model_free(other);
  gr_model_free(src);
  gr_dataset_free(tr);
}

int main(void) {
  gr_set_threads(1);
  test_train_fixture_blobs();
  test_eval_metrics();
  test_early_stopping();
  test_registry();
  return test_summary();
}
