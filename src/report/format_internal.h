/* report/format_internal.h — internal formatters shared by the console
 * summary table and the HTML report, so both show the same strings. */
#ifndef GRAFT_REPORT_FORMAT_INTERNAL_H
#define GRAFT_REPORT_FORMAT_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include "graft/report.h"

/* "10% (600 labels)"; "10%" when n_labels < 0; "n/a" for a NaN budget. */
const char *report_fmt_budget(double budget, int64_t n_labels, char *buf, size_t n);
/* Accuracy in percent: "85.31 ± 0.42"; "85.31" for one seed; "n/a" for NaN. */
const char *report_fmt_acc(double mean, double std, int n_seeds, char *buf, size_t n);
/* "source_accuracy=0.912, kd_loss=0.31" ("" for none; NaN as "n/a"). */
const char *report_fmt_extras(const gr_run_metric *m, int n_metrics, char *buf, size_t n);

#endif
