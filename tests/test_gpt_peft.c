/* tests/test_gpt_peft.c — PEFT on the GPT: prefix tuning (graft/peft_prefix.h)
 * and LoRA on c_attn/c_proj/c_fc against the PyTorch twin
 * (tests/ref/ref_gpt_peft.py: logits, loss, gradients of the PEFT
 * parameters, frozen base), a finite-difference check of the gradient
 * through the prefix attention, the unified-view identity of a prefixed
 * attention head, KV-cache generation with a prefix, folding the
 * reparametrization, merging LoRA, and bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/peft.h"
#include "graft/optim.h"
#include "graft/peft_prefix.h"
#include "util/gradcheck.h"
#include "util/gpt_ref.h"

static const gr_gpt_config TINY = {.vocab = 11, .block = 8, .n_layer = 2, .n_head = 2, .n_embd = 8};

static void test_prefix_against_torch(const char *case_name, int l, int hidden) {
  ref_file *f = ref_open(case_name);
  CHECK_PTR(f);
  if (!f) return;
  gr_gpt *g = NULL;
  CHECK_OK(gr_gpt_new(&TINY, 1, &g));
  int64_t base_params = gr_model_param_count(g->model, false), width = 2 * TINY.n_layer * TINY.n_embd;
  CHECK_OK(gr_prefix_attach(g, &(gr_prefix_opts){.n_virtual = l, .projection_hidden = hidden}));
  CHECK(gr_prefix_length(g) == l);
  int64_t want = hidden ? l * TINY.n_embd + hidden * (TINY.n_embd + 1) + width * (hidden + 1) : l * width;
  CHECK(gr_model_param_count(g->model, true) == want);
  CHECK(gr_model_param_count(g->model, false) == base_params + want);
  CHECK(gpt_ref_load_params(g, f));
  gpt_ref_check(g, f, case_name);
  /* the prefix changes the function: the base model's logits differ */
  const ref_array *a = ref_get(f, "logits"), *b = ref_get(f, "base_logits");
  double diff = 0;
  for (int64_t i = 0; i < a->numel; i++) diff += fabs(a->data[i] - b->data[i]);
  CHECK(diff > 1e-2);
  gr_gpt_free(g);
  ref_close(f);
}

static void test_lora_against_torch(bool fan_in_fan_out) {
  ref_file *f = ref_open("gpt_lora");
  CHECK_PTR(f);
  if (!f) return;
  gr_gpt *g = NULL;
  CHECK_OK(gr_gpt_new(&TINY, 1, &g));
  const char *targets[] = {"c_attn", "c_proj", "c_fc"};
  gr_peft_config *cfg = gr_peft_config_new(GR_PEFT_LORA, 2, 4.0, targets, 3);
  CHECK_PTR(cfg);
  /* Hugging Face's GPT-2 configs say fan_in_fan_out (its Conv1D layout);
   * graft's Linears are [out,in] either way and must give the same model */
  cfg->fan_in_fan_out = fan_in_fan_out;
  int n = 0;
  CHECK_OK(gr_lora_apply(g->model, cfg, GR_LORA_INIT_RANDOM, &n));
  CHECK(n == 4 * TINY.n_layer); /* c_proj: attn.c_proj and mlp.c_proj */
  CHECK(gpt_ref_load_params(g, f));
  gpt_ref_check(g, f, fan_in_fan_out ? "gpt_lora fan_in_fan_out" : "gpt_lora");
  /* merged weights give the same logits */
  const ref_array *ids_a = ref_get(f, "ids");
  int32_t ids[64];
  for (int64_t i = 0; i < ids_a->numel; i++) ids[i] = (int32_t)ids_a->data[i];
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  CHECK_OK(gr_peft_merge_all(g->model, true, &n));
  gr_tensor *y = gr_gpt_forward(g, c, ids, ids_a->shape[0], ids_a->shape[1], 0, NULL);
  CHECK_PTR(y);
  if (y) CHECK_CLOSE("gpt_lora merged", y->data, ref_get(f, "logits")->data, y->numel, 1e-5, 1e-4);
  gr_ctx_free(c);
  gr_peft_config_free(cfg);
  gr_gpt_free(g);
  ref_close(f);
}

/* ---- finite differences through the GPT's prefix path ------------------- */
/* A prompt encoder whose table is the gradcheck input (cfg points to it). */
static gr_tensor *table_source_forward(gr_module *m, gr_ctx *c, gr_tensor *x) {
  (void)c, (void)x;
  return m->cfg;
}

typedef struct prefix_gc {
  gr_gpt *g;
  gr_module *source;
  int64_t lm_prefix;
} prefix_gc;

static gr_tensor *prefix_gpt_fn(gr_ctx *c, gr_tensor **in, void *ud) {
  prefix_gc *p = ud;
  static const int32_t ids[2 * 5] = {1, 4, 7, 2, 9, 3, 3, 10, 0, 5};
  p->source->cfg = in[0];
  return gr_gpt_forward(p->g, c, ids, 2, 5, p->lm_prefix, NULL);
}

static void test_prefix_gradcheck(void) {
  gr_gpt *g = gpt_test_noisy(&TINY, 3, 5);
  if (!g) return;
  gr_model_freeze(g->model, "*", true);
  gr_module *src = gr_module_new(g->model, "TableSource", table_source_forward);
  CHECK_OK(gr_module_add(g->model->root, GR_GPT_PROMPT_ENCODER, src));
  CHECK_OK(gr_model_layout(g->model));
  gr_rng r;
  gr_rng_seed(&r, 7);
  for (int64_t lm = 0; lm <= 2; lm += 2) {
    prefix_gc ud = {g, src, lm};
    gc_input in = gc_rand(&r, 2, GR_SHAPE(3, 2 * TINY.n_layer * TINY.n_embd), -1, 1, true);
    CHECK_GRAD(lm ? "gpt prefix table, prefix-LM" : "gpt prefix table", prefix_gpt_fn, &ud, 1, &in);
    gc_input_free(&in);
  }
  /* a table of the wrong width is a shape error naming the encoder */
  gr_ctx *c = gr_ctx_new(1 << 18, 1);
  src->cfg = gr_tensor_new(c, 2, GR_SHAPE(3, 5));
  int32_t ids[3] = {1, 2, 3};
  CHECK_FAILS(gr_gpt_forward(g, c, ids, 1, 3, 0, NULL) != NULL, GR_ESHAPE);
  gr_ctx_free(c);
  gr_gpt_free(g);
}

/* ---- the unified view (He et al. 2022): a prefixed head is a gated mix ---- */
/* softmax over [P_k; K] of a causal head equals (1 - lambda) Attn(K, V) +
 * lambda softmax(q P_k^T) P_v with lambda = sum_P e^s / (sum_P e^s + sum_K e^s),
 * the sums over the keys query i sees; checked on graft's ops in the GPT's
 * order (concat keys, matmul, scale, causal softmax, matmul). */
static void test_unified_view_identity(void) {
  enum { T = 5, L = 3, D = 4 };
  gr_rng r;
  gr_rng_seed(&r, 8);
  float q[T * D], k[T * D], v[T * D], pk[L * D], pv[L * D];
  test_fill(&r, q, T * D, -1.5f, 1.5f), test_fill(&r, k, T * D, -1.5f, 1.5f), test_fill(&r, v, T * D, -1, 1);
  test_fill(&r, pk, L * D, -1.5f, 1.5f), test_fill(&r, pv, L * D, -1, 1);
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *keys[2] = {gr_tensor_from(c, 2, GR_SHAPE(L, D), pk), gr_tensor_from(c, 2, GR_SHAPE(T, D), k)};
  gr_tensor *vals[2] = {gr_tensor_from(c, 2, GR_SHAPE(L, D), pv), gr_tensor_from(c, 2, GR_SHAPE(T, D), v)};
  gr_tensor *qt = gr_tensor_from(c, 2, GR_SHAPE(T, D), q);
  gr_tensor *att = gr_scale(c, gr_matmul(c, qt, gr_concat(c, 2, keys, 0), false, true), 1.0f / sqrtf(D));
  gr_tensor *y = gr_matmul(c, gr_causal_softmax(c, att), gr_concat(c, 2, vals, 0), false, false);
  CHECK_PTR(y);
  double worst = 0;
  for (int i = 0; y && i < T; i++) {
    double sp = 0, sc = 0, ap[D] = {0}, ac[D] = {0};
    for (int j = 0; j < L + i + 1; j++) {
      const float *kj = j < L ? pk + j * D : k + (j - L) * D, *vj = j < L ? pv + j * D : v + (j - L) * D;
      double s = 0;
      for (int d = 0; d < D; d++) s += (double)q[i * D + d] * kj[d];
      double e = exp(s / sqrt((double)D));
      *(j < L ? &sp : &sc) += e;
      for (int d = 0; d < D; d++) (j < L ? ap : ac)[d] += e * vj[d];
    }
    double lambda = sp / (sp + sc);
    for (int d = 0; d < D; d++) {
      double want = (1 - lambda) * ac[d] / sc + lambda * ap[d] / sp;
      worst = fmax(worst, fabs(want - y->data[i * D + d]));
    }
  }
  CHECK_MSG(worst < 1e-5, "prefix head vs gated mix: max abs err %g", worst);
  gr_ctx_free(c);
}

static void test_prefix_kv_cache_and_fold(void) {
  gr_gpt_config cfg = {.vocab = 13, .block = 24, .n_layer = 2, .n_head = 4, .n_embd = 16};
  gr_gpt *g = gpt_test_noisy(&cfg, 11, 9);
  if (!g) return;
  CHECK_OK(gr_prefix_attach(g, &(gr_prefix_opts){.n_virtual = 4, .projection_hidden = 10}));
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  int32_t prompt[3] = {1, 7, 2}, a[20], b[20];
  float la[20 * 13], lb[20 * 13];
  int64_t nb = 0;
  gr_gpt_sample_opts o = {.temperature = 0, .stop_id = -1, .no_cache = true};
  /* a prefix does not take block positions: prompt + 21 new = block */
  gpt_check_kv_cache(g, c, prompt, 3, 20, a, la, "prefix kv-cache logits");
  /* folding the reparametrization keeps the function and drops the MLP */
  int64_t width = 2 * cfg.n_layer * cfg.n_embd;
  CHECK(gr_model_param_count(g->model, true) == 4 * 16 + 10 * 17 + width * 11);
  CHECK_OK(gr_prefix_fold(g));
  CHECK(gr_model_param_count(g->model, true) == 4 * width);
  CHECK(gr_model_find(g->model, "prompt_encoder.transform.0.weight") == NULL);
  gr_tensor *w = gr_model_find(g->model, "prompt_encoder.embedding.weight");
  CHECK(w && w->shape[0] == 4 && w->shape[1] == width && w->requires_grad);
  CHECK(gr_prefix_length(g) == 4);
  CHECK_OK(gr_gpt_generate(g, c, prompt, 3, 20, &o, NULL, b, &nb, lb));
  CHECK(!memcmp(a, b, sizeof a));
  CHECK_CLOSE("folded prefix logits", la, lb, 20 * 13, 1e-5, 1e-5);
  CHECK_OK(gr_prefix_fold(g)); /* direct already: nothing to do */
  gr_ctx_free(c);
  gr_gpt_free(g);
}

/* A few AdamW steps move the loss and the prefix, never a base weight. */
static void test_prefix_training_touches_prefix_only(void) {
  gr_gpt *g = gpt_test_noisy(&TINY, 4, 6); /* weights large enough for the prefix to move the output */
  if (!g) return;
  gr_model *m = g->model;
  CHECK_OK(gr_prefix_attach(g, &(gr_prefix_opts){.n_virtual = 2, .projection_hidden = 0}));
  float *before = malloc((size_t)m->numel * sizeof(float));
  memcpy(before, m->data, (size_t)m->numel * sizeof(float));
  gr_optim_cfg oc = gr_adamw_cfg(5e-2f, 0.0f);
  gr_optim *opt = gr_optim_new(m, &oc);
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  int32_t ids[8] = {1, 2, 3, 4, 1, 2, 3, 4}, tg[8] = {2, 3, 4, 1, 2, 3, 4, 1};
  double first = 0, last = 0;
  for (int s = 0; s < 20; s++) {
    gr_model_zero_grad(m);
    gr_tensor *loss = gr_gpt_loss(g, c, ids, tg, 1, 8, 0);
    if (!loss || gr_backward(c, loss) || gr_optim_step(opt)) break;
    if (s == 0) first = loss->data[0];
    last = loss->data[0];
    gr_ctx_reset(c);
  }
  CHECK_MSG(last < first - 0.05, "prefix training: loss %g -> %g", first, last);
  int moved_base = 0, moved_prefix = 0;
  for (int i = 0; i < m->n_entries; i++) {
    gr_named_tensor *e = &m->entries[i];
    bool moved = memcmp(before + e->offset, e->t->data, (size_t)e->t->numel * sizeof(float)) != 0;
    if (strncmp(e->name, "prompt_encoder.", 15)) moved_base += moved;
    else moved_prefix += moved;
  }
  CHECK(moved_base == 0 && moved_prefix == 1);
  gr_ctx_free(c);
  gr_optim_free(opt);
  free(before);
  gr_gpt_free(g);
}

/* Init from real tokens: the prefix is exactly those tokens' past keys and
 * values. With the position embeddings zeroed (so positions do not matter)
 * the prefixed model on x gives the plain model's logits of x after ids. */
static void test_prefix_init_from_tokens(void) {
  gr_gpt_config cfg = {.vocab = 13, .block = 12, .n_layer = 2, .n_head = 2, .n_embd = 8};
  gr_gpt *g = gpt_test_noisy(&cfg, 5, 12);
  if (!g) return;
  gr_tensor *wpe = gr_model_find(g->model, "transformer.wpe.weight");
  gr_tensor_fill(wpe, 0.0f);
  int32_t all[8] = {3, 11, 0, 7, 5, 2, 9, 4}; /* ids (4) then x (4) */
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_tensor *want = gr_gpt_forward(g, c, all, 1, 8, 0, NULL);
  CHECK_FAILS(gr_prefix_attach(g, &(gr_prefix_opts){.n_virtual = 4, .projection_hidden = 3, .init_ids = all}) == GR_OK,
              GR_EARG);
  int32_t bad[4] = {1, 2, 13, 0};
  CHECK_FAILS(gr_prefix_attach(g, &(gr_prefix_opts){.n_virtual = 4, .init_ids = bad}) == GR_OK, GR_EARG);
  CHECK(gr_prefix_length(g) == 0);
  CHECK_OK(gr_prefix_attach(g, &(gr_prefix_opts){.n_virtual = 4, .init_ids = all}));
  gr_tensor *got = gr_gpt_forward(g, c, all + 4, 1, 4, 0, NULL);
  CHECK(want && got);
  if (want && got) CHECK_CLOSE("prefix from tokens = their past", got->data, want->data + 4 * 13, 4 * 13, 1e-5, 1e-5);
  gr_ctx_free(c);
  gr_gpt_free(g);
}

static void test_prefix_bad_input(void) {
  gr_gpt *g = NULL;
  CHECK_OK(gr_gpt_new(&TINY, 1, &g));
  if (!g) return;
  CHECK_FAILS(gr_prefix_attach(NULL, &(gr_prefix_opts){.n_virtual = 2}) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_prefix_attach(g, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_prefix_attach(g, &(gr_prefix_opts){.n_virtual = 0}) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_prefix_attach(g, &(gr_prefix_opts){.n_virtual = 9}) == GR_OK, GR_EARG); /* > block 8 */
  CHECK_FAILS(gr_prefix_attach(g, &(gr_prefix_opts){.n_virtual = 2, .projection_hidden = -1}) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_prefix_fold(g) == GR_OK, GR_ESTATE);
  CHECK(gr_prefix_length(g) == 0 && gr_prefix_length(NULL) == 0);
  CHECK_OK(gr_prefix_attach(g, &(gr_prefix_opts){.n_virtual = 2}));
  CHECK_FAILS(gr_prefix_attach(g, &(gr_prefix_opts){.n_virtual = 2}) == GR_OK, GR_ESTATE);
  gr_gpt_free(g);
}

/* ---- MAM: prefix + scaled parallel adapters on the FFN sublayers -------- */
static void test_mam_against_torch(void) {
  ref_file *f = ref_open("gpt_mam");
  CHECK_PTR(f);
  if (!f) return;
  gr_gpt *g = NULL;
  CHECK_OK(gr_gpt_new(&TINY, 1, &g));
  gr_mam_opts o = {.prefix = {.n_virtual = 2}, .pa_r = 3, .pa_scale = 4.0f};
  CHECK_OK(gr_mam_attach(g, &o));
  int64_t C = TINY.n_embd, want = 2 * 2 * TINY.n_layer * C + TINY.n_layer * (3 * C + 3 + C * 3 + C);
  CHECK(gr_model_param_count(g->model, true) == want);
  CHECK(gr_model_find(g->model, "transformer.h.1.mlp.base_layer.c_fc.weight") != NULL);
  CHECK(gpt_ref_load_params(g, f));
  gpt_ref_check(g, f, "gpt_mam");
  CHECK_FAILS(gr_mam_attach(g, &o) == GR_OK, GR_ESTATE);
  gr_gpt_free(g);
  ref_close(f);
}

/* With up = 0 (the init) the adapters add exactly nothing: the logits of
 * GPT + FFN adapters are the base GPT's bit for bit, and MAM's are those of
 * the same prefix alone. */
static void test_zero_init_is_exact(void) {
  gr_gpt *base = NULL, *pa = NULL, *pre = NULL, *mam = NULL;
  CHECK_OK(gr_gpt_new(&TINY, 21, &base));
  CHECK_OK(gr_gpt_new(&TINY, 21, &pa));
  CHECK_OK(gr_gpt_new(&TINY, 21, &pre));
  CHECK_OK(gr_gpt_new(&TINY, 21, &mam));
  if (!base || !pa || !pre || !mam) return;
  gr_adapter_opts ao = {.r = 4, .placement = GR_ADAPTER_PARALLEL, .scale = 4.0f};
  CHECK_OK(gr_adapter_wrap(pa->model, "transformer.h.0.mlp", &ao));
  CHECK_OK(gr_adapter_wrap(pa->model, "transformer.h.1.mlp", &ao));
  CHECK_OK(gr_prefix_attach(pre, &(gr_prefix_opts){.n_virtual = 3}));
  CHECK_OK(gr_mam_attach(mam, &(gr_mam_opts){.prefix = {.n_virtual = 3}, .pa_r = 4, .pa_scale = 4.0f}));
  /* the same prefix values in both (each model drew its own) */
  gr_tensor *p1 = gr_model_find(pre->model, "prompt_encoder.embedding.weight");
  gr_tensor *p2 = gr_model_find(mam->model, "prompt_encoder.embedding.weight");
  CHECK(p1 && p2 && p1->numel == p2->numel);
  if (p1 && p2) memcpy(p2->data, p1->data, (size_t)p1->numel * sizeof(float));
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  int32_t ids[2 * 6] = {1, 5, 9, 2, 0, 7, 3, 3, 8, 10, 4, 6};
  gr_tensor *y[4];
  gr_gpt *gs[4] = {base, pa, pre, mam};
  for (int i = 0; i < 4; i++) y[i] = gr_gpt_forward(gs[i], c, ids, 2, 6, 0, NULL);
  CHECK(y[0] && y[1] && y[2] && y[3]);
  size_t bytes = (size_t)2 * 6 * TINY.vocab * sizeof(float);
  if (y[0] && y[1]) CHECK(!memcmp(y[0]->data, y[1]->data, bytes));
  if (y[2] && y[3]) CHECK(!memcmp(y[2]->data, y[3]->data, bytes));
  if (y[0] && y[2]) CHECK(memcmp(y[0]->data, y[2]->data, bytes)); /* the prefix itself does change them */
  gr_ctx_free(c);
  for (int i = 0; i < 4; i++) gr_gpt_free(gs[i]);
}

static void test_mam_bad_input(void) {
  gr_gpt *g = NULL;
  CHECK_OK(gr_gpt_new(&TINY, 1, &g));
  if (!g) return;
  gr_mam_opts o = {.prefix = {.n_virtual = 2}, .pa_r = 3, .pa_scale = 4.0f};
  CHECK_FAILS(gr_mam_attach(NULL, &o) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_mam_attach(g, NULL) == GR_OK, GR_EARG);
  o.pa_r = 0;
  CHECK_FAILS(gr_mam_attach(g, &o) == GR_OK, GR_EARG);
  o.pa_r = 9; /* > n_embd 8 */
  CHECK_FAILS(gr_mam_attach(g, &o) == GR_OK, GR_EARG);
  o.pa_r = 3, o.pa_scale = 0;
  CHECK_FAILS(gr_mam_attach(g, &o) == GR_OK, GR_EARG);
  o.pa_scale = 4, o.prefix.n_virtual = 0;
  CHECK_FAILS(gr_mam_attach(g, &o) == GR_OK, GR_EARG);
  /* nothing was changed by the failures */
  CHECK(gr_prefix_length(g) == 0 && gr_model_find(g->model, "transformer.h.0.mlp.c_fc.weight") != NULL);
  /* LoRA does not target the FFN sublayer itself */
  CHECK_FAILS(gr_lora_wrap(g->model, "transformer.h.0.mlp", &(gr_lora_opts){.r = 2, .alpha = 4}) == GR_OK,
              GR_EUNSUPPORTED);
  gr_gpt_free(g);
}

int main(void) {
  test_prefix_against_torch("gpt_prefix_direct", 3, 0);
  test_prefix_against_torch("gpt_prefix_mlp", 2, 6);
  test_lora_against_torch(false);
  test_lora_against_torch(true);
  test_prefix_gradcheck();
  test_unified_view_identity();
  test_prefix_kv_cache_and_fold();
  test_prefix_training_touches_prefix_only();
  test_prefix_init_from_tokens();
  test_prefix_bad_input();
  test_mam_against_torch();
  test_zero_init_is_exact();
  test_mam_bad_input();
  return test_summary();
}
