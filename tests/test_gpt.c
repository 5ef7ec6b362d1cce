/* tests/test_gpt.c — the GPT of graft/gpt.h against its PyTorch twin
 * (tests/ref/ref_gpt.py: same weights, logits, loss and every parameter's
 * gradient, causal and prefix-LM), the prefix_softmax op (reference +
 * gradcheck), KV-cache generation vs full recomputation, model directory
 * round trip, and bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/gpt.h"
#include "util/gradcheck.h"
#include "util/gpt_ref.h"

static const gr_gpt_config TINY = {.vocab = 11, .block = 8, .n_layer = 2, .n_head = 2, .n_embd = 8};

static gr_tensor *prefix_fn(gr_ctx *c, gr_tensor **in, void *ud) { return gr_prefix_softmax(c, in[0], *(int64_t *)ud); }

static void test_prefix_softmax(void) {
  const char *names[] = {"x"};
  int64_t ps[] = {0, 1, 3, 5};
  char cs[64];
  for (int i = 0; i < 4; i++) {
    snprintf(cs, sizeof cs, "prefix_softmax_p%lld", (long long)ps[i]);
    CHECK_REF(cs, prefix_fn, &ps[i], 1, names);
  }
  int64_t p2 = 2;
  CHECK_REF("prefix_softmax_kv_p2", prefix_fn, &p2, 1, names);
  gr_rng r;
  gr_rng_seed(&r, 3);
  for (int i = 0; i < 3; i++) {
    gc_input in = gc_rand(&r, 3, GR_SHAPE(2, 4, 4), -2, 2, true);
    CHECK_GRAD("prefix_softmax", prefix_fn, &ps[i], 1, &in);
    gc_input_free(&in);
  }
  /* p = 0 is exactly the causal softmax */
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  float x[2 * 5 * 5];
  test_fill(&r, x, 50, -3, 3);
  gr_tensor *t = gr_tensor_from(c, 3, GR_SHAPE(2, 5, 5), x);
  gr_tensor *a = gr_prefix_softmax(c, t, 0), *b = gr_causal_softmax(c, t);
  CHECK(a && b && !memcmp(a->data, b->data, sizeof x));
  CHECK_FAILS(gr_prefix_softmax(c, t, 6) != NULL, GR_EARG);
  CHECK_FAILS(gr_prefix_softmax(c, t, -1) != NULL, GR_EARG);
  CHECK_FAILS(gr_prefix_softmax(c, gr_tensor_new(c, 2, GR_SHAPE(3, 2)), 0) != NULL, GR_ESHAPE);
  CHECK_FAILS(gr_prefix_softmax(c, NULL, 0) != NULL, GR_EARG);
  gr_ctx_free(c);
}

static void test_against_torch(const char *case_name) {
  ref_file *f = ref_open(case_name);
  CHECK_PTR(f);
  if (!f) return;
  gr_gpt *g = NULL;
  CHECK_OK(gr_gpt_new(&TINY, 1, &g));
  CHECK(gpt_ref_load_params(g, f));
  gpt_ref_check(g, f, case_name);
  gr_gpt_free(g);
  ref_close(f);
}

static void test_names_and_shapes(void) {
  gr_gpt *g = NULL;
  CHECK_OK(gr_gpt_new(&TINY, 5, &g));
  if (!g) return;
  const char *names[] = {"transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
                         "transformer.h.1.attn.c_attn.weight", "transformer.h.0.attn.c_proj.weight",
                         "transformer.h.0.mlp.c_fc.weight", "transformer.h.1.mlp.c_proj.bias",
                         "transformer.ln_f.weight"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) CHECK_MSG(gr_model_find(g->model, names[i]), "missing %s", names[i]);
  gr_tensor *w = gr_model_find(g->model, "transformer.h.1.attn.c_attn.weight");
  CHECK(w && w->shape[0] == 24 && w->shape[1] == 8);
  /* params: wte 88 + wpe 64 + 2 * (16 + 216 + 72 + 16 + 288 + 264) + 16 */
  CHECK(gr_model_param_count(g->model, false) == 88 + 64 + 2 * (16 + 216 + 72 + 16 + 288 + 264) + 16);
  CHECK(g->model->n_entries == 2 + 12 * 2 + 2);
  gr_gpt_free(g);
}

static void test_kv_cache_generation(void) {
  gr_gpt_config cfg = {.vocab = 13, .block = 24, .n_layer = 2, .n_head = 4, .n_embd = 16};
  gr_gpt *g = gpt_test_noisy(&cfg, 11, 9);
  if (!g) return;
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  int32_t prompt[3] = {1, 7, 2}, a[20], b[20];
  float la[20 * 13];
  int64_t nb = 0;
  gpt_check_kv_cache(g, c, prompt, 3, 20, a, la, "kv-cache logits");
  double moved = 0; /* the comparison means something only if the logits change along the sequence */
  for (int i = 0; i < 13; i++) moved += fabs(la[19 * 13 + i] - la[i]);
  CHECK(moved > 1e-2);
  /* sampling: deterministic per seed, top_k 1 equals greedy */
  gr_gpt_sample_opts o = {.temperature = 1.0f, .top_k = 1, .stop_id = -1};
  gr_rng r;
  gr_rng_seed(&r, 1);
  CHECK_OK(gr_gpt_generate(g, c, prompt, 3, 20, &o, &r, b, &nb, NULL));
  CHECK(!memcmp(a, b, sizeof a));
  o.top_k = 0;
  int32_t s1[20], s2[20];
  gr_rng_seed(&r, 4);
  CHECK_OK(gr_gpt_generate(g, c, prompt, 3, 20, &o, &r, s1, &nb, NULL));
  gr_rng_seed(&r, 4);
  CHECK_OK(gr_gpt_generate(g, c, prompt, 3, 20, &o, &r, s2, &nb, NULL));
  CHECK(!memcmp(s1, s2, sizeof s1));
  /* bad input */
  CHECK_FAILS(gr_gpt_generate(g, c, prompt, 0, 5, &o, &r, s1, &nb, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_gpt_generate(g, c, prompt, 3, 22, &o, &r, s1, &nb, NULL) == GR_OK, GR_EARG);
  int32_t bad[2] = {1, 13};
  CHECK_FAILS(gr_gpt_generate(g, c, bad, 2, 3, &o, &r, s1, &nb, NULL) == GR_OK, GR_EARG);
  gr_ctx_free(c);
  gr_gpt_free(g);
}

static void test_bad_input(void) {
  gr_gpt *g = NULL;
  gr_gpt_config bad = TINY;
  bad.n_head = 3;
  CHECK_FAILS(gr_gpt_new(&bad, 1, &g) == GR_OK, GR_EARG);
  bad = TINY;
  bad.vocab = 0;
  CHECK_FAILS(gr_gpt_new(&bad, 1, &g) == GR_OK, GR_EARG);
  CHECK_OK(gr_gpt_new(&TINY, 1, &g));
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  int32_t ids[16] = {0}, tg[16] = {0};
  CHECK_FAILS(gr_gpt_forward(g, c, ids, 1, 9, 0, NULL) != NULL, GR_EARG); /* longer than block 8 */
  CHECK_FAILS(gr_gpt_forward(g, c, ids, 1, 0, 0, NULL) != NULL, GR_EARG);
  CHECK_FAILS(gr_gpt_forward(g, c, ids, 1, 4, 5, NULL) != NULL, GR_EARG); /* prefix > T */
  ids[3] = 11;
  CHECK_FAILS(gr_gpt_forward(g, c, ids, 1, 4, 0, NULL) != NULL, GR_EARG);
  ids[3] = -1;
  CHECK_FAILS(gr_gpt_loss(g, c, ids, tg, 1, 4, 0) != NULL, GR_EARG);
  ids[3] = 0;
  CHECK_FAILS(gr_gpt_loss(g, c, ids, NULL, 1, 4, 0) != NULL, GR_EARG);
  gr_ctx_free(c);
  gr_gpt_free(g);
}

int main(void) {
  test_prefix_softmax();
  test_against_torch("gpt_causal");
  test_against_torch("gpt_prefix");
  test_names_and_shapes();
  test_kv_cache_generation();
  test_bad_input();
  return test_summary();
}
