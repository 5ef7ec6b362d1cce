/* tests/test_report.c — the report layer: number formatting, time and
 * memory, JSON Lines, results round trip and summary, console table,
 * progress output, SVG plots and report.html. SVG and HTML structure is
 * checked by tests/report/check_report.py (xml.etree / html.parser) at test
 * time; the accuracy table is recomputed there from results.jsonl. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report_sample.h"
#include "testutil.h"

static char tmp_dir[512];

static const char *tmp_path(const char *name) {
  static char buf[4][640];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
  return buf[k];
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (s) s[n] = 0;
  fclose(f);
  return s;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

/* Runs tests/report/check_report.py; expectations go through a file. */
static int run_checker(const char *mode, const char *file, const char *extra, const char *expect_json) {
  const char *py = report_test_python(), *src = report_test_source_dir();
  char expect_path[640];
  snprintf(expect_path, sizeof expect_path, "%s/expect.json", tmp_dir);
  write_text(expect_path, expect_json);
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' '%s/tests/report/check_report.py' %s '%s' %s%s%s '%s'", py, src, mode, file,
           extra ? "'" : "", extra ? extra : "", extra ? "'" : "", expect_path);
  return system(cmd);
}

static int count_substr(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

/* Captures what f writes to a FILE* into a malloc'd string. */
typedef struct capture {
  char *buf;
  size_t len;
  FILE *fp;
} capture;
static void capture_begin(capture *c) {
  c->buf = NULL;
  c->len = 0;
  c->fp = open_memstream(&c->buf, &c->len);
}
static char *capture_end(capture *c) {
  fclose(c->fp);
  return c->buf;
}

/* ---- formatting ---------------------------------------------------------- */

static void test_format(void) {
  char b[32];
  CHECK(!strcmp(gr_fmt_bytes(512, b, sizeof b), "512 B"));
  CHECK(!strcmp(gr_fmt_bytes(1536, b, sizeof b), "1.50 KiB"));
  CHECK(!strcmp(gr_fmt_bytes((int64_t)90 << 20, b, sizeof b), "90.0 MiB"));
  CHECK(!strcmp(gr_fmt_bytes((int64_t)3 << 30, b, sizeof b), "3.00 GiB"));
  CHECK(!strcmp(gr_fmt_bytes(-1, b, sizeof b), "n/a"));
  CHECK(!strcmp(gr_fmt_count(999, b, sizeof b), "999"));
  CHECK(!strcmp(gr_fmt_count(12345, b, sizeof b), "12.3k"));
  CHECK(!strcmp(gr_fmt_count(1234567, b, sizeof b), "1.23M"));
  CHECK(!strcmp(gr_fmt_count(999999, b, sizeof b), "1.00M"));
  CHECK(!strcmp(gr_fmt_count(-1, b, sizeof b), "n/a"));
  CHECK(!strcmp(gr_fmt_duration(0.0123, b, sizeof b), "12.3ms"));
  CHECK(!strcmp(gr_fmt_duration(5.2, b, sizeof b), "5.20s"));
  CHECK(!strcmp(gr_fmt_duration(59.999, b, sizeof b), "1m00s"));
  CHECK(!strcmp(gr_fmt_duration(83, b, sizeof b), "1m23s"));
  CHECK(!strcmp(gr_fmt_duration(7322, b, sizeof b), "2h02m"));
  CHECK(!strcmp(gr_fmt_duration(NAN, b, sizeof b), "n/a"));
  CHECK(!strcmp(gr_fmt_duration(-1, b, sizeof b), "n/a"));
  char tiny[4];
  gr_fmt_bytes((int64_t)1 << 40, tiny, sizeof tiny); /* truncates, never overflows */
  CHECK(strlen(tiny) == 3);
}

/* ---- time and memory ----------------------------------------------------- */

static void test_time_and_memory(void) {
  double t0 = gr_wall_seconds();
  usleep(20000);
  double dt = gr_wall_seconds() - t0;
  CHECK_MSG(dt >= 0.019 && dt < 2.0, "20 ms sleep measured as %g s", dt);

  int64_t cur0 = gr_current_rss_bytes(), peak0 = gr_peak_rss_bytes();
  /* the kernel's RSS counters are cached per thread and synced lazily, so
   * allow 1 MiB of lag between the two reads */
  CHECK_MSG(peak0 > 0 && cur0 > 0 && peak0 >= cur0 - (1 << 20), "peak %lld, current %lld", (long long)peak0,
            (long long)cur0);
  size_t big = (size_t)64 << 20;
  /* mmap, not malloc: freed memory must really leave the process (a
   * sanitizer's allocator would keep it in quarantine) */
  char *p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  if (p == MAP_FAILED) return;
  for (size_t i = 0; i < big; i += 4096) p[i] = (char)i; /* touch every page */
  int64_t peak1 = gr_peak_rss_bytes();
  CHECK_MSG(peak1 >= cur0 + (int64_t)(60 << 20), "peak %lld after touching 64 MiB (rss before %lld)",
            (long long)peak1, (long long)cur0);
  munmap(p, big);
  gr_status s = gr_peak_rss_reset();
  CHECK(s == GR_OK || s == GR_EUNSUPPORTED);
  if (s == GR_OK) {
    int64_t peak2 = gr_peak_rss_bytes();
    CHECK_MSG(peak2 < peak1 - (int64_t)(32 << 20), "peak after reset %lld, before %lld", (long long)peak2,
              (long long)peak1);
  } else {
    printf("note: peak RSS reset unsupported here: %s\n", gr_last_error());
  }
  char cpu[128];
  gr_cpu_model(cpu, sizeof cpu);
  CHECK(cpu[0] != 0);
  gr_cpu_model(cpu, 1);
  CHECK(cpu[0] == 0);
}

/* ---- JSON Lines -------------------------------------------------------------- */

static void test_jsonl(void) {
  const char *path = tmp_path("t.jsonl");
  gr_jsonl *w = gr_jsonl_open(path, true);
  CHECK_PTR(w);
  if (!w) return;
  for (int i = 0; i < 3; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", i);
    cJSON_AddStringToObject(o, "note", "a \"quoted\"\nline");
    CHECK_OK(gr_jsonl_write(w, o));
    cJSON_Delete(o);
  }
  /* flushed per line: visible before close */
  char *text = read_text(path);
  CHECK(text && count_substr(text, "\n") == 3);
  free(text);
  cJSON *arr = cJSON_CreateArray();
  CHECK_FAILS(gr_jsonl_write(w, arr) == GR_OK, GR_EARG);
  cJSON_Delete(arr);
  CHECK_OK(gr_jsonl_close(w));

  cJSON *all = NULL;
  CHECK_OK(gr_jsonl_read(path, &all));
  CHECK(cJSON_GetArraySize(all) == 3);
  const cJSON *second = cJSON_GetArrayItem(all, 1);
  CHECK(cJSON_GetObjectItem(second, "step")->valuedouble == 1);
  CHECK(!strcmp(cJSON_GetObjectItem(second, "note")->valuestring, "a \"quoted\"\nline"));
  cJSON_Delete(all);

  /* append mode keeps earlier lines */
  w = gr_jsonl_open(path, false);
  cJSON *o = cJSON_CreateObject();
  CHECK_OK(gr_jsonl_write(w, o));
  cJSON_Delete(o);
  CHECK_OK(gr_jsonl_close(w));
  CHECK_OK(gr_jsonl_read(path, &all));
  CHECK(cJSON_GetArraySize(all) == 4);
  cJSON_Delete(all);

  /* a killed writer's truncated last line is ignored; blank lines skipped */
  const char *cut = tmp_path("cut.jsonl");
  write_text(cut, "{\"a\":1}\n\n{\"a\":2}\n{\"a\":3, \"b\": [1,");
  CHECK_OK(gr_jsonl_read(cut, &all));
  CHECK(cJSON_GetArraySize(all) == 2);
  cJSON_Delete(all);
  /* a garbled line in the middle is an error naming the line */
  write_text(cut, "{\"a\":1}\n{\"a\":\n{\"a\":3}\n");
  CHECK_FAILS(gr_jsonl_read(cut, &all) == GR_OK, GR_EFORMAT);
  CHECK(strstr(gr_last_error(), "cut.jsonl:2") != NULL);
  CHECK(all == NULL);
  write_text(cut, "[1,2]\n");
  CHECK_FAILS(gr_jsonl_read(cut, &all) == GR_OK, GR_EFORMAT);
  FILE *f = fopen(cut, "wb");
  fwrite("{\"a\":1}\n{\"a\"\0:2}\n", 1, 17, f);
  fclose(f);
  CHECK_FAILS(gr_jsonl_read(cut, &all) == GR_OK, GR_EFORMAT);
  CHECK_FAILS(gr_jsonl_read(tmp_path("does-not-exist.jsonl"), &all) == GR_OK, GR_ENOTFOUND);
  CHECK_FAILS(gr_jsonl_open(tmp_path("no-such-dir/x.jsonl"), true) != NULL, GR_EIO);
  CHECK_FAILS(gr_jsonl_read(NULL, &all) == GR_OK, GR_EARG);
  CHECK_OK(gr_jsonl_close(NULL));
}

/* ---- results ------------------------------------------------------------------------ */

static bool same_double(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

static void test_results_roundtrip(void) {
  gr_results rs = {0};
  CHECK_OK(sample_results(&rs));
  CHECK(rs.n == 1 + SAMPLE_N_METHODS * SAMPLE_N_BUDGETS * SAMPLE_N_SEEDS);
  const char *path = tmp_path("results.jsonl");
  gr_jsonl *w = gr_jsonl_open(path, true);
  cJSON *other = cJSON_CreateObject();
  cJSON_AddStringToObject(other, "type", "config");
  CHECK_OK(gr_jsonl_write(w, other)); /* non-run lines are skipped by the loader */
  cJSON_Delete(other);
  for (int i = 0; i < rs.n; i++) CHECK_OK(gr_jsonl_write_result(w, &rs.runs[i]));
  gr_run_result unknown;
  gr_run_result_init(&unknown); /* every number unknown: null in JSON */
  snprintf(unknown.method, sizeof unknown.method, "m\xc3\xa9thode");
  CHECK_OK(gr_jsonl_write_result(w, &unknown));
  CHECK_OK(gr_jsonl_close(w));

  gr_results back = {0};
  CHECK_OK(gr_results_load_jsonl(&back, path));
  CHECK(back.n == rs.n + 1);
  int bad = 0;
  for (int i = 0; i < rs.n && i < back.n; i++) {
    const gr_run_result *a = &rs.runs[i], *b = &back.runs[i];
    bad += strcmp(a->phase, b->phase) || strcmp(a->method, b->method) || strcmp(a->dataset, b->dataset);
    bad += a->budget != b->budget || a->n_labels != b->n_labels || a->seed != b->seed;
    bad += a->accuracy != b->accuracy || a->loss != b->loss || a->seconds != b->seconds;
    bad += a->trainable_params != b->trainable_params || a->total_params != b->total_params;
    bad += a->peak_rss_bytes != b->peak_rss_bytes || a->n_curve != b->n_curve || a->n_extra != b->n_extra;
    for (int k = 0; k < a->n_extra && k < b->n_extra; k++)
      bad += strcmp(a->extra[k].name, b->extra[k].name) || a->extra[k].value != b->extra[k].value;
    for (int k = 0; k < a->n_curve && k < b->n_curve; k++)
      bad += a->curve[k].step != b->curve[k].step || !same_double(a->curve[k].loss, b->curve[k].loss) ||
             !same_double(a->curve[k].acc, b->curve[k].acc);
  }
  if (bad) {
    const gr_run_result *a = &rs.runs[1], *b = &back.runs[1];
    printf("run 1: %s/%s %s/%s %.17g/%.17g %lld/%lld %.17g/%.17g %.17g/%.17g %d/%d\n", a->phase, b->phase, a->method,
           b->method, a->budget, b->budget, (long long)a->n_labels, (long long)b->n_labels, a->accuracy, b->accuracy,
           a->seconds, b->seconds, a->n_curve, b->n_curve);
  }
  CHECK_MSG(bad == 0, "%d fields differ after the results.jsonl round trip", bad);
  if (back.n == rs.n + 1) {
    const gr_run_result *u = &back.runs[rs.n];
    CHECK(!strcmp(u->method, "m\xc3\xa9thode") && !strcmp(u->phase, "transfer"));
    CHECK(isnan(u->accuracy) && isnan(u->budget) && u->n_labels == -1 && u->peak_rss_bytes == -1);
    CHECK(u->n_curve == 0 && u->curve == NULL);
  }
  gr_results_free(&back);
  gr_results_free(&rs);
  CHECK(rs.n == 0 && rs.runs == NULL);
}

static void expect_load_fails(const char *line, const char *field) {
  const char *path = tmp_path("bad.jsonl");
  write_text(path, line);
  gr_results rs = {0};
  CHECK_FAILS(gr_results_load_jsonl(&rs, path) == GR_OK, GR_EFORMAT);
  CHECK_MSG(strstr(gr_last_error(), field) != NULL, "error '%s' does not name %s", gr_last_error(), field);
  gr_results_free(&rs);
}

/* Random bytes and mangled copies of a good results file: each read either
 * succeeds or fails with GR_EFORMAT, never crashes (run under ASan too). */
static void test_results_garbage(void) {
  gr_results rs = {0};
  CHECK_OK(sample_results(&rs));
  const char *good = tmp_path("good.jsonl");
  gr_jsonl *w = gr_jsonl_open(good, true);
  for (int i = 0; i < 3; i++) gr_jsonl_write_result(w, &rs.runs[i]);
  gr_jsonl_close(w);
  gr_results_free(&rs);
  char *text = read_text(good);
  CHECK_PTR(text);
  if (!text) return;
  size_t len = strlen(text);
  gr_rng rng_state;
  gr_rng *rng = &rng_state;
  gr_rng_seed(rng, 1234);
  const char *bad = tmp_path("mangled.jsonl");
  int unexpected = 0;
  for (int trial = 0; trial < 300; trial++) {
    char *copy = malloc(len + 1);
    memcpy(copy, text, len + 1);
    int flips = 1 + (int)gr_rng_below(rng, 4);
    for (int k = 0; k < flips; k++) {
      size_t at = gr_rng_below(rng, len);
      copy[at] = (char)(trial < 150 ? "{}[],:\"0-e.n\n"[gr_rng_below(rng, 14)] : (char)(gr_rng_below(rng, 255) + 1));
    }
    size_t cut = trial % 3 == 0 ? gr_rng_below(rng, len) : len; /* sometimes truncated */
    FILE *f = fopen(bad, "wb");
    fwrite(copy, 1, cut, f);
    fclose(f);
    gr_results back = {0};
    gr_clear_error();
    gr_status s = gr_results_load_jsonl(&back, bad);
    unexpected += s != GR_OK && s != GR_EFORMAT;
    gr_results_free(&back);
    free(copy);
  }
  CHECK_MSG(unexpected == 0, "%d mangled files gave a status other than ok/format error", unexpected);
  free(text);
}

static void test_results_bad_input(void) {
  expect_load_fails("{\"type\":\"run\",\"seed\":1}\n", "method");
  expect_load_fails("{\"type\":\"run\",\"method\":\"a\"}\n", "seed");
  expect_load_fails("{\"type\":\"run\",\"method\":7,\"seed\":1}\n", "method");
  expect_load_fails("{\"type\":\"run\",\"method\":\"a\",\"seed\":-1}\n", "seed");
  expect_load_fails("{\"type\":\"run\",\"method\":\"a\",\"seed\":1e300}\n", "seed");
  expect_load_fails("{\"type\":\"run\",\"method\":\"a\",\"seed\":1,\"accuracy\":\"high\"}\n", "accuracy");
  expect_load_fails("{\"type\":\"run\",\"method\":\"a\",\"seed\":1,\"n_labels\":2.5}\n", "n_labels");
  expect_load_fails("{\"type\":\"run\",\"method\":\"a\",\"seed\":1,\"curve\":{\"step\":[1,2],\"loss\":[1],"
                    "\"acc\":[null]}}\n", "curve");
  expect_load_fails("{\"type\":\"run\",\"method\":\"a\",\"seed\":1,\"curve\":{\"step\":[1],\"loss\":[\"x\"],"
                    "\"acc\":[null]}}\n", "curve");
  expect_load_fails("{\"type\":\"run\",\"method\":\"a\",\"seed\":1,\"curve\":[1,2]}\n", "curve");
  expect_load_fails("{\"type\":\"run\",\"method\":\"a\",\"seed\":1,\"extra\":[1]}\n", "extra");
  expect_load_fails("{\"type\":\"run\",\"method\":\"a\",\"seed\":1,\"extra\":{\"x\":\"y\"}}\n", "extra");
  expect_load_fails("{\"type\":\"run\",\"method\":\"a\",\"seed\":1,\"extra\":{\"\":1}}\n", "extra");
  gr_results rs = {0};
  gr_run_result r;
  gr_run_result_init(&r);
  /* extra metrics: set, replace, limits */
  CHECK_OK(gr_run_result_set_extra(&r, "source_accuracy", 0.5));
  CHECK_OK(gr_run_result_set_extra(&r, "source_accuracy", 0.75));
  CHECK(r.n_extra == 1 && r.extra[0].value == 0.75);
  CHECK_FAILS(gr_run_result_set_extra(&r, "", 1) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_run_result_set_extra(&r, "a_name_that_is_longer_than_31_bytes", 1) == GR_OK, GR_EARG);
  for (int i = 1; i < GR_RUN_MAX_EXTRA; i++) {
    char name[16];
    snprintf(name, sizeof name, "m%d", i);
    CHECK_OK(gr_run_result_set_extra(&r, name, i));
  }
  CHECK_FAILS(gr_run_result_set_extra(&r, "one_too_many", 1) == GR_OK, GR_EUNSUPPORTED);
  CHECK_OK(gr_run_result_set_extra(&r, "m3", 33)); /* replacing still works when full */
  gr_run_result_init(&r);
  r.n_curve = 3; /* points promised, none given */
  CHECK_FAILS(gr_results_add(&rs, &r) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_results_add(NULL, &r) == GR_OK, GR_EARG);
  CHECK(rs.n == 0);
  gr_results_free(&rs);
}

static void test_results_summary(void) {
  gr_results rs = {0};
  gr_run_result r;
  /* added out of order: budgets must come out ascending, methods in order of appearance */
  const struct {
    const char *method;
    double budget, acc;
  } runs[] = {{"b", 0.1, 0.70}, {"a", 1.0, 0.90}, {"a", 0.1, 0.60}, {"a", 1.0, 0.80}, {"b", 0.1, NAN},
              {"b", 0.01, 0.5}};
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    gr_run_result_init(&r);
    snprintf(r.method, sizeof r.method, "%s", runs[i].method);
    r.budget = runs[i].budget, r.accuracy = runs[i].acc, r.seed = i;
    r.seconds = (double)i;
    r.peak_rss_bytes = (int64_t)i * 100;
    if (!strcmp(runs[i].method, "a") && runs[i].budget == 1.0) gr_run_result_set_extra(&r, "kd_loss", 0.1 * (double)i);
    gr_results_add(&rs, &r);
  }
  gr_run_result_init(&r);
  snprintf(r.phase, sizeof r.phase, "pretrain");
  snprintf(r.method, sizeof r.method, "a");
  r.budget = 1.0, r.accuracy = 0.99;
  gr_results_add(&rs, &r);
  gr_summary_row *rows = NULL;
  int n = 0;
  CHECK_OK(gr_results_summarize(&rs, &rows, &n));
  CHECK(n == 5);
  if (n == 5) {
    CHECK(!strcmp(rows[0].method, "b") && rows[0].budget == 0.01 && rows[0].n_seeds == 1);
    CHECK(!strcmp(rows[1].method, "b") && rows[1].budget == 0.1 && rows[1].n_seeds == 2);
    CHECK_NEAR(rows[1].acc_mean, 0.70, 1e-12); /* NaN run skipped */
    CHECK_NEAR(rows[1].acc_std, 0.0, 1e-12);
    CHECK_NEAR(rows[1].seconds_mean, 2.0, 1e-12);
    CHECK(rows[1].peak_rss_max == 400);
    CHECK(!strcmp(rows[2].method, "a") && rows[2].budget == 0.1);
    CHECK(!strcmp(rows[3].method, "a") && rows[3].budget == 1.0 && rows[3].n_seeds == 2);
    CHECK_NEAR(rows[3].acc_mean, 0.85, 1e-12);
    CHECK_NEAR(rows[3].acc_std, sqrt(0.005), 1e-12); /* sample std of {0.8, 0.9} */
    CHECK(rows[3].n_extra == 1 && !strcmp(rows[3].extra_mean[0].name, "kd_loss"));
    CHECK_NEAR(rows[3].extra_mean[0].value, 0.2, 1e-12); /* mean of 0.1 (run 1) and 0.3 (run 3) */
    CHECK(rows[2].n_extra == 0);
    CHECK(!strcmp(rows[4].phase, "pretrain") && rows[4].n_seeds == 1);
  }
  free(rows);
  capture c;
  capture_begin(&c);
  CHECK_OK(gr_results_print_summary(&rs, c.fp, GR_TABLE_TEXT));
  char *out = capture_end(&c);
  CHECK_MSG(count_substr(out, "\n") == 7, "summary table:\n%s", out); /* header, rule, 5 cells */
  CHECK(strstr(out, "phase") && strstr(out, "pretrain") && strstr(out, "85.00 \u00b1 7.07"));
  free(out);
  gr_results empty = {0};
  CHECK_OK(gr_results_summarize(&empty, &rows, &n));
  CHECK(n == 0);
  free(rows);
  gr_results_free(&rs);
}

/* ---- console table --------------------------------------------------------------- */

/* Column (0-based byte offset) where needle ends in line, or -1. */
static int end_column(const char *line, const char *needle) {
  const char *p = strstr(line, needle);
  return p ? (int)(p - line + (long)strlen(needle)) : -1;
}

static void test_table(void) {
  const char *headers[] = {"method", "labels", "acc (%)", "params"};
  gr_table *t = gr_table_new(4, headers);
  CHECK_PTR(t);
  if (!t) return;
  CHECK_OK(gr_table_addf(t, "%s\t%s\t%.2f\t%s", "linear-probe", "1%", 71.234, "645"));
  CHECK_OK(gr_table_addf(t, "%s\t%s\t%.2f \u00b1 %.2f\t%s", "fine|tune", "100%", 9.5, 0.25, "110k"));
  const char *row3[] = {"lora", NULL, "n/a", "4.00k"};
  CHECK_OK(gr_table_add_row(t, row3));
  CHECK_FAILS(gr_table_addf(t, "a\tb\tc\td\te") == GR_OK, GR_EARG);
  capture c;
  capture_begin(&c);
  CHECK_OK(gr_table_print(t, c.fp, GR_TABLE_TEXT));
  char *out = capture_end(&c);
  /* header, rule, 3 rows */
  CHECK(count_substr(out, "\n") == 5);
  char *lines[5] = {0};
  int n = 0;
  for (char *s = out, *nl; n < 5 && (nl = strchr(s, '\n')); s = nl + 1) *nl = 0, lines[n++] = s;
  if (n == 5) {
    CHECK(strspn(lines[1], "- ") == strlen(lines[1]));
    /* numeric columns right-aligned: the numbers end where the header ends */
    int acc_end = end_column(lines[0], "acc (%)");
    CHECK(end_column(lines[2], "71.23") == acc_end);
    CHECK(end_column(lines[3], "0.25") == acc_end + 1); /* "±" is 2 bytes, 1 column */
    CHECK(end_column(lines[4], "n/a") == acc_end);
    /* text columns left-aligned: cells start under the header */
    CHECK(strstr(lines[2], "linear-probe") == lines[2] && strstr(lines[4], "lora") == lines[4]);
    int labels_at = (int)(strstr(lines[0], "labels") - lines[0]);
    CHECK(end_column(lines[2], "1%") == labels_at + (int)strlen("labels")); /* "1%" numeric: right */
  }
  free(out);
  capture_begin(&c);
  CHECK_OK(gr_table_print(t, c.fp, GR_TABLE_MARKDOWN));
  out = capture_end(&c);
  CHECK(strstr(out, "| method ") == out);
  CHECK(strstr(out, "fine\\|tune") != NULL);
  CHECK(strstr(out, "--: |") != NULL && strstr(out, "| ----") != NULL);
  /* every Markdown line has the same number of unescaped pipes */
  int pipes[8] = {0}, k = 0;
  for (const char *s = out; *s && k < 8; s++) {
    if (*s == '|' && (s == out || s[-1] != '\\')) pipes[k]++;
    if (*s == '\n') k++;
  }
  CHECK(k == 5 && pipes[0] == 5 && pipes[1] == 5 && pipes[2] == 5 && pipes[3] == 5 && pipes[4] == 5);
  free(out);
  gr_table_free(t);
  CHECK_FAILS(gr_table_new(0, headers) != NULL, GR_EARG);
  gr_table_free(NULL);
}

/* ---- progress ------------------------------------------------------------------------ */

static void test_progress(void) {
  capture c;
  capture_begin(&c);
  gr_progress *p = gr_progress_new(c.fp, "pretrain", 1000, GR_PROGRESS_PLAIN);
  CHECK_PTR(p);
  for (int i = 1; i <= 1000; i++) gr_progress_update(p, i, "loss 0.5");
  gr_progress_finish(p, "loss 0.4");
  char *out = capture_end(&c);
  int lines = count_substr(out, "\n");
  CHECK_MSG(lines >= 2 && lines <= 11, "plain progress printed %d lines for 1000 updates", lines);
  CHECK(strstr(out, "1000/1000 100%") != NULL && strstr(out, "loss 0.4") != NULL && strstr(out, " in ") != NULL);
  CHECK(strstr(out, "100/1000") != NULL && strstr(out, "ETA") != NULL);
  CHECK(strchr(out, '\r') == NULL);
  free(out);

  /* unknown total in plain mode: time-based lines only (none within 5 s) */
  capture_begin(&c);
  p = gr_progress_new(c.fp, "scan", -1, GR_PROGRESS_PLAIN);
  for (int i = 1; i <= 100000; i++) gr_progress_update(p, i, NULL);
  gr_progress_finish(p, NULL);
  out = capture_end(&c);
  CHECK_MSG(count_substr(out, "\n") == 1 && strstr(out, "scan  100000  "), "unknown total:\n%s", out);
  free(out);

  /* TTY: redrawn in place with '\r', at most ~10 times a second */
  capture_begin(&c);
  p = gr_progress_new(c.fp, "study", 0, GR_PROGRESS_TTY);
  double t0 = gr_wall_seconds();
  int updates = 0;
  while (gr_wall_seconds() - t0 < 0.35) gr_progress_update(p, ++updates, NULL);
  gr_progress_finish(p, NULL);
  out = capture_end(&c);
  int redraws = count_substr(out, "\r");
  CHECK_MSG(redraws >= 2 && redraws <= 6, "%d redraws in 0.35 s (%d updates)", redraws, updates);
  CHECK(count_substr(out, "\n") == 1 && strstr(out, "ETA") == NULL);
  free(out);

  capture_begin(&c);
  p = gr_progress_new(c.fp, "quiet", 10, GR_PROGRESS_OFF);
  for (int i = 0; i < 10; i++) gr_progress_update(p, i, "x");
  gr_progress_finish(p, "done");
  out = capture_end(&c);
  CHECK(out[0] == 0);
  free(out);
  gr_progress_update(NULL, 1, NULL);
  gr_progress_finish(NULL, NULL);
}

/* ---- SVG ------------------------------------------------------------------------------- */

static void test_svg_plot(void) {
  const double x[3] = {0.01, 0.1, 1.0};
  const double ya[3] = {0.62, 0.75, 0.88}, ea[3] = {0.02, NAN, 0.01};
  const double yb[3] = {0.55, 0.70, 0.91}, yc[3] = {0.40, 0.52, 0.93};
  gr_series s[3] = {{"linear-probe", x, ya, ea, 3}, {"finetune", x, yb, NULL, 3}, {"lora <r=8> & co", x, yc, NULL, 3}};
  gr_plot p = {.title = "Accuracy vs \"labels\" <&>", .x_label = "labels", .y_label = "accuracy", .log_x = true,
               .markers = true, .x_format = GR_TICK_PERCENT, .y_format = GR_TICK_PERCENT, .series = s, .n_series = 3};
  const char *path = tmp_path("plot.svg");
  write_text(path, "old contents");
  CHECK_OK(gr_svg_save_plot(path, &p));
  CHECK(run_checker("svg", path, NULL,
                    "{\"series_paths\":3,\"points_per_path\":[3,3,3],\"markers\":9,\"errorbars\":2,"
                    "\"xticks\":[\"1%\",\"10%\",\"100%\"],\"min_yticks\":3,"
                    "\"legend\":[\"linear-probe\",\"finetune\",\"lora <r=8> & co\"],"
                    "\"title\":[\"Accuracy vs \\\"labels\\\" <&>\"],\"xlabel\":[\"labels\"],"
                    "\"ylabel\":[\"accuracy\"],\"nodata\":false}") == 0);
  char *text = read_text(path);
  CHECK(text && strstr(text, "&lt;r=8&gt; &amp; co") != NULL && strncmp(text, "<?xml", 5) == 0);
  free(text);
}

static void test_svg_degenerate(void) {
  const double one_x[1] = {3}, one_y[1] = {0.5};
  const double eq_x[4] = {1, 2, 3, 4}, eq_y[4] = {0.7, 0.7, 0.7, 0.7};
  const double nan_x[5] = {1, 2, 3, 4, 5}, nan_y[5] = {1.0, 0.8, NAN, 0.5, 0.4};
  gr_series s[4] = {{"one point", one_x, one_y, NULL, 1}, {"all equal", eq_x, eq_y, NULL, 4},
                    {"with NaN", nan_x, nan_y, NULL, 5}, {"empty", NULL, NULL, NULL, 0}};
  gr_plot p = {.title = "degenerate", .series = s, .n_series = 4};
  const char *path = tmp_path("degenerate.svg");
  CHECK_OK(gr_svg_save_plot(path, &p));
  CHECK(run_checker("svg", path, NULL,
                    "{\"series_paths\":3,\"points_per_path\":[4,2,2],\"markers\":1,\"errorbars\":0,"
                    "\"legend\":[\"one point\",\"all equal\",\"with NaN\",\"empty\"],\"min_yticks\":2,"
                    "\"xlabel\":[],\"ylabel\":[],\"nodata\":false}") == 0);

  /* log x: x <= 0 skipped; a single x value on a log axis still gets a range */
  const double lx[3] = {0, -1, 0.1}, ly[3] = {0.3, 0.4, 0.5};
  gr_series sl = {"log", lx, ly, NULL, 3};
  gr_plot pl = {.log_x = true, .series = &sl, .n_series = 1};
  CHECK_OK(gr_svg_save_plot(path, &pl));
  CHECK(run_checker("svg", path, NULL, "{\"series_paths\":0,\"markers\":1,\"nodata\":false}") == 0);

  /* nothing drawable at all: axes and a note */
  const double nx[2] = {NAN, 1}, ny[2] = {1, INFINITY};
  gr_series sn = {"nothing", nx, ny, NULL, 2};
  gr_plot pn = {.title = "empty", .series = &sn, .n_series = 1};
  CHECK_OK(gr_svg_save_plot(path, &pn));
  CHECK(run_checker("svg", path, NULL, "{\"series_paths\":0,\"markers\":0,\"nodata\":true,\"min_yticks\":2}") == 0);
  gr_plot none = {0};
  CHECK_OK(gr_svg_save_plot(path, &none));
  CHECK(run_checker("svg", path, NULL, "{\"series_paths\":0,\"legend\":[],\"nodata\":true}") == 0);

  /* a range that overflows a double cannot be drawn */
  const double hx[2] = {0, 1}, hy[2] = {-1e308, 1e308};
  gr_series sh = {"huge", hx, hy, NULL, 2};
  gr_plot ph = {.series = &sh, .n_series = 1};
  CHECK_FAILS(gr_svg_save_plot(path, &ph) == GR_OK, GR_ENUMERIC);

  /* bad arguments */
  gr_series broken = {"broken", NULL, one_y, NULL, 1};
  gr_plot pb = {.series = &broken, .n_series = 1};
  CHECK_FAILS(gr_svg_save_plot(path, &pb) == GR_OK, GR_EARG);
  gr_plot tiny = {.width = 10, .height = 10};
  CHECK_FAILS(gr_svg_save_plot(path, &tiny) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_svg_write_plot(NULL, &tiny) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_svg_save_plot(tmp_path("no-such-dir/p.svg"), &none) == GR_OK, GR_EIO);
}

/* ---- HTML report ----------------------------------------------------------------------- */

static int count_temp_files(void) {
  DIR *d = opendir(tmp_dir);
  if (!d) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
  closedir(d);
  return n;
}

static void test_html_report(void) {
  gr_results rs = {0};
  CHECK_OK(sample_results(&rs));
  const char *results = tmp_path("report-results.jsonl");
  gr_jsonl *w = gr_jsonl_open(results, true);
  for (int i = 0; i < rs.n; i++) gr_jsonl_write_result(w, &rs.runs[i]);
  CHECK_OK(gr_jsonl_close(w));
  gr_results loaded = {0};
  CHECK_OK(gr_results_load_jsonl(&loaded, results));

  gr_report_info info = {.title = "graft demo: Fashion-MNIST 0-4 \u2192 5-9",
                         .summary = "Pretrain on classes 0-4, transfer to 5-9 with 1%, 10% and 100% of labels.",
                         .config = "seeds: 3\nmethods: linear-probe, finetune, lora <r=8> && scratch",
                         .threads = 2,
                         .total_seconds = 123.4};
  const char *html = tmp_path("report.html");
  write_text(html, "old report");
  CHECK_OK(gr_report_write_html(html, &info, &loaded));
  /* 1 accuracy plot + (loss, acc) per budget + (loss, acc) of the pretrain phase */
  char expect[512];
  snprintf(expect, sizeof expect,
           "{\"svgs\":%d,\"contains\":[\"Fashion-MNIST 0-4 \u2192 5-9\",\"lora &lt;r=8&gt; &amp;&amp; scratch\","
           "\"Phase: pretrain\",\"scratch &lt;baseline&gt;\",\"2m03s\",\"source_accuracy=0.901\"]}",
           1 + 2 * SAMPLE_N_BUDGETS + 2);
  CHECK(run_checker("html", html, results, expect) == 0);

  /* a failed write leaves the old report and no temporary file */
  char *before = read_text(html);
  gr_results broken = loaded;
  gr_run_result bad = loaded.runs[0];
  bad.curve = NULL; /* n_curve > 0 without points: rejected before writing */
  broken.runs = &bad, broken.n = 1;
  CHECK_FAILS(gr_report_write_html(html, &info, &broken) == GR_OK, GR_EARG);
  char *after = read_text(html);
  CHECK(before && after && !strcmp(before, after));
  free(before);
  free(after);
  CHECK(count_temp_files() == 0);
  CHECK_FAILS(gr_report_write_html(tmp_path("no-such-dir/r.html"), &info, &loaded) == GR_OK, GR_EIO);

  /* no runs at all: still a valid page */
  /* more methods than the report lays out: an error, not a silently cut table */
  gr_results many = {0};
  gr_run_result r;
  gr_run_result_init(&r);
  r.budget = 0.1, r.accuracy = 0.5;
  for (int m = 0; m < 257; m++) {
    snprintf(r.method, sizeof r.method, "method %d", m);
    gr_results_add(&many, &r);
  }
  CHECK_FAILS(gr_report_write_html(html, &info, &many) == GR_OK, GR_EUNSUPPORTED);
  gr_results_free(&many);

  gr_results empty = {0};
  gr_report_info bare = {0};
  CHECK_OK(gr_report_write_html(html, &bare, &empty));
  char *t = read_text(html);
  CHECK(t && strstr(t, "No runs recorded") && !strstr(t, "<svg"));
  free(t);
  gr_results_free(&loaded);
  gr_results_free(&rs);
}

int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "%s/report_test_%d", test_tmpdir(), (int)getpid());
  mkdir(tmp_dir, 0755);
  test_format();
  test_time_and_memory();
  test_jsonl();
  test_results_roundtrip();
  test_results_bad_input();
  test_results_garbage();
  test_results_summary();
  test_table();
  test_progress();
  test_svg_plot();
  test_svg_degenerate();
  test_html_report();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
  if (test_failures == 0 && system(cmd) != 0) printf("note: could not remove %s\n", tmp_dir);
  return test_summary();
}
