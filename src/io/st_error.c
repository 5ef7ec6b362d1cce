/* io/st_error.c — the safetensors error kinds: the per-thread last kind and
 * the names of each kind (graft's and the reference crate's). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "io/st_internal.h"

static _Thread_local gr_st_err last_kind;

gr_status st_fail(gr_st_err kind, gr_status st, const char *fmt, ...) {
  char msg[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  last_kind = kind;
  return gr_error(st, "%s", msg);
}

gr_status st_ok(void) {
  last_kind = GR_ST_OK;
  return GR_OK;
}

gr_st_err gr_st_last_err(void) { return last_kind; }

static const struct {
  const char *name, *rust;
} kinds[GR_ST_ERR_COUNT] = {
    [GR_ST_OK] = {"Ok", NULL},
    [GR_ST_HEADER_TOO_SMALL] = {"HeaderTooSmall", "HeaderTooSmall"},
    [GR_ST_HEADER_TOO_LARGE] = {"HeaderTooLarge", "HeaderTooLarge"},
    [GR_ST_INVALID_HEADER_LENGTH] = {"InvalidHeaderLength", "InvalidHeaderLength"},
    [GR_ST_INVALID_UTF8] = {"InvalidUtf8", "InvalidHeader"},
    [GR_ST_BAD_JSON] = {"BadJson", "InvalidHeaderDeserialization"},
    [GR_ST_NOT_OBJECT] = {"NotObject", "InvalidHeaderDeserialization"},
    [GR_ST_BAD_TENSOR_INFO] = {"BadTensorInfo", "InvalidHeaderDeserialization"},
    [GR_ST_UNKNOWN_DTYPE] = {"UnknownDtype", "InvalidHeaderDeserialization"},
    [GR_ST_BAD_SHAPE] = {"BadShape", "InvalidHeaderDeserialization"},
    [GR_ST_BAD_OFFSETS] = {"BadOffsets", "InvalidHeaderDeserialization"},
    [GR_ST_BAD_METADATA] = {"BadMetadata", "InvalidHeaderDeserialization"},
    [GR_ST_INVALID_OFFSET] = {"InvalidOffset", "InvalidOffset"},
    [GR_ST_VALIDATION_OVERFLOW] = {"ValidationOverflow", "ValidationOverflow"},
    [GR_ST_MISALIGNED_SLICE] = {"MisalignedSlice", "MisalignedSlice"},
    [GR_ST_TENSOR_INVALID_INFO] = {"TensorInvalidInfo", "TensorInvalidInfo"},
    [GR_ST_INCOMPLETE_BUFFER] = {"MetadataIncompleteBuffer", "MetadataIncompleteBuffer"},
    [GR_ST_DUPLICATE_KEY] = {"DuplicateKey", NULL},
    [GR_ST_RESERVED_NAME] = {"ReservedName", NULL},
    [GR_ST_BAD_NAME] = {"BadName", NULL},
    [GR_ST_NOT_FOUND] = {"TensorNotFound", "TensorNotFound"},
    [GR_ST_UNSUPPORTED_DTYPE] = {"UnsupportedDtype", NULL},
    [GR_ST_IO] = {"IoError", "IoError"},
    [GR_ST_BAD_ARG] = {"BadArgument", NULL},
    [GR_ST_BAD_INDEX] = {"BadIndex", NULL},
};

const char *gr_st_err_name(gr_st_err e) {
  return (unsigned)e < GR_ST_ERR_COUNT ? kinds[e].name : "?";
}

const char *gr_st_err_rust(gr_st_err e) {
  return (unsigned)e < GR_ST_ERR_COUNT ? kinds[e].rust : NULL;
}

