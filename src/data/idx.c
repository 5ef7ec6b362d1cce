/* data/idx.c — readers for files on disk: IDX (MNIST family, gzip or raw, via
 * zlib), Fashion-MNIST splits and plain numeric CSV. Everything is validated
 * before use; not a place for selections or batching (dataset.c, loader.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "graft/data.h"

/* Largest decompressed file graft reads (1 GiB): anything larger is corrupt. */
#define IDX_MAX_BYTES ((int64_t)1 << 30)

static gr_status read_gz_all(const char *path, uint8_t **buf_out, int64_t *len_out) {
  gzFile f = gzopen(path, "rb");
  if (!f) return gr_error(GR_EIO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
  int64_t cap = 1 << 20, len = 0;
  uint8_t *buf = gr_malloc((size_t)cap);
  if (!buf) {
    gzclose(f);
    return gr_error(GR_ENOMEM, "%s: out of memory", path);
  }
  for (;;) {
    if (len == cap) {
      if (cap >= IDX_MAX_BYTES) {
        gr_free(buf);
        gzclose(f);
        return gr_error(GR_EFORMAT, "%s: larger than %lld bytes decompressed", path, (long long)IDX_MAX_BYTES);
      }
      uint8_t *nb = gr_malloc((size_t)cap * 2);
      if (!nb) {
        gr_free(buf);
        gzclose(f);
        return gr_error(GR_ENOMEM, "%s: out of memory", path);
      }
      memcpy(nb, buf, (size_t)len);
      gr_free(buf);
      buf = nb;
      cap *= 2;
    }
    int want = (int)((cap - len) > (1 << 24) ? (1 << 24) : (cap - len));
    int got = gzread(f, buf + len, (unsigned)want);
    if (got < 0) {
      int zerr;
      const char *msg = gzerror(f, &zerr);
      gr_status s = gr_error(GR_EFORMAT, "%s: corrupt gzip data: %s", path, msg);
      gr_free(buf);
      gzclose(f);
      return s;
    }
    if (got == 0) break;
    len += got;
  }
  gzclose(f);
  *buf_out = buf;
  *len_out = len;
  return GR_OK;
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static gr_status idx_parse_header(const char *path, const uint8_t *buf, int64_t len, gr_idx *out) {
  if (len < 4) return gr_error(GR_EFORMAT, "%s: IDX file too short for a header (%lld bytes)", path, (long long)len);
  if (buf[0] != 0 || buf[1] != 0)
    return gr_error(GR_EFORMAT, "%s: bad IDX magic %02x%02x%02x%02x (want 000008NN)", path, buf[0], buf[1], buf[2],
                    buf[3]);
  if (buf[2] != 0x08)
    return gr_error(GR_EUNSUPPORTED, "%s: IDX element type 0x%02x (only unsigned byte 0x08 is supported)", path,
                    buf[2]);
  int nd = buf[3];
  if (nd < 1 || nd > 4) return gr_error(GR_EFORMAT, "%s: IDX has %d dims (1..4 allowed)", path, nd);
  int64_t hdr = 4 + 4 * (int64_t)nd;
  if (len < hdr) return gr_error(GR_EFORMAT, "%s: IDX header truncated (%lld bytes)", path, (long long)len);
  int64_t count = 1;
  for (int i = 0; i < nd; i++) {
    uint32_t d = be32(buf + 4 + 4 * i);
    if (d == 0) return gr_error(GR_EFORMAT, "%s: IDX dim %d is zero", path, i);
    if (count > IDX_MAX_BYTES / (int64_t)d)
      return gr_error(GR_EFORMAT, "%s: IDX dims too large (dim %d = %u)", path, i, d);
    count *= d;
    out->dims[i] = d;
  }
  if (len - hdr != count)
    return gr_error(GR_EFORMAT, "%s: IDX payload is %lld bytes but the header's dims need %lld", path,
                    (long long)(len - hdr), (long long)count);
  out->ndim = nd;
  out->count = count;
  return GR_OK;
}

gr_status gr_idx_read(const char *path, gr_idx *out) {
  if (!path || !out) return gr_error(GR_EARG, "idx: path or output is NULL");
  memset(out, 0, sizeof *out);
  struct stat st;
  if (stat(path, &st) != 0) return gr_error(GR_ENOTFOUND, "%s: no such file", path);
  uint8_t *buf = NULL;
  int64_t len = 0;
  gr_status s = read_gz_all(path, &buf, &len);
  if (s) return s;
  s = idx_parse_header(path, buf, len, out);
  if (s) {
    gr_free(buf);
    memset(out, 0, sizeof *out);
    return s;
  }
  int64_t hdr = 4 + 4 * (int64_t)out->ndim;
  memmove(buf, buf + hdr, (size_t)out->count);
  out->data = buf;
  return GR_OK;
}

void gr_idx_free(gr_idx *x) {
  if (!x) return;
  gr_free(x->data);
  memset(x, 0, sizeof *x);
}

static gr_status fmnist_file(const char *dir, const char *name, gr_idx *out) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct stat st;
  if (stat(path, &st) != 0)
    return gr_error(GR_ENOTFOUND,
                    "Fashion-MNIST file %s is missing: install the Debian package '%s' "
                    "(apt-get install %s) or set GRAFT_FMNIST_DIR",
                    path, GR_FMNIST_PACKAGE, GR_FMNIST_PACKAGE);
  return gr_idx_read(path, out);
}

gr_status gr_fmnist_load(const char *dir, const char *split, gr_dataset **out) {
  if (!out) return gr_error(GR_EARG, "fmnist: output is NULL");
  *out = NULL;
  if (!dir || !dir[0]) dir = getenv("GRAFT_FMNIST_DIR");
  if (!dir || !dir[0]) dir = GR_FMNIST_DIR;
  if (!split) split = "train";
  const char *pre = !strcmp(split, "train") ? "train" : !strcmp(split, "test") ? "t10k" : NULL;
  if (!pre) return gr_error(GR_EARG, "fmnist: split '%s' (want train or test)", split);
  char iname[64], lname[64];
  snprintf(iname, sizeof iname, "%s-images-idx3-ubyte.gz", pre);
  snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte.gz", pre);
  gr_idx im = {0}, lb = {0};
  gr_status s = fmnist_file(dir, iname, &im);
  if (!s) s = fmnist_file(dir, lname, &lb);
  if (!s && (im.ndim != 3 || lb.ndim != 1))
    s = gr_error(GR_EFORMAT, "fmnist %s: want 3-D images and 1-D labels, got %d-D and %d-D", split, im.ndim, lb.ndim);
  if (!s && im.dims[0] != lb.dims[0])
    s = gr_error(GR_EFORMAT, "fmnist %s: %lld images but %lld labels", split, (long long)im.dims[0],
                 (long long)lb.dims[0]);
  gr_dataset *d = NULL;
  if (!s) {
    d = gr_dataset_new(im.dims[0], 1, (int)im.dims[1], (int)im.dims[2], 10);
    if (!d) s = GR_ENOMEM;
  }
  for (int64_t i = 0; !s && i < lb.count; i++) {
    if (lb.data[i] > 9) s = gr_error(GR_EFORMAT, "fmnist %s: label %d of sample %lld is not in 0..9", split,
                                     lb.data[i], (long long)i);
    else d->y[i] = lb.data[i];
  }
  for (int64_t i = 0; !s && i < im.count; i++) d->x[i] = im.data[i] / 255.0f;
  gr_idx_free(&im);
  gr_idx_free(&lb);
  if (s) {
    gr_dataset_free(d);
    return s;
  }
  *out = d;
  return GR_OK;
}

/* ---- CSV ------------------------------------------------------------------ */
/* Parses one line into vals (up to cap); returns the field count or -1 if a
 * field is not a finite number. */
static int csv_split(char *line, double *vals, int cap, int *bad_field) {
  int n = 0;
  char *p = line;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
    if (end == p || errno || !isfinite(v) || (*end && *end != ',')) {
      *bad_field = n;
      return -1;
    }
    if (n < cap) vals[n] = v;
    n++;
    if (!*end) return n;
    p = end + 1;
  }
}

static bool blank(const char *s) {
  for (; *s; s++)
    if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') return false;
  return true;
}

typedef struct csv_rows {
  double *v;
  int64_t n, cap;
  int cols;
} csv_rows;

static gr_status csv_push(csv_rows *r, const double *vals, const char *path) {
  if ((r->n + 1) * r->cols > r->cap) {
    int64_t nc = r->cap ? r->cap * 2 : 4096;
    while (nc < (r->n + 1) * r->cols) nc *= 2;
    double *nv = gr_malloc((size_t)nc * sizeof(double));
    if (!nv) return gr_error(GR_ENOMEM, "%s: out of memory", path);
    if (r->v) memcpy(nv, r->v, (size_t)(r->n * r->cols) * sizeof(double));
    gr_free(r->v);
    r->v = nv;
    r->cap = nc;
  }
  memcpy(r->v + r->n * r->cols, vals, (size_t)r->cols * sizeof(double));
  r->n++;
  return GR_OK;
}

static gr_status csv_read_rows(const char *path, FILE *f, csv_rows *r) {
  enum { MAXCOL = 65536 };
  double *vals = gr_malloc(MAXCOL * sizeof(double));
  char *line = NULL;
  size_t lcap = 0;
  gr_status s = vals ? GR_OK : gr_error(GR_ENOMEM, "%s: out of memory", path);
  int64_t lineno = 0, rows_seen = 0;
  while (!s && getline(&line, &lcap, f) >= 0) {
    lineno++;
    if (blank(line)) continue;
    int bad = 0, n = csv_split(line, vals, MAXCOL, &bad);
    if (n < 0 && rows_seen == 0 && lineno == 1) continue; /* header */
    rows_seen++;
    if (n < 0) s = gr_error(GR_EFORMAT, "%s:%lld: field %d is not a number", path, (long long)lineno, bad + 1);
    else if (n > MAXCOL) s = gr_error(GR_EFORMAT, "%s:%lld: more than %d columns", path, (long long)lineno, MAXCOL);
    else if (r->cols && n != r->cols)
      s = gr_error(GR_EFORMAT, "%s:%lld: %d fields, expected %d", path, (long long)lineno, n, r->cols);
    else {
      r->cols = n;
      s = csv_push(r, vals, path);
    }
  }
  free(line);
  gr_free(vals);
  if (!s && r->n == 0) s = gr_error(GR_EFORMAT, "%s: no data rows", path);
  if (!s && r->cols < 2) s = gr_error(GR_EFORMAT, "%s: need at least 2 columns (features and a label)", path);
  return s;
}

static gr_status csv_to_dataset(const char *path, const csv_rows *r, int label_col, gr_dataset **out) {
  int lc = label_col < 0 ? r->cols - 1 : label_col;
  if (lc >= r->cols) return gr_error(GR_EARG, "%s: label column %d but only %d columns", path, lc, r->cols);
  int max_label = 0;
  for (int64_t i = 0; i < r->n; i++) {
    double v = r->v[i * r->cols + lc];
    if (v < 0 || v != floor(v) || v >= GR_DATA_MAX_CLASSES)
      return gr_error(GR_EFORMAT, "%s: row %lld: label %g is not an integer in 0..%d", path, (long long)i + 1, v,
                      GR_DATA_MAX_CLASSES - 1);
    if ((int)v > max_label) max_label = (int)v;
  }
  gr_dataset *d = gr_dataset_new(r->n, 1, 1, r->cols - 1, max_label + 1);
  if (!d) return GR_ENOMEM;
  for (int64_t i = 0; i < r->n; i++) {
    const double *row = r->v + i * r->cols;
    int64_t k = 0;
    for (int j = 0; j < r->cols; j++)
      if (j != lc) d->x[i * d->dim + k++] = (float)row[j];
    d->y[i] = (int32_t)row[lc];
  }
  *out = d;
  return GR_OK;
}

gr_status gr_csv_load(const char *path, int label_col, gr_dataset **out) {
  if (!path || !out) return gr_error(GR_EARG, "csv: path or output is NULL");
  *out = NULL;
  FILE *f = fopen(path, "r");
  if (!f) return gr_error(errno == ENOENT ? GR_ENOTFOUND : GR_EIO, "%s: cannot open: %s", path, strerror(errno));
  csv_rows r = {0};
  gr_status s = csv_read_rows(path, f, &r);
  fclose(f);
  if (!s) s = csv_to_dataset(path, &r, label_col, out);
  gr_free(r.v);
  return s;
}
