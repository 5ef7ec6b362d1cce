/* io/st_header.c — the safetensors header parser and validator.
 *
 * Untrusted bytes are checked in the reference crate's order (FORMATS.md
 * §1.3): size prefix, 100 MB cap, header bounds, UTF-8, JSON, offsets tiling
 * the buffer, checked shape x dtype arithmetic, exact coverage of the file.
 * The JSON parser is graft's own and strict (RFC 8259, as serde_json): exact
 * u64 integers, no duplicate keys anywhere (serde keeps the last one, a known
 * parser differential), depth limit 128. It only builds what a header needs;
 * it is not a general JSON library (PEFT configs use cJSON). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/tensor.h"
#include "io/st_internal.h"

#define MAX_DEPTH 128

typedef struct entry {
  size_t name;          /* offset into strings */
  gr_dtype dtype;
  size_t dims, ndim;    /* offset into dims */
  uint64_t begin, end;
  size_t order;         /* position in the header, for a stable sort */
} entry;

typedef struct parser {
  const char *what;     /* file name for messages */
  const uint8_t *p, *end;
  char *str;            /* decoded strings */
  size_t str_len, str_cap;
  uint64_t *dims;
  size_t n_dims, dims_cap;
  entry *ents;
  size_t n_ents, ents_cap;
  size_t *meta;         /* pairs of string offsets: key, value */
  size_t n_meta, meta_cap;
  bool has_meta;
} parser;

/* ---- UTF-8 (as Rust's str::from_utf8: no overlongs, surrogates, > U+10FFFF) */
bool st_utf8_valid(const uint8_t *s, size_t n, size_t *bad_at) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t k;
    uint32_t lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c < 0x80) { i++; continue; }
    else if (c >= 0xc2 && c <= 0xdf) k = 1;
    else if (c >= 0xe0 && c <= 0xef) { k = 2; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { k = 3; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
    else { *bad_at = i; return false; }
    if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi) { *bad_at = i; return false; }
    for (size_t j = 2; j <= k; j++)
      if ((s[i + j] & 0xc0) != 0x80) { *bad_at = i; return false; }
    i += k + 1;
  }
  return true;
}

/* ---- lexical ------------------------------------------------------------ */
static gr_status json_err(parser *ps, gr_st_err kind, const char *msg, const char *field) {
  return st_fail(kind, GR_EFORMAT, "%s: safetensors header: %s%s%s", ps->what, msg, field ? " " : "",
                 field ? field : "");
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static bool eat(parser *ps, char c) {
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == (uint8_t)c) {
    ps->p++;
    return true;
  }
  return false;
}

static gr_status put_bytes(parser *ps, const void *b, size_t n) {
  if (st_grow((void **)&ps->str, &ps->str_cap, ps->str_len + n, 1)) return GR_ENOMEM;
  memcpy(ps->str + ps->str_len, b, n);
  ps->str_len += n;
  return GR_OK;
}

static int hex4(const uint8_t *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int c = p[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Reads a \uXXXX escape (p at the 'u'); a surrogate pair counts as one. */
static long read_unicode_escape(parser *ps) {
  if (ps->end - ps->p < 5) return -1;
  long cp = hex4(ps->p + 1);
  if (cp < 0) return -1;
  ps->p += 5;
  if (cp >= 0xdc00 && cp <= 0xdfff) return -1; /* lone trailing surrogate */
  if (cp >= 0xd800 && cp <= 0xdbff) {
    if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') return -1;
    long lo = hex4(ps->p + 2);
    if (lo < 0xdc00 || lo > 0xdfff) return -1;
    ps->p += 6;
    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
  }
  return cp;
}

static gr_status put_codepoint(parser *ps, long cp) {
  uint8_t b[4];
  size_t n;
  if (cp < 0x80) { b[0] = (uint8_t)cp; n = 1; }
  else if (cp < 0x800) { b[0] = (uint8_t)(0xc0 | (cp >> 6)); b[1] = (uint8_t)(0x80 | (cp & 0x3f)); n = 2; }
  else if (cp < 0x10000) {
    b[0] = (uint8_t)(0xe0 | (cp >> 12)); b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    b[2] = (uint8_t)(0x80 | (cp & 0x3f)); n = 3;
  } else {
    b[0] = (uint8_t)(0xf0 | (cp >> 18)); b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)); b[3] = (uint8_t)(0x80 | (cp & 0x3f)); n = 4;
  }
  return put_bytes(ps, b, n);
}

/* Decodes a JSON string into ps->str (NUL-terminated); *off is its offset,
 * *has_nul set when it contains an escaped NUL. */
static gr_status parse_string(parser *ps, size_t *off, bool *has_nul) {
  if (!eat(ps, '"')) return json_err(ps, GR_ST_BAD_JSON, "expected a string", NULL);
  *off = ps->str_len;
  *has_nul = false;
  for (;;) {
    if (ps->p >= ps->end) return json_err(ps, GR_ST_BAD_JSON, "EOF while parsing a string", NULL);
    uint8_t c = *ps->p;
    if (c == '"') { ps->p++; break; }
    if (c < 0x20) return json_err(ps, GR_ST_BAD_JSON, "control character in a string", NULL);
    if (c != '\\') {
      const uint8_t *run = ps->p;
      while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' && *ps->p >= 0x20) ps->p++;
      if (put_bytes(ps, run, (size_t)(ps->p - run))) return GR_ENOMEM;
      continue;
    }
    if (++ps->p >= ps->end) return json_err(ps, GR_ST_BAD_JSON, "EOF in an escape", NULL);
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *e = *ps->p ? strchr(from, *ps->p) : NULL;
    if (e) {
      ps->p++;
      if (put_bytes(ps, &to[e - from], 1)) return GR_ENOMEM;
    } else if (*ps->p == 'u') {
      long cp = read_unicode_escape(ps);
      if (cp < 0) return json_err(ps, GR_ST_BAD_JSON, "invalid \\u escape", NULL);
      if (cp == 0) *has_nul = true;
      if (put_codepoint(ps, cp)) return GR_ENOMEM;
    } else {
      return json_err(ps, GR_ST_BAD_JSON, "invalid escape", NULL);
    }
  }
  return put_bytes(ps, "", 1);
}

/* Scans a JSON number. *is_u64 when it is a plain non-negative integer that
 * fits u64 (value in *v); other valid numbers (negative, fraction, exponent,
 * too large) parse but are not u64. Invalid syntax is GR_ST_BAD_JSON. */
static gr_status parse_number(parser *ps, bool *is_u64, uint64_t *v) {
  skip_ws(ps);
  const uint8_t *p = ps->p, *e = ps->end;
  bool neg = false, integral = true, overflow = false;
  uint64_t acc = 0;
  if (p < e && *p == '-') { neg = true; p++; }
  if (p >= e || *p < '0' || *p > '9') return json_err(ps, GR_ST_BAD_JSON, "invalid number", NULL);
  if (*p == '0') p++;
  else
    for (; p < e && *p >= '0' && *p <= '9'; p++) {
      unsigned d = (unsigned)(*p - '0');
      if (acc > (UINT64_MAX - d) / 10) overflow = true;
      acc = acc * 10 + d;
    }
  if (p < e && *p == '.') {
    integral = false;
    if (++p >= e || *p < '0' || *p > '9') return json_err(ps, GR_ST_BAD_JSON, "invalid number", NULL);
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    integral = false;
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    if (p >= e || *p < '0' || *p > '9') return json_err(ps, GR_ST_BAD_JSON, "invalid number", NULL);
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  ps->p = p;
  *is_u64 = !neg && integral && !overflow;
  *v = acc;
  return GR_OK;
}

static gr_status skip_value(parser *ps, int depth);

static gr_status skip_container(parser *ps, int depth, char close, bool keyed) {
  if (depth > MAX_DEPTH) return json_err(ps, GR_ST_BAD_JSON, "recursion limit exceeded", NULL);
  if (eat(ps, close)) return GR_OK;
  for (;;) {
    if (keyed) {
      size_t off;
      bool nul;
      if (parse_string(ps, &off, &nul)) return GR_EFORMAT;
      ps->str_len = off; /* keys of skipped objects are not kept */
      if (!eat(ps, ':')) return json_err(ps, GR_ST_BAD_JSON, "expected ':'", NULL);
    }
    if (skip_value(ps, depth + 1)) return GR_EFORMAT;
    if (eat(ps, close)) return GR_OK;
    if (!eat(ps, ',')) return json_err(ps, GR_ST_BAD_JSON, "expected ',' or a closing bracket", NULL);
  }
}

static bool eat_word(parser *ps, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, w, n)) {
    ps->p += n;
    return true;
  }
  return false;
}

/* Skips any JSON value (the unknown fields serde ignores). */
static gr_status skip_value(parser *ps, int depth) {
  skip_ws(ps);
  if (ps->p >= ps->end) return json_err(ps, GR_ST_BAD_JSON, "EOF while parsing a value", NULL);
  uint8_t c = *ps->p;
  if (c == '{') { ps->p++; return skip_container(ps, depth, '}', true); }
  if (c == '[') { ps->p++; return skip_container(ps, depth, ']', false); }
  if (c == '"') {
    size_t off;
    bool nul;
    gr_status st = parse_string(ps, &off, &nul);
    ps->str_len = off;
    return st;
  }
  if (eat_word(ps, "true") || eat_word(ps, "false") || eat_word(ps, "null")) return GR_OK;
  bool is_u64;
  uint64_t v;
  return parse_number(ps, &is_u64, &v);
}

/* ---- header structure ---------------------------------------------------- */
/* data_offsets: exactly [u64, u64]. */
static gr_status parse_offsets(parser *ps, entry *en, const char *name) {
  uint64_t v[2];
  if (!eat(ps, '[')) return json_err(ps, GR_ST_BAD_OFFSETS, "data_offsets is not an array in tensor", name);
  for (int i = 0; i < 2; i++) {
    bool ok;
    if (i && !eat(ps, ',')) return json_err(ps, GR_ST_BAD_OFFSETS, "data_offsets needs 2 numbers in tensor", name);
    if (parse_number(ps, &ok, &v[i])) return GR_EFORMAT;
    if (!ok) return json_err(ps, GR_ST_BAD_OFFSETS, "data_offsets entry is not a u64 integer in tensor", name);
  }
  if (!eat(ps, ']')) return json_err(ps, GR_ST_BAD_OFFSETS, "data_offsets needs exactly 2 numbers in tensor", name);
  en->begin = v[0];
  en->end = v[1];
  return GR_OK;
}

static gr_status parse_shape(parser *ps, entry *en, const char *name) {
  if (!eat(ps, '[')) return json_err(ps, GR_ST_BAD_SHAPE, "shape is not an array in tensor", name);
  en->dims = ps->n_dims;
  en->ndim = 0;
  if (eat(ps, ']')) return GR_OK;
  for (;;) {
    bool ok;
    uint64_t d;
    if (parse_number(ps, &ok, &d)) return GR_EFORMAT;
    if (!ok) return json_err(ps, GR_ST_BAD_SHAPE, "shape dim is not a non-negative u64 integer in tensor", name);
    if (st_grow((void **)&ps->dims, &ps->dims_cap, ps->n_dims + 1, sizeof(uint64_t))) return GR_ENOMEM;
    ps->dims[ps->n_dims++] = d;
    en->ndim++;
    if (eat(ps, ']')) return GR_OK;
    if (!eat(ps, ',')) return json_err(ps, GR_ST_BAD_SHAPE, "expected ',' or ']' in the shape of tensor", name);
  }
}

static gr_status parse_dtype(parser *ps, entry *en, const char *name) {
  skip_ws(ps);
  if (ps->p >= ps->end || *ps->p != '"') return json_err(ps, GR_ST_BAD_TENSOR_INFO, "dtype is not a string in tensor", name);
  size_t off;
  bool nul;
  if (parse_string(ps, &off, &nul)) return GR_EFORMAT;
  size_t len = ps->str_len - off - 1;
  gr_status st = gr_dtype_parse(ps->str + off, len, &en->dtype);
  ps->str_len = off;
  if (st) return st_fail(GR_ST_UNKNOWN_DTYPE, GR_EFORMAT, "%s: safetensors header: %s in tensor %s", ps->what,
                         gr_last_error(), name);
  return GR_OK;
}

/* One tensor's {"dtype":..,"shape":..,"data_offsets":..}; other fields skipped. */
static gr_status parse_tensor_info(parser *ps, entry *en) {
  char nm[160]; /* a copy: parsing may move ps->str */
  snprintf(nm, sizeof nm, "'%s'", ps->str + en->name);
  if (!eat(ps, '{')) return json_err(ps, GR_ST_NOT_OBJECT, "entry is not an object: tensor", nm);
  bool seen[3] = {false, false, false};
  static const char *fields[3] = {"dtype", "shape", "data_offsets"};
  if (!eat(ps, '}'))
    for (;;) {
      size_t off;
      bool nul;
      if (parse_string(ps, &off, &nul)) return GR_EFORMAT;
      int f = -1;
      for (int i = 0; i < 3; i++) if (!strcmp(ps->str + off, fields[i])) f = i;
      ps->str_len = off;
      if (!eat(ps, ':')) return json_err(ps, GR_ST_BAD_JSON, "expected ':' in tensor", nm);
      if (f >= 0 && seen[f]) return json_err(ps, GR_ST_DUPLICATE_KEY, "duplicate field in tensor", nm);
      gr_status st = f == 0 ? parse_dtype(ps, en, nm) : f == 1 ? parse_shape(ps, en, nm)
                     : f == 2 ? parse_offsets(ps, en, nm) : skip_value(ps, 2);
      if (st) return st;
      if (f >= 0) seen[f] = true;
      if (eat(ps, '}')) break;
      if (!eat(ps, ',')) return json_err(ps, GR_ST_BAD_JSON, "expected ',' or '}' in tensor", nm);
    }
  for (int i = 0; i < 3; i++)
    if (!seen[i]) {
      char m[200];
      snprintf(m, sizeof m, "missing field '%s' in tensor", fields[i]);
      return json_err(ps, GR_ST_BAD_TENSOR_INFO, m, nm);
    }
  return GR_OK;
}

/* "__metadata__": null or {string: string, ...}. */
static gr_status parse_metadata(parser *ps) {
  if (ps->has_meta) return json_err(ps, GR_ST_DUPLICATE_KEY, "duplicate key", "'__metadata__'");
  ps->has_meta = true;
  skip_ws(ps);
  if (eat_word(ps, "null")) return GR_OK;
  if (!eat(ps, '{')) return json_err(ps, GR_ST_BAD_METADATA, "__metadata__ is not an object", NULL);
  if (eat(ps, '}')) return GR_OK;
  for (;;) {
    size_t k, v;
    bool nul_k, nul_v;
    if (parse_string(ps, &k, &nul_k)) return GR_EFORMAT;
    if (!eat(ps, ':')) return json_err(ps, GR_ST_BAD_JSON, "expected ':' in __metadata__", NULL);
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '"') {
      char m[200];
      snprintf(m, sizeof m, "'%.120s'", ps->str + k);
      return json_err(ps, GR_ST_BAD_METADATA, "__metadata__ value is not a string: key", m);
    }
    if (parse_string(ps, &v, &nul_v)) return GR_EFORMAT;
    if (nul_k || nul_v) return json_err(ps, GR_ST_BAD_NAME, "NUL character in __metadata__", NULL);
    if (st_grow((void **)&ps->meta, &ps->meta_cap, 2 * ps->n_meta + 2, sizeof(size_t))) return GR_ENOMEM;
    ps->meta[2 * ps->n_meta] = k;
    ps->meta[2 * ps->n_meta + 1] = v;
    ps->n_meta++;
    if (eat(ps, '}')) return GR_OK;
    if (!eat(ps, ',')) return json_err(ps, GR_ST_BAD_JSON, "expected ',' or '}' in __metadata__", NULL);
  }
}

static gr_status parse_entry(parser *ps) {
  size_t name;
  bool nul;
  if (parse_string(ps, &name, &nul)) return GR_EFORMAT;
  if (!eat(ps, ':')) return json_err(ps, GR_ST_BAD_JSON, "expected ':' after a key", NULL);
  if (!strcmp(ps->str + name, "__metadata__")) {
    ps->str_len = name;
    return parse_metadata(ps);
  }
  if (nul) return json_err(ps, GR_ST_BAD_NAME, "NUL character in a tensor name", NULL);
  if (st_grow((void **)&ps->ents, &ps->ents_cap, ps->n_ents + 1, sizeof(entry))) return GR_ENOMEM;
  entry *en = &ps->ents[ps->n_ents++];
  memset(en, 0, sizeof *en);
  en->name = name;
  en->order = ps->n_ents - 1;
  return parse_tensor_info(ps, en);
}

static gr_status parse_json(parser *ps) {
  skip_ws(ps);
  if (!eat(ps, '{')) {
    if (ps->p < ps->end && (*ps->p == '[' || *ps->p == '"' || *ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9') ||
                            *ps->p == 't' || *ps->p == 'f' || *ps->p == 'n'))
      return json_err(ps, GR_ST_NOT_OBJECT, "top level is not a JSON object", NULL);
    return json_err(ps, GR_ST_BAD_JSON, "expected '{'", NULL);
  }
  if (!eat(ps, '}'))
    for (;;) {
      gr_status st = parse_entry(ps);
      if (st) return st;
      if (eat(ps, '}')) break;
      if (!eat(ps, ',')) return json_err(ps, GR_ST_BAD_JSON, "expected ',' or '}'", NULL);
    }
  skip_ws(ps);
  if (ps->p != ps->end) return json_err(ps, GR_ST_BAD_JSON, "trailing characters after the object", NULL);
  return GR_OK;
}

/* ---- validation (checks 6-10) ------------------------------------------ */
static int cmp_offsets(const void *a, const void *b) {
  const entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_index_by_name(const void *a, const void *b, void *ctx) {
  const gr_st_tensor *t = ctx;
  return strcmp(t[*(const size_t *)a].name, t[*(const size_t *)b].name);
}

static int cmp_kv(const void *a, const void *b) {
  return strcmp(((const gr_st_kv *)a)->key, ((const gr_st_kv *)b)->key);
}

/* Rust's Metadata::validate, tensor by tensor in offset order. */
static gr_status validate_layout(parser *ps, gr_st_file *f, uint64_t *buffer_end) {
  uint64_t start = 0;
  for (size_t i = 0; i < f->n_tensors; i++) {
    gr_st_tensor *t = &f->tensors[i];
    if (t->begin != start || t->end < t->begin)
      return st_fail(GR_ST_INVALID_OFFSET, GR_EFORMAT,
                     "%s: tensor '%s': data_offsets [%llu,%llu] %s (expected begin %llu)", ps->what, t->name,
                     (unsigned long long)t->begin, (unsigned long long)t->end,
                     t->end < t->begin ? "end before begin" : "leave a hole or overlap", (unsigned long long)start);
    start = t->end;
    uint64_t numel = 1, nbits;
    for (int d = 0; d < t->ndim; d++)
      if (__builtin_mul_overflow(numel, t->shape[d], &numel))
        return st_fail(GR_ST_VALIDATION_OVERFLOW, GR_EFORMAT, "%s: tensor '%s': shape product overflows", ps->what,
                       t->name);
    if (__builtin_mul_overflow(numel, (uint64_t)gr_dtype_bits(t->dtype), &nbits))
      return st_fail(GR_ST_VALIDATION_OVERFLOW, GR_EFORMAT, "%s: tensor '%s': byte size overflows", ps->what,
                     t->name);
    if (nbits % 8)
      return st_fail(GR_ST_MISALIGNED_SLICE, GR_EFORMAT, "%s: tensor '%s': %s data is not a whole number of bytes",
                     ps->what, t->name, gr_dtype_name(t->dtype));
    t->numel = numel;
    t->nbytes = t->end - t->begin;
    if (t->nbytes != nbits / 8)
      return st_fail(GR_ST_TENSOR_INVALID_INFO, GR_EFORMAT,
                     "%s: tensor '%s': data_offsets span %llu bytes but %s shape needs %llu", ps->what, t->name,
                     (unsigned long long)t->nbytes, gr_dtype_name(t->dtype), (unsigned long long)(nbits / 8));
  }
  *buffer_end = start;
  return GR_OK;
}

/* Sorted name index; adjacent equal names are duplicates. */
static gr_status index_names(parser *ps, gr_st_file *f) {
  f->by_name = gr_malloc((f->n_tensors + 1) * sizeof(size_t));
  f->meta = gr_malloc((f->n_meta + 1) * sizeof(gr_st_kv));
  if (!f->by_name || !f->meta) return st_fail(GR_ST_IO, GR_ENOMEM, "%s: out of memory", ps->what);
  for (size_t i = 0; i < f->n_tensors; i++) f->by_name[i] = i;
  qsort_r(f->by_name, f->n_tensors, sizeof(size_t), cmp_index_by_name, f->tensors);
  for (size_t i = 1; i < f->n_tensors; i++)
    if (!strcmp(f->tensors[f->by_name[i]].name, f->tensors[f->by_name[i - 1]].name))
      return st_fail(GR_ST_DUPLICATE_KEY, GR_EFORMAT, "%s: safetensors header: duplicate tensor name '%s'",
                     ps->what, f->tensors[f->by_name[i]].name);
  for (size_t i = 0; i < f->n_meta; i++) {
    f->meta[i].key = f->strings + ps->meta[2 * i];
    f->meta[i].value = f->strings + ps->meta[2 * i + 1];
  }
  qsort(f->meta, f->n_meta, sizeof(gr_st_kv), cmp_kv);
  for (size_t i = 1; i < f->n_meta; i++)
    if (!strcmp(f->meta[i].key, f->meta[i - 1].key))
      return st_fail(GR_ST_DUPLICATE_KEY, GR_EFORMAT, "%s: safetensors header: duplicate __metadata__ key '%s'",
                     ps->what, f->meta[i].key);
  return GR_OK;
}

/* Moves the parsed entries into f (sorted by offsets). */
static gr_status build_tensors(parser *ps, gr_st_file *f) {
  if (ps->n_ents) qsort(ps->ents, ps->n_ents, sizeof(entry), cmp_offsets);
  f->strings = ps->str;
  f->dims = ps->dims;
  ps->str = NULL;
  ps->dims = NULL;
  f->n_tensors = ps->n_ents;
  f->n_meta = ps->n_meta;
  f->tensors = gr_calloc(ps->n_ents + 1, sizeof(gr_st_tensor));
  if (!f->tensors) return st_fail(GR_ST_IO, GR_ENOMEM, "%s: out of memory", ps->what);
  for (size_t i = 0; i < ps->n_ents; i++) {
    const entry *e = &ps->ents[i];
    gr_st_tensor *t = &f->tensors[i];
    t->name = f->strings + e->name;
    t->dtype = e->dtype;
    t->ndim = (int)e->ndim;
    t->shape = f->dims ? f->dims + e->dims : NULL;
    t->begin = e->begin;
    t->end = e->end;
  }
  return GR_OK;
}

static gr_status check_prefix(gr_st_file *f, const char *what) {
  if (f->len < 8)
    return st_fail(GR_ST_HEADER_TOO_SMALL, GR_EFORMAT, "%s: %llu bytes is too small for a safetensors file",
                   what, (unsigned long long)f->len);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | f->head[i];
  if (n > GR_ST_MAX_HEADER)
    return st_fail(GR_ST_HEADER_TOO_LARGE, GR_EFORMAT, "%s: header length %llu exceeds the 100 MB cap", what,
                   (unsigned long long)n);
  if (n > f->len - 8)
    return st_fail(GR_ST_INVALID_HEADER_LENGTH, GR_EFORMAT,
                   "%s: header length %llu runs past the end of the file (%llu bytes)", what,
                   (unsigned long long)n, (unsigned long long)f->len);
  f->header_len = n;
  size_t bad;
  GR_ASSERT(f->head_len >= 8 + n);
  if (!st_utf8_valid(f->head + 8, n, &bad))
    return st_fail(GR_ST_INVALID_UTF8, GR_EFORMAT, "%s: header is not valid UTF-8 (byte %zu)", what, bad);
  return GR_OK;
}

gr_status st_parse_header(gr_st_file *f) {
  const char *what = f->path ? f->path : "<buffer>";
  gr_status st = check_prefix(f, what);
  if (st) return st;
  parser ps = {.what = what, .p = f->head + 8, .end = f->head + 8 + f->header_len};
  uint64_t buffer_end = 0;
  st = parse_json(&ps);
  if (!st) st = build_tensors(&ps, f);
  if (!st) st = index_names(&ps, f);
  if (!st) st = validate_layout(&ps, f, &buffer_end);
  uint64_t total;
  if (!st && (__builtin_add_overflow(buffer_end, 8 + f->header_len, &total) || total != f->len))
    st = st_fail(GR_ST_INCOMPLETE_BUFFER, GR_EFORMAT,
                 "%s: tensors cover %llu data bytes but the file holds %llu after the header%s", what,
                 (unsigned long long)buffer_end, (unsigned long long)(f->len - 8 - f->header_len),
                 buffer_end < f->len - 8 - f->header_len ? " (trailing bytes)" : " (truncated)");
  if (!st)
    for (size_t i = 0; i < f->n_tensors; i++) f->tensors[i].file_offset = 8 + f->header_len + f->tensors[i].begin;
  gr_free(ps.str);
  gr_free(ps.dims);
  gr_free(ps.ents);
  gr_free(ps.meta);
  return st ? st : st_ok();
}

void st_set_data_pointers(gr_st_file *f) {
  for (size_t i = 0; i < f->n_tensors; i++) f->tensors[i].data = f->base + f->tensors[i].file_offset;
}
