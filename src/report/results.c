/* report/results.c — one record per trained run (method x label budget x
 * seed): the in-memory list, its results.jsonl form and the mean ± std
 * summary over seeds that tables and the HTML report show. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/report.h"

void gr_run_result_init(gr_run_result *r) {
  memset(r, 0, sizeof *r);
  snprintf(r->phase, sizeof r->phase, "transfer");
  r->budget = NAN;
  r->n_labels = -1;
  r->accuracy = NAN;
  r->loss = NAN;
  r->trainable_params = -1;
  r->total_params = -1;
  r->seconds = NAN;
  r->peak_rss_bytes = -1;
}

gr_status gr_run_result_set_extra(gr_run_result *r, const char *name, double value) {
  if (!r || !name || !*name || strlen(name) >= sizeof r->extra[0].name)
    return gr_error(GR_EARG, "run metric: name '%s' must have 1..%zu bytes", name ? name : "(null)",
                    sizeof r->extra[0].name - 1);
  int i = 0;
  while (i < r->n_extra && strcmp(r->extra[i].name, name)) i++;
  if (i == GR_RUN_MAX_EXTRA)
    return gr_error(GR_EUNSUPPORTED, "run metric '%s': a run holds at most %d extra metrics", name, GR_RUN_MAX_EXTRA);
  snprintf(r->extra[i].name, sizeof r->extra[i].name, "%s", name);
  r->extra[i].value = value;
  if (i == r->n_extra) r->n_extra++;
  return GR_OK;
}

gr_status gr_results_add(gr_results *rs, const gr_run_result *r) {
  if (!rs || !r) return gr_error(GR_EARG, "results add: NULL argument");
  if (r->n_curve < 0 || (r->n_curve > 0 && !r->curve))
    return gr_error(GR_EARG, "results add: run '%s': curve has %d points but no data", r->method, r->n_curve);
  if (r->n_extra < 0 || r->n_extra > GR_RUN_MAX_EXTRA)
    return gr_error(GR_EARG, "results add: run '%s': n_extra %d outside 0..%d", r->method, r->n_extra,
                    GR_RUN_MAX_EXTRA);
  if (rs->n == rs->cap) {
    int cap = rs->cap ? rs->cap * 2 : 16;
    gr_run_result *bigger = realloc(rs->runs, (size_t)cap * sizeof *bigger);
    if (!bigger) return gr_error(GR_ENOMEM, "results add: out of memory");
    rs->runs = bigger;
    rs->cap = cap;
  }
  gr_run_result copy = *r;
  copy.curve = NULL;
  if (r->n_curve > 0) {
    gr_curve_point *c = malloc((size_t)r->n_curve * sizeof *c);
    if (!c) return gr_error(GR_ENOMEM, "results add: curve of %d points: out of memory", r->n_curve);
    memcpy(c, r->curve, (size_t)r->n_curve * sizeof *c);
    copy.curve = c;
  }
  /* fixed arrays may come unterminated from a careless caller */
  copy.phase[sizeof copy.phase - 1] = copy.method[sizeof copy.method - 1] = 0;
  copy.dataset[sizeof copy.dataset - 1] = 0;
  for (int i = 0; i < copy.n_extra; i++) copy.extra[i].name[sizeof copy.extra[i].name - 1] = 0;
  rs->runs[rs->n++] = copy;
  return GR_OK;
}

void gr_results_free(gr_results *rs) {
  if (!rs) return;
  for (int i = 0; i < rs->n; i++) free((void *)rs->runs[i].curve);
  free(rs->runs);
  memset(rs, 0, sizeof *rs);
}

/* ---- JSON form ---------------------------------------------------------- */

/* A JSON number that reads back as exactly v (the shortest of %.15g..%.17g
 * that round-trips; cJSON's own printer may drop the last bit), or null when
 * v is not finite (JSON has no NaN). */
static cJSON *exact_number(double v) {
  if (!isfinite(v)) return cJSON_CreateNull();
  char buf[40];
  for (int digits = 15; digits <= 17; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (strtod(buf, NULL) == v) break;
  }
  return cJSON_CreateRaw(buf);
}

static void add_num(cJSON *o, const char *key, double v) { cJSON_AddItemToObject(o, key, exact_number(v)); }
/* Integers with -1 meaning unknown; exact up to 2^53. */
static void add_int(cJSON *o, const char *key, int64_t v) { add_num(o, key, v < 0 ? NAN : (double)v); }

static cJSON *curve_to_json(const gr_curve_point *c, int n) {
  cJSON *curve = cJSON_CreateObject();
  cJSON *step = cJSON_AddArrayToObject(curve, "step");
  cJSON *loss = cJSON_AddArrayToObject(curve, "loss");
  cJSON *acc = cJSON_AddArrayToObject(curve, "acc");
  if (!step || !loss || !acc) {
    cJSON_Delete(curve);
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    cJSON_AddItemToArray(step, exact_number((double)c[i].step));
    cJSON_AddItemToArray(loss, exact_number(c[i].loss));
    cJSON_AddItemToArray(acc, exact_number(c[i].acc));
  }
  return curve;
}

cJSON *gr_run_result_to_json(const gr_run_result *r) {
  if (!r) return NULL;
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "type", "run");
  cJSON_AddStringToObject(o, "phase", r->phase);
  cJSON_AddStringToObject(o, "method", r->method);
  cJSON_AddStringToObject(o, "dataset", r->dataset);
  add_num(o, "budget", r->budget);
  add_int(o, "n_labels", r->n_labels);
  add_num(o, "seed", (double)r->seed);
  add_num(o, "accuracy", r->accuracy);
  add_num(o, "loss", r->loss);
  add_int(o, "trainable_params", r->trainable_params);
  add_int(o, "total_params", r->total_params);
  add_num(o, "seconds", r->seconds);
  add_int(o, "peak_rss_bytes", r->peak_rss_bytes);
  cJSON *extra = cJSON_AddObjectToObject(o, "extra");
  for (int i = 0; extra && i < r->n_extra && i < GR_RUN_MAX_EXTRA; i++) add_num(extra, r->extra[i].name, r->extra[i].value);
  cJSON *curve = curve_to_json(r->curve, r->n_curve);
  if (!extra || !curve || !cJSON_AddItemToObject(o, "curve", curve)) {
    cJSON_Delete(curve);
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

gr_status gr_jsonl_write_result(gr_jsonl *w, const gr_run_result *r) {
  if (!w || !r) return gr_error(GR_EARG, "write result: NULL argument");
  cJSON *o = gr_run_result_to_json(r);
  if (!o) return gr_error(GR_ENOMEM, "write result: out of memory");
  gr_status s = gr_jsonl_write(w, o);
  cJSON_Delete(o);
  return s;
}

/* ---- reading results.jsonl ---------------------------------------------- */

typedef struct record_ctx {
  const char *path;
  int index; /* 1-based record number in the file */
} record_ctx;

static gr_status bad_field(const record_ctx *c, const char *field, const char *want) {
  return gr_error(GR_EFORMAT, "%s: record %d: field \"%s\" must be %s", c->path, c->index, field, want);
}

/* A number or null (-> NaN); absent is NaN too unless required. */
static gr_status get_num(const record_ctx *c, const cJSON *o, const char *key, bool required, double *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  *out = NAN;
  if (!v) return required ? bad_field(c, key, "present") : GR_OK;
  if (cJSON_IsNull(v)) return GR_OK;
  if (!cJSON_IsNumber(v)) return bad_field(c, key, "a number or null");
  *out = v->valuedouble;
  return GR_OK;
}

static gr_status get_int(const record_ctx *c, const cJSON *o, const char *key, int64_t *out) {
  double d;
  gr_status s = get_num(c, o, key, false, &d);
  *out = -1;
  if (s != GR_OK || isnan(d)) return s;
  if (d < 0 || d > 9007199254740992.0 || d != floor(d)) return bad_field(c, key, "a whole number >= 0");
  *out = (int64_t)d;
  return GR_OK;
}

static gr_status get_str(const record_ctx *c, const cJSON *o, const char *key, bool required, char *dst, size_t n) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v) return required ? bad_field(c, key, "present") : GR_OK;
  if (!cJSON_IsString(v)) return bad_field(c, key, "a string");
  snprintf(dst, n, "%s", v->valuestring);
  return GR_OK;
}

/* Element i of a curve array: number, or null -> NaN. */
static bool curve_value(const cJSON *arr, int i, double *out) {
  const cJSON *v = cJSON_GetArrayItem(arr, i);
  *out = NAN;
  if (cJSON_IsNull(v)) return true;
  if (!cJSON_IsNumber(v)) return false;
  *out = v->valuedouble;
  return true;
}

/* Parses "curve" into a malloc'd array (*out NULL when absent or empty). */
static gr_status get_curve(const record_ctx *c, const cJSON *o, gr_curve_point **out, int *n_out) {
  *out = NULL;
  *n_out = 0;
  const cJSON *curve = cJSON_GetObjectItemCaseSensitive(o, "curve");
  if (!curve || cJSON_IsNull(curve)) return GR_OK;
  const cJSON *step = cJSON_GetObjectItemCaseSensitive(curve, "step");
  const cJSON *loss = cJSON_GetObjectItemCaseSensitive(curve, "loss");
  const cJSON *acc = cJSON_GetObjectItemCaseSensitive(curve, "acc");
  if (!cJSON_IsArray(step) || !cJSON_IsArray(loss) || !cJSON_IsArray(acc))
    return bad_field(c, "curve", "an object of arrays step, loss, acc");
  int n = cJSON_GetArraySize(step);
  if (cJSON_GetArraySize(loss) != n || cJSON_GetArraySize(acc) != n)
    return bad_field(c, "curve", "arrays of equal length");
  if (n == 0) return GR_OK;
  gr_curve_point *pts = malloc((size_t)n * sizeof *pts);
  if (!pts) return gr_error(GR_ENOMEM, "%s: record %d: curve of %d points: out of memory", c->path, c->index, n);
  for (int i = 0; i < n; i++) {
    double st;
    bool ok = curve_value(step, i, &st) && curve_value(loss, i, &pts[i].loss) && curve_value(acc, i, &pts[i].acc);
    if (!ok || !isfinite(st) || st != floor(st)) {
      free(pts);
      return bad_field(c, "curve", "numbers (whole steps; loss/acc may be null)");
    }
    pts[i].step = (int64_t)st;
  }
  *out = pts;
  *n_out = n;
  return GR_OK;
}

/* "extra": {"name": number|null, ...} (absent: none). */
static gr_status get_extra(const record_ctx *c, const cJSON *o, gr_run_result *r) {
  const cJSON *extra = cJSON_GetObjectItemCaseSensitive(o, "extra");
  if (!extra || cJSON_IsNull(extra)) return GR_OK;
  if (!cJSON_IsObject(extra)) return bad_field(c, "extra", "an object of numbers");
  const cJSON *item;
  cJSON_ArrayForEach(item, extra) {
    if (!cJSON_IsNumber(item) && !cJSON_IsNull(item)) return bad_field(c, "extra", "an object of numbers");
    if (gr_run_result_set_extra(r, item->string, cJSON_IsNumber(item) ? item->valuedouble : NAN) != GR_OK)
      return bad_field(c, "extra", "a few named numbers (GR_RUN_MAX_EXTRA), names of 1..31 bytes");
  }
  return GR_OK;
}

/* Fills r (curve malloc'd into *curve) from one {"type":"run"} object. */
static gr_status run_from_json(const record_ctx *c, const cJSON *o, gr_run_result *r, gr_curve_point **curve) {
  gr_run_result_init(r);
  double seed;
  gr_status s;
  if ((s = get_str(c, o, "phase", false, r->phase, sizeof r->phase)) ||
      (s = get_str(c, o, "method", true, r->method, sizeof r->method)) ||
      (s = get_str(c, o, "dataset", false, r->dataset, sizeof r->dataset)) ||
      (s = get_num(c, o, "budget", false, &r->budget)) || (s = get_int(c, o, "n_labels", &r->n_labels)) ||
      (s = get_num(c, o, "seed", true, &seed)) || (s = get_num(c, o, "accuracy", false, &r->accuracy)) ||
      (s = get_num(c, o, "loss", false, &r->loss)) ||
      (s = get_int(c, o, "trainable_params", &r->trainable_params)) ||
      (s = get_int(c, o, "total_params", &r->total_params)) || (s = get_num(c, o, "seconds", false, &r->seconds)) ||
      (s = get_int(c, o, "peak_rss_bytes", &r->peak_rss_bytes)))
    return s;
  if (!(seed >= 0) || seed != floor(seed) || seed > 9007199254740992.0)
    return bad_field(c, "seed", "a whole number in [0, 2^53]");
  r->seed = (uint64_t)seed;
  if ((s = get_extra(c, o, r)) || (s = get_curve(c, o, curve, &r->n_curve))) return s;
  r->curve = *curve;
  return GR_OK;
}

gr_status gr_results_load_jsonl(gr_results *rs, const char *path) {
  if (!rs) return gr_error(GR_EARG, "results load: NULL results");
  cJSON *all = NULL;
  gr_status s = gr_jsonl_read(path, &all);
  if (s != GR_OK) return s;
  record_ctx c = {path, 0};
  const cJSON *o;
  cJSON_ArrayForEach(o, all) {
    c.index++;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "run")) continue;
    gr_run_result r;
    gr_curve_point *curve = NULL;
    s = run_from_json(&c, o, &r, &curve);
    if (s == GR_OK) s = gr_results_add(rs, &r);
    free(curve);
    if (s != GR_OK) break;
  }
  cJSON_Delete(all);
  return s;
}
