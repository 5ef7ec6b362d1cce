/* core/status.c — status strings and the per-thread error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "graft/status.h"

static _Thread_local char last_msg[1024];
static _Thread_local gr_status last_status;

const char *gr_strerror(gr_status s) {
  switch (s) {
    case GR_OK: return "ok";
    case GR_EARG: return "invalid argument";
    case GR_ESHAPE: return "shape mismatch";
    case GR_ENOMEM: return "out of memory";
    case GR_EIO: return "i/o error";
    case GR_EFORMAT: return "malformed file";
    case GR_ENUMERIC: return "non-finite value";
    case GR_EUNSUPPORTED: return "unsupported";
    case GR_ESTATE: return "invalid state";
    case GR_ENOTFOUND: return "not found";
  }
  return "unknown status";
}

const char *gr_last_error(void) { return last_msg; }
gr_status gr_last_status(void) { return last_status; }

void gr_clear_error(void) {
  last_msg[0] = 0;
  last_status = GR_OK;
}

gr_status gr_error(gr_status s, const char *fmt, ...) {
  /* formatted aside first: callers may pass gr_last_error() itself to add
   * context, and vsnprintf into its own argument is undefined */
  char msg[sizeof last_msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  memcpy(last_msg, msg, sizeof msg);
  last_status = s;
  return s;
}

void gr_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "graft: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
  abort();
}
