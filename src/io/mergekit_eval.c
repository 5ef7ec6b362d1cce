/* io/mergekit_eval.c — evaluates a parsed mergekit configuration per tensor
 * (mergekit's evaluate_setting and ConfigReader.parameter), finds each
 * tensor's layer position for gradients, and writes a configuration back as
 * YAML. Parsing is in mergekit_config.c. */
#include <stdlib.h>
#include <string.h>

#include "graft/mergekit.h"
#include "graft/tensor.h"

bool gr_mk_eval(const gr_mk_setting *s, const char *tensor, double t, double *out) {
  if (!s) return false;
  switch (s->kind) {
    case GR_MK_NUMBER: *out = s->number; return true;
    case GR_MK_GRADIENT: {
      double scaled = t * (double)(s->n_values - 1);
      int i0 = (int)scaled, i1 = i0 + 1 < s->n_values ? i0 + 1 : s->n_values - 1;
      if (i0 > s->n_values - 1) i0 = s->n_values - 1;
      double frac = scaled - i0;
      *out = (1 - frac) * s->values[i0] + frac * s->values[i1];
      return true;
    }
    case GR_MK_CONDITIONS:
      for (int i = 0; i < s->n_conds; i++) {
        const char *f = s->conds[i].filter;
        if (!f || !strcmp(f, "*") || (tensor && *tensor && strstr(tensor, f)))
          return gr_mk_eval(s->conds[i].value, tensor, t, out);
      }
      return false;
  }
  return false;
}

int gr_mk_merge_models(const gr_mk_config *c, int *idx) {
  int n = 0;
  for (int i = 0; i < c->n_models; i++) {
    bool is_base = c->base_model && !strcmp(c->models[i].model, c->base_model) && !c->models[i].lora;
    if (is_base && c->method != GR_MERGE_LINEAR) continue;
    idx[n++] = i;
  }
  return n;
}

static const gr_mk_param *find_param(const gr_mk_param *ps, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(ps[i].name, name)) return &ps[i];
  return NULL;
}

/* The model's own setting, then the global one (ConfigReader.parameter). */
static bool lookup(const gr_mk_config *c, const gr_mk_model *m, const char *name, const char *tensor, double t,
                   double *out) {
  const gr_mk_param *own = m ? find_param(m->params, m->n_params, name) : NULL;
  if (own && gr_mk_eval(&own->setting, tensor, t, out)) return true;
  const gr_mk_param *g = find_param(c->params, c->n_params, name);
  return g && gr_mk_eval(&g->setting, tensor, t, out);
}

gr_status gr_mk_resolve(const gr_mk_config *c, const char *tensor, double t, gr_merge_args *args,
                        gr_merge_model_params *params) {
  if (!c || !args || !params) return gr_error(GR_EARG, "mergekit: NULL argument");
  *args = gr_merge_args_defaults(c->method);
  args->name = tensor;
  const char *mname = gr_merge_info(c->method)->name;
  double v;
  if (lookup(c, NULL, "normalize", tensor, t, &v)) args->normalize = v != 0;
  if (lookup(c, NULL, "rescale", tensor, t, &v)) args->rescale = v != 0;
  if (lookup(c, NULL, "lambda", tensor, t, &v)) args->lambda = v;
  if (lookup(c, NULL, "filter_wise", tensor, t, &v)) args->filter_wise = v != 0;
  if (c->method == GR_MERGE_SLERP && !lookup(c, NULL, "t", tensor, t, &args->t))
    return gr_error(GR_EARG, "%s: missing required parameter 't' for tensor '%s'", mname, tensor);
  bool needs_weight = c->method == GR_MERGE_LINEAR || gr_merge_info(c->method)->is_task_arithmetic;
  int *idx = gr_malloc(sizeof(int) * (size_t)(c->n_models ? c->n_models : 1));
  if (!idx) return gr_error(GR_ENOMEM, "out of memory");
  int n = gr_mk_merge_models(c, idx);
  gr_status st = GR_OK;
  for (int k = 0; k < n && !st; k++) {
    const gr_mk_model *m = &c->models[idx[k]];
    gr_merge_model_params *p = &params[k];
    *p = gr_merge_model_params_defaults();
    if (!lookup(c, m, "weight", tensor, t, &p->weight) && needs_weight)
      st = gr_error(GR_EARG, "%s: missing required parameter 'weight' for model '%s' (tensor '%s')", mname, m->model,
                    tensor);
    lookup(c, m, "density", tensor, t, &p->density);
    lookup(c, m, "gamma", tensor, t, &p->gamma);
    lookup(c, m, "epsilon", tensor, t, &p->epsilon);
  }
  gr_free(idx);
  return st;
}

/* Layer index of a name (first all-digit component) and the length of the
 * prefix before it; -1 when there is none. */
static long layer_of(const char *name, size_t *prefix_len) {
  const char *p = name;
  while (*p) {
    const char *end = strchr(p, '.');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    size_t digits = strspn(p, "0123456789");
    if (len > 0 && digits == len && len < 9) {
      *prefix_len = (size_t)(p - name);
      return strtol(p, NULL, 10);
    }
    if (!end) break;
    p = end + 1;
  }
  return -1;
}

void gr_mk_layer_positions(const char *const *names, int n, double *t_out) {
  for (int i = 0; i < n; i++) {
    size_t pl;
    long li = layer_of(names[i], &pl);
    if (li < 0) {
      t_out[i] = 0;
      continue;
    }
    long max_layer = li;
    for (int j = 0; j < n; j++) {
      size_t pj;
      long lj = layer_of(names[j], &pj);
      if (lj > max_layer && pj == pl && !strncmp(names[i], names[j], pl)) max_layer = lj;
    }
    t_out[i] = max_layer > 0 ? (double)li / (double)max_layer : 1.0;
  }
}

int gr_mk_layer_count(const char *const *names, int n) {
  long max_layer = -1;
  for (int i = 0; i < n; i++) {
    size_t pl;
    long li = layer_of(names[i], &pl);
    if (li > max_layer) max_layer = li;
  }
  return (int)(max_layer + 1);
}

/* ---- writing ------------------------------------------------------------ */

static void write_escaped(FILE *fp, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', fp);
    fputc(*s, fp);
  }
}

static void write_str(FILE *fp, const char *s) {
  fputc('"', fp);
  write_escaped(fp, s);
  fputc('"', fp);
}

static void write_number_or_gradient(FILE *fp, const gr_mk_setting *s) {
  if (s->kind == GR_MK_NUMBER) {
    fprintf(fp, "%.17g", s->number);
    return;
  }
  fputc('[', fp);
  for (int i = 0; i < s->n_values; i++) fprintf(fp, "%s%.17g", i ? ", " : "", s->values[i]);
  fputc(']', fp);
}

static void write_params(FILE *fp, const gr_mk_param *ps, int n, int indent) {
  for (int i = 0; i < n; i++) {
    const gr_mk_setting *s = &ps[i].setting;
    fprintf(fp, "%*s%s:", indent, "", ps[i].name);
    if (s->kind != GR_MK_CONDITIONS) {
      fputc(' ', fp);
      write_number_or_gradient(fp, s);
      fputc('\n', fp);
      continue;
    }
    fputc('\n', fp);
    for (int k = 0; k < s->n_conds; k++) {
      fprintf(fp, "%*s- filter: ", indent + 2, "");
      if (s->conds[k].filter) write_str(fp, s->conds[k].filter);
      else fputs("null", fp);
      fprintf(fp, "\n%*s  value: ", indent + 2, "");
      write_number_or_gradient(fp, s->conds[k].value);
      fputc('\n', fp);
    }
  }
}

static void write_key_str(FILE *fp, const char *key, const char *v) {
  if (!v) return;
  fprintf(fp, "%s: ", key);
  write_str(fp, v);
  fputc('\n', fp);
}

gr_status gr_mk_write(const gr_mk_config *c, FILE *fp) {
  if (!c || !fp) return gr_error(GR_EARG, "mergekit write: NULL argument");
  fprintf(fp, "merge_method: %s\n", gr_merge_info(c->method)->name);
  write_key_str(fp, "base_model", c->base_model);
  fprintf(fp, "models:\n");
  for (int i = 0; i < c->n_models; i++) {
    const gr_mk_model *m = &c->models[i];
    fprintf(fp, "  - model: \"");
    write_escaped(fp, m->model);
    if (m->lora) {
      fputc('+', fp);
      write_escaped(fp, m->lora);
    }
    fprintf(fp, "\"\n");
    if (m->n_params) {
      fprintf(fp, "    parameters:\n");
      write_params(fp, m->params, m->n_params, 6);
    }
  }
  if (c->n_params) {
    fprintf(fp, "parameters:\n");
    write_params(fp, c->params, c->n_params, 2);
  }
  write_key_str(fp, "dtype", c->dtype);
  write_key_str(fp, "out_dtype", c->out_dtype);
  write_key_str(fp, "tokenizer_source", c->tokenizer_source);
  write_key_str(fp, "chat_template", c->chat_template);
  return ferror(fp) ? gr_error(GR_EIO, "mergekit write: write error") : GR_OK;
}
