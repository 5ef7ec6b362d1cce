/* PEFT adapter directories: the LoRA layout PEFT saves for a q_proj,v_proj
 * r=8 target on a tiny Llama (keys, shapes, format=pt, config fields),
 * round trip of unknown config keys, PEFT's config validation rules, layout
 * errors, rank/alpha patterns and rsLoRA scaling, IA3 orientation, and the
 * refusal of pickled adapter_model.bin. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/peft_io.h"
#include "testutil.h"

static char dir[512];

/* An adapter_config.json as PEFT 0.1x writes it for LoRA (plus one field PEFT
 * does not know, which graft must keep and list). */
static const char *peft_lora_json =
    "{\n  \"alpha_pattern\": {},\n  \"auto_mapping\": null,\n  \"base_model_name_or_path\": \"tiny-llama\",\n"
    "  \"bias\": \"none\",\n  \"eva_config\": null,\n  \"exclude_modules\": null,\n  \"fan_in_fan_out\": false,\n"
    "  \"inference_mode\": true,\n  \"init_lora_weights\": true,\n  \"layer_replication\": null,\n"
    "  \"layers_pattern\": null,\n  \"layers_to_transform\": null,\n  \"loftq_config\": {},\n  \"lora_alpha\": 16,\n"
    "  \"lora_bias\": false,\n  \"lora_dropout\": 0.05,\n  \"megatron_config\": null,\n  \"megatron_core\": \"megatron.core\",\n"
    "  \"modules_to_save\": null,\n  \"peft_type\": \"LORA\",\n  \"peft_version\": \"0.17.1\",\n  \"r\": 8,\n"
    "  \"rank_pattern\": {\"model.layers.0.self_attn.q_proj\": 4},\n  \"revision\": null,\n"
    "  \"target_modules\": [\n    \"v_proj\",\n    \"q_proj\"\n  ],\n  \"task_type\": \"CAUSAL_LM\",\n"
    "  \"use_dora\": false,\n  \"use_rslora\": false,\n  \"x_graft_custom\": {\"nested\": [1, 2.5, \"s\"]}\n}\n";

static void test_parse_and_roundtrip(void) {
  gr_peft_config *c = NULL;
  CHECK_OK(gr_peft_config_parse(peft_lora_json, strlen(peft_lora_json), "sample", &c));
  if (!c) return;
  CHECK(c->type == GR_PEFT_LORA && c->r == 8 && c->lora_alpha == 16 && fabs(c->lora_dropout - 0.05) < 1e-12);
  CHECK(c->n_target_modules == 2 && !strcmp(c->target_modules[0], "v_proj") && !strcmp(c->bias, "none"));
  CHECK(!strcmp(c->task_type, "CAUSAL_LM") && !strcmp(c->base_model_name_or_path, "tiny-llama") && c->inference_mode);
  CHECK(c->n_unknown_keys == 1 && !strcmp(c->unknown_keys[0], "x_graft_custom"));
  CHECK(gr_peft_module_rank(c, "model.layers.0.self_attn.q_proj") == 4);
  CHECK(gr_peft_module_rank(c, "model.layers.1.self_attn.q_proj") == 8);
  CHECK(gr_peft_targets(c, "model.layers.3.self_attn.q_proj") && !gr_peft_targets(c, "model.layers.3.self_attn.k_proj"));
  CHECK(!gr_peft_targets(c, "model.layers.3.self_attn.xq_proj"));
  char *out = gr_peft_config_to_json(c);
  CHECK_PTR(out);
  gr_peft_config *c2 = NULL;
  CHECK_OK(gr_peft_config_parse(out, strlen(out), "roundtrip", &c2));
  cJSON *a = cJSON_Parse(peft_lora_json), *b = cJSON_Parse(out);
  CHECK(cJSON_Compare(a, b, true)); /* every key and value survives */
  CHECK(out && !strncmp(out, "{\n  \"alpha_pattern\": {},\n  \"auto_mapping\": null,\n", 49)); /* PEFT's layout */
  CHECK(out && out[strlen(out) - 1] == '\n');
  cJSON_Delete(a);
  cJSON_Delete(b);
  gr_free(out);
  gr_peft_config_free(c2);
  /* patterns and rsLoRA */
  gr_free(c->alpha_pattern); /* the parsed "{}" */
  c->alpha_pattern = gr_calloc(1, sizeof *c->alpha_pattern);
  c->alpha_pattern[0] = (gr_peft_pattern){strdup("v_proj"), 32};
  c->n_alpha_pattern = 1;
  CHECK_NEAR(gr_peft_scaling(c, "model.layers.1.self_attn.v_proj"), 32.0 / 8, 1e-12);
  CHECK_NEAR(gr_peft_scaling(c, "model.layers.0.self_attn.q_proj"), 16.0 / 4, 1e-12);
  c->use_rslora = true;
  CHECK_NEAR(gr_peft_scaling(c, "model.layers.1.self_attn.q_proj"), 16.0 / sqrt(8), 1e-12);
  free(c->alpha_pattern[0].key);
  c->alpha_pattern[0].key = NULL;
  gr_peft_config_free(c);
}

static void expect_bad_config(const char *what, const char *json) {
  gr_peft_config *c = NULL;
  gr_status st = gr_peft_config_parse(json, strlen(json), what, &c);
  CHECK_MSG(st == GR_EFORMAT && !c && strstr(gr_last_error(), what), "%s: expected GR_EFORMAT, got %s (%s)", what,
            gr_strerror(st), gr_last_error());
  gr_peft_config_free(c);
}

static void test_config_rules(void) {
  expect_bad_config("no peft_type", "{\"r\": 8}");
  expect_bad_config("not object", "[\"LORA\"]");
  expect_bad_config("bad json", "{\"peft_type\": \"LORA\",}");
  expect_bad_config("trailing", "{\"peft_type\": \"LORA\"} x");
  expect_bad_config("duplicate key", "{\"peft_type\": \"LORA\", \"r\": 8, \"r\": 16}");
  expect_bad_config("r zero", "{\"peft_type\": \"LORA\", \"r\": 0}");
  expect_bad_config("regex bomb", "{\"peft_type\": \"LORA\", \"rank_pattern\": {\"_++++++++++++++bit{\": 4}}");
  expect_bad_config("nested bounds", "{\"peft_type\": \"LORA\", \"target_modules\": \"((a{9}){9}){9}\"}");
  expect_bad_config("r huge", "{\"peft_type\": \"LORA\", \"r\": 1e50}");
  expect_bad_config("r float", "{\"peft_type\": \"LORA\", \"r\": 1.5}");
  expect_bad_config("r string", "{\"peft_type\": \"LORA\", \"r\": \"8\"}");
  expect_bad_config("bias", "{\"peft_type\": \"LORA\", \"bias\": \"some\"}");
  expect_bad_config("bool type", "{\"peft_type\": \"LORA\", \"use_dora\": 1}");
  expect_bad_config("targets type", "{\"peft_type\": \"LORA\", \"target_modules\": [1]}");
  expect_bad_config("string target + layers",
                    "{\"peft_type\": \"LORA\", \"target_modules\": \".*q_proj\", \"layers_to_transform\": [0]}");
  expect_bad_config("pattern without layers", "{\"peft_type\": \"LORA\", \"layers_pattern\": \"layers\"}");
  expect_bad_config("loftq", "{\"peft_type\": \"LORA\", \"init_lora_weights\": \"loftq\", \"loftq_config\": {}}");
  expect_bad_config("rank_pattern value", "{\"peft_type\": \"LORA\", \"rank_pattern\": {\"q\": \"4\"}}");
  expect_bad_config("inf number", "{\"peft_type\": \"LORA\", \"x\": [1e999]}"); /* could not be written back */
  expect_bad_config("ia3 ff subset",
                    "{\"peft_type\": \"IA3\", \"target_modules\": [\"k_proj\"], \"feedforward_modules\": [\"down_proj\"]}");
  gr_peft_config *c = NULL;
  const char *prompt = "{\"peft_type\": \"PREFIX_TUNING\", \"num_virtual_tokens\": 20, \"task_type\": null}";
  CHECK_OK(gr_peft_config_parse(prompt, strlen(prompt), "prefix", &c));
  CHECK(c && c->type == GR_PEFT_OTHER && !c->task_type);
  gr_peft_config_free(c);
  const char *regex = "{\"peft_type\": \"LORA\", \"target_modules\": \".*\\\\.(q|v)_proj\"}";
  CHECK_OK(gr_peft_config_parse(regex, strlen(regex), "regex", &c));
  CHECK(c && gr_peft_targets(c, "model.layers.0.self_attn.q_proj") && !gr_peft_targets(c, "model.layers.0.mlp.up_proj"));
  gr_peft_config_free(c);
}

/* The FORMATS.md §5 item 6 layout, saved and reopened. */
static void test_lora_dir(void) {
  const char *targets[] = {"q_proj", "v_proj"};
  gr_peft_config *c = gr_peft_config_new(GR_PEFT_LORA, 8, 16, targets, 2);
  CHECK_PTR(c);
  if (!c) return;
  c->task_type = strdup("CAUSAL_LM");
  c->base_model_name_or_path = strdup("tiny-llama");
  gr_arena *a = gr_arena_new(1 << 16);
  gr_ckpt_tensor ts[8];
  char names[8][160];
  int k = 0;
  for (int layer = 0; layer < 2; layer++)
    for (int p = 0; p < 2; p++) {
      char module[100];
      snprintf(module, sizeof module, "model.layers.%d.self_attn.%s", layer, targets[p]);
      int64_t in = 16, out = p ? 8 : 16;
      gr_peft_key(names[k], sizeof names[k], module, "lora_A.weight");
      ts[k] = (gr_ckpt_tensor){names[k], gr_tensor_new_in(a, 2, GR_SHAPE(8, in), false)};
      k++;
      gr_peft_key(names[k], sizeof names[k], module, "lora_B.weight");
      ts[k] = (gr_ckpt_tensor){names[k], gr_tensor_new_in(a, 2, GR_SHAPE(out, 8), false)};
      k++;
    }
  CHECK(!strcmp(names[0], "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  CHECK_OK(gr_peft_dir_save(dir, c, ts, 8));
  gr_peft_config *c2 = NULL;
  gr_st_file *w = NULL;
  CHECK_OK(gr_peft_dir_open(dir, &c2, &w));
  CHECK(w && gr_st_count(w) == 8 && !strcmp(gr_st_metadata_get(w, "format"), "pt") && gr_st_metadata_count(w) == 1);
  for (int i = 0; w && i < 8; i++) {
    const gr_st_tensor *t = gr_st_find(w, names[i]);
    CHECK_MSG(t && t->dtype == GR_DT_F32 && t->ndim == 2 && t->shape[0] == (uint64_t)ts[i].t->shape[0] &&
                  t->shape[1] == (uint64_t)ts[i].t->shape[1], "%s", names[i]);
  }
  CHECK(c2 && c2->r == 8 && c2->lora_alpha == 16 && c2->n_target_modules == 2 && !c2->use_rslora && !c2->use_dora);
  gr_st_close(w);
  gr_peft_config_free(c2);
  /* the config file has PEFT's required fields with PEFT's types */
  char path[700];
  snprintf(path, sizeof path, "%s/adapter_config.json", dir);
  FILE *fp = fopen(path, "r");
  char text[8192] = {0};
  if (fp) {
    (void)!fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
  }
  cJSON *j = cJSON_Parse(text);
  CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "peft_type")) && !strcmp(cJSON_GetObjectItem(j, "peft_type")->valuestring, "LORA"));
  CHECK(cJSON_GetObjectItem(j, "r")->valuedouble == 8 && cJSON_GetObjectItem(j, "lora_alpha")->valuedouble == 16);
  CHECK(cJSON_IsArray(cJSON_GetObjectItem(j, "target_modules")) && cJSON_GetArraySize(cJSON_GetObjectItem(j, "target_modules")) == 2);
  CHECK(!strcmp(cJSON_GetObjectItem(j, "bias")->valuestring, "none"));
  CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "use_rslora")) && cJSON_IsFalse(cJSON_GetObjectItem(j, "use_dora")));
  CHECK(!strcmp(cJSON_GetObjectItem(j, "task_type")->valuestring, "CAUSAL_LM"));
  CHECK(!strcmp(cJSON_GetObjectItem(j, "base_model_name_or_path")->valuestring, "tiny-llama"));
  cJSON_Delete(j);
  /* layout errors are refused before anything is written */
  gr_ckpt_tensor bad[2] = {ts[0], {names[1], gr_tensor_new_in(a, 2, GR_SHAPE(16, 4), false)}};
  CHECK_FAILS(gr_peft_dir_save(dir, c, bad, 2) == GR_OK, GR_EFORMAT); /* B rank 4 != 8 */
  CHECK_FAILS(gr_peft_dir_save(dir, c, ts, 1) == GR_OK, GR_EFORMAT);  /* A without B */
  gr_ckpt_tensor noprefix = {"model.layers.0.self_attn.q_proj.lora_A.weight", ts[0].t};
  CHECK_FAILS(gr_peft_dir_save(dir, c, &noprefix, 1) == GR_OK, GR_EFORMAT);
  char kname[160], mname[160];
  gr_peft_key(kname, sizeof kname, "model.layers.0.self_attn.k_proj", "lora_A.weight");
  gr_peft_key(mname, sizeof mname, "model.layers.0.self_attn.k_proj", "lora_B.weight");
  gr_ckpt_tensor untargeted[2] = {{kname, ts[0].t}, {mname, ts[1].t}};
  CHECK_FAILS(gr_peft_dir_save(dir, c, untargeted, 2) == GR_OK, GR_EFORMAT);
  gr_peft_key(mname, sizeof mname, "model.layers.0.self_attn.q_proj", "lora_magnitude_vector");
  gr_ckpt_tensor dora[3] = {ts[0], ts[1], {mname, gr_tensor_new_in(a, 1, GR_SHAPE(16), false)}};
  CHECK_FAILS(gr_peft_dir_save(dir, c, dora, 3) == GR_OK, GR_EFORMAT); /* use_dora false */
  c->use_dora = true;
  CHECK_OK(gr_peft_dir_save(dir, c, dora, 3));
  gr_arena_free(a);
  gr_peft_config_free(c);
}

static void test_ia3_and_pickle(void) {
  const char *targets[] = {"k_proj", "down_proj"};
  gr_peft_config *c = gr_peft_config_new(GR_PEFT_IA3, 1, 1, targets, 2);
  CHECK_PTR(c);
  if (!c) return;
  c->feedforward_modules = gr_calloc(1, sizeof(char *));
  c->feedforward_modules[0] = strdup("down_proj");
  c->n_feedforward_modules = 1;
  gr_arena *a = gr_arena_new(1 << 12);
  char k[160], d[160];
  gr_peft_key(k, sizeof k, "model.layers.0.self_attn.k_proj", "ia3_l");
  gr_peft_key(d, sizeof d, "model.layers.0.mlp.down_proj", "ia3_l");
  gr_tensor *lk = gr_tensor_new_in(a, 2, GR_SHAPE(8, 1), false), *ld = gr_tensor_new_in(a, 2, GR_SHAPE(1, 32), false);
  gr_ckpt_tensor ok[2] = {{k, lk}, {d, ld}}, swapped[2] = {{k, ld}, {d, lk}};
  char sub[600];
  snprintf(sub, sizeof sub, "%s/ia3", dir);
  CHECK_OK(gr_peft_dir_save(sub, c, ok, 2));
  CHECK_FAILS(gr_peft_dir_save(sub, c, swapped, 2) == GR_OK, GR_EFORMAT);
  gr_peft_config *c2 = NULL;
  gr_st_file *w = NULL;
  CHECK_OK(gr_peft_dir_open(sub, &c2, &w));
  CHECK(c2 && c2->type == GR_PEFT_IA3 && c2->n_feedforward_modules == 1 && gr_peft_is_feedforward(c2, "model.layers.0.mlp.down_proj"));
  gr_st_close(w);
  gr_peft_config_free(c2);
  /* only a pickle: refused */
  char pk[600], path[700];
  snprintf(pk, sizeof pk, "%s/pickle", dir);
  mkdir(pk, 0755);
  snprintf(path, sizeof path, "%s/adapter_model.bin", pk);
  FILE *fp = fopen(path, "w");
  fputs("\x80\x02}q\x00.", fp);
  fclose(fp);
  snprintf(path, sizeof path, "%s/adapter_config.json", pk);
  fp = fopen(path, "w");
  fputs("{\"peft_type\": \"LORA\"}", fp);
  fclose(fp);
  CHECK_FAILS(gr_peft_dir_open(pk, &c2, &w) == GR_OK, GR_EUNSUPPORTED);
  CHECK(!c2 && !w);
  gr_arena_free(a);
  gr_peft_config_free(c);
}

/* Every config of the fuzz corpus (incl. fuzzer finds): parse; when valid,
 * print, re-parse and print again: graft reads what it writes, and printing
 * is idempotent. */
static void test_corpus_roundtrip(void) {
  char cdir[1024];
  const char *src = getenv("GRAFT_SRC");
  snprintf(cdir, sizeof cdir, "%s/tests/fuzz/corpus/peft_config", src ? src : ".");
  DIR *d = opendir(cdir);
  CHECK_PTR(d);
  int files = 0, valid = 0;
  for (struct dirent *e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", cdir, e->d_name);
    size_t n;
    char *text = (char *)test_read_file(path, &n);
    if (!text) continue;
    files++;
    gr_peft_config *c = NULL, *c2 = NULL;
    if (gr_peft_config_parse(text, n, e->d_name, &c) == GR_OK) {
      valid++;
      char *out = gr_peft_config_to_json(c);
      CHECK_MSG(out && gr_peft_config_parse(out, strlen(out), e->d_name, &c2) == GR_OK, "%s: re-parse: %s", e->d_name, gr_last_error());
      char *out2 = c2 ? gr_peft_config_to_json(c2) : NULL;
      CHECK_MSG(out && out2 && !strcmp(out, out2), "%s: printing is not idempotent", e->d_name);
      gr_free(out);
      gr_free(out2);
    }
    gr_peft_config_free(c);
    gr_peft_config_free(c2);
    free(text);
  }
  if (d) closedir(d);
  CHECK(files >= 8 && valid >= 4);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s/peft_%d", test_tmpdir(), (int)getpid());
  test_parse_and_roundtrip();
  test_config_rules();
  test_lora_dir();
  test_ia3_and_pickle();
  test_corpus_roundtrip();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
  return test_summary();
}
