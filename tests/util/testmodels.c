/* tests/util/testmodels.c — see testmodels.h. */
#include <stdio.h>
#include <string.h>

#include "testmodels.h"

gr_model *test_mlp(uint64_t seed, int64_t in, int64_t hidden, int64_t out) {
  gr_model *m = gr_model_new(seed);
  int64_t h[1] = {hidden};
  gr_model_set_root(m, gr_arch_mlp(m, in, h, 1, out, "relu"));
  return m;
}

gr_model *test_cnn(uint64_t seed, int64_t n_out) {
  gr_model *m = gr_model_new(seed);
  gr_module *s = gr_nn_sequential(m);
  gr_module_add(s, NULL, gr_nn_conv2d(m, 2, 4, 3, 1, 1, true));
  gr_module_add(s, NULL, gr_nn_relu(m));
  gr_module_add(s, NULL, gr_nn_flatten(m));
  gr_module_add(s, NULL, gr_nn_linear(m, 100, n_out, true));
  gr_model_set_root(m, s);
  return m;
}

int test_model_load_ref(gr_model *m, const ref_file *f) {
  int n = 0;
  for (int i = 0; i < m->n_entries; i++)
    for (int k = 0; k < f->count; k++)
      if (!strcmp(f->a[k].name, m->entries[i].name) && f->a[k].numel == m->entries[i].t->numel) {
        memcpy(m->entries[i].t->data, f->a[k].data, (size_t)f->a[k].numel * sizeof(float));
        n++;
      }
  return n;
}

void test_model_ref_check(const char *name, gr_model *m, const ref_file *f) {
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_tensor *x = ref_tensor(c, f, "x", true), *y = gr_model_forward(m, c, x);
  const ref_array *want = ref_get(f, "y"), *gy = ref_get(f, "gy"), *dx = ref_get(f, "dx");
  CHECK_MSG(y && want && gy && dx && y->numel == want->numel, "%s: forward", name);
  if (y && want && gy && dx && y->numel == want->numel) {
    CHECK_CLOSE(name, y->data, want->data, want->numel, 1e-4, 1e-4);
    gr_model_zero_grad(m);
    CHECK_OK(gr_backward_seed(c, y, gy->data));
    CHECK_CLOSE("dx", x->grad, dx->data, dx->numel, 1e-4, 1e-4);
    for (int i = 0; i < m->n_entries; i++) {
      char dn[GR_NAME_MAX + 1];
      snprintf(dn, sizeof dn, "d%s", m->entries[i].name);
      const ref_array *g = ref_get(f, dn);
      CHECK_MSG(g != NULL, "%s: reference grad %s", name, dn);
      if (g) CHECK_CLOSE(dn, m->entries[i].t->grad, g->data, g->numel, 1e-4, 1e-4);
    }
  }
  gr_ctx_free(c);
}
