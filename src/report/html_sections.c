/* report/html_sections.c — the content sections of report.html (see
 * html_parts.h): summary tables from gr_results_summarize rows and plots
 * built from run curves. Page skeleton and header live in html.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/html_parts.h"

#define PHASE_TRANSFER "transfer"

static bool is_transfer(const char *phase) { return !strcmp(phase, PHASE_TRANSFER); }

/* ---- the grid of the transfer phase: methods x budgets ------------------------ */

#define GRID_MAX_METHODS 256
#define GRID_MAX_BUDGETS 64

typedef struct grid {
  const char *methods[GRID_MAX_METHODS];
  int n_methods;
  double budgets[GRID_MAX_BUDGETS];
  int64_t n_labels[GRID_MAX_BUDGETS];
  int n_budgets;
} grid;

static gr_status grid_collect(const html_summary_rows *sr, grid *g) {
  memset(g, 0, sizeof *g);
  for (int i = 0; i < sr->n; i++) {
    const gr_summary_row *r = &sr->rows[i];
    if (!is_transfer(r->phase)) continue;
    int m = 0;
    while (m < g->n_methods && strcmp(g->methods[m], r->method)) m++;
    if (m == GRID_MAX_METHODS) return gr_error(GR_EUNSUPPORTED, "html report: more than %d methods", m);
    if (m == g->n_methods) g->methods[g->n_methods++] = r->method;
    int b = 0;
    while (b < g->n_budgets && !(g->budgets[b] == r->budget || (isnan(g->budgets[b]) && isnan(r->budget)))) b++;
    if (b == GRID_MAX_BUDGETS) return gr_error(GR_EUNSUPPORTED, "html report: more than %d label budgets", b);
    if (b == g->n_budgets) {
      /* insert sorted, unknown budgets last */
      int at = b;
      while (at > 0 && (isnan(g->budgets[at - 1]) || g->budgets[at - 1] > r->budget)) at--;
      if (isnan(r->budget)) at = b;
      memmove(&g->budgets[at + 1], &g->budgets[at], (size_t)(b - at) * sizeof g->budgets[0]);
      memmove(&g->n_labels[at + 1], &g->n_labels[at], (size_t)(b - at) * sizeof g->n_labels[0]);
      g->budgets[at] = r->budget;
      g->n_labels[at] = r->n_labels;
      g->n_budgets++;
    }
  }
  return GR_OK;
}

static const gr_summary_row *find_row(const html_summary_rows *sr, const char *phase, const char *method,
                                      double budget) {
  for (int i = 0; i < sr->n; i++) {
    const gr_summary_row *r = &sr->rows[i];
    bool same_budget = r->budget == budget || (isnan(r->budget) && isnan(budget));
    if (!strcmp(r->phase, phase) && !strcmp(r->method, method) && same_budget) return r;
  }
  return NULL;
}

static void write_accuracy_table(FILE *fp, const grid *g, const html_summary_rows *sr) {
  char buf[96];
  fputs("<table class=\"accuracy\">\n<thead><tr><th>Method</th>", fp);
  for (int b = 0; b < g->n_budgets; b++) {
    fputs("<th class=\"num\">", fp);
    html_text(fp, report_fmt_budget(g->budgets[b], g->n_labels[b], buf, sizeof buf));
    fputs("</th>", fp);
  }
  fputs("</tr></thead>\n<tbody>\n", fp);
  for (int m = 0; m < g->n_methods; m++) {
    fputs("<tr>", fp);
    html_cell(fp, NULL, g->methods[m]);
    for (int b = 0; b < g->n_budgets; b++) {
      const gr_summary_row *r = find_row(sr, PHASE_TRANSFER, g->methods[m], g->budgets[b]);
      double best = -INFINITY;
      for (int k = 0; k < g->n_methods; k++) {
        const gr_summary_row *o = find_row(sr, PHASE_TRANSFER, g->methods[k], g->budgets[b]);
        if (o && !isnan(o->acc_mean)) best = fmax(best, o->acc_mean);
      }
      bool is_best = r && !isnan(r->acc_mean) && r->acc_mean == best && g->n_methods > 1;
      html_cell(fp, is_best ? "num best" : "num",
                r ? report_fmt_acc(r->acc_mean, r->acc_std, r->n_seeds, buf, sizeof buf) : "\u2013");
    }
    fputs("</tr>\n", fp);
  }
  fputs("</tbody>\n</table>\n", fp);
}

static gr_status write_accuracy_plot(FILE *fp, const grid *g, const html_summary_rows *sr) {
  size_t nb = (size_t)g->n_budgets;
  double *buf = malloc(3 * nb * (size_t)g->n_methods * sizeof *buf + 1);
  gr_series *series = calloc((size_t)g->n_methods + 1, sizeof *series);
  if (!buf || !series) {
    free(buf);
    free(series);
    return gr_error(GR_ENOMEM, "html report: out of memory");
  }
  for (int m = 0; m < g->n_methods; m++) {
    double *x = buf + 3 * nb * (size_t)m, *y = x + nb, *e = y + nb;
    for (size_t b = 0; b < nb; b++) {
      const gr_summary_row *r = find_row(sr, PHASE_TRANSFER, g->methods[m], g->budgets[b]);
      x[b] = g->budgets[b];
      y[b] = r ? r->acc_mean : NAN;
      e[b] = r && r->n_seeds > 1 ? r->acc_std : NAN;
    }
    series[m] = (gr_series){g->methods[m], x, y, e, (int)nb};
  }
  bool log_x = g->n_budgets > 1 && g->budgets[0] > 0;
  gr_plot plot = {.title = "Test accuracy vs. labelled examples", .x_label = "fraction of target labels (log scale)",
                  .y_label = "test accuracy", .log_x = log_x, .markers = true, .x_format = GR_TICK_PERCENT,
                  .y_format = GR_TICK_PERCENT, .width = 760, .height = 420, .series = series,
                  .n_series = g->n_methods};
  if (!log_x) plot.x_label = "fraction of target labels";
  fputs("<div class=\"plots\">\n", fp);
  gr_status s = gr_svg_write_plot(fp, &plot);
  fputs("</div>\n", fp);
  free(buf);
  free(series);
  return s;
}

static void write_cost_table(FILE *fp, const html_summary_rows *sr, const char *phase) {
  char buf[96], extras[400];
  bool any_extra = false;
  for (int i = 0; i < sr->n; i++) any_extra |= !strcmp(sr->rows[i].phase, phase) && sr->rows[i].n_extra > 0;
  fputs("<table class=\"cost\">\n<thead><tr><th>Method</th><th class=\"num\">Labels</th><th class=\"num\">Seeds</th>"
        "<th class=\"num\">Accuracy (%)</th><th class=\"num\">Trainable params</th><th class=\"num\">Time / run</th>"
        "<th class=\"num\">Peak RSS</th>", fp);
  fputs(any_extra ? "<th>Other metrics (mean)</th></tr></thead>\n<tbody>\n" : "</tr></thead>\n<tbody>\n", fp);
  for (int i = 0; i < sr->n; i++) {
    const gr_summary_row *r = &sr->rows[i];
    if (strcmp(r->phase, phase)) continue;
    fputs("<tr>", fp);
    html_cell(fp, NULL, r->method);
    html_cell(fp, "num", report_fmt_budget(r->budget, r->n_labels, buf, sizeof buf));
    snprintf(buf, sizeof buf, "%d", r->n_seeds);
    html_cell(fp, "num", buf);
    html_cell(fp, "num", report_fmt_acc(r->acc_mean, r->acc_std, r->n_seeds, buf, sizeof buf));
    html_cell(fp, "num", gr_fmt_count(r->trainable_params, buf, sizeof buf));
    html_cell(fp, "num", gr_fmt_duration(r->seconds_mean, buf, sizeof buf));
    html_cell(fp, "num", gr_fmt_bytes(r->peak_rss_max, buf, sizeof buf));
    if (any_extra) html_cell(fp, NULL, report_fmt_extras(r->extra_mean, r->n_extra, extras, sizeof extras));
    fputs("</tr>\n", fp);
  }
  fputs("</tbody>\n</table>\n", fp);
}

/* ---- training curves ------------------------------------------------------------ */

#define MAX_CURVES 10 /* one colour each */

typedef struct curve_set {
  const gr_run_result *runs[MAX_CURVES];
  char names[MAX_CURVES][288]; /* a method name (256) and " (seed N)" */
  int n;
} curve_set;

static bool any_finite_acc(const curve_set *cs) {
  for (int k = 0; k < cs->n; k++)
    for (int i = 0; i < cs->runs[k]->n_curve; i++)
      if (isfinite(cs->runs[k]->curve[i].acc)) return true;
  return false;
}

/* Loss-vs-step and (when measured) accuracy-vs-step plots of cs. */
static gr_status write_curve_plots(FILE *fp, const curve_set *cs, const char *title) {
  size_t total = 0;
  for (int k = 0; k < cs->n; k++) total += (size_t)cs->runs[k]->n_curve;
  double *buf = malloc(4 * total * sizeof *buf + 1);
  gr_series loss[MAX_CURVES], acc[MAX_CURVES];
  if (!buf) return gr_error(GR_ENOMEM, "html report: curves: out of memory");
  double *at = buf;
  for (int k = 0; k < cs->n; k++) {
    const gr_run_result *r = cs->runs[k];
    double *x = at, *yl = at + r->n_curve, *xa = at + 2 * r->n_curve, *ya = at + 3 * r->n_curve;
    at += 4 * r->n_curve;
    int n_acc = 0; /* accuracy is measured at fewer steps: keep only those, so the line joins them */
    for (int i = 0; i < r->n_curve; i++) {
      x[i] = (double)r->curve[i].step;
      yl[i] = r->curve[i].loss;
      if (isfinite(r->curve[i].acc)) xa[n_acc] = x[i], ya[n_acc++] = r->curve[i].acc;
    }
    loss[k] = (gr_series){cs->names[k], x, yl, NULL, r->n_curve};
    acc[k] = (gr_series){cs->names[k], xa, ya, NULL, n_acc};
  }
  char t1[160], t2[160];
  snprintf(t1, sizeof t1, "Training loss \u2014 %s", title);
  snprintf(t2, sizeof t2, "Accuracy during training \u2014 %s", title);
  gr_plot pl = {.title = t1, .x_label = "step", .y_label = "loss", .width = 540, .height = 340, .series = loss,
                .n_series = cs->n};
  gr_plot pa = {.title = t2, .x_label = "step", .y_label = "accuracy", .y_format = GR_TICK_PERCENT, .markers = true,
                .width = 540, .height = 340, .series = acc, .n_series = cs->n};
  fputs("<div class=\"plots\">\n", fp);
  gr_status s = gr_svg_write_plot(fp, &pl);
  if (s == GR_OK && any_finite_acc(cs)) s = gr_svg_write_plot(fp, &pa);
  fputs("</div>\n", fp);
  free(buf);
  return s;
}

/* The run with the lowest seed and a curve for (phase, method, budget). */
static const gr_run_result *first_curve_run(const gr_results *rs, const char *phase, const char *method,
                                            double budget) {
  const gr_run_result *best = NULL;
  for (int i = 0; i < rs->n; i++) {
    const gr_run_result *r = &rs->runs[i];
    bool same_budget = r->budget == budget || (isnan(r->budget) && isnan(budget));
    if (r->n_curve > 0 && !strcmp(r->phase, phase) && !strcmp(r->method, method) && same_budget &&
        (!best || r->seed < best->seed))
      best = r;
  }
  return best;
}

static gr_status write_transfer_curves(FILE *fp, const gr_results *rs, const grid *g) {
  bool heading = false;
  for (int b = 0; b < g->n_budgets; b++) {
    curve_set cs = {.n = 0};
    for (int m = 0; m < g->n_methods && cs.n < MAX_CURVES; m++) {
      const gr_run_result *r = first_curve_run(rs, PHASE_TRANSFER, g->methods[m], g->budgets[b]);
      if (!r) continue;
      cs.runs[cs.n] = r;
      snprintf(cs.names[cs.n++], sizeof cs.names[0], "%s", r->method);
    }
    if (cs.n == 0) continue;
    if (!heading) {
      fputs("<h2>Training curves</h2>\n<p class=\"note\">One run per method (the lowest seed) at each label "
            "budget", fp);
      if (g->n_methods > MAX_CURVES) fprintf(fp, "; the first %d methods", MAX_CURVES);
      fputs(".</p>\n", fp);
      heading = true;
    }
    char title[64];
    report_fmt_budget(g->budgets[b], -1, title, sizeof title);
    strncat(title, " of labels", sizeof title - strlen(title) - 1);
    gr_status s = write_curve_plots(fp, &cs, title);
    if (s != GR_OK) return s;
  }
  return GR_OK;
}

gr_status html_write_transfer_sections(FILE *fp, const gr_results *rs, const html_summary_rows *sr) {
  grid *g = malloc(sizeof *g);
  if (!g) return gr_error(GR_ENOMEM, "html report: out of memory");
  gr_status s = grid_collect(sr, g);
  if (s == GR_OK && g->n_methods > 0) {
    fputs("<h2>Accuracy by method and label budget</h2>\n<p class=\"note\">Test accuracy (%) on the target task, "
          "mean \u00b1 sample std over seeds; the best mean per budget in bold.</p>\n", fp);
    write_accuracy_table(fp, g, sr);
    fputs("<h2>Accuracy vs. labels</h2>\n", fp);
    s = write_accuracy_plot(fp, g, sr);
    if (s == GR_OK) {
      fputs("<h2>Cost</h2>\n", fp);
      write_cost_table(fp, sr, PHASE_TRANSFER);
      s = write_transfer_curves(fp, rs, g);
    }
  }
  free(g);
  return s;
}

/* ---- other phases and the list of all runs ----------------------------------------- */

gr_status html_write_other_phases(FILE *fp, const gr_results *rs, const html_summary_rows *sr) {
  for (int i = 0; i < rs->n; i++) {
    const char *phase = rs->runs[i].phase;
    bool first = !is_transfer(phase);
    for (int j = 0; j < i && first; j++) first = strcmp(rs->runs[j].phase, phase) != 0;
    if (!first) continue;
    fputs("<h2>Phase: ", fp);
    html_text(fp, phase);
    fputs("</h2>\n", fp);
    write_cost_table(fp, sr, phase);
    curve_set cs = {.n = 0};
    int with_curve = 0;
    for (int j = i; j < rs->n; j++) with_curve += !strcmp(rs->runs[j].phase, phase) && rs->runs[j].n_curve > 0;
    if (with_curve > MAX_CURVES) fprintf(fp, "<p class=\"note\">Curves of the first %d runs.</p>\n", MAX_CURVES);
    for (int j = i; j < rs->n && cs.n < MAX_CURVES; j++) {
      const gr_run_result *r = &rs->runs[j];
      if (strcmp(r->phase, phase) || r->n_curve == 0) continue;
      cs.runs[cs.n] = r;
      snprintf(cs.names[cs.n++], sizeof cs.names[0], "%s (seed %llu)", r->method, (unsigned long long)r->seed);
    }
    if (cs.n > 0) {
      gr_status s = write_curve_plots(fp, &cs, phase);
      if (s != GR_OK) return s;
    }
  }
  return GR_OK;
}

void html_write_all_runs(FILE *fp, const gr_results *rs) {
  char buf[96];
  fprintf(fp, "<h2>All runs</h2>\n<details>\n<summary>%d runs, one row each</summary>\n", rs->n);
  fputs("<table class=\"runs\">\n<thead><tr><th>Phase</th><th>Method</th><th>Data</th><th class=\"num\">Labels</th>"
        "<th class=\"num\">Seed</th><th class=\"num\">Accuracy (%)</th><th class=\"num\">Loss</th>"
        "<th class=\"num\">Trainable / total params</th><th class=\"num\">Time</th><th class=\"num\">Peak RSS</th>"
        "<th>Other metrics</th></tr></thead>\n<tbody>\n", fp);
  for (int i = 0; i < rs->n; i++) {
    const gr_run_result *r = &rs->runs[i];
    fputs("<tr>", fp);
    html_cell(fp, NULL, r->phase);
    html_cell(fp, NULL, r->method);
    html_cell(fp, NULL, r->dataset);
    html_cell(fp, "num", report_fmt_budget(r->budget, r->n_labels, buf, sizeof buf));
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)r->seed);
    html_cell(fp, "num", buf);
    html_cell(fp, "num", report_fmt_acc(r->accuracy, NAN, 1, buf, sizeof buf));
    if (isnan(r->loss)) snprintf(buf, sizeof buf, "n/a");
    else snprintf(buf, sizeof buf, "%.4f", r->loss);
    html_cell(fp, "num", buf);
    char a[32], b[32];
    snprintf(buf, sizeof buf, "%s / %s", gr_fmt_count(r->trainable_params, a, sizeof a),
             gr_fmt_count(r->total_params, b, sizeof b));
    html_cell(fp, "num", buf);
    html_cell(fp, "num", gr_fmt_duration(r->seconds, buf, sizeof buf));
    html_cell(fp, "num", gr_fmt_bytes(r->peak_rss_bytes, buf, sizeof buf));
    char extras[400];
    html_cell(fp, NULL, report_fmt_extras(r->extra, r->n_extra, extras, sizeof extras));
    fputs("</tr>\n", fp);
  }
  fputs("</tbody>\n</table>\n</details>\n", fp);
}
