/* data/tokenizer_bpe.c — byte-level BPE for graft/text.h: training (greedy
 * most-frequent adjacent pair, never across a newline) and encoding (per
 * line, merge the lowest-rank pair present until none applies, which equals
 * applying the merges in rank order because a merge only uses earlier ids).
 * Training costs O(text bytes) per merge: it reads at most the first
 * GR_BPE_TRAIN_BYTES of the text it is given. */
#include <string.h>

#include "data/tokenizer_internal.h"
#include "graft/tensor.h"

#define GR_BPE_TRAIN_BYTES ((size_t)2 << 20)
#define GR_BPE_MAX_TRAIN_MERGES 8192
#define NEWLINE 10

/* ---- a pair -> value hash table (open addressing, linear probing) ---------- */
typedef struct pair_table {
  uint64_t *keys;   /* (a << 32 | b) + 1; 0 = empty */
  int64_t *vals;
  size_t cap, used;
} pair_table;

static gr_status table_init(pair_table *h, size_t cap) {
  h->cap = cap, h->used = 0;
  h->keys = gr_calloc(cap, sizeof(uint64_t));
  h->vals = gr_calloc(cap, sizeof(int64_t));
  return h->keys && h->vals ? GR_OK : gr_error(GR_ENOMEM, "bpe: out of memory");
}

static void table_free(pair_table *h) {
  gr_free(h->keys);
  gr_free(h->vals);
}

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1; }

static size_t table_slot(const pair_table *h, uint64_t key) {
  uint64_t x = key * 0x9E3779B97F4A7C15ull;
  size_t i = (size_t)(x >> 17) & (h->cap - 1);
  while (h->keys[i] && h->keys[i] != key) i = (i + 1) & (h->cap - 1);
  return i;
}

static int64_t *table_get(pair_table *h, uint64_t key, bool insert) {
  size_t i = table_slot(h, key);
  if (h->keys[i]) return &h->vals[i];
  if (!insert) return NULL;
  if (2 * (h->used + 1) > h->cap) { /* grow and re-insert */
    pair_table g;
    if (table_init(&g, h->cap * 2)) return table_free(&g), NULL;
    for (size_t j = 0; j < h->cap; j++)
      if (h->keys[j]) {
        size_t s = table_slot(&g, h->keys[j]);
        g.keys[s] = h->keys[j], g.vals[s] = h->vals[j], g.used++;
      }
    table_free(h);
    *h = g;
    i = table_slot(h, key);
  }
  h->keys[i] = key, h->vals[i] = 0, h->used++;
  return &h->vals[i];
}

/* ---- building ------------------------------------------------------------------- */
int32_t tok_bpe_piece_len(const gr_tokenizer *t, int32_t id) {
  return id < 256 ? 1 : tok_bpe_piece_len(t, t->merges[id - 256][0]) + tok_bpe_piece_len(t, t->merges[id - 256][1]);
}

gr_status tok_bpe_from_merges(const int32_t *flat, int32_t n, gr_tokenizer **out) {
  gr_tokenizer *t = gr_calloc(1, sizeof *t);
  if (!t) return gr_error(GR_ENOMEM, "bpe: out of memory");
  t->kind = GR_TOK_BPE;
  t->merges = gr_malloc((size_t)(n ? n : 1) * sizeof *t->merges);
  t->piece = gr_calloc((size_t)(256 + n), sizeof *t->piece);
  gr_status st = t->merges && t->piece ? GR_OK : gr_error(GR_ENOMEM, "bpe: out of memory");
  for (int32_t i = 0; !st && i < n; i++) {
    if (flat[2 * i] < 0 || flat[2 * i] >= 256 + i || flat[2 * i + 1] < 0 || flat[2 * i + 1] >= 256 + i)
      st = gr_error(GR_EFORMAT, "bpe: merge %d uses an id that is not made yet", i);
    else t->merges[i][0] = flat[2 * i], t->merges[i][1] = flat[2 * i + 1];
  }
  t->n_base = 256 + n; /* piece_len below reads merges of ids < n_base */
  if (!st) st = tok_finish(t, 256 + n);
  for (int32_t id = 0; !st && id < 256 + n; id++) {
    if (!(t->piece[id] = gr_malloc((size_t)t->piece_len[id]))) st = gr_error(GR_ENOMEM, "bpe: out of memory");
    else if (id < 256) t->piece[id][0] = (uint8_t)id;
    else {
      int32_t a = t->merges[id - 256][0], b = t->merges[id - 256][1];
      memcpy(t->piece[id], t->piece[a], (size_t)t->piece_len[a]);
      memcpy(t->piece[id] + t->piece_len[a], t->piece[b], (size_t)t->piece_len[b]);
    }
  }
  if (st) gr_tokenizer_free(t), t = NULL;
  *out = t;
  return st;
}

/* Replaces every non-overlapping (a,b), left to right, by id; new length. */
static int64_t replace_pair(int32_t *ids, int64_t n, int32_t a, int32_t b, int32_t id) {
  int64_t w = 0;
  for (int64_t i = 0; i < n; i++) {
    if (i + 1 < n && ids[i] == a && ids[i + 1] == b) ids[w++] = id, i++;
    else ids[w++] = ids[i];
  }
  return w;
}

/* The most frequent pair of ids[0..n) (ties: smallest key); count 0 if none. */
static gr_status best_pair(const int32_t *ids, int64_t n, pair_table *h, int32_t *a, int32_t *b, int64_t *count) {
  memset(h->keys, 0, h->cap * sizeof(uint64_t));
  h->used = 0;
  *count = 0;
  uint64_t best = 0;
  for (int64_t i = 0; i + 1 < n; i++) {
    if (ids[i] == NEWLINE || ids[i + 1] == NEWLINE) continue;
    uint64_t k = pair_key(ids[i], ids[i + 1]);
    int64_t *v = table_get(h, k, true);
    if (!v) return gr_last_status();
    if (++*v > *count || (*v == *count && k < best)) *count = *v, best = k;
  }
  *a = (int32_t)((best - 1) >> 32), *b = (int32_t)((best - 1) & 0xFFFFFFFFu);
  return GR_OK;
}

gr_status gr_tokenizer_bpe_train(const char *text, size_t n, int n_merges, gr_tokenizer **out) {
  if (!out) return gr_error(GR_EARG, "bpe: out is NULL");
  *out = NULL;
  if (!text || n == 0) return gr_error(GR_EARG, "bpe: no text to learn merges from");
  if (n_merges < 0 || n_merges > GR_BPE_MAX_TRAIN_MERGES)
    return gr_error(GR_EARG, "bpe: %d merges outside 0..%d", n_merges, GR_BPE_MAX_TRAIN_MERGES);
  if (n > GR_BPE_TRAIN_BYTES) n = GR_BPE_TRAIN_BYTES;
  int32_t *ids = gr_malloc(n * sizeof(int32_t)), *flat = gr_malloc((size_t)(2 * n_merges + 2) * sizeof(int32_t));
  pair_table h = {0};
  gr_status st = ids && flat ? table_init(&h, 1 << 16) : gr_error(GR_ENOMEM, "bpe: out of memory");
  int64_t len = (int64_t)n;
  for (size_t i = 0; ids && i < n; i++) ids[i] = (uint8_t)text[i];
  int32_t made = 0;
  for (; !st && made < n_merges; made++) {
    int32_t a = 0, b = 0;
    int64_t count = 0;
    if ((st = best_pair(ids, len, &h, &a, &b, &count)) || count < 2) break;
    flat[2 * made] = a, flat[2 * made + 1] = b;
    len = replace_pair(ids, len, a, b, 256 + made);
  }
  if (!st) st = tok_bpe_from_merges(flat, made, out);
  table_free(&h);
  gr_free(ids);
  gr_free(flat);
  return st;
}

/* ---- encoding ---------------------------------------------------------------------- */
static void merge_line(pair_table *rank, int32_t *ids, int64_t *n) {
  for (;;) {
    int64_t best = -1, at = -1;
    for (int64_t i = 0; i + 1 < *n; i++) {
      int64_t *r = table_get(rank, pair_key(ids[i], ids[i + 1]), false);
      if (r && (best < 0 || *r < best)) best = *r, at = i;
    }
    if (best < 0) return;
    *n = replace_pair(ids, *n, ids[at], ids[at + 1], (int32_t)(256 + best));
  }
}

int64_t tok_bpe_merge(const gr_tokenizer *t, int32_t *ids, int64_t n) {
  int32_t nm = t->n_base - 256;
  if (nm == 0 || n == 0) return n;
  size_t cap = 16;
  while (cap < 4 * (size_t)nm) cap *= 2;
  pair_table rank;
  if (table_init(&rank, cap)) return table_free(&rank), -1;
  for (int32_t r = 0; r < nm; r++) *table_get(&rank, pair_key(t->merges[r][0], t->merges[r][1]), true) = r;
  int64_t w = 0, start = 0;
  for (int64_t i = 0; i <= n; i++) {
    if (i < n && ids[i] != NEWLINE) continue;
    int64_t len = i - start;
    merge_line(&rank, ids + start, &len);
    memmove(ids + w, ids + start, (size_t)len * sizeof(int32_t));
    w += len;
    if (i < n) ids[w++] = NEWLINE;
    start = i + 1;
  }
  table_free(&rank);
  return w;
}
