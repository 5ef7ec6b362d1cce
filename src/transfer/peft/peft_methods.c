/* transfer/peft/peft_methods.c — the PEFT methods' rows of the transfer
 * registry (demo, study, finetune): build a PEFT config for the target
 * model and apply the method; the math lives in the method files (lora.c).
 *
 * Targets: every Linear and Conv2d of the model except the head (for LeNet:
 * both convs, classifier.0 and classifier.2), which is what PEFT's
 * target_modules list would name for this network; the new head stays
 * trainable (PEFT's modules_to_save). Options "r=N,alpha=A,scale=S,
 * targets=NAME;NAME,feedforward=NAME;NAME" (targets match as PEFT's list
 * does: the whole path or its dotted suffix, so "conv1" is every block's
 * conv1 too; "target_regex=RE" instead is PEFT's string target_modules, a
 * full match of the whole path, e.g. "conv1" the stem alone; RE holds no
 * ',' or ':'; IA3's feedforward_modules:
 * those scale their input; defaults: LoRA/DoRA r 4 alpha 8; IA3 has no rank;
 * adapters r 4 (LeNet's first conv has 6 channels), s 1, or 4 for the
 * scaled parallel adapter). "train_bn=1" also trains every BatchNorm2d's
 * affine weight and bias (counted as trainable; running statistics update
 * in training mode as before). "bn_stats=frozen" keeps every BatchNorm2d in
 * eval mode during adaptation: normalized with the source's running
 * statistics, which are not updated (default "bn_stats=train": batch
 * statistics, running statistics re-estimated on the target); with
 * train_bn=1 the affine parameters still train. */
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
  const char *target_regex; /* target_modules as PEFT's full-match regex (instead of targets), or NULL */
  size_t target_regex_len;
  const char *feedforward; /* IA3: ';'-separated feedforward_modules, or NULL */
  size_t feedforward_len;
  double train_bn; /* 1: BatchNorm2d weight/bias trainable too */
  bool bn_frozen;  /* bn_stats=frozen: BatchNorm2d in eval mode (running statistics fixed) */
} method_opts;

/* "r=4,alpha=8,scale=4,targets=a;b,feedforward=b" -> opts; unknown keys are
 * an error naming them. */
static gr_status parse_options(const char *opts, const char *method, method_opts *mo) {
  for (const char *p = opts; p && *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char kv[64];
    bool tg = !strncmp(p, "targets=", 8), ff = !strncmp(p, "feedforward=", 12), rx = !strncmp(p, "target_regex=", 13);
    if (!strncmp(p, "bn_stats=", 9)) {
      bool frozen = n == 15 && !strncmp(p + 9, "frozen", 6), train = n == 14 && !strncmp(p + 9, "train", 5);
      if (!frozen && !train)
        return gr_error(GR_EARG, "%s: bad option '%.*s' (bn_stats=frozen or bn_stats=train)", method, (int)n, p);
      mo->bn_frozen = frozen;
      p = end ? end + 1 : p + n;
      continue;
    }
    if (tg || ff || rx) {
      if (tg) mo->targets = p + 8, mo->targets_len = n - 8;
      else if (rx) mo->target_regex = p + 13, mo->target_regex_len = n - 13;
      else mo->feedforward = p + 12, mo->feedforward_len = n - 12;
      p = end ? end + 1 : p + n;
      continue;
    }
    if (n >= sizeof kv) return gr_error(GR_EARG, "%s: option '%.*s' too long", method, (int)n, p);
    memcpy(kv, p, n), kv[n] = 0;
    char *eq = strchr(kv, '='), *rest = NULL;
    if (eq && !strncmp(kv, "r=", 2)) mo->r = (int)strtol(eq + 1, &rest, 10);
    else if (eq && !strncmp(kv, "alpha=", 6)) mo->alpha = strtod(eq + 1, &rest);
    else if (eq && !strncmp(kv, "scale=", 6)) mo->scale = strtod(eq + 1, &rest);
    else if (eq && !strncmp(kv, "train_bn=", 9)) mo->train_bn = strtod(eq + 1, &rest);
    if (rest && (mo->train_bn != 0 && mo->train_bn != 1)) rest = eq; /* 0 or 1 only */
    if (!rest || *rest || rest == eq + 1)
      return gr_error(GR_EARG, "%s: bad option '%s' (known: r=N, alpha=A, scale=S, targets=NAME;NAME..., target_regex=RE, feedforward=NAME;..., train_bn=0|1, bn_stats=frozen|train)", method, kv);
    p = end ? end + 1 : p + n;
  }
  if (mo->target_regex && (mo->targets || !mo->target_regex_len))
    return gr_error(GR_EARG, "%s: target_regex= needs a pattern and excludes targets=", method);
  return GR_OK;
}

static void split_names(const char *s, size_t len, target_names *t) {
  t->n = 0;
  for (size_t i = 0; i < len && t->n < MAX_TARGETS;) {
    size_t j = i;
    while (j < len && s[j] != ';') j++;
    if (j > i) {
      snprintf(t->name[t->n], GR_NAME_MAX, "%.*s", (int)(j - i), s + i);
      t->ptr[t->n] = t->name[t->n];
      t->n++;
    }
    i = j + 1;
  }
}

/* names[0..n) as a string list owned by the config. */
static gr_status config_list(char ***dst, int *n_dst, const char *const *names, int n) {
  *dst = gr_calloc((size_t)n + 1, sizeof(char *));
  for (int i = 0; *dst && i < n; i++) {
    size_t len = strlen(names[i]) + 1;
    if (!((*dst)[i] = gr_malloc(len))) break;
    memcpy((*dst)[i], names[i], len);
    (*n_dst)++;
  }
  return *dst && *n_dst == n ? GR_OK : gr_error(GR_ENOMEM, "PEFT method: out of memory");
}

/* train_bn=1: every BatchNorm2d weight and bias trainable again. */
static gr_status unfreeze_batchnorm(gr_model *m, const char *method) {
  int n = 0;
  for (int i = 0; i < m->n_entries; i++) {
    gr_named_tensor *e = &m->entries[i];
    if (!e->buffer && e->owner && e->owner->kind && !strcmp(e->owner->kind, "BatchNorm2d"))
      e->t->requires_grad = true, n++;
  }
  return n ? GR_OK : gr_error(GR_ENOTFOUND, "%s: train_bn=1 but the model has no BatchNorm2d", method);
}

/* bn_stats=frozen: every BatchNorm2d module (and its children) in eval mode,
 * so adaptation normalizes with the source's running statistics and leaves
 * them as they are. */
static int eval_batchnorm(gr_module *mod) {
  if (mod->kind && !strcmp(mod->kind, "BatchNorm2d")) {
    gr_module_train(mod, false);
    return 1;
  }
  int n = 0;
  for (int i = 0; i < mod->n_children; i++) n += eval_batchnorm(mod->children[i]);
  return n;
}

/* The adapter config of a registry row: the method's type and options, the
 * targets, and the head as modules_to_save. */
static gr_status peft_setup(gr_transfer_run *run, const char *method, gr_peft_type type, method_opts mo,
                            void (*tune)(gr_peft_config *cfg, const method_opts *mo)) {
  gr_status s = parse_options(run->options, method, &mo);
  if (s) return s;
  target_names *t = gr_malloc(sizeof *t);
  if (!t) return gr_error(GR_ENOMEM, "%s: out of memory", method);
  if (mo.targets) split_names(mo.targets, mo.targets_len, t);
  else if (mo.target_regex) t->n = 0;
  else t->n = 0, list_layers(run->model->root, run->head, t);
  gr_peft_config *cfg = mo.r >= 1 ? gr_peft_config_new(type, mo.r, mo.alpha, t->ptr, t->n) : NULL;
  if (!cfg) s = mo.r >= 1 ? gr_error(GR_ENOMEM, "%s: out of memory", method) : gr_error(GR_EARG, "%s: r=%d", method, mo.r);
  if (!s && mo.target_regex) { /* PEFT's target_modules as a string: re.fullmatch on each module path */
    if (!(cfg->target_modules_regex = gr_malloc(mo.target_regex_len + 1))) s = gr_error(GR_ENOMEM, "%s: out of memory", method);
    else memcpy(cfg->target_modules_regex, mo.target_regex, mo.target_regex_len), cfg->target_modules_regex[mo.target_regex_len] = 0;
  }
  if (!s && run->head) s = config_list(&cfg->modules_to_save, &cfg->n_modules_to_save, &run->head, 1);
  if (!s && mo.feedforward && type != GR_PEFT_IA3)
    s = gr_error(GR_EARG, "%s: feedforward= is an IA3 option (feedforward_modules)", method);
  if (!s && mo.feedforward) {
    split_names(mo.feedforward, mo.feedforward_len, t);
    s = config_list(&cfg->feedforward_modules, &cfg->n_feedforward_modules, t->ptr, t->n);
  }
  if (!s && tune) tune(cfg, &mo);
  if (!s) s = gr_peft_apply(run->model, cfg, GR_LORA_INIT_PEFT, NULL);
  if (!s && mo.train_bn == 1) s = unfreeze_batchnorm(run->model, method);
  if (!s && mo.bn_frozen && eval_batchnorm(run->model->root) == 0)
    s = gr_error(GR_ENOTFOUND, "%s: bn_stats=frozen but the model has no BatchNorm2d", method);
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

/* The lora row (and the CorDA rows, which set LoRA up through it). "freeze_a=1"
 * (an ablation): every lora_A stays at its init and only lora_B (and the
 * head) train, so an update B' A reads the input only through A's rows. */
gr_status gr_method_lora_setup(gr_transfer_run *run) {
  char rest[512];
  double freeze_a = 0;
  gr_status s = gr_transfer_take_option(run->options, "freeze_a", rest, sizeof rest, &freeze_a, NULL);
  if (!s && freeze_a != 0 && freeze_a != 1) s = gr_error(GR_EARG, "lora: freeze_a=%g must be 0 or 1", freeze_a);
  if (s) return s;
  const char *given = run->options;
  run->options = rest[0] ? rest : NULL;
  s = peft_setup(run, "lora", GR_PEFT_LORA, lora_defaults, NULL);
  run->options = given;
  if (!s && freeze_a == 1 && gr_model_freeze(run->model, "*.lora_A.*", true) < 1)
    s = gr_error(GR_ENOTFOUND, "lora: freeze_a=1 but no lora_A parameter");
  return s;
}
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
