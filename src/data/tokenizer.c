/* data/tokenizer.c — the byte and char tokenizers of graft/text.h, encode
 * and decode for all kinds, special ids, and the tokenizer's JSON form (kept
 * in a GPT model directory's config.json). BPE training and merging are in
 * tokenizer_bpe.c. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer_internal.h"
#include "graft/tensor.h"

static const char *const special_names[GR_TOK_SPECIALS] = {
    "<|endoftext|>", "<sep>", "<eom>", "<mask_1>", "<mask_2>", "<mask_3>", "<mask_4>",
    "<mask_5>",      "<mask_6>", "<mask_7>", "<mask_8>"};

gr_status tok_finish(gr_tokenizer *t, int32_t n_base) {
  t->n_base = n_base;
  t->vocab = n_base + GR_TOK_SPECIALS;
  t->eos = n_base;
  t->sep = n_base + 1;
  t->eom = n_base + 2;
  for (int i = 0; i < GR_TOK_MASKS; i++) t->mask[i] = n_base + 3 + i;
  t->piece_len = gr_calloc((size_t)t->vocab, sizeof(int32_t));
  if (!t->piece_len) return gr_error(GR_ENOMEM, "tokenizer: out of memory");
  for (int32_t id = 0; id < n_base; id++) {
    if (t->kind == GR_TOK_BYTE) t->piece_len[id] = 1;
    else if (t->kind == GR_TOK_BPE) t->piece_len[id] = tok_bpe_piece_len(t, id);
    else t->piece_len[id] = tok_utf8_len(t->chars[id]);
  }
  return GR_OK;
}

void gr_tokenizer_free(gr_tokenizer *t) {
  if (!t) return;
  if (t->piece)
    for (int32_t i = 0; i < t->n_base; i++) gr_free(t->piece[i]);
  gr_free(t->piece);
  gr_free(t->chars);
  gr_free(t->merges);
  gr_free(t->piece_len);
  gr_free(t);
}

gr_status gr_tokenizer_byte(gr_tokenizer **out) {
  if (!out) return gr_error(GR_EARG, "tokenizer: out is NULL");
  gr_tokenizer *t = gr_calloc(1, sizeof *t);
  if (!t) return gr_error(GR_ENOMEM, "tokenizer: out of memory");
  t->kind = GR_TOK_BYTE;
  gr_status st = tok_finish(t, 256);
  if (st) gr_tokenizer_free(t), t = NULL;
  *out = t;
  return st;
}

/* ---- UTF-8 with surrogate escapes ----------------------------------------- */
/* Decodes one code point at s[0..n) (n >= 1) into *cp; returns bytes used.
 * Invalid or truncated sequences, overlongs and surrogates give 0xDC00+byte. */
int tok_utf8_next(const uint8_t *s, size_t n, int32_t *cp) {
  uint8_t b = s[0];
  int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (len == 1) return *cp = b, 1;
  if (len == 0 || (size_t)len > n) return *cp = 0xDC00 + b, 1;
  int32_t v = b & (0x7F >> len);
  for (int i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return *cp = 0xDC00 + b, 1;
    v = (v << 6) | (s[i] & 0x3F);
  }
  static const int32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < min_cp[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return *cp = 0xDC00 + b, 1;
  *cp = v;
  return len;
}

int tok_utf8_len(int32_t cp) {
  if (cp >= 0xDC80 && cp <= 0xDCFF) return 1; /* escaped raw byte */
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static int utf8_put(int32_t cp, uint8_t *o) {
  if (cp >= 0xDC80 && cp <= 0xDCFF) return o[0] = (uint8_t)(cp - 0xDC00), 1;
  if (cp < 0x80) return o[0] = (uint8_t)cp, 1;
  if (cp < 0x800) return o[0] = (uint8_t)(0xC0 | cp >> 6), o[1] = (uint8_t)(0x80 | (cp & 0x3F)), 2;
  if (cp < 0x10000) {
    o[0] = (uint8_t)(0xE0 | cp >> 12), o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (uint8_t)(0xF0 | cp >> 18), o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

static gr_status char_from_set(int32_t *cps, int32_t n, gr_tokenizer **out) {
  gr_tokenizer *t = gr_calloc(1, sizeof *t);
  if (!t) return gr_free(cps), gr_error(GR_ENOMEM, "tokenizer: out of memory");
  t->kind = GR_TOK_CHAR;
  t->chars = cps;
  gr_status st = tok_finish(t, n);
  if (st) gr_tokenizer_free(t), t = NULL;
  *out = t;
  return st;
}

gr_status gr_tokenizer_char_build(const char *text, size_t n, gr_tokenizer **out) {
  if (!out) return gr_error(GR_EARG, "char tokenizer: out is NULL");
  *out = NULL;
  if (!text || n == 0) return gr_error(GR_EARG, "char tokenizer: no text to build the vocabulary from");
  /* Code points <= 0x10FFFF: a bitmap of 139 KB is cheaper than sorting the text. */
  uint8_t *seen = gr_calloc(0x110000 / 8, 1);
  if (!seen) return gr_error(GR_ENOMEM, "char tokenizer: out of memory");
  int32_t count = 0, cp;
  for (size_t i = 0; i < n;) {
    i += (size_t)tok_utf8_next((const uint8_t *)text + i, n - i, &cp);
    if (!(seen[cp >> 3] & (1 << (cp & 7)))) seen[cp >> 3] |= (uint8_t)(1 << (cp & 7)), count++;
  }
  int32_t *cps = gr_malloc((size_t)count * sizeof(int32_t));
  if (!cps) return gr_free(seen), gr_error(GR_ENOMEM, "char tokenizer: out of memory");
  int32_t k = 0;
  for (int32_t c = 0; c < 0x110000; c++)
    if (seen[c >> 3] & (1 << (c & 7))) cps[k++] = c;
  gr_free(seen);
  return char_from_set(cps, count, out);
}

gr_status gr_tokenizer_from_name(const char *name, const char *text, size_t n, gr_tokenizer **out) {
  if (!name || !out) return gr_error(GR_EARG, "tokenizer: NULL argument");
  if (!strcmp(name, "byte")) return gr_tokenizer_byte(out);
  if (!strcmp(name, "char")) return gr_tokenizer_char_build(text, n, out);
  if (!strncmp(name, "bpe:", 4)) {
    char *end;
    long m = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end || m < 0 || m > 65536)
      return gr_error(GR_EARG, "tokenizer: '%s': bpe:N needs N merges in 0..65536", name);
    return gr_tokenizer_bpe_train(text, n, (int)m, out);
  }
  return gr_error(GR_EARG, "tokenizer: unknown tokenizer '%s' (byte|char|bpe:N)", name);
}

/* ---- encode / decode --------------------------------------------------------- */
static gr_status encode_chars(const gr_tokenizer *t, const char *text, size_t n, int32_t *ids, int64_t *k) {
  int32_t cp;
  for (size_t i = 0; i < n;) {
    int used = tok_utf8_next((const uint8_t *)text + i, n - i, &cp);
    const int32_t *hit = bsearch(&cp, t->chars, (size_t)t->n_base, sizeof(int32_t), cmp_i32);
    if (!hit) {
      if (cp >= 0xDC80 && cp <= 0xDCFF)
        return gr_error(GR_EARG, "char tokenizer: byte 0x%02X at byte offset %zu (not valid UTF-8) is not in the vocabulary",
                        (unsigned)(cp - 0xDC00), i);
      return gr_error(GR_EARG, "char tokenizer: character U+%04X '%.*s' at byte offset %zu is not in the vocabulary",
                      (unsigned)cp, used, text + i, i);
    }
    ids[(*k)++] = (int32_t)(hit - t->chars);
    i += (size_t)used;
  }
  return GR_OK;
}

gr_status gr_tokenizer_encode(const gr_tokenizer *t, const char *text, size_t n, int32_t **ids, int64_t *n_ids) {
  if (!t || !ids || !n_ids || (!text && n)) return gr_error(GR_EARG, "tokenizer encode: NULL argument");
  *ids = NULL;
  *n_ids = 0;
  int32_t *o = gr_malloc((n ? n : 1) * sizeof(int32_t));
  if (!o) return gr_error(GR_ENOMEM, "tokenizer encode: out of memory (%zu bytes of text)", n);
  int64_t k = 0;
  gr_status st = GR_OK;
  if (t->kind == GR_TOK_CHAR) st = encode_chars(t, text, n, o, &k);
  else {
    for (size_t i = 0; i < n; i++) o[k++] = (uint8_t)text[i];
    if (t->kind == GR_TOK_BPE && (k = tok_bpe_merge(t, o, k)) < 0) st = gr_error(GR_ENOMEM, "bpe encode: out of memory");
  }
  if (st) return gr_free(o), st;
  *ids = o;
  *n_ids = k;
  return GR_OK;
}

const char *gr_tokenizer_special_name(const gr_tokenizer *t, int32_t id) {
  if (!t || id < t->n_base || id >= t->vocab) return NULL;
  return special_names[id - t->n_base];
}

gr_status gr_tokenizer_decode(const gr_tokenizer *t, const int32_t *ids, int64_t n, char **text, size_t *len) {
  if (!t || !text || !len || (!ids && n) || n < 0) return gr_error(GR_EARG, "tokenizer decode: NULL argument");
  *text = NULL;
  size_t total = 1;
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= t->vocab)
      return gr_error(GR_EARG, "tokenizer decode: id %d at position %lld outside vocabulary [0,%d)", ids[i],
                      (long long)i, t->vocab);
    total += ids[i] < t->n_base ? (size_t)t->piece_len[ids[i]] : strlen(special_names[ids[i] - t->n_base]);
  }
  uint8_t *o = gr_malloc(total);
  if (!o) return gr_error(GR_ENOMEM, "tokenizer decode: out of memory");
  size_t k = 0;
  for (int64_t i = 0; i < n; i++) {
    int32_t id = ids[i];
    if (id >= t->n_base) {
      size_t sl = strlen(special_names[id - t->n_base]);
      memcpy(o + k, special_names[id - t->n_base], sl), k += sl;
    } else if (t->kind == GR_TOK_BYTE) o[k++] = (uint8_t)id;
    else if (t->kind == GR_TOK_CHAR) k += (size_t)utf8_put(t->chars[id], o + k);
    else memcpy(o + k, t->piece[id], (size_t)t->piece_len[id]), k += (size_t)t->piece_len[id];
  }
  o[k] = 0;
  *text = (char *)o;
  *len = k;
  return GR_OK;
}

/* ---- JSON ------------------------------------------------------------------------ */
static const char *kind_name(gr_tok_kind k) { return k == GR_TOK_BYTE ? "byte" : k == GR_TOK_CHAR ? "char" : "bpe"; }

gr_status gr_tokenizer_to_json(const gr_tokenizer *t, char **json) {
  if (!t || !json) return gr_error(GR_EARG, "tokenizer json: NULL argument");
  *json = NULL;
  cJSON *o = cJSON_CreateObject(), *sp = cJSON_AddArrayToObject(o, "specials");
  bool ok = o && sp && cJSON_AddStringToObject(o, "type", kind_name(t->kind));
  for (int i = 0; ok && i < GR_TOK_SPECIALS; i++) ok = cJSON_AddItemToArray(sp, cJSON_CreateString(special_names[i]));
  if (ok && t->kind == GR_TOK_CHAR) {
    cJSON *a = cJSON_AddArrayToObject(o, "chars");
    for (int32_t i = 0; ok && i < t->n_base; i++) ok = a && cJSON_AddItemToArray(a, cJSON_CreateNumber(t->chars[i]));
  } else if (ok && t->kind == GR_TOK_BPE) {
    cJSON *a = cJSON_AddArrayToObject(o, "merges");
    for (int32_t i = 0; ok && i < t->n_base - 256; i++)
      ok = a && cJSON_AddItemToArray(a, cJSON_CreateIntArray(t->merges[i], 2));
  }
  char *txt = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!txt) return gr_error(GR_ENOMEM, "tokenizer json: out of memory");
  size_t n = strlen(txt);
  *json = gr_malloc(n + 1);
  if (*json) memcpy(*json, txt, n + 1);
  cJSON_free(txt);
  return *json ? GR_OK : gr_error(GR_ENOMEM, "tokenizer json: out of memory");
}

/* Integers of a JSON array into a gr_malloc'd array (every element an
 * integer in [lo, hi]). */
static gr_status int_array(const cJSON *a, const char *key, int32_t lo, int32_t hi, int32_t **out, int32_t *n) {
  *out = NULL;
  int sz = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
  if (sz < 0) return gr_error(GR_EFORMAT, "tokenizer json: \"%s\" must be an array", key);
  int32_t *v = gr_malloc((size_t)(sz ? sz : 1) * sizeof(int32_t));
  if (!v) return gr_error(GR_ENOMEM, "tokenizer json: out of memory");
  int i = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, a) {
    if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int32_t)it->valuedouble || it->valuedouble < lo ||
        it->valuedouble > hi) {
      gr_free(v);
      return gr_error(GR_EFORMAT, "tokenizer json: \"%s\"[%d] must be an integer in %d..%d", key, i, lo, hi);
    }
    v[i++] = (int32_t)it->valuedouble;
  }
  *out = v;
  *n = sz;
  return GR_OK;
}

static gr_status char_from_json(const cJSON *o, gr_tokenizer **out) {
  int32_t *cps, n;
  gr_status st = int_array(cJSON_GetObjectItemCaseSensitive(o, "chars"), "chars", 0, 0x10FFFF, &cps, &n);
  if (st) return st;
  for (int32_t i = 1; i < n; i++)
    if (cps[i] <= cps[i - 1]) return gr_free(cps), gr_error(GR_EFORMAT, "tokenizer json: \"chars\" must be strictly ascending");
  if (n == 0) return gr_free(cps), gr_error(GR_EFORMAT, "tokenizer json: \"chars\" is empty");
  return char_from_set(cps, n, out);
}

static gr_status check_specials(const cJSON *sp) {
  if (!cJSON_IsArray(sp) || cJSON_GetArraySize(sp) != GR_TOK_SPECIALS)
    return gr_error(GR_EFORMAT, "tokenizer json: \"specials\" must list the %d special tokens", GR_TOK_SPECIALS);
  for (int i = 0; i < GR_TOK_SPECIALS; i++) {
    const cJSON *s = cJSON_GetArrayItem(sp, i);
    if (!cJSON_IsString(s) || strcmp(s->valuestring, special_names[i]))
      return gr_error(GR_EFORMAT, "tokenizer json: special %d must be \"%s\"", i, special_names[i]);
  }
  return GR_OK;
}

static gr_status bpe_from_json(const cJSON *m, gr_tokenizer **out) {
  int32_t k = 0, sz = cJSON_IsArray(m) ? cJSON_GetArraySize(m) : -1;
  if (sz < 0 || sz > 65536) return gr_error(GR_EFORMAT, "tokenizer json: \"merges\" must be an array of at most 65536 pairs");
  int32_t *flat = gr_malloc((size_t)(2 * sz + 2) * sizeof(int32_t));
  if (!flat) return gr_error(GR_ENOMEM, "tokenizer json: out of memory");
  gr_status st = GR_OK;
  const cJSON *it;
  cJSON_ArrayForEach(it, m) {
    int32_t *pair, np;
    if ((st = int_array(it, "merges[i]", 0, 256 + k - 1, &pair, &np))) break;
    if (np != 2) st = gr_error(GR_EFORMAT, "tokenizer json: merge %d must be a pair of earlier ids", k);
    else flat[2 * k] = pair[0], flat[2 * k + 1] = pair[1], k++;
    gr_free(pair);
    if (st) break;
  }
  if (!st) st = tok_bpe_from_merges(flat, k, out);
  gr_free(flat);
  return st;
}

gr_status gr_tokenizer_from_json(const char *json, size_t n, gr_tokenizer **out) {
  if (!json || !out) return gr_error(GR_EARG, "tokenizer json: NULL argument");
  *out = NULL;
  cJSON *o = cJSON_ParseWithLength(json, n);
  if (!cJSON_IsObject(o)) return cJSON_Delete(o), gr_error(GR_EFORMAT, "tokenizer json: not a JSON object");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
  gr_status st = check_specials(cJSON_GetObjectItemCaseSensitive(o, "specials"));
  if (!st && !cJSON_IsString(type)) st = gr_error(GR_EFORMAT, "tokenizer json: \"type\" must be a string");
  if (st) return cJSON_Delete(o), st;
  if (!strcmp(type->valuestring, "byte")) st = gr_tokenizer_byte(out);
  else if (!strcmp(type->valuestring, "char")) st = char_from_json(o, out);
  else if (!strcmp(type->valuestring, "bpe")) st = bpe_from_json(cJSON_GetObjectItemCaseSensitive(o, "merges"), out);
  else st = gr_error(GR_EFORMAT, "tokenizer json: unknown type '%s' (byte|char|bpe)", type->valuestring);
  cJSON_Delete(o);
  return st;
}
