/* io/atomic_file.c — crash-safe file replacement: write to a temporary file
 * in the target's directory, fsync it, rename it over the target, fsync the
 * directory. A reader (or an mmap) of the old file keeps seeing the old file;
 * a crash at any point leaves either the old or the new file, never a mix
 * (at worst a stray ".<name>.tmp.*" file beside it). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "graft/tensor.h"
#include "graft/fileio.h"
#include "io/st_internal.h"

gr_status st_atomic_open(st_atomic *a, const char *target) {
  static atomic_uint counter;
  memset(a, 0, sizeof *a);
  a->fd = -1;
  if (!target || !target[0]) return st_fail(GR_ST_BAD_ARG, GR_EARG, "atomic write: empty path");
  const char *slash = strrchr(target, '/');
  size_t dir_len = slash ? (size_t)(slash - target + 1) : 0;
  size_t n = strlen(target) + 64;
  a->target = st_strdup(target);
  a->tmp = gr_malloc(n);
  if (!a->target || !a->tmp) {
    st_atomic_discard(a);
    return st_fail(GR_ST_IO, GR_ENOMEM, "%s: out of memory", target);
  }
  snprintf(a->tmp, n, "%.*s.%s.tmp.%ld.%u", (int)dir_len, target, target + dir_len, (long)getpid(),
           atomic_fetch_add(&counter, 1));
  a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (a->fd < 0) {
    gr_status st = st_fail(GR_ST_IO, GR_EIO, "%s: cannot create temporary file %s: %s", target, a->tmp,
                           strerror(errno));
    gr_free(a->tmp);
    a->tmp = NULL;
    st_atomic_discard(a);
    return st;
  }
  return GR_OK;
}

gr_status st_atomic_pwrite(st_atomic *a, const void *buf, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = pwrite(a->fd, (const char *)buf + done, n - done, (off_t)(off + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return st_fail(GR_ST_IO, GR_EIO, "%s: write failed: %s", a->target, strerror(errno));
    done += (size_t)w;
  }
  return GR_OK;
}

static void fsync_dir(const char *target) {
  const char *slash = strrchr(target, '/');
  char dir[4096];
  if (!slash) snprintf(dir, sizeof dir, ".");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash == target ? 1 : slash - target), target);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd); /* best effort: some file systems refuse directory fsync */
    close(fd);
  }
}

gr_status st_atomic_commit(st_atomic *a) {
  gr_status st = GR_OK;
  if (fsync(a->fd)) st = st_fail(GR_ST_IO, GR_EIO, "%s: fsync failed: %s", a->target, strerror(errno));
  if (close(a->fd) && !st) st = st_fail(GR_ST_IO, GR_EIO, "%s: close failed: %s", a->target, strerror(errno));
  a->fd = -1;
  if (!st && rename(a->tmp, a->target))
    st = st_fail(GR_ST_IO, GR_EIO, "%s: rename from %s failed: %s", a->target, a->tmp, strerror(errno));
  if (!st) {
    fsync_dir(a->target);
    gr_free(a->tmp);
    a->tmp = NULL; /* renamed: nothing to remove */
  }
  st_atomic_discard(a);
  return st;
}

void st_atomic_discard(st_atomic *a) {
  if (a->fd >= 0) close(a->fd);
  if (a->tmp) unlink(a->tmp);
  gr_free(a->tmp);
  gr_free(a->target);
  memset(a, 0, sizeof *a);
  a->fd = -1;
}

gr_status st_atomic_write_file(const char *target, const void *buf, size_t n) {
  st_atomic a;
  gr_status st = st_atomic_open(&a, target);
  if (st) return st;
  st = st_atomic_pwrite(&a, buf, n, 0);
  if (st) {
    st_atomic_discard(&a);
    return st;
  }
  return st_atomic_commit(&a);
}

gr_status gr_write_file_atomic(const char *path, const void *buf, size_t n) {
  return st_atomic_write_file(path, buf, n);
}

gr_status gr_read_file(const char *path, size_t max_bytes, char **out, size_t *len) {
  if (!path || !out || !len) return gr_error(GR_EARG, "read file: NULL argument");
  return st_read_file(path, max_bytes, out, len);
}
