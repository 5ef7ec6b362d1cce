/* report/atomic_file.c — temporary file + fsync + rename, so the report
 * writers never leave a half-written report.html or plot behind. */
#include "report/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void release(report_atomic_file *f) {
  free(f->tmp_path);
  free(f->path);
  f->fp = NULL;
  f->tmp_path = f->path = NULL;
}

gr_status report_atomic_open(report_atomic_file *f, const char *path) {
  memset(f, 0, sizeof *f);
  if (!path || !*path) return gr_error(GR_EARG, "atomic write: empty path");
  size_t len = strlen(path);
  f->path = strdup(path);
  f->tmp_path = malloc(len + 16);
  if (!f->path || !f->tmp_path) {
    release(f);
    return gr_error(GR_ENOMEM, "atomic write: %s: out of memory", path);
  }
  snprintf(f->tmp_path, len + 16, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(f->tmp_path);
  if (fd < 0) {
    gr_status s = gr_error(GR_EIO, "cannot create a temporary file for %s: %s", path, strerror(errno));
    release(f);
    return s;
  }
  fchmod(fd, 0644);
  f->fp = fdopen(fd, "w");
  if (!f->fp) {
    close(fd);
    unlink(f->tmp_path);
    release(f);
    return gr_error(GR_EIO, "cannot open a temporary file for %s", path);
  }
  return GR_OK;
}

/* fsync the directory holding path so the rename itself is durable. */
static void sync_parent_dir(const char *path) {
  char *copy = strdup(path);
  if (!copy) return;
  int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  free(copy);
}

gr_status report_atomic_commit(report_atomic_file *f) {
  if (!f->fp) return gr_error(GR_ESTATE, "atomic write: file not open");
  int bad = ferror(f->fp) || fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0;
  int err = errno;
  bad |= fclose(f->fp) != 0;
  f->fp = NULL;
  if (!bad && rename(f->tmp_path, f->path) != 0) {
    bad = 1;
    err = errno;
  }
  if (bad) {
    unlink(f->tmp_path);
    gr_status s = gr_error(GR_EIO, "writing %s failed: %s", f->path, strerror(err));
    release(f);
    return s;
  }
  sync_parent_dir(f->path);
  release(f);
  return GR_OK;
}

void report_atomic_abort(report_atomic_file *f) {
  if (f->fp) fclose(f->fp);
  if (f->tmp_path) unlink(f->tmp_path);
  release(f);
}
