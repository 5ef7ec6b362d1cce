/* io/onnx_pb.c — the protobuf wire-format primitives behind the ONNX reader:
 * tags, varints (at most 10 bytes), fixed32/64 and length-delimited fields,
 * each checked against the end of the enclosing message before it is read,
 * and repeated scalar fields in packed or unpacked form. Knows nothing of
 * ONNX's schema (that is onnx_model.c). */
#include "io/onnx_pb.h"

#include <string.h>

/* Reads a varint; 0 when it runs past end or over 10 bytes. */
static int read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
  const uint8_t *p = *pp;
  uint64_t v = 0;
  for (int i = 0; i < 10; i++) {
    if (p >= end) return 0;
    uint8_t b = *p++;
    if (i == 9 && b > 1) return 0; /* bits beyond 64 */
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *pp = p;
      *out = v;
      return 1;
    }
  }
  return 0;
}

static uint64_t read_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

int pb_next(pb_msg *m, pb_field *f, const char *where) {
  if (m->p >= m->end) return 0;
  size_t off_hint = 0;
  uint64_t tag;
  if (!read_varint(&m->p, m->end, &tag)) {
    gr_error(GR_EFORMAT, "%s: truncated or overlong field tag", where);
    return -1;
  }
  f->num = (uint32_t)(tag >> 3);
  f->wire = (int)(tag & 7);
  f->data = NULL;
  f->len = 0;
  f->v = 0;
  if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) {
    gr_error(GR_EFORMAT, "%s: invalid field number %llu", where, (unsigned long long)(tag >> 3));
    return -1;
  }
  size_t left = (size_t)(m->end - m->p);
  switch (f->wire) {
  case PB_VARINT:
    if (read_varint(&m->p, m->end, &f->v)) return 1;
    gr_error(GR_EFORMAT, "%s: field %u: truncated or overlong varint", where, f->num);
    return -1;
  case PB_FIXED64:
  case PB_FIXED32:
    off_hint = f->wire == PB_FIXED64 ? 8 : 4;
    if (left < off_hint) {
      gr_error(GR_EFORMAT, "%s: field %u: %zu-byte value past the end (%zu bytes left)", where, f->num,
               off_hint, left);
      return -1;
    }
    f->v = read_le(m->p, (int)off_hint);
    m->p += off_hint;
    return 1;
  case PB_LEN: {
    uint64_t len;
    if (!read_varint(&m->p, m->end, &len)) {
      gr_error(GR_EFORMAT, "%s: field %u: truncated length", where, f->num);
      return -1;
    }
    left = (size_t)(m->end - m->p);
    if (len > left) {
      gr_error(GR_EFORMAT, "%s: field %u: length %llu past the end (%zu bytes left)", where, f->num,
               (unsigned long long)len, left);
      return -1;
    }
    f->data = m->p;
    f->len = (size_t)len;
    m->p += len;
    return 1;
  }
  default:
    gr_error(GR_EFORMAT, "%s: field %u: unsupported wire type %d", where, f->num, f->wire);
    return -1;
  }
}

/* Elements of one packed payload; -1 when malformed. */
static int64_t packed_count(const pb_field *f, int wire) {
  if (wire == PB_FIXED32) return f->len % 4 ? -1 : (int64_t)(f->len / 4);
  if (wire == PB_FIXED64) return f->len % 8 ? -1 : (int64_t)(f->len / 8);
  int64_t n = 0;
  const uint8_t *p = f->data, *end = f->data + f->len;
  uint64_t v;
  while (p < end) {
    if (!read_varint(&p, end, &v)) return -1;
    n++;
  }
  return n;
}

static void packed_fill(const pb_field *f, int wire, uint64_t *out) {
  const uint8_t *p = f->data, *end = f->data + f->len;
  int64_t k = 0;
  if (wire == PB_VARINT) {
    while (p < end && read_varint(&p, end, &out[k])) k++;
    return;
  }
  int w = wire == PB_FIXED32 ? 4 : 8;
  for (; p < end; p += w) out[k++] = read_le(p, w);
}

gr_status pb_repeated(pb_msg m, uint32_t num, int wire, gr_arena *a, const char *where, uint64_t **vals,
                      int64_t *n) {
  *vals = NULL;
  *n = 0;
  pb_msg it = m;
  pb_field f;
  int r;
  int64_t count = 0;
  while ((r = pb_next(&it, &f, where)) > 0) {
    if (f.num != num) continue;
    if (f.wire == wire) {
      count++;
    } else if (f.wire == PB_LEN) {
      int64_t k = packed_count(&f, wire);
      if (k < 0) return gr_error(GR_EFORMAT, "%s: field %u: malformed packed values", where, num);
      count += k;
    } else {
      return gr_error(GR_EFORMAT, "%s: field %u: wire type %d, expected %d", where, num, f.wire, wire);
    }
  }
  if (r < 0) return GR_EFORMAT;
  if (count == 0) return GR_OK;
  uint64_t *out = gr_arena_alloc(a, (size_t)count * sizeof *out);
  if (!out) return gr_error(GR_ENOMEM, "%s: field %u: out of memory for %lld values", where, num, (long long)count);
  int64_t k = 0;
  it = m;
  while (pb_next(&it, &f, where) > 0) {
    if (f.num != num) continue;
    if (f.wire == wire) {
      out[k++] = f.v;
    } else {
      packed_fill(&f, wire, out + k);
      k += packed_count(&f, wire);
    }
  }
  *vals = out;
  *n = count;
  return GR_OK;
}

gr_status pb_string(const pb_field *f, gr_arena *a, const char *where, const char *field, const char **out) {
  if (f->wire != PB_LEN) return gr_error(GR_EFORMAT, "%s.%s: wire type %d, expected a string", where, field, f->wire);
  if (memchr(f->data, 0, f->len)) return gr_error(GR_EFORMAT, "%s.%s: string contains a NUL byte", where, field);
  char *s = gr_arena_alloc(a, f->len + 1);
  if (!s) return gr_error(GR_ENOMEM, "%s.%s: out of memory", where, field);
  memcpy(s, f->data, f->len);
  s[f->len] = 0;
  *out = s;
  return GR_OK;
}
