/* transfer/peft/peft_layer.c — what every PEFT method of graft/peft.h shares
 * (see peft_layer.h): the target Linear/Conv2d and its sizes, the factor
 * modules, installing a wrapper with the base as its "base_layer" child,
 * recognizing wrappers and their parameters, applying a config to a model
 * (target selection, all-or-nothing checks, freezing, modules_to_save) and
 * merge/unmerge/unwrap over a model. The methods' math is in their files. */
#include <stdio.h>
#include <string.h>

#include "transfer/peft/peft_layer.h"

static const peft_layer_ops *const all_ops[] = {&peft_lora_ops, &peft_ia3_ops, &peft_adapter_ops};

peft_layer *peft_layer_of(const gr_module *mod) {
  if (!mod || !mod->kind || !mod->cfg) return NULL;
  for (size_t i = 0; i < sizeof all_ops / sizeof *all_ops; i++)
    if (!strcmp(mod->kind, all_ops[i]->kind) && ((peft_layer *)mod->cfg)->ops == all_ops[i]) return mod->cfg;
  return NULL;
}

bool gr_peft_is_layer(const gr_module *mod) { return peft_layer_of(mod) != NULL; }

bool gr_peft_param_is_adapter(const gr_named_tensor *e) {
  if (!e || !e->owner || e->buffer) return false;
  if (peft_layer_of(e->owner)) return true; /* the wrapper's own: magnitude, ia3_l */
  for (const gr_module *child = e->owner, *par = child->parent; par; child = par, par = par->parent)
    if (peft_layer_of(par)) return child != par->children[0];
  return false;
}

bool gr_peft_param_is_up(const gr_named_tensor *e) {
  if (!gr_peft_param_is_adapter(e) || peft_layer_of(e->owner)) return false;
  const gr_module *child = e->owner;
  while (child->parent && !peft_layer_of(child->parent)) child = child->parent;
  return !strcmp(child->name, "lora_B") || !strcmp(child->name, "adapter_up");
}

gr_status peft_target_get(gr_model *m, const char *path, const char *method, peft_target *t) {
  if (!m || !m->root || !path) return gr_error(GR_EARG, "%s: NULL argument", method);
  memset(t, 0, sizeof *t);
  gr_module *base = gr_module_find(m->root, path);
  if (!base) return gr_error(GR_ENOTFOUND, "%s: no module '%s' in the model", method, path);
  if (peft_layer_of(base)) return gr_error(GR_ESTATE, "%s: module '%s' is already adapted (%s)", method, path, base->kind);
  if (base->kind && !strcmp(base->kind, "GPT2MLP") && !strcmp(method, "Adapter")) {
    /* the GPT's feed-forward sublayer, a C -> C map: the unified view's FFN
     * site (MAM's scaled parallel adapter, Houlsby's sequential one) */
    gr_module *proj = gr_module_find(base, "c_proj");
    gr_tensor *wp = proj ? gr_module_param_get(proj, "weight") : NULL;
    if (!wp) return gr_error(GR_EUNSUPPORTED, "%s: feed-forward module '%s' has no c_proj", method, path);
    snprintf(t->path, sizeof t->path, "%s", path);
    t->base = base;
    t->in = t->out = t->in_ch = wp->shape[0];
    return GR_OK;
  }
  gr_tensor *w = gr_module_param_get(base, "weight");
  t->conv = base->kind && !strcmp(base->kind, "Conv2d");
  if (!w || !(t->conv || (base->kind && !strcmp(base->kind, "Linear"))))
    return gr_error(GR_EUNSUPPORTED, "%s: module '%s' is a %s; %s targets Linear and Conv2d", method, path,
                    base->kind ? base->kind : "(unknown)", method);
  snprintf(t->path, sizeof t->path, "%s", path);
  t->base = base;
  t->out = w->shape[0];
  t->in = w->numel / w->shape[0];
  t->in_ch = w->shape[1];
  return GR_OK;
}

gr_status peft_check_rank(const peft_target *t, const char *method, int r, int64_t limit, const char *limit_what) {
  if (r < 1 || r > limit)
    return gr_error(GR_EARG, "%s: r=%d for module '%s' must be in [1, %s=%lld] (in=%lld, out=%lld)", method, r, t->path,
                    limit_what, (long long)limit, (long long)t->in, (long long)t->out);
  return GR_OK;
}

gr_module *peft_layer_new(gr_model *m, const peft_layer_ops *ops, gr_module_forward_fn forward, size_t cfg_size,
                          const peft_target *t) {
  gr_module *w = gr_module_new(m, ops->kind, forward);
  peft_layer *L = w ? gr_arena_alloc(m->arena, cfg_size) : NULL;
  if (!L) {
    gr_error(GR_ENOMEM, "%s: out of memory wrapping '%s'", ops->kind, t->path);
    return NULL;
  }
  memset(L, 0, cfg_size);
  L->ops = ops;
  L->t = *t;
  w->cfg = L;
  w->training = t->base->training;
  return w;
}

gr_tensor *peft_base_forward(gr_module *w, gr_ctx *c, gr_tensor *x) {
  gr_module *base = w->children[0];
  return base->forward(base, c, x);
}

gr_status peft_make_factors(gr_model *m, const peft_target *t, int r, bool from_output, bool bias, gr_module **down,
                            gr_module **up) {
  if (t->conv && from_output) {
    *down = gr_nn_conv2d(m, t->out, r, 1, 1, 0, bias);
  } else if (t->conv) {
    const gr_conv2d_opts *co = gr_nn_conv2d_opts(t->base);
    gr_tensor *w = gr_module_param_get(t->base, "weight");
    if (!co || co->stride_h != co->stride_w || co->pad_h != co->pad_w || w->shape[2] != w->shape[3] || co->groups > 1 ||
        co->dil_h > 1 || co->dil_w > 1)
      return gr_error(GR_EUNSUPPORTED, "PEFT: Conv2d '%s' has a non-square kernel/stride/padding, groups or dilation",
                      t->path);
    *down = gr_nn_conv2d(m, t->in_ch, r, (int)w->shape[2], co->stride_h ? co->stride_h : 1, co->pad_h, bias);
  } else {
    *down = gr_nn_linear(m, from_output ? t->out : t->in, r, bias);
  }
  *up = t->conv ? gr_nn_conv2d(m, r, t->out, 1, 1, 0, bias) : gr_nn_linear(m, r, t->out, bias);
  return *down && *up ? GR_OK : gr_last_status();
}

/* Gives base's parameters their own copies of data and grad, so a layout of
 * the model without base (gr_module_replace) leaves them valid; the next
 * layout moves them back into the flat vectors and frees the copies. */
static gr_status detach_storage(gr_module *base) {
  for (int i = 0; i < base->n_p; i++) {
    gr_tensor *t = base->p[i].t;
    size_t bytes = (size_t)t->numel * sizeof(float);
    float *d = gr_malloc(bytes + sizeof(float)), *g = t->grad ? gr_malloc(bytes + sizeof(float)) : NULL;
    if (!d || (t->grad && !g)) {
      gr_free(d), gr_free(g);
      return gr_error(GR_ENOMEM, "PEFT: out of memory moving '%s'", base->p[i].name);
    }
    memcpy(d, t->data, bytes);
    if (g) memcpy(g, t->grad, bytes);
    t->data = d, t->grad = g;
  }
  for (int k = 0; k < base->n_children; k++) { /* a sublayer target (GPT2MLP) holds its weights in children */
    gr_status s = detach_storage(base->children[k]);
    if (s) return s;
  }
  return GR_OK;
}

gr_status peft_layer_install(gr_model *m, const peft_target *t, gr_module *w, int n, const char *const *names,
                             gr_module *const *kids) {
  for (int i = 0; i < n; i++) kids[i]->training = t->base->training;
  /* the wrapper takes base's place first, then base moves below it; while
   * base is outside the tree its values live in storage of their own */
  gr_status s = detach_storage(t->base);
  if (!s) s = gr_module_replace(m, t->path, w);
  if (!s) s = gr_module_add(w, "base_layer", t->base);
  for (int i = 0; i < n && !s; i++) s = gr_module_add(w, names[i], kids[i]);
  return s ? s : gr_model_layout(m);
}

/* ---- applying a config ------------------------------------------------------ */
typedef struct path_list {
  char (*path)[GR_NAME_MAX];
  int n, cap;
} path_list;

static gr_status path_list_add(path_list *t, const char *p) {
  if (t->n == t->cap) {
    int nc = t->cap ? t->cap * 2 : 16;
    char (*np)[GR_NAME_MAX] = gr_malloc((size_t)nc * sizeof *np);
    if (!np) return gr_error(GR_ENOMEM, "PEFT: out of memory listing modules");
    if (t->n) memcpy(np, t->path, (size_t)t->n * sizeof *np);
    gr_free(t->path);
    t->path = np;
    t->cap = nc;
  }
  snprintf(t->path[t->n++], GR_NAME_MAX, "%s", p);
  return GR_OK;
}

/* Modules the config targets (never inside a wrapper: nothing is wrapped twice). */
static gr_status collect_targets(gr_module *mod, const gr_peft_config *cfg, path_list *t) {
  char p[GR_NAME_MAX];
  gr_module_path(mod, p, sizeof p);
  if (peft_layer_of(mod)) return GR_OK;
  if (mod->parent && gr_peft_targets(cfg, p)) {
    gr_status s = path_list_add(t, p);
    if (s) return s;
  }
  for (int i = 0; i < mod->n_children; i++) {
    gr_status s = collect_targets(mod->children[i], cfg, t);
    if (s) return s;
  }
  return GR_OK;
}

static bool any_module_matches(gr_module *mod, const char *entry) {
  char p[GR_NAME_MAX];
  gr_module_path(mod, p, sizeof p);
  size_t pl = strlen(p), el = strlen(entry);
  if (mod->parent && (!strcmp(p, entry) || (pl > el && p[pl - el - 1] == '.' && !strcmp(p + pl - el, entry))))
    return true;
  for (int i = 0; i < mod->n_children; i++)
    if (any_module_matches(mod->children[i], entry)) return true;
  return false;
}

/* Whether the module owning e, or one above it, is a module to save. */
static bool under_module_to_save(const gr_peft_config *cfg, const gr_named_tensor *e) {
  char p[GR_NAME_MAX];
  for (const gr_module *mod = e->owner; mod && mod->parent; mod = mod->parent)
    if (gr_peft_is_module_to_save(cfg, gr_module_path(mod, p, sizeof p))) return true;
  return false;
}

static void freeze_all_but_adapters(gr_model *m, const gr_peft_config *cfg) {
  for (int i = 0; i < m->n_entries; i++) {
    gr_named_tensor *e = &m->entries[i];
    if (!e->buffer) e->t->requires_grad = gr_peft_param_is_adapter(e) || under_module_to_save(cfg, e);
  }
}

static gr_status no_target_error(const gr_peft_config *cfg) {
  char list[256] = "";
  size_t k = 0;
  for (int i = 0; i < cfg->n_target_modules && k < sizeof list; i++)
    k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? "," : "", cfg->target_modules[i]);
  return gr_error(GR_ENOTFOUND, "PEFT: target_modules '%s' matches no module of the model",
                  cfg->target_modules_regex ? cfg->target_modules_regex : list);
}

/* Checks (check_only) or wraps one target with the config's method. */
static gr_status apply_one(gr_model *m, const gr_peft_config *cfg, const char *path, gr_lora_init init, bool check_only) {
  if (cfg->type == GR_PEFT_LORA) {
    gr_lora_opts o = {.r = gr_peft_module_rank(cfg, path),
                      .alpha = (float)gr_peft_module_alpha(cfg, path),
                      .dropout = (float)cfg->lora_dropout,
                      .rslora = cfg->use_rslora,
                      .init = init,
                      .dora = cfg->use_dora};
    return check_only ? peft_lora_check(m, path, &o) : gr_lora_wrap(m, path, &o);
  }
  if (cfg->type == GR_PEFT_IA3) {
    peft_target t;
    return check_only ? peft_target_get(m, path, "IA3", &t)
                      : gr_ia3_wrap(m, path, gr_peft_is_feedforward(cfg, path), init != GR_LORA_INIT_RANDOM);
  }
  if (cfg->type == GR_PEFT_BOTTLENECK) {
    gr_adapter_opts o = {.r = cfg->r,
                         .placement = cfg->adapter_parallel ? GR_ADAPTER_PARALLEL : GR_ADAPTER_SEQUENTIAL,
                         .scale = (float)cfg->adapter_scaling,
                         .random_up = init == GR_LORA_INIT_RANDOM};
    return check_only ? peft_adapter_check(m, path, &o) : gr_adapter_wrap(m, path, &o);
  }
  return gr_error(GR_EUNSUPPORTED, "PEFT: peft_type '%s' does not wrap modules (LORA, IA3 and BOTTLENECK do)",
                  cfg->peft_type ? cfg->peft_type : "?");
}

gr_status gr_peft_apply(gr_model *m, const gr_peft_config *cfg, gr_lora_init init, int *n_wrapped) {
  if (n_wrapped) *n_wrapped = 0;
  if (!m || !m->root || !cfg) return gr_error(GR_EARG, "PEFT apply: NULL argument");
  path_list t = {0};
  gr_status s = collect_targets(m->root, cfg, &t);
  if (!s && t.n == 0) s = no_target_error(cfg);
  for (int i = 0; i < cfg->n_modules_to_save && !s; i++)
    if (!any_module_matches(m->root, cfg->modules_to_save[i]))
      s = gr_error(GR_ENOTFOUND, "PEFT: modules_to_save entry '%s' matches no module of the model", cfg->modules_to_save[i]);
  /* every target is checked before the first is wrapped: all or nothing */
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < t.n && !s; i++) s = apply_one(m, cfg, t.path[i], init, pass == 0);
  if (!s) freeze_all_but_adapters(m, cfg);
  if (n_wrapped && !s) *n_wrapped = t.n;
  gr_free(t.path);
  return s;
}

gr_status gr_lora_apply(gr_model *m, const gr_peft_config *cfg, gr_lora_init init, int *n_wrapped) {
  if (cfg && cfg->type != GR_PEFT_LORA) return gr_error(GR_EARG, "LoRA apply: the config is a %s one", cfg->peft_type);
  return gr_peft_apply(m, cfg, init, n_wrapped);
}

/* ---- merge, unmerge, unwrap --------------------------------------------------- */
gr_status gr_peft_merge(gr_module *mod, bool merge) {
  peft_layer *L = peft_layer_of(mod);
  if (!L) return gr_error(GR_EARG, "PEFT merge: module is not a PEFT wrapper");
  if (!L->ops->fold)
    return gr_error(GR_EUNSUPPORTED, "PEFT: the %s at '%s' is nonlinear and cannot be merged into the base weights",
                    L->ops->kind, L->t.path);
  if (L->merged == merge)
    return gr_error(GR_ESTATE, "%s: module '%s' is already %s", L->ops->kind, L->t.path, merge ? "merged" : "unmerged");
  gr_status s = L->ops->fold(mod, merge);
  if (!s) L->merged = merge;
  return s;
}

/* Calls fn on every wrapper in tree order; stops at the first error. */
static gr_status each_layer(gr_module *mod, gr_status (*fn)(gr_module *, void *), void *ud) {
  if (peft_layer_of(mod)) return fn(mod, ud);
  for (int i = 0; i < mod->n_children; i++) {
    gr_status s = each_layer(mod->children[i], fn, ud);
    if (s) return s;
  }
  return GR_OK;
}

typedef struct merge_walk {
  bool merge, check_only;
  int n;
} merge_walk;

static gr_status merge_one(gr_module *mod, void *ud) {
  merge_walk *w = ud;
  peft_layer *L = mod->cfg;
  if (w->check_only && !L->ops->fold)
    return gr_error(GR_EUNSUPPORTED, "PEFT: the %s at '%s' is nonlinear and cannot be merged into the base weights",
                    L->ops->kind, L->t.path);
  if (w->check_only && L->merged == w->merge)
    return gr_error(GR_ESTATE, "%s: module '%s' is already %s", L->ops->kind, L->t.path, w->merge ? "merged" : "unmerged");
  gr_status s = w->check_only ? GR_OK : gr_peft_merge(mod, w->merge);
  if (!s) w->n++;
  return s;
}

gr_status gr_peft_merge_all(gr_model *m, bool merge, int *n) {
  if (n) *n = 0;
  if (!m || !m->root) return gr_error(GR_EARG, "peft merge: NULL model");
  merge_walk check = {merge, true, 0}, run = {merge, false, 0};
  gr_status s = each_layer(m->root, merge_one, &check);
  if (!s) s = each_layer(m->root, merge_one, &run);
  if (n) *n = run.n;
  return s;
}

gr_status gr_lora_merge(gr_module *mod) {
  return gr_lora_is(mod) ? gr_peft_merge(mod, true) : gr_error(GR_EARG, "LoRA merge: module is not a LoRA wrapper");
}
gr_status gr_lora_unmerge(gr_module *mod) {
  return gr_lora_is(mod) ? gr_peft_merge(mod, false) : gr_error(GR_EARG, "LoRA merge: module is not a LoRA wrapper");
}

static gr_status collect_layer_path(gr_module *mod, void *ud) { return path_list_add(ud, ((peft_layer *)mod->cfg)->t.path); }

gr_status gr_peft_unwrap_all(gr_model *m) {
  if (!m || !m->root) return gr_error(GR_EARG, "peft unwrap: NULL model");
  path_list t = {0};
  gr_status s = each_layer(m->root, collect_layer_path, &t);
  for (int i = 0; i < t.n && !s; i++) {
    gr_module *w = gr_module_find(m->root, t.path[i]);
    s = gr_module_replace(m, t.path[i], w->children[0]);
  }
  gr_free(t.path);
  return s;
}
