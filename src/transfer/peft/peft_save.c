/* transfer/peft/peft_save.c — a wrapped model to and from a PEFT adapter
 * directory: the config that describes the model's wrappers, the tensors
 * under PEFT's keys (base_model.model.<parameter name>: graft's parameter
 * names are PEFT's module paths and local names), and loading a directory
 * into a model (wrap as the config says, then fill every adapter and
 * modules_to_save tensor by name, strictly). The file layout and the config
 * rules are io/peft_dir.c and io/peft_config.c. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "transfer/peft/peft_layer.h"

#define KEY_PREFIX "base_model.model."

typedef struct wrapper_walk {
  cJSON *targets, *feedforward, *rank_pattern, *alpha_pattern;
  peft_desc first;
  int n;
  gr_status st;
} wrapper_walk;

static bool same_method(const peft_desc *a, const peft_desc *b) {
  if (a->type != b->type || a->dora != b->dora || a->rslora != b->rslora) return false;
  return a->type != GR_PEFT_BOTTLENECK || (a->r == b->r && a->parallel == b->parallel && a->scale == b->scale);
}

static void describe_wrappers(gr_module *mod, wrapper_walk *w) {
  peft_layer *L = peft_layer_of(mod);
  if (!L) {
    for (int i = 0; i < mod->n_children && !w->st; i++) describe_wrappers(mod->children[i], w);
    return;
  }
  peft_desc d;
  L->ops->describe(mod, &d);
  if (w->n == 0) w->first = d;
  else if (!same_method(&w->first, &d))
    w->st = gr_error(GR_EUNSUPPORTED, "PEFT save: module '%s' is adapted differently from the first one (one "
                                      "adapter config describes one method)", L->t.path);
  w->n++;
  cJSON_AddItemToArray(w->targets, cJSON_CreateString(L->t.path));
  if (d.type == GR_PEFT_IA3 && d.feedforward) cJSON_AddItemToArray(w->feedforward, cJSON_CreateString(L->t.path));
  if (d.type == GR_PEFT_LORA && d.r != w->first.r) cJSON_AddNumberToObject(w->rank_pattern, L->t.path, d.r);
  if (d.type == GR_PEFT_LORA && d.alpha != w->first.alpha) cJSON_AddNumberToObject(w->alpha_pattern, L->t.path, d.alpha);
}

/* Modules (outside every wrapper) with trainable parameters: PEFT's modules_to_save. */
static void add_modules_to_save(gr_model *m, cJSON *list) {
  char p[GR_NAME_MAX];
  for (int i = 0; i < m->n_entries; i++) {
    const gr_named_tensor *e = &m->entries[i];
    if (e->buffer || !e->t->requires_grad || gr_peft_param_is_adapter(e)) continue;
    bool inside = false;
    for (const gr_module *a = e->owner; a && !inside; a = a->parent) inside = peft_layer_of(a) != NULL;
    gr_module_path(e->owner, p, sizeof p);
    bool seen = inside || !e->owner->parent;
    for (const cJSON *x = list->child; x && !seen; x = x->next) seen = !strcmp(x->valuestring, p);
    if (!seen) cJSON_AddItemToArray(list, cJSON_CreateString(p));
  }
}

static void fill_method_fields(cJSON *j, const wrapper_walk *w) {
  static const char *const types[] = {"LORA", "IA3", "", "BOTTLENECK"};
  const peft_desc *d = &w->first;
  cJSON_AddStringToObject(j, "peft_type", types[d->type]);
  if (d->type == GR_PEFT_LORA) {
    cJSON_AddNumberToObject(j, "r", d->r);
    cJSON_AddNumberToObject(j, "lora_alpha", d->alpha);
    cJSON_AddBoolToObject(j, "use_rslora", d->rslora);
    cJSON_AddBoolToObject(j, "use_dora", d->dora);
    cJSON_AddBoolToObject(j, "init_lora_weights", true);
  } else if (d->type == GR_PEFT_IA3) {
    cJSON_AddBoolToObject(j, "init_ia3_weights", true);
  } else {
    cJSON_AddNumberToObject(j, "r", d->r);
    cJSON_AddStringToObject(j, "adapter_placement", d->parallel ? "parallel" : "sequential");
    cJSON_AddNumberToObject(j, "adapter_scaling", d->scale);
  }
}

gr_peft_config *gr_peft_config_from_model(gr_model *m) {
  if (!m || !m->root) {
    gr_error(GR_EARG, "PEFT config from model: NULL model");
    return NULL;
  }
  cJSON *j = cJSON_CreateObject();
  wrapper_walk w = {.targets = cJSON_CreateArray(), .feedforward = cJSON_CreateArray(),
                    .rank_pattern = cJSON_CreateObject(), .alpha_pattern = cJSON_CreateObject()};
  cJSON *save = cJSON_CreateArray();
  gr_peft_config *c = NULL;
  if (!j || !w.targets || !w.feedforward || !w.rank_pattern || !w.alpha_pattern || !save)
    w.st = gr_error(GR_ENOMEM, "PEFT config: out of memory");
  if (!w.st) describe_wrappers(m->root, &w);
  if (!w.st && w.n == 0) w.st = gr_error(GR_ENOTFOUND, "PEFT config: the model has no adapted module");
  if (!w.st) {
    fill_method_fields(j, &w);
    add_modules_to_save(m, save);
    cJSON_AddItemToObject(j, "target_modules", w.targets);
    cJSON_AddItemToObject(j, "modules_to_save", cJSON_GetArraySize(save) ? save : cJSON_CreateNull());
    if (w.first.type == GR_PEFT_IA3) cJSON_AddItemToObject(j, "feedforward_modules", w.feedforward);
    if (w.first.type == GR_PEFT_LORA) {
      cJSON_AddItemToObject(j, "rank_pattern", w.rank_pattern);
      cJSON_AddItemToObject(j, "alpha_pattern", w.alpha_pattern);
    }
    cJSON_AddBoolToObject(j, "inference_mode", true);
    cJSON_AddNullToObject(j, "task_type");
    cJSON_AddNullToObject(j, "base_model_name_or_path");
    w.targets = NULL; /* owned by j now */
    if (w.first.type == GR_PEFT_IA3) w.feedforward = NULL;
    if (w.first.type == GR_PEFT_LORA) w.rank_pattern = w.alpha_pattern = NULL;
    if (cJSON_GetArraySize(save)) save = NULL;
    char *text = cJSON_PrintUnformatted(j);
    w.st = text ? gr_peft_config_parse(text, strlen(text), "adapter config of the model", &c)
                : gr_error(GR_ENOMEM, "PEFT config: out of memory");
    cJSON_free(text);
  }
  cJSON_Delete(j), cJSON_Delete(w.targets), cJSON_Delete(w.feedforward), cJSON_Delete(w.rank_pattern);
  cJSON_Delete(w.alpha_pattern), cJSON_Delete(save);
  return w.st ? NULL : c;
}

/* Tensors an adapter directory holds for this model: adapter parameters and
 * those of modules_to_save, named base_model.model.<name> (names[] keeps
 * the keys). n_out gets the count. */
static gr_status adapter_tensors(gr_model *m, const gr_peft_config *cfg, gr_ckpt_tensor **ts, char (**names)[GR_NAME_MAX + 32],
                                 size_t *n_out) {
  *ts = gr_calloc((size_t)m->n_entries + 1, sizeof **ts);
  *names = gr_calloc((size_t)m->n_entries + 1, sizeof **names);
  if (!*ts || !*names) return gr_error(GR_ENOMEM, "PEFT: out of memory");
  size_t n = 0;
  char p[GR_NAME_MAX];
  for (int i = 0; i < m->n_entries; i++) {
    const gr_named_tensor *e = &m->entries[i];
    if (e->buffer) continue;
    bool save = gr_peft_param_is_adapter(e);
    for (const gr_module *a = e->owner; a && a->parent && !save; a = a->parent)
      save = gr_peft_is_module_to_save(cfg, gr_module_path(a, p, sizeof p));
    if (!save) continue;
    snprintf((*names)[n], sizeof **names, KEY_PREFIX "%s", e->name);
    (*ts)[n] = (gr_ckpt_tensor){(*names)[n], e->t};
    n++;
  }
  *n_out = n;
  return GR_OK;
}

gr_status gr_peft_save(gr_model *m, const char *dir) {
  if (!m || !dir) return gr_error(GR_EARG, "PEFT save: NULL argument");
  gr_peft_config *cfg = gr_peft_config_from_model(m);
  if (!cfg) return gr_last_status();
  gr_ckpt_tensor *ts = NULL;
  char (*names)[GR_NAME_MAX + 32] = NULL;
  size_t n = 0;
  gr_status s = adapter_tensors(m, cfg, &ts, &names, &n);
  if (!s) s = gr_peft_dir_save(dir, cfg, ts, n);
  gr_free(ts);
  gr_free(names);
  gr_peft_config_free(cfg);
  return s;
}

gr_status gr_peft_load(gr_model *m, const char *dir, gr_peft_config **cfg_out) {
  if (cfg_out) *cfg_out = NULL;
  if (!m || !dir) return gr_error(GR_EARG, "PEFT load: NULL argument");
  gr_peft_config *cfg = NULL;
  gr_st_file *f = NULL;
  gr_status s = gr_peft_dir_open(dir, &cfg, &f); /* its errors name the file */
  if (s) return s;
  s = gr_peft_apply(m, cfg, GR_LORA_INIT_PEFT, NULL);
  gr_ckpt_tensor *ts = NULL;
  char (*names)[GR_NAME_MAX + 32] = NULL;
  size_t n = 0;
  if (!s) s = adapter_tensors(m, cfg, &ts, &names, &n);
  /* strict: every adapter tensor of the model present, none the model lacks */
  if (!s) s = gr_ckpt_load(f, ts, n, GR_CKPT_STRICT);
  if (s) s = gr_error(s, "%s: %s", dir, gr_last_error());
  gr_free(ts);
  gr_free(names);
  gr_st_close(f);
  if (!s && cfg_out) *cfg_out = cfg;
  else gr_peft_config_free(cfg);
  return s;
}
