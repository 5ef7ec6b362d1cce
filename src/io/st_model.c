/* io/st_model.c — models split over several safetensors files, in the
 * Hugging Face layout: <prefix>-0000i-of-0000k.safetensors shards plus
 * <prefix>.safetensors.index.json = {"metadata":{"total_size":N},
 * "weight_map":{tensor: shard}}. The reader validates the index against the
 * shards (plain file names only, every tensor where the map says, nothing
 * missing or doubled); the writer streams tensors into shards and writes the
 * index last. A single file or a directory with one model.safetensors is a
 * model too. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/tensor.h"
#include "io/json_util.h"
#include "io/st_internal.h"

#define INDEX_MAX_BYTES (256u << 20)

struct gr_st_model {
  gr_st_file **shards;
  size_t n_shards, shards_cap;
  const gr_st_tensor **by_name;
  size_t n;
  char *index_path;
};

void gr_st_model_close(gr_st_model *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n_shards; i++) gr_st_close(m->shards[i]);
  gr_free(m->shards);
  gr_free(m->by_name);
  gr_free(m->index_path);
  gr_free(m);
}

size_t gr_st_model_count(const gr_st_model *m) { return m ? m->n : 0; }
size_t gr_st_model_shards(const gr_st_model *m) { return m ? m->n_shards : 0; }
const gr_st_file *gr_st_model_shard(const gr_st_model *m, size_t i) {
  return m && i < m->n_shards ? m->shards[i] : NULL;
}
const char *gr_st_model_index_path(const gr_st_model *m) { return m ? m->index_path : NULL; }

const gr_st_tensor *gr_st_model_at(const gr_st_model *m, size_t i) {
  for (size_t s = 0; m && s < m->n_shards; s++) {
    if (i < gr_st_count(m->shards[s])) return gr_st_at(m->shards[s], i);
    i -= gr_st_count(m->shards[s]);
  }
  return NULL;
}

static int cmp_tensor_name(const void *a, const void *b) {
  return strcmp((*(const gr_st_tensor *const *)a)->name, (*(const gr_st_tensor *const *)b)->name);
}

static const gr_st_tensor *lookup(const gr_st_model *m, const char *name) {
  const gr_st_tensor probe = {.name = name}, *pp = &probe;
  const gr_st_tensor *const *hit = bsearch(&pp, m->by_name, m->n, sizeof *m->by_name, cmp_tensor_name);
  return hit ? *hit : NULL;
}

const gr_st_tensor *gr_st_model_find(const gr_st_model *m, const char *name) {
  if (!m || !name) {
    st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_model_find: NULL argument");
    return NULL;
  }
  const gr_st_tensor *t = lookup(m, name);
  if (!t)
    st_fail(GR_ST_NOT_FOUND, GR_ENOTFOUND, "%s: no tensor named '%s'",
            m->index_path ? m->index_path : gr_st_path(m->shards[0]), name);
  return t;
}

/* The name index over all shards; a name in two shards is an error. */
static gr_status build_index(gr_st_model *m, const char *what) {
  for (size_t s = 0; s < m->n_shards; s++) m->n += gr_st_count(m->shards[s]);
  m->by_name = gr_malloc((m->n + 1) * sizeof *m->by_name);
  if (!m->by_name) return st_fail(GR_ST_IO, GR_ENOMEM, "%s: out of memory", what);
  size_t k = 0;
  for (size_t s = 0; s < m->n_shards; s++)
    for (size_t i = 0; i < gr_st_count(m->shards[s]); i++) m->by_name[k++] = gr_st_at(m->shards[s], i);
  qsort(m->by_name, m->n, sizeof *m->by_name, cmp_tensor_name);
  for (size_t i = 1; i < m->n; i++)
    if (!strcmp(m->by_name[i]->name, m->by_name[i - 1]->name))
      return st_fail(GR_ST_DUPLICATE_KEY, GR_EFORMAT, "%s: tensor '%s' appears in two shards", what, m->by_name[i]->name);
  return GR_OK;
}

static bool plain_file_name(const char *s) {
  return s[0] && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static gr_status open_shard(gr_st_model *m, const char *dir, const char *file, const char *index) {
  for (size_t i = 0; i < m->n_shards; i++) {
    const char *p = gr_st_path(m->shards[i]);
    size_t pl = strlen(p), fl = strlen(file);
    if (pl >= fl + 1 && !strcmp(p + pl - fl, file) && p[pl - fl - 1] == '/') return GR_OK; /* already open */
  }
  if (!plain_file_name(file))
    return st_fail(GR_ST_BAD_INDEX, GR_EFORMAT, "%s: shard '%.200s' is not a plain file name", index, file);
  if (st_grow((void **)&m->shards, &m->shards_cap, m->n_shards + 1, sizeof *m->shards)) return GR_ENOMEM;
  char path[4096];
  gr_st_file *f;
  gr_status st = st_path_join(path, sizeof path, dir, file);
  if (!st) st = gr_st_open(path, &f);
  if (st) return st;
  m->shards[m->n_shards++] = f;
  return GR_OK;
}

/* weight_map says tensor `name` lives in shard `file`: check that it does. */
static gr_status check_mapping(gr_st_model *m, const char *name, const char *file, const char *index) {
  const gr_st_tensor *t = lookup(m, name);
  if (!t) return st_fail(GR_ST_BAD_INDEX, GR_EFORMAT, "%s: tensor '%.200s' is in weight_map but in no shard", index, name);
  for (size_t s = 0; s < m->n_shards; s++) {
    if (!gr_st_count(m->shards[s])) continue;
    if (t < gr_st_at(m->shards[s], 0) || t >= gr_st_at(m->shards[s], 0) + gr_st_count(m->shards[s])) continue;
    const char *p = gr_st_path(m->shards[s]);
    const char *base = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
    if (strcmp(base, file))
      return st_fail(GR_ST_BAD_INDEX, GR_EFORMAT, "%s: tensor '%.200s' is in %s, not in %s as weight_map says", index,
                     name, base, file);
  }
  return GR_OK;
}

static gr_status open_index(gr_st_model *m, const char *index, const char *dir) {
  char *text;
  size_t len;
  cJSON *j = NULL;
  gr_status st = st_read_file(index, INDEX_MAX_BYTES, &text, &len);
  if (st) return st;
  st = io_json_parse(text, len, index, &j);
  gr_free(text);
  if (st) return st_fail(GR_ST_BAD_INDEX, GR_EFORMAT, "%s", gr_last_error());
  const cJSON *wm = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
  if (!cJSON_IsObject(j) || !cJSON_IsObject(wm))
    st = st_fail(GR_ST_BAD_INDEX, GR_EFORMAT, "%s: no \"weight_map\" object", index);
  for (const cJSON *e = wm ? wm->child : NULL; !st && e; e = e->next)
    st = cJSON_IsString(e) ? open_shard(m, dir, e->valuestring, index)
                           : st_fail(GR_ST_BAD_INDEX, GR_EFORMAT, "%s: weight_map value of '%.200s' is not a string",
                                     index, e->string);
  if (!st && !m->n_shards) st = st_fail(GR_ST_BAD_INDEX, GR_EFORMAT, "%s: weight_map is empty", index);
  if (!st) st = build_index(m, index);
  size_t mapped = 0;
  for (const cJSON *e = wm ? wm->child : NULL; !st && e; e = e->next, mapped++)
    st = check_mapping(m, e->string, e->valuestring, index);
  if (!st && mapped != m->n)
    st = st_fail(GR_ST_BAD_INDEX, GR_EFORMAT, "%s: shards hold %zu tensors but weight_map names %zu", index, m->n, mapped);
  cJSON_Delete(j);
  return st;
}

static bool is_file(const char *p) {
  struct stat sb;
  return !stat(p, &sb) && S_ISREG(sb.st_mode);
}

gr_status gr_st_model_open(const char *path, gr_st_model **out) {
  if (!path || !out) return st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_model_open: NULL argument");
  *out = NULL;
  gr_st_model *m = gr_calloc(1, sizeof *m);
  if (!m) return st_fail(GR_ST_IO, GR_ENOMEM, "out of memory");
  char buf[4096], dir[4096];
  size_t pl = strlen(path);
  gr_status st = GR_OK;
  struct stat sb;
  if (stat(path, &sb)) st = st_fail(GR_ST_IO, errno == ENOENT ? GR_ENOTFOUND : GR_EIO, "%s: %s", path, strerror(errno));
  else if (S_ISDIR(sb.st_mode)) {
    snprintf(dir, sizeof dir, "%s", path);
    st = st_path_join(buf, sizeof buf, path, "model.safetensors.index.json");
    if (!st && is_file(buf)) m->index_path = st_strdup(buf);
    else if (!st) {
      st = st_path_join(buf, sizeof buf, path, "model.safetensors");
      if (!st && !is_file(buf)) st = st_fail(GR_ST_IO, GR_ENOTFOUND, "%s: no model.safetensors or model.safetensors.index.json", path);
    }
  } else if (pl >= 5 && !strcmp(path + pl - 5, ".json")) {
    m->index_path = st_strdup(path);
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
  } else {
    snprintf(buf, sizeof buf, "%s", path);
  }
  if (!st && m->index_path) st = open_index(m, m->index_path, dir);
  else if (!st) {
    m->shards = gr_malloc(sizeof *m->shards);
    st = m->shards ? gr_st_open(buf, &m->shards[0]) : st_fail(GR_ST_IO, GR_ENOMEM, "out of memory");
    if (!st) m->n_shards = 1;
    if (!st) st = build_index(m, buf);
  }
  if (st) {
    gr_st_model_close(m);
    return st;
  }
  *out = m;
  return st_ok();
}

/* ---- sharded writer ------------------------------------------------------ */
typedef struct route {
  const char *name; /* points into names[] */
  size_t shard;
} route;

struct gr_st_sharded_writer {
  gr_st_writer **w;
  char **files;
  size_t n_shards;
  route *routes; /* sorted by name */
  char **names;
  size_t n;
  char *dir, *prefix;
  uint64_t total_size;
};

void gr_st_sharded_abort(gr_st_sharded_writer *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n_shards; i++) {
    gr_st_writer_abort(s->w[i]);
    gr_free(s->files[i]);
  }
  for (size_t i = 0; i < s->n; i++) gr_free(s->names[i]);
  gr_free(s->w);
  gr_free(s->files);
  gr_free(s->routes);
  gr_free(s->names);
  gr_free(s->dir);
  gr_free(s->prefix);
  gr_free(s);
}

static int cmp_route(const void *a, const void *b) { return strcmp(((const route *)a)->name, ((const route *)b)->name); }

/* Greedy split in the given order; *shard_of[i] gets entry i's shard. */
static size_t plan_shards(const gr_st_entry *e, size_t n, uint64_t max_bytes, size_t *shard_of, uint64_t *total) {
  size_t k = 0;
  uint64_t cur = 0;
  *total = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t nb = 1;
    for (int d = 0; d < e[i].ndim; d++) nb *= e[i].shape && e[i].shape[d] > 0 ? (uint64_t)e[i].shape[d] : 0;
    nb = nb * gr_dtype_bits(e[i].dtype) / 8;
    if (max_bytes && cur > 0 && cur + nb > max_bytes) {
      k++;
      cur = 0;
    }
    cur += nb;
    *total += nb;
    shard_of[i] = k;
  }
  return n ? k + 1 : 1;
}

static gr_status begin_shard(gr_st_sharded_writer *s, size_t k, const gr_st_entry *e, const size_t *shard_of, size_t n,
                             const gr_st_kv *meta, size_t n_meta) {
  char file[512], path[4096];
  if (s->n_shards == 1) snprintf(file, sizeof file, "%s.safetensors", s->prefix);
  else snprintf(file, sizeof file, "%s-%05zu-of-%05zu.safetensors", s->prefix, k + 1, s->n_shards);
  if (st_path_join(path, sizeof path, s->dir, file)) return GR_EARG;
  s->files[k] = st_strdup(file);
  gr_st_entry *sub = gr_malloc((n + 1) * sizeof *sub);
  if (!s->files[k] || !sub) {
    gr_free(sub);
    return st_fail(GR_ST_IO, GR_ENOMEM, "out of memory");
  }
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (shard_of[i] == k) sub[m++] = e[i];
  gr_status st = gr_st_writer_begin(path, sub, m, meta, n_meta, &s->w[k]);
  gr_free(sub);
  return st;
}

gr_status gr_st_sharded_begin(const char *dir, const char *prefix, const gr_st_entry *entries, size_t n,
                              uint64_t max_shard_bytes, const gr_st_kv *meta, size_t n_meta,
                              gr_st_sharded_writer **out) {
  if (!dir || !out || (n && !entries)) return st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_sharded_begin: NULL argument");
  *out = NULL;
  for (size_t i = 0; i < n; i++)
    if (!entries[i].name) return st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_sharded_begin: NULL tensor name");
  if (prefix && (!plain_file_name(prefix) || strlen(prefix) > 200))
    return st_fail(GR_ST_BAD_ARG, GR_EARG, "sharded writer: prefix '%.200s' is not a plain file name", prefix);
  gr_st_sharded_writer *s = gr_calloc(1, sizeof *s);
  size_t *shard_of = gr_malloc((n + 1) * sizeof(size_t));
  gr_status st = s && shard_of ? GR_OK : st_fail(GR_ST_IO, GR_ENOMEM, "out of memory");
  if (!st) {
    s->dir = st_strdup(dir);
    s->prefix = st_strdup(prefix ? prefix : "model");
    s->n_shards = plan_shards(entries, n, max_shard_bytes, shard_of, &s->total_size);
    s->w = gr_calloc(s->n_shards, sizeof *s->w);
    s->files = gr_calloc(s->n_shards, sizeof *s->files);
    s->routes = gr_malloc((n + 1) * sizeof *s->routes);
    s->names = gr_calloc(n + 1, sizeof *s->names);
    if (!s->dir || !s->prefix || !s->w || !s->files || !s->routes || !s->names)
      st = st_fail(GR_ST_IO, GR_ENOMEM, "out of memory");
  }
  for (size_t i = 0; !st && i < n; i++, s->n++) {
    s->names[i] = st_strdup(entries[i].name);
    if (!s->names[i]) st = st_fail(GR_ST_IO, GR_ENOMEM, "out of memory");
    else s->routes[i] = (route){s->names[i], shard_of[i]};
  }
  if (!st) qsort(s->routes, n, sizeof *s->routes, cmp_route);
  for (size_t k = 0; !st && k < s->n_shards; k++) st = begin_shard(s, k, entries, shard_of, n, meta, n_meta);
  gr_free(shard_of);
  if (st) {
    gr_st_sharded_abort(s);
    return st;
  }
  *out = s;
  return st_ok();
}

static gr_st_writer *route_of(gr_st_sharded_writer *s, const char *name) {
  if (!s || !name) return NULL;
  route key = {name, 0};
  const route *r = bsearch(&key, s->routes, s->n, sizeof *s->routes, cmp_route);
  return r ? s->w[r->shard] : NULL;
}

gr_status gr_st_sharded_write(gr_st_sharded_writer *s, const char *name, const void *bytes, uint64_t nbytes) {
  gr_st_writer *w = route_of(s, name);
  if (!w) return st_fail(GR_ST_NOT_FOUND, GR_ENOTFOUND, "sharded writer: tensor '%s' was not declared", name ? name : "(null)");
  return gr_st_writer_write(w, name, bytes, nbytes);
}

gr_status gr_st_sharded_write_f32(gr_st_sharded_writer *s, const char *name, const float *src, uint64_t numel) {
  gr_st_writer *w = route_of(s, name);
  if (!w) return st_fail(GR_ST_NOT_FOUND, GR_ENOTFOUND, "sharded writer: tensor '%s' was not declared", name ? name : "(null)");
  return gr_st_writer_write_f32(w, name, src, numel);
}

/* transformers' layout: json.dumps(index, indent=2, sort_keys=True) + "\n". */
static gr_status write_index(gr_st_sharded_writer *s) {
  st_buf b = {0};
  st_buf_puts(&b, "{\n  \"metadata\": {\n    \"total_size\": ");
  st_buf_u64(&b, s->total_size);
  st_buf_puts(&b, "\n  },\n  \"weight_map\": {");
  for (size_t i = 0; i < s->n; i++) {
    st_buf_puts(&b, i ? ",\n    " : "\n    ");
    st_buf_json_string(&b, s->routes[i].name);
    st_buf_puts(&b, ": ");
    st_buf_json_string(&b, s->files[s->routes[i].shard]);
  }
  st_buf_puts(&b, "\n  }\n}\n");
  char path[4096], file[600];
  snprintf(file, sizeof file, "%s.safetensors.index.json", s->prefix);
  gr_status st = st_path_join(path, sizeof path, s->dir, file);
  if (!st) st = b.oom ? st_fail(GR_ST_IO, GR_ENOMEM, "out of memory") : st_atomic_write_file(path, b.p, b.len);
  gr_free(b.p);
  return st;
}

gr_status gr_st_sharded_finish(gr_st_sharded_writer *s) {
  if (!s) return st_fail(GR_ST_BAD_ARG, GR_EARG, "gr_st_sharded_finish: NULL writer");
  gr_status st = GR_OK;
  for (size_t k = 0; k < s->n_shards; k++) {
    gr_st_writer *w = s->w[k];
    s->w[k] = NULL;
    if (st) gr_st_writer_abort(w);
    else st = gr_st_writer_finish(w);
  }
  char path[4096], file[600];
  snprintf(file, sizeof file, "%s.safetensors.index.json", s->prefix);
  if (!st && s->n_shards > 1) st = write_index(s);
  else if (!st && !st_path_join(path, sizeof path, s->dir, file)) unlink(path); /* a stale index would shadow the single file */
  gr_st_sharded_abort(s);
  return st ? st : st_ok();
}
