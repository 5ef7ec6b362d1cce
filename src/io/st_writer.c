/* io/st_writer.c — the streaming safetensors writer.
 *
 * The layout is fixed at begin() exactly as the reference crate's prepare():
 * tensors sorted by dtype descending (gr_dtype order) then name byte-wise,
 * contiguous offsets from 0, header = compact JSON with "__metadata__" first
 * (keys sorted, since the reference's HashMap order is arbitrary), strings
 * escaped as serde_json does, padded with spaces to a multiple of 8. Tensor
 * bytes are then written one tensor per call, in any order, with pwrite into
 * a temporary file that finish() renames over the target (atomic_file.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graft/tensor.h"
#include "io/st_internal.h"

#define MAX_WRITE_DIMS 1024

typedef struct slot {
  char *name;
  gr_dtype dtype;
  uint64_t nbytes, offset;
  bool written;
} slot;

struct gr_st_writer {
  st_atomic file;
  slot *slots;     /* sorted by name, for lookup */
  size_t n;
  uint64_t data_start, data_len;
};

/* ---- layout -------------------------------------------------------------- */
typedef struct planned {
  const gr_st_entry *e;
  uint64_t nbytes, offset;
} planned;

static int cmp_layout(const void *a, const void *b) {
  const gr_st_entry *x = ((const planned *)a)->e, *y = ((const planned *)b)->e;
  if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int cmp_planned_name(const void *a, const void *b) {
  return strcmp(((const planned *)a)->e->name, ((const planned *)b)->e->name);
}

static int cmp_kv_key(const void *a, const void *b) {
  return strcmp(((const gr_st_kv *)a)->key, ((const gr_st_kv *)b)->key);
}

static gr_status check_entry(const gr_st_entry *e, uint64_t *nbytes) {
  if (!e->name) return st_fail(GR_ST_BAD_ARG, GR_EARG, "safetensors writer: tensor with a NULL name");
  size_t bad;
  if (!st_utf8_valid((const uint8_t *)e->name, strlen(e->name), &bad))
    return st_fail(GR_ST_BAD_NAME, GR_EFORMAT, "safetensors writer: tensor name is not valid UTF-8 (byte %zu)", bad);
  if (!strcmp(e->name, "__metadata__"))
    return st_fail(GR_ST_RESERVED_NAME, GR_EFORMAT, "safetensors writer: '__metadata__' is reserved, not a tensor name");
  if ((unsigned)e->dtype >= GR_DT_COUNT)
    return st_fail(GR_ST_UNKNOWN_DTYPE, GR_EARG, "safetensors writer: tensor '%s': invalid dtype %d", e->name,
                   (int)e->dtype);
  if (e->ndim < 0 || e->ndim > MAX_WRITE_DIMS || (e->ndim > 0 && !e->shape))
    return st_fail(GR_ST_BAD_ARG, GR_EARG, "safetensors writer: tensor '%s': bad ndim %d", e->name, e->ndim);
  uint64_t numel = 1, nbits;
  for (int d = 0; d < e->ndim; d++) {
    if (e->shape[d] < 0)
      return st_fail(GR_ST_BAD_ARG, GR_ESHAPE, "safetensors writer: tensor '%s': negative dim %lld", e->name,
                     (long long)e->shape[d]);
    if (__builtin_mul_overflow(numel, (uint64_t)e->shape[d], &numel))
      return st_fail(GR_ST_VALIDATION_OVERFLOW, GR_ESHAPE, "safetensors writer: tensor '%s': shape overflows", e->name);
  }
  if (__builtin_mul_overflow(numel, (uint64_t)gr_dtype_bits(e->dtype), &nbits))
    return st_fail(GR_ST_VALIDATION_OVERFLOW, GR_ESHAPE, "safetensors writer: tensor '%s': size overflows", e->name);
  if (nbits % 8)
    return st_fail(GR_ST_MISALIGNED_SLICE, GR_EFORMAT, "safetensors writer: tensor '%s': %s data is not whole bytes",
                   e->name, gr_dtype_name(e->dtype));
  *nbytes = nbits / 8;
  return GR_OK;
}

static gr_status check_metadata(const gr_st_kv *meta, size_t n_meta, gr_st_kv **sorted) {
  *sorted = gr_malloc((n_meta + 1) * sizeof(gr_st_kv));
  if (!*sorted) return st_fail(GR_ST_IO, GR_ENOMEM, "safetensors writer: out of memory");
  for (size_t i = 0; i < n_meta; i++) {
    size_t bad;
    if (!meta[i].key || !meta[i].value)
      return st_fail(GR_ST_BAD_ARG, GR_EARG, "safetensors writer: metadata entry %zu has a NULL key or value", i);
    if (!st_utf8_valid((const uint8_t *)meta[i].key, strlen(meta[i].key), &bad) ||
        !st_utf8_valid((const uint8_t *)meta[i].value, strlen(meta[i].value), &bad))
      return st_fail(GR_ST_BAD_NAME, GR_EFORMAT, "safetensors writer: metadata entry %zu is not valid UTF-8", i);
    (*sorted)[i] = meta[i];
  }
  qsort(*sorted, n_meta, sizeof(gr_st_kv), cmp_kv_key);
  for (size_t i = 1; i < n_meta; i++)
    if (!strcmp((*sorted)[i].key, (*sorted)[i - 1].key))
      return st_fail(GR_ST_DUPLICATE_KEY, GR_EFORMAT, "safetensors writer: duplicate metadata key '%s'",
                     (*sorted)[i].key);
  return GR_OK;
}

static void put_header_json(st_buf *b, const planned *plan, size_t n, const gr_st_kv *meta, size_t n_meta,
                            bool with_meta) {
  st_buf_puts(b, "{");
  if (with_meta) {
    st_buf_puts(b, "\"__metadata__\":{");
    for (size_t i = 0; i < n_meta; i++) {
      if (i) st_buf_puts(b, ",");
      st_buf_json_string(b, meta[i].key);
      st_buf_puts(b, ":");
      st_buf_json_string(b, meta[i].value);
    }
    st_buf_puts(b, "}");
  }
  for (size_t i = 0; i < n; i++) {
    const gr_st_entry *e = plan[i].e;
    if (i || with_meta) st_buf_puts(b, ",");
    st_buf_json_string(b, e->name);
    st_buf_puts(b, ":{\"dtype\":\"");
    st_buf_puts(b, gr_dtype_name(e->dtype));
    st_buf_puts(b, "\",\"shape\":[");
    for (int d = 0; d < e->ndim; d++) {
      if (d) st_buf_puts(b, ",");
      st_buf_u64(b, (uint64_t)e->shape[d]);
    }
    st_buf_puts(b, "],\"data_offsets\":[");
    st_buf_u64(b, plan[i].offset);
    st_buf_puts(b, ",");
    st_buf_u64(b, plan[i].offset + plan[i].nbytes);
    st_buf_puts(b, "]}");
  }
  st_buf_puts(b, "}");
}

/* Validates, sorts and serializes: *header gets 8-byte N + padded JSON, plan
 * (sorted by name) gets each tensor's offset and size. */
static gr_status plan_file(const gr_st_entry *entries, size_t n, const gr_st_kv *meta, size_t n_meta,
                           planned **plan_out, st_buf *header, uint64_t *data_len) {
  planned *plan = gr_malloc((n + 1) * sizeof(planned));
  gr_st_kv *sorted_meta = NULL;
  *plan_out = plan;
  if (!plan) return st_fail(GR_ST_IO, GR_ENOMEM, "safetensors writer: out of memory");
  if (n && !entries) return st_fail(GR_ST_BAD_ARG, GR_EARG, "safetensors writer: NULL entries");
  if (n_meta && !meta) return st_fail(GR_ST_BAD_ARG, GR_EARG, "safetensors writer: NULL metadata");
  for (size_t i = 0; i < n; i++) {
    plan[i].e = &entries[i];
    if (check_entry(&entries[i], &plan[i].nbytes)) return GR_EFORMAT;
  }
  qsort(plan, n, sizeof(planned), cmp_planned_name);
  for (size_t i = 1; i < n; i++)
    if (!strcmp(plan[i].e->name, plan[i - 1].e->name))
      return st_fail(GR_ST_DUPLICATE_KEY, GR_EFORMAT, "safetensors writer: duplicate tensor name '%s'", plan[i].e->name);
  gr_status st = check_metadata(meta, n_meta, &sorted_meta);
  if (st) {
    gr_free(sorted_meta);
    return st;
  }
  qsort(plan, n, sizeof(planned), cmp_layout);
  uint64_t off = 0;
  for (size_t i = 0; i < n; i++) {
    plan[i].offset = off;
    if (__builtin_add_overflow(off, plan[i].nbytes, &off))
      return st_fail(GR_ST_VALIDATION_OVERFLOW, GR_EFORMAT, "safetensors writer: total size overflows");
  }
  st_buf_put(header, "\0\0\0\0\0\0\0\0", 8);
  put_header_json(header, plan, n, sorted_meta, n_meta, n_meta > 0);
  gr_free(sorted_meta);
  while (!header->oom && header->len % 8) st_buf_put(header, " ", 1);
  if (header->oom) return st_fail(GR_ST_IO, GR_ENOMEM, "safetensors writer: out of memory for the header");
  uint64_t hn = header->len - 8;
  if (hn > GR_ST_MAX_HEADER)
    return st_fail(GR_ST_HEADER_TOO_LARGE, GR_EFORMAT, "safetensors writer: header of %llu bytes exceeds the 100 MB cap",
                   (unsigned long long)hn);
  for (int i = 0; i < 8; i++) header->p[i] = (char)(hn >> (8 * i));
  qsort(plan, n, sizeof(planned), cmp_planned_name);
  *data_len = off;
  return GR_OK;
}

gr_status gr_st_header_bytes(const gr_st_entry *entries, size_t n, const gr_st_kv *meta, size_t n_meta,
                             uint8_t **out, size_t *out_len) {
  if (!out || !out_len) return st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_header_bytes: NULL out");
  planned *plan;
  st_buf header = {0};
  uint64_t data_len;
  gr_status st = plan_file(entries, n, meta, n_meta, &plan, &header, &data_len);
  gr_free(plan);
  if (st) {
    gr_free(header.p);
    *out = NULL;
    return st;
  }
  *out = (uint8_t *)header.p;
  *out_len = header.len;
  return st_ok();
}

/* ---- streaming ------------------------------------------------------------ */
void gr_st_writer_abort(gr_st_writer *w) {
  if (!w) return;
  st_atomic_discard(&w->file);
  for (size_t i = 0; i < w->n; i++) gr_free(w->slots[i].name);
  gr_free(w->slots);
  gr_free(w);
}

static gr_status make_slots(gr_st_writer *w, const planned *plan, size_t n) {
  w->slots = gr_calloc(n + 1, sizeof(slot));
  if (!w->slots) return st_fail(GR_ST_IO, GR_ENOMEM, "safetensors writer: out of memory");
  for (size_t i = 0; i < n; i++) {
    slot *s = &w->slots[i];
    s->name = st_strdup(plan[i].e->name);
    if (!s->name) return st_fail(GR_ST_IO, GR_ENOMEM, "safetensors writer: out of memory");
    s->dtype = plan[i].e->dtype;
    s->nbytes = plan[i].nbytes;
    s->offset = plan[i].offset;
    s->written = s->nbytes == 0;
    w->n++;
  }
  return GR_OK;
}

gr_status gr_st_writer_begin(const char *path, const gr_st_entry *entries, size_t n, const gr_st_kv *meta,
                             size_t n_meta, gr_st_writer **out) {
  if (!out || !path) return st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_writer_begin: NULL argument");
  *out = NULL;
  planned *plan;
  st_buf header = {0};
  gr_st_writer *w = gr_calloc(1, sizeof *w);
  if (!w) return st_fail(GR_ST_IO, GR_ENOMEM, "safetensors writer: out of memory");
  w->file.fd = -1;
  gr_status st = plan_file(entries, n, meta, n_meta, &plan, &header, &w->data_len);
  if (!st) st = make_slots(w, plan, n);
  if (!st) st = st_atomic_open(&w->file, path);
  if (!st) {
    w->data_start = header.len;
    st = st_atomic_pwrite(&w->file, header.p, header.len, 0);
  }
  gr_free(plan);
  gr_free(header.p);
  if (st) {
    gr_st_writer_abort(w);
    return st;
  }
  *out = w;
  return st_ok();
}

static int cmp_slot_name(const void *a, const void *b) { return strcmp(((const slot *)a)->name, ((const slot *)b)->name); }

static slot *find_slot(gr_st_writer *w, const char *name) {
  slot probe = {.name = (char *)name};
  return bsearch(&probe, w->slots, w->n, sizeof *w->slots, cmp_slot_name);
}

static gr_status slot_for_write(gr_st_writer *w, const char *name, slot **out) {
  if (!w || !name) return st_fail(GR_ST_BAD_ARG, GR_EARG, "safetensors writer: NULL argument");
  *out = find_slot(w, name);
  if (!*out)
    return st_fail(GR_ST_NOT_FOUND, GR_ENOTFOUND, "%s: tensor '%s' was not declared at begin", w->file.target, name);
  if ((*out)->written && (*out)->nbytes)
    return st_fail(GR_ST_BAD_ARG, GR_ESTATE, "%s: tensor '%s' written twice", w->file.target, name);
  return GR_OK;
}

gr_status gr_st_writer_write(gr_st_writer *w, const char *name, const void *bytes, uint64_t nbytes) {
  slot *s;
  gr_status st = slot_for_write(w, name, &s);
  if (st) return st;
  if (nbytes != s->nbytes || (nbytes && !bytes))
    return st_fail(GR_ST_BAD_ARG, GR_ESHAPE, "%s: tensor '%s' needs %llu bytes, got %llu", w->file.target, name,
                   (unsigned long long)s->nbytes, (unsigned long long)nbytes);
  st = st_atomic_pwrite(&w->file, bytes, (size_t)nbytes, w->data_start + s->offset);
  if (!st) s->written = true;
  return st;
}

gr_status gr_st_writer_write_f32(gr_st_writer *w, const char *name, const float *src, uint64_t numel) {
  slot *s;
  gr_status st = slot_for_write(w, name, &s);
  if (st) return st;
  unsigned esize = gr_dtype_bits(s->dtype) / 8;
  if (s->dtype != GR_DT_F32 && s->dtype != GR_DT_F64 && s->dtype != GR_DT_F16 && s->dtype != GR_DT_BF16)
    return st_fail(GR_ST_UNSUPPORTED_DTYPE, GR_EUNSUPPORTED, "%s: tensor '%s': cannot write f32 values as %s",
                   w->file.target, name, gr_dtype_name(s->dtype));
  if (numel * esize != s->nbytes || (numel && !src))
    return st_fail(GR_ST_BAD_ARG, GR_ESHAPE, "%s: tensor '%s' needs %llu elements, got %llu", w->file.target, name,
                   (unsigned long long)(s->nbytes / esize), (unsigned long long)numel);
  enum { CHUNK = 1 << 16 };
  uint8_t *tmp = gr_malloc((size_t)CHUNK * esize);
  if (!tmp) return st_fail(GR_ST_IO, GR_ENOMEM, "safetensors writer: out of memory");
  for (uint64_t i = 0; i < numel && !st; i += CHUNK) {
    uint64_t k = numel - i < CHUNK ? numel - i : CHUNK;
    st = gr_dtype_from_f32(s->dtype, src + i, tmp, (int64_t)k);
    if (!st) st = st_atomic_pwrite(&w->file, tmp, (size_t)(k * esize), w->data_start + s->offset + i * esize);
  }
  gr_free(tmp);
  if (!st) s->written = true;
  return st;
}

gr_status gr_st_writer_finish(gr_st_writer *w) {
  if (!w) return st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_writer_finish: NULL writer");
  for (size_t i = 0; i < w->n; i++)
    if (!w->slots[i].written) {
      gr_status st = st_fail(GR_ST_BAD_ARG, GR_ESTATE, "%s: tensor '%s' was never written", w->file.target,
                             w->slots[i].name);
      gr_st_writer_abort(w);
      return st;
    }
  gr_status st = GR_OK;
  if (ftruncate(w->file.fd, (off_t)(w->data_start + w->data_len)))
    st = st_fail(GR_ST_IO, GR_EIO, "%s: truncate failed", w->file.target);
  if (!st) st = st_atomic_commit(&w->file);
  gr_st_writer_abort(w); /* frees; the temp file is gone (renamed or removed) */
  return st ? st : st_ok();
}

gr_status gr_st_save(const char *path, const gr_st_entry *entries, const void *const *datas, size_t n,
                     const gr_st_kv *meta, size_t n_meta) {
  gr_st_writer *w;
  gr_status st = gr_st_writer_begin(path, entries, n, meta, n_meta, &w);
  if (st) return st;
  for (size_t i = 0; i < n && !st; i++) {
    slot *s = find_slot(w, entries[i].name);
    st = gr_st_writer_write(w, entries[i].name, datas ? datas[i] : NULL, s->nbytes);
  }
  if (st) {
    gr_st_writer_abort(w);
    return st;
  }
  return gr_st_writer_finish(w);
}
