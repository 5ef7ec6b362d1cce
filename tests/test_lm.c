/* tests/test_lm.c — graft/lm.h: the evaluation metric against gr_gpt_loss
 * on the same windows, a tiny training run per objective whose validation
 * loss drops, size and vocabulary errors, the masked-line infill
 * evaluation, and GPT model directories (round trip, corrupted files). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "graft/lm.h"
#include "graft/modeldir.h"
#include "testutil.h"

static gr_tokenizer *tok;

/* A small code-like corpus, one document per 12 lines. */
static gr_token_stream make_stream(int lines, int seed) {
  gr_corpus c = {0};
  char *text = malloc((size_t)lines * 64);
  gr_text_doc *docs = calloc((size_t)lines / 12 + 1, sizeof *docs);
  int64_t len = 0, nd = 0;
  for (int i = 0; i < lines; i++) {
    if (i % 12 == 0) docs[nd].off = len, snprintf(docs[nd].name, sizeof docs[nd].name, "d%d", (int)nd), nd++;
    int k = (i * 7 + seed) % 10;
    len += sprintf(text + len, "int f%d(void) { return %d; }\n", k, k * 3);
    docs[nd - 1].len = len - docs[nd - 1].off;
  }
  c.text = text, c.len = len, c.docs = docs, c.n_docs = nd;
  snprintf(c.source, sizeof c.source, "test");
  gr_token_stream s = {0};
  CHECK_OK(gr_corpus_tokenize(&c, tok, &s));
  free(text);
  free(docs);
  return s;
}

static gr_gpt *tiny_gpt(void) {
  gr_gpt_config cfg = {.vocab = tok->vocab, .block = 80, .n_layer = 1, .n_head = 2, .n_embd = 32};
  gr_gpt *g = NULL;
  CHECK_OK(gr_gpt_new(&cfg, 5, &g));
  return g;
}

static void test_evaluate_matches_loss(void) {
  gr_token_stream s = make_stream(40, 0);
  gr_gpt *g = tiny_gpt();
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_lm_eval ev;
  double *uni = malloc((size_t)tok->vocab * sizeof(double));
  CHECK_OK(gr_lm_unigram_logp(&s, tok, uni));
  const int64_t T = 32;
  CHECK_OK(gr_lm_evaluate(g, c, &s, tok, T, 0, uni, &ev));
  double sum = 0;
  int64_t n_win = (s.n - 1) / T, bytes = 0;
  for (int64_t w = 0; w < n_win; w++) {
    gr_ctx_reset(c);
    gr_tensor *l = gr_gpt_loss(g, c, s.ids + w * T, s.ids + w * T + 1, 1, T, 0);
    sum += l ? l->data[0] * T : NAN;
    for (int64_t i = 0; i < T; i++) bytes += tok->piece_len[s.ids[w * T + 1 + i]];
  }
  CHECK(ev.tokens == n_win * T && ev.bytes == bytes);
  CHECK_NEAR(ev.loss, sum / (double)(n_win * T), 1e-4 * ev.loss);
  CHECK_NEAR(ev.bpc, sum / log(2.0) / (double)bytes, 1e-4 * ev.bpc);
  CHECK(ev.unigram_bpc > 1 && ev.unigram_bpc < 8);
  CHECK(fabs(ev.loss - log((double)tok->vocab)) < 0.5); /* untrained: about uniform */
  gr_lm_eval spread;
  CHECK_OK(gr_lm_evaluate(g, c, &s, tok, T, 3 * T, uni, &spread));
  CHECK(spread.tokens == 3 * T);
  CHECK_FAILS(gr_lm_evaluate(g, c, &s, tok, 81, 0, uni, &ev) == GR_OK, GR_EARG); /* window > block */
  free(uni);
  gr_ctx_free(c);
  gr_gpt_free(g);
  gr_token_stream_free(&s);
}

static void test_training(void) {
  gr_token_stream tr = make_stream(120, 0), va = make_stream(40, 3);
  for (int obj = 0; obj < GR_LM_OBJECTIVES; obj++) {
    gr_gpt *g = tiny_gpt();
    gr_ctx *c = gr_ctx_new(1 << 20, 1);
    gr_lm_eval before;
    CHECK_OK(gr_lm_evaluate(g, c, &va, tok, 32, 0, NULL, &before));
    gr_optim_cfg oc = gr_adamw_cfg(1e-2f, 0.0f);
    gr_optim *o = gr_optim_new(g->model, &oc);
    gr_lm_train_cfg tc = {.objective = (gr_lm_objective)obj, .infill = gr_infill_default(), .steps = 60, .batch = 8,
                          .seq = obj == GR_LM_CAUSAL || obj == GR_LM_PREFIX ? 32 : 64, .clip_norm = 1, .seed = 2};
    gr_lm_train_result res;
    CHECK_OK(gr_lm_train(g, o, tok, &tr, &va, NULL, &tc, NULL, &res));
    CHECK(res.steps == 60 && isfinite(res.train_loss));
    CHECK_MSG(res.eval.loss < before.loss - 1.5, "%s: validation loss %.3f -> %.3f", gr_lm_objective_name(tc.objective),
              before.loss, res.eval.loss);
    tc.seq = 81;
    CHECK_FAILS(gr_lm_train(g, o, tok, &tr, &va, NULL, &tc, NULL, &res) == GR_OK, GR_EARG);
    CHECK(strstr(gr_last_error(), "block size") != NULL);
    gr_optim_free(o);
    gr_ctx_free(c);
    gr_gpt_free(g);
  }
  gr_token_stream_free(&tr);
  gr_token_stream_free(&va);
}

static void test_infill_eval(void) {
  gr_token_stream s = make_stream(60, 1);
  gr_gpt *g = tiny_gpt();
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_infill_eval a, b;
  CHECK_OK(gr_lm_infill_eval(g, c, tok, &s, GR_INFILL_PSM, 10, 12, 4, &a));
  CHECK_OK(gr_lm_infill_eval(g, c, tok, &s, GR_INFILL_LEFT_TO_RIGHT, 10, 12, 4, &b));
  CHECK(a.cases == 10 && b.cases == 10 && a.span_tokens == b.span_tokens); /* the same lines */
  gr_infill_eval spm;
  CHECK_OK(gr_lm_infill_eval(g, c, tok, &s, GR_INFILL_SPM, 10, 12, 4, &spm));
  CHECK(spm.cases == 10 && spm.span_tokens == a.span_tokens && spm.span_loss > 0 && isfinite(spm.span_loss));
  CHECK_FAILS(gr_lm_infill_eval(g, c, tok, &s, (gr_infill_format)3, 10, 12, 4, &a) == GR_OK, GR_EARG);
  CHECK(a.span_loss > 0 && isfinite(a.span_loss) && a.exact >= 0 && a.exact <= 1);
  CHECK_FAILS(gr_lm_infill_eval(g, c, tok, &s, GR_INFILL_PSM, 10, 40, 4, &a) == GR_OK, GR_EARG); /* context too long */
  gr_ctx_free(c);
  gr_gpt_free(g);
  gr_token_stream_free(&s);
}

static void write_text(const char *path, const char *text) {
  FILE *fp = fopen(path, "wb");
  if (fp) fputs(text, fp), fclose(fp);
}

static void test_model_dir(void) {
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/lm_dir", test_tmpdir());
  mkdir(dir, 0755);
  gr_tokenizer *ct = NULL;
  const char *text = "int main(void) { return 0; }\n";
  CHECK_OK(gr_tokenizer_char_build(text, strlen(text), &ct));
  gr_gpt_config cfg = {.vocab = ct->vocab, .block = 16, .n_layer = 2, .n_head = 2, .n_embd = 8};
  gr_gpt *g = NULL, *h = NULL;
  gr_tokenizer *t2 = NULL;
  CHECK_OK(gr_gpt_new(&cfg, 9, &g));
  gr_gpt_meta meta = {"ccode:max=1M", "mix"}, m2;
  CHECK_OK(gr_gpt_save_dir(g, ct, &meta, dir));
  CHECK_OK(gr_gpt_load_dir(dir, &h, &t2, &m2));
  if (h && t2) {
    CHECK(!memcmp(&h->cfg, &g->cfg, sizeof cfg) && t2->kind == GR_TOK_CHAR && t2->n_base == ct->n_base);
    CHECK(!strcmp(m2.data, meta.data) && !strcmp(m2.objective, "mix"));
    bool same = h->model->n_entries == g->model->n_entries;
    for (int i = 0; same && i < g->model->n_entries; i++)
      same = !memcmp(h->model->entries[i].t->data, g->model->entries[i].t->data, (size_t)g->model->entries[i].t->numel * 4);
    CHECK_MSG(same, "weights differ after save/load");
  }
  gr_gpt_free(h), gr_tokenizer_free(t2);
  gr_tokenizer *bt = NULL;
  CHECK_OK(gr_tokenizer_byte(&bt));
  CHECK_FAILS(gr_gpt_save_dir(g, bt, &meta, dir) == GR_OK, GR_EARG); /* vocabulary differs */
  snprintf(path, sizeof path, "%s/config.json", dir);
  uint8_t *good = NULL;
  size_t n = 0;
  good = test_read_file(path, &n);
  char *bad = good ? malloc(n + 64) : NULL;
  if (bad) { /* vocab_size no longer matches the tokenizer */
    char *v = strstr((char *)good, "\"vocab_size\"");
    size_t pre = v ? (size_t)(v - (char *)good) : 0;
    snprintf(bad, n + 64, "%.*s\"vocab_size\": 9999, \"x_old_vocab\"%s", (int)pre, (char *)good, v ? v + 12 : "");
    write_text(path, bad);
    CHECK_FAILS(gr_gpt_load_dir(dir, &h, &t2, NULL) == GR_OK, GR_EFORMAT);
    write_text(path, "{\"architecture\": \"gpt\", \"vocab_size\": 3}");
    CHECK_FAILS(gr_gpt_load_dir(dir, &h, &t2, NULL) == GR_OK, GR_EFORMAT);
    write_text(path, "{\"architecture\": \"lenet\"}");
    CHECK_FAILS(gr_gpt_load_dir(dir, &h, &t2, NULL) == GR_OK, GR_EFORMAT);
    write_text(path, (char *)good);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_text(path, "garbage");
    CHECK_FAILS(gr_gpt_load_dir(dir, &h, &t2, NULL) == GR_OK, GR_EFORMAT);
  }
  free(bad);
  free(good);
  snprintf(path, sizeof path, "%s/missing", dir);
  CHECK_FAILS(gr_gpt_load_dir(path, &h, &t2, NULL) == GR_OK, GR_ENOTFOUND);
  gr_tokenizer_free(bt);
  gr_tokenizer_free(ct);
  gr_gpt_free(g);
}

int main(void) {
  gr_set_threads(1);
  CHECK_OK(gr_tokenizer_byte(&tok));
  test_evaluate_matches_loss();
  test_training();
  test_infill_eval();
  test_model_dir();
  gr_tokenizer_free(tok);
  return test_summary();
}
