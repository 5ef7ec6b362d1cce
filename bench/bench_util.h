/* bench/bench_util.h — shared by the bench_*.c programs (header only, since
 * CMake builds each bench_*.c as its own executable): wall-clock timing,
 * medians, flag parsing, the raw float32 init files the PyTorch peers read,
 * and the one JSON line per case that bench/driver.py parses. Not part of
 * the library; benchmarks may print, the library never does. */
#ifndef GRAFT_BENCH_UTIL_H
#define GRAFT_BENCH_UTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "graft/graft.h"

char *openblas_get_config(void);   /* from libopenblas */
char *openblas_get_corename(void); /* the sgemm kernel chosen at run time */

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the whole process (all its threads): under CPU pressure from
 * other work it grows less than wall time, so the driver shows both. */
static inline double bench_cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of n values (sorts v in place). */
static inline double bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static inline long bench_peak_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* Flags common to every bench: --threads N --quick --init FILE --write-init FILE
 * --steps N --batch N. Unknown flags are an error (exit 2). */
typedef struct bench_args {
  int threads, steps, batch;
  int quick;
  const char *init_path;       /* read parameters + data from here */
  const char *write_init_path; /* write them here and exit */
} bench_args;

static inline void bench_parse(int argc, char **argv, bench_args *a) {
  for (int i = 1; i < argc; i++) {
    const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(f, "--quick")) { a->quick = 1; continue; }
    if (!v) { fprintf(stderr, "%s: flag %s needs a value\n", argv[0], f); exit(2); }
    if (!strcmp(f, "--threads")) a->threads = atoi(v);
    else if (!strcmp(f, "--steps")) a->steps = atoi(v);
    else if (!strcmp(f, "--batch")) a->batch = atoi(v);
    else if (!strcmp(f, "--init")) a->init_path = v;
    else if (!strcmp(f, "--write-init")) a->write_init_path = v;
    else { fprintf(stderr, "%s: unknown flag %s\n", argv[0], f); exit(2); }
    i++;
  }
  if (a->threads <= 0) a->threads = 1;
}

/* Exit status for "this build of graft cannot run this benchmark yet" (an op
 * answered GR_EUNSUPPORTED): the driver reports the benchmark as skipped. */
#define BENCH_EXIT_SKIP 77

static inline void bench_die(const char *what) {
  fprintf(stderr, "bench: %s: %s\n", what, gr_last_error());
  exit(gr_last_status() == GR_EUNSUPPORTED ? BENCH_EXIT_SKIP : 1);
}

/* Raw init file: the float32 arrays of a benchmark, little-endian, in the
 * order both sides agree on (parameters in PyTorch layout, then inputs,
 * then labels as floats). The reader checks the total size. */
typedef struct bench_blob {
  float **arrays;
  const int64_t *counts;
  int n;
} bench_blob;

static inline int64_t bench_blob_total(const bench_blob *b) {
  int64_t t = 0;
  for (int i = 0; i < b->n; i++) t += b->counts[i];
  return t;
}

static inline void bench_blob_write(const bench_blob *b, const char *path) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) { perror(tmp); exit(1); }
  for (int i = 0; i < b->n; i++)
    if (fwrite(b->arrays[i], sizeof(float), (size_t)b->counts[i], f) != (size_t)b->counts[i]) {
      perror(tmp);
      exit(1);
    }
  if (fclose(f) || rename(tmp, path)) { perror(path); exit(1); }
}

static inline void bench_blob_read(const bench_blob *b, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(1); }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (size != (long)(bench_blob_total(b) * (int64_t)sizeof(float))) {
    fprintf(stderr, "bench: %s has %ld bytes, want %lld\n", path, size,
            (long long)(bench_blob_total(b) * (int64_t)sizeof(float)));
    exit(1);
  }
  for (int i = 0; i < b->n; i++)
    if (fread(b->arrays[i], sizeof(float), (size_t)b->counts[i], f) != (size_t)b->counts[i]) {
      fprintf(stderr, "bench: %s: short read\n", path);
      exit(1);
    }
  fclose(f);
}

/* The BLAS facts every record carries: "blas_core":"...","blas_config":"..." */
static inline void bench_print_blas(FILE *f) {
  fprintf(f, "\"blas_core\":\"%s\",\"blas_config\":\"%s\"", openblas_get_corename(),
          openblas_get_config());
}
#endif
