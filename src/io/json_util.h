/* io/json_util.h — strict parsing of small JSON documents (PEFT configs,
 * sharded-model indexes) with cJSON plus the checks cJSON does not make:
 * duplicate keys (cJSON keeps both, Python keeps the last: a parser
 * differential) are rejected, as are numbers beyond double range and
 * trailing bytes. */
#ifndef GRAFT_IO_JSON_UTIL_H
#define GRAFT_IO_JSON_UTIL_H
#include <cjson/cJSON.h>
#include <stddef.h>

#include "graft/status.h"

/* Parses text[0..len) (need not be NUL-terminated). GR_EFORMAT naming `what`
 * and the byte offset on a syntax error or a duplicate key. */
gr_status io_json_parse(const char *text, size_t len, const char *what, cJSON **out);
/* GR_EFORMAT naming the first key that appears twice in an object of j, or
 * a number that overflowed to Inf (e.g. 1e999: it could not be written back). */
gr_status io_json_check(const cJSON *j, const char *what);

#endif
