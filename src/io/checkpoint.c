/* io/checkpoint.c — checkpoints over safetensors: save/load lists of named
 * f32 tensors with string metadata, and the exact text form of a gr_rng. */
#include "graft/checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/st_internal.h"

/* meta plus {"format","pt"} in front unless meta names a format (the HF
 * convention every graft writer follows); gr_malloc'd, *n updated. */
static gr_st_kv *with_format(const gr_st_kv *meta, size_t n_meta, size_t *n) {
  bool has = false;
  for (size_t i = 0; i < n_meta && meta; i++) has |= meta[i].key && !strcmp(meta[i].key, "format");
  gr_st_kv *kv = gr_malloc((n_meta + 1) * sizeof *kv);
  if (!kv) return NULL;
  size_t k = 0;
  if (!has) kv[k++] = (gr_st_kv){"format", "pt"};
  for (size_t i = 0; i < n_meta; i++) kv[k++] = meta[i];
  *n = k;
  return kv;
}

gr_status gr_ckpt_save(const char *path, const gr_ckpt_tensor *ts, size_t n, gr_dtype dtype, const gr_st_kv *meta,
                       size_t n_meta) {
  if (!path || (n && !ts) || (n_meta && !meta)) return gr_error(GR_EARG, "checkpoint save: NULL argument");
  gr_st_entry *e = gr_malloc((n + 1) * sizeof *e);
  if (!e) return gr_error(GR_ENOMEM, "checkpoint save: out of memory");
  gr_status st = GR_OK;
  for (size_t i = 0; i < n && !st; i++) {
    if (!ts[i].name || !ts[i].t) st = gr_error(GR_EARG, "checkpoint save %s: entry %zu has no name or tensor", path, i);
    else e[i] = (gr_st_entry){ts[i].name, dtype, ts[i].t->ndim, ts[i].t->shape};
  }
  gr_st_kv *kv = st ? NULL : with_format(meta, n_meta, &n_meta);
  if (!st && !kv) st = gr_error(GR_ENOMEM, "checkpoint save: out of memory");
  gr_st_writer *w = NULL;
  if (!st) st = gr_st_writer_begin(path, e, n, kv, n_meta, &w);
  gr_free(kv);
  for (size_t i = 0; i < n && !st; i++) st = gr_st_writer_write_f32(w, ts[i].name, ts[i].t->data, (uint64_t)ts[i].t->numel);
  gr_free(e);
  if (st) {
    gr_st_writer_abort(w);
    return st;
  }
  return gr_st_writer_finish(w);
}

static gr_status check_one(const gr_st_file *f, const gr_ckpt_tensor *nt, unsigned flags, const gr_st_tensor **out) {
  *out = NULL;
  if (!nt->name || !nt->t) return gr_error(GR_EARG, "checkpoint load: entry with no name or tensor");
  const gr_st_tensor *t = gr_st_find(f, nt->name);
  if (!t) return (flags & GR_CKPT_ALLOW_MISSING) ? GR_OK : gr_error(GR_ENOTFOUND, "%s: checkpoint has no tensor '%s'", gr_st_path(f), nt->name);
  bool same = t->ndim == nt->t->ndim;
  for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == (uint64_t)nt->t->shape[d];
  if (!same) {
    char want[128];
    gr_shape_str(nt->t, want, sizeof want);
    return gr_error(GR_ESHAPE, "%s: tensor '%s' has %d dims in the file (first %llu), the model wants %s", gr_st_path(f),
                    nt->name, t->ndim, t->ndim ? (unsigned long long)t->shape[0] : 0ull, want);
  }
  if (!gr_dtype_to_f32_supported(t->dtype))
    return gr_error(GR_EUNSUPPORTED, "%s: tensor '%s' has dtype %s, which graft cannot load as f32", gr_st_path(f), nt->name,
                    gr_dtype_name(t->dtype));
  *out = t;
  return GR_OK;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Every tensor of f must be one of ts (unless allowed): sort the wanted names. */
static gr_status check_unexpected(const gr_st_file *f, const gr_ckpt_tensor *ts, size_t n) {
  const char **names = gr_malloc((n + 1) * sizeof *names);
  if (!names) return gr_error(GR_ENOMEM, "checkpoint load: out of memory");
  for (size_t i = 0; i < n; i++) names[i] = ts[i].name;
  qsort(names, n, sizeof *names, cmp_cstr);
  gr_status st = GR_OK;
  for (size_t i = 0; i < gr_st_count(f) && !st; i++) {
    const char *key = gr_st_at(f, i)->name;
    if (!bsearch(&key, names, n, sizeof *names, cmp_cstr))
      st = gr_error(GR_EFORMAT, "%s: unexpected tensor '%s' in the checkpoint", gr_st_path(f), key);
  }
  gr_free(names);
  return st;
}

gr_status gr_ckpt_load(const gr_st_file *f, const gr_ckpt_tensor *ts, size_t n, unsigned flags) {
  if (!f || (n && !ts)) return gr_error(GR_EARG, "checkpoint load: NULL argument");
  const gr_st_tensor **src = gr_malloc((n + 1) * sizeof *src);
  if (!src) return gr_error(GR_ENOMEM, "checkpoint load: out of memory");
  gr_status st = GR_OK;
  for (size_t i = 0; i < n && !st; i++) st = check_one(f, &ts[i], flags, &src[i]);
  for (size_t i = 0; i < n && !st; i++) /* a name twice in ts would load twice: refuse */
    for (size_t j = i + 1; j < n && !st && n < 4096; j++)
      if (!strcmp(ts[i].name, ts[j].name)) st = gr_error(GR_EARG, "checkpoint load: '%s' listed twice", ts[i].name);
  if (!st && !(flags & GR_CKPT_ALLOW_UNEXPECTED)) st = check_unexpected(f, ts, n);
  for (size_t i = 0; i < n && !st; i++)
    if (src[i]) st = gr_st_read_f32(src[i], ts[i].t->data, (uint64_t)ts[i].t->numel);
  gr_free(src);
  return st;
}

void gr_ckpt_rng_encode(const gr_rng *r, char out[GR_CKPT_RNG_LEN]) {
  uint32_t spare;
  memcpy(&spare, &r->spare, 4);
  snprintf(out, GR_CKPT_RNG_LEN, "xoshiro256**:%016" PRIx64 ":%016" PRIx64 ":%016" PRIx64 ":%016" PRIx64 ":%d:%08" PRIx32,
           r->s[0], r->s[1], r->s[2], r->s[3], r->has_spare ? 1 : 0, spare);
}

gr_status gr_ckpt_rng_decode(const char *s, gr_rng *r) {
  if (!s || !r) return gr_error(GR_EARG, "rng decode: NULL argument");
  uint64_t v[4];
  int flag;
  uint32_t spare;
  gr_rng tmp;
  if (sscanf(s, "xoshiro256**:%16" SCNx64 ":%16" SCNx64 ":%16" SCNx64 ":%16" SCNx64 ":%d:%8" SCNx32, &v[0], &v[1], &v[2],
             &v[3], &flag, &spare) != 6 || (flag != 0 && flag != 1))
    return gr_error(GR_EFORMAT, "rng state '%.100s' is not in the xoshiro256** checkpoint form", s);
  memcpy(tmp.s, v, sizeof v);
  tmp.has_spare = flag;
  memcpy(&tmp.spare, &spare, 4);
  char again[GR_CKPT_RNG_LEN];
  gr_ckpt_rng_encode(&tmp, again);
  if (strcmp(again, s)) return gr_error(GR_EFORMAT, "rng state '%.100s' is not in canonical form", s);
  if (!(v[0] | v[1] | v[2] | v[3])) return gr_error(GR_EFORMAT, "rng state is all zero (invalid for xoshiro256**)");
  *r = tmp;
  return GR_OK;
}

gr_status gr_ckpt_meta_u64(const gr_st_file *f, const char *key, uint64_t *out) {
  const char *v = gr_st_metadata_get(f, key);
  if (!v) return gr_error(GR_ENOTFOUND, "%s: no metadata '%s'", f ? gr_st_path(f) : "(null)", key ? key : "(null)");
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (!*v || *end || errno || v[0] == '-' || v[0] == '+' || v[0] == ' ')
    return gr_error(GR_EFORMAT, "%s: metadata '%s' = '%.60s' is not an unsigned integer", gr_st_path(f), key, v);
  *out = x;
  return GR_OK;
}

gr_status gr_ckpt_meta_rng(const gr_st_file *f, const char *key, gr_rng *out) {
  const char *v = gr_st_metadata_get(f, key);
  if (!v) return gr_error(GR_ENOTFOUND, "%s: no metadata '%s'", f ? gr_st_path(f) : "(null)", key ? key : "(null)");
  return gr_ckpt_rng_decode(v, out);
}

gr_status gr_ckpt_meta_f64(const gr_st_file *f, const char *key, double *out) {
  const char *v = gr_st_metadata_get(f, key);
  if (!v) return gr_error(GR_ENOTFOUND, "%s: no metadata '%s'", f ? gr_st_path(f) : "(null)", key ? key : "(null)");
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (!*v || *end || v[0] == ' ' || (errno && errno != ERANGE) || isnan(x))
    return gr_error(GR_EFORMAT, "%s: metadata '%s' = '%.60s' is not a number", gr_st_path(f), key, v);
  *out = x;
  return GR_OK;
}

void gr_ckpt_f64_encode(double x, char out[GR_CKPT_F64_LEN]) { snprintf(out, GR_CKPT_F64_LEN, "%a", x); }
