/* report/format.c — human-readable numbers for tables, progress lines and
 * the HTML report: byte sizes, counts, durations, label budgets and
 * accuracies. */
#include <math.h>
#include <stdio.h>

#include "graft/report.h"
#include "report/format_internal.h"

const char *gr_fmt_bytes(int64_t bytes, char *buf, size_t n) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 0) {
    snprintf(buf, n, "n/a");
    return buf;
  }
  double v = (double)bytes;
  int u = 0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    u++;
  }
  if (u == 0) snprintf(buf, n, "%lld B", (long long)bytes);
  else snprintf(buf, n, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

const char *gr_fmt_count(int64_t count, char *buf, size_t n) {
  static const char *suffix[] = {"", "k", "M", "G", "T"};
  if (count < 0) {
    snprintf(buf, n, "n/a");
    return buf;
  }
  if (count < 1000) {
    snprintf(buf, n, "%lld", (long long)count);
    return buf;
  }
  double v = (double)count;
  int s = 0;
  while (v >= 999.5 && s < 4) {
    v /= 1000.0;
    s++;
  }
  snprintf(buf, n, v < 10 ? "%.2f%s" : v < 100 ? "%.1f%s" : "%.0f%s", v, suffix[s]);
  return buf;
}

const char *gr_fmt_duration(double seconds, char *buf, size_t n) {
  if (!(seconds >= 0) || isinf(seconds)) snprintf(buf, n, "n/a");
  else if (seconds < 0.99995) snprintf(buf, n, "%.1fms", seconds * 1e3);
  else if (seconds < 59.995) snprintf(buf, n, "%.2fs", seconds);
  else if (seconds < 3599.5) {
    long s = lround(seconds);
    snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
  } else {
    long m = lround(seconds / 60.0);
    snprintf(buf, n, "%ldh%02ldm", m / 60, m % 60);
  }
  return buf;
}

const char *report_fmt_budget(double budget, int64_t n_labels, char *buf, size_t n) {
  if (isnan(budget)) snprintf(buf, n, "n/a");
  else if (n_labels >= 0) snprintf(buf, n, "%g%% (%lld labels)", budget * 100, (long long)n_labels);
  else snprintf(buf, n, "%g%%", budget * 100);
  return buf;
}

const char *report_fmt_acc(double mean, double std, int n_seeds, char *buf, size_t n) {
  if (isnan(mean)) snprintf(buf, n, "n/a");
  else if (n_seeds > 1 && !isnan(std)) snprintf(buf, n, "%.2f \u00b1 %.2f", 100 * mean, 100 * std);
  else snprintf(buf, n, "%.2f", 100 * mean);
  return buf;
}

const char *report_fmt_extras(const gr_run_metric *m, int n_metrics, char *buf, size_t n) {
  size_t len = 0;
  buf[0] = 0;
  for (int i = 0; i < n_metrics && len < n; i++) {
    int w = isnan(m[i].value) ? snprintf(buf + len, n - len, "%s%s=n/a", i ? ", " : "", m[i].name)
                              : snprintf(buf + len, n - len, "%s%s=%.4g", i ? ", " : "", m[i].name, m[i].value);
    if (w < 0) break;
    len += (size_t)w;
  }
  return buf;
}
