/* data/dataset.c — in-memory datasets and selections: class subsets with
 * label remapping, stratified seeded label budgets, subsampling,
 * normalization, and data spec strings ("fmnist:classes=5-9,labels=10%").
 * Readers live in idx.c, batching and augmentation in loader.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/data.h"

gr_dataset *gr_dataset_new(int64_t n, int c, int h, int w, int n_classes) {
  if (n < 0 || c <= 0 || h <= 0 || w <= 0 || n_classes <= 0) {
    gr_error(GR_EARG, "dataset: bad size n=%lld c=%d h=%d w=%d classes=%d", (long long)n, c, h, w, n_classes);
    return NULL;
  }
  int64_t dim = (int64_t)c * h * w;
  if (dim > GR_MAX_NUMEL || (n && dim > GR_MAX_NUMEL / n)) {
    gr_error(GR_ENOMEM, "dataset: %lld x %lld features is too large", (long long)n, (long long)dim);
    return NULL;
  }
  gr_dataset *d = gr_calloc(1, sizeof *d);
  if (!d) goto oom;
  d->n = n;
  d->dim = dim;
  d->c = c, d->h = h, d->w = w;
  d->n_classes = n_classes;
  d->x = gr_calloc((size_t)(n * dim + 1), sizeof(float));
  d->y = gr_calloc((size_t)n + 1, sizeof(int32_t));
  if (d->x && d->y) return d;
  gr_dataset_free(d);
oom:
  gr_error(GR_ENOMEM, "dataset: out of memory for %lld samples", (long long)n);
  return NULL;
}

void gr_dataset_free(gr_dataset *d) {
  if (!d) return;
  gr_free(d->x);
  gr_free(d->y);
  gr_free(d);
}

gr_dataset *gr_dataset_take(const gr_dataset *src, const int64_t *idx, int64_t k) {
  if (!src || (k && !idx)) {
    gr_error(GR_EARG, "dataset_take: NULL argument");
    return NULL;
  }
  gr_dataset *d = gr_dataset_new(k, src->c, src->h, src->w, src->n_classes);
  if (!d) return NULL;
  for (int64_t i = 0; i < k; i++) {
    if (idx[i] < 0 || idx[i] >= src->n) {
      gr_dataset_free(d);
      gr_error(GR_EARG, "dataset_take: index %lld out of range (n=%lld)", (long long)idx[i], (long long)src->n);
      return NULL;
    }
    memcpy(d->x + i * d->dim, src->x + idx[i] * src->dim, (size_t)src->dim * sizeof(float));
    d->y[i] = src->y[idx[i]];
  }
  return d;
}

void gr_dataset_class_counts(const gr_dataset *d, int64_t *counts) {
  memset(counts, 0, (size_t)d->n_classes * sizeof *counts);
  for (int64_t i = 0; i < d->n; i++)
    if (d->y[i] >= 0 && d->y[i] < d->n_classes) counts[d->y[i]]++;
}

gr_status gr_dataset_select_classes(const gr_dataset *src, const int *classes, int k, gr_dataset **out) {
  if (!src || !classes || !out) return gr_error(GR_EARG, "select_classes: NULL argument");
  *out = NULL;
  if (k <= 0 || k > src->n_classes) return gr_error(GR_EARG, "select_classes: %d classes of %d", k, src->n_classes);
  int map[GR_DATA_MAX_CLASSES];
  for (int i = 0; i < src->n_classes; i++) map[i] = -1;
  for (int i = 0; i < k; i++) {
    if (classes[i] < 0 || classes[i] >= src->n_classes)
      return gr_error(GR_EARG, "select_classes: class %d not in 0..%d", classes[i], src->n_classes - 1);
    if (map[classes[i]] >= 0) return gr_error(GR_EARG, "select_classes: class %d listed twice", classes[i]);
    map[classes[i]] = i;
  }
  int64_t *idx = gr_malloc((size_t)src->n * sizeof *idx + 1), m = 0;
  if (!idx) return gr_error(GR_ENOMEM, "select_classes: out of memory");
  for (int64_t i = 0; i < src->n; i++)
    if (map[src->y[i]] >= 0) idx[m++] = i;
  gr_dataset *d = gr_dataset_take(src, idx, m);
  gr_free(idx);
  if (!d) return gr_last_status();
  for (int64_t i = 0; i < d->n; i++) d->y[i] = map[d->y[i]];
  d->n_classes = k;
  *out = d;
  return GR_OK;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

gr_status gr_dataset_budget(const gr_dataset *src, int64_t per_class, double fraction, uint64_t seed,
                            gr_dataset **out) {
  if (!src || !out) return gr_error(GR_EARG, "label budget: NULL argument");
  *out = NULL;
  if (per_class <= 0 && !(fraction > 0 && fraction <= 1))
    return gr_error(GR_EARG, "label budget: need per_class > 0 or fraction in (0,1], got %lld / %g",
                    (long long)per_class, fraction);
  int64_t *idx = gr_malloc((size_t)src->n * sizeof *idx + 1), *perm = gr_malloc((size_t)src->n * sizeof *perm + 1);
  int64_t *counts = gr_calloc((size_t)src->n_classes, sizeof *counts), *kept = gr_calloc((size_t)src->n_classes, sizeof *kept);
  gr_status s = GR_OK;
  if (!idx || !perm || !counts || !kept) s = gr_error(GR_ENOMEM, "label budget: out of memory");
  int64_t m = 0;
  if (!s) {
    gr_dataset_class_counts(src, counts);
    gr_rng r = gr_rng_stream(seed, 0xB0D6E7);
    gr_rng_permutation(&r, src->n, perm);
    for (int64_t i = 0; i < src->n; i++) {
      int32_t y = src->y[perm[i]];
      int64_t want = per_class > 0 ? per_class : (int64_t)llround(fraction * (double)counts[y]);
      if (want < 1) want = 1;
      if (kept[y] < want) {
        kept[y]++;
        idx[m++] = perm[i];
      }
    }
    qsort(idx, (size_t)m, sizeof *idx, cmp_i64);
    *out = gr_dataset_take(src, idx, m);
    if (!*out) s = gr_last_status();
  }
  gr_free(idx);
  gr_free(perm);
  gr_free(counts);
  gr_free(kept);
  return s;
}

gr_status gr_dataset_subsample(const gr_dataset *src, int64_t limit, uint64_t seed, gr_dataset **out) {
  if (!src || !out) return gr_error(GR_EARG, "subsample: NULL argument");
  if (limit < 0) return gr_error(GR_EARG, "subsample: negative limit %lld", (long long)limit);
  int64_t k = limit < src->n ? limit : src->n;
  int64_t *perm = gr_malloc((size_t)src->n * sizeof *perm + 1);
  if (!perm) return gr_error(GR_ENOMEM, "subsample: out of memory");
  if (k < src->n) {
    gr_rng r = gr_rng_stream(seed, 0x5AB5);
    gr_rng_permutation(&r, src->n, perm);
    qsort(perm, (size_t)k, sizeof *perm, cmp_i64);
  } else {
    for (int64_t i = 0; i < k; i++) perm[i] = i;
  }
  *out = gr_dataset_take(src, perm, k);
  gr_free(perm);
  return *out ? GR_OK : gr_last_status();
}

gr_status gr_dataset_normalize(gr_dataset *d, float mean, float std) {
  if (!d) return gr_error(GR_EARG, "normalize: dataset is NULL");
  if (!(std > 0) || !isfinite(mean)) return gr_error(GR_EARG, "normalize: std %g must be > 0, mean finite", std);
  float inv = 1.0f / std;
  for (int64_t i = 0; i < d->n * d->dim; i++) d->x[i] = (d->x[i] - mean) * inv;
  return GR_OK;
}

/* ---- data specs ------------------------------------------------------------ */
static gr_status parse_classes(const char *v, gr_data_spec *s) {
  /* "5-9" or "0,2,4" or "0-2+7" ("+" also separates, since "," splits fields) */
  s->n_classes_sel = 0;
  const char *p = v;
  while (*p) {
    char *end;
    long a = strtol(p, &end, 10), b = a;
    if (end == p) return gr_error(GR_EARG, "data spec: classes='%s' is not a list like 5-9 or 0+2+4", v);
    p = end;
    if (*p == '-') {
      b = strtol(p + 1, &end, 10);
      if (end == p + 1) return gr_error(GR_EARG, "data spec: classes='%s': bad range", v);
      p = end;
    }
    if (a < 0 || b < a || b >= GR_DATA_MAX_CLASSES)
      return gr_error(GR_EARG, "data spec: classes='%s': range %ld-%ld out of order or too large", v, a, b);
    for (long k = a; k <= b; k++) {
      if (s->n_classes_sel >= GR_DATA_MAX_CLASSES) return gr_error(GR_EARG, "data spec: too many classes");
      s->classes[s->n_classes_sel++] = (int)k;
    }
    if (*p == '+' || *p == ';') p++;
    else if (*p) return gr_error(GR_EARG, "data spec: classes='%s': unexpected '%c'", v, *p);
  }
  return s->n_classes_sel ? GR_OK : gr_error(GR_EARG, "data spec: classes is empty");
}

static gr_status parse_labels(const char *v, gr_data_spec *s) {
  char *end;
  double x = strtod(v, &end);
  if (end == v || !(x > 0)) return gr_error(GR_EARG, "data spec: labels='%s' (want P%%, N/class or a fraction)", v);
  if (!strcmp(end, "%")) {
    if (x > 100) return gr_error(GR_EARG, "data spec: labels='%s' above 100%%", v);
    s->fraction = x / 100.0;
  } else if (!strcmp(end, "/class")) {
    if (x != floor(x)) return gr_error(GR_EARG, "data spec: labels='%s' is not a whole number per class", v);
    s->per_class = (int64_t)x;
  } else if (!*end && x <= 1) {
    s->fraction = x;
  } else {
    return gr_error(GR_EARG, "data spec: labels='%s' (want P%%, N/class or a fraction <= 1)", v);
  }
  return GR_OK;
}

static gr_status parse_field(const char *key, const char *v, gr_data_spec *s) {
  char *end;
  if (!strcmp(key, "classes")) return parse_classes(v, s);
  if (!strcmp(key, "labels")) return parse_labels(v, s);
  if (!strcmp(key, "split")) {
    if (strcmp(v, "train") && strcmp(v, "test")) return gr_error(GR_EARG, "data spec: split='%s' (train|test)", v);
    snprintf(s->split, sizeof s->split, "%s", v);
    return GR_OK;
  }
  if (!strcmp(key, "limit")) {
    s->limit = strtoll(v, &end, 10);
    if (end == v || *end || s->limit <= 0) return gr_error(GR_EARG, "data spec: limit='%s' (want N > 0)", v);
    return GR_OK;
  }
  if (!strcmp(key, "label")) {
    if (!strcmp(v, "last")) s->label_col = -1;
    else if (!strcmp(v, "first")) s->label_col = 0;
    else {
      long c = strtol(v, &end, 10);
      if (end == v || *end || c < 0 || c > 65535) return gr_error(GR_EARG, "data spec: label='%s'", v);
      s->label_col = (int)c;
    }
    return GR_OK;
  }
  if (!strcmp(key, "norm")) {
    s->normalize = strcmp(v, "0") != 0;
    return GR_OK;
  }
  if (!strcmp(key, "shift")) {
    if (!gr_shift_known(v) || strlen(v) >= sizeof s->shift)
      return gr_error(GR_EARG, "data spec: shift='%s' (none, invert, rot90, rot180, rot270, hflip, vflip, transpose)", v);
    snprintf(s->shift, sizeof s->shift, "%s", v);
    return GR_OK;
  }
  if (!strcmp(key, "dir") || !strcmp(key, "path")) {
    snprintf(s->path, sizeof s->path, "%s", v);
    return GR_OK;
  }
  return gr_error(GR_EARG, "data spec: unknown field '%s' (classes, labels, split, limit, label, norm, shift, dir)", key);
}

gr_status gr_data_spec_parse(const char *spec, gr_data_spec *out) {
  if (!spec || !out) return gr_error(GR_EARG, "data spec: NULL argument");
  memset(out, 0, sizeof *out);
  out->fraction = 1.0;
  out->label_col = -1;
  out->normalize = true;
  snprintf(out->split, sizeof out->split, "train");
  const char *colon = strchr(spec, ':');
  size_t sl = colon ? (size_t)(colon - spec) : strlen(spec);
  if (sl == 0 || sl >= sizeof out->source) return gr_error(GR_EARG, "data spec '%s': no source (fmnist|csv)", spec);
  memcpy(out->source, spec, sl);
  if (strcmp(out->source, "fmnist") && strcmp(out->source, "csv") && strcmp(out->source, "digits"))
    return gr_error(GR_EARG, "data spec '%s': unknown source '%s' (fmnist|csv|digits)", spec, out->source);
  char buf[2048];
  if (snprintf(buf, sizeof buf, "%s", colon ? colon + 1 : "") >= (int)sizeof buf)
    return gr_error(GR_EARG, "data spec: too long");
  char *save = NULL;
  bool first = true;
  for (char *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save), first = false) {
    char *eq = strchr(f, '=');
    if (!eq && first && !strcmp(out->source, "csv")) {
      snprintf(out->path, sizeof out->path, "%s", f);
      continue;
    }
    if (!eq) return gr_error(GR_EARG, "data spec '%s': field '%s' is not key=value", spec, f);
    *eq = 0;
    gr_status s = parse_field(f, eq + 1, out);
    if (s) return s;
  }
  if (!strcmp(out->source, "csv") && !out->path[0]) return gr_error(GR_EARG, "data spec '%s': csv needs a path", spec);
  return GR_OK;
}

/* Frees *d and puts next in its place when s is GR_OK. */
static gr_status replace(gr_dataset **d, gr_status s, gr_dataset **next) {
  if (s) return s;
  gr_dataset_free(*d);
  *d = *next;
  *next = NULL;
  return GR_OK;
}

gr_status gr_data_load(const gr_data_spec *spec, const char *split, uint64_t seed, gr_dataset **out) {
  if (!spec || !out) return gr_error(GR_EARG, "data: NULL argument");
  *out = NULL;
  if (!split) split = spec->split;
  gr_dataset *d = NULL, *next = NULL;
  bool fm = !strcmp(spec->source, "fmnist");
  gr_status s = fm ? gr_fmnist_load(spec->path, split, &d)
                : !strcmp(spec->source, "digits") ? gr_digits_load(spec->path, split, &d)
                                                  : gr_csv_load(spec->path, spec->label_col, &d);
  if (!s && spec->shift[0]) s = gr_dataset_shift(d, spec->shift);
  if (!s && fm && spec->normalize) s = gr_dataset_normalize(d, GR_FMNIST_MEAN, GR_FMNIST_STD);
  if (!s && spec->n_classes_sel)
    s = replace(&d, gr_dataset_select_classes(d, spec->classes, spec->n_classes_sel, &next), &next);
  bool train = !strcmp(split, "train");
  if (!s && train && (spec->per_class > 0 || spec->fraction < 1.0))
    s = replace(&d, gr_dataset_budget(d, spec->per_class, spec->fraction, seed, &next), &next);
  if (!s && spec->limit > 0) s = replace(&d, gr_dataset_subsample(d, spec->limit, seed, &next), &next);
  if (s) {
    gr_dataset_free(d);
    return s;
  }
  *out = d;
  return GR_OK;
}
