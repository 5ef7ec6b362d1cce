/* transfer/modeldir.c — saving and loading model directories (see
 * graft/modeldir.h): safetensors through the io layer, config.json with
 * cJSON, both written atomically. An "onnx_graph" directory (graft import)
 * builds its module tree from the graph in config.json (io/onnx_module.c). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "graft/modeldir.h"
#include "graft/peft.h"
#include "graft/safetensors.h"
#include "graft/fileio.h"
#include "graft/onnx.h"
#include "io/onnx_json.h"

/* config.json of an imported graph holds the whole graph */
#define CONFIG_MAX_BYTES ((size_t)64 << 20)

static const char *join(char *buf, size_t n, const char *dir, const char *name) {
  snprintf(buf, n, "%s/%s", dir, name);
  return buf;
}

static gr_status config_write(const gr_model *m, const gr_model_config *cfg, const char *path) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return gr_error(GR_ENOMEM, "config.json: out of memory");
  cJSON_AddStringToObject(o, "architecture", cfg->arch);
  cJSON_AddNumberToObject(o, "in_channels", cfg->in_ch);
  cJSON_AddNumberToObject(o, "height", cfg->h);
  cJSON_AddNumberToObject(o, "width", cfg->w);
  cJSON_AddNumberToObject(o, "num_classes", cfg->n_classes);
  cJSON_AddStringToObject(o, "data", cfg->data);
  cJSON_AddStringToObject(o, "framework", "graft");
  gr_status gs = gr_onnx_module_is(m->root) ? ox_module_write_config(m->root, o) : GR_OK;
  if (gs) {
    cJSON_Delete(o);
    return gs;
  }
  char *txt = cJSON_Print(o);
  cJSON_Delete(o);
  if (!txt) return gr_error(GR_ENOMEM, "config.json: out of memory");
  size_t n = strlen(txt);
  char *buf = malloc(n + 2);
  gr_status s = buf ? GR_OK : gr_error(GR_ENOMEM, "config.json: out of memory");
  if (!s) {
    memcpy(buf, txt, n);
    buf[n] = '\n';
    s = gr_write_file_atomic(path, buf, n + 1);
  }
  free(buf);
  cJSON_free(txt);
  return s;
}

gr_status gr_model_save_weights(const gr_model *m, const char *path) {
  if (!m || !path) return gr_error(GR_EARG, "save weights: NULL argument");
  int n = m->n_entries;
  gr_st_entry *e = gr_calloc((size_t)n + 1, sizeof *e);
  const void **datas = gr_calloc((size_t)n + 1, sizeof *datas);
  gr_status s = e && datas ? GR_OK : gr_error(GR_ENOMEM, "save weights: out of memory");
  for (int i = 0; !s && i < n; i++) {
    const gr_tensor *t = m->entries[i].t;
    e[i] = (gr_st_entry){m->entries[i].name, GR_DT_F32, t->ndim, t->shape};
    datas[i] = t->data;
  }
  gr_st_kv meta[] = {{"format", "pt"}};
  if (!s) s = gr_st_save(path, e, datas, (size_t)n, meta, 1);
  gr_free(e);
  gr_free(datas);
  return s;
}

gr_status gr_model_save_dir(const gr_model *m, const gr_model_config *cfg, const char *dir) {
  if (!m || !cfg || !dir) return gr_error(GR_EARG, "save model: NULL argument");
  char path[1100];
  gr_status s = gr_model_save_weights(m, join(path, sizeof path, dir, "model.safetensors"));
  if (!s) s = config_write(m, cfg, join(path, sizeof path, dir, "config.json"));
  return s;
}

static bool ignorable(const char *name) {
  const char *suf = ".num_batches_tracked";
  size_t n = strlen(name), k = strlen(suf);
  return n >= k && !strcmp(name + n - k, suf);
}

static gr_status load_one(gr_named_tensor *e, const gr_st_tensor *st, const char *path) {
  bool same = st->ndim == e->t->ndim;
  for (int d = 0; same && d < st->ndim; d++) same = (int64_t)st->shape[d] == e->t->shape[d];
  if (!same) {
    char a[64];
    return gr_error(GR_ESHAPE, "%s: tensor '%s' has %d dims / %llu elements, the model wants %s", path, e->name,
                    st->ndim, (unsigned long long)st->numel, gr_shape_str(e->t, a, sizeof a));
  }
  return gr_st_read_f32(st, e->t->data, (uint64_t)e->t->numel);
}

gr_status gr_model_load_weights(gr_model *m, const char *path, bool strict) {
  if (!m || !path) return gr_error(GR_EARG, "load weights: NULL argument");
  gr_st_file *f = NULL;
  gr_status s = gr_st_open(path, &f);
  if (s) return s;
  int found = 0;
  for (int i = 0; !s && i < m->n_entries; i++) {
    const gr_st_tensor *st = gr_st_find(f, m->entries[i].name);
    if (!st) {
      if (strict) s = gr_error(GR_ENOTFOUND, "%s: tensor '%s' is missing", path, m->entries[i].name);
      else gr_clear_error();
      continue;
    }
    s = load_one(&m->entries[i], st, path);
    found++;
  }
  for (size_t i = 0; !s && strict && i < gr_st_count(f); i++) {
    const char *name = gr_st_at(f, i)->name;
    bool known = ignorable(name);
    for (int j = 0; !known && j < m->n_entries; j++) known = !strcmp(m->entries[j].name, name);
    if (!known) s = gr_error(GR_EFORMAT, "%s: tensor '%s' is not a parameter of this model", path, name);
  }
  if (!s && found == 0) s = gr_error(GR_ENOTFOUND, "%s: no tensor matches the model", path);
  gr_st_close(f);
  return s;
}

static int json_int(const cJSON *o, const char *key, int lo, int hi, const char *path, gr_status *s) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (*s) return 0;
  if (!cJSON_IsNumber(v) || v->valuedouble != (int)v->valuedouble || v->valueint < lo || v->valueint > hi) {
    *s = gr_error(GR_EFORMAT, "%s: \"%s\" must be an integer in %d..%d", path, key, lo, hi);
    return 0;
  }
  return v->valueint;
}

gr_status gr_model_config_read(const char *path, gr_model_config *cfg) {
  if (!path || !cfg) return gr_error(GR_EARG, "config: NULL argument");
  memset(cfg, 0, sizeof *cfg);
  char *buf = NULL;
  size_t n = 0;
  gr_status rs = gr_read_file(path, CONFIG_MAX_BYTES, &buf, &n);
  if (rs == GR_ENOTFOUND) return gr_error(GR_ENOTFOUND, "%s: cannot open (not a model directory?)", path);
  if (rs) return rs;
  cJSON *o = cJSON_ParseWithLength(buf, n);
  gr_free(buf);
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    return gr_error(GR_EFORMAT, "%s: not a JSON object", path);
  }
  gr_status s = GR_OK;
  const cJSON *arch = cJSON_GetObjectItemCaseSensitive(o, "architecture");
  if (!cJSON_IsString(arch) || strlen(arch->valuestring) >= sizeof cfg->arch)
    s = gr_error(GR_EFORMAT, "%s: \"architecture\" must be a string", path);
  else snprintf(cfg->arch, sizeof cfg->arch, "%s", arch->valuestring);
  cfg->in_ch = json_int(o, "in_channels", 1, 4096, path, &s);
  cfg->h = json_int(o, "height", 1, 65536, path, &s);
  cfg->w = json_int(o, "width", 1, 65536, path, &s);
  cfg->n_classes = json_int(o, "num_classes", 1, 1000000, path, &s);
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
  if (cJSON_IsString(data)) snprintf(cfg->data, sizeof cfg->data, "%s", data->valuestring);
  cJSON_Delete(o);
  return s;
}

gr_status gr_model_load_dir(const char *dir, uint64_t seed, gr_model_config *cfg, gr_model **out) {
  if (!dir || !cfg || !out) return gr_error(GR_EARG, "load model: NULL argument");
  *out = NULL;
  char path[1100];
  gr_status s = gr_model_config_read(join(path, sizeof path, dir, "config.json"), cfg);
  if (s) return s;
  gr_model *m = gr_model_new(seed);
  gr_module *root = NULL;
  if (m && !strcmp(cfg->arch, "onnx_graph")) {
    char weights[1100];
    gr_onnx_module_shape shape = {cfg->in_ch, cfg->h, cfg->w, cfg->n_classes};
    root = gr_onnx_module_build(m, path, join(weights, sizeof weights, dir, "model.safetensors"), &shape);
  } else if (m) {
    root = gr_arch_build(m, cfg->arch, cfg->in_ch, cfg->h, cfg->w, cfg->n_classes);
  }
  s = root ? gr_model_set_root(m, root) : gr_last_status();
  /* a PEFT run's directory (graft finetune --peft) holds the adapted model:
   * wrap it as its adapter_config.json says before loading */
  if (!s && !access(join(path, sizeof path, dir, "adapter_config.json"), F_OK)) {
    gr_peft_config *pc = NULL;
    s = gr_peft_config_read(path, &pc);
    if (!s) s = gr_peft_apply(m, pc, GR_LORA_INIT_PEFT, NULL);
    gr_peft_config_free(pc);
  }
  if (!s) s = gr_model_load_weights(m, join(path, sizeof path, dir, "model.safetensors"), true);
  if (s) {
    gr_model_free(m);
    return s;
  }
  *out = m;
  return GR_OK;
}
