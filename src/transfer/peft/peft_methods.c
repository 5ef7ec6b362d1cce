/* transfer/peft/peft_methods.c — the PEFT methods' rows of the transfer
 * registry (demo, study, finetune): build a PEFT config for the target
 * model and apply the method; the math lives in the method files (lora.c).
 *
 * Targets: every Linear and Conv2d of the model except the head (for LeNet:
 * both convs, classifier.0 and classifier.2), which is what PEFT's
 * target_modules list would name for this network; the new head stays
 * trainable (PEFT's modules_to_save). Options "r=N,alpha=A,scale=S,
 * targets=NAME;NAME" (defaults: LoRA/DoRA r 4 alpha 8; IA3 has no rank;
 * adapters r 4 (LeNet's first conv has 6 channels), s 1, or 4 for the
 * scaled parallel adapter). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/peft.h"
#include "graft/peft_io.h"
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

typedef struct method_opts {
  int r;
  double alpha, scale;
  const char *targets; /* ';'-separated module names, or NULL: every layer but the head */
  size_t targets_len;
} method_opts;

/* "r=4,alpha=8,scale=4,targets=a;b" -> opts; unknown keys are an error naming them. */
static gr_status parse_options(const char *opts, const char *method, method_opts *mo) {
  for (const char *p = opts; p && *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char kv[64];
    if (!strncmp(p, "targets=", 8)) {
      mo->targets = p + 8, mo->targets_len = n - 8;
      p = end ? end + 1 : p + n;
      continue;
    }
    if (n >= sizeof kv) return gr_error(GR_EARG, "%s: option '%.*s' too long", method, (int)n, p);
    memcpy(kv, p, n), kv[n] = 0;
    char *eq = strchr(kv, '='), *rest = NULL;
    if (eq && !strncmp(kv, "r=", 2)) mo->r = (int)strtol(eq + 1, &rest, 10);
    else if (eq && !strncmp(kv, "alpha=", 6)) mo->alpha = strtod(eq + 1, &rest);
    else if (eq && !strncmp(kv, "scale=", 6)) mo->scale = strtod(eq + 1, &rest);
    if (!rest || *rest || rest == eq + 1)
      return gr_error(GR_EARG, "%s: bad option '%s' (known: r=N, alpha=A, scale=S, targets=NAME;NAME...)", method, kv);
    p = end ? end + 1 : p + n;
  }
  return GR_OK;
}

static void split_targets(const method_opts *mo, target_names *t) {
  t->n = 0;
  for (size_t i = 0; i < mo->targets_len && t->n < MAX_TARGETS;) {
    size_t j = i;
    while (j < mo->targets_len && mo->targets[j] != ';') j++;
    if (j > i) {
      snprintf(t->name[t->n], GR_NAME_MAX, "%.*s", (int)(j - i), mo->targets + i);
      t->ptr[t->n] = t->name[t->n];
      t->n++;
    }
    i = j + 1;
  }
}

/* The adapter config of a registry row: the method's type and options, the
 * targets, and the head as modules_to_save. */
static gr_status peft_setup(gr_transfer_run *run, const char *method, gr_peft_type type, method_opts mo,
                            void (*tune)(gr_peft_config *cfg, const method_opts *mo)) {
  gr_status s = parse_options(run->options, method, &mo);
  if (s) return s;
  target_names *t = gr_malloc(sizeof *t);
  if (!t) return gr_error(GR_ENOMEM, "%s: out of memory", method);
  if (mo.targets) split_targets(&mo, t);
  else t->n = 0, list_layers(run->model->root, run->head, t);
  gr_peft_config *cfg = mo.r >= 1 ? gr_peft_config_new(type, mo.r, mo.alpha, t->ptr, t->n) : NULL;
  if (!cfg) s = mo.r >= 1 ? gr_error(GR_ENOMEM, "%s: out of memory", method) : gr_error(GR_EARG, "%s: r=%d", method, mo.r);
  if (!s && run->head) {
    cfg->modules_to_save = gr_calloc(2, sizeof(char *));
    size_t hl = strlen(run->head) + 1;
    if (cfg->modules_to_save && (cfg->modules_to_save[0] = gr_malloc(hl))) {
      memcpy(cfg->modules_to_save[0], run->head, hl);
      cfg->n_modules_to_save = 1;
    } else s = gr_error(GR_ENOMEM, "%s: out of memory", method);
  }
  if (!s && tune) tune(cfg, &mo);
  if (!s) s = gr_peft_apply(run->model, cfg, GR_LORA_INIT_PEFT, NULL);
  gr_peft_config_free(cfg);
  gr_free(t);
  return s;
}

static void tune_rslora(gr_peft_config *cfg, const method_opts *mo) { (void)mo, cfg->use_rslora = true; }
static void tune_dora(gr_peft_config *cfg, const method_opts *mo) { (void)mo, cfg->use_dora = true; }
static void tune_sequential(gr_peft_config *cfg, const method_opts *mo) { cfg->adapter_scaling = mo->scale; }
static void tune_parallel(gr_peft_config *cfg, const method_opts *mo) {
  cfg->adapter_parallel = true;
  cfg->adapter_scaling = mo->scale;
}

static const method_opts lora_defaults = {.r = 4, .alpha = 8, .scale = 1};
static const method_opts adapter_defaults = {.r = 4, .alpha = 8, .scale = 1};
static const method_opts scaled_adapter_defaults = {.r = 4, .alpha = 8, .scale = 4};

gr_status gr_method_lora_setup(gr_transfer_run *run) { return peft_setup(run, "lora", GR_PEFT_LORA, lora_defaults, NULL); }
gr_status gr_method_rslora_setup(gr_transfer_run *run) {
  return peft_setup(run, "rslora", GR_PEFT_LORA, lora_defaults, tune_rslora);
}
gr_status gr_method_dora_setup(gr_transfer_run *run) { return peft_setup(run, "dora", GR_PEFT_LORA, lora_defaults, tune_dora); }
gr_status gr_method_ia3_setup(gr_transfer_run *run) { return peft_setup(run, "ia3", GR_PEFT_IA3, lora_defaults, NULL); }
gr_status gr_method_adapter_seq_setup(gr_transfer_run *run) {
  return peft_setup(run, "adapter-seq", GR_PEFT_BOTTLENECK, adapter_defaults, tune_sequential);
}
gr_status gr_method_adapter_par_setup(gr_transfer_run *run) {
  return peft_setup(run, "adapter-par", GR_PEFT_BOTTLENECK, adapter_defaults, tune_parallel);
}
gr_status gr_method_adapter_scaled_setup(gr_transfer_run *run) {
  return peft_setup(run, "adapter-scaled", GR_PEFT_BOTTLENECK, scaled_adapter_defaults, tune_parallel);
}
