/* report/jsonl.c — JSON Lines: append one object per line (flushed, so a
 * crash keeps every finished line) and read a file back as a cJSON array.
 * metrics.jsonl and results.jsonl are both written through here. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graft/report.h"

struct gr_jsonl {
  FILE *fp;
  char path[512];
};

gr_jsonl *gr_jsonl_open(const char *path, bool truncate) {
  if (!path || !*path) {
    gr_error(GR_EARG, "jsonl: empty path");
    return NULL;
  }
  gr_jsonl *w = calloc(1, sizeof *w);
  if (!w) {
    gr_error(GR_ENOMEM, "jsonl: %s: out of memory", path);
    return NULL;
  }
  w->fp = fopen(path, truncate ? "w" : "a");
  if (!w->fp) {
    gr_error(GR_EIO, "jsonl: cannot open %s: %s", path, strerror(errno));
    free(w);
    return NULL;
  }
  snprintf(w->path, sizeof w->path, "%s", path);
  return w;
}

gr_status gr_jsonl_write(gr_jsonl *w, const cJSON *obj) {
  if (!w) return gr_error(GR_EARG, "jsonl write: NULL writer");
  if (!cJSON_IsObject(obj)) return gr_error(GR_EARG, "jsonl write to %s: value is not a JSON object", w->path);
  char *text = cJSON_PrintUnformatted(obj);
  if (!text) return gr_error(GR_ENOMEM, "jsonl write to %s: cannot serialise", w->path);
  int ok = fputs(text, w->fp) >= 0 && fputc('\n', w->fp) != EOF && fflush(w->fp) == 0;
  free(text);
  if (!ok) return gr_error(GR_EIO, "jsonl write to %s failed: %s", w->path, strerror(errno));
  return GR_OK;
}

gr_status gr_jsonl_close(gr_jsonl *w) {
  if (!w) return GR_OK;
  int bad = ferror(w->fp) || fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0;
  bad |= fclose(w->fp) != 0;
  gr_status s = bad ? gr_error(GR_EIO, "jsonl: closing %s failed: %s", w->path, strerror(errno)) : GR_OK;
  free(w);
  return s;
}

/* Reads all of fp into a NUL-terminated malloc'd buffer. */
static char *slurp(FILE *fp, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n - 1, fp);
    if (n < cap - 1) break;
    char *bigger = realloc(buf, cap * 2);
    if (!bigger) {
      free(buf);
      return NULL;
    }
    buf = bigger;
    cap *= 2;
  }
  if (!buf) return NULL;
  buf[n] = 0;
  *len = n;
  return buf;
}

static bool is_blank(const char *s) {
  for (; *s; s++)
    if (*s != ' ' && *s != '\t' && *s != '\r') return false;
  return true;
}

/* Parses the lines of text (modified in place) into arr. */
static gr_status parse_lines(const char *path, char *text, size_t len, cJSON *arr) {
  char *line = text;
  for (int lineno = 1; line < text + len; lineno++) {
    char *nl = strchr(line, '\n');
    bool last_unterminated = nl == NULL;
    if (nl) *nl = 0;
    if (strlen(line) != (size_t)((nl ? nl : text + len) - line))
      return gr_error(GR_EFORMAT, "%s:%d: NUL byte in a JSON line", path, lineno);
    if (!is_blank(line)) {
      cJSON *obj = cJSON_Parse(line);
      if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        if (last_unterminated) return GR_OK; /* truncated by a killed writer */
        return gr_error(GR_EFORMAT, "%s:%d: not a JSON object", path, lineno);
      }
      cJSON_AddItemToArray(arr, obj);
    }
    if (!nl) break;
    line = nl + 1;
  }
  return GR_OK;
}

gr_status gr_jsonl_read(const char *path, cJSON **out) {
  if (!out) return gr_error(GR_EARG, "jsonl read: NULL output");
  *out = NULL;
  if (!path) return gr_error(GR_EARG, "jsonl read: NULL path");
  FILE *fp = fopen(path, "rb");
  if (!fp) return gr_error(errno == ENOENT ? GR_ENOTFOUND : GR_EIO, "jsonl: cannot open %s: %s", path, strerror(errno));
  size_t len = 0;
  char *text = slurp(fp, &len);
  int read_err = ferror(fp);
  fclose(fp);
  if (!text) return gr_error(GR_ENOMEM, "jsonl: %s: out of memory", path);
  if (read_err) {
    free(text);
    return gr_error(GR_EIO, "jsonl: reading %s failed", path);
  }
  cJSON *arr = cJSON_CreateArray();
  gr_status s = arr ? parse_lines(path, text, len, arr) : gr_error(GR_ENOMEM, "jsonl: %s: out of memory", path);
  free(text);
  if (s != GR_OK) {
    cJSON_Delete(arr);
    return s;
  }
  *out = arr;
  return GR_OK;
}
