/* io/onnx_featcache.c — a content-addressed cache of a frozen backbone's
 * features (graft/onnx.h, "feature cache"): one row of features per input
 * image, keyed by a 64-bit FNV-1a hash of the image's floats and shape, so a
 * study that draws new labelled subsets per seed (or reruns with another
 * probe setting) extracts each image's features once. The cache belongs to
 * one feature source, named by a caller-chosen key string (backbone, cut,
 * init...): a file written for another key is refused, never mixed in.
 *
 * File (little-endian): "GRFCACHE", u32 version (1), u32 key length, key
 * bytes, u32 dim, u64 n, then n records { u64 hash, f32 features[dim] }.
 * Loading validates in that order (magic, version, key length and bytes,
 * dim, n against the bytes actually left, every value finite, no duplicate
 * hash); each failure is GR_EFORMAT naming the file and field. Saving goes
 * through gr_write_file_atomic. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/data.h"
#include "graft/fileio.h"
#include "graft/onnx.h"
#include "graft/rng.h"

#define FC_MAGIC "GRFCACHE"
#define FC_VERSION 1u
#define FC_MAX_KEY 4096u
#define FC_MAX_DIM (1u << 24)

struct gr_feature_cache {
  char *path; /* NULL: memory only */
  char *key;
  int64_t dim;       /* 0 until the first row */
  int64_t n, cap;    /* rows */
  uint64_t *hash;    /* [cap] */
  float *feat;       /* [cap, dim] */
  int64_t *slot;     /* open addressing over rows, [n_slots], -1 empty */
  int64_t n_slots;   /* a power of two > 2 cap */
  bool dirty;
};

uint64_t gr_feature_cache_hash(const float *x, int c, int h, int w) {
  int32_t shape[3] = {c, h, w};
  return gr_fnv1a(gr_fnv1a(GR_FNV1A_OFFSET, shape, sizeof shape), x, (size_t)c * (size_t)h * (size_t)w * sizeof(float));
}

static int64_t *find_slot(const gr_feature_cache *fc, uint64_t h) {
  for (int64_t i = (int64_t)(h & (uint64_t)(fc->n_slots - 1));; i = (i + 1) & (fc->n_slots - 1))
    if (fc->slot[i] < 0 || fc->hash[fc->slot[i]] == h) return &fc->slot[i];
}

/* Room for cap rows of dim features (dim must be set). */
static gr_status reserve(gr_feature_cache *fc, int64_t cap) {
  if (cap <= fc->cap) return GR_OK;
  if (cap < 2 * fc->cap) cap = 2 * fc->cap;
  if (cap > ((int64_t)1 << 40) / fc->dim) return gr_error(GR_ENOMEM, "feature cache: %lld rows is absurd", (long long)cap);
  int64_t ns = 16;
  while (ns <= 2 * cap) ns *= 2;
  uint64_t *h = gr_malloc((size_t)cap * sizeof *h);
  float *f = gr_malloc((size_t)cap * (size_t)fc->dim * sizeof *f);
  int64_t *slot = gr_malloc((size_t)ns * sizeof *slot);
  if (!h || !f || !slot) {
    gr_free(h), gr_free(f), gr_free(slot);
    return gr_error(GR_ENOMEM, "feature cache: out of memory for %lld rows", (long long)cap);
  }
  if (fc->n) memcpy(h, fc->hash, (size_t)fc->n * sizeof *h), memcpy(f, fc->feat, (size_t)(fc->n * fc->dim) * sizeof *f);
  gr_free(fc->hash), gr_free(fc->feat), gr_free(fc->slot);
  fc->hash = h, fc->feat = f, fc->slot = slot, fc->n_slots = ns, fc->cap = cap;
  for (int64_t i = 0; i < ns; i++) slot[i] = -1;
  for (int64_t r = 0; r < fc->n; r++) *find_slot(fc, fc->hash[r]) = r;
  return GR_OK;
}

/* Appends a row (hash not present yet). */
static gr_status add_row(gr_feature_cache *fc, uint64_t h, const float *f) {
  gr_status s = reserve(fc, fc->n + 1);
  if (s) return s;
  fc->hash[fc->n] = h;
  memcpy(fc->feat + fc->n * fc->dim, f, (size_t)fc->dim * sizeof(float));
  *find_slot(fc, h) = fc->n++;
  fc->dirty = true;
  return GR_OK;
}

const float *gr_feature_cache_get(const gr_feature_cache *fc, uint64_t h) {
  if (!fc || !fc->n) return NULL;
  int64_t r = *find_slot(fc, h);
  return r < 0 ? NULL : fc->feat + r * fc->dim;
}

int64_t gr_feature_cache_count(const gr_feature_cache *fc) { return fc ? fc->n : 0; }
int64_t gr_feature_cache_dim(const gr_feature_cache *fc) { return fc ? fc->dim : 0; }

void gr_feature_cache_free(gr_feature_cache *fc) {
  if (!fc) return;
  gr_free(fc->path), gr_free(fc->key), gr_free(fc->hash), gr_free(fc->feat), gr_free(fc->slot);
  gr_free(fc);
}

/* ---- file --------------------------------------------------------------------- */

typedef struct rd {
  const char *p, *end, *path;
} rd;

static gr_status take(rd *r, void *dst, size_t n, const char *field) {
  if ((size_t)(r->end - r->p) < n) return gr_error(GR_EFORMAT, "feature cache '%s': truncated at %s", r->path, field);
  memcpy(dst, r->p, n);
  r->p += n;
  return GR_OK;
}

static gr_status parse_header(rd *r, const char *key, uint32_t *dim, uint64_t *n) {
  *dim = 0, *n = 0;
  char magic[8];
  uint32_t version = 0, klen = 0;
  gr_status s = take(r, magic, 8, "magic");
  if (!s && memcmp(magic, FC_MAGIC, 8)) s = gr_error(GR_EFORMAT, "feature cache '%s': bad magic (not a feature cache)", r->path);
  if (!s) s = take(r, &version, 4, "version");
  if (!s && version != FC_VERSION) s = gr_error(GR_EFORMAT, "feature cache '%s': version %u (want 1)", r->path, version);
  if (!s) s = take(r, &klen, 4, "key length");
  if (!s && klen > FC_MAX_KEY) s = gr_error(GR_EFORMAT, "feature cache '%s': key length %u is absurd", r->path, klen);
  if (!s && (size_t)(r->end - r->p) < klen) s = gr_error(GR_EFORMAT, "feature cache '%s': truncated at key", r->path);
  if (!s && (klen != strlen(key) || memcmp(r->p, key, klen)))
    s = gr_error(GR_EFORMAT, "feature cache '%s': written for key '%.*s', not '%s' (delete it to rebuild)", r->path,
                 (int)(klen > 200 ? 200 : klen), r->p, key);
  if (!s) r->p += klen, s = take(r, dim, 4, "dim");
  if (!s && (*dim < 1 || *dim > FC_MAX_DIM)) s = gr_error(GR_EFORMAT, "feature cache '%s': dim %u is absurd", r->path, *dim);
  if (!s) s = take(r, n, 8, "row count");
  size_t rec = 8 + (size_t)*dim * 4;
  if (!s && (*n > (uint64_t)(r->end - r->p) / rec || *n * rec != (uint64_t)(r->end - r->p)))
    s = gr_error(GR_EFORMAT, "feature cache '%s': %llu rows of %u features need %llu bytes, the file has %lld", r->path,
                 (unsigned long long)*n, *dim, (unsigned long long)(*n * rec), (long long)(r->end - r->p));
  return s;
}

static gr_status parse_rows(rd *r, gr_feature_cache *fc, uint64_t n) {
  gr_status s = reserve(fc, (int64_t)n);
  float *f = s ? NULL : gr_malloc((size_t)fc->dim * sizeof *f);
  if (!s && !f) s = gr_error(GR_ENOMEM, "feature cache: out of memory");
  for (uint64_t i = 0; i < n && !s; i++) {
    uint64_t h = 0;
    s = take(r, &h, 8, "row hash");
    if (!s) s = take(r, f, (size_t)fc->dim * 4, "row features");
    for (int64_t j = 0; !s && j < fc->dim; j++)
      if (!isfinite(f[j])) s = gr_error(GR_EFORMAT, "feature cache '%s': row %llu feature %lld is not finite", r->path,
                                       (unsigned long long)i, (long long)j);
    if (!s && gr_feature_cache_get(fc, h))
      s = gr_error(GR_EFORMAT, "feature cache '%s': row %llu repeats hash %016llx", r->path, (unsigned long long)i,
                   (unsigned long long)h);
    if (!s) s = add_row(fc, h, f);
  }
  gr_free(f);
  return s;
}

gr_status gr_feature_cache_open(const char *path, const char *key, gr_feature_cache **out) {
  if (!out || !key) return gr_error(GR_EARG, "feature cache: NULL argument");
  *out = NULL;
  if (strlen(key) > FC_MAX_KEY) return gr_error(GR_EARG, "feature cache: key longer than %u bytes", FC_MAX_KEY);
  gr_feature_cache *fc = gr_calloc(1, sizeof *fc);
  if (!fc || !(fc->key = gr_malloc(strlen(key) + 1)) || (path && !(fc->path = gr_malloc(strlen(path) + 1)))) {
    gr_feature_cache_free(fc);
    return gr_error(GR_ENOMEM, "feature cache: out of memory");
  }
  strcpy(fc->key, key);
  if (path) strcpy(fc->path, path);
  char *buf = NULL;
  size_t len = 0;
  gr_status s = path ? gr_read_file(path, (size_t)1 << 36, &buf, &len) : GR_ENOTFOUND;
  if (s == GR_ENOTFOUND) s = GR_OK, len = 0, gr_clear_error(); /* a new cache */
  else if (!s) {
    rd r = {buf, buf + len, path};
    uint32_t dim = 0;
    uint64_t n = 0;
    s = parse_header(&r, key, &dim, &n);
    if (!s) fc->dim = dim, s = parse_rows(&r, fc, n);
    fc->dirty = false;
  }
  gr_free(buf);
  if (s) gr_feature_cache_free(fc);
  else *out = fc;
  return s;
}

gr_status gr_feature_cache_save(gr_feature_cache *fc) {
  if (!fc) return gr_error(GR_EARG, "feature cache: NULL argument");
  if (!fc->path || !fc->dirty) return GR_OK;
  uint32_t klen = (uint32_t)strlen(fc->key), dim = (uint32_t)fc->dim, version = FC_VERSION;
  uint64_t n = (uint64_t)fc->n;
  size_t rec = 8 + (size_t)fc->dim * 4, size = 8 + 4 + 4 + klen + 4 + 8 + (size_t)fc->n * rec;
  char *buf = gr_malloc(size), *p = buf;
  if (!buf) return gr_error(GR_ENOMEM, "feature cache '%s': out of memory for %zu bytes", fc->path, size);
  memcpy(p, FC_MAGIC, 8), p += 8;
  memcpy(p, &version, 4), p += 4;
  memcpy(p, &klen, 4), p += 4;
  memcpy(p, fc->key, klen), p += klen;
  memcpy(p, &dim, 4), p += 4;
  memcpy(p, &n, 8), p += 8;
  for (int64_t r = 0; r < fc->n; r++) {
    memcpy(p, &fc->hash[r], 8), p += 8;
    memcpy(p, fc->feat + r * fc->dim, (size_t)fc->dim * 4), p += (size_t)fc->dim * 4;
  }
  gr_status s = gr_write_file_atomic(fc->path, buf, size);
  gr_free(buf);
  if (!s) fc->dirty = false;
  return s;
}

/* ---- features through a graph module ------------------------------------------- */

/* Extracts the images of d that are not cached (batch at a time, eval mode). */
typedef struct {
  uint64_t hash;
  int64_t index;
} hashed_index;

static int by_hash_then_index(const void *a, const void *b) {
  const hashed_index *p = a, *q = b;
  if (p->hash != q->hash) return p->hash < q->hash ? -1 : 1;
  return (p->index > q->index) - (p->index < q->index);
}

/* The indices of d's samples whose hash is not cached yet, each hash once
 * (its first sample), in sample order; *n_todo of them. */
static int64_t *missing_samples(const gr_feature_cache *fc, const gr_dataset *d, const uint64_t *hash,
                                int64_t *n_todo) {
  hashed_index *cand = gr_malloc((size_t)d->n * sizeof *cand);
  int64_t *todo = gr_malloc((size_t)d->n * sizeof *todo), n_cand = 0, n = 0;
  bool *first = gr_calloc((size_t)d->n, sizeof *first);
  if (!cand || !todo || !first) {
    gr_free(cand), gr_free(todo), gr_free(first);
    gr_error(GR_ENOMEM, "feature cache: out of memory");
    return NULL;
  }
  for (int64_t i = 0; i < d->n; i++)
    if (!gr_feature_cache_get(fc, hash[i])) cand[n_cand++] = (hashed_index){hash[i], i};
  qsort(cand, (size_t)n_cand, sizeof *cand, by_hash_then_index);
  for (int64_t k = 0; k < n_cand; k++)
    if (k == 0 || cand[k].hash != cand[k - 1].hash) first[cand[k].index] = true;
  for (int64_t i = 0; i < d->n; i++)
    if (first[i]) todo[n++] = i;
  gr_free(cand), gr_free(first);
  *n_todo = n;
  return todo;
}

/* Runs m (in eval mode, restored after) over the uncached samples of d and
 * adds their rows to fc. */
static gr_status fill_missing(gr_model *m, gr_feature_cache *fc, const gr_dataset *d, int64_t batch,
                              const uint64_t *hash) {
  int64_t n_todo = 0, *todo = missing_samples(fc, d, hash, &n_todo);
  gr_dataset *sub = NULL;
  if (!todo) return gr_last_status();
  gr_status s = GR_OK;
  gr_ctx *c = n_todo ? gr_ctx_new(16 << 20, 1) : NULL;
  if (n_todo && !c) s = gr_last_status();
  if (!s && n_todo && !(sub = gr_dataset_take(d, todo, n_todo))) s = gr_last_status();
  bool was_inference = m->inference;
  if (c) gr_ctx_set_grad(c, false), m->inference = true;
  for (int64_t start = 0; start < n_todo && !s; start += batch) {
    int64_t k = n_todo - start < batch ? n_todo - start : batch;
    gr_tensor *x;
    const int32_t *y;
    s = gr_dataset_batch(sub, c, start, k, &x, &y);
    gr_tensor *f = s ? NULL : gr_onnx_module_features(m, c, x);
    if (!s && !f) s = gr_last_status();
    if (!s && fc->dim && f->shape[1] != fc->dim)
      s = gr_error(GR_ESHAPE, "feature cache: the backbone gives %lld features, the cache holds %lld",
                   (long long)f->shape[1], (long long)fc->dim);
    if (!s) fc->dim = f->shape[1];
    for (int64_t j = 0; !s && j < k; j++) s = add_row(fc, hash[todo[start + j]], f->data + j * fc->dim);
    gr_ctx_reset(c);
  }
  m->inference = was_inference;
  gr_ctx_free(c);
  gr_dataset_free(sub);
  gr_free(todo);
  return s;
}

gr_status gr_onnx_features_cached(gr_model *m, gr_feature_cache *fc, const gr_dataset *d, int64_t batch,
                                  gr_dataset **out) {
  if (!out) return gr_error(GR_EARG, "cached features: NULL argument");
  *out = NULL;
  if (!m || !fc || !d || d->n < 1 || batch < 1) return gr_error(GR_EARG, "cached features: NULL argument, empty data or batch < 1");
  uint64_t *hash = gr_malloc((size_t)d->n * sizeof *hash);
  if (!hash) return gr_error(GR_ENOMEM, "cached features: out of memory");
  for (int64_t i = 0; i < d->n; i++) hash[i] = gr_feature_cache_hash(d->x + i * d->dim, d->c, d->h, d->w);
  gr_status s = fill_missing(m, fc, d, batch, hash);
  if (!s && !(*out = gr_dataset_new(d->n, 1, 1, (int)fc->dim, d->n_classes))) s = gr_last_status();
  for (int64_t i = 0; !s && i < d->n; i++) {
    memcpy((*out)->x + i * fc->dim, gr_feature_cache_get(fc, hash[i]), (size_t)fc->dim * sizeof(float));
    (*out)->y[i] = d->y[i];
  }
  gr_free(hash);
  if (s) gr_dataset_free(*out), *out = NULL;
  return s;
}
