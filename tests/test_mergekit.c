/* mergekit YAML configs: FORMATS §3.1's example and mergekit's ties.yml and
 * gradient-slerp.yml evaluated per tensor against tests/ref/ref_mergekit.py
 * (a transcription of mergekit's evaluate_setting), a write/read round trip,
 * and the rejections with the key and line in the message. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/mergekit.h"
#include "refdata.h"

#define N_LAYERS 5
#define MAX_NAMES 32

static int make_names(char names[][64], const char **ptrs) {
  static const char *suffix[] = {"self_attn.q_proj.weight", "mlp.up_proj.weight", "input_layernorm.weight"};
  int n = 0;
  snprintf(names[n++], 64, "model.embed_tokens.weight");
  for (int i = 0; i < N_LAYERS; i++)
    for (int s = 0; s < 3; s++) snprintf(names[n++], 64, "model.layers.%d.%s", i, suffix[s]);
  snprintf(names[n++], 64, "model.norm.weight");
  snprintf(names[n++], 64, "lm_head.weight");
  for (int i = 0; i < n; i++) ptrs[i] = names[i];
  return n;
}

/* Row layout of ref_mergekit.py: normalize, rescale, lambda, t, (weight, density) per model. */
static void settings_row(const gr_mk_config *c, const char *name, double t, double *row, int width) {
  gr_merge_args a;
  gr_merge_model_params p[8];
  for (int i = 0; i < width; i++) row[i] = NAN;
  gr_status st = gr_mk_resolve(c, name, t, &a, p);
  CHECK_MSG(st == GR_OK, "resolve %s: %s", name, gr_last_error());
  if (st) return;
  int idx[8], n = gr_mk_merge_models(c, idx);
  if (c->method == GR_MERGE_SLERP) row[3] = a.t;
  else {
    row[0] = a.normalize, row[1] = a.rescale, row[2] = a.lambda;
    for (int k = 0; k < n && 5 + 2 * k < width; k++) row[4 + 2 * k] = p[k].weight, row[5 + 2 * k] = p[k].density;
  }
}

static gr_mk_config *load_data(const char *file) {
  char path[512];
  const char *src = getenv("GRAFT_SRC");
  snprintf(path, sizeof path, "%s/tests/data/mergekit/%s", src ? src : ".", file);
  gr_mk_config *c = NULL;
  gr_status st = gr_mk_load(path, &c);
  CHECK_MSG(st == GR_OK, "load %s: %s", path, gr_last_error());
  return c;
}

/* Compares every tensor's settings with the reference, then again after a write/read round trip. */
static void check_config(const char *file, const char *ref_case) {
  gr_mk_config *c = load_data(file);
  ref_file *rf = ref_open(ref_case);
  CHECK(c && rf);
  if (!c || !rf) {
    gr_mk_free(c);
    ref_close(rf);
    return;
  }
  char names[MAX_NAMES][64];
  const char *ptrs[MAX_NAMES];
  int n = make_names(names, ptrs);
  double t[MAX_NAMES];
  gr_mk_layer_positions(ptrs, n, t);
  const ref_array *e = ref_get(rf, "expect");
  int width = (int)e->shape[1];
  CHECK(e->shape[0] == n);
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%s/mergekit_roundtrip_%s", test_tmpdir(), file);
  FILE *fp = fopen(tmp, "w");
  CHECK_OK(gr_mk_write(c, fp));
  fclose(fp);
  gr_mk_config *c2 = NULL;
  CHECK_OK(gr_mk_load(tmp, &c2));
  for (int i = 0; i < n && c2; i++) {
    double row[32], row2[32];
    settings_row(c, names[i], t[i], row, width);
    settings_row(c2, names[i], t[i], row2, width);
    for (int k = 0; k < width; k++) {
      double want = e->data[i * width + k];
      bool ok = isnan(want) ? isnan(row[k]) || k >= 4 : fabs(row[k] - want) <= 1e-6 * (1 + fabs(want));
      CHECK_MSG(ok, "%s %s field %d: got %g want %g", file, names[i], k, row[k], want);
      CHECK_MSG((isnan(row[k]) && isnan(row2[k])) || row[k] == row2[k], "%s round trip %s field %d: %g vs %g", file,
                names[i], k, row[k], row2[k]);
    }
  }
  gr_mk_free(c2);
  gr_mk_free(c);
  ref_close(rf);
}

static void check_fields(void) {
  gr_mk_config *c = load_data("formats_example.yml");
  if (c) {
    CHECK(c->method == GR_MERGE_TIES && c->n_models == 2 && !strcmp(c->base_model, "org/base-7b"));
    CHECK(!strcmp(c->dtype, "bfloat16") && !strcmp(c->tokenizer_source, "base") && !c->from_slices);
  }
  gr_mk_free(c);
  c = load_data("gradient-slerp.yml");
  if (c) {
    CHECK(c->method == GR_MERGE_SLERP && c->from_slices && c->n_models == 2);
    CHECK(c->models[1].layer_range[0] == 0 && c->models[1].layer_range[1] == 40);
    int idx[4];
    CHECK(gr_mk_merge_models(c, idx) == 1 && idx[0] == 1);
  }
  gr_mk_free(c);
  const char *nm[] = {"a.h.0.w", "a.h.1.w", "a.h.2.w", "b.h.0.w", "wte.weight", "x.h.7.w"};
  double t[6];
  gr_mk_layer_positions(nm, 6, t);
  CHECK(t[0] == 0 && t[1] == 0.5 && t[2] == 1 && t[3] == 1 && t[4] == 0 && t[5] == 1);
  CHECK(gr_mk_layer_count(nm, 6) == 8 && gr_mk_layer_count(nm + 4, 1) == 0);
}

/* Parsing text must fail with status st, and the message hold every needle. */
static void expect_reject(const char *yaml, gr_status st, const char *needle1, const char *needle2) {
  gr_mk_config *c = NULL;
  gr_clear_error();
  gr_status got = gr_mk_parse(yaml, strlen(yaml), "cfg.yml", &c);
  const char *m = gr_last_error();
  CHECK_MSG(got == st && c == NULL, "expected %s, got %s (%s) for:\n%s", gr_strerror(st), gr_strerror(got), m, yaml);
  CHECK_MSG(strstr(m, needle1) && (!needle2 || strstr(m, needle2)), "message '%s' lacks '%s' / '%s'", m, needle1,
            needle2 ? needle2 : "");
  gr_mk_free(c);
}

static void check_rejections(void) {
  expect_reject("merge_method: ties\nbase_model: b\n", GR_EFORMAT, "exactly one of", NULL);
  expect_reject("merge_method: ties\nmodels: []\n", GR_EFORMAT, "exactly one of", NULL);
  expect_reject("merge_method: linear\nmodels:\n  - model: a\nslices:\n  - sources: []\n", GR_EFORMAT, "cfg.yml:4:",
                "slices");
  expect_reject("merge_method: linear\nmodels:\n  - model: a\ntokenizer_source: base\ntokenizer:\n  source: union\n",
                GR_EFORMAT, "cfg.yml:5:", "tokenizer_source and tokenizer");
  expect_reject("models:\n  - model: a\nmerge_method: frankenmerge\n", GR_EUNSUPPORTED, "cfg.yml:3:", "frankenmerge");
  expect_reject("merge_method: ties\nbase_model: b\nmodels:\n  - model: a\nparameters:\n  normalize: true\n  densty: 0.5\n",
                GR_EFORMAT, "cfg.yml:7:", "'densty'");
  expect_reject("merge_method: ties\nmodels:\n  - model: a\n    parameters:\n      weight: 1\n      gamma: 0.1\n",
                GR_EFORMAT, "cfg.yml:6:", "'gamma'");
  expect_reject("merge_method: ties\nmodels:\n  - model: a\ncolour: blue\n", GR_EFORMAT, "cfg.yml:4:", "'colour'");
  expect_reject("merge_method: ties\nmodules:\n  text:\n    models: []\n", GR_EUNSUPPORTED, "cfg.yml:2:", "modules");
  expect_reject("merge_method: ties\nmodels:\n  - model: a\n    parameters:\n      weight: [0.1, x]\n", GR_EFORMAT,
                "cfg.yml:5:", "weight");
  expect_reject("merge_method: ties\nmodels: [\n", GR_EFORMAT, "cfg.yml:", "YAML");
  expect_reject("merge_method: linear\nmodels:\n  - model: a\n    extra: 1\n", GR_EFORMAT, "cfg.yml:4:", "'extra'");
  expect_reject("merge_method: slerp\nslices:\n  - sources:\n      - {model: a, layer_range: [0, 4]}\n"
                "  - sources:\n      - {model: a, layer_range: [4, 8]}\n", GR_EUNSUPPORTED, "cfg.yml:", "slices");
  expect_reject("merge_method: slerp\nslices:\n  - sources:\n      - {model: a, layer_range: [0, 4]}\n"
                "      - {model: b, layer_range: [2, 6]}\n", GR_EUNSUPPORTED, "cfg.yml:5:", "layer_range");
  expect_reject("merge_method: ties\ndtype: float8\nmodels:\n  - model: a\n", GR_EUNSUPPORTED, "cfg.yml:2:", "float8");
  expect_reject("- 1\n- 2\n", GR_EFORMAT, "mapping", NULL);

  /* a missing required parameter is found per tensor */
  const char *y = "merge_method: ties\nbase_model: b\nmodels:\n  - model: a\n    parameters:\n      weight:\n"
                  "        - filter: mlp\n          value: 1\n";
  gr_mk_config *c = NULL;
  CHECK_OK(gr_mk_parse(y, strlen(y), "cfg.yml", &c));
  gr_merge_args a;
  gr_merge_model_params p[2];
  CHECK_OK(gr_mk_resolve(c, "model.layers.0.mlp.up_proj.weight", 0, &a, p));
  CHECK(p[0].weight == 1 && a.normalize && !a.rescale);
  CHECK_FAILS(gr_mk_resolve(c, "model.layers.0.self_attn.q_proj.weight", 0, &a, p) == GR_OK, GR_EARG);
  CHECK(strstr(gr_last_error(), "weight") && strstr(gr_last_error(), "self_attn.q_proj"));
  gr_mk_free(c);
  y = "merge_method: slerp\nbase_model: a\nmodels:\n  - model: a\n  - model: b\n";
  CHECK_OK(gr_mk_parse(y, strlen(y), "cfg.yml", &c));
  CHECK_FAILS(gr_mk_resolve(c, "x", 0, &a, p) == GR_OK, GR_EARG);
  CHECK(strstr(gr_last_error(), "'t'") != NULL);
  gr_mk_free(c);
  CHECK_FAILS(gr_mk_load("/nonexistent/merge.yml", &c) == GR_OK, GR_EIO);
  CHECK(strstr(gr_last_error(), "/nonexistent/merge.yml") != NULL);
}

int main(void) {
  check_config("formats_example.yml", "mergekit_formats_example");
  check_config("ties.yml", "mergekit_ties");
  check_config("gradient-slerp.yml", "mergekit_gradient_slerp");
  check_config("dare_global.yml", "mergekit_dare_global");
  check_fields();
  check_rejections();
  return test_summary();
}
