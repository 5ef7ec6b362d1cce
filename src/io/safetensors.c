/* io/safetensors.c — opening safetensors files: the header is read with
 * pread and validated, then the file is mapped read-only so tensor data is
 * paged in only when touched; lookups, metadata and conversion to f32. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/tensor.h"
#include "io/st_internal.h"

void gr_st_close(gr_st_file *f) {
  if (!f) return;
  if (f->mapping) munmap(f->mapping, (size_t)f->len);
  gr_free(f->head_copy);
  gr_free(f->path);
  gr_free(f->tensors);
  gr_free(f->by_name);
  gr_free(f->meta);
  gr_free(f->strings);
  gr_free(f->dims);
  gr_free(f);
}

static gr_st_file *file_new(const char *what) {
  gr_st_file *f = gr_calloc(1, sizeof *f);
  if (f) f->path = st_strdup(what);
  if (!f || !f->path) {
    gr_st_close(f);
    st_fail(GR_ST_IO, GR_ENOMEM, "%s: out of memory", what);
    return NULL;
  }
  return f;
}

gr_status gr_st_parse(const void *buf, size_t len, const char *what, gr_st_file **out) {
  if (!out) return st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_parse: NULL out");
  *out = NULL;
  if (!buf && len) return st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_parse: NULL buffer");
  gr_st_file *f = file_new(what ? what : "<buffer>");
  if (!f) return GR_ENOMEM;
  f->base = f->head = buf;
  f->len = f->head_len = len;
  gr_status st = st_parse_header(f);
  if (st) {
    gr_st_close(f);
    return st;
  }
  st_set_data_pointers(f);
  *out = f;
  return GR_OK;
}

static gr_status read_exact(int fd, void *buf, size_t n, uint64_t off, const char *path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return st_fail(GR_ST_IO, GR_EIO, "%s: read failed: %s", path, r ? strerror(errno) : "file shrank");
    done += (size_t)r;
  }
  return GR_OK;
}

/* Reads the 8-byte prefix and, when its length is plausible, the header. */
static gr_status read_header(gr_st_file *f, int fd) {
  uint8_t prefix[8] = {0};
  size_t first = f->len < 8 ? (size_t)f->len : 8;
  if (read_exact(fd, prefix, first, 0, f->path)) return GR_EIO;
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | prefix[i];
  size_t want = first;
  if (f->len >= 8 && n <= GR_ST_MAX_HEADER && n <= f->len - 8) want = 8 + (size_t)n;
  f->head_copy = gr_malloc(want + 1);
  if (!f->head_copy) return st_fail(GR_ST_IO, GR_ENOMEM, "%s: out of memory for the header", f->path);
  memcpy(f->head_copy, prefix, first);
  if (want > 8 && read_exact(fd, f->head_copy + 8, want - 8, 8, f->path)) return GR_EIO;
  f->head = f->head_copy;
  f->head_len = want;
  return GR_OK;
}

static gr_status open_fd(gr_st_file *f, int fd) {
  struct stat sb;
  if (fstat(fd, &sb)) return st_fail(GR_ST_IO, GR_EIO, "%s: stat failed: %s", f->path, strerror(errno));
  if (!S_ISREG(sb.st_mode)) return st_fail(GR_ST_IO, GR_EIO, "%s: not a regular file", f->path);
  f->len = (uint64_t)sb.st_size;
  gr_status st = read_header(f, fd);
  if (!st) st = st_parse_header(f);
  if (st) return st;
  void *m = mmap(NULL, (size_t)f->len, PROT_READ, MAP_PRIVATE, fd, 0);
  if (m == MAP_FAILED) return st_fail(GR_ST_IO, GR_EIO, "%s: mmap failed: %s", f->path, strerror(errno));
  f->mapping = m;
  f->base = m;
  st_set_data_pointers(f);
  gr_free(f->head_copy); /* the header is no longer needed: names were copied */
  f->head_copy = NULL;
  f->head = f->base;
  return GR_OK;
}

gr_status gr_st_open(const char *path, gr_st_file **out) {
  if (!out || !path) return st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_open: NULL argument");
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return st_fail(GR_ST_IO, errno == ENOENT ? GR_ENOTFOUND : GR_EIO, "%s: %s", path, strerror(errno));
  gr_st_file *f = file_new(path);
  gr_status st = f ? open_fd(f, fd) : GR_ENOMEM;
  close(fd);
  if (st) {
    gr_st_close(f);
    return st;
  }
  *out = f;
  return st_ok();
}

const char *gr_st_path(const gr_st_file *f) { return f ? f->path : NULL; }
size_t gr_st_count(const gr_st_file *f) { return f ? f->n_tensors : 0; }
const gr_st_tensor *gr_st_at(const gr_st_file *f, size_t i) {
  return f && i < f->n_tensors ? &f->tensors[i] : NULL;
}
uint64_t gr_st_header_len(const gr_st_file *f) { return f ? f->header_len : 0; }
uint64_t gr_st_file_len(const gr_st_file *f) { return f ? f->len : 0; }
size_t gr_st_metadata_count(const gr_st_file *f) { return f ? f->n_meta : 0; }

void gr_st_metadata_at(const gr_st_file *f, size_t i, const char **key, const char **value) {
  bool ok = f && i < f->n_meta;
  if (key) *key = ok ? f->meta[i].key : NULL;
  if (value) *value = ok ? f->meta[i].value : NULL;
}

static int cmp_kv_key(const void *a, const void *b) {
  return strcmp(((const gr_st_kv *)a)->key, ((const gr_st_kv *)b)->key);
}

const char *gr_st_metadata_get(const gr_st_file *f, const char *key) {
  if (!f || !key) return NULL;
  gr_st_kv probe = {key, NULL};
  const gr_st_kv *kv = bsearch(&probe, f->meta, f->n_meta, sizeof *f->meta, cmp_kv_key);
  return kv ? kv->value : NULL;
}

const gr_st_tensor *gr_st_find(const gr_st_file *f, const char *name) {
  if (!f || !name) {
    st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_find: NULL argument");
    return NULL;
  }
  size_t lo = 0, hi = f->n_tensors;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(f->tensors[f->by_name[mid]].name, name);
    if (!c) return &f->tensors[f->by_name[mid]];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  st_fail(GR_ST_NOT_FOUND, GR_ENOTFOUND, "%s: no tensor named '%s'", f->path, name);
  return NULL;
}

gr_status gr_st_read_f32(const gr_st_tensor *t, float *dst, uint64_t dst_numel) {
  if (!t || (!dst && t->numel)) return st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_read_f32: NULL argument");
  if (dst_numel < t->numel)
    return st_fail(GR_ST_BAD_ARG, GR_ESHAPE, "tensor '%s': %llu elements do not fit a buffer of %llu", t->name,
                   (unsigned long long)t->numel, (unsigned long long)dst_numel);
  if (!gr_dtype_to_f32_supported(t->dtype))
    return st_fail(GR_ST_UNSUPPORTED_DTYPE, GR_EUNSUPPORTED, "tensor '%s': unsupported dtype %s for f32 conversion",
                   t->name, gr_dtype_name(t->dtype));
  return gr_dtype_to_f32(t->dtype, t->data, dst, (int64_t)t->numel);
}
