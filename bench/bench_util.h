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

static int bench_blocks; /* --blocks K: a paced run (bench_await_go), training timed in K blocks */

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
 * --steps N --batch N --blocks K. Unknown flags are an error (exit 2). */
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
    else if (!strcmp(f, "--blocks")) bench_blocks = atoi(v);
    else { fprintf(stderr, "%s: unknown flag %s\n", argv[0], f); exit(2); }
    i++;
  }
  if (a->threads <= 0) a->threads = 1;
  if (bench_blocks < 0) { fprintf(stderr, "%s: --blocks must be >= 0\n", argv[0]); exit(2); }
}

/* Paced runs (--blocks K): bench/driver.py runs graft and the peer side by
 * side and lets one of them time a section at a time, alternating, so that
 * both sides meet the same machine (the host's cores slow down by up to 2x
 * for a second or two at a time, seen). Before each timed section a paced
 * program says {"await":"<section>"} and waits for a line on stdin. */
static inline void bench_await_go(const char *section) {
  if (bench_blocks <= 0) return;
  printf("{\"await\":\"%s\"}\n", section);
  fflush(stdout);
  char line[64];
  if (!fgets(line, sizeof line, stdin)) {
    fprintf(stderr, "bench: paced run: no go for %s (stdin closed)\n", section);
    exit(1);
  }
}

/* Exits 2 unless the timed steps split into the blocks evenly (called
 * before anything runs, and by bench_time_steps). */
static inline void bench_check_blocks(const char *name, int steps) {
  if (bench_blocks > 0 && (steps < bench_blocks || steps % bench_blocks)) {
    fprintf(stderr, "bench_%s: --blocks %d must divide --steps %d\n", name, bench_blocks, steps);
    exit(2);
  }
}

/* One training step (loss before the update) of the loop bench_time_steps runs. */
typedef float (*bench_step_fn)(void *arg, int step);

typedef struct bench_timing {
  double wall_s, cpu_s; /* summed over the timed steps */
  float loss;           /* of the last step */
} bench_timing;

/* Times steps first .. first+steps-1; paced, as --blocks blocks, each after
 * a go, each reported as {"case":"train_block"} with its time per step, so
 * the driver can set each graft block beside the peer's. */
static inline bench_timing bench_time_steps(const char *name, bench_step_fn step, void *arg, int first,
                                            int steps) {
  int blocks = bench_blocks;
  bench_check_blocks(name, steps);
  bench_timing t = {0, 0, 0};
  int per_block = blocks > 0 ? steps / blocks : steps;
  for (int b = 0; b < (blocks > 0 ? blocks : 1); b++) {
    bench_await_go("train");
    double t0 = bench_now(), cpu0 = bench_cpu_now();
    for (int s = 0; s < per_block; s++) t.loss = step(arg, first + b * per_block + s);
    double wall = bench_now() - t0, cpu = bench_cpu_now() - cpu0;
    t.wall_s += wall;
    t.cpu_s += cpu;
    if (blocks > 0) {
      printf("{\"bench\":\"%s\",\"case\":\"train_block\",\"block\":%d,\"time_s\":%.6e,\"cpu_s\":%.6e}\n",
             name, b, wall / per_block, cpu / per_block);
      fflush(stdout);
    }
  }
  return t;
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
