/* io/st_util.c — small helpers of the io layer: string copies, growing
 * arrays and byte buffers, JSON string escaping, whole-file reads. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/tensor.h"
#include "io/st_internal.h"

char *st_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = gr_malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

gr_status st_grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return GR_OK;
  size_t ncap = *cap ? *cap : 16;
  while (ncap < need) ncap *= 2;
  void *q = gr_malloc(ncap * elem);
  if (!q) return st_fail(GR_ST_IO, GR_ENOMEM, "out of memory");
  if (*p) memcpy(q, *p, *cap * elem);
  gr_free(*p);
  *p = q;
  *cap = ncap;
  return GR_OK;
}

void st_buf_put(st_buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (st_grow((void **)&b->p, &b->cap, b->len + n + 1, 1)) {
    b->oom = true;
    return;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

void st_buf_puts(st_buf *b, const char *s) { st_buf_put(b, s, strlen(s)); }

void st_buf_u64(st_buf *b, uint64_t v) {
  char s[24];
  snprintf(s, sizeof s, "%llu", (unsigned long long)v);
  st_buf_puts(b, s);
}

void st_buf_json_string(st_buf *b, const char *s) {
  st_buf_put(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    const char *esc = NULL;
    char u[8];
    switch (*p) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      default:
        if (*p < 0x20) {
          snprintf(u, sizeof u, "\\u%04x", *p);
          esc = u;
        }
    }
    if (esc) st_buf_puts(b, esc);
    else st_buf_put(b, (const char *)p, 1);
  }
  st_buf_put(b, "\"", 1);
}

gr_status st_read_file(const char *path, size_t max_bytes, char **out, size_t *len) {
  *out = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return st_fail(GR_ST_IO, errno == ENOENT ? GR_ENOTFOUND : GR_EIO, "%s: %s", path, strerror(errno));
  struct stat sb;
  gr_status st = GR_OK;
  if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) st = st_fail(GR_ST_IO, GR_EIO, "%s: not a regular file", path);
  else if ((uint64_t)sb.st_size > max_bytes)
    st = st_fail(GR_ST_IO, GR_EFORMAT, "%s: %lld bytes is larger than the %zu allowed", path, (long long)sb.st_size,
                 max_bytes);
  char *b = st ? NULL : gr_malloc((size_t)sb.st_size + 1);
  if (!st && !b) st = st_fail(GR_ST_IO, GR_ENOMEM, "%s: out of memory", path);
  size_t done = 0;
  while (!st && done < (size_t)sb.st_size) {
    ssize_t r = read(fd, b + done, (size_t)sb.st_size - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) st = st_fail(GR_ST_IO, GR_EIO, "%s: read failed", path);
    else done += (size_t)r;
  }
  close(fd);
  if (st) {
    gr_free(b);
    return st;
  }
  b[done] = 0;
  *out = b;
  *len = done;
  return GR_OK;
}

gr_status st_path_join(char *out, size_t n, const char *dir, const char *file) {
  int k = snprintf(out, n, "%s/%s", dir, file);
  if (k < 0 || (size_t)k >= n) return st_fail(GR_ST_BAD_ARG, GR_EARG, "path too long: %.200s/%.200s", dir, file);
  return GR_OK;
}
