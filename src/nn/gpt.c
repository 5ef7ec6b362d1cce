/* nn/gpt.c — the GPT-2-shaped transformer of graft/gpt.h: module tree with
 * HF names, GPT-2 init, forward (full, prefix-LM, or incremental with a KV
 * cache) and the LM loss. All math is ops of core/ (no kernels here);
 * sampling is in gpt_sample.c, model directories in transfer/gpt_dir.c. */
#include <math.h>
#include <string.h>

#include "graft/gpt.h"

#define GPT_MAX_VOCAB (1 << 24)
#define GPT_MAX_BLOCK (1 << 16)
#define GPT_MAX_WIDTH (1 << 16)

gr_status gr_gpt_config_check(const gr_gpt_config *cfg) {
  if (!cfg) return gr_error(GR_EARG, "gpt: config is NULL");
  if (cfg->vocab <= 0 || cfg->vocab > GPT_MAX_VOCAB || cfg->block <= 0 || cfg->block > GPT_MAX_BLOCK ||
      cfg->n_layer <= 0 || cfg->n_layer > 256 || cfg->n_head <= 0 || cfg->n_embd <= 0 ||
      cfg->n_embd > GPT_MAX_WIDTH)
    return gr_error(GR_EARG, "gpt: config out of range (vocab %lld, block %lld, n_layer %lld, n_head %lld, n_embd %lld)",
                    (long long)cfg->vocab, (long long)cfg->block, (long long)cfg->n_layer,
                    (long long)cfg->n_head, (long long)cfg->n_embd);
  if (cfg->n_embd % cfg->n_head)
    return gr_error(GR_EARG, "gpt: n_embd %lld is not divisible by n_head %lld", (long long)cfg->n_embd,
                    (long long)cfg->n_head);
  return GR_OK;
}

/* A child module by local name (looked up at each call, so replacements
 * such as LoRA wrapping c_attn are picked up). */
static gr_module *child(gr_module *m, const char *name) { return gr_module_find(m, name); }

static gr_tensor *call(gr_module *m, const char *name, gr_ctx *c, gr_tensor *x) {
  gr_module *ch = child(m, name);
  return ch && x ? ch->forward(ch, c, x) : NULL;
}

static gr_module *container(gr_model *m, const char *kind) { return gr_module_new(m, kind, NULL); }

static gr_module *embedding(gr_model *m, int64_t n, int64_t d) {
  gr_module *e = gr_module_new(m, "Embedding", NULL);
  if (e && !gr_module_new_param(e, "weight", 2, GR_SHAPE(n, d), false)) return NULL;
  return e;
}

/* The feed-forward sublayer, a module of its own (C -> C), so a wrapper
 * installed at "transformer.h.<i>.mlp" (an FFN adapter) takes effect. */
static gr_tensor *mlp_forward(gr_module *mlp, gr_ctx *c, gr_tensor *x) {
  return call(mlp, "c_proj", c, gr_gelu(c, call(mlp, "c_fc", c, x)));
}

static gr_module *build_block(gr_model *m, int64_t C) {
  gr_module *blk = container(m, "GPT2Block"), *attn = container(m, "GPT2Attention"),
            *mlp = gr_module_new(m, "GPT2MLP", mlp_forward);
  if (!blk || !attn || !mlp) return NULL;
  if (gr_module_add(blk, "ln_1", gr_nn_layernorm(m, C)) || gr_module_add(blk, "attn", attn) ||
      gr_module_add(attn, "c_attn", gr_nn_linear(m, C, 3 * C, true)) ||
      gr_module_add(attn, "c_proj", gr_nn_linear(m, C, C, true)) ||
      gr_module_add(blk, "ln_2", gr_nn_layernorm(m, C)) || gr_module_add(blk, "mlp", mlp) ||
      gr_module_add(mlp, "c_fc", gr_nn_linear(m, C, 4 * C, true)) ||
      gr_module_add(mlp, "c_proj", gr_nn_linear(m, 4 * C, C, true)))
    return NULL;
  return blk;
}

/* GPT-2 init over the laid-out parameters, in state_dict order. */
static void gpt_init(gr_gpt *g) {
  gr_model *m = g->model;
  float resid_std = 0.02f / sqrtf(2.0f * (float)g->cfg.n_layer);
  for (int i = 0; i < m->n_entries; i++) {
    gr_named_tensor *e = &m->entries[i];
    const char *local = strrchr(e->name, '.') + 1;
    bool is_ln = !strcmp(e->owner->kind, "LayerNorm");
    if (!strcmp(local, "bias")) gr_tensor_fill(e->t, 0);
    else if (is_ln) gr_tensor_fill(e->t, 1);
    else {
      bool resid = strstr(e->name, ".c_proj.") != NULL;
      gr_rng_fill_normal(&m->rng, e->t->data, e->t->numel, 0, resid ? resid_std : 0.02f);
    }
  }
}

static gr_tensor *gpt_root_forward(gr_module *mod, gr_ctx *c, gr_tensor *x);

gr_status gr_gpt_new(const gr_gpt_config *cfg, uint64_t seed, gr_gpt **out) {
  if (!out) return gr_error(GR_EARG, "gpt: out is NULL");
  *out = NULL;
  gr_status st = gr_gpt_config_check(cfg);
  if (st) return st;
  gr_gpt *g = gr_calloc(1, sizeof *g);
  if (!g) return gr_error(GR_ENOMEM, "gpt: out of memory");
  g->cfg = *cfg;
  g->model = gr_model_new(seed);
  gr_model *m = g->model;
  gr_module *root = m ? gr_module_new(m, "GPT", gpt_root_forward) : NULL;
  gr_module *tr = m ? container(m, "GPT2Model") : NULL, *h = m ? container(m, "ModuleList") : NULL;
  bool ok = root && tr && h && !gr_module_add(root, "transformer", tr) &&
            !gr_module_add(tr, "wte", embedding(m, cfg->vocab, cfg->n_embd)) &&
            !gr_module_add(tr, "wpe", embedding(m, cfg->block, cfg->n_embd)) && !gr_module_add(tr, "h", h);
  for (int64_t l = 0; ok && l < cfg->n_layer; l++) ok = !gr_module_add(h, NULL, build_block(m, cfg->n_embd));
  ok = ok && !gr_module_add(tr, "ln_f", gr_nn_layernorm(m, cfg->n_embd)) && !gr_model_set_root(m, root);
  if (!ok) {
    st = gr_last_status();
    gr_gpt_free(g);
    return st ? st : gr_error(GR_ENOMEM, "gpt: building the model failed");
  }
  root->cfg = g;
  gpt_init(g);
  *out = g;
  return GR_OK;
}

void gr_gpt_free(gr_gpt *g) {
  if (!g) return;
  gr_model_free(g->model);
  gr_free(g);
}

/* ---- KV cache --------------------------------------------------------------- */
gr_status gr_gpt_cache_new(const gr_gpt *g, int64_t batch, gr_gpt_cache **out) {
  if (!g || !out || batch <= 0 || batch > 4096) return gr_error(GR_EARG, "gpt cache: bad arguments (batch %lld)", (long long)batch);
  gr_gpt_cache *kv = gr_calloc(1, sizeof *kv);
  if (!kv) return gr_error(GR_ENOMEM, "gpt cache: out of memory");
  kv->batch = batch;
  kv->cap = g->cfg.block;
  kv->n_layer = g->cfg.n_layer;
  kv->n_head = g->cfg.n_head;
  kv->head_dim = g->cfg.n_embd / g->cfg.n_head;
  size_t n = (size_t)(kv->n_layer * batch * kv->n_head * kv->cap * kv->head_dim);
  kv->k = gr_calloc(n, sizeof(float));
  kv->v = gr_calloc(n, sizeof(float));
  if (!kv->k || !kv->v) {
    gr_gpt_cache_free(kv);
    return gr_error(GR_ENOMEM, "gpt cache: out of memory (%zu floats)", 2 * n);
  }
  *out = kv;
  return GR_OK;
}

void gr_gpt_cache_free(gr_gpt_cache *kv) {
  if (!kv) return;
  gr_free(kv->k);
  gr_free(kv->v);
  gr_free(kv);
}

void gr_gpt_cache_reset(gr_gpt_cache *kv) {
  if (kv) kv->len = 0;
}

/* Writes the new keys (or values) x [B,H,T,hd] of `layer` after the cached
 * ones and returns all of them, [B,H,len+T,hd], as a fresh tensor. */
static gr_tensor *cache_extend(gr_ctx *c, gr_gpt_cache *kv, float *store, int64_t layer, gr_tensor *x) {
  int64_t B = x->shape[0], H = x->shape[1], T = x->shape[2], hd = x->shape[3], S = kv->len + T;
  gr_tensor *all = gr_tensor_new(c, 4, GR_SHAPE(B, H, S, hd));
  if (!all) return NULL;
  for (int64_t bh = 0; bh < B * H; bh++) {
    float *slot = store + ((layer * B * H + bh) * kv->cap) * hd;
    memcpy(slot + kv->len * hd, x->data + bh * T * hd, (size_t)(T * hd) * sizeof(float));
    memcpy(all->data + bh * S * hd, slot, (size_t)(S * hd) * sizeof(float));
  }
  return all;
}

/* ---- forward ------------------------------------------------------------------ */
typedef struct fwd_state {
  gr_gpt *g;
  int64_t B, T, prefix;
  gr_gpt_cache *cache;
  gr_tensor *prefix_kv; /* prefix tuning: [l, n_layer*2*C] or NULL */
} fwd_state;

/* [B,T,C] slice of qkv -> [B,H,T,hd] */
static gr_tensor *split_heads(gr_ctx *c, const fwd_state *s, gr_tensor *qkv, int part) {
  int64_t C = s->g->cfg.n_embd, H = s->g->cfg.n_head;
  gr_tensor *x = gr_slice(c, qkv, -1, part * C, (part + 1) * C);
  x = gr_reshape(c, x, 4, GR_SHAPE(s->B, s->T, H, C / H));
  return gr_permute(c, x, (const int[]){0, 2, 1, 3});
}

/* Prefix tuning: the learned keys (kv 0) or values (kv 1) of `layer` from
 * the prompt encoder's [l, n_layer*2*C] table (per virtual token: layer,
 * key/value, head, head_dim: PEFT's past_key_values layout), as
 * [B,H,l,hd] in front of the positions' own keys x [B,H,S,hd]. */
static gr_tensor *with_prefix(gr_ctx *c, const fwd_state *s, gr_tensor *x, int64_t layer, int kv) {
  int64_t C = s->g->cfg.n_embd, H = s->g->cfg.n_head, l = s->prefix_kv->shape[0];
  gr_tensor *p = gr_reshape(c, s->prefix_kv, 4, GR_SHAPE(l, 2 * s->g->cfg.n_layer, H, C / H));
  p = gr_slice(c, p, 1, 2 * layer + kv, 2 * layer + kv + 1);
  p = gr_permute(c, p, (const int[]){1, 2, 0, 3}); /* [1,H,l,hd] */
  gr_tensor *parts[2] = {p, x};
  if (p && s->B > 1) {
    gr_tensor **rep = gr_arena_alloc(gr_ctx_arena(c), (size_t)s->B * sizeof *rep);
    if (!rep) return NULL;
    for (int64_t b = 0; b < s->B; b++) rep[b] = p;
    parts[0] = gr_concat(c, (int)s->B, rep, 0);
  }
  return parts[0] ? gr_concat(c, 2, parts, 2) : NULL;
}

static gr_tensor *attention(gr_ctx *c, const fwd_state *s, gr_module *attn, gr_tensor *x, int64_t layer) {
  int64_t C = s->g->cfg.n_embd, H = s->g->cfg.n_head;
  gr_tensor *qkv = call(attn, "c_attn", c, x);
  if (!qkv) return NULL;
  if (!s->cache && !s->prefix_kv) /* training and full recomputation: the fused op, no head copies */
    return call(attn, "c_proj", c, gr_causal_attention(c, qkv, H, s->prefix));
  gr_tensor *q = split_heads(c, s, qkv, 0), *k = split_heads(c, s, qkv, 1), *v = split_heads(c, s, qkv, 2);
  if (!q || !k || !v) return NULL;
  if (s->cache) {
    k = cache_extend(c, s->cache, s->cache->k, layer, k);
    v = cache_extend(c, s->cache, s->cache->v, layer, v);
  }
  int64_t l = 0; /* prefix tuning: every query also sees the l learned positions */
  if (s->prefix_kv) {
    l = s->prefix_kv->shape[0];
    k = k ? with_prefix(c, s, k, layer, 0) : NULL;
    v = v ? with_prefix(c, s, v, layer, 1) : NULL;
  }
  gr_tensor *att = gr_scale(c, gr_matmul(c, q, k, false, true), 1.0f / sqrtf((float)(C / H)));
  att = s->prefix > 0 ? gr_prefix_softmax(c, att, l + s->prefix) : gr_causal_softmax(c, att);
  gr_tensor *y = gr_permute(c, gr_matmul(c, att, v, false, false), (const int[]){0, 2, 1, 3});
  y = gr_reshape(c, y, 3, GR_SHAPE(s->B, s->T, C));
  return call(attn, "c_proj", c, y);
}

static gr_tensor *block_forward(gr_ctx *c, const fwd_state *s, gr_module *blk, gr_tensor *x, int64_t layer) {
  gr_tensor *a = attention(c, s, child(blk, "attn"), call(blk, "ln_1", c, x), layer);
  x = gr_add(c, x, a);
  return gr_add(c, x, call(blk, "mlp", c, call(blk, "ln_2", c, x)));
}

static gr_status check_forward_args(const gr_gpt *g, gr_ctx *c, const int32_t *ids, int64_t B, int64_t T,
                                    int64_t prefix, const gr_gpt_cache *cache) {
  if (!g || !c || !ids) return gr_error(GR_EARG, "gpt forward: NULL argument");
  if (B <= 0 || T <= 0) return gr_error(GR_EARG, "gpt forward: empty input (B %lld, T %lld)", (long long)B, (long long)T);
  int64_t past = cache ? cache->len : 0;
  if (past + T > g->cfg.block)
    return gr_error(GR_EARG, "gpt forward: sequence of %lld tokens (%lld cached + %lld new) exceeds block size %lld",
                    (long long)(past + T), (long long)past, (long long)T, (long long)g->cfg.block);
  if (cache && (cache->batch != B || cache->n_layer != g->cfg.n_layer || prefix > 0))
    return gr_error(GR_EARG, "gpt forward: cache does not fit (batch %lld vs %lld) or is used with a prefix",
                    (long long)cache->batch, (long long)B);
  if (prefix < 0 || prefix > T) return gr_error(GR_EARG, "gpt forward: prefix %lld outside [0,%lld]", (long long)prefix, (long long)T);
  for (int64_t i = 0; i < B * T; i++)
    if (ids[i] < 0 || ids[i] >= g->cfg.vocab)
      return gr_error(GR_EARG, "gpt forward: token id %d at position %lld outside vocabulary [0,%lld)", ids[i],
                      (long long)i, (long long)g->cfg.vocab);
  return GR_OK;
}

/* Prefix tuning hook: the root's child "prompt_encoder", when present,
 * gives every layer's key/value prefixes (gpt.h); *out stays NULL without. */
static gr_status prompt_encoder_output(gr_gpt *g, gr_ctx *c, gr_tensor **out) {
  gr_module *root = g->model->root, *enc = NULL;
  for (int i = 0; i < root->n_children && !enc; i++) /* no lookup error when absent */
    if (!strcmp(root->children[i]->name, GR_GPT_PROMPT_ENCODER)) enc = root->children[i];
  if (!enc) return GR_OK;
  gr_tensor *p = enc->forward ? enc->forward(enc, c, NULL) : NULL;
  int64_t width = 2 * g->cfg.n_layer * g->cfg.n_embd;
  if (!p) return gr_last_status() ? gr_last_status() : gr_error(GR_ESTATE, "gpt forward: prompt encoder gave no prefix");
  if (p->ndim != 2 || p->shape[0] < 1 || p->shape[1] != width) {
    char sh[96];
    return gr_error(GR_ESHAPE, "gpt forward: prompt encoder output is %s, want [l,%lld] (n_layer*2*n_embd)",
                    gr_shape_str(p, sh, sizeof sh), (long long)width);
  }
  *out = p;
  return GR_OK;
}

gr_tensor *gr_gpt_forward(gr_gpt *g, gr_ctx *c, const int32_t *ids, int64_t B, int64_t T, int64_t prefix_len,
                          gr_gpt_cache *cache) {
  if (check_forward_args(g, c, ids, B, T, prefix_len, cache)) return NULL;
  gr_module *tr = child(g->model->root, "transformer"), *h = child(tr, "h");
  gr_tensor *wte = gr_model_find(g->model, "transformer.wte.weight");
  gr_tensor *wpe = gr_model_find(g->model, "transformer.wpe.weight");
  if (!h || !wte || !wpe) return NULL;
  int64_t past = cache ? cache->len : 0, C = g->cfg.n_embd;
  int32_t *pos = gr_arena_alloc(gr_ctx_arena(c), (size_t)T * sizeof(int32_t));
  if (!pos) return NULL;
  for (int64_t t = 0; t < T; t++) pos[t] = (int32_t)(past + t);
  gr_tensor *x = gr_reshape(c, gr_embedding(c, wte, ids, B * T), 3, GR_SHAPE(B, T, C));
  x = gr_add(c, x, gr_embedding(c, wpe, pos, T));
  fwd_state s = {g, B, T, prefix_len, cache, NULL};
  if (prompt_encoder_output(g, c, &s.prefix_kv)) return NULL;
  for (int64_t l = 0; l < g->cfg.n_layer && x; l++) x = block_forward(c, &s, h->children[l], x, l);
  x = call(tr, "ln_f", c, x);
  gr_tensor *logits = gr_linear(c, x, wte, NULL);
  if (logits && cache) cache->len += T;
  return logits;
}

gr_tensor *gr_gpt_loss(gr_gpt *g, gr_ctx *c, const int32_t *ids, const int32_t *targets, int64_t B, int64_t T,
                       int64_t prefix_len) {
  if (!targets) {
    gr_error(GR_EARG, "gpt loss: targets are NULL");
    return NULL;
  }
  gr_tensor *logits = gr_gpt_forward(g, c, ids, B, T, prefix_len, NULL);
  if (!logits) return NULL;
  logits = gr_reshape(c, logits, 2, GR_SHAPE(B * T, g->cfg.vocab));
  return gr_cross_entropy(c, logits, targets, 0.0f, -1);
}

/* The root module's forward for generic callers: x [B,T] holds token ids as
 * floats (integral values). */
static gr_tensor *gpt_root_forward(gr_module *mod, gr_ctx *c, gr_tensor *x) {
  if (!x || x->ndim != 2) {
    gr_error(GR_ESHAPE, "gpt: model input must be token ids [B,T]");
    return NULL;
  }
  int32_t *ids = gr_arena_alloc(gr_ctx_arena(c), (size_t)x->numel * sizeof(int32_t));
  if (!ids) return NULL;
  for (int64_t i = 0; i < x->numel; i++) {
    float v = x->data[i];
    if (!(v >= 0 && v < (float)INT32_MAX) || v != floorf(v)) {
      gr_error(GR_EARG, "gpt: input element %lld (%g) is not a token id", (long long)i, (double)v);
      return NULL;
    }
    ids[i] = (int32_t)v;
  }
  return gr_gpt_forward(mod->cfg, c, ids, x->shape[0], x->shape[1], 0, NULL);
}
