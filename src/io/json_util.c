/* io/json_util.c — cJSON parsing with duplicate-key, number-range and
 * trailing-byte checks (see json_util.h). */
#include "io/json_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/tensor.h"

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

gr_status io_json_check(const cJSON *j, const char *what) {
  if (cJSON_IsNumber(j) && !isfinite(j->valuedouble))
    return gr_error(GR_EFORMAT, "%s: number out of range%s%.200s", what, j->string ? " at key " : "", j->string ? j->string : "");
  if (!j || (!cJSON_IsObject(j) && !cJSON_IsArray(j))) return GR_OK;
  size_t n = 0;
  for (const cJSON *c = j->child; c; c = c->next) n++;
  if (cJSON_IsObject(j) && n > 1) {
    const char **keys = gr_malloc(n * sizeof *keys);
    if (!keys) return gr_error(GR_ENOMEM, "%s: out of memory", what);
    size_t k = 0;
    for (const cJSON *c = j->child; c; c = c->next) keys[k++] = c->string ? c->string : "";
    qsort(keys, n, sizeof *keys, cmp_str_ptr);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
      if (!strcmp(keys[i], keys[i - 1])) dup = keys[i];
    gr_status st = dup ? gr_error(GR_EFORMAT, "%s: duplicate key '%.200s'", what, dup) : GR_OK;
    gr_free(keys);
    if (st) return st;
  }
  for (const cJSON *c = j->child; c; c = c->next) {
    gr_status st = io_json_check(c, what);
    if (st) return st;
  }
  return GR_OK;
}

gr_status io_json_parse(const char *text, size_t len, const char *what, cJSON **out) {
  *out = NULL;
  const char *end = NULL;
  if (!text) return gr_error(GR_EARG, "%s: NULL text", what);
  if (memchr(text, 0, len)) return gr_error(GR_EFORMAT, "%s: NUL byte in JSON text", what);
  cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
  if (!j) {
    const char *at = cJSON_GetErrorPtr();
    long off = at && at >= text && at <= text + len ? (long)(at - text) : -1;
    return gr_error(GR_EFORMAT, "%s: invalid JSON near byte %ld", what, off);
  }
  while (end && end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
  if (end && end < text + len) {
    cJSON_Delete(j);
    return gr_error(GR_EFORMAT, "%s: trailing characters after the JSON value at byte %ld", what,
                    (long)(end - text));
  }
  gr_status st = io_json_check(j, what);
  if (st) {
    cJSON_Delete(j);
    return st;
  }
  *out = j;
  return GR_OK;
}
