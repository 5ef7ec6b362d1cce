/* io/peft_config.c — adapter_config.json: parsing with PEFT's validation
 * rules, defaults, round trip that keeps every key (known or not), output in
 * PEFT's own layout (json.dumps(indent=2, sort_keys=True) + newline), and
 * the per-module rank/alpha/scaling and target rules. Tensor layout and the
 * adapter directory are in peft_dir.c. */
#include <cjson/cJSON.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/peft_io.h"
#include "io/json_util.h"
#include "io/st_internal.h"

#define CONFIG_MAX_BYTES (16u << 20)

/* Keys PEFT's configs define (common, LoRA, IA3, prompt learning). */
static const char *const known_keys[] = {
    "peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping",
    "peft_version", "runtime_config", "r", "lora_alpha", "lora_dropout", "target_modules", "exclude_modules",
    "fan_in_fan_out", "bias", "use_rslora", "modules_to_save", "init_lora_weights", "layers_to_transform",
    "layers_pattern", "rank_pattern", "alpha_pattern", "use_dora", "lora_bias", "layer_replication",
    "megatron_config", "megatron_core", "loftq_config", "eva_config", "corda_config", "lora_ga_config",
    "trainable_token_indices", "target_parameters", "use_qalora", "qalora_group_size", "alora_invocation_tokens",
    "ensure_weight_tying", "velora_config", "arrow_config", "kasa_config", "use_bdlora", "monteclora_config",
    "feedforward_modules", "init_ia3_weights", "num_virtual_tokens", "token_dim", "num_transformer_submodules",
    "num_attention_heads", "num_layers", "encoder_hidden_size", "prefix_projection", "init_weights",
    "prompt_tuning_init", "prompt_tuning_init_text", "tokenizer_name_or_path", "tokenizer_kwargs",
    /* graft's BOTTLENECK extension (graft/peft_io.h) */
    "adapter_placement", "adapter_scaling", "adapter_nonlinearity",
};

static void free_list(char **v, int n) {
  for (int i = 0; i < n; i++) gr_free(v[i]);
  gr_free(v);
}

void gr_peft_config_free(gr_peft_config *c) {
  if (!c) return;
  gr_free(c->peft_type);
  gr_free(c->task_type);
  gr_free(c->base_model_name_or_path);
  gr_free(c->bias);
  for (int i = 0; i < c->n_rank_pattern; i++) gr_free(c->rank_pattern[i].key);
  for (int i = 0; i < c->n_alpha_pattern; i++) gr_free(c->alpha_pattern[i].key);
  gr_free(c->rank_pattern);
  gr_free(c->alpha_pattern);
  free_list(c->target_modules, c->n_target_modules);
  gr_free(c->target_modules_regex);
  free_list(c->feedforward_modules, c->n_feedforward_modules);
  free_list(c->modules_to_save, c->n_modules_to_save);
  free_list(c->unknown_keys, c->n_unknown_keys);
  cJSON_Delete(c->json);
  gr_free(c);
}

/* ---- regex keys ---------------------------------------------------------- */
/* glibc's regcomp copies the pattern tree for every repetition, so nested or
 * stacked quantifiers make it allocate exponentially (a fuzzer find: a
 * 100-byte rank_pattern key took > 2 GB). Module-name patterns need little:
 * accept at most 512 bytes, 8 repetition operators, never two in a row, and
 * at most 2 bounded ones {m,n} with bounds <= 32. */
static bool regex_is_tame(const char *p) {
  int ops = 0, braces = 0;
  bool prev_quant = false;
  if (strlen(p) > 512) return false;
  for (size_t i = 0; p[i]; i++) {
    char c = p[i];
    bool quant = c == '*' || c == '+' || c == '?' || c == '{';
    if (c == '\\' && p[i + 1]) i++;
    else if (c == '[') { /* bracket expression: literal up to the closing ] */
      size_t j = i + 1 + (p[i + 1] == '^');
      j += p[j] == ']';
      while (p[j] && p[j] != ']') j++;
      if (!p[j]) return false;
      i = j;
    } else if (quant) {
      if (prev_quant || ++ops > 8) return false;
      if (c == '{') {
        char *end;
        for (const char *q = p + i + 1; *q && *q != '}'; q = end) {
          long v = strtol(q, &end, 10);
          if (end == q) end = (char *)q + 1; /* the comma */
          else if (v > 32) return false;
        }
        if (++braces > 2) return false;
      }
    }
    prev_quant = quant;
  }
  return true;
}

/* regcomp of "^(.*\.)?(KEY)$" (PEFT's rank/alpha pattern rule) or, for
 * target_modules, "^(KEY)$"; false for a key that is not tame or valid. */
static bool compile_key(regex_t *re, const char *key, bool suffix_rule) {
  char pat[1100];
  if (!regex_is_tame(key)) return false;
  snprintf(pat, sizeof pat, suffix_rule ? "^(.*\\.)?(%s)$" : "^(%s)$", key);
  return regcomp(re, pat, REG_EXTENDED | REG_NOSUB) == 0;
}

static bool key_matches(const char *key, const char *module, bool suffix_rule) {
  regex_t re;
  if (!compile_key(&re, key, suffix_rule)) return false;
  bool m = regexec(&re, module, 0, NULL, 0) == 0;
  regfree(&re);
  return m;
}

/* ---- typed field readers (absent or null keeps the default) ------------- */
static gr_status field_err(const char *what, const char *key, const char *want) {
  return gr_error(GR_EFORMAT, "%s: field '%s' must be %s", what, key, want);
}

static const cJSON *field(const cJSON *j, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  return cJSON_IsNull(v) ? NULL : v;
}

static gr_status get_string(const cJSON *j, const char *key, const char *what, char **out) {
  const cJSON *v = field(j, key);
  if (!v) return GR_OK;
  if (!cJSON_IsString(v)) return field_err(what, key, "a string");
  gr_free(*out);
  *out = st_strdup(v->valuestring);
  return *out ? GR_OK : gr_error(GR_ENOMEM, "%s: out of memory", what);
}

static gr_status get_bool(const cJSON *j, const char *key, const char *what, bool *out) {
  const cJSON *v = field(j, key);
  if (!v) return GR_OK;
  if (!cJSON_IsBool(v)) return field_err(what, key, "true or false");
  *out = cJSON_IsTrue(v);
  return GR_OK;
}

static gr_status get_number(const cJSON *j, const char *key, const char *what, double *out) {
  const cJSON *v = field(j, key);
  if (!v) return GR_OK;
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return field_err(what, key, "a finite number");
  *out = v->valuedouble;
  return GR_OK;
}

static gr_status get_string_list(const cJSON *j, const char *key, const char *what, char ***out, int *n) {
  const cJSON *v = field(j, key);
  if (!v) return GR_OK;
  if (!cJSON_IsArray(v)) return field_err(what, key, "a list of strings");
  int k = cJSON_GetArraySize(v);
  *out = gr_calloc((size_t)k + 1, sizeof(char *));
  if (!*out) return gr_error(GR_ENOMEM, "%s: out of memory", what);
  for (const cJSON *e = v->child; e; e = e->next) {
    if (!cJSON_IsString(e)) return field_err(what, key, "a list of strings");
    if (!((*out)[(*n)++] = st_strdup(e->valuestring))) return gr_error(GR_ENOMEM, "%s: out of memory", what);
  }
  return GR_OK;
}

static gr_status get_patterns(const cJSON *j, const char *key, const char *what, bool integral, gr_peft_pattern **out,
                              int *n) {
  const cJSON *v = field(j, key);
  if (!v) return GR_OK;
  if (!cJSON_IsObject(v)) return field_err(what, key, "an object of module pattern -> number");
  *out = gr_calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof **out);
  if (!*out) return gr_error(GR_ENOMEM, "%s: out of memory", what);
  for (const cJSON *e = v->child; e; e = e->next) {
    double x = e->valuedouble;
    if (!cJSON_IsNumber(e) || !isfinite(x) || (integral && (x != floor(x) || x < 1 || x > 1e9)))
      return field_err(what, key, integral ? "an object of pattern -> positive integer" : "an object of pattern -> number");
    regex_t re;
    if (!compile_key(&re, e->string, true))
      return gr_error(GR_EFORMAT, "%s: %s key '%.200s' is not a valid (or is too complex a) regex", what, key, e->string);
    regfree(&re);
    (*out)[*n].value = x;
    if (!((*out)[(*n)++].key = st_strdup(e->string))) return gr_error(GR_ENOMEM, "%s: out of memory", what);
  }
  return GR_OK;
}

/* ---- parse ------------------------------------------------------------- */
static gr_status read_common(gr_peft_config *c, const char *what) {
  const cJSON *j = c->json;
  gr_status st = get_string(j, "peft_type", what, &c->peft_type);
  if (!st && !c->peft_type) st = gr_error(GR_EFORMAT, "%s: missing required field 'peft_type'", what);
  if (st) return st;
  c->type = !strcmp(c->peft_type, "LORA")         ? GR_PEFT_LORA
            : !strcmp(c->peft_type, "IA3")        ? GR_PEFT_IA3
            : !strcmp(c->peft_type, "BOTTLENECK") ? GR_PEFT_BOTTLENECK
                                                  : GR_PEFT_OTHER;
  if (!st) st = get_string_list(j, "modules_to_save", what, &c->modules_to_save, &c->n_modules_to_save);
  if (!st) st = get_string(j, "task_type", what, &c->task_type);
  if (!st) st = get_string(j, "base_model_name_or_path", what, &c->base_model_name_or_path);
  if (!st) st = get_bool(j, "inference_mode", what, &c->inference_mode);
  if (!st) st = get_bool(j, "fan_in_fan_out", what, &c->fan_in_fan_out);
  const cJSON *tm = field(j, "target_modules");
  regex_t re;
  if (!st && cJSON_IsString(tm) && strcmp(tm->valuestring, "all-linear")) {
    if (!compile_key(&re, tm->valuestring, false))
      return gr_error(GR_EFORMAT, "%s: target_modules '%.200s' is not a valid (or is too complex a) regex", what, tm->valuestring);
    regfree(&re);
  }
  if (!st && cJSON_IsString(tm)) {
    if (!(c->target_modules_regex = st_strdup(tm->valuestring))) st = gr_error(GR_ENOMEM, "out of memory");
  } else if (!st) {
    st = get_string_list(j, "target_modules", what, &c->target_modules, &c->n_target_modules);
  }
  return st;
}

static gr_status read_rank(gr_peft_config *c, const char *what) {
  double r = c->r;
  gr_status st = get_number(c->json, "r", what, &r);
  if (!st && (r != floor(r) || r < 1 || r > 1e9)) st = field_err(what, "r", "a positive integer up to 1e9");
  if (!st) c->r = (int)r; /* only once in int range (a fuzzer find) */
  return st;
}

static gr_status read_lora(gr_peft_config *c, const char *what) {
  const cJSON *j = c->json;
  gr_status st = read_rank(c, what);
  if (!st) st = get_number(j, "lora_alpha", what, &c->lora_alpha);
  if (!st) st = get_number(j, "lora_dropout", what, &c->lora_dropout);
  if (!st) st = get_string(j, "bias", what, &c->bias);
  if (!st && strcmp(c->bias, "none") && strcmp(c->bias, "all") && strcmp(c->bias, "lora_only"))
    st = field_err(what, "bias", "\"none\", \"all\" or \"lora_only\"");
  if (!st) st = get_bool(j, "use_rslora", what, &c->use_rslora);
  if (!st) st = get_bool(j, "use_dora", what, &c->use_dora);
  if (!st) st = get_patterns(j, "rank_pattern", what, true, &c->rank_pattern, &c->n_rank_pattern);
  if (!st) st = get_patterns(j, "alpha_pattern", what, false, &c->alpha_pattern, &c->n_alpha_pattern);
  if (st) return st;
  bool has_layers = field(j, "layers_to_transform") != NULL, has_pattern = field(j, "layers_pattern") != NULL;
  if (c->target_modules_regex && (has_layers || has_pattern))
    return gr_error(GR_EFORMAT, "%s: a string target_modules cannot be combined with layers_to_transform or layers_pattern", what);
  if (has_pattern && !has_layers) return gr_error(GR_EFORMAT, "%s: layers_pattern requires layers_to_transform", what);
  const cJSON *init = field(j, "init_lora_weights"), *loftq = field(j, "loftq_config");
  if (cJSON_IsString(init) && !strcmp(init->valuestring, "loftq") && (!cJSON_IsObject(loftq) || !loftq->child))
    return gr_error(GR_EFORMAT, "%s: init_lora_weights \"loftq\" requires a loftq_config", what);
  if (c->use_dora && cJSON_IsTrue(field(j, "megatron_core")))
    return gr_error(GR_EFORMAT, "%s: use_dora cannot be combined with megatron", what);
  return GR_OK;
}

static gr_status read_ia3(gr_peft_config *c, const char *what) {
  gr_status st = get_string_list(c->json, "feedforward_modules", what, &c->feedforward_modules, &c->n_feedforward_modules);
  if (st || !c->n_target_modules) return st;
  for (int i = 0; i < c->n_feedforward_modules; i++) {
    bool found = false;
    for (int k = 0; k < c->n_target_modules; k++) found |= !strcmp(c->feedforward_modules[i], c->target_modules[k]);
    if (!found)
      return gr_error(GR_EFORMAT, "%s: feedforward_modules entry '%s' is not in target_modules", what,
                      c->feedforward_modules[i]);
  }
  return GR_OK;
}

/* graft's bottleneck-adapter extension (graft/peft_io.h) */
static gr_status read_bottleneck(gr_peft_config *c, const char *what) {
  char *placement = NULL, *act = NULL;
  gr_status st = read_rank(c, what);
  if (!st) st = get_number(c->json, "adapter_scaling", what, &c->adapter_scaling);
  if (!st) st = get_string(c->json, "adapter_placement", what, &placement);
  if (!st) st = get_string(c->json, "adapter_nonlinearity", what, &act);
  if (!st && placement && strcmp(placement, "sequential") && strcmp(placement, "parallel"))
    st = field_err(what, "adapter_placement", "\"sequential\" or \"parallel\"");
  if (!st && act && strcmp(act, "relu")) st = field_err(what, "adapter_nonlinearity", "\"relu\"");
  if (!st) c->adapter_parallel = placement && !strcmp(placement, "parallel");
  gr_free(placement);
  gr_free(act);
  return st;
}

static gr_status list_unknown(gr_peft_config *c, const char *what) {
  int n = cJSON_GetArraySize(c->json);
  c->unknown_keys = gr_calloc((size_t)n + 1, sizeof(char *));
  if (!c->unknown_keys) return gr_error(GR_ENOMEM, "%s: out of memory", what);
  for (const cJSON *e = c->json->child; e; e = e->next) {
    bool known = false;
    for (size_t k = 0; k < sizeof known_keys / sizeof *known_keys && !known; k++) known = !strcmp(e->string, known_keys[k]);
    if (!known && !(c->unknown_keys[c->n_unknown_keys++] = st_strdup(e->string)))
      return gr_error(GR_ENOMEM, "%s: out of memory", what);
  }
  return GR_OK;
}

static gr_peft_config *config_alloc(void) {
  gr_peft_config *c = gr_calloc(1, sizeof *c);
  if (!c) return NULL;
  c->r = 8;
  c->lora_alpha = 8;
  c->adapter_scaling = 1;
  c->bias = st_strdup("none");
  if (!c->bias) {
    gr_free(c);
    return NULL;
  }
  return c;
}

gr_status gr_peft_config_parse(const char *text, size_t len, const char *what, gr_peft_config **out) {
  if (!out) return gr_error(GR_EARG, "gr_peft_config_parse: NULL out");
  *out = NULL;
  what = what ? what : "adapter_config.json";
  gr_peft_config *c = config_alloc();
  if (!c) return gr_error(GR_ENOMEM, "%s: out of memory", what);
  gr_status st = io_json_parse(text, len, what, &c->json);
  if (!st && !cJSON_IsObject(c->json)) st = gr_error(GR_EFORMAT, "%s: top level is not a JSON object", what);
  if (!st) st = read_common(c, what);
  if (!st && c->type == GR_PEFT_LORA) st = read_lora(c, what);
  if (!st && c->type == GR_PEFT_IA3) st = read_ia3(c, what);
  if (!st && c->type == GR_PEFT_BOTTLENECK) st = read_bottleneck(c, what);
  if (!st) st = list_unknown(c, what);
  if (st) {
    gr_peft_config_free(c);
    return st;
  }
  *out = c;
  return GR_OK;
}

gr_status gr_peft_config_read(const char *path, gr_peft_config **out) {
  char *text;
  size_t len;
  if (out) *out = NULL;
  gr_status st = st_read_file(path, CONFIG_MAX_BYTES, &text, &len);
  if (st) return st;
  st = gr_peft_config_parse(text, len, path, out);
  gr_free(text);
  return st;
}

gr_peft_config *gr_peft_config_new(gr_peft_type type, int r, double lora_alpha, const char *const *targets,
                                   int n_targets) {
  static const char *const names[] = {"LORA", "IA3", "", "BOTTLENECK"};
  if ((type != GR_PEFT_LORA && type != GR_PEFT_IA3 && type != GR_PEFT_BOTTLENECK) || r < 1 || n_targets < 0 || (n_targets && !targets)) {
    gr_error(GR_EARG, "gr_peft_config_new: bad type, rank or targets");
    return NULL;
  }
  gr_peft_config *c = config_alloc();
  bool ok = c && (c->json = cJSON_CreateObject()) && (c->peft_type = st_strdup(names[type]));
  if (ok) {
    c->type = type;
    c->r = r;
    c->lora_alpha = lora_alpha;
    c->inference_mode = true;
    c->target_modules = gr_calloc((size_t)n_targets + 1, sizeof(char *));
    ok = c->target_modules != NULL;
  }
  for (int i = 0; ok && i < n_targets; i++) ok = (c->target_modules[c->n_target_modules++] = st_strdup(targets[i])) != NULL;
  if (!ok) {
    gr_peft_config_free(c);
    gr_error(GR_ENOMEM, "gr_peft_config_new: out of memory");
    return NULL;
  }
  return c;
}

/* ---- output ------------------------------------------------------------ */
static void set_item(cJSON *j, const char *key, cJSON *v) {
  if (!v) return;
  if (cJSON_GetObjectItemCaseSensitive(j, key)) cJSON_ReplaceItemInObjectCaseSensitive(j, key, v);
  else cJSON_AddItemToObject(j, key, v);
}

static cJSON *string_or_null(const char *s) { return s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

static cJSON *patterns_json(const gr_peft_pattern *p, int n) {
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; o && i < n; i++) cJSON_AddItemToObject(o, p[i].key, cJSON_CreateNumber(p[i].value));
  return o;
}

/* The struct's fields over a copy of the kept document. */
static cJSON *config_document(const gr_peft_config *c) {
  cJSON *j = c->json ? cJSON_Duplicate(c->json, true) : cJSON_CreateObject();
  if (!j) return NULL;
  set_item(j, "peft_type", cJSON_CreateString(c->peft_type ? c->peft_type : "LORA"));
  set_item(j, "task_type", string_or_null(c->task_type));
  set_item(j, "base_model_name_or_path", string_or_null(c->base_model_name_or_path));
  set_item(j, "inference_mode", cJSON_CreateBool(c->inference_mode));
  if (c->target_modules_regex) set_item(j, "target_modules", cJSON_CreateString(c->target_modules_regex));
  else if (c->n_target_modules)
    set_item(j, "target_modules", cJSON_CreateStringArray((const char *const *)c->target_modules, c->n_target_modules));
  else set_item(j, "target_modules", cJSON_CreateNull());
  set_item(j, "fan_in_fan_out", cJSON_CreateBool(c->fan_in_fan_out));
  if (c->type == GR_PEFT_LORA) {
    set_item(j, "r", cJSON_CreateNumber(c->r));
    set_item(j, "lora_alpha", cJSON_CreateNumber(c->lora_alpha));
    set_item(j, "lora_dropout", cJSON_CreateNumber(c->lora_dropout));
    set_item(j, "bias", cJSON_CreateString(c->bias ? c->bias : "none"));
    set_item(j, "use_rslora", cJSON_CreateBool(c->use_rslora));
    set_item(j, "use_dora", cJSON_CreateBool(c->use_dora));
    set_item(j, "rank_pattern", patterns_json(c->rank_pattern, c->n_rank_pattern));
    set_item(j, "alpha_pattern", patterns_json(c->alpha_pattern, c->n_alpha_pattern));
  }
  set_item(j, "modules_to_save", c->n_modules_to_save ? cJSON_CreateStringArray((const char *const *)c->modules_to_save,
                                                                                c->n_modules_to_save)
                                                      : cJSON_CreateNull());
  if (c->type == GR_PEFT_BOTTLENECK) {
    set_item(j, "r", cJSON_CreateNumber(c->r));
    set_item(j, "adapter_placement", cJSON_CreateString(c->adapter_parallel ? "parallel" : "sequential"));
    set_item(j, "adapter_scaling", cJSON_CreateNumber(c->adapter_scaling));
    set_item(j, "adapter_nonlinearity", cJSON_CreateString("relu"));
  }
  if (c->type == GR_PEFT_IA3)
    set_item(j, "feedforward_modules", c->n_feedforward_modules
                                           ? cJSON_CreateStringArray((const char *const *)c->feedforward_modules,
                                                                     c->n_feedforward_modules)
                                           : cJSON_CreateNull());
  return j;
}

static int cmp_item_key(const void *a, const void *b) {
  return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static void put_indent(st_buf *b, int depth) {
  for (int i = 0; i < depth; i++) st_buf_puts(b, "  ");
}

/* Python's repr of a float where it is one; integers as integers. */
static void put_number(st_buf *b, double v) {
  char s[40];
  if (v == floor(v) && fabs(v) < 9007199254740992.0) snprintf(s, sizeof s, "%.0f", v);
  else
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(s, sizeof s, "%.*g", prec, v);
      if (strtod(s, NULL) == v) break;
    }
  st_buf_puts(b, s);
}

/* json.dumps(x, indent=2, sort_keys=True) */
static void put_json(st_buf *b, const cJSON *v, int depth) {
  if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
    bool obj = cJSON_IsObject(v);
    int n = cJSON_GetArraySize(v), k = 0;
    if (!n) {
      st_buf_puts(b, obj ? "{}" : "[]");
      return;
    }
    const cJSON **items = gr_malloc((size_t)n * sizeof *items);
    if (!items) {
      b->oom = true;
      return;
    }
    for (const cJSON *c = v->child; c; c = c->next) items[k++] = c;
    if (obj) qsort(items, (size_t)n, sizeof *items, cmp_item_key);
    st_buf_puts(b, obj ? "{\n" : "[\n");
    for (int i = 0; i < n; i++) {
      put_indent(b, depth + 1);
      if (obj) {
        st_buf_json_string(b, items[i]->string);
        st_buf_puts(b, ": ");
      }
      put_json(b, items[i], depth + 1);
      st_buf_puts(b, i + 1 < n ? ",\n" : "\n");
    }
    put_indent(b, depth);
    st_buf_puts(b, obj ? "}" : "]");
    gr_free(items);
  } else if (cJSON_IsString(v)) st_buf_json_string(b, v->valuestring);
  else if (cJSON_IsNumber(v)) put_number(b, v->valuedouble);
  else if (cJSON_IsTrue(v)) st_buf_puts(b, "true");
  else if (cJSON_IsFalse(v)) st_buf_puts(b, "false");
  else st_buf_puts(b, "null");
}

char *gr_peft_config_to_json(const gr_peft_config *c) {
  if (!c) return NULL;
  cJSON *j = config_document(c);
  if (!j) return NULL;
  st_buf b = {0};
  put_json(&b, j, 0);
  st_buf_puts(&b, "\n");
  cJSON_Delete(j);
  if (b.oom) {
    gr_free(b.p);
    return NULL;
  }
  return b.p;
}

/* ---- per-module rules ------------------------------------------------- */
static const gr_peft_pattern *first_match(const gr_peft_pattern *p, int n, const char *module) {
  for (int i = 0; module && i < n; i++)
    if (key_matches(p[i].key, module, true)) return &p[i];
  return NULL;
}

int gr_peft_module_rank(const gr_peft_config *c, const char *module) {
  const gr_peft_pattern *p = first_match(c->rank_pattern, c->n_rank_pattern, module);
  return p ? (int)p->value : c->r;
}

double gr_peft_module_alpha(const gr_peft_config *c, const char *module) {
  const gr_peft_pattern *p = first_match(c->alpha_pattern, c->n_alpha_pattern, module);
  return p ? p->value : c->lora_alpha;
}

double gr_peft_scaling(const gr_peft_config *c, const char *module) {
  double r = gr_peft_module_rank(c, module), a = gr_peft_module_alpha(c, module);
  return c->use_rslora ? a / sqrt(r) : a / r;
}

static bool suffix_match(char *const *list, int n, const char *module) {
  size_t ml = strlen(module);
  for (int i = 0; i < n; i++) {
    size_t l = strlen(list[i]);
    if (!strcmp(module, list[i]) || (ml > l && module[ml - l - 1] == '.' && !strcmp(module + ml - l, list[i]))) return true;
  }
  return false;
}

bool gr_peft_targets(const gr_peft_config *c, const char *module) {
  if (!c || !module) return false;
  if (c->target_modules_regex) return key_matches(c->target_modules_regex, module, false);
  return suffix_match(c->target_modules, c->n_target_modules, module);
}

bool gr_peft_is_module_to_save(const gr_peft_config *c, const char *module) {
  return c && module && suffix_match(c->modules_to_save, c->n_modules_to_save, module);
}

bool gr_peft_is_feedforward(const gr_peft_config *c, const char *module) {
  return suffix_match(c->feedforward_modules, c->n_feedforward_modules, module);
}
