/* io/mergekit_config.c — reads, validates and writes mergekit's YAML merge
 * configuration (graft/mergekit.h; mergekit/config.py). Parsing uses
 * libyaml's document API so every error can name the key and its line.
 * Evaluation per tensor is in mergekit_eval.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "graft/mergekit.h"
#include "graft/tensor.h"

typedef struct mk_parser {
  yaml_document_t doc;
  const char *what;
  gr_mk_config *cfg;
  int models_line, n_model_keys; /* how many of models/slices/modules were given */
} mk_parser;

static yaml_node_t *node_at(mk_parser *p, int idx) { return yaml_document_get_node(&p->doc, idx); }
static int line_of(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }
static const char *scalar_of(const yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = gr_malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static gr_status fail(mk_parser *p, const yaml_node_t *n, gr_status st, const char *fmt, const char *a,
                      const char *b) {
  char msg[256];
  snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
  return gr_error(st, "%s:%d: %s", p->what, line_of(n), msg);
}

static bool is_null_scalar(const yaml_node_t *n) {
  const char *s = scalar_of(n);
  return s && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
         (!*s || !strcmp(s, "~") || !strcasecmp(s, "null"));
}

/* YAML 1.1 booleans (PyYAML) as 1/0, else a number. */
static bool scalar_number(const yaml_node_t *n, double *out) {
  const char *s = scalar_of(n);
  if (!s || !*s) return false;
  static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
  for (int i = 0; i < 3; i++) {
    if (!strcasecmp(s, yes[i])) return (*out = 1, true);
    if (!strcasecmp(s, no[i])) return (*out = 0, true);
  }
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || end == s || v != v) return false;
  *out = v;
  return true;
}

static gr_status string_value(mk_parser *p, const yaml_node_t *key, const yaml_node_t *v, char **dst) {
  if (*dst) return fail(p, key, GR_EFORMAT, "'%s' given twice", scalar_of(key), NULL);
  const char *s = scalar_of(v);
  if (!s || is_null_scalar(v)) return fail(p, v, GR_EFORMAT, "'%s' must be a string", scalar_of(key), NULL);
  *dst = dup_str(s);
  return *dst ? GR_OK : gr_error(GR_ENOMEM, "%s: out of memory", p->what);
}

/* ---- settings ---------------------------------------------------------- */

static gr_status parse_setting(mk_parser *p, const char *name, yaml_node_t *n, gr_mk_setting *s, bool conds_ok);

static gr_status parse_condition(mk_parser *p, const char *name, yaml_node_t *n, gr_mk_condition *c) {
  yaml_node_t *value = NULL;
  for (yaml_node_pair_t *kv = n->data.mapping.pairs.start; kv < n->data.mapping.pairs.top; kv++) {
    yaml_node_t *k = node_at(p, kv->key), *v = node_at(p, kv->value);
    const char *ks = scalar_of(k);
    if (ks && !strcmp(ks, "filter")) {
      if (!is_null_scalar(v) && !scalar_of(v))
        return fail(p, v, GR_EFORMAT, "parameter '%s': filter must be a string or null", name, NULL);
      if (!is_null_scalar(v) && !(c->filter = dup_str(scalar_of(v)))) return gr_error(GR_ENOMEM, "out of memory");
    } else if (ks && !strcmp(ks, "value")) value = v;
    else return fail(p, k, GR_EFORMAT, "parameter '%s': unknown key '%s' in a filter entry", name, ks ? ks : "?");
  }
  if (!value) return fail(p, n, GR_EFORMAT, "parameter '%s': filter entry without 'value'", name, NULL);
  c->value = gr_calloc(1, sizeof *c->value);
  if (!c->value) return gr_error(GR_ENOMEM, "out of memory");
  return parse_setting(p, name, value, c->value, false);
}

static gr_status parse_setting_list(mk_parser *p, const char *name, yaml_node_t *n, gr_mk_setting *s, bool conds_ok) {
  int count = (int)(n->data.sequence.items.top - n->data.sequence.items.start), n_scalar = 0, n_map = 0;
  for (int i = 0; i < count; i++) {
    yaml_node_t *it = node_at(p, n->data.sequence.items.start[i]);
    n_scalar += it->type == YAML_SCALAR_NODE;
    n_map += it->type == YAML_MAPPING_NODE;
  }
  if (count == 0) return fail(p, n, GR_EFORMAT, "parameter '%s': empty list", name, NULL);
  if (n_scalar == count) {
    s->kind = GR_MK_GRADIENT;
    s->values = gr_malloc(sizeof(double) * (size_t)count);
    if (!s->values) return gr_error(GR_ENOMEM, "out of memory");
    for (int i = 0; i < count; i++) {
      yaml_node_t *it = node_at(p, n->data.sequence.items.start[i]);
      if (!scalar_number(it, &s->values[i]))
        return fail(p, it, GR_EFORMAT, "parameter '%s': gradient entry '%s' is not a number", name, scalar_of(it));
      s->n_values++;
    }
    return GR_OK;
  }
  if (n_map != count || !conds_ok)
    return fail(p, n, GR_EFORMAT, "parameter '%s': a list must hold only numbers (a gradient) or only "
                "{filter, value} entries", name, NULL);
  s->kind = GR_MK_CONDITIONS;
  s->conds = gr_calloc((size_t)count, sizeof *s->conds);
  if (!s->conds) return gr_error(GR_ENOMEM, "out of memory");
  for (int i = 0; i < count; i++) {
    s->n_conds++;
    gr_status st = parse_condition(p, name, node_at(p, n->data.sequence.items.start[i]), &s->conds[i]);
    if (st) return st;
  }
  return GR_OK;
}

static gr_status parse_setting(mk_parser *p, const char *name, yaml_node_t *n, gr_mk_setting *s, bool conds_ok) {
  s->line = line_of(n);
  if (n->type == YAML_SCALAR_NODE) {
    s->kind = GR_MK_NUMBER;
    if (!scalar_number(n, &s->number))
      return fail(p, n, GR_EFORMAT, "parameter '%s': '%s' is not a number", name, scalar_of(n));
    return GR_OK;
  }
  if (n->type == YAML_SEQUENCE_NODE) return parse_setting_list(p, name, n, s, conds_ok);
  if (!conds_ok) return fail(p, n, GR_EFORMAT, "parameter '%s': a filter value must be a number or a gradient", name, NULL);
  s->kind = GR_MK_CONDITIONS;
  s->conds = gr_calloc(1, sizeof *s->conds);
  if (!s->conds) return gr_error(GR_ENOMEM, "out of memory");
  s->n_conds = 1;
  return parse_condition(p, name, n, &s->conds[0]);
}

static gr_status parse_params(mk_parser *p, yaml_node_t *n, gr_mk_param **out, int *n_out) {
  if (is_null_scalar(n)) return GR_OK;
  if (n->type != YAML_MAPPING_NODE) return fail(p, n, GR_EFORMAT, "'parameters' must be a mapping", NULL, NULL);
  if (*out) return fail(p, n, GR_EFORMAT, "'parameters' given twice", NULL, NULL);
  int count = (int)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  *out = gr_calloc((size_t)(count ? count : 1), sizeof **out);
  if (!*out) return gr_error(GR_ENOMEM, "out of memory");
  for (int i = 0; i < count; i++) {
    yaml_node_pair_t *kv = &n->data.mapping.pairs.start[i];
    yaml_node_t *k = node_at(p, kv->key);
    const char *name = scalar_of(k);
    if (!name) return fail(p, k, GR_EFORMAT, "parameter names must be strings", NULL, NULL);
    for (int j = 0; j < i; j++)
      if (!strcmp((*out)[j].name, name)) return fail(p, k, GR_EFORMAT, "parameter '%s' given twice", name, NULL);
    gr_mk_param *prm = &(*out)[i];
    prm->line = line_of(k);
    if (!(prm->name = dup_str(name))) return gr_error(GR_ENOMEM, "out of memory");
    (*n_out)++;
    gr_status st = parse_setting(p, name, node_at(p, kv->value), &prm->setting, true);
    if (st) return st;
  }
  return GR_OK;
}

/* ---- models and slices ------------------------------------------------- */

static gr_status set_model_ref(mk_parser *p, yaml_node_t *k, yaml_node_t *v, gr_mk_model *m) {
  gr_status st = string_value(p, k, v, &m->model);
  if (st) return st;
  char *plus = strchr(m->model, '+');
  if (plus) {
    *plus = 0;
    if (!(m->lora = dup_str(plus + 1))) return gr_error(GR_ENOMEM, "out of memory");
  }
  return GR_OK;
}

static gr_status parse_layer_range(mk_parser *p, yaml_node_t *v, gr_mk_model *m) {
  double a, b;
  if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top - v->data.sequence.items.start != 2 ||
      !scalar_number(node_at(p, v->data.sequence.items.start[0]), &a) ||
      !scalar_number(node_at(p, v->data.sequence.items.start[1]), &b) || a < 0 || b <= a || a != (int)a ||
      b != (int)b)
    return fail(p, v, GR_EFORMAT, "layer_range must be [start, end] with 0 <= start < end", NULL, NULL);
  m->layer_range[0] = (int)a;
  m->layer_range[1] = (int)b;
  return GR_OK;
}

/* One entry of `models` (in_slice false) or of a slice's `sources`. */
static gr_status parse_model(mk_parser *p, yaml_node_t *n, gr_mk_model *m, bool in_slice) {
  m->line = line_of(n);
  if (n->type != YAML_MAPPING_NODE) return fail(p, n, GR_EFORMAT, "a model entry must be a mapping", NULL, NULL);
  bool has_range = false;
  for (yaml_node_pair_t *kv = n->data.mapping.pairs.start; kv < n->data.mapping.pairs.top; kv++) {
    yaml_node_t *k = node_at(p, kv->key), *v = node_at(p, kv->value);
    const char *ks = scalar_of(k);
    gr_status st;
    if (ks && !strcmp(ks, "model")) st = set_model_ref(p, k, v, m);
    else if (ks && !strcmp(ks, "parameters")) st = parse_params(p, v, &m->params, &m->n_params);
    else if (ks && in_slice && !strcmp(ks, "layer_range")) st = parse_layer_range(p, v, m), has_range = true;
    else st = fail(p, k, GR_EFORMAT, "unknown key '%s' in a %s entry", ks ? ks : "?", in_slice ? "slice source" : "model");
    if (st) return st;
  }
  if (!m->model) return fail(p, n, GR_EFORMAT, "model entry without 'model'", NULL, NULL);
  if (in_slice && !has_range) return fail(p, n, GR_EFORMAT, "slice source '%s' without layer_range", m->model, NULL);
  return GR_OK;
}

static gr_status parse_models(mk_parser *p, yaml_node_t *n, bool in_slice) {
  if (n->type != YAML_SEQUENCE_NODE)
    return fail(p, n, GR_EFORMAT, "'%s' must be a list", in_slice ? "sources" : "models", NULL);
  int count = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
  gr_mk_config *c = p->cfg;
  c->models = gr_calloc((size_t)(count ? count : 1), sizeof *c->models);
  if (!c->models) return gr_error(GR_ENOMEM, "out of memory");
  for (int i = 0; i < count; i++) {
    c->n_models++;
    gr_status st = parse_model(p, node_at(p, n->data.sequence.items.start[i]), &c->models[i], in_slice);
    if (st) return st;
  }
  return GR_OK;
}

/* Only one slice whose sources all start at layer 0 and span the same range:
 * the whole-model form; layer stacking (passthrough frankenmerges) is not. */
static gr_status parse_slices(mk_parser *p, yaml_node_t *n) {
  if (n->type != YAML_SEQUENCE_NODE) return fail(p, n, GR_EFORMAT, "'slices' must be a list", NULL, NULL);
  int count = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (count != 1)
    return fail(p, n, GR_EUNSUPPORTED, "%s slices: only one slice over whole models is supported (no layer stacking)",
                count > 1 ? "several" : "no", NULL);
  yaml_node_t *s = node_at(p, n->data.sequence.items.start[0]);
  yaml_node_t *sources = NULL;
  if (s->type != YAML_MAPPING_NODE) return fail(p, s, GR_EFORMAT, "a slice must be a mapping", NULL, NULL);
  for (yaml_node_pair_t *kv = s->data.mapping.pairs.start; kv < s->data.mapping.pairs.top; kv++) {
    const char *ks = scalar_of(node_at(p, kv->key));
    if (ks && !strcmp(ks, "sources")) sources = node_at(p, kv->value);
    else return fail(p, node_at(p, kv->key), GR_EUNSUPPORTED, "slice key '%s' is not supported (only 'sources')", ks, NULL);
  }
  if (!sources) return fail(p, s, GR_EFORMAT, "slice without 'sources'", NULL, NULL);
  gr_status st = parse_models(p, sources, true);
  if (st) return st;
  gr_mk_config *c = p->cfg;
  for (int i = 0; i < c->n_models; i++)
    if (c->models[i].layer_range[0] != 0 || c->models[i].layer_range[1] != c->models[0].layer_range[1])
      return gr_error(GR_EUNSUPPORTED, "%s:%d: slice source '%s': layer_range [%d, %d] differs from [0, %d]; only "
                      "whole-model slices are supported", p->what, c->models[i].line, c->models[i].model,
                      c->models[i].layer_range[0], c->models[i].layer_range[1], c->models[0].layer_range[1]);
  c->from_slices = true;
  return GR_OK;
}

/* ---- parameter names, per method (mergekit parameters/tensor_parameters) */

static bool name_in(const char *name, const char *const *list) {
  for (; *list; list++)
    if (!strcmp(name, *list)) return true;
  return false;
}

/* Per-model (tensor) parameters of a method. */
static bool tensor_param_known(gr_merge_method m, const char *name) {
  const gr_merge_method_info *info = gr_merge_info(m);
  if (m == GR_MERGE_LINEAR) return !strcmp(name, "weight");
  if (!info->is_task_arithmetic) return false;
  if (!strcmp(name, "weight") || !strcmp(name, "density")) return true;
  if (!strcmp(name, "gamma")) return info->sparsify == GR_SPARSIFY_MAGNITUDE_OUTLIERS;
  if (!strcmp(name, "epsilon")) return info->sparsify == GR_SPARSIFY_DELLA;
  return false;
}

static bool global_param_known(gr_merge_method m, const char *name) {
  static const char *const gta[] = {"int8_mask", "normalize", "rescale", "lambda", NULL};
  static const char *const lin[] = {"normalize", NULL}, *const sl[] = {"t", NULL}, *const ms[] = {"filter_wise", NULL};
  if (tensor_param_known(m, name)) return true;
  if (gr_merge_info(m)->is_task_arithmetic) return name_in(name, gta);
  if (m == GR_MERGE_LINEAR) return name_in(name, lin);
  if (m == GR_MERGE_SLERP) return name_in(name, sl);
  return name_in(name, ms);
}

static gr_status check_param_names(mk_parser *p) {
  gr_mk_config *c = p->cfg;
  const char *mname = gr_merge_info(c->method)->name;
  for (int i = 0; i < c->n_params; i++)
    if (!global_param_known(c->method, c->params[i].name))
      return gr_error(GR_EFORMAT, "%s:%d: unknown parameter '%s' for merge_method %s", p->what, c->params[i].line,
                      c->params[i].name, mname);
  for (int k = 0; k < c->n_models; k++)
    for (int i = 0; i < c->models[k].n_params; i++)
      if (!tensor_param_known(c->method, c->models[k].params[i].name))
        return gr_error(GR_EFORMAT, "%s:%d: unknown per-model parameter '%s' for merge_method %s (model %s)", p->what,
                        c->models[k].params[i].line, c->models[k].params[i].name, mname, c->models[k].model);
  return GR_OK;
}

/* ---- top level --------------------------------------------------------- */

static gr_status parse_dtype(mk_parser *p, yaml_node_t *k, yaml_node_t *v, char **dst) {
  static const char *const ok[] = {"float32", "float16", "bfloat16", NULL};
  gr_status st = string_value(p, k, v, dst);
  if (st) return st;
  if (!name_in(*dst, ok))
    return fail(p, v, GR_EUNSUPPORTED, "%s '%s' is not float32, float16 or bfloat16", scalar_of(k), *dst);
  return GR_OK;
}

static gr_status parse_top_key(mk_parser *p, yaml_node_t *k, yaml_node_t *v, bool *has_method, bool *has_tokenizer) {
  gr_mk_config *c = p->cfg;
  const char *ks = scalar_of(k);
  if (!ks) return fail(p, k, GR_EFORMAT, "top-level keys must be strings", NULL, NULL);
  if (!strcmp(ks, "merge_method")) {
    const char *s = scalar_of(v);
    if (!s) return fail(p, v, GR_EFORMAT, "merge_method must be a string", NULL, NULL);
    if (gr_merge_method_from_name(s, &c->method)) return fail(p, v, GR_EUNSUPPORTED, "unknown merge_method '%s'", s, NULL);
    *has_method = true;
    return GR_OK;
  }
  bool is_list_key = !strcmp(ks, "models") || !strcmp(ks, "slices") || !strcmp(ks, "modules");
  if (is_list_key) {
    bool empty = is_null_scalar(v) || (v->type == YAML_SEQUENCE_NODE && v->data.sequence.items.top == v->data.sequence.items.start) ||
                 (v->type == YAML_MAPPING_NODE && v->data.mapping.pairs.top == v->data.mapping.pairs.start);
    if (empty) return GR_OK; /* mergekit treats an empty list as absent */
    if (++p->n_model_keys > 1)
      return fail(p, k, GR_EFORMAT, "'%s': exactly one of 'models', 'slices' or 'modules' may be given", ks, NULL);
    if (!strcmp(ks, "models")) return parse_models(p, v, false);
    if (!strcmp(ks, "slices")) return parse_slices(p, v);
    return fail(p, k, GR_EUNSUPPORTED, "'modules' (multi-module merges) is not supported", NULL, NULL);
  }
  if (!strcmp(ks, "base_model")) {
    c->base_line = line_of(k);
    return string_value(p, k, v, &c->base_model);
  }
  if (!strcmp(ks, "parameters")) return parse_params(p, v, &c->params, &c->n_params);
  if (!strcmp(ks, "dtype")) return parse_dtype(p, k, v, &c->dtype);
  if (!strcmp(ks, "out_dtype")) return parse_dtype(p, k, v, &c->out_dtype);
  if (!strcmp(ks, "tokenizer_source")) return is_null_scalar(v) ? GR_OK : string_value(p, k, v, &c->tokenizer_source);
  if (!strcmp(ks, "chat_template")) return is_null_scalar(v) ? GR_OK : string_value(p, k, v, &c->chat_template);
  if (!strcmp(ks, "tokenizer")) {
    *has_tokenizer = !is_null_scalar(v);
    return GR_OK;
  }
  return fail(p, k, GR_EFORMAT, "unknown key '%s'", ks, NULL);
}

static gr_status parse_root(mk_parser *p) {
  yaml_node_t *root = yaml_document_get_root_node(&p->doc);
  if (!root || root->type != YAML_MAPPING_NODE)
    return gr_error(GR_EFORMAT, "%s: a merge configuration must be a YAML mapping", p->what);
  bool has_method = false, has_tokenizer = false;
  yaml_node_t *tok_key = NULL;
  for (yaml_node_pair_t *kv = root->data.mapping.pairs.start; kv < root->data.mapping.pairs.top; kv++) {
    yaml_node_t *k = node_at(p, kv->key);
    const char *ks = scalar_of(k);
    for (yaml_node_pair_t *prev = root->data.mapping.pairs.start; prev < kv; prev++) {
      const char *ps = scalar_of(node_at(p, prev->key));
      if (ks && ps && !strcmp(ks, ps)) return fail(p, k, GR_EFORMAT, "key '%s' given twice", ks, NULL);
    }
    if (ks && !strcmp(ks, "tokenizer")) tok_key = k;
    gr_status st = parse_top_key(p, k, node_at(p, kv->value), &has_method, &has_tokenizer);
    if (st) return st;
  }
  gr_mk_config *c = p->cfg;
  if (!has_method) return gr_error(GR_EFORMAT, "%s: 'merge_method' is required", p->what);
  if (p->n_model_keys != 1)
    return gr_error(GR_EFORMAT, "%s: exactly one of 'models', 'slices' or 'modules' must be present (found none)", p->what);
  if (c->tokenizer_source && has_tokenizer)
    return fail(p, tok_key, GR_EFORMAT, "cannot specify both tokenizer_source and tokenizer", NULL, NULL);
  if (has_tokenizer)
    return fail(p, tok_key, GR_EUNSUPPORTED, "'tokenizer' (vocabulary surgery) is not supported; use tokenizer_source", NULL, NULL);
  return check_param_names(p);
}

gr_status gr_mk_parse(const char *text, size_t len, const char *what, gr_mk_config **out) {
  if (!text || !out) return gr_error(GR_EARG, "mergekit config: NULL argument");
  *out = NULL;
  mk_parser p = {.what = what ? what : "config"};
  yaml_parser_t yp;
  if (!yaml_parser_initialize(&yp)) return gr_error(GR_ENOMEM, "%s: cannot start the YAML parser", p.what);
  yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
  if (!yaml_parser_load(&yp, &p.doc)) {
    gr_status st = gr_error(GR_EFORMAT, "%s:%d: YAML: %s", p.what, (int)yp.problem_mark.line + 1,
                            yp.problem ? yp.problem : "malformed");
    yaml_parser_delete(&yp);
    return st;
  }
  yaml_parser_delete(&yp);
  p.cfg = gr_calloc(1, sizeof *p.cfg);
  gr_status st = p.cfg ? parse_root(&p) : gr_error(GR_ENOMEM, "out of memory");
  yaml_document_delete(&p.doc);
  if (st) {
    gr_mk_free(p.cfg);
    return st;
  }
  *out = p.cfg;
  return GR_OK;
}

gr_status gr_mk_load(const char *path, gr_mk_config **out) {
  if (!path || !out) return gr_error(GR_EARG, "mergekit config: NULL argument");
  FILE *fp = fopen(path, "rb");
  if (!fp) return gr_error(GR_EIO, "%s: cannot open: %s", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 > cap) {
      cap = cap ? cap * 2 : 8192;
      if (cap > (64u << 20)) {
        free(buf);
        fclose(fp);
        return gr_error(GR_EFORMAT, "%s: larger than 64 MiB, not a merge configuration", path);
      }
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(fp);
        return gr_error(GR_ENOMEM, "%s: out of memory", path);
      }
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, fp);
    len += got;
    if (got == 0) break;
  }
  bool err = ferror(fp);
  fclose(fp);
  gr_status st = err ? gr_error(GR_EIO, "%s: read error", path) : gr_mk_parse(buf, len, path, out);
  free(buf);
  return st;
}

static void free_setting(gr_mk_setting *s) {
  gr_free(s->values);
  for (int i = 0; i < s->n_conds; i++) {
    gr_free(s->conds[i].filter);
    if (s->conds[i].value) free_setting(s->conds[i].value);
    gr_free(s->conds[i].value);
  }
  gr_free(s->conds);
}

static void free_params(gr_mk_param *ps, int n) {
  for (int i = 0; i < n; i++) {
    gr_free(ps[i].name);
    free_setting(&ps[i].setting);
  }
  gr_free(ps);
}

void gr_mk_free(gr_mk_config *c) {
  if (!c) return;
  for (int i = 0; i < c->n_models; i++) {
    gr_free(c->models[i].model);
    gr_free(c->models[i].lora);
    free_params(c->models[i].params, c->models[i].n_params);
  }
  gr_free(c->models);
  free_params(c->params, c->n_params);
  gr_free(c->base_model);
  gr_free(c->dtype);
  gr_free(c->out_dtype);
  gr_free(c->tokenizer_source);
  gr_free(c->chat_template);
  gr_free(c);
}
