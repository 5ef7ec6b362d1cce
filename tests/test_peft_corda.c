/* CorDA: covariance accumulation, damping loop and decomposition against a
 * numpy port of PEFT's CorDA (tests/ref/ref_peft_corda.py), exactness of
 * the init (W_res + scaling B A = W, model output unchanged), end-to-end
 * covariance collection by input hooks on a small CNN (conv patches and
 * linear inputs), the hook API, bad input, and the mechanism knowledge-
 * preserved mode rests on (knowledge_preserved_directions). */
#include <math.h>
#include <string.h>

#include "graft/corda.h"
#include "graft/gpt.h"
#include "graft/peft.h"
#include "graft/transfer.h"
#include "testmodels.h"

/* b [out, r] @ a [r, in] */
static void product(const float *b, const float *a, int64_t out, int64_t in, int r, float *ba) {
  for (int64_t o = 0; o < out; o++)
    for (int64_t i = 0; i < in; i++) {
      double acc = 0;
      for (int k = 0; k < r; k++) acc += (double)b[o * r + k] * a[k * in + i];
      ba[o * in + i] = (float)acc;
    }
}

static void array_case(const char *name, int r, float scaling) {
  ref_file *f = ref_open(name);
  CHECK(f != NULL);
  if (!f) return;
  const ref_array *w = ref_get(f, "w"), *cv = ref_get(f, "cov"), *damp = ref_get(f, "damp");
  int64_t out = w->shape[0], in = w->shape[1];
  gr_corda_cov cov;
  CHECK_OK(gr_corda_cov_init(&cov, in));
  char xn[16];
  for (int i = 0; snprintf(xn, sizeof xn, "x%d", i), ref_has(f, xn); i++)
    CHECK_OK(gr_corda_cov_add(&cov, ref_get(f, xn)->data, ref_get(f, xn)->shape[0], xn));
  CHECK_OK(gr_corda_cov_finish(&cov));
  float covf[512];
  for (int64_t i = 0; i < in * in; i++) covf[i] = (float)cov.c[i];
  CHECK_CLOSE("covariance (PEFT hook)", covf, cv->data, in * in, 1e-5, 1e-5);
  float a[256], b[256], wres[512], ba[512];
  for (int mode = 0; mode < 4; mode++) { /* ipm, kpm, then both balanced */
    double dmp = 0;
    CHECK_OK(gr_corda_decompose(w->data, out, in, cov.c, r, scaling, mode % 2, mode >= 2, a, b, wres, &dmp));
    CHECK_MSG(fabs(dmp - damp->data[0]) <= 1e-6 * damp->data[0], "%s: damp %g, numpy %g", name, dmp, damp->data[0]);
    product(b, a, out, in, r, ba);
    const char *m = mode % 2 == GR_CORDA_KPM ? "kpm" : "ipm";
    for (int k = 0; k < r && mode >= 2; k++) { /* balanced: ||A_k|| = ||B_k|| */
      double na = 0, nb = 0;
      for (int64_t i = 0; i < in; i++) na += (double)a[k * in + i] * a[k * in + i];
      for (int64_t o = 0; o < out; o++) nb += (double)b[o * r + k] * b[o * r + k];
      CHECK_MSG(fabs(sqrt(na) - sqrt(nb)) <= 1e-5 * sqrt(nb), "%s balanced: |A_%d| %g |B_%d| %g", name, k, sqrt(na), k, sqrt(nb));
    }
    char k1[16], k2[16];
    snprintf(k1, sizeof k1, "ba_%s", m), snprintf(k2, sizeof k2, "wres_%s", m);
    CHECK_CLOSE(k1, ba, ref_get(f, k1)->data, out * in, 1e-4, 1e-4);
    CHECK_CLOSE(k2, wres, ref_get(f, k2)->data, out * in, 1e-4, 1e-4);
    /* exactness: W_res + scaling B A = W (relative to max |W|) */
    double wmax = 0, err = 0;
    for (int64_t i = 0; i < out * in; i++) {
      wmax = fmax(wmax, fabs(w->data[i]));
      err = fmax(err, fabs(wres[i] + scaling * ba[i] - w->data[i]));
    }
    CHECK_MSG(err <= 1e-5 * wmax, "%s %s: |W_res + s BA - W|max = %g (|W|max %g)", name, m, err, wmax);
  }
  gr_corda_cov_free(&cov);
  ref_close(f);
}

static gr_model *cnn(void) { return test_cnn(2, 6); }

static void model_output(gr_model *m, const gr_dataset *ds, float *y) {
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_ctx_set_grad(c, false);
  gr_tensor *x = NULL;
  const int32_t *lab = NULL;
  CHECK_OK(gr_dataset_batch(ds, c, 0, ds->n, &x, &lab));
  gr_tensor *out = gr_model_forward(m, c, x);
  CHECK(out != NULL);
  if (out) memcpy(y, out->data, (size_t)out->numel * sizeof(float));
  gr_ctx_free(c);
}

static void check_layer(gr_model *m, const ref_file *f, const char *path, const char *mode, int64_t out, int64_t in) {
  char key[64];
  gr_module *mod = gr_module_find(m->root, path);
  gr_tensor *a = gr_module_param_get(gr_module_find(mod, "lora_A"), "weight");
  gr_tensor *b = gr_module_param_get(gr_module_find(mod, "lora_B"), "weight");
  gr_tensor *w = gr_module_param_get(gr_module_find(mod, "base_layer"), "weight");
  float ba[1024];
  product(b->data, a->data, out, in, gr_lora_rank(mod), ba);
  snprintf(key, sizeof key, "ba%s_%s", path, mode);
  CHECK_CLOSE(key, ba, ref_get(f, key)->data, out * in, 1e-4, 1e-4);
  snprintf(key, sizeof key, "wres%s_%s", path, mode);
  CHECK_CLOSE(key, w->data, ref_get(f, key)->data, out * in, 1e-4, 1e-4);
}

/* gr_corda_apply: hooks collect conv patches and linear inputs; init as numpy. */
static void cnn_case(void) {
  ref_file *f = ref_open("corda_cnn");
  CHECK(f != NULL);
  if (!f) return;
  const ref_array *x = ref_get(f, "x");
  gr_dataset *ds = gr_dataset_new(x->shape[0], 2, 5, 5, 6);
  memcpy(ds->x, x->data, (size_t)x->numel * sizeof(float));
  for (int mode = 0; mode < 2; mode++) {
    gr_model *m = cnn();
    gr_lora_opts o = {.r = 2, .alpha = 4};
    CHECK_OK(gr_lora_wrap(m, "0", &o));
    CHECK_OK(gr_lora_wrap(m, "3", &o));
    const char *names[] = {"0.base_layer.weight", "0.base_layer.bias", "3.base_layer.weight", "3.base_layer.bias"};
    for (int i = 0; i < 4; i++) memcpy(gr_model_find(m, names[i])->data, ref_get(f, names[i])->data,
                                       (size_t)ref_get(f, names[i])->numel * sizeof(float));
    float y0[64], y1[64];
    model_output(m, ds, y0);
    int n = 0;
    CHECK_OK(gr_corda_apply(m, ds, ds->n, mode, false, &n));
    CHECK(n == 2);
    const char *md = mode == GR_CORDA_KPM ? "kpm" : "ipm";
    check_layer(m, f, "0", md, 4, 18);
    check_layer(m, f, "3", md, 6, 100);
    model_output(m, ds, y1);
    CHECK_CLOSE("output unchanged at init", y1, y0, ds->n * 6, 1e-5, 1e-5);
    CHECK(gr_module_find(m->root, "0.base_layer")->hook == NULL); /* hooks removed */
    gr_model_free(m);
  }
  gr_dataset_free(ds);
  ref_close(f);
}

static int hook_calls;
static gr_status count_hook(void *ud, gr_module *mod, const gr_tensor *x) {
  hook_calls++;
  return *(gr_status *)ud ? gr_error(*(gr_status *)ud, "hook says no") : GR_OK;
}

static void hook_api(void) {
  gr_model *m = cnn();
  gr_module *conv = gr_module_find(m->root, "0");
  gr_status verdict = GR_OK;
  CHECK_OK(gr_module_hook_input(conv, count_hook, &verdict));
  CHECK_FAILS(gr_module_hook_input(conv, count_hook, &verdict) == GR_OK, GR_ESTATE);
  CHECK_FAILS(gr_module_hook_input(NULL, count_hook, &verdict) == GR_OK, GR_EARG);
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x = gr_tensor_new(c, 4, GR_SHAPE(1, 2, 5, 5));
  CHECK(gr_model_forward(m, c, x) != NULL && hook_calls == 1);
  verdict = GR_ENUMERIC;
  CHECK(gr_model_forward(m, c, x) == NULL && gr_last_status() == GR_ENUMERIC && hook_calls == 2);
  gr_module_unhook_input(conv);
  gr_module_unhook_input(conv);
  CHECK(gr_model_forward(m, c, x) != NULL && hook_calls == 2);
  gr_ctx_free(c);
  gr_model_free(m);
}

static void bad_input(void) {
  float w[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, a[12], b[12], wr[12];
  double cov[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  CHECK_FAILS(gr_corda_decompose(w, 3, 4, cov, 4, 1, GR_CORDA_IPM, false, a, b, wr, NULL) == GR_OK, GR_EARG); /* r > min */
  CHECK_FAILS(gr_corda_decompose(w, 3, 4, cov, 0, 1, GR_CORDA_IPM, false, a, b, wr, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_corda_decompose(w, 3, 4, cov, 2, 0, GR_CORDA_IPM, false, a, b, wr, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_corda_decompose(NULL, 3, 4, cov, 2, 1, GR_CORDA_IPM, false, a, b, wr, NULL) == GR_OK, GR_EARG);
  w[5] = NAN;
  CHECK_FAILS(gr_corda_decompose(w, 3, 4, cov, 2, 1, GR_CORDA_IPM, false, a, b, wr, NULL) == GR_OK, GR_ENUMERIC);
  w[5] = 6;
  double zero[16] = {0};
  CHECK_FAILS(gr_corda_decompose(w, 3, 4, zero, 2, 1, GR_CORDA_IPM, false, a, b, wr, NULL) == GR_OK, GR_ENUMERIC);
  gr_corda_cov cv;
  CHECK_FAILS(gr_corda_cov_init(&cv, 0) == GR_OK, GR_EARG);
  CHECK_OK(gr_corda_cov_init(&cv, 4));
  CHECK_FAILS(gr_corda_cov_finish(&cv) == GR_OK, GR_ESTATE);
  float zeros[8] = {0}, bad[8] = {1, 2, INFINITY, 0, 0, 0, 0, 0};
  CHECK_FAILS(gr_corda_cov_add(&cv, zeros, 2, "zeros") == GR_OK, GR_ENUMERIC);
  CHECK_FAILS(gr_corda_cov_add(&cv, bad, 2, "inf") == GR_OK, GR_ENUMERIC);
  gr_corda_cov_free(&cv);
  /* no LoRA module, no data, wrong covariance size */
  gr_model *m = cnn();
  gr_dataset *ds = gr_dataset_new(3, 2, 5, 5, 6);
  for (int64_t i = 0; i < ds->n * ds->dim; i++) ds->x[i] = (float)((i * 37) % 11) / 11.0f;
  CHECK_FAILS(gr_corda_apply(m, ds, 3, GR_CORDA_KPM, false, NULL) == GR_OK, GR_ENOTFOUND);
  gr_lora_opts o = {.r = 2, .alpha = 4};
  CHECK_OK(gr_lora_wrap(m, "3", &o));
  CHECK_FAILS(gr_corda_apply(m, NULL, 3, GR_CORDA_KPM, false, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_corda_apply(m, ds, 0, GR_CORDA_KPM, false, NULL) == GR_OK, GR_EARG);
  CHECK_OK(gr_corda_cov_init(&cv, 99));
  cv.calls = 1;
  CHECK_FAILS(gr_corda_init(gr_module_find(m->root, "3"), &cv, GR_CORDA_KPM, false) == GR_OK, GR_ESHAPE);
  CHECK_FAILS(gr_corda_init(gr_module_find(m->root, "0"), &cv, GR_CORDA_KPM, false) == GR_OK, GR_EARG); /* not LoRA */
  gr_corda_cov_free(&cv);
  CHECK_OK(gr_corda_apply(m, ds, 3, GR_CORDA_KPM, false, NULL));
  gr_dataset_free(ds);
  gr_model_free(m);
}

/* ---- the KP mechanism ------------------------------------------------------ */
/* Mean over the rows a of A of a C a^T / |a|^2: the source-data output energy
 * per unit norm of the input directions the adapter reads (a step of B acts on
 * the source through A x). */
static double row_energy(const float *a, int r, int64_t in, const double *c) {
  double sum = 0;
  for (int k = 0; k < r; k++) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < in; i++) {
      den += (double)a[k * in + i] * a[k * in + i];
      for (int64_t j = 0; j < in; j++) num += (double)a[k * in + i] * c[i * in + j] * a[k * in + j];
    }
    sum += num / den;
  }
  return sum / r;
}

/* The paper's argument for less forgetting: W C' = U S V^T, the r SMALLEST
 * components become the adapter, so its input directions (rows of A, along
 * C'^-1 V) are those the source data hardly excites. On source inputs with a
 * decaying spectrum: KP's A rows carry < 1/4 of the source energy per unit
 * norm of LoRA's random init and of IP's (the r largest); the adapter's part
 * of W C' is the r smallest singular values, IP's the r largest. */
static void knowledge_preserved_directions(void) {
  enum { IN = 48, OUT = 24, R = 4, N = 2000 };
  gr_rng st;
  gr_rng_seed(&st, 88172645463325252ull);
  static float mix[IN * IN], x[N * IN];
  for (int i = 0; i < IN; i++)
    for (int j = 0; j < IN; j++) mix[i * IN + j] = (float)(gr_rng_normal(&st) * exp(-j / 12.0));
  for (int n = 0; n < N; n++) {
    double z[IN];
    for (int j = 0; j < IN; j++) z[j] = gr_rng_normal(&st);
    for (int i = 0; i < IN; i++) {
      double v = 0;
      for (int j = 0; j < IN; j++) v += mix[i * IN + j] * z[j];
      x[n * IN + i] = (float)v;
    }
  }
  gr_corda_cov cov;
  CHECK_OK(gr_corda_cov_init(&cov, IN));
  CHECK_OK(gr_corda_cov_add(&cov, x, N, "source"));
  CHECK_OK(gr_corda_cov_finish(&cov));
  gr_model *m = test_mlp(5, IN, OUT, 3);
  gr_lora_opts o = {.r = R, .alpha = 2 * R};
  CHECK_OK(gr_lora_wrap(m, "layers.0", &o));
  gr_module *lora = gr_module_find(m->root, "layers.0");
  const float *w = gr_module_param_get(gr_module_find(lora, "base_layer"), "weight")->data;
  double e_lora = row_energy(gr_module_param_get(gr_module_find(lora, "lora_A"), "weight")->data, R, IN, cov.c);
  float a[2][R * IN], b[2][OUT * R], wres[OUT * IN];
  double e[2], part[2];
  for (int mode = 0; mode < 2; mode++) {
    CHECK_OK(gr_corda_decompose(w, OUT, IN, cov.c, R, 2.0f, mode, true, a[mode], b[mode], wres, NULL));
    e[mode] = row_energy(a[mode], R, IN, cov.c);
    part[mode] = 0; /* |s B A C|_F: the adapter's share of W C */
    for (int oo = 0; oo < OUT; oo++)
      for (int j = 0; j < IN; j++) {
        double v = 0;
        for (int i = 0; i < IN; i++) {
          double ba = 0;
          for (int k = 0; k < R; k++) ba += (double)b[mode][oo * R + k] * a[mode][k * IN + i];
          v += 2.0 * ba * cov.c[i * IN + j];
        }
        part[mode] += v * v;
      }
  }
  CHECK_MSG(e[GR_CORDA_KPM] < e_lora / 4 && e[GR_CORDA_KPM] < e[GR_CORDA_IPM] / 4,
            "source energy per unit A row: KP %g, LoRA init %g, IP %g", e[GR_CORDA_KPM], e_lora, e[GR_CORDA_IPM]);
  CHECK_MSG(part[GR_CORDA_KPM] < part[GR_CORDA_IPM] / 16, "|s B A C|^2: KP %g, IP %g", part[0], part[1]);
  gr_corda_cov_free(&cov);
  gr_model_free(m);
}

/* The corda-kp registry row calibrates on the SOURCE data; "freeze_a=1"
 * leaves lora_A frozen at its init (B and the head train); bad values fail. */
static void registry_row(void) {
  gr_dataset *src_data = gr_dataset_new(16, 1, 1, 6, 5);
  for (int64_t i = 0; i < src_data->n * src_data->dim; i++) src_data->x[i] = (float)((i * 37) % 11) / 11.0f - 0.4f;
  const gr_transfer_method *kp = gr_transfer_find("corda-kp");
  CHECK(kp != NULL);
  for (int fa = 0; fa < 3 && kp; fa++) {
    gr_model *src = test_mlp(1, 6, 8, 5), *dst = test_mlp(2, 6, 8, 5);
    gr_train_cfg cfg = {.steps = 1, .batch = 4};
    gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
    const char *opts[] = {"r=2", "r=2,freeze_a=1", "r=2,freeze_a=2"};
    gr_transfer_run run = {dst, src, "layers.2", NULL, opts[fa], &cfg, &oc, false, NULL, NULL};
    CHECK_FAILS(gr_transfer_prepare(kp, &run) == GR_OK, GR_EARG); /* no source data */
    gr_model_free(dst);
    run.model = dst = test_mlp(2, 6, 8, 5), run.source_data = src_data;
    if (fa == 2) {
      CHECK_FAILS(gr_transfer_prepare(kp, &run) == GR_OK, GR_EARG);
      CHECK(strstr(gr_last_error(), "freeze_a") != NULL);
    } else {
      CHECK_OK(gr_transfer_prepare(kp, &run));
      gr_tensor *a = gr_model_find(dst, "layers.0.lora_A.weight"), *b = gr_model_find(dst, "layers.0.lora_B.weight");
      CHECK(a && b && a->requires_grad == (fa == 0) && b->requires_grad);
      CHECK(gr_model_find(dst, "layers.0.base_layer.weight")->requires_grad == false);
    }
    gr_model_free(src), gr_model_free(dst);
  }
  gr_dataset_free(src_data);
}

/* gr_corda_apply_with on a GPT (forwards on token ids, not a dataset): the
 * hooks see every wrapped Linear (c_attn, attn.c_proj, c_fc, mlp.c_proj),
 * B is no longer 0, the logits are unchanged at init; a calibration
 * function that fails or runs no forward is an error. */
typedef struct gpt_calib {
  gr_gpt *g;
  const int32_t *ids;
  int passages;
  gr_status fail;
} gpt_calib;

static gr_status gpt_forwards(void *ud, gr_model *m, gr_ctx *c) {
  gpt_calib *gc = ud;
  CHECK(m == gc->g->model && m->inference);
  if (gc->fail) return gr_error(gc->fail, "calibration failed on purpose");
  for (int k = 0; k < gc->passages; k++) {
    if (!gr_gpt_forward(gc->g, c, gc->ids + 3 * k, 1, 16, 0, NULL)) return gr_last_status();
    gr_ctx_reset(c);
  }
  return GR_OK;
}

static void gpt_case(void) {
  gr_gpt_config cfg = {.vocab = 13, .block = 16, .n_layer = 1, .n_head = 2, .n_embd = 8};
  gr_gpt *g = NULL;
  CHECK_OK(gr_gpt_new(&cfg, 3, &g));
  if (!g) return;
  const char *targets[] = {"c_attn", "c_proj", "c_fc"};
  gr_peft_config *pc = gr_peft_config_new(GR_PEFT_LORA, 2, 4.0, targets, 3);
  int n = 0, done = 0;
  CHECK_OK(gr_lora_apply(g->model, pc, GR_LORA_INIT_PEFT, &n));
  CHECK(n == 4);
  int32_t ids[64];
  for (int i = 0; i < 64; i++) ids[i] = (i * 7 + i / 5) % 13;
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_ctx_set_grad(c, false);
  gr_tensor *y0 = gr_gpt_forward(g, c, ids, 1, 16, 0, NULL);
  float before[16 * 13];
  CHECK(y0 && y0->numel == 16 * 13);
  if (y0) memcpy(before, y0->data, sizeof before);
  gpt_calib gc = {g, ids, 12, GR_OK};
  CHECK_OK(gr_corda_apply_with(g->model, gpt_forwards, &gc, GR_CORDA_KPM, true, &done));
  CHECK(done == 4 && !g->model->inference);
  int nonzero_b = 0;
  for (int i = 0; i < g->model->n_entries; i++) {
    const gr_named_tensor *e = &g->model->entries[i];
    if (!strstr(e->name, ".lora_B.")) continue;
    bool nz = false;
    for (int64_t k = 0; k < e->t->numel; k++) nz = nz || e->t->data[k] != 0;
    nonzero_b += nz;
  }
  CHECK_MSG(nonzero_b == 4, "%d of 4 lora_B initialized", nonzero_b);
  gr_ctx_reset(c);
  gr_tensor *y1 = gr_gpt_forward(g, c, ids, 1, 16, 0, NULL);
  double worst = 0;
  for (int k = 0; y1 && y0 && k < 16 * 13; k++) worst = fmax(worst, fabs(y1->data[k] - before[k]) / (1 + fabs(before[k])));
  CHECK_MSG(y1 && worst <= 1e-4, "logits moved by %g at init", worst);
  /* a failing calibration, none at all, no function */
  gr_gpt *g2 = NULL;
  CHECK_OK(gr_gpt_new(&cfg, 4, &g2));
  if (g2) {
    CHECK_OK(gr_lora_apply(g2->model, pc, GR_LORA_INIT_PEFT, &n));
    gpt_calib bad = {g2, ids, 12, GR_ENUMERIC};
    CHECK_FAILS(gr_corda_apply_with(g2->model, gpt_forwards, &bad, GR_CORDA_KPM, true, &done) == GR_OK, GR_ENUMERIC);
    CHECK(done == 0 && !g2->model->inference);
    bad = (gpt_calib){g2, ids, 0, GR_OK};
    CHECK(gr_corda_apply_with(g2->model, gpt_forwards, &bad, GR_CORDA_KPM, true, &done) != GR_OK && done == 0);
    CHECK_FAILS(gr_corda_apply_with(g2->model, NULL, &bad, GR_CORDA_KPM, true, &done) == GR_OK, GR_EARG);
    gr_gpt_free(g2);
  }
  gr_peft_config_free(pc);
  gr_ctx_free(c);
  gr_gpt_free(g);
}

int main(void) {
  array_case("corda_tall", 3, 2.0f);
  array_case("corda_wide", 4, 0.5f);
  array_case("corda_lowrank", 2, 2.0f);
  cnn_case();
  hook_api();
  bad_input();
  knowledge_preserved_directions();
  registry_row();
  gpt_case();
  return test_summary();
}
