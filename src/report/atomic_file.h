/* report/atomic_file.h — internal: write a file so that an existing good
 * file is never lost (temporary file in the same directory, fsync, rename).
 * Used by the SVG and HTML writers. */
#ifndef GRAFT_REPORT_ATOMIC_FILE_H
#define GRAFT_REPORT_ATOMIC_FILE_H
#include <stdio.h>

#include "graft/status.h"

typedef struct report_atomic_file {
  FILE *fp;        /* write here */
  char *tmp_path;  /* "<path>.tmp.XXXXXX" */
  char *path;      /* final name */
} report_atomic_file;

/* Creates the temporary file next to path. GR_EIO naming path on failure. */
gr_status report_atomic_open(report_atomic_file *f, const char *path);
/* Flushes, fsyncs and renames over the target; on any failure (including an
 * earlier write error on f->fp) removes the temporary and returns GR_EIO.
 * Always releases f. */
gr_status report_atomic_commit(report_atomic_file *f);
/* Abandons the write: closes and removes the temporary. */
void report_atomic_abort(report_atomic_file *f);

#endif
