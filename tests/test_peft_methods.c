/* DoRA, IA3 and bottleneck adapters (sequential, parallel, scaled parallel)
 * on the shared PEFT wrapper: forward and backward of every parameter
 * against PEFT's / the unified-view paper's math in torch
 * (tests/ref/ref_peft_methods.py) on a small MLP and a small CNN; merged
 * weights against PEFT's merge formulas; merge -> unmerge round trips;
 * adapter directories saved and loaded back; bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graft/peft.h"
#include "refdata.h"
#include "testmodels.h"

static gr_model *mlp(void) { return test_mlp(1, 6, 8, 5); }
static gr_model *cnn(void) { return test_cnn(2, 3); }

typedef enum { DORA, IA3, IA3_FF0, ADAPTER_SEQ, ADAPTER_PAR, ADAPTER_SCALED } method;

/* Wraps the two layers of the MLP (layers.0, layers.2) or the CNN (0, 3). */
static void wrap(gr_model *m, method k, bool is_cnn) {
  const char *p0 = is_cnn ? "0" : "layers.0", *p1 = is_cnn ? "3" : "layers.2";
  if (k == DORA) {
    gr_lora_opts o = {.r = 2, .alpha = is_cnn ? 8 : 4, .init = GR_LORA_INIT_RANDOM, .dora = true};
    CHECK_OK(gr_lora_wrap(m, p0, &o));
    o.r = is_cnn ? 2 : 3;
    CHECK_OK(gr_lora_wrap(m, p1, &o));
  } else if (k == IA3 || k == IA3_FF0) {
    CHECK_OK(gr_ia3_wrap(m, p0, k == IA3_FF0, false));
    CHECK_OK(gr_ia3_wrap(m, p1, k == IA3, false));
  } else {
    gr_adapter_opts o = {.r = is_cnn ? 2 : 3,
                         .placement = k == ADAPTER_SEQ ? GR_ADAPTER_SEQUENTIAL : GR_ADAPTER_PARALLEL,
                         .scale = k == ADAPTER_SCALED ? 4.0f : 1.0f,
                         .random_up = true};
    CHECK_OK(gr_adapter_wrap(m, p0, &o));
    CHECK_OK(gr_adapter_wrap(m, p1, &o));
  }
}

/* Copies every parameter of the model from the ref file (all must be there). */
static void load_params(gr_model *m, const ref_file *f, const char *name) {
  for (int i = 0; i < m->n_entries; i++) {
    const ref_array *a = ref_get(f, m->entries[i].name);
    CHECK_MSG(a && a->numel == m->entries[i].t->numel, "%s: reference holds %s", name, m->entries[i].name);
    if (a && a->numel == m->entries[i].t->numel)
      memcpy(m->entries[i].t->data, a->data, (size_t)a->numel * sizeof(float));
  }
}

static gr_model *reference_model(const char *name, method k, bool is_cnn, ref_file *f) {
  gr_model *m = is_cnn ? cnn() : mlp();
  wrap(m, k, is_cnn);
  load_params(m, f, name);
  return m;
}


/* Output on the reference input, copied out. */
static int64_t forward_into(gr_model *m, const ref_file *f, float *out, int64_t cap) {
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_ctx_set_grad(c, false);
  gr_tensor *y = gr_model_forward(m, c, ref_tensor(c, f, "x", false));
  int64_t n = y && y->numel <= cap ? y->numel : 0;
  if (n) memcpy(out, y->data, (size_t)n * sizeof(float));
  gr_ctx_free(c);
  return n;
}

/* merge: weights equal PEFT's merged ones, outputs equal the adapter
 * model's; unmerge: the base weights come back. */
static void merge_roundtrip(const char *name, gr_model *m, const ref_file *f) {
  float y0[64], y1[64], w0[4096];
  CHECK((size_t)m->numel <= sizeof w0 / sizeof *w0);
  memcpy(w0, m->data, (size_t)m->numel * sizeof(float));
  int64_t ny = forward_into(m, f, y0, 64);
  int n = 0;
  CHECK_OK(gr_peft_merge_all(m, true, &n));
  CHECK(n == 2);
  for (int i = 0; i < f->count; i++) {
    if (strncmp(f->a[i].name, "merged.", 7)) continue;
    char pname[GR_NAME_MAX];
    const char *rest = f->a[i].name + 7, *dot = strrchr(rest, '.');
    snprintf(pname, sizeof pname, "%.*s.base_layer%s", (int)(dot - rest), rest, dot);
    gr_tensor *t = gr_model_find(m, pname);
    CHECK_MSG(t && t->numel == f->a[i].numel, "%s: %s", name, pname);
    if (t && t->numel == f->a[i].numel) CHECK_CLOSE(f->a[i].name, t->data, f->a[i].data, t->numel, 1e-5, 1e-5);
  }
  CHECK(forward_into(m, f, y1, 64) == ny && ny > 0);
  CHECK_CLOSE("merged output = adapter output", y1, y0, ny, 1e-5, 1e-5);
  CHECK_FAILS(gr_peft_merge_all(m, true, NULL) == GR_OK, GR_ESTATE);
  CHECK_OK(gr_peft_merge_all(m, false, &n));
  CHECK_CLOSE("unmerge restores the weights", m->data, w0, m->numel, 1e-6, 0);
  CHECK(forward_into(m, f, y1, 64) == ny);
  CHECK_CLOSE("unmerged output", y1, y0, ny, 1e-5, 1e-5);
}

/* Saves the adapter, loads it into a fresh copy of the base and compares. */
static void save_load(const char *name, gr_model *m, method k, bool is_cnn, const ref_file *f) {
  char dir[256];
  snprintf(dir, sizeof dir, "%s/peft_methods_%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name);
  (void)k;
  gr_model_freeze(m, "*base_layer*", true); /* as gr_peft_apply leaves it */
  CHECK_OK(gr_peft_save(m, dir));
  gr_model *g = is_cnn ? cnn() : mlp();
  for (int i = 0; i < g->n_entries; i++) { /* the same base weights */
    char wn[GR_NAME_MAX + 16], *dot = strrchr(g->entries[i].name, '.');
    snprintf(wn, sizeof wn, "%.*s.base_layer%s", (int)(dot - g->entries[i].name), g->entries[i].name, dot);
    gr_tensor *t = gr_model_find(m, wn);
    if (t) memcpy(g->entries[i].t->data, t->data, (size_t)t->numel * sizeof(float));
  }
  gr_peft_config *cfg = NULL;
  CHECK_OK(gr_peft_load(g, dir, &cfg));
  CHECK(cfg && cfg->n_target_modules == 2);
  CHECK_MSG(g->n_entries == m->n_entries && gr_model_param_count(g, true) == gr_model_param_count(m, true),
            "%s: loaded model has the same parameters (%lld vs %lld trainable)", name,
            (long long)gr_model_param_count(g, true), (long long)gr_model_param_count(m, true));
  float y0[64], y1[64];
  int64_t n0 = forward_into(m, f, y0, 64), n1 = forward_into(g, f, y1, 64);
  CHECK(n0 == n1 && n0 > 0);
  CHECK_CLOSE("loaded adapter output", y1, y0, n0, 0, 0);
  gr_peft_config_free(cfg);
  gr_model_free(g);
}

static void method_case(const char *name, method k, bool is_cnn, bool mergeable) {
  ref_file *f = ref_open(name);
  CHECK(f != NULL);
  if (!f) return;
  gr_model *m = reference_model(name, k, is_cnn, f);
  test_model_ref_check(name, m, f);
  if (mergeable) merge_roundtrip(name, m, f);
  else CHECK_FAILS(gr_peft_merge_all(m, true, NULL) == GR_OK, GR_EUNSUPPORTED);
  save_load(name, m, k, is_cnn, f);
  gr_model_free(m);
  ref_close(f);
}

static void init_cases(void) {
  /* PEFT inits: the model is unchanged at step 0 for every method */
  gr_rng r;
  gr_rng_seed(&r, 3);
  float x[24], y0[64], y1[64];
  gr_rng_fill_uniform(&r, x, 24, -1, 1);
  ref_file f = {1, &(ref_array){.name = "x", .ndim = 2, .shape = {4, 6}, .numel = 24, .data = x}};
  for (int k = 0; k < 4; k++) {
    gr_model *m = mlp();
    int64_t n = forward_into(m, &f, y0, 64);
    if (k == 0) CHECK_OK(gr_lora_wrap(m, "layers.0", &(gr_lora_opts){.r = 2, .alpha = 4, .dora = true}));
    if (k == 1) CHECK_OK(gr_ia3_wrap(m, "layers.0", true, true));
    if (k >= 2)
      CHECK_OK(gr_adapter_wrap(m, "layers.0", &(gr_adapter_opts){.r = 2, .placement = (gr_adapter_placement)(k - 2), .scale = 4}));
    CHECK(forward_into(m, &f, y1, 64) == n);
    CHECK_CLOSE("unchanged at init", y1, y0, n, 1e-6, 1e-6);
    gr_model_free(m);
  }
}

static void error_cases(void) {
  gr_model *m = mlp();
  const char *none[] = {"fc9"};
  gr_peft_config *cfg = gr_peft_config_new(GR_PEFT_IA3, 1, 1, none, 1);
  CHECK_FAILS(gr_peft_apply(m, cfg, GR_LORA_INIT_PEFT, NULL) == GR_OK, GR_ENOTFOUND);
  CHECK(strstr(gr_last_error(), "fc9") != NULL);
  gr_peft_config_free(cfg);
  const char *both[] = {"layers.0", "layers.2"};
  cfg = gr_peft_config_new(GR_PEFT_BOTTLENECK, 6, 1, both, 2);
  CHECK_FAILS(gr_peft_apply(m, cfg, GR_LORA_INIT_PEFT, NULL) == GR_OK, GR_EARG); /* 6 > out=5 of layers.2 */
  CHECK(strstr(gr_last_error(), "layers.2") != NULL);
  CHECK(!strcmp(gr_module_find(m->root, "layers.0")->kind, "Linear")); /* all or nothing: layers.0 untouched */
  cfg->r = 2;
  cfg->modules_to_save = gr_calloc(2, sizeof(char *));
  cfg->modules_to_save[0] = gr_malloc(8);
  memcpy(cfg->modules_to_save[0], "head99", 7);
  cfg->n_modules_to_save = 1;
  CHECK_FAILS(gr_peft_apply(m, cfg, GR_LORA_INIT_PEFT, NULL) == GR_OK, GR_ENOTFOUND);
  CHECK(strstr(gr_last_error(), "head99") != NULL);
  gr_peft_config_free(cfg);
  CHECK_FAILS(gr_lora_wrap(m, "layers.0", &(gr_lora_opts){.r = 7, .alpha = 1, .dora = true}) == GR_OK, GR_EARG);
  CHECK(strstr(gr_last_error(), "layers.0") != NULL && strstr(gr_last_error(), "DoRA") != NULL);
  CHECK_FAILS(gr_ia3_wrap(m, "layers.1", false, true) == GR_OK, GR_EUNSUPPORTED); /* a ReLU */
  CHECK(strstr(gr_last_error(), "layers.1") != NULL);
  CHECK_OK(gr_ia3_wrap(m, "layers.0", false, true));
  CHECK_FAILS(gr_ia3_wrap(m, "layers.0", false, true) == GR_OK, GR_ESTATE); /* never twice */
  /* IA3 with a zero scale merges but cannot be unmerged */
  gr_module *w = gr_module_find(m->root, "layers.0");
  gr_model_find(m, "layers.0.ia3_l")->data[3] = 0;
  CHECK_OK(gr_peft_merge(w, true));
  CHECK_FAILS(gr_peft_merge(w, false) == GR_OK, GR_ENUMERIC);
  CHECK_FAILS(gr_peft_save(NULL, "x") == GR_OK, GR_EARG);
  gr_model_free(m);

  /* an adapter directory whose shapes do not fit the model: the error names the module */
  m = mlp();
  CHECK_OK(gr_lora_wrap(m, "layers.0", &(gr_lora_opts){.r = 2, .alpha = 4}));
  char dir[256];
  snprintf(dir, sizeof dir, "%s/peft_methods_mismatch", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  CHECK_OK(gr_peft_save(m, dir));
  gr_model *wide = test_mlp(1, 7, 8, 5);
  CHECK_FAILS(gr_peft_load(wide, dir, NULL) == GR_OK, GR_ESHAPE);
  CHECK_MSG(strstr(gr_last_error(), "layers.0.lora_A") != NULL, "error names the module: %s", gr_last_error());
  gr_model_free(wide);
  gr_model_free(m);
}

int main(void) {
  method_case("dora_mlp", DORA, false, true);
  method_case("dora_cnn", DORA, true, true);
  method_case("ia3_mlp", IA3, false, true);
  method_case("ia3_mlp_ff0", IA3_FF0, false, true);
  method_case("ia3_cnn", IA3, true, true);
  method_case("ia3_cnn_ff0", IA3_FF0, true, true);
  method_case("adapter_seq_mlp", ADAPTER_SEQ, false, false);
  method_case("adapter_par_mlp", ADAPTER_PAR, false, false);
  method_case("adapter_scaled_mlp", ADAPTER_SCALED, false, false);
  method_case("adapter_seq_cnn", ADAPTER_SEQ, true, false);
  method_case("adapter_par_cnn", ADAPTER_PAR, true, false);
  method_case("adapter_scaled_cnn", ADAPTER_SCALED, true, false);
  init_cases();
  error_cases();
  return test_summary();
}
