/* io/onnx_pb.h — internal: a protobuf wire-format reader over a byte range.
 * No schema, no allocation: pb_next() walks the fields of one message,
 * checking every tag, varint and length against the bytes left. Used by
 * onnx_model.c; not a general protobuf library (no groups, no writing). */
#ifndef GRAFT_IO_ONNX_PB_H
#define GRAFT_IO_ONNX_PB_H
#include <stddef.h>
#include <stdint.h>

#include "graft/tensor.h"

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

typedef struct pb_msg {
  const uint8_t *p, *end;
} pb_msg;

typedef struct pb_field {
  uint32_t num;          /* field number (>= 1) */
  int wire;              /* PB_* */
  uint64_t v;            /* VARINT value, FIXED32/FIXED64 bits */
  const uint8_t *data;   /* PB_LEN payload */
  size_t len;
} pb_field;

static inline pb_msg pb_sub(const pb_field *f) { return (pb_msg){f->data, f->data + f->len}; }

/* Reads the next field of m into f: 1 when read, 0 at the end of the
 * message, -1 on malformed bytes (GR_EFORMAT message names `where`). */
int pb_next(pb_msg *m, pb_field *f, const char *where);

/* The elements of repeated scalar field `num` of message m, in order, packed
 * or not (both encodings may be mixed, as protobuf allows). `wire` is the
 * element encoding (PB_VARINT, PB_FIXED32 or PB_FIXED64). *vals (arena a) gets
 * the raw values (varint value or fixed bits); *n their count. Counts are
 * bounded by the message length, so a lying count cannot allocate more than
 * 8 bytes per input byte. GR_EFORMAT naming `where` and the field. */
gr_status pb_repeated(pb_msg m, uint32_t num, int wire, gr_arena *a, const char *where,
                      uint64_t **vals, int64_t *n);

/* A copy of a length-delimited payload as a NUL-terminated string in arena a;
 * GR_EFORMAT when it contains a NUL byte (names are C strings). */
gr_status pb_string(const pb_field *f, gr_arena *a, const char *where, const char *field, const char **out);

#endif
