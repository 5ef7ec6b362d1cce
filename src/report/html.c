/* report/html.c — report.html: one self-contained page (inline CSS and SVG,
 * no scripts, no external resources) from a gr_results list. Sections:
 * header (run, machine, date), accuracy by method x label budget, the
 * accuracy-vs-labels plot, cost, training curves, other phases (e.g. the
 * pretraining of the source model), configuration and every run. The same
 * code serves `graft demo` and `graft study`. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "graft/report.h"
#include "report/atomic_file.h"
#include "report/html_parts.h"
#include "report/markup.h"

static const char *const css =
    "body{font-family:Helvetica,Arial,sans-serif;color:#222;background:#fafafa;margin:0}"
    "main{max-width:1100px;margin:0 auto;padding:24px 32px 48px;background:#fff}"
    "h1{font-size:26px;margin:0 0 6px}h2{font-size:19px;margin:32px 0 10px;border-bottom:1px solid #ddd;"
    "padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}"
    "p.lead{color:#444;margin:4px 0 14px}"
    "dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;font-size:14px;margin:10px 0}"
    "dl.meta dt{color:#666}dl.meta dd{margin:0}"
    "table{border-collapse:collapse;font-size:14px;margin:8px 0}"
    "th,td{padding:5px 10px;border-bottom:1px solid #e4e4e4;text-align:left}"
    "th{background:#f2f4f7;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}"
    "td.best{font-weight:700;color:#0b5394}tr:hover td{background:#f8fafc}"
    ".plots{display:flex;flex-wrap:wrap;gap:12px}.plots svg{max-width:100%;height:auto;border:1px solid #eee}"
    "pre{background:#f5f5f5;padding:10px;font-size:13px;overflow-x:auto}"
    "details{margin:10px 0}summary{cursor:pointer;font-weight:600}"
    "footer{color:#888;font-size:12px;margin-top:36px}.note{color:#666;font-size:13px}";

/* ---- small writers -------------------------------------------------------- */

void html_text(FILE *fp, const char *s) { report_write_escaped(fp, s); }

void html_cell(FILE *fp, const char *cls, const char *text) {
  fprintf(fp, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
  report_write_escaped(fp, text);
  fputs("</td>", fp);
}

/* ---- header ----------------------------------------------------------------- */

static void write_meta_row(FILE *fp, const char *key, const char *value) {
  fputs("<dt>", fp);
  report_write_escaped(fp, key);
  fputs("</dt><dd>", fp);
  report_write_escaped(fp, value);
  fputs("</dd>\n", fp);
}

static void write_header(FILE *fp, const gr_report_info *info, const gr_results *rs) {
  char buf[256], cpu[160];
  fputs("<h1>", fp);
  report_write_escaped(fp, info->title ? info->title : "graft report");
  fputs("</h1>\n", fp);
  if (info->summary) {
    fputs("<p class=\"lead\">", fp);
    report_write_escaped(fp, info->summary);
    fputs("</p>\n", fp);
  }
  fputs("<dl class=\"meta\">\n", fp);
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  write_meta_row(fp, "Date", buf);
  gr_cpu_model(cpu, sizeof cpu);
  snprintf(buf, sizeof buf, "%s, %ld logical CPUs", cpu, sysconf(_SC_NPROCESSORS_ONLN));
  write_meta_row(fp, "Machine", buf);
  if (info->threads > 0) {
    snprintf(buf, sizeof buf, "%d", info->threads);
    write_meta_row(fp, "Threads", buf);
  }
  if (info->total_seconds > 0) write_meta_row(fp, "Total time", gr_fmt_duration(info->total_seconds, buf, sizeof buf));
  snprintf(buf, sizeof buf, "%d", rs->n);
  write_meta_row(fp, "Runs", buf);
  fputs("</dl>\n", fp);
}

/* ---- document ---------------------------------------------------------------- */

static gr_status write_document(FILE *fp, const gr_report_info *info, const gr_results *rs) {
  gr_summary_row *rows = NULL;
  int n_rows = 0;
  gr_status s = gr_results_summarize(rs, &rows, &n_rows);
  if (s != GR_OK) return s;
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>", fp);
  report_write_escaped(fp, info->title ? info->title : "graft report");
  fprintf(fp, "</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n", css);
  write_header(fp, info, rs);
  html_summary_rows sr = {rows, n_rows};
  if (rs->n == 0) fputs("<p class=\"note\">No runs recorded.</p>\n", fp);
  s = html_write_transfer_sections(fp, rs, &sr);
  if (s == GR_OK) s = html_write_other_phases(fp, rs, &sr);
  if (s == GR_OK && info->config) {
    fputs("<h2>Configuration</h2>\n<pre>", fp);
    report_write_escaped(fp, info->config);
    fputs("</pre>\n", fp);
  }
  if (s == GR_OK) html_write_all_runs(fp, rs);
  fputs("<footer>Written by graft. Accuracy is test accuracy in percent, mean \u00b1 sample standard deviation "
        "over seeds. Peak RSS is the whole process's peak resident memory during the run.</footer>\n"
        "</main>\n</body>\n</html>\n", fp);
  free(rows);
  if (s == GR_OK && ferror(fp)) s = gr_error(GR_EIO, "report: write failed");
  return s;
}

gr_status gr_report_write_html(const char *path, const gr_report_info *info, const gr_results *rs) {
  if (!path || !info || !rs) return gr_error(GR_EARG, "html report: NULL argument");
  if (rs->n < 0 || (rs->n > 0 && !rs->runs)) return gr_error(GR_EARG, "html report: bad results list");
  for (int i = 0; i < rs->n; i++)
    if (rs->runs[i].n_curve < 0 || (rs->runs[i].n_curve > 0 && !rs->runs[i].curve))
      return gr_error(GR_EARG, "html report: run %d ('%s') has %d curve points but no data", i,
                      rs->runs[i].method, rs->runs[i].n_curve);
  report_atomic_file f;
  gr_status s = report_atomic_open(&f, path);
  if (s != GR_OK) return s;
  s = write_document(f.fp, info, rs);
  if (s != GR_OK) {
    report_atomic_abort(&f);
    return s;
  }
  return report_atomic_commit(&f);
}
