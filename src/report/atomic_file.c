/* report/atomic_file.c — report writers print into a memory stream and
 * commit it with gr_write_file_atomic (see atomic_file.h). */
#include "report/atomic_file.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "graft/fileio.h"

static void release(report_atomic_file *f) {
  if (f->fp) fclose(f->fp);
  free(f->buf);
  free(f->path);
  memset(f, 0, sizeof *f);
}

gr_status report_atomic_open(report_atomic_file *f, const char *path) {
  memset(f, 0, sizeof *f);
  if (!path || !*path) return gr_error(GR_EARG, "atomic write: empty path");
  f->path = strdup(path);
  f->fp = f->path ? open_memstream(&f->buf, &f->len) : NULL;
  if (!f->fp) {
    release(f);
    return gr_error(GR_ENOMEM, "atomic write: %s: out of memory", path);
  }
  return GR_OK;
}

gr_status report_atomic_commit(report_atomic_file *f) {
  if (!f->fp) return gr_error(GR_ESTATE, "atomic write: file not open");
  bool bad = ferror(f->fp) != 0;
  bad |= fclose(f->fp) != 0;
  f->fp = NULL;
  gr_status s = bad ? gr_error(GR_EIO, "writing %s failed: the report could not be formatted", f->path)
                    : gr_write_file_atomic(f->path, f->buf, f->len);
  release(f);
  return s;
}

void report_atomic_abort(report_atomic_file *f) { release(f); }
