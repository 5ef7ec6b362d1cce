/* io/st_internal.h — internals shared by the safetensors reader, writer and
 * sharded layer: error-kind recording, the parsed-file struct, the strict
 * header JSON parser and the atomic temp-file helper. Not a public API. */
#ifndef GRAFT_IO_ST_INTERNAL_H
#define GRAFT_IO_ST_INTERNAL_H
#include <stdio.h>

#include "graft/safetensors.h"

/* Records kind for gr_st_last_err() and the message for gr_last_error();
 * returns st. */
gr_status st_fail(gr_st_err kind, gr_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Marks success (kind GR_ST_OK) and returns GR_OK. */
gr_status st_ok(void);

struct gr_st_file {
  char *path;               /* for messages; "<buffer>" when parsed in memory */
  const uint8_t *base;      /* whole file (data pointers point here) */
  uint64_t len;
  const uint8_t *head;      /* the first head_len bytes: base, or a copy read with pread */
  uint64_t head_len;        /* >= 8 + N once the prefix is valid (or len when < 8) */
  uint8_t *head_copy;       /* owned copy when the header was read, not mapped */
  void *mapping;            /* non-NULL when mmap'd (unmapped on close) */
  uint64_t header_len;      /* N */
  gr_st_tensor *tensors;    /* sorted by data offsets */
  size_t n_tensors;
  size_t *by_name;          /* indices into tensors, sorted by name */
  gr_st_kv *meta;           /* sorted by key */
  size_t n_meta;
  char *strings;            /* decoded names and metadata, NUL-terminated */
  uint64_t *dims;           /* all shapes, back to back */
};

/* Parses and validates the header in f->head (whose path/len/head/head_len
 * are set); data pointers are set from f->base, which may be NULL until the
 * header is valid (then st_set_data_pointers()). */
gr_status st_parse_header(gr_st_file *f);
void st_set_data_pointers(gr_st_file *f);
/* UTF-8 as Rust's str::from_utf8 accepts it (no overlongs, surrogates or
 * code points above U+10FFFF); *bad_at gets the first bad byte. */
bool st_utf8_valid(const uint8_t *s, size_t n, size_t *bad_at);
/* ---- small utilities (st_util.c) ---------------------------------------- */
/* A gr_malloc'd copy of s (NULL when out of memory). */
char *st_strdup(const char *s);
/* Grows *p (elements of elem bytes, capacity *cap) to hold need elements. */
gr_status st_grow(void **p, size_t *cap, size_t need, size_t elem);

/* A growing NUL-terminated byte buffer; oom sticks once an append fails. */
typedef struct st_buf {
  char *p;
  size_t len, cap;
  bool oom;
} st_buf;
void st_buf_put(st_buf *b, const char *s, size_t n);
void st_buf_puts(st_buf *b, const char *s);
void st_buf_u64(st_buf *b, uint64_t v);
/* A JSON string as serde_json writes it: '"' '\\' and control characters
 * escaped (\b \f \n \r \t, else \u00xx lowercase), the rest raw UTF-8. */
void st_buf_json_string(st_buf *b, const char *s);

/* out = dir "/" file; GR_EARG when it does not fit in n bytes. */
gr_status st_path_join(char *out, size_t n, const char *dir, const char *file);
/* Reads a whole file (at most max_bytes) into a gr_malloc'd NUL-terminated
 * buffer. GR_ENOTFOUND if absent, GR_EIO, GR_EFORMAT if larger than max. */
gr_status st_read_file(const char *path, size_t max_bytes, char **out, size_t *len);

/* ---- atomic file: temp in the same directory, fsync, rename ---------- */
typedef struct st_atomic {
  char *target;
  char *tmp;
  int fd;
} st_atomic;
gr_status st_atomic_open(st_atomic *a, const char *target);
gr_status st_atomic_pwrite(st_atomic *a, const void *buf, size_t n, uint64_t off);
/* fsync, rename, fsync the directory; closes. On failure removes the temp. */
gr_status st_atomic_commit(st_atomic *a);
void st_atomic_discard(st_atomic *a);
/* Writes a whole small file (e.g. JSON) atomically. */
gr_status st_atomic_write_file(const char *target, const void *buf, size_t n);

#endif
