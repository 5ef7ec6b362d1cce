/* io/peft_dir.c — PEFT adapter directories: tensor key names and shapes as
 * PEFT saves them (FORMATS.md §2.2), checked against the config, and
 * saving/opening adapter_config.json + adapter_model.safetensors. The config
 * itself is parsed and printed in peft_config.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/peft_io.h"
#include "io/st_internal.h"

#define PREFIX "base_model.model."

gr_status gr_peft_key(char *buf, size_t n, const char *module, const char *suffix) {
  if (!buf || !module || !suffix) return gr_error(GR_EARG, "gr_peft_key: NULL argument");
  int k = snprintf(buf, n, PREFIX "%s.%s", module, suffix);
  if (k < 0 || (size_t)k >= n) return gr_error(GR_EARG, "gr_peft_key: key for module '%.100s' does not fit", module);
  return GR_OK;
}

/* Splits "base_model.model.<module><suffix>" for a known adapter suffix;
 * module written into buf. Returns the suffix or NULL. */
static const char *adapter_suffix(const char *name, char *module, size_t n) {
  size_t nl = strlen(name), pl = strlen(PREFIX);
  static const char *const all[] = {".lora_A.weight", ".lora_B.weight", ".lora_B.bias", ".lora_embedding_A",
                                    ".lora_embedding_B", ".lora_magnitude_vector", ".ia3_l",
                                    ".adapter_down.weight", ".adapter_down.bias", ".adapter_up.weight",
                                    ".adapter_up.bias"};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
    size_t sl = strlen(all[i]);
    if (nl > pl + sl && !strncmp(name, PREFIX, pl) && !strcmp(name + nl - sl, all[i])) {
      snprintf(module, n, "%.*s", (int)(nl - pl - sl), name + pl);
      return all[i];
    }
  }
  return NULL;
}

static const gr_st_entry *find_entry(const gr_st_entry *e, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(e[i].name, name)) return &e[i];
  return NULL;
}

/* The partner tensor of the same module ("<prefix><module><suffix>"). */
static const gr_st_entry *partner(const gr_st_entry *e, size_t n, const char *module, const char *suffix) {
  char key[1100];
  snprintf(key, sizeof key, PREFIX "%s%s", module, suffix);
  return find_entry(e, n, key);
}

static gr_status shape_err(const gr_st_entry *t, const char *want) {
  char got[160] = "[";
  for (int d = 0; d < t->ndim && strlen(got) < 120; d++)
    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)t->shape[d]);
  strcat(got, "]");
  return gr_error(GR_EFORMAT, "adapter tensor '%s' has shape %s, PEFT's layout needs %s", t->name, got, want);
}

/* [1, c, 1, 1]: a per-channel vector of a conv layer */
static bool is_channel_vector(const gr_st_entry *t, int64_t c) {
  return t->ndim == 4 && t->shape[0] == 1 && t->shape[2] == 1 && t->shape[3] == 1 && (c < 0 || t->shape[1] == c);
}

static gr_status check_lora_key(const gr_peft_config *c, const gr_st_entry *e, size_t n, const gr_st_entry *t,
                                const char *module, const char *suffix) {
  int64_t r = gr_peft_module_rank(c, module);
  char want[160];
  if (!strcmp(suffix, ".lora_A.weight") || !strcmp(suffix, ".lora_B.weight")) {
    bool is_a = suffix[6] == 'A';
    const gr_st_entry *other = partner(e, n, module, is_a ? ".lora_B.weight" : ".lora_A.weight");
    if (!other) return gr_error(GR_EFORMAT, "adapter tensor '%s' has no %s partner", t->name, is_a ? "lora_B" : "lora_A");
    snprintf(want, sizeof want, is_a ? "[r=%lld, in] (or [r, C_in, kh, kw])" : "[out, r=%lld] (or [C_out, r, 1, 1])", (long long)r);
    if ((t->ndim != 2 && t->ndim != 4) || t->shape[is_a ? 0 : 1] != r) return shape_err(t, want);
    if (!is_a && t->ndim == 4 && (t->shape[2] != 1 || t->shape[3] != 1)) return shape_err(t, want);
    return GR_OK;
  }
  if (!strcmp(suffix, ".lora_embedding_A") || !strcmp(suffix, ".lora_embedding_B")) {
    bool is_a = suffix[16] == 'A';
    if (!partner(e, n, module, is_a ? ".lora_embedding_B" : ".lora_embedding_A"))
      return gr_error(GR_EFORMAT, "adapter tensor '%s' has no partner embedding factor", t->name);
    snprintf(want, sizeof want, is_a ? "[r=%lld, num_embeddings]" : "[embedding_dim, r=%lld]", (long long)r);
    if (t->ndim != 2 || t->shape[is_a ? 0 : 1] != r) return shape_err(t, want);
    return GR_OK;
  }
  const gr_st_entry *b = partner(e, n, module, ".lora_B.weight"); /* bias and magnitude: [out] */
  if (!b) return gr_error(GR_EFORMAT, "adapter tensor '%s' has no lora_B.weight in its module", t->name);
  /* PEFT's conv DoRA keeps the magnitude as [1, out, 1, 1] */
  bool conv_mag = b->ndim == 4 && !strcmp(suffix, ".lora_magnitude_vector");
  snprintf(want, sizeof want, conv_mag ? "[1, out=%lld, 1, 1]" : "[out=%lld]", (long long)b->shape[0]);
  if (conv_mag ? !is_channel_vector(t, b->shape[0]) : (t->ndim != 1 || t->shape[0] != b->shape[0]))
    return shape_err(t, want);
  if (!strcmp(suffix, ".lora_magnitude_vector") && !c->use_dora)
    return gr_error(GR_EFORMAT, "adapter tensor '%s' is a DoRA magnitude but use_dora is false", t->name);
  return GR_OK;
}

static gr_status check_ia3_key(const gr_peft_config *c, const gr_st_entry *t, const char *module) {
  bool ff = gr_peft_is_feedforward(c, module);
  if (is_channel_vector(t, -1)) return GR_OK; /* Conv2d: [1, C, 1, 1] either way */
  if (t->ndim != 2 || t->shape[ff ? 0 : 1] != 1) return shape_err(t, ff ? "[1, in] (feed-forward module)" : "[out, 1]");
  return GR_OK;
}

/* graft's bottleneck extension: down [r, in] (+ [r]), up [out, r] (+ [out]) */
static gr_status check_bottleneck_key(const gr_peft_config *c, const gr_st_entry *e, size_t n, const gr_st_entry *t,
                                      const char *module, const char *suffix) {
  const gr_st_entry *down = partner(e, n, module, ".adapter_down.weight"), *up = partner(e, n, module, ".adapter_up.weight");
  if (!down || !up) return gr_error(GR_EFORMAT, "adapter tensor '%s' lacks its adapter_down/adapter_up partner", t->name);
  int64_t r = c->r;
  char want[160];
  bool is_down = !strncmp(suffix, ".adapter_down", 13), is_bias = strstr(suffix, ".bias") != NULL;
  if (is_bias) {
    int64_t len = is_down ? r : up->shape[0];
    snprintf(want, sizeof want, "[%lld]", (long long)len);
    return t->ndim == 1 && t->shape[0] == len ? GR_OK : shape_err(t, want);
  }
  snprintf(want, sizeof want, is_down ? "[r=%lld, in] (or [r, C_in, kh, kw])" : "[out, r=%lld] (or [C_out, r, 1, 1])",
           (long long)r);
  if ((t->ndim != 2 && t->ndim != 4) || t->shape[is_down ? 0 : 1] != r) return shape_err(t, want);
  if (!is_down && t->ndim == 4 && (t->shape[2] != 1 || t->shape[3] != 1)) return shape_err(t, want);
  return GR_OK;
}

static gr_status check_one(const gr_peft_config *c, const gr_st_entry *e, size_t n, const gr_st_entry *t) {
  char module[1024];
  const char *suffix = adapter_suffix(t->name, module, sizeof module);
  if (!suffix) {
    if (strncmp(t->name, PREFIX, strlen(PREFIX)))
      return gr_error(GR_EFORMAT, "adapter tensor '%s' does not start with '" PREFIX "'", t->name);
    return GR_OK; /* modules_to_save, biases: kept as they are */
  }
  gr_peft_type kind = !strcmp(suffix, ".ia3_l")          ? GR_PEFT_IA3
                      : !strncmp(suffix, ".adapter_", 9) ? GR_PEFT_BOTTLENECK
                                                         : GR_PEFT_LORA;
  if (kind != c->type)
    return gr_error(GR_EFORMAT, "adapter tensor '%s' does not belong in a %s adapter", t->name, c->peft_type);
  bool checkable = c->n_target_modules || (c->target_modules_regex && strcmp(c->target_modules_regex, "all-linear"));
  if (checkable && !gr_peft_targets(c, module))
    return gr_error(GR_EFORMAT, "adapter tensor '%s': module '%s' is not in target_modules", t->name, module);
  if (kind == GR_PEFT_IA3) return check_ia3_key(c, t, module);
  if (kind == GR_PEFT_BOTTLENECK) return check_bottleneck_key(c, e, n, t, module, suffix);
  return check_lora_key(c, e, n, t, module, suffix);
}

gr_status gr_peft_check_entries(const gr_peft_config *c, const gr_st_entry *e, size_t n) {
  if (!c || (n && !e)) return gr_error(GR_EARG, "gr_peft_check_entries: NULL argument");
  if (c->type == GR_PEFT_OTHER) return GR_OK; /* prompt learning etc.: layout not checked */
  for (size_t i = 0; i < n; i++) {
    gr_status st = check_one(c, e, n, &e[i]);
    if (st) return st;
  }
  return GR_OK;
}

gr_status gr_peft_check_file(const gr_peft_config *c, const gr_st_file *f) {
  if (!c || !f) return gr_error(GR_EARG, "gr_peft_check_file: NULL argument");
  size_t n = gr_st_count(f);
  gr_st_entry *e = gr_calloc(n + 1, sizeof *e);
  int64_t *dims = gr_calloc(n * 4 + 1, sizeof *dims);
  gr_status st = e && dims ? GR_OK : gr_error(GR_ENOMEM, "out of memory");
  for (size_t i = 0; i < n && !st; i++) {
    const gr_st_tensor *t = gr_st_at(f, i);
    /* no adapter tensor has more than 4 dims: a longer shape is cut to 3,
     * which fails every adapter shape rule (and is ignored for others) */
    e[i] = (gr_st_entry){t->name, t->dtype, t->ndim > 4 ? 3 : t->ndim, dims + 4 * i};
    for (int d = 0; d < e[i].ndim; d++) dims[4 * i + d] = t->shape[d] > INT64_MAX ? -1 : (int64_t)t->shape[d];
  }
  if (!st) st = gr_peft_check_entries(c, e, n);
  if (st) st = gr_error(st, "%s: %s", gr_st_path(f), gr_last_error());
  gr_free(e);
  gr_free(dims);
  return st;
}

gr_status gr_peft_dir_save(const char *dir, const gr_peft_config *c, const gr_ckpt_tensor *ts, size_t n) {
  if (!dir || !c || (n && !ts)) return gr_error(GR_EARG, "gr_peft_dir_save: NULL argument");
  if (mkdir(dir, 0777) && errno != EEXIST) return gr_error(GR_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
  gr_st_entry *e = gr_calloc(n + 1, sizeof *e);
  if (!e) return gr_error(GR_ENOMEM, "out of memory");
  gr_status st = GR_OK;
  for (size_t i = 0; i < n && !st; i++) {
    if (!ts[i].name || !ts[i].t) st = gr_error(GR_EARG, "%s: adapter tensor %zu has no name or data", dir, i);
    else e[i] = (gr_st_entry){ts[i].name, GR_DT_F32, ts[i].t->ndim, ts[i].t->shape};
  }
  if (!st) st = gr_peft_check_entries(c, e, n);
  gr_free(e);
  char path[4096];
  gr_st_kv fmt = {"format", "pt"};
  if (!st) st = st_path_join(path, sizeof path, dir, "adapter_model.safetensors");
  if (!st) st = gr_ckpt_save(path, ts, n, GR_DT_F32, &fmt, 1);
  char *json = st ? NULL : gr_peft_config_to_json(c);
  if (!st && !json) st = gr_error(GR_ENOMEM, "out of memory");
  if (!st) st = st_path_join(path, sizeof path, dir, "adapter_config.json");
  if (!st) st = st_atomic_write_file(path, json, strlen(json));
  gr_free(json);
  return st;
}

gr_status gr_peft_dir_open(const char *dir, gr_peft_config **cfg, gr_st_file **weights) {
  if (!dir || !cfg || !weights) return gr_error(GR_EARG, "gr_peft_dir_open: NULL argument");
  *cfg = NULL;
  *weights = NULL;
  char path[4096];
  gr_status st = st_path_join(path, sizeof path, dir, "adapter_model.safetensors");
  if (!st && access(path, F_OK)) {
    char bin[4096];
    if (!st_path_join(bin, sizeof bin, dir, "adapter_model.bin") && !access(bin, F_OK))
      return gr_error(GR_EUNSUPPORTED, "%s: only adapter_model.bin (a pickle) is present; graft never loads pickles: "
                                       "convert it to adapter_model.safetensors", dir);
  }
  if (!st) st = st_path_join(path, sizeof path, dir, "adapter_config.json");
  if (!st) st = gr_peft_config_read(path, cfg);
  if (!st) st = st_path_join(path, sizeof path, dir, "adapter_model.safetensors");
  if (!st) st = gr_st_open(path, weights);
  if (!st) st = gr_peft_check_file(*cfg, *weights);
  if (!st && strcmp(gr_st_metadata_get(*weights, "format") ? gr_st_metadata_get(*weights, "format") : "", "pt") &&
      gr_st_metadata_get(*weights, "format"))
    st = gr_error(GR_EFORMAT, "%s: metadata format is '%s', PEFT expects 'pt'", path, gr_st_metadata_get(*weights, "format"));
  if (st) {
    gr_peft_config_free(*cfg);
    gr_st_close(*weights);
    *cfg = NULL;
    *weights = NULL;
  }
  return st;
}
