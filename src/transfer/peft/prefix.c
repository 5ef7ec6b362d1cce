/* transfer/peft/prefix.c — prefix tuning for the GPT (graft/peft_prefix.h).
 *
 * Paper: Li & Liang, "Prefix-Tuning: Optimizing Continuous Prompts for
 * Generation" (ACL 2021), §4.2-4.3: with a prefix of l positions, layer i's
 * attention runs over [P_k^i; K] and [P_v^i; V] with P a free parameter
 * table, reparametrized during training as P = MLP(P') (P' smaller), the
 * language model frozen. He et al. ("Towards a Unified View of Parameter-
 * Efficient Transfer Learning", ICLR 2022) rewrite the same head as
 *   (1 - lambda(x)) Attn(x W_q, C W_k, C W_v) + lambda(x) softmax(x W_q P_k^T) P_v,
 * a gated parallel adapter on attention (tests/test_gpt_peft.c checks it).
 * Implemented as Hugging Face PEFT's PrefixEncoder (prefix_projection,
 * encoder_hidden_size) builds the table.
 *
 * What it changes in the model: adds the root child "prompt_encoder"; the
 * GPT's forward (nn/gpt.c) finds it by name and prepends its rows to every
 * layer's keys and values. Everything else is frozen. */
#include <string.h>

#include "graft/peft_prefix.h"

typedef struct prefix_cfg {
  int n_virtual, hidden;
} prefix_cfg;

static gr_module *find_encoder(const gr_gpt *g) {
  gr_module *root = g && g->model ? g->model->root : NULL;
  for (int i = 0; root && i < root->n_children; i++)
    if (!strcmp(root->children[i]->name, GR_GPT_PROMPT_ENCODER)) return root->children[i];
  return NULL;
}

/* The module's own input is ignored: the table depends on parameters only. */
static gr_tensor *prefix_encoder_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  (void)x;
  gr_module *emb = gr_module_find(m, "embedding");
  gr_tensor *p = emb ? gr_module_param_get(emb, "weight") : NULL;
  if (((prefix_cfg *)m->cfg)->hidden > 0 && p) {
    gr_module *tr = gr_module_find(m, "transform");
    p = tr ? tr->forward(tr, c, p) : NULL;
  }
  return p;
}

/* A prompt encoder module of l rows: direct (hidden 0) or reparametrized. */
static gr_module *encoder_new(gr_gpt *g, int l, int hidden) {
  gr_model *m = g->model;
  int64_t C = g->cfg.n_embd, width = 2 * g->cfg.n_layer * C;
  gr_module *enc = gr_module_new(m, "PrefixEncoder", prefix_encoder_forward);
  gr_module *emb = gr_module_new(m, "Embedding", NULL);
  prefix_cfg *cf = gr_arena_alloc(m->arena, sizeof *cf);
  gr_tensor *w = emb ? gr_module_new_param(emb, "weight", 2, GR_SHAPE(l, hidden > 0 ? C : width), false) : NULL;
  if (!enc || !cf || !w || gr_module_add(enc, "embedding", emb)) return NULL;
  *cf = (prefix_cfg){l, hidden};
  enc->cfg = cf;
  gr_rng_fill_normal(&m->rng, w->data, w->numel, 0.0f, 1.0f); /* nn.Embedding's init, drawn first as PEFT */
  if (hidden > 0) {
    gr_module *tr = gr_nn_sequential(m);
    if (!tr || gr_module_add(tr, NULL, gr_nn_linear(m, C, hidden, true)) || gr_module_add(tr, NULL, gr_nn_tanh(m)) ||
        gr_module_add(tr, NULL, gr_nn_linear(m, hidden, width, true)) || gr_module_add(enc, "transform", tr))
      return NULL;
  }
  return enc;
}

/* Li & Liang's init: table[i] = (layer, key/value, head, hd) of the frozen
 * model on ids at position i, read from a KV cache filled by one forward. */
static gr_status table_from_tokens(gr_gpt *g, const int32_t *ids, int l, float *table) {
  gr_gpt_cache *kv = NULL;
  gr_ctx *c = NULL;
  gr_status s = gr_gpt_cache_new(g, 1, &kv);
  if (!s && !(c = gr_ctx_new(((size_t)l * (size_t)(g->cfg.vocab + 16 * g->cfg.n_embd) + (1 << 16)) * sizeof(float), 0)))
    s = gr_error(GR_ENOMEM, "prefix tuning: out of memory");
  if (!s) {
    gr_ctx_set_grad(c, false);
    if (!gr_gpt_forward(g, c, ids, 1, l, 0, kv)) s = gr_last_status();
  }
  int64_t H = kv ? kv->n_head : 0, hd = kv ? kv->head_dim : 0;
  for (int64_t i = 0; !s && i < l; i++)
    for (int64_t layer = 0; layer < g->cfg.n_layer; layer++)
      for (int kvi = 0; kvi < 2; kvi++)
        for (int64_t h = 0; h < H; h++) {
          const float *src = (kvi ? kv->v : kv->k) + ((layer * H + h) * kv->cap + i) * hd;
          memcpy(table + (((i * g->cfg.n_layer + layer) * 2 + kvi) * H + h) * hd, src, (size_t)hd * sizeof(float));
        }
  gr_ctx_free(c);
  gr_gpt_cache_free(kv);
  return s;
}

gr_status gr_prefix_attach(gr_gpt *g, const gr_prefix_opts *o) {
  if (!g || !g->model || !g->model->root || !o) return gr_error(GR_EARG, "prefix tuning: NULL argument");
  if (o->n_virtual < 1 || o->n_virtual > g->cfg.block)
    return gr_error(GR_EARG, "prefix tuning: n_virtual %d outside [1, block %lld]", o->n_virtual, (long long)g->cfg.block);
  if (o->projection_hidden < 0 || o->projection_hidden > (1 << 16))
    return gr_error(GR_EARG, "prefix tuning: projection_hidden %d outside [0, 65536]", o->projection_hidden);
  if (find_encoder(g)) return gr_error(GR_ESTATE, "prefix tuning: the model already has a prompt encoder");
  if (o->init_ids && o->projection_hidden)
    return gr_error(GR_EARG, "prefix tuning: init from tokens is for the direct table (projection_hidden 0)");
  gr_module *enc = encoder_new(g, o->n_virtual, o->projection_hidden);
  gr_status s = enc ? GR_OK : gr_error(GR_ENOMEM, "prefix tuning: out of memory");
  if (!s && o->init_ids) /* before the encoder joins the model: the plain model's keys and values */
    s = table_from_tokens(g, o->init_ids, o->n_virtual, gr_module_find(enc, "embedding")->p[0].t->data);
  if (s) {
    gr_module_discard(enc); /* never joined the model */
    return s;
  }
  s = gr_module_add(g->model->root, GR_GPT_PROMPT_ENCODER, enc);
  if (!s) s = gr_model_layout(g->model);
  if (s) return s;
  gr_model_freeze(g->model, "*", true);
  gr_model_freeze(g->model, GR_GPT_PROMPT_ENCODER ".*", false);
  return GR_OK;
}

int gr_prefix_length(const gr_gpt *g) {
  gr_module *enc = find_encoder(g);
  return enc && enc->cfg ? ((prefix_cfg *)enc->cfg)->n_virtual : 0;
}

gr_status gr_prefix_fold(gr_gpt *g) {
  gr_module *enc = find_encoder(g);
  if (!enc || !enc->cfg) return gr_error(GR_ESTATE, "prefix fold: the model has no prompt encoder");
  prefix_cfg *cf = enc->cfg;
  if (cf->hidden == 0) return GR_OK;
  bool trainable = gr_module_param_get(gr_module_find(enc, "embedding"), "weight")->requires_grad;
  int64_t width = 2 * g->cfg.n_layer * g->cfg.n_embd;
  size_t bytes = (size_t)cf->n_virtual * (size_t)(width + cf->hidden) * 2 * sizeof(float) + (1 << 16);
  gr_ctx *c = gr_ctx_new(bytes, 0);
  if (!c) return gr_error(GR_ENOMEM, "prefix fold: out of memory");
  gr_ctx_set_grad(c, false);
  gr_tensor *p = enc->forward(enc, c, NULL);
  gr_module *direct = p ? encoder_new(g, cf->n_virtual, 0) : NULL;
  gr_status s = direct ? GR_OK : gr_last_status();
  if (!s) {
    memcpy(gr_module_find(direct, "embedding")->p[0].t->data, p->data, (size_t)p->numel * sizeof(float));
    s = gr_module_replace(g->model, GR_GPT_PROMPT_ENCODER, direct);
  }
  gr_ctx_free(c);
  if (!s) gr_model_find(g->model, GR_GPT_PROMPT_ENCODER ".embedding.weight")->requires_grad = trainable;
  return s;
}
