/* tests/report_sample.h — shared by the report tests: a deterministic
 * demo-shaped results list (a pretrain run plus methods x budgets x seeds
 * with curves; synthetic values, tests check structure, not these numbers)
 * and where the source tree is. */
#ifndef GRAFT_TEST_REPORT_SAMPLE_H
#define GRAFT_TEST_REPORT_SAMPLE_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/report.h"

#define SAMPLE_N_METHODS 4
#define SAMPLE_N_BUDGETS 3
#define SAMPLE_N_SEEDS 3
#define SAMPLE_CURVE_POINTS 20
static const char *const sample_methods[SAMPLE_N_METHODS] = {"linear-probe", "finetune", "lora r=8", "scratch <baseline>"};
static const double sample_budgets[SAMPLE_N_BUDGETS] = {0.01, 0.1, 1.0};

/* Curve of n points: loss decaying from 2.3 towards floor, accuracy every 5th step. */
static inline void sample_curve(gr_curve_point *c, int n, double floor_loss, double final_acc, int seed) {
  for (int i = 0; i < n; i++) {
    c[i].step = (int64_t)i * 10;
    c[i].loss = floor_loss + (2.3 - floor_loss) * exp(-0.25 * i) + 0.01 * ((i * 7 + seed) % 5);
    c[i].acc = i % 5 == 4 ? final_acc * (1 - 0.6 * exp(-0.3 * i)) : NAN;
  }
}

/* Fills rs with 1 pretrain run + methods x budgets x seeds transfer runs. */
static inline gr_status sample_results(gr_results *rs) {
  gr_curve_point curve[SAMPLE_CURVE_POINTS];
  gr_run_result r;
  gr_run_result_init(&r);
  snprintf(r.phase, sizeof r.phase, "pretrain");
  snprintf(r.method, sizeof r.method, "cnn");
  snprintf(r.dataset, sizeof r.dataset, "fmnist:classes=0-4");
  r.budget = 1.0, r.n_labels = 30000, r.seed = 0, r.accuracy = 0.912, r.loss = 0.25;
  r.trainable_params = r.total_params = 110000, r.seconds = 41.5, r.peak_rss_bytes = 90 << 20;
  sample_curve(curve, SAMPLE_CURVE_POINTS, 0.25, 0.91, 0);
  r.curve = curve, r.n_curve = SAMPLE_CURVE_POINTS;
  gr_status s = gr_results_add(rs, &r);
  for (int m = 0; m < SAMPLE_N_METHODS && s == GR_OK; m++)
    for (int b = 0; b < SAMPLE_N_BUDGETS && s == GR_OK; b++)
      for (int seed = 0; seed < SAMPLE_N_SEEDS && s == GR_OK; seed++) {
        gr_run_result_init(&r);
        snprintf(r.method, sizeof r.method, "%s", sample_methods[m]);
        snprintf(r.dataset, sizeof r.dataset, "fmnist:classes=5-9");
        r.budget = sample_budgets[b];
        r.n_labels = (int64_t)(30000 * sample_budgets[b]);
        r.seed = (uint64_t)seed;
        r.accuracy = (m == 3 ? 0.42 : 0.55 + 0.1 * m) + 0.08 * b + 0.004 * seed;
        r.loss = 1.0 - r.accuracy;
        r.trainable_params = m == 0 ? 645 : m == 2 ? 4000 : 110000;
        r.total_params = 110000;
        r.seconds = 0.5 + 2.0 * b + 0.3 * m;
        r.peak_rss_bytes = (int64_t)(80 + 5 * m) << 20;
        if (m == 1) s = gr_run_result_set_extra(&r, "source_accuracy", 0.9 - 0.1 * b + 0.001 * seed);
        sample_curve(curve, SAMPLE_CURVE_POINTS, 1.0 - r.accuracy, r.accuracy, seed);
        r.curve = curve, r.n_curve = SAMPLE_CURVE_POINTS;
        s = gr_results_add(rs, &r);
      }
  return s;
}

/* $GRAFT_SRC, or (a test run by hand) the tree this header is in. */
static inline const char *report_test_source_dir(void) {
  static char dir[512];
  const char *src = getenv("GRAFT_SRC");
  if (src && *src) return src;
  snprintf(dir, sizeof dir, "%s", __FILE__);
  char *tail = strstr(dir, "/tests/report_sample.h");
  if (!tail) return ".";
  *tail = 0;
  return dir;
}

/* $GRAFT_PYTHON, else python3 (the checks need only the standard library). */
static inline const char *report_test_python(void) {
  const char *py = getenv("GRAFT_PYTHON");
  return py && *py ? py : "python3";
}

#endif
