/* tests/test_text.c — graft/text.h: tokenizer round trips (byte, char with
 * bad UTF-8, BPE against tests/ref/ref_text.py), tokenizer JSON, the LM
 * objective rows against the numpy reference, span planning properties,
 * text specs, by-document splits (disjoint, covering) on the real corpora
 * when their packages are installed (skipped with a message otherwise). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/text.h"
#include "refdata.h"

static void roundtrip(const gr_tokenizer *t, const char *text, size_t n, const char *what) {
  int32_t *ids = NULL;
  int64_t k = 0;
  char *back = NULL;
  size_t len = 0;
  CHECK_OK(gr_tokenizer_encode(t, text, n, &ids, &k));
  CHECK_OK(gr_tokenizer_decode(t, ids, k, &back, &len));
  CHECK_MSG(back && len == n && memcmp(back, text, n) == 0, "%s: decode(encode(x)) != x", what);
  int64_t bytes = 0;
  for (int64_t i = 0; ids && i < k; i++) bytes += t->piece_len[ids[i]];
  CHECK_MSG(bytes == (int64_t)n, "%s: piece lengths sum to %lld, not %zu", what, (long long)bytes, n);
  gr_free(ids);
  gr_free(back);
}

static gr_tokenizer *json_copy(const gr_tokenizer *t) {
  char *js = NULL;
  gr_tokenizer *u = NULL;
  CHECK_OK(gr_tokenizer_to_json(t, &js));
  if (js) CHECK_OK(gr_tokenizer_from_json(js, strlen(js), &u));
  gr_free(js);
  return u;
}

static void test_byte_and_char(void) {
  gr_tokenizer *b = NULL, *c = NULL;
  CHECK_OK(gr_tokenizer_byte(&b));
  CHECK(b && b->vocab == 256 + GR_TOK_SPECIALS && b->eos == 256 && b->mask[7] == 266);
  char all[256];
  for (int i = 0; i < 256; i++) all[i] = (char)i;
  roundtrip(b, all, 256, "byte");
  /* char vocab from text with multi-byte UTF-8 and invalid bytes */
  const char text[] = "In the beginning \xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 bad:\xff\xc3 end\n";
  size_t n = sizeof text - 1;
  CHECK_OK(gr_tokenizer_char_build(text, n, &c));
  roundtrip(c, text, n, "char");
  int32_t *ids = NULL;
  int64_t k = 0;
  CHECK_OK(gr_tokenizer_encode(c, "\xe2\x82\xac", 3, &ids, &k));
  CHECK(k == 1 && ids && c->chars[ids[0]] == 0x20AC);
  gr_free(ids);
  CHECK_FAILS(gr_tokenizer_encode(c, "Zebra", 5, &ids, &k) == GR_OK, GR_EARG); /* 'Z' not in the vocab */
  CHECK(strstr(gr_last_error(), "U+005A") != NULL);
  gr_tokenizer *c2 = NULL;
  CHECK_FAILS(gr_tokenizer_char_build("", 0, &c2) == GR_OK, GR_EARG);
  c2 = json_copy(c);
  CHECK(c2 && c2->n_base == c->n_base && !memcmp(c2->chars, c->chars, (size_t)c->n_base * 4));
  if (c2) roundtrip(c2, text, n, "char from json");
  const int32_t specials[] = {b->sep, 'a', b->mask[1], b->eom};
  char *out = NULL;
  size_t len;
  CHECK_OK(gr_tokenizer_decode(b, specials, 4, &out, &len));
  CHECK(out && !strcmp(out, "<sep>a<mask_2><eom>"));
  gr_free(out);
  const int32_t bad[] = {5, b->vocab};
  CHECK_FAILS(gr_tokenizer_decode(b, bad, 2, &out, &len) == GR_OK, GR_EARG);
  const char *garbled[] = {"{", "{\"type\":\"char\"}", "{\"type\":\"zip\",\"specials\":[]}",
                           "{\"type\":\"bpe\",\"specials\":[\"<|endoftext|>\",\"<sep>\",\"<eom>\",\"<mask_1>\",\"<mask_2>\","
                           "\"<mask_3>\",\"<mask_4>\",\"<mask_5>\",\"<mask_6>\",\"<mask_7>\",\"<mask_8>\"],\"merges\":[[300,1]]}"};
  gr_tokenizer *junk = NULL;
  for (int i = 0; i < 4; i++) CHECK_FAILS(gr_tokenizer_from_json(garbled[i], strlen(garbled[i]), &junk) == GR_OK, GR_EFORMAT);
  gr_tokenizer_free(json_copy(b));
  gr_tokenizer_free(b);
  gr_tokenizer_free(c);
  gr_tokenizer_free(c2);
}

static void test_bpe(void) {
  ref_file *f = ref_open("bpe");
  if (!f) return test_fail(__FILE__, __LINE__, "bpe reference missing");
  const ref_array *text = ref_get(f, "text"), *merges = ref_get(f, "merges"), *probe = ref_get(f, "probe"),
                  *enc = ref_get(f, "encoded");
  char *buf = malloc((size_t)text->numel), *pb = malloc((size_t)probe->numel);
  for (int64_t i = 0; i < text->numel; i++) buf[i] = (char)(int)text->data[i];
  for (int64_t i = 0; i < probe->numel; i++) pb[i] = (char)(int)probe->data[i];
  gr_tokenizer *t = NULL;
  CHECK_OK(gr_tokenizer_bpe_train(buf, (size_t)text->numel, 40, &t));
  int64_t nm = merges->shape[0];
  CHECK_MSG(t && t->n_base - 256 == nm, "bpe learned %d merges, reference %lld", t ? t->n_base - 256 : -1, (long long)nm);
  for (int64_t i = 0; t && i < nm && i < t->n_base - 256; i++)
    CHECK_MSG(t->merges[i][0] == (int)merges->data[2 * i] && t->merges[i][1] == (int)merges->data[2 * i + 1],
              "merge %lld: (%d,%d) vs reference (%d,%d)", (long long)i, t->merges[i][0], t->merges[i][1],
              (int)merges->data[2 * i], (int)merges->data[2 * i + 1]);
  int32_t *ids = NULL;
  int64_t k = 0;
  if (t) CHECK_OK(gr_tokenizer_encode(t, pb, (size_t)probe->numel, &ids, &k));
  CHECK_MSG(k == enc->numel, "bpe encoded %lld tokens, reference %lld", (long long)k, (long long)enc->numel);
  for (int64_t i = 0; ids && i < k && i < enc->numel; i++) CHECK(ids[i] == (int32_t)enc->data[i]);
  gr_free(ids);
  if (t) {
    roundtrip(t, buf, (size_t)text->numel, "bpe");
    gr_tokenizer *u = json_copy(t);
    if (u) roundtrip(u, pb, (size_t)probe->numel, "bpe from json");
    CHECK(u && u->n_base == t->n_base);
    gr_tokenizer_free(u);
  }
  gr_tokenizer *named = NULL;
  CHECK_FAILS(gr_tokenizer_from_name("bpe:x", buf, 10, &named) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_tokenizer_from_name("word", buf, 10, &named) == GR_OK, GR_EARG);
  gr_tokenizer_free(t);
  free(buf);
  free(pb);
  ref_close(f);
}

static void test_objective_rows(void) {
  gr_tokenizer *t = NULL;
  CHECK_OK(gr_tokenizer_byte(&t));
  ref_file *f = ref_open("lm_window");
  if (!f || !t) return test_fail(__FILE__, __LINE__, "lm_window reference missing");
  const ref_array *st = ref_get(f, "stream"), *off = ref_get(f, "offsets"), *pre = ref_get(f, "prefix"),
                  *ids = ref_get(f, "ids"), *tg = ref_get(f, "targets");
  gr_token_stream s = {malloc((size_t)st->numel * 4), st->numel, st->numel};
  for (int64_t i = 0; i < st->numel; i++) s.ids[i] = (int32_t)st->data[i];
  int64_t T = ids->shape[1];
  int32_t x[64], y[64];
  for (int64_t c = 0; c < off->numel; c++) {
    CHECK_OK(gr_lm_window_row(&s, (int64_t)off->data[c], T, (int64_t)pre->data[c], x, y));
    for (int64_t i = 0; i < T; i++)
      CHECK_MSG(x[i] == (int32_t)ids->data[c * T + i] && y[i] == (int32_t)tg->data[c * T + i],
                "window case %lld position %lld", (long long)c, (long long)i);
  }
  CHECK_FAILS(gr_lm_window_row(&s, st->numel - T, T, 0, x, y) == GR_OK, GR_EARG);
  ref_close(f);
  for (int c = 0; c < 5; c++) {
    char name[32];
    snprintf(name, sizeof name, "lm_infill_%d", c);
    if (!(f = ref_open(name))) break;
    const ref_array *src = ref_get(f, "src"), *sa = ref_get(f, "starts"), *la = ref_get(f, "lens");
    const ref_array *wi = ref_get(f, "ids"), *wt = ref_get(f, "targets");
    int32_t sb[64];
    int64_t starts[8], lens[8], Ti = wi->numel;
    for (int64_t i = 0; i < src->numel; i++) sb[i] = (int32_t)src->data[i];
    for (int64_t i = 0; i < sa->numel; i++) starts[i] = (int64_t)sa->data[i], lens[i] = (int64_t)la->data[i];
    CHECK_OK(gr_lm_infill_row(t, sb, src->numel, starts, lens, (int)sa->numel, Ti, x, y));
    for (int64_t i = 0; i < Ti; i++)
      CHECK_MSG(x[i] == (int32_t)wi->data[i] && y[i] == (int32_t)wt->data[i], "%s position %lld: (%d,%d) vs (%d,%d)",
                name, (long long)i, x[i], y[i], (int)wi->data[i], (int)wt->data[i]);
    if (sa->numel > 1) { /* overlapping spans are refused */
      int64_t bad_starts[8];
      memcpy(bad_starts, starts, sizeof starts);
      bad_starts[1] = starts[0];
      CHECK_FAILS(gr_lm_infill_row(t, sb, src->numel, bad_starts, lens, (int)sa->numel, Ti, x, y) == GR_OK, GR_EARG);
    }
    ref_close(f);
  }
  free(s.ids);
  gr_tokenizer_free(t);
}

/* Planned spans are sorted, disjoint, non-adjacent, inside [0,L); putting
 * the targets back at the sentinels of the formatted sequence gives the
 * source again. */
static void test_span_plans(void) {
  gr_tokenizer *t = NULL;
  CHECK_OK(gr_tokenizer_byte(&t));
  gr_rng r;
  gr_rng_seed(&r, 3);
  gr_infill_cfg cfg = gr_infill_default();
  int bad = 0;
  for (int trial = 0; trial < 300 && t; trial++) {
    int64_t L = 20 + (int64_t)gr_rng_below(&r, 200), starts[8], lens[8], n;
    int32_t src[256], seq[300], back[256];
    for (int64_t i = 0; i < L; i++) src[i] = (int32_t)gr_rng_below(&r, 256);
    int k;
    if (gr_lm_plan_spans(&r, L, &cfg, starts, lens, &k) || gr_lm_format_infill(t, src, L, starts, lens, k, seq, 300, &n)) {
      bad++;
      continue;
    }
    for (int i = 0; i < k; i++) bad += lens[i] < 1 || (i && starts[i] <= starts[i - 1] + lens[i - 1]) || starts[i] + lens[i] > L;
    bad += n != L + 3 * k + 2;
    /* reinsert: walk the corrupted part, replacing sentinel i by span i from the target part */
    int64_t sep = 0, w = 0;
    while (sep < n && seq[sep] != t->sep) sep++;
    for (int64_t i = 0; i < sep - 1; i++) {
      if (seq[i] < 256) { back[w++] = seq[i]; continue; }
      int m = seq[i] - t->mask[0];
      int64_t j = sep + 1;
      while (j < n && seq[j] != t->mask[m]) j++;
      for (j++; j < n && seq[j] != t->eom; j++) back[w++] = seq[j];
    }
    bad += w != L || memcmp(back, src, (size_t)L * 4) != 0;
  }
  CHECK_MSG(bad == 0, "%d span plans broke a property", bad);
  gr_tokenizer_free(t);
}

/* fim rows: with mix_infill 1 every row is prefix <mask_1> suffix <eos>
 * <sep> <mask_1> middle <eom> of one document window (middle >= 1 token, the
 * whole <= T + 1 tokens), targets the next token, padding eos with target -1;
 * with mix_infill 0 every row is a causal window. */
static void test_fim_rows(const gr_tokenizer *t, const gr_token_stream *s) {
  gr_infill_cfg cfg = gr_infill_default();
  enum { B = 64, T = 48 };
  int32_t ids[B * T], tg[B * T];
  int64_t p;
  gr_rng r;
  gr_rng_seed(&r, 5);
  cfg.mix_infill = 1;
  CHECK_OK(gr_lm_make_batch(GR_LM_FIM, s, t, &cfg, B, T, &r, ids, tg, &p));
  int bad = 0, middle_total = 0;
  for (int b = 0; b < B; b++) {
    const int32_t *x = ids + b * T, *y = tg + b * T;
    int32_t seq[T + 1];
    int n = 1; /* the formatted row: targets are -1 exactly from position n-1 on */
    while (n <= T && y[n - 1] >= 0) n++;
    for (int i = 0; i < n; i++) seq[i] = i < T ? x[i] : y[T - 1];
    int m1 = -1, e = -1, m2 = -1, em = -1;
    for (int i = 0; i < n; i++) {
      if (seq[i] == t->mask[0] && m1 >= 0) m2 = i;
      if (seq[i] == t->mask[0] && m1 < 0) m1 = i;
      if (seq[i] == t->eos && e < 0 && m1 >= 0) e = i;
      if (seq[i] == t->eom) em = i;
    }
    bool ok = m1 >= 0 && e > m1 && e + 1 < n && seq[e + 1] == t->sep && m2 == e + 2 && em == n - 1 && em - m2 >= 2;
    for (int i = 0; i < T; i++) ok &= y[i] == (i + 1 < n ? seq[i + 1] : -1) && (i < n || x[i] == t->eos);
    int orig[T]; /* prefix middle suffix is a contiguous run of the stream (text ids only) */
    int L = 0;
    for (int i = 0; ok && i < m1; i++) orig[L++] = seq[i];
    for (int i = m2 + 1; ok && i < em; i++) orig[L++] = seq[i];
    for (int i = m1 + 1; ok && i < e; i++) orig[L++] = seq[i];
    bool found = false;
    for (int64_t o = 0; ok && !found && o + L <= s->n; o++) found = !memcmp(s->ids + o, orig, (size_t)L * sizeof(int32_t));
    for (int i = 0; ok && i < L; i++) ok &= orig[i] != t->eos;
    middle_total += ok ? em - m2 - 1 : 0;
    bad += !(ok && found && L + 5 == n);
  }
  CHECK_MSG(bad == 0, "fim: %d of %d rows not in the FIM format", bad, B);
  CHECK(middle_total > B * 4); /* uniform cut points: middles average about L/3 */
  cfg.mix_infill = 0;
  CHECK_OK(gr_lm_make_batch(GR_LM_FIM, s, t, &cfg, B, T, &r, ids, tg, &p));
  bad = 0;
  for (int i = 0; i < B * T; i++) bad += ids[i] == t->mask[0] || ids[i] == t->sep || (i % T && tg[i - 1] != ids[i]);
  CHECK_MSG(bad == 0, "fim with rate 0: %d tokens not a causal window", bad);
  CHECK_FAILS(gr_lm_make_batch(GR_LM_FIM, s, t, &(gr_infill_cfg){.rate = 0.15f, .mean_len = 8, .mix_infill = 1}, 2, 12, &r, ids, tg, &p) == GR_OK,
              GR_EARG); /* block too small */
}

/* fim-spm: gr_lm_format_spm's layout written out by hand, its errors, and
 * batch rows: <mask_1> suffix <sep> prefix middle <eom> of one document. */
static void test_spm_rows(const gr_tokenizer *t, const gr_token_stream *s) {
  int32_t src[10], seq[16];
  int64_t n;
  for (int i = 0; i < 10; i++) src[i] = 'a' + i;
  CHECK_OK(gr_lm_format_spm(t, src, 10, 3, 4, seq, 16, &n));
  const int32_t want[13] = {t->mask[0], 'h', 'i', 'j', t->sep, 'a', 'b', 'c', 'd', 'e', 'f', 'g', t->eom};
  CHECK(n == 13 && !memcmp(seq, want, sizeof want));
  CHECK_FAILS(gr_lm_format_spm(t, src, 10, 3, 0, seq, 16, &n) == GR_OK, GR_EARG);  /* empty middle */
  CHECK_FAILS(gr_lm_format_spm(t, src, 10, 8, 3, seq, 16, &n) == GR_OK, GR_EARG);  /* past the end */
  CHECK_FAILS(gr_lm_format_spm(t, src, 10, 3, 4, seq, 12, &n) == GR_OK, GR_EARG);  /* capacity */
  enum { B = 32, T = 48 };
  int32_t ids[B * T], tg[B * T];
  int64_t p;
  gr_rng r;
  gr_rng_seed(&r, 6);
  gr_infill_cfg cfg = gr_infill_default();
  cfg.mix_infill = 1;
  CHECK_OK(gr_lm_make_batch(GR_LM_FIM_SPM, s, t, &cfg, B, T, &r, ids, tg, &p));
  int bad = 0;
  for (int b = 0; b < B; b++) {
    const int32_t *x = ids + b * T, *y = tg + b * T;
    int n1 = 1;
    while (n1 <= T && y[n1 - 1] >= 0) n1++;
    int32_t row[T + 1], orig[T];
    for (int i = 0; i < n1; i++) row[i] = i < T ? x[i] : y[T - 1];
    int sep = -1, L = 0;
    for (int i = 0; i < n1; i++) sep = row[i] == t->sep && sep < 0 ? i : sep;
    bool ok = row[0] == t->mask[0] && sep > 0 && row[n1 - 1] == t->eom;
    for (int i = sep + 1; ok && i < n1 - 1; i++) orig[L++] = row[i]; /* prefix middle */
    for (int i = 1; ok && i < sep; i++) orig[L++] = row[i];          /* suffix */
    for (int i = 0; ok && i < L; i++) ok &= orig[i] < 256;
    bool found = false;
    for (int64_t o = 0; ok && !found && o + L <= s->n; o++) found = !memcmp(s->ids + o, orig, (size_t)L * sizeof(int32_t));
    bad += !(ok && found && L + 3 == n1);
  }
  CHECK_MSG(bad == 0, "fim-spm: %d of %d rows not in the SPM format", bad, B);
}

static void test_batches(void) {
  gr_tokenizer *t = NULL;
  CHECK_OK(gr_tokenizer_byte(&t));
  gr_token_stream s = {malloc(2000 * 4), 2000, 2000};
  for (int i = 0; i < 2000; i++) s.ids[i] = i % 97 == 96 ? 256 : 'a' + i % 26;
  gr_rng r;
  gr_rng_seed(&r, 1);
  gr_infill_cfg cfg = gr_infill_default();
  int32_t ids[4 * 64], tg[4 * 64];
  int64_t p;
  for (int obj = 0; obj < GR_LM_OBJECTIVES; obj++) {
    CHECK_OK(gr_lm_make_batch((gr_lm_objective)obj, &s, t, &cfg, 4, 64, &r, ids, tg, &p));
    int bad = 0;
    for (int i = 0; i < 4 * 64; i++) bad += ids[i] < 0 || ids[i] >= t->vocab || tg[i] < -1 || tg[i] >= t->vocab;
    for (int i = 0; obj == GR_LM_PREFIX && i < 4 * 64; i++) bad += (i % 64 < p - 1) != (tg[i] == -1);
    CHECK_MSG(bad == 0, "objective %s: %d bad ids/targets", gr_lm_objective_name((gr_lm_objective)obj), bad);
    CHECK(obj == GR_LM_PREFIX ? p >= 1 && p < 64 : p == 0);
  }
  test_fim_rows(t, &s);
  test_spm_rows(t, &s);
  s.n = 50;
  CHECK_FAILS(gr_lm_make_batch(GR_LM_CAUSAL, &s, t, &cfg, 2, 64, &r, ids, tg, &p) == GR_OK, GR_EARG);
  s.n = 2000;
  CHECK_FAILS(gr_lm_make_batch(GR_LM_INFILL, &s, t, &cfg, 2, 30, &r, ids, tg, &p) == GR_OK, GR_EARG); /* block too small */
  gr_lm_objective o;
  CHECK_FAILS(gr_lm_objective_parse("bert", &o) == GR_OK, GR_EARG);
  free(s.ids);
  gr_tokenizer_free(t);
}

static void test_specs_and_splits(void) {
  gr_text_spec s;
  CHECK_OK(gr_text_spec_parse("ccode:dir=/x,max=4M,val=10%,test=0.2,splitseed=3,split=val", &s));
  CHECK(!strcmp(s.source, "ccode") && !strcmp(s.path, "/x") && s.max_bytes == 4 << 20 && fabs(s.val_frac - 0.1) < 1e-12 &&
        fabs(s.test_frac - 0.2) < 1e-12 && s.split_seed == 3 && s.split == GR_SPLIT_VAL);
  const char *bad[] = {"", "imdb", "kjv:dir=/x", "kjv:split=dev", "ccode:max=-1", "wordnet:pos=verbs", "kjv:val=60%,test=50%",
                       "ccode:path=/x", "kjv:split"};
  for (int i = 0; i < 9; i++) CHECK_FAILS(gr_text_spec_parse(bad[i], &s) == GR_OK, GR_EARG);
  /* synthetic documents: every one in one split, byte fractions reached */
  enum { N = 500 };
  char nb[N][16];
  const char *names[N];
  int64_t sizes[N], tot[3] = {0}, all = 0;
  gr_text_split sp[N], sp2[N];
  for (int i = 0; i < N; i++) snprintf(nb[i], 16, "doc%d", i), names[i] = nb[i], sizes[i] = 100 + (i * 37) % 900, all += sizes[i];
  CHECK_OK(gr_text_assign_splits(names, sizes, N, 0.1, 0.2, 0, sp));
  CHECK_OK(gr_text_assign_splits(names, sizes, N, 0.1, 0.2, 1, sp2));
  int differ = 0;
  for (int i = 0; i < N; i++) tot[sp[i]] += sizes[i], differ += sp[i] != sp2[i];
  CHECK(tot[GR_SPLIT_TEST] >= 0.2 * all && tot[GR_SPLIT_TEST] < 0.2 * all + 1000);
  CHECK(tot[GR_SPLIT_VAL] >= 0.1 * all && tot[GR_SPLIT_VAL] < 0.1 * all + 1000);
  CHECK(differ > 0); /* the split seed matters */
}

/* Loads the three splits of spec; document names must be disjoint. */
static void check_corpus_splits(const char *spec, int64_t expect_docs) {
  gr_text_spec s;
  gr_corpus *c[3] = {0};
  CHECK_OK(gr_text_spec_parse(spec, &s));
  for (int k = 0; k < 3; k++) CHECK_OK(gr_text_load(&s, k, &c[k]));
  if (!c[0] || !c[1] || !c[2]) goto done;
  int64_t total = 0, overlap = 0;
  for (int a = 0; a < 3; a++) {
    total += c[a]->n_docs;
    CHECK_MSG(c[a]->n_docs > 0 && c[a]->len > 0, "%s split %d is empty", spec, a);
    for (int b = a + 1; b < 3; b++)
      for (int64_t i = 0; i < c[a]->n_docs; i++)
        for (int64_t j = 0; j < c[b]->n_docs; j++) overlap += !strcmp(c[a]->docs[i].name, c[b]->docs[j].name);
  }
  CHECK_MSG(overlap == 0, "%s: %lld documents in two splits", spec, (long long)overlap);
  if (expect_docs > 0) CHECK_MSG(total == expect_docs, "%s: %lld documents, expected %lld", spec, (long long)total, (long long)expect_docs);
  printf("%s: train %lld docs / %lld bytes, val %lld / %lld, test %lld / %lld\n", spec, (long long)c[0]->n_docs,
         (long long)c[0]->len, (long long)c[1]->n_docs, (long long)c[1]->len, (long long)c[2]->n_docs, (long long)c[2]->len);
done:
  for (int k = 0; k < 3; k++) gr_corpus_free(c[k]);
}

static void test_corpora(void) {
  if (access("/usr/bin/bible", X_OK) == 0) {
    check_corpus_splits("kjv", 66);
    gr_text_spec s;
    gr_corpus *c = NULL;
    CHECK_OK(gr_text_spec_parse("kjv:max=100K", &s));
    CHECK_OK(gr_text_load(&s, -1, &c));
    CHECK(c && c->len <= 100 << 10 && c->n_docs >= 1 && c->text[c->len - 1] == '\n');
    gr_corpus_free(c);
  } else printf("skip: kjv corpus missing (install %s)\n", GR_KJV_PACKAGES);
  if (access(GR_WORDNET_DIR "/data.adv", R_OK) == 0) check_corpus_splits("wordnet:pos=adv,per_doc=50", 0);
  else printf("skip: wordnet corpus missing (install wordnet-base)\n");
  if (access(GR_CCODE_DIR "/stdio.h", R_OK) == 0) check_corpus_splits("ccode:max=300K", 0);
  else printf("skip: C headers missing (install libc6-dev)\n");
  /* empty corpora are clear errors */
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/text_empty", test_tmpdir());
  mkdir(dir, 0755);
  snprintf(path, sizeof path, "%s/kjv.txt", dir);
  FILE *fp = fopen(path, "w");
  if (fp) fclose(fp);
  gr_text_spec s;
  gr_corpus *c = NULL;
  char spec[700];
  snprintf(spec, sizeof spec, "ccode:dir=%s", dir);
  CHECK_OK(gr_text_spec_parse(spec, &s));
  CHECK_FAILS(gr_text_load(&s, -1, &c) == GR_OK, GR_EARG);
  CHECK(strstr(gr_last_error(), "empty corpus") != NULL);
  snprintf(spec, sizeof spec, "kjv:path=%s", path);
  CHECK_OK(gr_text_spec_parse(spec, &s));
  CHECK_FAILS(gr_text_load(&s, -1, &c) == GR_OK, GR_EARG);
  snprintf(spec, sizeof spec, "kjv:path=%s/missing.txt", dir);
  CHECK_OK(gr_text_spec_parse(spec, &s));
  CHECK_FAILS(gr_text_load(&s, -1, &c) == GR_OK, GR_ENOTFOUND);
  fp = fopen(path, "w");
  if (fp) fputs("Ge1:1 In the beginning.\nnot a verse\n", fp), fclose(fp);
  snprintf(spec, sizeof spec, "kjv:path=%s", path);
  CHECK_OK(gr_text_spec_parse(spec, &s));
  CHECK_FAILS(gr_text_load(&s, -1, &c) == GR_OK, GR_EFORMAT);
}

int main(void) {
  test_byte_and_char();
  test_bpe();
  test_objective_rows();
  test_span_plans();
  test_batches();
  test_specs_and_splits();
  test_corpora();
  return test_summary();
}
