/* graft/mergekit.h — mergekit's YAML merge configuration (mergekit/config.py,
 * FORMATS.md §3.1): parse, validate, evaluate per tensor, write back.
 *
 * A parameter value is a number (booleans are 0/1), a gradient list
 * (interpolated at t = layer_idx/(num_layers−1)) or a list of
 * {filter, value} conditions where the first filter that is a substring of
 * the tensor name wins (a null or "*" filter matches all). Evaluation follows
 * mergekit's evaluate_setting and ConfigReader.parameter: a model's own
 * parameters first, then the global `parameters`, then the method default.
 *
 * Accepted: `models`, or `slices` with one slice whose sources all span the
 * same layer_range (the form mergekit's own examples use for whole models).
 * Rejected with the key and its line: 0 or 2+ of models/slices/modules,
 * `modules` and multi-slice stacking (not supported), both tokenizer_source
 * and tokenizer, an unknown merge_method, top-level key or parameter (per
 * method: what mergekit's parameters()/tensor_parameters() declare). */
#ifndef GRAFT_MERGEKIT_H
#define GRAFT_MERGEKIT_H
#include <stdbool.h>
#include <stdio.h>

#include "graft/merge.h"
#include "graft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gr_mk_kind { GR_MK_NUMBER = 0, GR_MK_GRADIENT = 1, GR_MK_CONDITIONS = 2 } gr_mk_kind;

typedef struct gr_mk_setting gr_mk_setting;
typedef struct gr_mk_condition {
  char *filter; /* NULL: matches every tensor (as does "*") */
  gr_mk_setting *value;
} gr_mk_condition;

struct gr_mk_setting {
  gr_mk_kind kind;
  double number;          /* GR_MK_NUMBER */
  double *values;         /* GR_MK_GRADIENT */
  int n_values;
  gr_mk_condition *conds; /* GR_MK_CONDITIONS */
  int n_conds;
  int line;
};

typedef struct gr_mk_param {
  char *name;
  gr_mk_setting setting;
  int line;
} gr_mk_param;

typedef struct gr_mk_model {
  char *model;     /* path (or id) as written, without a "+lora" suffix */
  char *lora;      /* the part after '+', or NULL */
  gr_mk_param *params;
  int n_params;
  int line;
  int layer_range[2]; /* from slices; {0, 0} for models */
} gr_mk_model;

typedef struct gr_mk_config {
  gr_merge_method method;
  char *base_model;  /* NULL when absent */
  int base_line;
  gr_mk_model *models;
  int n_models;
  gr_mk_param *params; /* global parameters */
  int n_params;
  char *dtype, *out_dtype, *tokenizer_source, *chat_template; /* NULL when absent */
  bool from_slices;
} gr_mk_config;

/* Parses YAML text; `what` names it in messages ("merge.yml"). Errors
 * (GR_EFORMAT, GR_EUNSUPPORTED) say "what:LINE: ..." and name the key. */
gr_status gr_mk_parse(const char *text, size_t len, const char *what, gr_mk_config **out);
gr_status gr_mk_load(const char *path, gr_mk_config **out);
void gr_mk_free(gr_mk_config *c);
/* Writes the configuration back as YAML that gr_mk_parse (and mergekit) read. */
gr_status gr_mk_write(const gr_mk_config *c, FILE *fp);

/* Evaluates a setting for a tensor at layer position t (mergekit's
 * evaluate_setting). False when a condition list has no match (None). */
bool gr_mk_eval(const gr_mk_setting *s, const char *tensor, double t, double *out);

/* Indices (into c->models) of the models merged onto the base: every model
 * except the one equal to base_model (linear: every listed model). Returns
 * the count; idx has room for c->n_models. */
int gr_mk_merge_models(const gr_mk_config *c, int *idx);

/* Settings for one tensor: fills the global fields of *args (normalize,
 * rescale, lambda, t, filter_wise; method set) and params[k] for the k-th
 * model of gr_mk_merge_models. GR_EARG names the parameter, model and tensor
 * when a required one (weight, slerp's t) is missing. */
gr_status gr_mk_resolve(const gr_mk_config *c, const char *tensor, double t, gr_merge_args *args,
                        gr_merge_model_params *params);

/* Layer positions of tensor names: the first all-digit dotted component is
 * the layer index i among L layers sharing the same prefix; t = i/(L−1)
 * (1 when L == 1), and 0 for tensors outside layers (mergekit's t for
 * embeddings and the final norm/head). t_out has n entries. */
void gr_mk_layer_positions(const char *const *names, int n, double *t_out);
/* 1 + the largest layer index among the names (0 when none has one). */
int gr_mk_layer_count(const char *const *names, int n);

#ifdef __cplusplus
}
#endif
#endif
