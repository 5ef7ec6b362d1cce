/* LeNet end to end against PyTorch (tests/ref/ref_lenet_ref.py): the same
 * initial weights by state_dict name, forward logits and every parameter
 * gradient of the first batch, then 50 SGD(0.01, momentum 0.9) steps on the
 * same fixed Fashion-MNIST batches: every loss within 1e-3, final weights
 * close. */
#include <math.h>
#include <string.h>

#include "graft/optim.h"
#include "refdata.h"

static void load_prefixed(gr_model *m, const ref_file *f, const char *prefix) {
  char name[GR_NAME_MAX + 16];
  for (int i = 0; i < m->n_entries; i++) {
    snprintf(name, sizeof name, "%s%s", prefix, m->entries[i].name);
    const ref_array *a = ref_get(f, name);
    CHECK_MSG(a && a->numel == m->entries[i].t->numel, "%s missing or wrong size", name);
    if (a && a->numel == m->entries[i].t->numel)
      memcpy(m->entries[i].t->data, a->data, (size_t)a->numel * sizeof(float));
  }
}

int main(void) {
  gr_set_threads(1);
  ref_file *f = ref_open("lenet_sgd50");
  CHECK(f != NULL);
  if (!f) return test_summary();
  gr_model *m = gr_model_new(1);
  CHECK_OK(gr_model_set_root(m, gr_arch_lenet(m, 1, 10)));
  CHECK(m->n_entries == 10 && gr_model_param_count(m, false) == 61706);
  load_prefixed(m, f, "init.");
  const ref_array *x = ref_get(f, "x"), *y = ref_get(f, "y"), *losses = ref_get(f, "losses");
  int steps = (int)x->shape[0], batch = (int)x->shape[1];
  int32_t *labels = gr_malloc((size_t)steps * batch * sizeof(int32_t));
  for (int i = 0; i < steps * batch; i++) labels[i] = (int32_t)y->data[i];
  gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
  gr_optim *o = gr_optim_new(m, &oc);
  gr_ctx *c = gr_ctx_new(8 << 20, 1);
  float got[64];
  double worst = 0;
  for (int t = 0; t < steps; t++) {
    gr_tensor *xb = gr_tensor_from(c, 4, GR_SHAPE(batch, 1, 28, 28), x->data + (int64_t)t * batch * 784);
    gr_tensor *logits = gr_model_forward(m, c, xb);
    gr_tensor *loss = logits ? gr_cross_entropy(c, logits, labels + t * batch, 0, -100) : NULL;
    CHECK_PTR(loss);
    if (!loss) break;
    gr_model_zero_grad(m);
    CHECK_OK(gr_backward(c, loss));
    if (t == 0) {
      CHECK_CLOSE("logits step 0", logits->data, ref_get(f, "logits0")->data, logits->numel, 1e-4, 1e-4);
      char name[GR_NAME_MAX + 16];
      for (int i = 0; i < m->n_entries; i++) {
        snprintf(name, sizeof name, "grad0.%s", m->entries[i].name);
        CHECK_CLOSE(name, m->entries[i].t->grad, ref_get(f, name)->data, m->entries[i].t->numel, 1e-4, 1e-3);
      }
    }
    CHECK_OK(gr_optim_step(o));
    got[t] = loss->data[0];
    worst = fmax(worst, fabs(got[t] - losses->data[t]));
    gr_ctx_reset(c);
  }
  printf("max |loss - torch loss| over %d steps: %.3g (first %.5f vs %.5f, last %.5f vs %.5f)\n", steps, worst,
         got[0], losses->data[0], got[steps - 1], losses->data[steps - 1]);
  CHECK_CLOSE("losses", got, losses->data, steps, 1e-3, 0);
  double first = 0, last = 0; /* it learned something: the last 10 losses are lower */
  for (int t = 0; t < 10; t++) first += got[t] / 10, last += got[steps - 1 - t] / 10;
  CHECK_MSG(last < first - 0.05, "mean loss first 10 steps %.4f, last 10 %.4f", first, last);
  char name[GR_NAME_MAX + 16];
  for (int i = 0; i < m->n_entries; i++) {
    snprintf(name, sizeof name, "final.%s", m->entries[i].name);
    CHECK_CLOSE(name, m->entries[i].t->data, ref_get(f, name)->data, m->entries[i].t->numel, 1e-3, 1e-3);
  }
  gr_free(labels);
  gr_ctx_free(c);
  gr_optim_free(o);
  gr_model_free(m);
  ref_close(f);
  return test_summary();
}
