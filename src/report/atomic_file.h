/* report/atomic_file.h — internal: the report writers print into a memory
 * stream, then hand the bytes to gr_write_file_atomic (graft/fileio.h), so
 * a half-written report.html or plot is never left behind. */
#ifndef GRAFT_REPORT_ATOMIC_FILE_H
#define GRAFT_REPORT_ATOMIC_FILE_H
#include <stdio.h>

#include "graft/status.h"

typedef struct report_atomic_file {
  FILE *fp;    /* write here (a memory stream) */
  char *buf;   /* the stream's buffer */
  size_t len;
  char *path;  /* final name */
} report_atomic_file;

/* Opens the memory stream for path. */
gr_status report_atomic_open(report_atomic_file *f, const char *path);
/* Closes the stream and writes it over path atomically; on any failure
 * (including an earlier write error on f->fp) the old file stays and GR_EIO
 * (or GR_ENOMEM) is returned. Always releases f. */
gr_status report_atomic_commit(report_atomic_file *f);
/* Drops what was written; the target is untouched. Releases f. */
void report_atomic_abort(report_atomic_file *f);

#endif
