/* optimizers, clipping and schedules against torch.optim (reference file
 * written at test time by tests/ref/ref_optim.py), plus bad input. */
#include <math.h>
#include <string.h>

#include "graft/optim.h"
#include "refdata.h"

/* A model with two parameters "a.weight" [3,4] and "b.bias" [5]. */
static gr_model *two_param_model(void) {
  gr_model *m = gr_model_new(1);
  gr_module *root = gr_module_new(m, "Root", NULL), *a = gr_module_new(m, "A", NULL), *b = gr_module_new(m, "B", NULL);
  gr_module_new_param(a, "weight", 2, GR_SHAPE(3, 4), false);
  gr_module_new_param(b, "bias", 1, GR_SHAPE(5), false);
  gr_module_add(root, "a", a);
  gr_module_add(root, "b", b);
  if (gr_model_set_root(m, root)) return NULL;
  return m;
}

static void load(gr_model *m, const ref_file *f, const char *a, const char *b, int step) {
  const ref_array *ra = ref_get(f, a), *rb = ref_get(f, b);
  memcpy(m->entries[0].t->data, ra->data + step * 12, 12 * sizeof(float));
  memcpy(m->entries[1].t->data, rb->data + step * 5, 5 * sizeof(float));
}
static void load_grads(gr_model *m, const ref_file *f, int step) {
  memcpy(m->entries[0].t->grad, ref_get(f, "ga")->data + step * 12, 12 * sizeof(float));
  memcpy(m->entries[1].t->grad, ref_get(f, "gb")->data + step * 5, 5 * sizeof(float));
}

static void run_case(const char *name, gr_optim_cfg cfg, bool groups, bool freeze_a) {
  char file[64];
  snprintf(file, sizeof file, "optim_%s", name);
  ref_file *f = ref_open(file);
  CHECK_MSG(f != NULL, "missing reference %s", file);
  if (!f) return;
  gr_model *m = two_param_model();
  load(m, f, "a0", "b0", 0);
  if (freeze_a) CHECK(gr_model_freeze(m, "a.*", true) == 1);
  gr_optim *o = gr_optim_new(m, &cfg);
  CHECK_PTR(o);
  if (groups) CHECK(gr_optim_set_group(o, "b.*", 0.1f, -1) == 1);
  int steps = (int)ref_get(f, "ga")->shape[0];
  for (int t = 0; t < steps; t++) {
    load_grads(m, f, t);
    CHECK_OK(gr_optim_step(o));
  }
  CHECK_CLOSE(name, m->entries[0].t->data, ref_get(f, "a")->data, 12, 1e-5, 1e-5);
  CHECK_CLOSE(name, m->entries[1].t->data, ref_get(f, "b")->data, 5, 1e-5, 1e-5);
  gr_optim_free(o);
  gr_model_free(m);
  ref_close(f);
}

static void test_clip(const char *name) {
  ref_file *f = ref_open(name);
  CHECK(f != NULL);
  if (!f) return;
  gr_model *m = two_param_model();
  load_grads(m, f, 0);
  float norm = gr_clip_grad_norm(m, ref_get(f, "max_norm")->data[0]);
  CHECK_NEAR(norm, ref_get(f, "norm")->data[0], 1e-5);
  CHECK_CLOSE(name, m->entries[0].t->grad, ref_get(f, "a")->data, 12, 1e-6, 1e-5);
  CHECK_CLOSE(name, m->entries[1].t->grad, ref_get(f, "b")->data, 5, 1e-6, 1e-5);
  float g0 = m->entries[1].t->grad[0];
  m->entries[1].t->grad[2] = NAN;
  CHECK(isnan(gr_clip_grad_norm(m, 1e-3f)));
  CHECK(m->entries[1].t->grad[0] == g0); /* nothing scaled */
  gr_model_free(m);
  ref_close(f);
}

static void test_sched(const char *name, gr_schedule s) {
  ref_file *f = ref_open(name);
  CHECK(f != NULL);
  if (!f) return;
  const ref_array *lr = ref_get(f, "lr");
  float got[64];
  for (int64_t t = 0; t < lr->numel && t < 64; t++) got[t] = gr_schedule_lr(&s, t);
  CHECK_CLOSE(name, got, lr->data, lr->numel, 1e-6, 1e-5);
  ref_close(f);
}

static void test_bad_input(void) {
  gr_model *m = two_param_model();
  gr_optim_cfg bad = gr_sgd_cfg(-1, 0, 0, false);
  CHECK_FAILS(gr_optim_new(m, &bad) != NULL, GR_EARG);
  bad = gr_sgd_cfg(0.1f, 0, 0, true); /* nesterov without momentum */
  CHECK_FAILS(gr_optim_new(m, &bad) != NULL, GR_EARG);
  bad = gr_adamw_cfg(0.1f, 0);
  bad.beta2 = 1.0f;
  CHECK_FAILS(gr_optim_new(m, &bad) != NULL, GR_EARG);
  CHECK_FAILS(gr_optim_new(NULL, &bad) != NULL, GR_EARG);
  gr_optim_cfg ok = gr_sgd_cfg(0.1f, 0.9f, 0, false);
  gr_optim *o = gr_optim_new(m, &ok);
  float before = m->entries[0].t->data[0] = 0.5f;
  m->entries[0].t->grad[3] = INFINITY;
  CHECK_FAILS(gr_optim_step(o) == GR_OK, GR_ENUMERIC);
  CHECK(m->entries[0].t->data[0] == before); /* no partial update */
  CHECK(gr_optim_set_group(o, "nothing.*", 1, -1) == 0);
  CHECK(gr_optim_set_group(o, NULL, 1, -1) == -1);
  gr_sched_kind k;
  CHECK_FAILS(gr_schedule_kind_parse("linear-ish", &k) == GR_OK, GR_EARG);
  CHECK_OK(gr_schedule_kind_parse("cosine", &k));
  gr_optim_free(o);
  gr_model_free(m);
}

int main(void) {
  run_case("sgd_plain", gr_sgd_cfg(0.05f, 0, 0, false), false, false);
  run_case("sgd_momentum_wd", gr_sgd_cfg(0.05f, 0.9f, 0.01f, false), false, false);
  run_case("sgd_nesterov", gr_sgd_cfg(0.05f, 0.9f, 0.001f, true), false, false);
  gr_optim_cfg damp = gr_sgd_cfg(0.05f, 0.8f, 0, false);
  damp.dampening = 0.5f;
  run_case("sgd_dampening", damp, false, false);
  run_case("adamw", gr_adamw_cfg(0.05f, 0.1f), false, false);
  gr_optim_cfg ab = gr_adamw_cfg(0.05f, 0);
  ab.beta1 = 0.8f, ab.beta2 = 0.95f, ab.eps = 1e-6f;
  run_case("adamw_betas", ab, false, false);
  run_case("sgd_groups", gr_sgd_cfg(0.05f, 0.9f, 0, false), true, false);
  run_case("adamw_frozen", gr_adamw_cfg(0.05f, 0.1f), false, true);
  test_clip("optim_clip_active");
  test_clip("optim_clip_inactive");
  test_sched("sched_linear", (gr_schedule){.kind = GR_SCHED_CONSTANT, .base_lr = 0.1f, .warmup_steps = 5,
                                           .warmup_start = 0.25f});
  test_sched("sched_cosine", (gr_schedule){.kind = GR_SCHED_COSINE, .base_lr = 0.1f, .total_steps = 20, .min_lr = 0.001f});
  test_sched("sched_step", (gr_schedule){.kind = GR_SCHED_STEP, .base_lr = 0.1f, .step_size = 3, .gamma = 0.5f});
  test_bad_input();
  return test_summary();
}
