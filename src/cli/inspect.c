/* cli/inspect.c — `graft inspect FILE|DIR`: what is in a safetensors file, a
 * sharded model (directory or index JSON) or a PEFT adapter directory:
 * tensors with dtype, shape, bytes and offsets, metadata, totals per dtype,
 * the adapter config (and the keys PEFT does not know). --json prints one
 * JSON object instead. A bad file is exit 1 with "graft: error: FILE: why". */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "graft/peft_io.h"

typedef struct totals {
  uint64_t tensors, params, bytes;
  uint64_t count[GR_DT_COUNT], dt_bytes[GR_DT_COUNT];
} totals;

static void shape_text(const gr_st_tensor *t, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < t->ndim && k < n; d++) k += (size_t)snprintf(buf + k, n - k, "%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
  if (k < n) snprintf(buf + k, n - k, "]");
}

static void add_totals(totals *s, const gr_st_tensor *t) {
  s->tensors++;
  s->params += t->numel;
  s->bytes += t->nbytes;
  s->count[t->dtype]++;
  s->dt_bytes[t->dtype] += t->nbytes;
}

static void print_file_text(const gr_st_file *f, totals *s) {
  printf("%s: %zu tensors, header %llu bytes, file %llu bytes\n", gr_st_path(f), gr_st_count(f),
         (unsigned long long)gr_st_header_len(f), (unsigned long long)gr_st_file_len(f));
  if (gr_st_metadata_count(f)) printf("  metadata:\n");
  for (size_t i = 0; i < gr_st_metadata_count(f); i++) {
    const char *k, *v;
    gr_st_metadata_at(f, i, &k, &v);
    printf("    %s = %s\n", k, v);
  }
  if (gr_st_count(f)) printf("  %-48s %-8s %-20s %12s  %s\n", "tensor", "dtype", "shape", "bytes", "data_offsets");
  for (size_t i = 0; i < gr_st_count(f); i++) {
    const gr_st_tensor *t = gr_st_at(f, i);
    char shape[256];
    shape_text(t, shape, sizeof shape);
    printf("  %-48s %-8s %-20s %12llu  [%llu, %llu)\n", t->name, gr_dtype_name(t->dtype), shape,
           (unsigned long long)t->nbytes, (unsigned long long)t->begin, (unsigned long long)t->end);
    add_totals(s, t);
  }
}

static void print_totals_text(const totals *s) {
  printf("total: %llu tensors, %llu parameters, %llu bytes of tensor data\n", (unsigned long long)s->tensors,
         (unsigned long long)s->params, (unsigned long long)s->bytes);
  for (int d = GR_DT_COUNT - 1; d >= 0; d--)
    if (s->count[d])
      printf("  %-8s %llu tensors, %llu bytes\n", gr_dtype_name((gr_dtype)d), (unsigned long long)s->count[d],
             (unsigned long long)s->dt_bytes[d]);
}

static cJSON *file_json(const gr_st_file *f, totals *s) {
  cJSON *o = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(o, "metadata"), *ts = cJSON_CreateArray();
  cJSON_AddStringToObject(o, "file", gr_st_path(f));
  cJSON_AddNumberToObject(o, "header_bytes", (double)gr_st_header_len(f));
  cJSON_AddNumberToObject(o, "file_bytes", (double)gr_st_file_len(f));
  for (size_t i = 0; i < gr_st_metadata_count(f); i++) {
    const char *k, *v;
    gr_st_metadata_at(f, i, &k, &v);
    cJSON_AddStringToObject(meta, k, v);
  }
  for (size_t i = 0; i < gr_st_count(f); i++) {
    const gr_st_tensor *t = gr_st_at(f, i);
    cJSON *e = cJSON_CreateObject(), *shape = cJSON_AddArrayToObject(e, "shape");
    cJSON_AddStringToObject(e, "name", t->name);
    cJSON_AddStringToObject(e, "dtype", gr_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
    cJSON_AddNumberToObject(e, "bytes", (double)t->nbytes);
    cJSON *off = cJSON_AddArrayToObject(e, "data_offsets");
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)t->begin));
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)t->end));
    cJSON_AddNumberToObject(e, "file_offset", (double)t->file_offset);
    cJSON_AddItemToArray(ts, e);
    add_totals(s, t);
  }
  cJSON_AddItemToObject(o, "tensors", ts);
  return o;
}

static cJSON *totals_json(const totals *s) {
  cJSON *o = cJSON_CreateObject(), *by = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "tensors", (double)s->tensors);
  cJSON_AddNumberToObject(o, "parameters", (double)s->params);
  cJSON_AddNumberToObject(o, "bytes", (double)s->bytes);
  for (int d = GR_DT_COUNT - 1; d >= 0; d--)
    if (s->count[d]) cJSON_AddNumberToObject(by, gr_dtype_name((gr_dtype)d), (double)s->dt_bytes[d]);
  cJSON_AddItemToObject(o, "bytes_by_dtype", by);
  return o;
}

static void print_json_and_free(cJSON *o) {
  char *text = cJSON_Print(o);
  printf("%s\n", text ? text : "null");
  cJSON_free(text);
  cJSON_Delete(o);
}

static void print_adapter_text(const gr_peft_config *c) {
  printf("PEFT adapter: peft_type %s, task_type %s, base model %s\n", c->peft_type, c->task_type ? c->task_type : "null",
         c->base_model_name_or_path ? c->base_model_name_or_path : "null");
  if (c->type == GR_PEFT_LORA)
    printf("  r %d, lora_alpha %g, scaling %g%s%s, bias %s, dropout %g\n", c->r, c->lora_alpha, gr_peft_scaling(c, NULL),
           c->use_rslora ? " (rslora)" : "", c->use_dora ? ", dora" : "", c->bias, c->lora_dropout);
  printf("  target_modules:");
  if (c->target_modules_regex) printf(" %s (regex)", c->target_modules_regex);
  for (int i = 0; i < c->n_target_modules; i++) printf(" %s", c->target_modules[i]);
  printf("\n");
  for (int i = 0; i < c->n_rank_pattern; i++) printf("  rank_pattern %s = %g\n", c->rank_pattern[i].key, c->rank_pattern[i].value);
  for (int i = 0; i < c->n_alpha_pattern; i++) printf("  alpha_pattern %s = %g\n", c->alpha_pattern[i].key, c->alpha_pattern[i].value);
  for (int i = 0; i < c->n_unknown_keys; i++) printf("  unknown config key (kept, not used): %s\n", c->unknown_keys[i]);
}

static int inspect_adapter(const char *dir, bool json) {
  gr_peft_config *c = NULL;
  gr_st_file *f = NULL;
  if (gr_peft_dir_open(dir, &c, &f)) return cli_fail_file(dir);
  totals s = {0};
  if (json) {
    cJSON *o = cJSON_CreateObject(), *files = cJSON_CreateArray(), *unk = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "path", dir);
    cJSON_AddStringToObject(o, "kind", "peft_adapter");
    cJSON_AddItemToObject(o, "adapter_config", cJSON_Duplicate(c->json, true));
    for (int i = 0; i < c->n_unknown_keys; i++) cJSON_AddItemToArray(unk, cJSON_CreateString(c->unknown_keys[i]));
    cJSON_AddItemToObject(o, "unknown_config_keys", unk);
    cJSON_AddItemToArray(files, file_json(f, &s));
    cJSON_AddItemToObject(o, "files", files);
    cJSON_AddItemToObject(o, "totals", totals_json(&s));
    print_json_and_free(o);
  } else {
    print_adapter_text(c);
    print_file_text(f, &s);
    print_totals_text(&s);
  }
  gr_peft_config_free(c);
  gr_st_close(f);
  return CLI_OK;
}

static int inspect_model(const char *path, bool json) {
  gr_st_model *m = NULL;
  if (gr_st_model_open(path, &m)) return cli_fail_file(path);
  totals s = {0};
  const char *index = gr_st_model_index_path(m);
  if (json) {
    cJSON *o = cJSON_CreateObject(), *files = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddStringToObject(o, "kind", index ? "sharded" : "safetensors");
    if (index) cJSON_AddStringToObject(o, "index", index);
    for (size_t i = 0; i < gr_st_model_shards(m); i++) cJSON_AddItemToArray(files, file_json(gr_st_model_shard(m, i), &s));
    cJSON_AddItemToObject(o, "files", files);
    cJSON_AddItemToObject(o, "totals", totals_json(&s));
    print_json_and_free(o);
  } else {
    if (index) printf("sharded model: %s (%zu shards)\n", index, gr_st_model_shards(m));
    for (size_t i = 0; i < gr_st_model_shards(m); i++) print_file_text(gr_st_model_shard(m, i), &s);
    print_totals_text(&s);
  }
  gr_st_model_close(m);
  return CLI_OK;
}

int cmd_inspect(int argc, char **argv) {
  bool json = false;
  const cli_opt opts[] = {{"--json", CLI_BOOL, &json, "print one JSON object"}};
  cli_spec spec = {"inspect", "graft inspect FILE|DIR [--json]",
                   "List the tensors (name, dtype, shape, bytes, data offsets), metadata and totals of a safetensors "
                   "file, a model directory (model.safetensors or shards + model.safetensors.index.json) or a PEFT "
                   "adapter directory (adapter_config.json + adapter_model.safetensors). Every file is fully "
                   "validated; tensor data is not read.",
                   opts, 1, 1, 1};
  const char *pos[1];
  int np = 0, rc = cli_parse(&spec, argc, argv, pos, &np);
  if (rc == CLI_HELP) return CLI_OK;
  if (rc) return rc;
  struct stat sb;
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "%s/adapter_config.json", pos[0]);
  if (!stat(pos[0], &sb) && S_ISDIR(sb.st_mode) && !stat(cfg, &sb)) return inspect_adapter(pos[0], json);
  return inspect_model(pos[0], json);
}
