/* report/summary.c — mean ± std over seeds for each (phase, method, budget)
 * cell of a results list: the numbers of the console table and of the HTML
 * report's summary and accuracy-vs-labels plot, and the console version of
 * that table. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/report.h"
#include "report/format_internal.h"

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

/* Mean of each extra metric named by the cell's first run, over the runs of
 * the cell that report it (NaN values skipped). */
static void fill_row_extras(gr_summary_row *row, const gr_run_result *first, const gr_results *rs) {
  row->n_extra = first->n_extra;
  for (int e = 0; e < first->n_extra; e++) {
    double sum = 0;
    int n = 0;
    for (int i = 0; i < rs->n; i++) {
      const gr_run_result *r = &rs->runs[i];
      if (!same_cell(row, r)) continue;
      for (int k = 0; k < r->n_extra; k++)
        if (!strcmp(r->extra[k].name, first->extra[e].name) && !isnan(r->extra[k].value)) sum += r->extra[k].value, n++;
    }
    row->extra_mean[e] = first->extra[e];
    row->extra_mean[e].value = n ? sum / n : NAN;
  }
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
    fill_row_extras(row, r, rs);
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

/* One console row of a summary cell. */
static gr_status add_summary_row(gr_table *t, const gr_summary_row *r, bool with_phase) {
  char labels[64], seeds[16], acc[64], params[32], secs[32], rss[32];
  snprintf(seeds, sizeof seeds, "%d", r->n_seeds);
  const char *cells[] = {r->phase, r->method, report_fmt_budget(r->budget, r->n_labels, labels, sizeof labels),
                         seeds, report_fmt_acc(r->acc_mean, r->acc_std, r->n_seeds, acc, sizeof acc),
                         gr_fmt_count(r->trainable_params, params, sizeof params),
                         gr_fmt_duration(r->seconds_mean, secs, sizeof secs),
                         gr_fmt_bytes(r->peak_rss_max, rss, sizeof rss)};
  return gr_table_add_row(t, with_phase ? cells : cells + 1);
}

gr_status gr_results_print_summary(const gr_results *rs, FILE *fp, gr_table_style style) {
  if (!rs || !fp) return gr_error(GR_EARG, "results print summary: NULL argument");
  gr_summary_row *rows;
  int n;
  gr_status s = gr_results_summarize(rs, &rows, &n);
  if (s != GR_OK) return s;
  bool with_phase = false;
  for (int i = 1; i < n; i++) with_phase |= strcmp(rows[i].phase, rows[0].phase) != 0;
  static const char *const headers[] = {"phase", "method", "labels", "seeds", "accuracy (%)", "trainable", "time/run",
                                        "peak RSS"};
  gr_table *t = gr_table_new(with_phase ? 8 : 7, with_phase ? headers : headers + 1);
  s = t ? GR_OK : gr_last_status();
  for (int i = 0; i < n && s == GR_OK; i++) s = add_summary_row(t, &rows[i], with_phase);
  if (s == GR_OK) s = gr_table_print(t, fp, style);
  gr_table_free(t);
  free(rows);
  return s;
}
