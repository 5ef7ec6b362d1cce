/* graft/fileio.h — the one way graft replaces a file on disk (and reads one whole).
 * The bytes go to a temporary file in the target's directory, which is
 * fsynced and renamed over the target (then the directory is fsynced): a
 * crash or error at any point leaves the old file or the new one, never a
 * mix, and an existing good file is never lost. Streaming writers
 * (safetensors) use the same mechanism internally. */
#ifndef GRAFT_FILEIO_H
#define GRAFT_FILEIO_H
#include <stddef.h>

#include "graft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Replaces path with the n bytes at buf. GR_EIO naming path on failure. */
gr_status gr_write_file_atomic(const char *path, const void *buf, size_t n);
/* Reads a whole regular file of at most max_bytes into a gr_malloc'd,
 * NUL-terminated buffer (*len bytes before the NUL; free with gr_free).
 * GR_ENOTFOUND when absent, GR_EFORMAT when larger, GR_EIO otherwise. */
gr_status gr_read_file(const char *path, size_t max_bytes, char **out, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
