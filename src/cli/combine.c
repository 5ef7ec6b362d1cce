/* cli/combine.c — streamed elementwise model combinations for `graft taskvec`
 * and `graft rebase` (see combine.h): plan which tensors go out and which
 * terms each one gets, then read, combine and write one tensor at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/combine.h"
#include "graft/report.h"

typedef struct combine_item {
  ts_tensor spec;
  ts_model *src;  /* where the tensor (or its raw copy) comes from */
  int idx;
  bool raw;       /* copied unchanged (non-float, or an added extra) */
  int b_idx[COMBINE_MAX_TERMS], c_idx[COMBINE_MAX_TERMS]; /* -1: term left out */
} combine_item;

typedef struct combine_stats {
  int matched, partial, dropped, shape, nonfloat, extra_added, extra_ignored, shown;
  int64_t bytes_in, bytes_out;
} combine_stats;

bool combine_parse_unmatched(const char *s, combine_unmatched *out) {
  if (!strcmp(s, "keep")) *out = UNMATCHED_KEEP;
  else if (!strcmp(s, "drop")) *out = UNMATCHED_DROP;
  else if (!strcmp(s, "error")) *out = UNMATCHED_ERROR;
  else return false;
  return true;
}

bool combine_parse_dtype(const char *s, const char **out) {
  if (!s) *out = NULL;
  else if (!strcasecmp(s, "f32") || !strcmp(s, "float32")) *out = "F32";
  else if (!strcasecmp(s, "f16") || !strcmp(s, "float16")) *out = "F16";
  else if (!strcasecmp(s, "bf16") || !strcmp(s, "bfloat16")) *out = "BF16";
  else return false;
  return true;
}

static void note(const combine_spec *s, combine_stats *st, const char *fmt, const char *name, const char *path) {
  if (s->json) return;
  if (st->shown++ < 20) {
    fprintf(stderr, "graft %s: ", s->verb);
    fprintf(stderr, fmt, name, path);
    fputc('\n', stderr);
  } else if (st->shown == 21) fprintf(stderr, "graft %s: (further tensors not listed)\n", s->verb);
}

/* Index of name in m with ref's shape; -1 (and a note) when absent or shaped differently. */
static int partner(const combine_spec *s, combine_stats *st, ts_model *m, const ts_tensor *ref) {
  int i = ts_model_find(m, ref->name);
  if (i < 0) return -1;
  if (!ts_same_shape(ts_model_tensor(m, i), ref)) {
    st->shape++;
    note(s, st, "tensor '%s' has another shape in %s: left out of the combination", ref->name, ts_model_path(m));
    return -2;
  }
  return i;
}

/* Fills item's term indices; returns false when the tensor must be dropped. */
static gr_status plan_terms(const combine_spec *s, combine_stats *st, combine_item *it, bool *keep) {
  int missing = 0;
  *keep = true;
  for (int k = 0; k < s->n_terms; k++) {
    int b = partner(s, st, s->terms[k].b, &it->spec), c = s->terms[k].c ? partner(s, st, s->terms[k].c, &it->spec) : 0;
    if (b < 0 || c < 0) {
      const char *where = ts_model_path(b < 0 ? s->terms[k].b : s->terms[k].c);
      if (s->unmatched == UNMATCHED_ERROR)
        return gr_error(GR_ENOTFOUND, "tensor '%s' is missing from %s (or has another shape)", it->spec.name, where);
      if (b == -1 || c == -1) note(s, st, "tensor '%s' is missing from %s", it->spec.name, where);
      b = c = -1;
      missing++;
    }
    it->b_idx[k] = b;
    it->c_idx[k] = c;
  }
  if (missing && (s->unmatched == UNMATCHED_DROP || !s->ref_is_base)) {
    *keep = false;
    st->dropped++;
    note(s, st, "tensor '%s' left out of the output (%s)", it->spec.name, "no partner");
  } else if (missing) st->partial++;
  else st->matched++;
  return GR_OK;
}

static gr_status plan_ref(const combine_spec *s, combine_stats *st, combine_item *items, int *n) {
  for (int i = 0; i < ts_model_count(s->ref); i++) {
    combine_item *it = &items[*n];
    memset(it, 0, sizeof *it);
    it->spec = *ts_model_tensor(s->ref, i);
    it->src = s->ref;
    it->idx = i;
    if (!it->spec.is_float) {
      st->nonfloat++;
      if (!s->ref_is_base) continue; /* a task vector holds float tensors only */
      it->raw = true;
      (*n)++;
      continue;
    }
    bool keep;
    gr_status e = plan_terms(s, st, it, &keep);
    if (e) return e;
    if (s->dtype) snprintf(it->spec.dtype, sizeof it->spec.dtype, "%s", s->dtype);
    if (keep) (*n)++;
  }
  return GR_OK;
}

/* Tensors of terms[0].b that the reference lacks. */
static void plan_extra(const combine_spec *s, combine_stats *st, combine_item *items, int *n) {
  ts_model *m = s->terms[0].b;
  for (int i = 0; i < ts_model_count(m); i++) {
    const ts_tensor *t = ts_model_tensor(m, i);
    if (ts_model_find(s->ref, t->name) >= 0) continue;
    if (!s->add_extra) {
      st->extra_ignored++;
      note(s, st, "tensor '%s' only in %s: not in the output (--tuned-only add copies it)", t->name, ts_model_path(m));
      continue;
    }
    st->extra_added++;
    items[*n] = (combine_item){.spec = *t, .src = m, .idx = i, .raw = true};
    (*n)++;
  }
}

static gr_status combine_one(const combine_spec *s, combine_stats *st, const combine_item *it, ts_out *o, int i) {
  if (it->raw) {
    const void *raw;
    gr_status e = ts_model_read_raw(it->src, it->idx, &raw);
    if (!e) e = ts_out_write_raw(o, i, raw);
    ts_model_done(it->src, it->idx, NULL);
    st->bytes_in += it->spec.nbytes;
    return e;
  }
  int64_t n = it->spec.numel;
  float *out = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1)), *own = NULL;
  const float *ref = NULL;
  gr_status e = out ? GR_OK : gr_error(GR_ENOMEM, "tensor '%s': out of memory", it->spec.name);
  if (!e && s->ref_is_base) e = ts_model_read_f32(s->ref, it->idx, &ref, &own);
  if (!e && !s->ref_is_base) memset(out, 0, sizeof(float) * (size_t)n);
  const float *acc = s->ref_is_base ? ref : NULL;
  for (int k = 0; k < s->n_terms && !e; k++) {
    if (it->b_idx[k] < 0) continue;
    const float *b = NULL, *c = NULL;
    float *ob = NULL, *oc = NULL;
    e = ts_model_read_f32(s->terms[k].b, it->b_idx[k], &b, &ob);
    if (!e && s->terms[k].c) e = ts_model_read_f32(s->terms[k].c, it->c_idx[k], &c, &oc);
    if (!e) gr_taskvec_axpy(out, acc, s->terms[k].coef, b, c, n);
    acc = out;
    st->bytes_in += ts_model_tensor(s->terms[k].b, it->b_idx[k])->nbytes;
    ts_model_done(s->terms[k].b, it->b_idx[k], ob);
    if (s->terms[k].c) ts_model_done(s->terms[k].c, it->c_idx[k], oc);
  }
  if (!e && acc == ref && ref) memcpy(out, ref, sizeof(float) * (size_t)n); /* every term left out */
  if (s->ref_is_base) ts_model_done(s->ref, it->idx, own);
  if (!e) e = ts_out_write_f32(o, i, out);
  free(out);
  return e;
}

static void print_report(const combine_spec *s, const combine_stats *st, int n_out, double secs) {
  if (s->json) {
    printf("{\"verb\":\"%s\",\"tensors\":%d,\"matched\":%d,\"partial\":%d,\"dropped\":%d,\"shape_mismatch\":%d,"
           "\"nonfloat\":%d,\"only_other_added\":%d,\"only_other_ignored\":%d,\"bytes_in\":%lld,\"seconds\":%.3f,"
           "\"peak_rss_mb\":%.1f,\"out\":\"%s\"}\n", s->verb, n_out, st->matched, st->partial, st->dropped, st->shape,
           st->nonfloat, st->extra_added, st->extra_ignored, (long long)st->bytes_in, secs,
           (double)gr_peak_rss_bytes() / (1 << 20), s->out);
    return;
  }
  printf("graft %s: %d tensors written to %s: %d matched, %d kept without a partner, %d left out, %d with another "
         "shape, %d non-float, %d only-in-other added, %d ignored (%.2f s, peak RSS %.1f MB)\n", s->verb, n_out, s->out,
         st->matched, st->partial, st->dropped, st->shape, st->nonfloat, st->extra_added, st->extra_ignored, secs,
         (double)gr_peak_rss_bytes() / (1 << 20));
}

int combine_run(const combine_spec *s) {
  combine_stats st = {0};
  int cap = ts_model_count(s->ref) + (s->n_terms ? ts_model_count(s->terms[0].b) : 0), n = 0;
  combine_item *items = calloc((size_t)(cap ? cap : 1), sizeof *items);
  ts_tensor *specs = calloc((size_t)(cap ? cap : 1), sizeof *specs);
  ts_out *o = NULL;
  double t0 = gr_wall_seconds();
  gr_status e = items && specs ? plan_ref(s, &st, items, &n) : gr_error(GR_ENOMEM, "out of memory");
  if (!e && s->n_terms) plan_extra(s, &st, items, &n);
  for (int i = 0; i < n; i++) specs[i] = items[i].spec;
  if (!e) e = ts_out_open(s->out, s->force, 0, &o);
  if (!e) e = ts_out_declare(o, n, specs);
  for (int i = 0; i < n && !e; i++) e = combine_one(s, &st, &items[i], o, i);
  if (!e) e = ts_out_copy_file(o, ts_model_path(s->ref), "config.json");
  if (e) ts_out_abort(o);
  else e = ts_out_commit(o);
  free(items);
  free(specs);
  if (e) {
    char what[64];
    snprintf(what, sizeof what, "%s", s->verb);
    return cli_fail_status(what);
  }
  print_report(s, &st, n, gr_wall_seconds() - t0);
  return CLI_OK;
}
