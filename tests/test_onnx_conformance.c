/* test_onnx_conformance.c — the ONNX operator conformance runner. Runs every
 * case under the libonnx-testdata node directory (model.onnx +
 * test_data_set_0/{input,output}_N.pb) whose ops graft implements, compares
 * each output with the suite's expected tensor at the suite's tolerance
 * (onnx.backend.test: rtol 1e-3, atol 1e-7, |got-want| <= atol + rtol|want|)
 * and counts passed / failed / unsupported per op. A case is unsupported when
 * it uses an op graft lacks, a tensor type graft does not compute in (graft
 * is f32; integer inputs are fed as exact f32), or an attribute value the
 * executor refuses with GR_EUNSUPPORTED (the reason is printed).
 *
 *   test_onnx_conformance            ctest: exit 1 on any failure
 *   test_onnx_conformance --table    per-op table + every non-pass with its reason
 *   test_onnx_conformance --table DIR
 * Exit 77 (skip) when the suite is not installed (apt-get install libonnx-testdata). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "graft/graft.h"
#include "graft/onnx.h"

#define SUITE_DIR "/usr/share/libonnx-testdata/data/node"
#define RTOL 1e-3
#define ATOL 1e-7
#define MAX_IO 16

typedef enum { PASS, FAIL, UNSUP } outcome;

typedef struct op_count {
  char op[96];
  int n[3];
} op_count;

static op_count counts[512];
static int n_counts;

static void count(const char *op, outcome o) {
  for (int i = 0; i < n_counts; i++)
    if (!strcmp(counts[i].op, op)) {
      counts[i].n[o]++;
      return;
    }
  if (n_counts == (int)(sizeof counts / sizeof *counts)) return;
  snprintf(counts[n_counts].op, sizeof counts[n_counts].op, "%s", op);
  counts[n_counts++].n[o] = 1;
}

/* The op a case exercises: its one non-Constant op type, else the sorted
 * distinct types joined by '+'. */
static void case_label(const gr_onnx_model *m, char *buf, size_t cap) {
  const char *seen[32];
  int n = 0;
  for (int i = 0; i < m->n_nodes && n < 32; i++) {
    const char *t = m->nodes[i].op_type;
    bool dup = !strcmp(t, "Constant") && m->n_nodes > 1;
    for (int j = 0; j < n && !dup; j++) dup = !strcmp(seen[j], t);
    if (!dup) seen[n++] = t;
  }
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && strcmp(seen[j - 1], seen[j]) > 0; j--) {
      const char *tmp = seen[j];
      seen[j] = seen[j - 1];
      seen[j - 1] = tmp;
    }
  size_t len = 0;
  buf[0] = 0;
  for (int i = 0; i < n && len < cap; i++) len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "+" : "", seen[i]);
}

static bool type_ok(int dt, bool input) {
  if (dt == GR_ONNX_FLOAT) return true;
  return dt == GR_ONNX_INT64 || dt == GR_ONNX_INT32 || (input && dt == GR_ONNX_BOOL);
}

/* Reason a case cannot run on graft before trying, or NULL. */
static const char *precheck(const gr_onnx_model *m, char *why, size_t cap) {
  if (gr_onnx_check(m)) {
    snprintf(why, cap, "%s", gr_last_error());
    return why;
  }
  for (int i = 0; i < m->n_inputs; i++)
    if (!type_ok(m->inputs[i].elem_type, true)) {
      snprintf(why, cap, "input '%s' is %s", m->inputs[i].name, gr_onnx_dtype_name(m->inputs[i].elem_type));
      return why;
    }
  for (int i = 0; i < m->n_outputs; i++)
    if (!type_ok(m->outputs[i].elem_type, false)) {
      snprintf(why, cap, "output '%s' is %s", m->outputs[i].name, gr_onnx_dtype_name(m->outputs[i].elem_type));
      return why;
    }
  return NULL;
}

static gr_tensor *to_graft(gr_ctx *c, const gr_onnx_tensor *t) {
  gr_tensor *x = gr_tensor_new(c, t->ndim, t->dims);
  for (int64_t j = 0; x && j < t->numel; j++) x->data[j] = t->kind == GR_ONNX_KIND_F32 ? t->f32[j] : (float)t->i64[j];
  return x;
}

static bool close_enough(const gr_tensor *got, const gr_onnx_tensor *want, char *why, size_t cap) {
  bool same = got->ndim == want->ndim;
  for (int d = 0; same && d < got->ndim; d++) same = got->shape[d] == want->dims[d];
  if (!same) {
    char a[96];
    snprintf(why, cap, "shape %s, expected ndim %d numel %lld", gr_shape_str(got, a, sizeof a), want->ndim,
             (long long)want->numel);
    return false;
  }
  for (int64_t j = 0; j < want->numel; j++) {
    double w = want->kind == GR_ONNX_KIND_F32 ? want->f32[j] : (double)want->i64[j], g = got->data[j];
    if (isnan(w) && isnan(g)) continue;
    if (!(fabs(g - w) <= ATOL + RTOL * fabs(w))) {
      snprintf(why, cap, "element %lld: got %.9g, expected %.9g", (long long)j, g, w);
      return false;
    }
  }
  return true;
}

/* Loads input_N.pb / output_N.pb of data set 0. */
static int load_set(const char *dir /* < 1024 bytes */, const char *kind, gr_arena *a, gr_onnx_tensor *ts, char *why, size_t cap) {
  int n = 0;
  for (; n < MAX_IO; n++) {
    char p[1200];
    snprintf(p, sizeof p, "%s/test_data_set_0/%s_%d.pb", dir, kind, n);
    struct stat sb;
    if (stat(p, &sb)) break;
    if (gr_onnx_load_tensor(p, a, &ts[n])) {
      snprintf(why, cap, "%s", gr_last_error());
      return -1;
    }
  }
  return n;
}

static outcome run_case(const char *dir, const gr_onnx_model *m, char *why, size_t cap) {
  gr_arena *a = gr_arena_new(1 << 16);
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_ctx_set_training(c, false);
  gr_ctx_set_grad(c, false);
  gr_onnx_tensor ins[MAX_IO], outs[MAX_IO];
  outcome o = FAIL;
  int ni = load_set(dir, "input", a, ins, why, cap), no = ni < 0 ? -1 : load_set(dir, "output", a, outs, why, cap);
  if (ni >= 0 && no >= 0) {
    gr_tensor *x[MAX_IO], *y[MAX_IO];
    for (int k = 0; k < ni; k++) x[k] = to_graft(c, &ins[k]);
    gr_status st = gr_onnx_run(c, m, ni, x, no, y);
    if (st) {
      o = st == GR_EUNSUPPORTED ? UNSUP : FAIL;
      snprintf(why, cap, "%s", gr_last_error());
    } else {
      o = PASS;
      for (int k = 0; k < no && o == PASS; k++)
        if (!close_enough(y[k], &outs[k], why, cap)) o = FAIL;
    }
  }
  gr_ctx_free(c);
  gr_arena_free(a);
  return o;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int print_table(int total[3]) {
  printf("\n%-40s %6s %6s %6s\n", "op", "pass", "fail", "unsup");
  for (int i = 0; i < n_counts; i++)
    if (counts[i].n[PASS] || counts[i].n[FAIL])
      printf("%-40s %6d %6d %6d\n", counts[i].op, counts[i].n[PASS], counts[i].n[FAIL], counts[i].n[UNSUP]);
  printf("%-40s %6d %6d %6d\n", "TOTAL (all cases)", total[PASS], total[FAIL], total[UNSUP]);
  return 0;
}

int main(int argc, char **argv) {
  bool table = argc > 1 && !strcmp(argv[1], "--table");
  const char *dir = argc > 1 + table ? argv[1 + table] : SUITE_DIR;
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "%s: not found; apt-get install libonnx-testdata (scripts/setup.sh onnx)\n", dir);
    return 77;
  }
  char **names = NULL;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (!strncmp(e->d_name, "test_", 5)) {
      names = realloc(names, (size_t)(n + 1) * sizeof *names);
      names[n++] = strdup(e->d_name);
    }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, name_cmp);
  int total[3] = {0};
  for (int i = 0; i < n; i++) {
    char path[1024], label[96], why[600];
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, names[i]);
    gr_onnx_model *m = NULL;
    outcome o;
    if (gr_onnx_load(path, &m)) {
      o = FAIL;
      snprintf(label, sizeof label, "(unparsed)");
      snprintf(why, sizeof why, "%s", gr_last_error());
    } else {
      case_label(m, label, sizeof label);
      snprintf(path, sizeof path, "%s/%s", dir, names[i]);
      o = precheck(m, why, sizeof why) ? UNSUP : run_case(path, m, why, sizeof why);
    }
    gr_onnx_free(m);
    count(label, o);
    total[o]++;
    bool op_supported = o != UNSUP || (!strstr(why, "unsupported ONNX ops") && !strstr(why, "' is "));
    if (o == FAIL || (table && o == UNSUP && op_supported)) printf("%s %s [%s]: %s\n", o == FAIL ? "FAIL" : "UNSUPPORTED", names[i], label, why);
    free(names[i]);
  }
  free(names);
  if (table) print_table(total);
  printf("onnx conformance: %d cases: %d passed, %d failed, %d unsupported\n", n, total[PASS], total[FAIL], total[UNSUP]);
  return total[FAIL] ? 1 : 0;
}
