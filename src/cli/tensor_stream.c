/* cli/tensor_stream.c — read-only models and all-or-nothing output
 * directories for merge, taskvec and rebase (see tensor_stream.h), on top of
 * graft/safetensors.h: models are mmapped and validated by the io layer;
 * finished tensors' pages are given back with madvise so the resident set
 * stays at a few tensors; the output is written by the streaming sharded
 * writer (shards of at most TS_SHARD_BYTES by default, as mergekit) into
 * DIR.tmp-<pid> and renamed to DIR at the end. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/tensor_stream.h"
#include "graft/safetensors.h"

/* mergekit's default output shard size (out_shard_size "5B"). */
#define TS_SHARD_BYTES 5000000000ull

struct ts_model {
  gr_st_model *st;
  char *path;
  int n;
  ts_tensor *t;
  const gr_st_tensor **raw;
};

int64_t ts_dtype_size(const char *dtype) {
  gr_dtype dt;
  if (!dtype || gr_dtype_parse(dtype, strlen(dtype), &dt)) return 0;
  return gr_dtype_bits(dt) / 8;
}

bool ts_same_shape(const ts_tensor *a, const ts_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return false;
  return true;
}

static bool float_dtype(gr_dtype d) { return d == GR_DT_F32 || d == GR_DT_F64 || d == GR_DT_F16 || d == GR_DT_BF16; }

gr_status ts_model_open(const char *path, ts_model **out) {
  *out = NULL;
  ts_model *m = calloc(1, sizeof *m);
  if (!m) return gr_error(GR_ENOMEM, "out of memory");
  gr_status st = gr_st_model_open(path, &m->st);
  if (st) {
    free(m);
    return st;
  }
  m->path = strdup(path);
  m->n = (int)gr_st_model_count(m->st);
  m->t = calloc((size_t)(m->n ? m->n : 1), sizeof *m->t);
  m->raw = calloc((size_t)(m->n ? m->n : 1), sizeof *m->raw);
  if (!m->path || !m->t || !m->raw) {
    ts_model_close(m);
    return gr_error(GR_ENOMEM, "out of memory");
  }
  for (int i = 0; i < m->n; i++) {
    const gr_st_tensor *r = gr_st_model_at(m->st, (size_t)i);
    ts_tensor *t = &m->t[i];
    m->raw[i] = r;
    t->name = r->name;
    snprintf(t->dtype, sizeof t->dtype, "%s", gr_dtype_name(r->dtype));
    t->ndim = r->ndim;
    for (int d = 0; d < r->ndim && d < GR_MAX_DIMS; d++) t->shape[d] = (int64_t)r->shape[d];
    t->numel = (int64_t)r->numel;
    t->nbytes = (int64_t)r->nbytes;
    t->is_float = float_dtype(r->dtype);
    if (r->ndim > GR_MAX_DIMS) {
      ts_model_close(m);
      return gr_error(GR_EUNSUPPORTED, "%s: tensor '%s' has %d dims (at most %d)", path, r->name, r->ndim, GR_MAX_DIMS);
    }
  }
  *out = m;
  return GR_OK;
}

void ts_model_close(ts_model *m) {
  if (!m) return;
  gr_st_model_close(m->st);
  free(m->path);
  free(m->t);
  free(m->raw);
  free(m);
}

const char *ts_model_path(const ts_model *m) { return m->path; }
int ts_model_count(const ts_model *m) { return m->n; }
const ts_tensor *ts_model_tensor(const ts_model *m, int i) { return &m->t[i]; }

int ts_model_find(const ts_model *m, const char *name) {
  const gr_st_tensor *r = gr_st_model_find(m->st, name);
  if (!r) {
    gr_clear_error();
    return -1;
  }
  for (int i = 0; i < m->n; i++)
    if (m->raw[i] == r) return i;
  return -1;
}

gr_status ts_model_read_f32(ts_model *m, int i, const float **data, float **owned) {
  const gr_st_tensor *r = m->raw[i];
  *owned = NULL;
  if (r->dtype == GR_DT_F32 && ((uintptr_t)r->data % sizeof(float)) == 0) {
    *data = r->data;
    return GR_OK;
  }
  float *buf = malloc(sizeof(float) * (size_t)(r->numel ? r->numel : 1));
  if (!buf) return gr_error(GR_ENOMEM, "%s: no memory to convert tensor '%s'", m->path, r->name);
  gr_status st = gr_st_read_f32(r, buf, r->numel);
  if (st) {
    free(buf);
    return st;
  }
  *data = *owned = buf;
  return GR_OK;
}

gr_status ts_model_read_raw(ts_model *m, int i, const void **bytes) {
  *bytes = m->raw[i]->data;
  return GR_OK;
}

void ts_model_done(ts_model *m, int i, float *owned) {
  free(owned);
  const gr_st_tensor *r = m->raw[i];
  if (!r->nbytes) return;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t lo = (uintptr_t)r->data & ~(page - 1), hi = (uintptr_t)r->data + r->nbytes;
  madvise((void *)lo, hi - lo, MADV_DONTNEED); /* read-only file pages: dropped, re-read on demand */
}

/* ---- output directory --------------------------------------------------- */

struct ts_out {
  char *dir, *tmp, path_buf[4096];
  bool force;
  uint64_t shard_bytes;
  int n;
  ts_tensor *specs;
  gr_st_sharded_writer *w;
};

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  return remove(p);
}

static void remove_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static bool dir_is_empty(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return false;
  bool empty = true;
  for (struct dirent *e; empty && (e = readdir(d));) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
  closedir(d);
  return empty;
}

/* fsync the directory holding path, so a rename in it is durable. */
static void sync_parent(const char *path) {
  char *dup = strdup(path);
  if (!dup) return;
  int fd = open(dirname(dup), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) fsync(fd), close(fd);
  free(dup);
}

gr_status ts_out_open(const char *dir, bool force, uint64_t shard_bytes, ts_out **out) {
  *out = NULL;
  struct stat sb;
  if (stat(dir, &sb) == 0 && (!S_ISDIR(sb.st_mode) || (!dir_is_empty(dir) && !force)))
    return gr_error(GR_EARG, "output '%s' exists%s (use --force to replace it)", dir,
                    S_ISDIR(sb.st_mode) ? " and is not empty" : " and is not a directory");
  ts_out *o = calloc(1, sizeof *o);
  size_t len = strlen(dir) + 32;
  if (o) o->dir = strdup(dir), o->tmp = malloc(len);
  if (!o || !o->dir || !o->tmp) {
    ts_out_abort(o);
    return gr_error(GR_ENOMEM, "out of memory");
  }
  for (size_t l = strlen(o->dir); l > 1 && o->dir[l - 1] == '/'; l--) o->dir[l - 1] = 0;
  snprintf(o->tmp, strlen(o->dir) + 32, "%s.tmp-%ld", o->dir, (long)getpid());
  remove_tree(o->tmp);
  if (mkdir(o->tmp, 0755)) {
    gr_status st = gr_error(GR_EIO, "cannot create %s: %s", o->tmp, strerror(errno));
    free(o->tmp);
    o->tmp = NULL;
    ts_out_abort(o);
    return st;
  }
  o->force = force;
  o->shard_bytes = shard_bytes ? shard_bytes : TS_SHARD_BYTES;
  *out = o;
  return GR_OK;
}

gr_status ts_out_declare(ts_out *o, int n, const ts_tensor *specs) {
  gr_st_entry *e = calloc((size_t)(n ? n : 1), sizeof *e);
  o->specs = calloc((size_t)(n ? n : 1), sizeof *o->specs);
  if (!e || !o->specs) {
    free(e);
    return gr_error(GR_ENOMEM, "out of memory");
  }
  gr_status st = GR_OK;
  for (int i = 0; i < n && !st; i++) {
    o->specs[i] = specs[i];
    e[i] = (gr_st_entry){.name = specs[i].name, .ndim = specs[i].ndim, .shape = o->specs[i].shape};
    st = gr_dtype_parse(specs[i].dtype, strlen(specs[i].dtype), &e[i].dtype);
  }
  o->n = n;
  gr_st_kv meta = {"format", "pt"};
  if (!st) st = gr_st_sharded_begin(o->tmp, "model", e, (size_t)n, o->shard_bytes, &meta, 1, &o->w);
  free(e);
  return st;
}

gr_status ts_out_write_f32(ts_out *o, int i, const float *data) {
  return gr_st_sharded_write_f32(o->w, o->specs[i].name, data, (uint64_t)o->specs[i].numel);
}

gr_status ts_out_write_raw(ts_out *o, int i, const void *bytes) {
  uint64_t nb = (uint64_t)(o->specs[i].numel * ts_dtype_size(o->specs[i].dtype));
  return gr_st_sharded_write(o->w, o->specs[i].name, bytes, nb);
}

const char *ts_out_path(ts_out *o, const char *file) {
  snprintf(o->path_buf, sizeof o->path_buf, "%s/%s", o->tmp, file);
  return o->path_buf;
}

gr_status ts_out_copy_file(ts_out *o, const char *src_dir, const char *name) {
  char src[4096];
  snprintf(src, sizeof src, "%s/%s", src_dir, name);
  FILE *in = fopen(src, "rb");
  if (!in) return GR_OK;
  FILE *out = fopen(ts_out_path(o, name), "wb");
  char buf[65536];
  size_t got;
  bool bad = !out;
  while (!bad && (got = fread(buf, 1, sizeof buf, in)) > 0) bad = fwrite(buf, 1, got, out) != got;
  bad |= ferror(in) != 0;
  if (out) bad |= fflush(out) != 0 || fsync(fileno(out)) != 0, bad |= fclose(out) != 0;
  fclose(in);
  return bad ? gr_error(GR_EIO, "cannot copy %s into %s", src, o->tmp) : GR_OK;
}

gr_status ts_out_commit(ts_out *o) {
  gr_status st = o->w ? gr_st_sharded_finish(o->w) : GR_OK;
  o->w = NULL;
  char old[4200] = "";
  struct stat sb;
  if (!st && stat(o->dir, &sb) == 0) {
    snprintf(old, sizeof old, "%s.old-%ld", o->dir, (long)getpid());
    if (rmdir(o->dir) == 0) old[0] = 0;
    else if (!o->force || rename(o->dir, old)) st = gr_error(GR_EIO, "cannot move the existing %s aside: %s", o->dir, strerror(errno));
  }
  if (!st && rename(o->tmp, o->dir)) {
    st = gr_error(GR_EIO, "cannot rename %s to %s: %s", o->tmp, o->dir, strerror(errno));
    if (old[0]) rename(old, o->dir);
    old[0] = 0;
  }
  if (!st) {
    sync_parent(o->dir);
    free(o->tmp);
    o->tmp = NULL;
  }
  if (old[0]) remove_tree(old);
  ts_out_abort(o);
  return st;
}

void ts_out_abort(ts_out *o) {
  if (!o) return;
  if (o->w) gr_st_sharded_abort(o->w);
  if (o->tmp) remove_tree(o->tmp);
  free(o->tmp);
  free(o->dir);
  free(o->specs);
  free(o);
}
