/* cli/convert.c — `graft convert IN OUT [--dtype f16|bf16|f32] [--rename FROM=TO]`:
 * rewrite a safetensors file or model (single file, directory or sharded) with
 * its floating-point tensors cast to one dtype (integer and bool tensors are
 * copied unchanged) and tensor names rewritten (every occurrence of FROM
 * replaced by TO; several rules separated by ','). Tensors stream one at a
 * time; OUT ending in .safetensors is one file, anything else a model
 * directory (sharded above --max-shard-bytes). Output is written atomically,
 * so OUT may even be IN. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

#define MAX_RULES 16

typedef struct rule {
  char from[256], to[256];
} rule;

static int parse_rules(const char *spec, rule *r, int *n) {
  *n = 0;
  for (const char *p = spec; p && *p;) {
    const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p), *eq = memchr(p, '=', (size_t)(end - p));
    if (!eq || eq == p || *n == MAX_RULES || eq - p >= 256 || end - eq > 256) return -1;
    snprintf(r[*n].from, sizeof r[*n].from, "%.*s", (int)(eq - p), p);
    snprintf(r[*n].to, sizeof r[*n].to, "%.*s", (int)(end - eq - 1), eq + 1);
    (*n)++;
    p = comma ? comma + 1 : end;
  }
  return 0;
}

/* name with every rule applied in order; malloc'd. */
static char *rename_tensor(const char *name, const rule *r, int n) {
  char *cur = strdup(name);
  for (int i = 0; cur && i < n; i++) {
    size_t fl = strlen(r[i].from), tl = strlen(r[i].to), count = 0;
    for (const char *p = strstr(cur, r[i].from); p; p = strstr(p + fl, r[i].from)) count++;
    if (!count) continue;
    char *out = malloc(strlen(cur) + count * tl + 1), *o = out;
    if (!out) break;
    for (const char *p = cur, *hit; (hit = strstr(p, r[i].from)) || *p; p = hit + fl) {
      if (!hit) {
        o = stpcpy(o, p);
        break;
      }
      memcpy(o, p, (size_t)(hit - p));
      o += hit - p;
      o = stpcpy(o, r[i].to);
    }
    *o = 0;
    free(cur);
    cur = out;
  }
  return cur;
}

static bool is_float(gr_dtype d) { return d == GR_DT_F32 || d == GR_DT_F16 || d == GR_DT_BF16 || d == GR_DT_F64; }

typedef struct job {
  gr_st_model *in;
  size_t n;
  gr_st_entry *e;
  char **names;
  gr_st_kv *meta;
  size_t n_meta;
} job;

static gr_status plan(job *j, const char *dtype_flag, const rule *rules, int n_rules) {
  gr_dtype target = GR_DT_COUNT;
  if (dtype_flag) target = !strcmp(dtype_flag, "f16") ? GR_DT_F16 : !strcmp(dtype_flag, "bf16") ? GR_DT_BF16 : GR_DT_F32;
  j->n = gr_st_model_count(j->in);
  j->e = calloc(j->n + 1, sizeof *j->e);
  j->names = calloc(j->n + 1, sizeof *j->names);
  if (!j->e || !j->names) return gr_error(GR_ENOMEM, "out of memory");
  for (size_t i = 0; i < j->n; i++) {
    const gr_st_tensor *t = gr_st_model_at(j->in, i);
    if (t->ndim > GR_MAX_DIMS) return gr_error(GR_EUNSUPPORTED, "tensor '%s' has %d dims (graft converts up to %d)", t->name, t->ndim, GR_MAX_DIMS);
    int64_t *shape = calloc((size_t)t->ndim + 1, sizeof *shape);
    j->names[i] = rename_tensor(t->name, rules, n_rules);
    if (!shape || !j->names[i]) return gr_error(GR_ENOMEM, "out of memory");
    for (int d = 0; d < t->ndim; d++) shape[d] = (int64_t)t->shape[d];
    j->e[i] = (gr_st_entry){j->names[i], target != GR_DT_COUNT && is_float(t->dtype) ? target : t->dtype, t->ndim, shape};
  }
  const gr_st_file *first = gr_st_model_shard(j->in, 0);
  j->n_meta = gr_st_metadata_count(first);
  j->meta = calloc(j->n_meta + 1, sizeof *j->meta);
  if (!j->meta) return gr_error(GR_ENOMEM, "out of memory");
  for (size_t i = 0; i < j->n_meta; i++) gr_st_metadata_at(first, i, &j->meta[i].key, &j->meta[i].value);
  if (!j->n_meta) j->meta[j->n_meta++] = (gr_st_kv){"format", "pt"}; /* the HF convention */
  return GR_OK;
}

/* One tensor: raw bytes when the dtype is unchanged, else via f32. */
static gr_status copy_tensor(const gr_st_tensor *t, const gr_st_entry *e, gr_st_writer *w, gr_st_sharded_writer *sw) {
  if (t->dtype == e->dtype)
    return w ? gr_st_writer_write(w, e->name, t->data, t->nbytes) : gr_st_sharded_write(sw, e->name, t->data, t->nbytes);
  float *buf = malloc(t->numel ? t->numel * sizeof(float) : 1);
  if (!buf) return gr_error(GR_ENOMEM, "tensor '%s': out of memory for %llu floats", t->name, (unsigned long long)t->numel);
  gr_status st = gr_st_read_f32(t, buf, t->numel);
  if (!st) st = w ? gr_st_writer_write_f32(w, e->name, buf, t->numel) : gr_st_sharded_write_f32(sw, e->name, buf, t->numel);
  free(buf);
  return st;
}

static gr_status run(job *j, const char *out, int64_t max_shard) {
  size_t ol = strlen(out);
  bool single = ol > 12 && !strcmp(out + ol - 12, ".safetensors");
  gr_st_writer *w = NULL;
  gr_st_sharded_writer *sw = NULL;
  if (!single && mkdir(out, 0777) && errno != EEXIST) return gr_error(GR_EIO, "%s: cannot create directory: %s", out, strerror(errno));
  gr_status st = single ? gr_st_writer_begin(out, j->e, j->n, j->meta, j->n_meta, &w)
                        : gr_st_sharded_begin(out, "model", j->e, j->n, (uint64_t)max_shard, j->meta, j->n_meta, &sw);
  for (size_t i = 0; i < j->n && !st; i++) st = copy_tensor(gr_st_model_at(j->in, i), &j->e[i], w, sw);
  if (st) {
    gr_st_writer_abort(w);
    gr_st_sharded_abort(sw);
    return st;
  }
  return single ? gr_st_writer_finish(w) : gr_st_sharded_finish(sw);
}

int cmd_convert(int argc, char **argv) {
  const char *dtype = NULL, *rename = NULL;
  int64_t max_shard = 5000000000LL;
  const cli_opt opts[] = {
      {"--dtype", CLI_STR, &dtype, "cast floating-point tensors to f16, bf16 or f32 (round to nearest even)"},
      {"--rename", CLI_STR, &rename, "FROM=TO[,FROM=TO...]: replace every FROM in tensor names by TO"},
      {"--max-shard-bytes", CLI_I64, &max_shard, "shard a directory output above this many bytes (0: one file)"},
  };
  cli_spec spec = {"convert", "graft convert IN OUT [--dtype f16|bf16|f32] [--rename FROM=TO]",
                   "Rewrite a safetensors file or model with floating-point tensors cast to one dtype and/or tensor "
                   "names rewritten. OUT ending in .safetensors is one file, otherwise a model directory.",
                   opts, 3, 2, 2};
  const char *pos[2];
  int np = 0, rc = cli_parse(&spec, argc, argv, pos, &np);
  if (rc == CLI_HELP) return CLI_OK;
  if (rc) return rc;
  rule rules[MAX_RULES];
  int n_rules = 0;
  if (dtype && strcmp(dtype, "f16") && strcmp(dtype, "bf16") && strcmp(dtype, "f32")) {
    fprintf(stderr, "graft convert: --dtype must be f16, bf16 or f32, got '%s'\n", dtype);
    return CLI_USAGE;
  }
  if (rename && parse_rules(rename, rules, &n_rules)) {
    fprintf(stderr, "graft convert: --rename wants FROM=TO[,FROM=TO...] (at most %d rules), got '%s'\n", MAX_RULES, rename);
    return CLI_USAGE;
  }
  if (max_shard < 0) {
    fprintf(stderr, "graft convert: --max-shard-bytes must be >= 0\n");
    return CLI_USAGE;
  }
  job j = {0};
  if (gr_st_model_open(pos[0], &j.in)) return cli_fail_file(pos[0]);
  gr_status st = plan(&j, dtype, rules, n_rules);
  if (!st) st = run(&j, pos[1], max_shard);
  int ret = st ? cli_fail_file(pos[1]) : CLI_OK;
  if (!st) printf("wrote %zu tensors to %s\n", j.n, pos[1]);
  for (size_t i = 0; i < j.n && j.e; i++) free((void *)j.e[i].shape);
  for (size_t i = 0; i < j.n && j.names; i++) free(j.names[i]);
  free(j.e);
  free(j.names);
  free(j.meta);
  gr_st_model_close(j.in);
  return ret;
}
