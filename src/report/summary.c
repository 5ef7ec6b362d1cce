/* report/summary.c — mean ± std over seeds for each (phase, method, budget)
 * cell of a results list: the numbers of the console table and of the HTML
 * report's summary and accuracy-vs-labels plot. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/report.h"

static bool same_budget(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

static bool same_cell(const gr_summary_row *row, const gr_run_result *r) {
  return !strcmp(row->phase, r->phase) && !strcmp(row->method, r->method) && same_budget(row->budget, r->budget);
}

/* Order key of a row: (first appearance of its phase, of its method within
 * the phase, budget ascending with unknown last). */
typedef struct row_order {
  int phase_rank, method_rank;
  double budget;
} row_order;

static int first_index_of_phase(const gr_results *rs, const char *phase) {
  for (int i = 0; i < rs->n; i++)
    if (!strcmp(rs->runs[i].phase, phase)) return i;
  return rs->n;
}

static int first_index_of_method(const gr_results *rs, const char *phase, const char *method) {
  for (int i = 0; i < rs->n; i++)
    if (!strcmp(rs->runs[i].phase, phase) && !strcmp(rs->runs[i].method, method)) return i;
  return rs->n;
}

static int compare_rows(const gr_summary_row *a, const gr_summary_row *b, const gr_results *rs) {
  row_order x = {first_index_of_phase(rs, a->phase), first_index_of_method(rs, a->phase, a->method), a->budget};
  row_order y = {first_index_of_phase(rs, b->phase), first_index_of_method(rs, b->phase, b->method), b->budget};
  if (x.phase_rank != y.phase_rank) return x.phase_rank < y.phase_rank ? -1 : 1;
  if (x.method_rank != y.method_rank) return x.method_rank < y.method_rank ? -1 : 1;
  if (isnan(x.budget) || isnan(y.budget)) return isnan(x.budget) - isnan(y.budget);
  return (x.budget > y.budget) - (x.budget < y.budget);
}

/* Fills the statistics of one cell from every run that belongs to it. */
static void fill_row_stats(gr_summary_row *row, const gr_results *rs) {
  double sum = 0, sum_sec = 0;
  int n_acc = 0, n_sec = 0;
  row->n_seeds = 0;
  row->peak_rss_max = -1;
  for (int i = 0; i < rs->n; i++) {
    const gr_run_result *r = &rs->runs[i];
    if (!same_cell(row, r)) continue;
    row->n_seeds++;
    if (!isnan(r->accuracy)) sum += r->accuracy, n_acc++;
    if (!isnan(r->seconds)) sum_sec += r->seconds, n_sec++;
    if (r->peak_rss_bytes > row->peak_rss_max) row->peak_rss_max = r->peak_rss_bytes;
  }
  row->acc_mean = n_acc ? sum / n_acc : NAN;
  row->seconds_mean = n_sec ? sum_sec / n_sec : NAN;
  double ss = 0;
  for (int i = 0; i < rs->n; i++) {
    const gr_run_result *r = &rs->runs[i];
    if (same_cell(row, r) && !isnan(r->accuracy)) ss += (r->accuracy - row->acc_mean) * (r->accuracy - row->acc_mean);
  }
  row->acc_std = n_acc > 1 ? sqrt(ss / (n_acc - 1)) : n_acc == 1 ? 0.0 : NAN;
}

gr_status gr_results_summarize(const gr_results *rs, gr_summary_row **rows, int *n_rows) {
  if (!rs || !rows || !n_rows) return gr_error(GR_EARG, "results summarize: NULL argument");
  *rows = NULL;
  *n_rows = 0;
  gr_summary_row *out = calloc(rs->n > 0 ? (size_t)rs->n : 1, sizeof *out);
  if (!out) return gr_error(GR_ENOMEM, "results summarize: out of memory");
  int n = 0;
  for (int i = 0; i < rs->n; i++) {
    const gr_run_result *r = &rs->runs[i];
    int j = 0;
    while (j < n && !same_cell(&out[j], r)) j++;
    if (j < n) continue;
    gr_summary_row *row = &out[n++];
    memcpy(row->phase, r->phase, sizeof row->phase);
    memcpy(row->method, r->method, sizeof row->method);
    row->budget = r->budget;
    row->n_labels = r->n_labels;
    row->trainable_params = r->trainable_params;
    fill_row_stats(row, rs);
  }
  /* insertion sort: stable, and n is a grid of at most a few hundred cells */
  for (int i = 1; i < n; i++) {
    gr_summary_row key = out[i];
    int j = i - 1;
    while (j >= 0 && compare_rows(&out[j], &key, rs) > 0) {
      out[j + 1] = out[j];
      j--;
    }
    out[j + 1] = key;
  }
  *rows = out;
  *n_rows = n;
  return GR_OK;
}
