/* data/text_corpus.c — text corpora of graft/text.h: building one document
 * at a time, text data specs, the by-document train/val/test split and the
 * byte cap, and turning a corpus into one token stream. The per-source
 * readers are in text_readers.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/text_internal.h"
#include "graft/rng.h"
#include "graft/tensor.h"

/* ---- building ---------------------------------------------------------------- */
gr_status corpus_begin(corpus_builder *b, const char *source) {
  memset(b, 0, sizeof *b);
  b->c = gr_calloc(1, sizeof *b->c);
  if (!b->c) return gr_error(GR_ENOMEM, "corpus: out of memory");
  snprintf(b->c->source, sizeof b->c->source, "%s", source);
  return GR_OK;
}

gr_status corpus_start_doc(corpus_builder *b, const char *name) {
  gr_corpus *c = b->c;
  if (c->n_docs == b->docs_cap) {
    int64_t cap = b->docs_cap ? 2 * b->docs_cap : 64;
    gr_text_doc *d = gr_malloc((size_t)cap * sizeof *d);
    if (!d) return gr_error(GR_ENOMEM, "corpus: out of memory (%lld documents)", (long long)cap);
    if (c->n_docs) memcpy(d, c->docs, (size_t)c->n_docs * sizeof *d);
    gr_free(c->docs);
    c->docs = d, b->docs_cap = cap;
  }
  gr_text_doc *d = &c->docs[c->n_docs++];
  snprintf(d->name, sizeof d->name, "%s", name);
  d->off = c->len, d->len = 0;
  return GR_OK;
}

gr_status corpus_append(corpus_builder *b, const char *text, int64_t len) {
  gr_corpus *c = b->c;
  if (c->n_docs == 0) return gr_error(GR_ESTATE, "corpus: text before the first document");
  if (c->len + len + 1 > b->text_cap) {
    int64_t cap = b->text_cap ? b->text_cap : 1 << 16;
    while (cap < c->len + len + 1) cap *= 2;
    char *t = gr_malloc((size_t)cap);
    if (!t) return gr_error(GR_ENOMEM, "corpus: out of memory (%lld bytes of text)", (long long)cap);
    if (c->len) memcpy(t, c->text, (size_t)c->len);
    gr_free(c->text);
    c->text = t, b->text_cap = cap;
  }
  memcpy(c->text + c->len, text, (size_t)len);
  c->len += len;
  c->text[c->len] = 0;
  c->docs[c->n_docs - 1].len += len;
  return GR_OK;
}

gr_status corpus_add(corpus_builder *b, const char *name, const char *text, int64_t len) {
  gr_status st = corpus_start_doc(b, name);
  return st ? st : corpus_append(b, text, len);
}

gr_corpus *corpus_finish(corpus_builder *b) {
  gr_corpus *c = b->c;
  memset(b, 0, sizeof *b);
  return c;
}

void corpus_abort(corpus_builder *b) { gr_corpus_free(corpus_finish(b)); }

void gr_corpus_free(gr_corpus *c) {
  if (!c) return;
  gr_free(c->text);
  gr_free(c->docs);
  gr_free(c);
}

/* ---- specs --------------------------------------------------------------------- */
static gr_status parse_fraction(const char *v, double *out, const char *key) {
  char *end;
  double x = strtod(v, &end);
  if (end != v && *end == '%' && !end[1]) x /= 100;
  else if (end == v || *end) x = -1;
  if (!(x >= 0 && x < 1)) return gr_error(GR_EARG, "text spec: %s=%s must be a fraction in [0,1) or a percentage", key, v);
  *out = x;
  return GR_OK;
}

static gr_status parse_bytes(const char *v, int64_t *out) {
  char *end;
  long long x = strtoll(v, &end, 10);
  int64_t mul = 1;
  if (*end == 'K' || *end == 'k') mul = 1 << 10, end++;
  else if (*end == 'M' || *end == 'm') mul = 1 << 20, end++;
  if (end == v || *end || x <= 0 || x > ((int64_t)1 << 40) / mul)
    return gr_error(GR_EARG, "text spec: max=%s must be a positive byte count (suffix K or M)", v);
  *out = x * mul;
  return GR_OK;
}

static gr_status spec_option(gr_text_spec *s, const char *key, const char *v) {
  if (!strcmp(key, "split")) {
    if (!strcmp(v, "train")) s->split = GR_SPLIT_TRAIN;
    else if (!strcmp(v, "val")) s->split = GR_SPLIT_VAL;
    else if (!strcmp(v, "test")) s->split = GR_SPLIT_TEST;
    else return gr_error(GR_EARG, "text spec: split=%s (train|val|test)", v);
  } else if (!strcmp(key, "val")) return parse_fraction(v, &s->val_frac, key);
  else if (!strcmp(key, "test")) return parse_fraction(v, &s->test_frac, key);
  else if (!strcmp(key, "max")) return parse_bytes(v, &s->max_bytes);
  else if (!strcmp(key, "splitseed")) {
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end) return gr_error(GR_EARG, "text spec: splitseed=%s must be an integer", v);
    s->split_seed = x;
  } else if (!strcmp(key, !strcmp(s->source, "kjv") ? "path" : "dir")) {
    if (strlen(v) >= sizeof s->path) return gr_error(GR_EARG, "text spec: %s is too long", key);
    snprintf(s->path, sizeof s->path, "%s", v);
  } else if (!strcmp(key, "pos") && !strcmp(s->source, "wordnet")) {
    if (strcmp(v, "noun") && strcmp(v, "verb") && strcmp(v, "adj") && strcmp(v, "adv") && strcmp(v, "all"))
      return gr_error(GR_EARG, "text spec: pos=%s (noun|verb|adj|adv|all)", v);
    snprintf(s->pos, sizeof s->pos, "%s", v);
  } else if (!strcmp(key, "per_doc") && !strcmp(s->source, "wordnet")) {
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < 1 || x > 1000000) return gr_error(GR_EARG, "text spec: per_doc=%s must be in 1..1000000", v);
    s->per_doc = (int)x;
  } else
    return gr_error(GR_EARG, "text spec: unknown option '%s' for %s (split, val, test, splitseed, max, %s)", key,
                    s->source, !strcmp(s->source, "kjv") ? "path" : !strcmp(s->source, "ccode") ? "dir" : "dir, pos, per_doc");
  return GR_OK;
}

gr_status gr_text_spec_parse(const char *spec, gr_text_spec *out) {
  if (!spec || !out) return gr_error(GR_EARG, "text spec: NULL argument");
  *out = (gr_text_spec){.val_frac = 0.05, .test_frac = 0.05, .per_doc = 100};
  snprintf(out->pos, sizeof out->pos, "all");
  const char *colon = strchr(spec, ':');
  size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
  if (n == 0 || n >= sizeof out->source) return gr_error(GR_EARG, "text spec '%s': no source (kjv|ccode|wordnet)", spec);
  memcpy(out->source, spec, n);
  out->source[n] = 0;
  if (strcmp(out->source, "kjv") && strcmp(out->source, "ccode") && strcmp(out->source, "wordnet"))
    return gr_error(GR_EARG, "text spec '%s': unknown source '%s' (kjv|ccode|wordnet)", spec, out->source);
  char buf[1024];
  if (colon && strlen(colon + 1) >= sizeof buf) return gr_error(GR_EARG, "text spec: too long");
  snprintf(buf, sizeof buf, "%s", colon ? colon + 1 : "");
  for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(item, '=');
    if (!eq) return gr_error(GR_EARG, "text spec '%s': option '%s' needs key=value", spec, item);
    *eq = 0;
    gr_status st = spec_option(out, item, eq + 1);
    if (st) return st;
  }
  if (out->val_frac + out->test_frac >= 1) return gr_error(GR_EARG, "text spec '%s': val + test must be below 100%%", spec);
  return GR_OK;
}

/* ---- splits ---------------------------------------------------------------------- */
static uint64_t name_hash(const char *s, uint64_t seed) {
  uint64_t h = gr_fnv1a(GR_FNV1A_OFFSET ^ (seed * 0x9E3779B97F4A7C15ull), s, strlen(s));
  h ^= h >> 31; /* finalizer: spread FNV's low-entropy high bits */
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 29);
}

typedef struct hashed { uint64_t h; int64_t i; } hashed;
static int cmp_hashed(const void *a, const void *b) {
  const hashed *x = a, *y = b;
  return x->h != y->h ? (x->h > y->h) - (x->h < y->h) : (x->i > y->i) - (x->i < y->i);
}

/* Document indices ordered by hash(name, seed). */
static gr_status hash_order(const char *const *names, int64_t n, uint64_t seed, int64_t *order) {
  hashed *hs = gr_malloc((size_t)(n ? n : 1) * sizeof *hs);
  if (!hs) return gr_error(GR_ENOMEM, "text split: out of memory");
  for (int64_t i = 0; i < n; i++) hs[i] = (hashed){name_hash(names[i], seed), i};
  qsort(hs, (size_t)n, sizeof *hs, cmp_hashed);
  for (int64_t i = 0; i < n; i++) order[i] = hs[i].i;
  gr_free(hs);
  return GR_OK;
}

static gr_status assign_ordered(const int64_t *order, const int64_t *sizes, int64_t n, double val_frac,
                                double test_frac, gr_text_split *out) {
  int64_t total = 0, acc_test = 0, acc_val = 0;
  for (int64_t i = 0; i < n; i++) total += sizes[i];
  for (int64_t k = 0; k < n; k++) {
    int64_t i = order[k];
    if (test_frac > 0 && acc_test < test_frac * (double)total) out[i] = GR_SPLIT_TEST, acc_test += sizes[i];
    else if (val_frac > 0 && acc_val < val_frac * (double)total) out[i] = GR_SPLIT_VAL, acc_val += sizes[i];
    else out[i] = GR_SPLIT_TRAIN;
  }
  return GR_OK;
}

gr_status gr_text_assign_splits(const char *const *names, const int64_t *sizes, int64_t n, double val_frac,
                                double test_frac, uint64_t seed, gr_text_split *out) {
  if (!names || !sizes || !out || n < 0) return gr_error(GR_EARG, "text split: NULL argument");
  if (!(val_frac >= 0 && test_frac >= 0 && val_frac + test_frac < 1))
    return gr_error(GR_EARG, "text split: val %g + test %g must be in [0,1)", val_frac, test_frac);
  int64_t *order = gr_malloc((size_t)(n ? n : 1) * sizeof(int64_t));
  gr_status st = order ? hash_order(names, n, seed, order) : gr_error(GR_ENOMEM, "text split: out of memory");
  if (!st) st = assign_ordered(order, sizes, n, val_frac, test_frac, out);
  gr_free(order);
  return st;
}

/* The documents of the wanted split, in hash order, until max bytes (at
 * least one). *k = 0 when the split is empty. */
static gr_status select_docs(const char *const *names, const int64_t *sizes, int64_t n, const gr_text_spec *s,
                             gr_text_split want, int64_t *which, int64_t *k) {
  int64_t *order = gr_malloc((size_t)(n ? n : 1) * sizeof(int64_t));
  gr_text_split *sp = gr_malloc((size_t)(n ? n : 1) * sizeof *sp);
  gr_status st = order && sp ? hash_order(names, n, s->split_seed, order) : gr_error(GR_ENOMEM, "text: out of memory");
  if (!st) st = assign_ordered(order, sizes, n, s->val_frac, s->test_frac, sp);
  int64_t bytes = 0;
  *k = 0;
  for (int64_t j = 0; !st && j < n; j++) {
    int64_t i = order[j];
    if (sp[i] != want || sizes[i] == 0) continue;
    if (s->max_bytes > 0 && *k > 0 && bytes + sizes[i] > s->max_bytes) continue;
    which[(*k)++] = i, bytes += sizes[i];
  }
  gr_free(order);
  gr_free(sp);
  return st;
}

static const char *split_name(int s) { return s == GR_SPLIT_TRAIN ? "train" : s == GR_SPLIT_VAL ? "val" : "test"; }

/* A new corpus holding docs which[0..k) of c. */
static gr_status corpus_subset(const gr_corpus *c, const int64_t *which, int64_t k, gr_corpus **out) {
  corpus_builder b;
  gr_status st = corpus_begin(&b, c->source);
  for (int64_t i = 0; !st && i < k; i++) {
    const gr_text_doc *d = &c->docs[which[i]];
    st = corpus_add(&b, d->name, c->text + d->off, d->len);
  }
  if (st) return corpus_abort(&b), st;
  *out = corpus_finish(&b);
  return GR_OK;
}

static gr_status load_in_memory(const gr_text_spec *s, gr_text_split split, gr_corpus **out) {
  gr_corpus *all = NULL;
  gr_status st = !strcmp(s->source, "kjv") ? text_read_kjv(s->path, &all)
                                           : text_read_wordnet(s->path[0] ? s->path : GR_WORDNET_DIR, s->pos, s->per_doc, &all);
  if (st) return st;
  const char **names = gr_malloc((size_t)all->n_docs * sizeof(char *));
  int64_t *sizes = gr_malloc((size_t)all->n_docs * sizeof(int64_t)), *which = gr_malloc((size_t)all->n_docs * sizeof(int64_t)), k = 0;
  st = names && sizes && which ? GR_OK : gr_error(GR_ENOMEM, "text: out of memory");
  for (int64_t i = 0; !st && i < all->n_docs; i++) names[i] = all->docs[i].name, sizes[i] = all->docs[i].len;
  if (!st) st = select_docs(names, sizes, all->n_docs, s, split, which, &k);
  if (!st && k == 0) st = gr_error(GR_EARG, "%s: empty corpus: the %s split holds no document", s->source, split_name(split));
  if (!st) st = corpus_subset(all, which, k, out);
  gr_free(names), gr_free(sizes), gr_free(which);
  gr_corpus_free(all);
  return st;
}

static gr_status load_ccode(const gr_text_spec *s, gr_text_split split, gr_corpus **out) {
  const char *dir = s->path[0] ? s->path : GR_CCODE_DIR;
  text_file_list l;
  gr_status st = text_list_ccode(dir, &l);
  if (st) return st;
  const char **names = gr_malloc((size_t)l.n * sizeof(char *));
  int64_t *sizes = gr_malloc((size_t)l.n * sizeof(int64_t)), *which = gr_malloc((size_t)l.n * sizeof(int64_t)), k = 0;
  st = names && sizes && which ? GR_OK : gr_error(GR_ENOMEM, "ccode: out of memory");
  for (int64_t i = 0; !st && i < l.n; i++) names[i] = l.files[i].name, sizes[i] = l.files[i].size;
  if (!st) st = select_docs(names, sizes, l.n, s, split, which, &k);
  if (!st && k == 0) st = gr_error(GR_EARG, "ccode: empty corpus: the %s split holds no file under %s", split_name(split), dir);
  if (!st) st = text_read_files(dir, &l, which, k, out);
  gr_free(names), gr_free(sizes), gr_free(which);
  text_file_list_free(&l);
  return st;
}

gr_status gr_text_load(const gr_text_spec *spec, int split, gr_corpus **out) {
  if (!spec || !out) return gr_error(GR_EARG, "text load: NULL argument");
  *out = NULL;
  gr_text_split sp = split >= 0 ? (gr_text_split)split : spec->split;
  if (sp > GR_SPLIT_TEST) return gr_error(GR_EARG, "text load: split %d", split);
  if (!strcmp(spec->source, "ccode")) return load_ccode(spec, sp, out);
  if (!strcmp(spec->source, "kjv") || !strcmp(spec->source, "wordnet")) return load_in_memory(spec, sp, out);
  return gr_error(GR_EARG, "text load: unknown source '%s'", spec->source);
}

/* ---- token streams ----------------------------------------------------------------- */
gr_status gr_corpus_tokenize(const gr_corpus *c, const gr_tokenizer *t, gr_token_stream *out) {
  if (!c || !t || !out) return gr_error(GR_EARG, "tokenize: NULL argument");
  memset(out, 0, sizeof *out);
  if (c->len == 0 || c->n_docs == 0) return gr_error(GR_EARG, "tokenize: empty corpus");
  out->ids = gr_malloc((size_t)(c->len + c->n_docs) * sizeof(int32_t)); /* tokens <= bytes, + eos each */
  if (!out->ids) return gr_error(GR_ENOMEM, "tokenize: out of memory");
  for (int64_t d = 0; d < c->n_docs; d++) {
    int32_t *ids;
    int64_t n;
    gr_status st = gr_tokenizer_encode(t, c->text + c->docs[d].off, (size_t)c->docs[d].len, &ids, &n);
    if (st) {
      char why[512];
      snprintf(why, sizeof why, "%s", gr_last_error());
      gr_token_stream_free(out);
      return gr_error(st, "%s document '%s': %s", c->source, c->docs[d].name, why);
    }
    memcpy(out->ids + out->n, ids, (size_t)n * sizeof(int32_t));
    gr_free(ids);
    out->n += n;
    out->ids[out->n++] = t->eos;
  }
  out->bytes = c->len;
  return GR_OK;
}

void gr_token_stream_free(gr_token_stream *s) {
  if (!s) return;
  gr_free(s->ids);
  memset(s, 0, sizeof *s);
}
