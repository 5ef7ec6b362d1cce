/* graft/status.h — result codes and the per-thread error message.
 *
 * Every fallible library function returns a gr_status (or NULL for
 * constructors) and leaves a human-readable message, naming the op, tensor,
 * file or field involved, in a thread-local buffer read by gr_last_error().
 * Library code never prints or exits. Enum values are only ever appended. */
#ifndef GRAFT_STATUS_H
#define GRAFT_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gr_status {
  GR_OK = 0,
  GR_EARG = 1,         /* bad argument: NULL, out of range, bad option */
  GR_ESHAPE = 2,       /* incompatible or invalid tensor shapes */
  GR_ENOMEM = 3,       /* allocation failed or size absurd */
  GR_EIO = 4,          /* open/read/write/rename failed */
  GR_EFORMAT = 5,      /* malformed file contents */
  GR_ENUMERIC = 6,     /* NaN/Inf where finite values are required */
  GR_EUNSUPPORTED = 7, /* valid request graft does not implement */
  GR_ESTATE = 8,       /* call out of order (e.g. backward without a tape) */
  GR_ENOTFOUND = 9,    /* named tensor, file, key or module not present */
} gr_status;

/* Short static description of a status code ("shape mismatch", ...). */
const char *gr_strerror(gr_status s);

/* The last error message set on this thread ("" when none). */
const char *gr_last_error(void);

/* Records a message for this thread and returns s, so callers can write
 * `return gr_error(GR_ESHAPE, "matmul: ...", ...);`. */
gr_status gr_error(gr_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The status of the last gr_error() on this thread (GR_OK after clear). */
gr_status gr_last_status(void);
void gr_clear_error(void);

/* Always-on internal invariant check: aborts with file:line. Never used for
 * anything a caller or a file can get wrong. */
void gr_assert_fail(const char *expr, const char *file, int line);
#define GR_ASSERT(x) ((x) ? (void)0 : gr_assert_fail(#x, __FILE__, __LINE__))

#ifdef __cplusplus
}
#endif
#endif
