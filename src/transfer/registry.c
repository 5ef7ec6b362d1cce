/* transfer/registry.c — the table of transfer methods (see graft/transfer.h)
 * and what every method shares: copying source weights by name and the
 * prepare sequence. To add a method: write its setup in its own file and
 * add one row below. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/peft.h"
#include "graft/transfer.h"
#include "transfer/methods.h"

/* The option keys of the PEFT rows (see peft_methods.c parse_options) and of CorDA (corda.c). */
#define PEFT_KEYS "r,alpha,scale,targets,target_regex,feedforward,train_bn,bn_stats"
#define LORA_KEYS "freeze_a," PEFT_KEYS
#define CORDA_KEYS "samples,balanced," LORA_KEYS

static const gr_transfer_method methods[] = {
    {"scratch", "train the target model from random init (no transfer)", false, NULL, NULL, NULL},
    {"linear-probe", "train only a new head on frozen source features", true, gr_method_linear_probe_setup, NULL, NULL},
    {"finetune", "train every layer, starting from the source weights", true, NULL, NULL, NULL},
    {"finetune-frozen-early", "freeze the early layers (features), train the rest", true,
     gr_method_freeze_early_setup, NULL, "freeze"},
    {"finetune-discriminative", "fine-tune with a 10x smaller lr for the backbone", true, NULL,
     gr_method_discriminative_optim, "backbone_lr"},
    {"lora", "LoRA r=4 alpha=8 on every conv/linear but the head, new head trained (PEFT math)", true,
     gr_method_lora_setup, NULL, LORA_KEYS},
    {"rslora", "rsLoRA (scaling alpha/sqrt r) r=4 alpha=8, same targets as lora", true, gr_method_rslora_setup, NULL,
     PEFT_KEYS},
    {"dora", "DoRA (LoRA r=4 alpha=8 + magnitude vector), same targets as lora", true, gr_method_dora_setup, NULL,
     PEFT_KEYS},
    {"ia3", "IA3 rescaling vectors on every conv/linear output but the head, new head trained", true,
     gr_method_ia3_setup, NULL, PEFT_KEYS},
    {"adapter-seq", "sequential bottleneck adapter r=4 after every conv/linear but the head (Houlsby/Pfeiffer)", true,
     gr_method_adapter_seq_setup, NULL, PEFT_KEYS},
    {"adapter-par", "parallel bottleneck adapter r=4 beside every conv/linear but the head (He et al.)", true,
     gr_method_adapter_par_setup, NULL, PEFT_KEYS},
    {"adapter-scaled", "scaled parallel adapter r=4 s=4 (He et al.), same targets", true,
     gr_method_adapter_scaled_setup, NULL, PEFT_KEYS},
    {"corda-kp", "CorDA knowledge-preserved: LoRA r=4 from the smallest components of SVD(W C_source)", true,
     gr_method_corda_kp_setup, NULL, CORDA_KEYS},
    {"corda-ip", "CorDA instruction-previewed: LoRA r=4 from the largest components of SVD(W C_target)", true,
     gr_method_corda_ip_setup, NULL, CORDA_KEYS},
    {"scalearn", "ScaLearn: 4 frozen LoRA source adapters (source, negated, rot90, target) scaled per channel",
     true, gr_method_scalearn_setup, NULL, PEFT_KEYS},
    {"scalearn-uniform", "ScaLearnUniform: one learned scalar per source adapter and layer", true,
     gr_method_scalearn_uniform_setup, NULL, PEFT_KEYS},
    {"scalearn++", "ScaLearn++: per-channel scales shared by the layers of equal width", true,
     gr_method_scalearn_pp_setup, NULL, PEFT_KEYS},
    {"scalearn-uniform++", "ScaLearnUniform++: 4 scalars shared by every layer", true,
     gr_method_scalearn_uniform_pp_setup, NULL, PEFT_KEYS},
};

/* The keys every method takes (take_common below). */
static const char common_keys[] = "lr,clip,adapter_lr,b_lr,adamw,warmup,cosine";

const char *gr_transfer_common_keys(void) { return common_keys; }

int gr_transfer_count(void) { return (int)(sizeof methods / sizeof methods[0]); }

const gr_transfer_method *gr_transfer_at(int i) {
  return i >= 0 && i < gr_transfer_count() ? &methods[i] : NULL;
}

static bool key_in(const char *key, size_t len, const char *list) {
  for (const char *p = list; p && *p;) {
    size_t n = strcspn(p, ",");
    if (n == len && !strncmp(p, key, len)) return true;
    p += n + (p[n] == ',');
  }
  return false;
}

/* Every option after the name ("name:k=v:k=v" or "name:k=v,k=v") is key=value
 * with a key the method or every method takes. */
static bool options_known(const gr_transfer_method *m, const char *spec) {
  if (!*spec) {
    gr_error(GR_EARG, "transfer method '%s': nothing after ':' (want name:key=value...)", m->name);
    return false;
  }
  for (const char *p = spec; *p;) {
    size_t len = strcspn(p, ":,"), key = strcspn(p, "=:,");
    if (key == len || key == 0 || !(key_in(p, key, common_keys) || key_in(p, key, m->keys))) {
      gr_error(GR_EARG, "transfer method '%s': bad option '%.*s' (want key=value with key one of %s%s%s)", m->name,
               (int)len, p, common_keys, m->keys ? "," : "", m->keys ? m->keys : "");
      return false;
    }
    p += len + (p[len] != 0);
  }
  return true;
}

const gr_transfer_method *gr_transfer_find(const char *name) {
  char known[512];
  size_t k = 0, len = name ? strcspn(name, ":") : 0;
  known[0] = 0;
  for (int i = 0; i < gr_transfer_count(); i++) {
    if (name && strlen(methods[i].name) == len && !strncmp(methods[i].name, name, len))
      return !name[len] || options_known(&methods[i], name + len + 1) ? &methods[i] : NULL;
    k += (size_t)snprintf(known + k, k < sizeof known ? sizeof known - k : 0, "%s%s", i ? ", " : "", methods[i].name);
  }
  gr_error(GR_ENOTFOUND, "unknown transfer method '%s' (known: %s)", name ? name : "(null)", known);
  return NULL;
}

static bool under(const char *name, const char *prefix) {
  size_t n = strlen(prefix);
  return !strncmp(name, prefix, n) && (name[n] == '.' || name[n] == 0);
}

int gr_transfer_copy_weights(gr_model *dst, const gr_model *src, const char *skip) {
  if (!dst || !src) {
    gr_error(GR_EARG, "copy weights: NULL model");
    return -1;
  }
  int n = 0;
  for (int i = 0; i < src->n_entries; i++) {
    const gr_named_tensor *e = &src->entries[i];
    if (skip && skip[0] && under(e->name, skip)) continue;
    for (int j = 0; j < dst->n_entries; j++) {
      gr_named_tensor *d = &dst->entries[j];
      if (strcmp(d->name, e->name) || d->buffer != e->buffer) continue;
      if (!gr_same_shape(d->t, e->t)) {
        char a[64], b[64];
        gr_error(GR_ESHAPE, "copy weights: '%s' is %s in the source but %s in the target", e->name,
                 gr_shape_str(e->t, a, sizeof a), gr_shape_str(d->t, b, sizeof b));
        return -1;
      }
      memcpy(d->t->data, e->t->data, (size_t)e->t->numel * sizeof(float));
      n++;
    }
  }
  return n;
}

gr_status gr_transfer_take_option(const char *opts, const char *key, char *rest, size_t n, double *value,
                                  bool *found) {
  size_t k = 0, kl = key ? strlen(key) : 0;
  if (!key || !rest || n == 0 || !value) return gr_error(GR_EARG, "transfer options: NULL argument");
  rest[0] = 0;
  if (found) *found = false;
  for (const char *p = opts; p && *p;) {
    size_t len = strcspn(p, ",");
    if (len > kl && !strncmp(p, key, kl) && p[kl] == '=') {
      char *end = NULL;
      double v = strtod(p + kl + 1, &end);
      if (end != p + len || end == p + kl + 1 || !isfinite(v))
        return gr_error(GR_EARG, "transfer options: bad value in '%.*s' (%s=NUMBER)", (int)len, p, key);
      *value = v;
      if (found) *found = true;
    } else {
      if (k + len + 2 > n) return gr_error(GR_EARG, "transfer options: '%s' too long", opts);
      k += (size_t)snprintf(rest + k, n - k, "%s%.*s", k ? "," : "", (int)len, p);
    }
    p += len + (p[len] == ',');
  }
  return GR_OK;
}

/* "adamw=1": AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0) at the
 * run's lr instead of the given optimizer; "warmup=N": linear warmup from 0
 * over the first N steps; "cosine=1": cosine decay to 0 over the run (the
 * PEFT fine-tuning recipe: AdamW, warmup, decaying lr). Into run->optim and
 * run->train->sched; rest gets the other options. */
static gr_status take_recipe(const gr_transfer_method *m, gr_transfer_run *run, const char *opts, char *rest,
                             size_t n) {
  double adamw = 0, warmup = 0, cosine = 0;
  char tmp[512], tmp2[512];
  gr_status s = gr_transfer_take_option(opts, "adamw", tmp, sizeof tmp, &adamw, NULL);
  if (!s) s = gr_transfer_take_option(tmp, "warmup", tmp2, sizeof tmp2, &warmup, NULL);
  if (!s) s = gr_transfer_take_option(tmp2, "cosine", rest, n, &cosine, NULL);
  if (!s && ((adamw != 0 && adamw != 1) || (cosine != 0 && cosine != 1) || !(warmup >= 0 && warmup <= 1e9) ||
             warmup != floor(warmup)))
    s = gr_error(GR_EARG, "transfer '%s': adamw=%g and cosine=%g must be 0 or 1, warmup=%g a whole number of steps",
                 m->name, adamw, cosine, warmup);
  if (s) return s;
  if (adamw == 1) *run->optim = gr_adamw_cfg(run->optim->lr, 0);
  if (warmup > 0) run->train->sched.warmup_steps = (int64_t)warmup, run->train->sched.warmup_start = 0;
  if (cosine == 1) run->train->sched.kind = GR_SCHED_COSINE, run->train->sched.min_lr = 0;
  return GR_OK;
}

/* The options every method takes: "lr=X" (the run's learning rate, into
 * run->optim), "clip=C" (global grad-norm clipping, into run->train),
 * "adapter_lr=K" (into adapter_lr[0], 1 when absent), "b_lr=K" (LoRA+:
 * the up factor's lr is K times the rest of the adapter's, adapter_lr[1])
 * and take_recipe's; the method's own options into rest. */
static gr_status take_common(const gr_transfer_method *m, gr_transfer_run *run, char *rest, size_t n,
                             double adapter_lr[2]) {
  double lr = run->optim->lr, clip = run->train->clip_norm;
  char tmp[512], tmp2[512], tmp3[512], tmp4[512];
  adapter_lr[0] = adapter_lr[1] = 1;
  gr_status s = gr_transfer_take_option(run->options, "lr", tmp, sizeof tmp, &lr, NULL);
  if (!s) s = gr_transfer_take_option(tmp, "clip", tmp2, sizeof tmp2, &clip, NULL);
  if (!s) s = gr_transfer_take_option(tmp2, "adapter_lr", tmp3, sizeof tmp3, &adapter_lr[0], NULL);
  if (!s) s = gr_transfer_take_option(tmp3, "b_lr", tmp4, sizeof tmp4, &adapter_lr[1], NULL);
  if (!s) run->optim->lr = (float)lr; /* before the recipe, which keeps the lr */
  if (!s) s = take_recipe(m, run, tmp4, rest, n);
  if (!s && !(lr > 0)) s = gr_error(GR_EARG, "transfer '%s': lr=%g must be > 0", m->name, lr);
  if (!s && !(clip >= 0)) s = gr_error(GR_EARG, "transfer '%s': clip=%g must be >= 0", m->name, clip);
  for (int i = 0; i < 2 && !s; i++)
    if (!(adapter_lr[i] > 0))
      s = gr_error(GR_EARG, "transfer '%s': %s=%g must be > 0", m->name, i ? "b_lr" : "adapter_lr", adapter_lr[i]);
  if (!s) run->optim->lr = (float)lr, run->train->clip_norm = (float)clip;
  return s;
}

/* Multiplies the lr of every adapter parameter (gr_peft_param_is_adapter)
 * by k[0] and that of the up factors' (gr_peft_param_is_up) by k[1] too;
 * GR_EARG when a factor != 1 has no parameter to act on. */
static gr_status scale_adapter_lr(const gr_transfer_method *m, gr_transfer_run *run, gr_optim *o, const double k[2]) {
  int n = 0, n_up = 0;
  for (int i = 0; i < o->n && i < run->model->n_entries; i++) {
    const gr_named_tensor *e = &run->model->entries[i];
    if (gr_peft_param_is_adapter(e)) o->lr_scale[i] *= (float)k[0], n++;
    if (gr_peft_param_is_up(e)) o->lr_scale[i] *= (float)k[1], n_up++;
  }
  if (n == 0 && k[0] != 1)
    return gr_error(GR_EARG, "transfer '%s': adapter_lr=%g but the model has no adapter parameter", m->name, k[0]);
  if (n_up == 0 && k[1] != 1)
    return gr_error(GR_EARG, "transfer '%s': b_lr=%g but the model has no up factor (lora_B, adapter_up)", m->name,
                    k[1]);
  return GR_OK;
}

gr_status gr_transfer_prepare(const gr_transfer_method *m, gr_transfer_run *run) {
  if (!m || !run || !run->model || !run->train || !run->optim) return gr_error(GR_EARG, "transfer prepare: NULL argument");
  char rest[512];
  double adapter_lr[2];
  gr_status s = take_common(m, run, rest, sizeof rest, adapter_lr);
  if (s) return s;
  if (m->uses_source) {
    if (!run->source) return gr_error(GR_EARG, "transfer method '%s' needs a source model", m->name);
    int n = gr_transfer_copy_weights(run->model, run->source, run->copy_head ? NULL : run->head);
    if (n < 0) return gr_last_status();
    if (n == 0) return gr_error(GR_ENOTFOUND, "transfer '%s': no source weight matches the target model", m->name);
  }
  const char *given = run->options;
  run->options = rest[0] ? rest : NULL;
  s = m->setup ? m->setup(run) : GR_OK;
  run->options = given;
  return s;
}

gr_status gr_transfer_prepare_optim(const gr_transfer_method *m, gr_transfer_run *run, gr_optim *o) {
  if (!m || !run || !o) return gr_error(GR_EARG, "transfer prepare_optim: NULL argument");
  char rest[512];
  double adapter_lr[2];
  gr_optim_cfg keep = *run->optim;
  gr_train_cfg keep_train = *run->train;
  gr_status s = take_common(m, run, rest, sizeof rest, adapter_lr);
  *run->optim = keep, *run->train = keep_train; /* lr=, clip=, the recipe were applied by gr_transfer_prepare */
  const char *given = run->options;
  run->options = rest[0] ? rest : NULL;
  if (!s && m->setup_optim) s = m->setup_optim(run, o);
  run->options = given;
  return s ? s : scale_adapter_lr(m, run, o, adapter_lr);
}
