/* nn/module.c — the model and its module tree: adding, finding and
 * replacing modules by dotted name, the flat parameter/buffer layout with
 * named views, freezing by glob, train/eval mode. Layer kinds are in
 * layers.c, architectures in arch.c, initializers in init.c. */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "graft/nn.h"

gr_model *gr_model_new(uint64_t seed) {
  gr_model *m = gr_calloc(1, sizeof *m);
  if (!m) {
    gr_error(GR_ENOMEM, "model: out of memory");
    return NULL;
  }
  m->arena = gr_arena_new(1 << 16);
  if (!m->arena) {
    gr_free(m);
    return NULL;
  }
  gr_rng_seed(&m->rng, seed);
  return m;
}

static bool in_range(const float *p, const float *base, int64_t n) { return base && p >= base && p < base + n; }

/* Frees the pre-layout storage of params not yet in the flat vectors. */
static void free_pending(gr_model *m, gr_module *mod) {
  for (int i = 0; i < mod->n_p; i++) {
    gr_tensor *t = mod->p[i].t;
    if (!in_range(t->data, m->data, m->numel) && !in_range(t->data, m->buf, m->buf_numel)) {
      gr_free(t->data);
      gr_free(t->grad);
      t->data = t->grad = NULL;
    }
  }
  for (int i = 0; i < mod->n_children; i++) free_pending(m, mod->children[i]);
}

void gr_module_discard(gr_module *mod) {
  if (mod) free_pending(mod->model, mod);
}

void gr_model_free(gr_model *m) {
  if (!m) return;
  if (m->root) free_pending(m, m->root);
  gr_free(m->data);
  gr_free(m->grad);
  gr_free(m->buf);
  gr_free(m->entries);
  gr_arena_free(m->arena);
  gr_free(m);
}

gr_module *gr_module_new(gr_model *m, const char *kind, gr_module_forward_fn forward) {
  if (!m) {
    gr_error(GR_EARG, "module: model is NULL");
    return NULL;
  }
  gr_module *mod = gr_arena_alloc(m->arena, sizeof *mod);
  if (!mod) return NULL;
  mod->kind = kind;
  mod->forward = forward;
  mod->training = true;
  mod->model = m;
  return mod;
}

gr_tensor *gr_module_new_param(gr_module *mod, const char *local, int ndim, const int64_t *shape, bool buffer) {
  if (!mod || !local) {
    gr_error(GR_EARG, "module param: NULL argument");
    return NULL;
  }
  if (mod->n_p >= GR_MODULE_MAX_PARAMS) {
    gr_error(GR_EARG, "module %s: more than %d parameters", mod->kind, GR_MODULE_MAX_PARAMS);
    return NULL;
  }
  int64_t numel;
  if (gr_check_shape(ndim, shape, &numel)) return NULL;
  gr_tensor *t = gr_arena_alloc(mod->model->arena, sizeof *t);
  if (!t) return NULL;
  t->ndim = ndim;
  memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
  t->numel = numel;
  t->data = gr_calloc((size_t)numel + 1, sizeof(float));
  t->grad = buffer ? NULL : gr_calloc((size_t)numel + 1, sizeof(float));
  if (!t->data || (!buffer && !t->grad)) {
    gr_free(t->data);
    gr_free(t->grad);
    gr_error(GR_ENOMEM, "module %s: out of memory for '%s'", mod->kind, local);
    return NULL;
  }
  t->requires_grad = !buffer;
  mod->p[mod->n_p++] = (gr_module_param){local, t, buffer};
  return t;
}

gr_tensor *gr_module_param_get(gr_module *mod, const char *local) {
  for (int i = 0; mod && i < mod->n_p; i++)
    if (!strcmp(mod->p[i].name, local)) return mod->p[i].t;
  return NULL;
}

gr_status gr_module_add(gr_module *parent, const char *name, gr_module *child) {
  if (!parent || !child) return gr_error(GR_EARG, "module_add: NULL module");
  char idx[16];
  if (!name) snprintf(idx, sizeof idx, "%d", parent->n_children), name = idx;
  if (!name[0] || strchr(name, '.') || strlen(name) >= sizeof child->name)
    return gr_error(GR_EARG, "module_add: bad child name '%s'", name);
  for (int i = 0; i < parent->n_children; i++)
    if (!strcmp(parent->children[i]->name, name))
      return gr_error(GR_EARG, "module_add: '%s' already has a child '%s'", parent->kind, name);
  if (parent->n_children == parent->cap_children) {
    int nc = parent->cap_children ? parent->cap_children * 2 : 4;
    gr_module **ch = gr_arena_alloc(parent->model->arena, (size_t)nc * sizeof *ch);
    if (!ch) return GR_ENOMEM;
    if (parent->n_children) memcpy(ch, parent->children, (size_t)parent->n_children * sizeof *ch);
    parent->children = ch;
    parent->cap_children = nc;
  }
  snprintf(child->name, sizeof child->name, "%s", name);
  child->parent = parent;
  parent->children[parent->n_children++] = child;
  return GR_OK;
}

gr_module *gr_module_find(gr_module *root, const char *path) {
  if (!root || !path) return NULL;
  gr_module *cur = root;
  const char *p = path;
  while (*p) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    gr_module *next = NULL;
    for (int i = 0; i < cur->n_children && !next; i++)
      if (strlen(cur->children[i]->name) == len && !strncmp(cur->children[i]->name, p, len)) next = cur->children[i];
    if (!next) {
      gr_error(GR_ENOTFOUND, "module '%s' not found", path);
      return NULL;
    }
    cur = next;
    p = dot ? dot + 1 : p + len;
  }
  return cur;
}

const char *gr_module_path(const gr_module *mod, char *buf, size_t n) {
  const gr_module *chain[64];
  int k = 0;
  for (const gr_module *q = mod; q && q->parent && k < 64; q = q->parent) chain[k++] = q;
  size_t used = 0;
  buf[0] = 0;
  for (int i = k - 1; i >= 0 && used < n; i--)
    used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? "." : "", chain[i]->name);
  return buf;
}

gr_status gr_module_replace(gr_model *m, const char *path, gr_module *repl) {
  if (!m || !path || !repl) return gr_error(GR_EARG, "module_replace: NULL argument");
  gr_module *old = gr_module_find(m->root, path);
  if (!old) return GR_ENOTFOUND;
  if (!old->parent) {
    m->root = repl;
    repl->parent = NULL;
    return gr_model_layout(m);
  }
  gr_module *par = old->parent;
  for (int i = 0; i < par->n_children; i++)
    if (par->children[i] == old) par->children[i] = repl;
  snprintf(repl->name, sizeof repl->name, "%s", old->name);
  repl->parent = par;
  return gr_model_layout(m);
}

void gr_module_train(gr_module *mod, bool training) {
  if (!mod) return;
  mod->training = training;
  for (int i = 0; i < mod->n_children; i++) gr_module_train(mod->children[i], training);
}

void gr_model_train(gr_model *m, bool training) {
  if (m) gr_module_train(m->root, training);
}

/* ---- input hooks -------------------------------------------------------------- */
struct gr_module_hook {
  gr_module_input_hook_fn fn;
  void *ud;
  gr_module_forward_fn own_forward; /* the module's forward, restored on unhook */
};

static gr_tensor *hooked_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  struct gr_module_hook *h = m->hook;
  if (x && h->fn(h->ud, m, x) != GR_OK) return NULL;
  return h->own_forward(m, c, x);
}

gr_status gr_module_hook_input(gr_module *mod, gr_module_input_hook_fn fn, void *ud) {
  if (!mod || !fn) return gr_error(GR_EARG, "module hook: NULL module or hook");
  if (mod->hook) return gr_error(GR_ESTATE, "module hook: module '%s' already has an input hook", mod->name);
  if (!mod->forward) return gr_error(GR_EARG, "module hook: module '%s' has no forward", mod->name);
  if (!mod->model || !(mod->hook = gr_arena_alloc(mod->model->arena, sizeof *mod->hook)))
    return gr_error(GR_ENOMEM, "module hook: out of memory");
  *mod->hook = (struct gr_module_hook){fn, ud, mod->forward};
  mod->forward = hooked_forward;
  return GR_OK;
}

void gr_module_unhook_input(gr_module *mod) {
  if (!mod || !mod->hook) return;
  mod->forward = mod->hook->own_forward;
  mod->hook = NULL; /* the record stays in the model arena */
}

/* ---- flat layout ------------------------------------------------------------ */
typedef struct layout_walk {
  gr_named_tensor *e;
  int n, cap;
  int64_t numel, buf_numel;
  gr_status st;
} layout_walk;

static void collect(gr_module *mod, const char *prefix, layout_walk *w) {
  for (int i = 0; i < mod->n_p && !w->st; i++) {
    if (w->n == w->cap) {
      int nc = w->cap ? w->cap * 2 : 32;
      gr_named_tensor *ne = gr_malloc((size_t)nc * sizeof *ne);
      if (!ne) {
        w->st = gr_error(GR_ENOMEM, "model layout: out of memory");
        return;
      }
      if (w->n) memcpy(ne, w->e, (size_t)w->n * sizeof *ne);
      gr_free(w->e);
      w->e = ne;
      w->cap = nc;
    }
    gr_named_tensor *e = &w->e[w->n++];
    memset(e, 0, sizeof *e);
    if (snprintf(e->name, sizeof e->name, "%s%s%s", prefix, prefix[0] ? "." : "", mod->p[i].name) >=
        (int)sizeof e->name)
      w->st = gr_error(GR_EARG, "model layout: name '%s...' too long", prefix);
    e->t = mod->p[i].t;
    e->owner = mod;
    e->buffer = mod->p[i].buffer;
    e->offset = e->buffer ? w->buf_numel : w->numel;
    if (e->buffer) w->buf_numel += e->t->numel;
    else w->numel += e->t->numel;
    e->t->name = e->name;
  }
  for (int i = 0; i < mod->n_children && !w->st; i++) {
    char sub[GR_NAME_MAX];
    if (snprintf(sub, sizeof sub, "%s%s%s", prefix, prefix[0] ? "." : "", mod->children[i]->name) >= (int)sizeof sub) {
      w->st = gr_error(GR_EARG, "model layout: module path '%s...' too long", prefix);
      return;
    }
    collect(mod->children[i], sub, w);
  }
}

/* Moves every tensor's values into the new flat vectors; frees pending storage. */
static void move_into(gr_model *m, const layout_walk *w, float *data, float *grad, float *buf) {
  for (int i = 0; i < w->n; i++) {
    gr_named_tensor *e = &w->e[i];
    gr_tensor *t = e->t;
    bool flat = in_range(t->data, m->data, m->numel) || in_range(t->data, m->buf, m->buf_numel);
    float *nd = (e->buffer ? buf : data) + e->offset;
    if (t->data) memcpy(nd, t->data, (size_t)t->numel * sizeof(float));
    if (!e->buffer && t->grad) memcpy(grad + e->offset, t->grad, (size_t)t->numel * sizeof(float));
    if (!flat) {
      gr_free(t->data);
      gr_free(t->grad);
    }
    t->data = nd;
    t->grad = e->buffer ? NULL : grad + e->offset;
  }
}

gr_status gr_model_layout(gr_model *m) {
  if (!m || !m->root) return gr_error(GR_EARG, "model layout: no model or root");
  layout_walk w = {0};
  collect(m->root, "", &w);
  float *data = NULL, *grad = NULL, *buf = NULL;
  if (!w.st) {
    data = gr_calloc((size_t)w.numel + 1, sizeof(float));
    grad = gr_calloc((size_t)w.numel + 1, sizeof(float));
    buf = gr_calloc((size_t)w.buf_numel + 1, sizeof(float));
    if (!data || !grad || !buf) w.st = gr_error(GR_ENOMEM, "model layout: out of memory for %lld parameters",
                                                (long long)w.numel);
  }
  for (int i = 0; i < w.n && !w.st; i++)
    for (int j = 0; j < i && !w.st; j++)
      if (!strcmp(w.e[i].name, w.e[j].name)) w.st = gr_error(GR_EARG, "model layout: duplicate name '%s'", w.e[i].name);
  if (w.st) {
    gr_free(data), gr_free(grad), gr_free(buf), gr_free(w.e);
    return w.st;
  }
  move_into(m, &w, data, grad, buf);
  gr_free(m->data), gr_free(m->grad), gr_free(m->buf), gr_free(m->entries);
  m->data = data, m->grad = grad, m->buf = buf;
  m->numel = w.numel, m->buf_numel = w.buf_numel;
  m->entries = w.e;
  m->n_entries = w.n;
  /* names point into the entries array, which just moved */
  for (int i = 0; i < w.n; i++) w.e[i].t->name = w.e[i].name;
  return GR_OK;
}

gr_status gr_model_set_root(gr_model *m, gr_module *root) {
  if (!m || !root) return gr_error(GR_EARG, "model: NULL model or root");
  m->root = root;
  root->parent = NULL;
  return gr_model_layout(m);
}

static void grad_sync_hook(void *m) { gr_model_grad_sync(m); }

gr_tensor *gr_model_forward(gr_model *m, gr_ctx *c, gr_tensor *x) {
  if (!m || !m->root || !m->data) {
    gr_error(GR_ESTATE, "model forward: model has no root (call gr_model_set_root)");
    return NULL;
  }
  if (c && gr_ctx_grad(c)) gr_ctx_after_backward(c, grad_sync_hook, m); /* grads it left marked zero */
  return m->root->forward(m->root, c, x);
}

gr_tensor *gr_model_find(gr_model *m, const char *name) {
  for (int i = 0; m && name && i < m->n_entries; i++)
    if (!strcmp(m->entries[i].name, name)) return m->entries[i].t;
  gr_error(GR_ENOTFOUND, "model: no parameter or buffer named '%s'", name ? name : "(null)");
  return NULL;
}

/* Marks, does not write: the backward's first write to each grad stores
 * (beta 0), which saves a pass over every gradient per step (~1.3% of the
 * MLP benchmark's step). */
void gr_model_zero_grad(gr_model *m) {
  for (int i = 0; m && i < m->n_entries; i++)
    if (!m->entries[i].buffer && m->entries[i].t->grad) m->entries[i].t->grad_zero = true;
}

void gr_model_grad_sync(gr_model *m) {
  for (int i = 0; m && i < m->n_entries; i++) {
    gr_tensor *t = m->entries[i].t;
    if (t->grad_zero && t->grad) memset(t->grad, 0, (size_t)t->numel * sizeof(float));
    t->grad_zero = false;
  }
}

int gr_model_freeze(gr_model *m, const char *glob, bool frozen) {
  int n = 0;
  for (int i = 0; m && glob && i < m->n_entries; i++) {
    gr_named_tensor *e = &m->entries[i];
    if (e->buffer || fnmatch(glob, e->name, 0) != 0) continue;
    e->t->requires_grad = !frozen;
    n++;
  }
  return n;
}

int64_t gr_model_param_count(const gr_model *m, bool trainable_only) {
  int64_t n = 0;
  for (int i = 0; m && i < m->n_entries; i++)
    if (!m->entries[i].buffer && (!trainable_only || m->entries[i].t->requires_grad)) n += m->entries[i].t->numel;
  return n;
}
