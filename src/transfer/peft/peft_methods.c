/* transfer/peft/peft_methods.c — the PEFT methods' rows of the transfer
 * registry (demo, study, finetune): build a PEFT config for the target
 * model and apply the method; the math lives in the method files (lora.c).
 *
 * Targets: every Linear and Conv2d of the model except the head (for LeNet:
 * both convs, classifier.0 and classifier.2), which is what PEFT's
 * target_modules list would name for this network; the new head stays
 * trainable (PEFT's modules_to_save). Options "r=N,alpha=A" (defaults r 4,
 * alpha 8). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/peft.h"
#include "transfer/methods.h"

enum { MAX_TARGETS = 64 };

typedef struct target_names {
  char name[MAX_TARGETS][GR_NAME_MAX];
  const char *ptr[MAX_TARGETS];
  int n;
} target_names;

static void list_layers(gr_module *mod, const char *head, target_names *t) {
  char p[GR_NAME_MAX];
  gr_module_path(mod, p, sizeof p);
  bool layer = mod->kind && (!strcmp(mod->kind, "Linear") || !strcmp(mod->kind, "Conv2d"));
  if (layer && mod->parent && (!head || strcmp(p, head)) && t->n < MAX_TARGETS) {
    snprintf(t->name[t->n], GR_NAME_MAX, "%s", p);
    t->ptr[t->n] = t->name[t->n];
    t->n++;
  }
  for (int i = 0; i < mod->n_children; i++) list_layers(mod->children[i], head, t);
}

/* "r=4,alpha=8" -> r, alpha; unknown keys are an error naming them. */
static gr_status parse_lora_options(const char *opts, const char *method, int *r, double *alpha) {
  for (const char *p = opts; p && *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char kv[64];
    if (n >= sizeof kv) return gr_error(GR_EARG, "%s: option '%.*s' too long", method, (int)n, p);
    memcpy(kv, p, n), kv[n] = 0;
    char *eq = strchr(kv, '='), *rest = NULL;
    if (eq && !strncmp(kv, "r=", 2)) *r = (int)strtol(eq + 1, &rest, 10);
    else if (eq && !strncmp(kv, "alpha=", 6)) *alpha = strtod(eq + 1, &rest);
    if (!rest || *rest || rest == eq + 1)
      return gr_error(GR_EARG, "%s: bad option '%s' (known: r=N, alpha=A)", method, kv);
    p = end ? end + 1 : p + n;
  }
  return GR_OK;
}

static gr_status lora_setup(gr_transfer_run *run, bool rslora) {
  const char *method = rslora ? "rslora" : "lora";
  int r = 4;
  double alpha = 8;
  gr_status s = parse_lora_options(run->options, method, &r, &alpha);
  if (s) return s;
  target_names *t = gr_malloc(sizeof *t);
  if (!t) return gr_error(GR_ENOMEM, "%s: out of memory", method);
  t->n = 0;
  list_layers(run->model->root, run->head, t);
  gr_peft_config *cfg = gr_peft_config_new(GR_PEFT_LORA, r, alpha, t->ptr, t->n);
  if (!cfg) s = gr_error(GR_ENOMEM, "%s: out of memory", method);
  if (cfg) cfg->use_rslora = rslora;
  if (!s) s = gr_lora_apply(run->model, cfg, GR_LORA_INIT_PEFT, NULL);
  if (!s && run->head) {
    char glob[GR_NAME_MAX + 4];
    snprintf(glob, sizeof glob, "%s.*", run->head);
    gr_model_freeze(run->model, glob, false);
  }
  gr_peft_config_free(cfg);
  gr_free(t);
  return s;
}

gr_status gr_method_lora_setup(gr_transfer_run *run) { return lora_setup(run, false); }
gr_status gr_method_rslora_setup(gr_transfer_run *run) { return lora_setup(run, true); }
