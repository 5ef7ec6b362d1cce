/* tests/util/gpt_ref.h — checking a GPT (graft/gpt.h, with or without PEFT)
 * against a reference file of its PyTorch twin (tests/ref/torch_models.py):
 * every model entry's values, then logits, loss, and the gradient of each
 * parameter the file has "d<name>" for; the others must be frozen and get
 * none; a GPT with large random weights and the KV-cache check. Shared by
 * tests/test_gpt.c and tests/test_gpt_peft.c. */
#ifndef GRAFT_TEST_GPT_REF_H
#define GRAFT_TEST_GPT_REF_H
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/gpt.h"
#include "refdata.h"

/* Copies every model entry of the reference file into g; false if one is missing. */
static inline bool gpt_ref_load_params(gr_gpt *g, const ref_file *f) {
  gr_model *m = g->model;
  for (int i = 0; i < m->n_entries; i++) {
    const ref_array *a = ref_get(f, m->entries[i].name);
    if (!a || a->numel != m->entries[i].t->numel) return false;
    memcpy(m->entries[i].t->data, a->data, (size_t)a->numel * sizeof(float));
  }
  return true;
}

/* Logits and loss of g on the case's batch match the file; trainable
 * parameters get the file's gradients, frozen ones none. */
static inline void gpt_ref_check(gr_gpt *g, const ref_file *f, const char *case_name) {
  const ref_array *ids_a = ref_get(f, "ids"), *tg_a = ref_get(f, "targets");
  int64_t B = ids_a->shape[0], T = ids_a->shape[1], lm_prefix = (int64_t)ref_get(f, "prefix")->data[0];
  int32_t ids[64], tg[64];
  CHECK_MSG(B * T <= 64 && tg_a->numel == B * T, "%s: batch of %lld tokens too large for the test", case_name,
            (long long)(B * T));
  if (B * T > 64 || tg_a->numel != B * T) return;
  for (int64_t i = 0; i < B * T; i++) ids[i] = (int32_t)ids_a->data[i], tg[i] = (int32_t)tg_a->data[i];
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_tensor *logits = gr_gpt_forward(g, c, ids, B, T, lm_prefix, NULL);
  CHECK_PTR(logits);
  if (logits) CHECK_CLOSE(case_name, logits->data, ref_get(f, "logits")->data, logits->numel, 1e-4, 1e-4);
  gr_ctx_reset(c);
  gr_model_zero_grad(g->model);
  gr_tensor *loss = gr_gpt_loss(g, c, ids, tg, B, T, lm_prefix);
  CHECK_PTR(loss);
  if (loss) {
    CHECK_NEAR(loss->data[0], ref_get(f, "loss")->data[0], 1e-4);
    CHECK_OK(gr_backward(c, loss));
    char dn[GR_NAME_MAX + 1];
    for (int i = 0; i < g->model->n_entries; i++) {
      gr_named_tensor *e = &g->model->entries[i];
      snprintf(dn, sizeof dn, "d%s", e->name);
      bool want_grad = ref_has(f, dn);
      CHECK_MSG(e->t->requires_grad == want_grad, "%s: requires_grad %d", e->name, e->t->requires_grad);
      if (want_grad) CHECK_CLOSE(dn, e->t->grad, ref_get(f, dn)->data, e->t->numel, 1e-4, 1e-4);
      double norm = 0;
      for (int64_t k = 0; !want_grad && k < e->t->numel; k++) norm += fabs(e->t->grad[k]);
      CHECK_MSG(norm == 0, "frozen %s got a gradient", e->name);
    }
  }
  gr_ctx_free(c);
}

/* A GPT of cfg (gr_gpt_new with init_seed) whose weights are then drawn from
 * N(0, 0.3) with noise_seed: larger than GPT-2's init, so argmaxes are not
 * flat and small changes show. NULL (a failed check) when it cannot be made. */
static inline gr_gpt *gpt_test_noisy(const gr_gpt_config *cfg, uint64_t init_seed, uint64_t noise_seed) {
  gr_gpt *g = NULL;
  CHECK_OK(gr_gpt_new(cfg, init_seed, &g));
  if (!g) return NULL;
  gr_rng r;
  gr_rng_seed(&r, noise_seed);
  gr_rng_fill_normal(&r, g->model->data, g->model->numel, 0, 0.3f);
  return g;
}

/* Greedy generation of n tokens after prompt[0..np) with the KV cache and by
 * full recomputation: the same tokens, logits within 1e-5 (what names the
 * case). The cached run's tokens and logits (n x vocab) go to ids, logits. */
static inline void gpt_check_kv_cache(gr_gpt *g, gr_ctx *c, const int32_t *prompt, int64_t np, int64_t n, int32_t *ids,
                                      float *logits, const char *what) {
  int64_t vocab = g->cfg.vocab, na = 0, nb = 0;
  int32_t *ids_b = malloc((size_t)n * sizeof *ids_b);
  float *logits_b = malloc((size_t)(n * vocab) * sizeof *logits_b);
  CHECK(ids_b && logits_b);
  gr_gpt_sample_opts o = {.temperature = 0, .stop_id = -1};
  if (ids_b && logits_b) {
    CHECK_OK(gr_gpt_generate(g, c, prompt, np, n, &o, NULL, ids, &na, logits));
    o.no_cache = true;
    CHECK_OK(gr_gpt_generate(g, c, prompt, np, n, &o, NULL, ids_b, &nb, logits_b));
    CHECK_MSG(na == n && nb == n && !memcmp(ids, ids_b, (size_t)n * sizeof *ids), "%s: tokens differ", what);
    CHECK_CLOSE(what, logits, logits_b, n * vocab, 1e-5, 0);
  }
  free(ids_b), free(logits_b);
}

#endif
