/* graft/report.h — what a run tells its user: metrics files, console tables,
 * progress, time and memory, SVG plots and the self-contained HTML report.
 *
 * Pieces, each usable alone:
 *  - timing and memory:  gr_wall_seconds, gr_peak_rss_bytes/_reset, gr_cpu_model
 *  - number formatting:  gr_fmt_bytes, gr_fmt_count, gr_fmt_duration
 *  - JSON Lines:         gr_jsonl (append one object per line, flushed), gr_jsonl_read
 *  - results:            gr_run_result / gr_results: one record per trained run
 *                        (method x label budget x seed), written to and read from
 *                        results.jsonl, summarised as mean ± std over seeds.
 *                        `graft demo` and `graft study` share them unchanged.
 *  - console:            gr_table (aligned text or Markdown), gr_progress
 *  - plots and report:   gr_plot -> SVG; gr_report_write_html -> report.html
 *
 * Output streams: functions that print take the FILE* to print to from the
 * caller (the CLI); library code never chooses stdout/stderr by itself.
 * Files: gr_svg_save_plot and gr_report_write_html write a temporary file in
 * the target's directory, fsync it and rename it over the target, so an
 * existing good file is never left half-written. results.jsonl is appended
 * line by line instead (each line flushed, the file fsynced on close), so a
 * crashed run keeps every finished line; the reader ignores a truncated last
 * line.
 * Ownership: every object here (gr_jsonl, gr_table, gr_progress, gr_results)
 * is created and freed by the caller's one call each and copies the strings
 * it is given; none is thread-safe, use each from one thread. The report
 * layer allocates with malloc (never in a training step: gr_progress_update
 * and gr_wall_seconds do not allocate).
 * Errors: gr_status + gr_last_error() as everywhere in graft.
 *
 * Typical use (graft demo / study):
 *   gr_jsonl *out = gr_jsonl_open("out/results.jsonl", true);
 *   gr_results rs = {0};
 *   for each method x budget x seed:
 *     gr_progress *bar = gr_progress_new(stderr, name, steps, GR_PROGRESS_AUTO);
 *     gr_peak_rss_reset(); double t0 = gr_wall_seconds();
 *     ... train, gr_progress_update(bar, step, "loss 0.41") every step ...
 *     gr_progress_finish(bar, NULL);
 *     gr_run_result r; gr_run_result_init(&r); fill r (curve: your array);
 *     r.seconds = gr_wall_seconds() - t0; r.peak_rss_bytes = gr_peak_rss_bytes();
 *     gr_jsonl_write_result(out, &r); gr_results_add(&rs, &r);
 *   gr_results_print_summary(&rs, stdout, GR_TABLE_TEXT);
 *   gr_report_write_html("out/report.html", &info, &rs);
 *   gr_jsonl_close(out); gr_results_free(&rs); */
#ifndef GRAFT_REPORT_H
#define GRAFT_REPORT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "graft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON; /* <cjson/cJSON.h>; graft links libcjson */

/* ---- time and memory --------------------------------------------------- */

/* Monotonic wall-clock seconds since an arbitrary origin; subtract two calls
 * to time a phase. */
double gr_wall_seconds(void);

/* Peak resident set size of the whole process in bytes (VmHWM from
 * /proc/self/status, else getrusage ru_maxrss); -1 when unknown. Peak RSS is
 * process-wide: threads and earlier phases count too. */
int64_t gr_peak_rss_bytes(void);
/* Current resident set size in bytes (VmRSS); -1 when unknown. */
int64_t gr_current_rss_bytes(void);
/* Resets the process's peak RSS to its current RSS, so the next
 * gr_peak_rss_bytes() measures one phase (Linux: writes "5" to
 * /proc/self/clear_refs). GR_EUNSUPPORTED where the OS does not allow it;
 * the peak then keeps counting from process start (callers may still report
 * it, labelled as a process peak). */
gr_status gr_peak_rss_reset(void);

/* CPU model name ("AMD EPYC 7B13", from /proc/cpuinfo) into buf; "unknown"
 * when not found. Always NUL-terminates (when n > 0). */
void gr_cpu_model(char *buf, size_t n);

/* ---- number formatting (into a caller buffer; returns buf) -------------- */
/* 1536 -> "1.5 KiB", 3.2e9 -> "3.0 GiB"; negative -> "n/a". */
const char *gr_fmt_bytes(int64_t bytes, char *buf, size_t n);
/* 1234567 -> "1.23M", 12345 -> "12.3k", 999 -> "999"; negative -> "n/a". */
const char *gr_fmt_count(int64_t count, char *buf, size_t n);
/* 0.0123 -> "12.3ms", 5.2 -> "5.20s", 83 -> "1m23s", 7322 -> "2h02m";
 * NaN/negative -> "n/a". */
const char *gr_fmt_duration(double seconds, char *buf, size_t n);

/* ---- JSON Lines -------------------------------------------------------- */

typedef struct gr_jsonl gr_jsonl;
/* Opens path for appending (creates it; truncates first when truncate is
 * true). NULL on error (GR_EIO naming the path). */
gr_jsonl *gr_jsonl_open(const char *path, bool truncate);
/* Writes obj (not consumed; caller still owns it) as one line and flushes.
 * GR_EARG when obj is not a JSON object. */
gr_status gr_jsonl_write(gr_jsonl *w, const struct cJSON *obj);
/* fsyncs and closes; GR_EIO when a buffered write failed. NULL is a no-op. */
gr_status gr_jsonl_close(gr_jsonl *w);
/* Reads every line of a JSON Lines file into *out, a new cJSON array of
 * objects the caller frees with cJSON_Delete. Blank lines are skipped; a
 * final line without its newline that does not parse (a run killed
 * mid-write) is ignored; any other line that is not a JSON object is
 * GR_EFORMAT naming path:line. */
gr_status gr_jsonl_read(const char *path, struct cJSON **out);

/* ---- results ----------------------------------------------------------- */

/* One point of a training curve. acc is NaN where accuracy was not measured
 * at that step (the JSON holds null there). */
typedef struct gr_curve_point {
  int64_t step;
  double loss;
  double acc; /* in [0,1] or NaN */
} gr_curve_point;

/* A named number a method reports beyond the common fields, e.g.
 * "source_accuracy" (forgetting) or "teacher_accuracy" (distillation). */
#define GR_RUN_MAX_EXTRA 8
typedef struct gr_run_metric {
  char name[32];
  double value;
} gr_run_metric;

/* One trained run. Strings are fixed arrays (fill with snprintf); the curve
 * is borrowed by gr_results_add, which copies it. Unknown numbers are NaN
 * (doubles) or -1 (integers). */
typedef struct gr_run_result {
  char phase[32];      /* "transfer" (the grid) or another phase, e.g. "pretrain" */
  char method[256];    /* "linear-probe", "finetune", "lora r=8", "lora:adapter_lr=4" ... */
  char dataset[96];    /* data spec, e.g. "fmnist:classes=5-9" */
  double budget;       /* fraction of the target labels used, (0,1] */
  int64_t n_labels;    /* labelled examples actually used */
  uint64_t seed;        /* JSON numbers are doubles: seeds up to 2^53 round-trip */
  double accuracy;     /* test accuracy in [0,1] */
  double loss;         /* final test (or train) loss */
  int64_t trainable_params;
  int64_t total_params;
  double seconds;      /* wall time of the run */
  int64_t peak_rss_bytes;
  const gr_curve_point *curve; /* training curve, n_curve points (may be NULL/0) */
  int n_curve;
  gr_run_metric extra[GR_RUN_MAX_EXTRA]; /* method-specific numbers, n_extra used */
  int n_extra;
} gr_run_result;

/* Initialises r to "unknown" everywhere (phase "transfer"), for callers to
 * fill in the fields they know. */
void gr_run_result_init(gr_run_result *r);

/* A growable list of runs that owns copies of their curves. Zero-initialise
 * (`gr_results rs = {0};`) and release with gr_results_free. */
typedef struct gr_results {
  gr_run_result *runs;
  int n, cap;
} gr_results;
/* Sets (or replaces) the extra metric `name` of r. GR_EARG when name is
 * empty or longer than 31 bytes; GR_EUNSUPPORTED when r already holds
 * GR_RUN_MAX_EXTRA other metrics. */
gr_status gr_run_result_set_extra(gr_run_result *r, const char *name, double value);
/* Appends a deep copy of r (strings and curve). */
gr_status gr_results_add(gr_results *rs, const gr_run_result *r);
void gr_results_free(gr_results *rs);

/* r as a new JSON object {"type":"run", ...} (caller cJSON_Deletes it). NULL
 * on allocation failure. */
struct cJSON *gr_run_result_to_json(const gr_run_result *r);
/* Appends r as one line of a results file. */
gr_status gr_jsonl_write_result(gr_jsonl *w, const gr_run_result *r);
/* Appends to rs every {"type":"run"} line of a results.jsonl (other lines are
 * skipped); GR_EFORMAT naming the path, the record number and the field for
 * a run with a missing or mistyped field (method and seed are required). */
gr_status gr_results_load_jsonl(gr_results *rs, const char *path);

/* Mean ± sample std over seeds for one (phase, method, budget) cell. */
typedef struct gr_summary_row {
  char phase[32];
  char method[256];
  double budget;
  int64_t n_labels;    /* of the first seed */
  int n_seeds;
  double acc_mean, acc_std; /* std is 0 for one seed; NaN runs are skipped */
  int64_t trainable_params; /* of the first seed */
  double seconds_mean;
  int64_t peak_rss_max;
  gr_run_metric extra_mean[GR_RUN_MAX_EXTRA]; /* the first seed's extra names, */
  int n_extra;                                /* each averaged over the seeds that have it */
} gr_summary_row;
/* Groups rs by (phase, method, budget): methods in order of first
 * appearance, budgets ascending within a method. *rows is malloc'd (free()
 * it); *n_rows may be 0. */
gr_status gr_results_summarize(const gr_results *rs, gr_summary_row **rows, int *n_rows);

/* ---- console table ----------------------------------------------------- */

typedef struct gr_table gr_table;
/* A table with n_cols columns titled headers[0..n_cols-1] (copied). */
gr_table *gr_table_new(int n_cols, const char *const *headers);
/* Adds a row of n_cols cells (copied; NULL prints as empty). */
gr_status gr_table_add_row(gr_table *t, const char *const *cells);
/* Adds a row formatted printf-style, cells separated by '\t':
 * gr_table_addf(t, "%s\t%.2f\t%lld", name, acc, n). */
gr_status gr_table_addf(gr_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
typedef enum gr_table_style { GR_TABLE_TEXT = 0, GR_TABLE_MARKDOWN = 1 } gr_table_style;
/* Prints headers, a rule and the rows with aligned columns; columns whose
 * cells all look numeric ("12.3", "-4", "85.1%", "1.2 MiB", "3.1s") are
 * right-aligned, others left-aligned. Column widths count UTF-8 characters. */
gr_status gr_table_print(const gr_table *t, FILE *fp, gr_table_style style);
void gr_table_free(gr_table *t);

/* Prints the gr_results_summarize rows of rs as a table (method, labels,
 * seeds, accuracy mean ± std in %, trainable params, time per run, peak
 * RSS; a phase column when there is more than one phase): the console twin
 * of report.html's summary, for `graft demo` and `graft study`. */
gr_status gr_results_print_summary(const gr_results *rs, FILE *fp, gr_table_style style);

/* ---- progress ---------------------------------------------------------- */

typedef enum gr_progress_mode {
  GR_PROGRESS_AUTO = 0, /* TTY if fp is a terminal, else PLAIN; GRAFT_PROGRESS=tty|plain|off overrides */
  GR_PROGRESS_TTY = 1,  /* one line redrawn with '\r', at most ~10 times a second */
  GR_PROGRESS_PLAIN = 2,/* a full line at each 10% of total or every 5 s, whichever first */
  GR_PROGRESS_OFF = 3,
} gr_progress_mode;
typedef struct gr_progress gr_progress;
/* A progress display on fp for `total` items (total <= 0: unknown, no ETA).
 * label ("pretrain") is copied. NULL only when out of memory. */
gr_progress *gr_progress_new(FILE *fp, const char *label, int64_t total, gr_progress_mode mode);
/* Reports `done` items finished; status (e.g. "loss 0.412", may be NULL) is
 * shown after done/total, rate and ETA. Cheap when nothing is printed, so it
 * may be called every step. */
void gr_progress_update(gr_progress *p, int64_t done, const char *status);
/* Prints the final line (total time, mean rate, status) and frees p. NULL is
 * a no-op. */
void gr_progress_finish(gr_progress *p, const char *status);

/* ---- SVG plots --------------------------------------------------------- */

/* One line of a plot: n points (x[i], y[i]); points with a non-finite x or
 * y (or x <= 0 on a log axis) are skipped and break the line. y_err (may be
 * NULL) draws ±y_err[i] error bars. Arrays are borrowed. */
typedef struct gr_series {
  const char *name;
  const double *x, *y, *y_err;
  int n;
} gr_series;

typedef enum gr_tick_format {
  GR_TICK_NUMBER = 0,  /* 0.5, 1000, 1e+06 */
  GR_TICK_PERCENT = 1, /* value*100 with '%': 0.01 -> "1%" */
} gr_tick_format;

typedef struct gr_plot {
  const char *title, *x_label, *y_label; /* may be NULL; escaped on output */
  bool log_x;                            /* log10 x axis (label budgets) */
  bool markers;                          /* draw a circle at each point */
  gr_tick_format x_format, y_format;
  int width, height;                     /* pixels; 0 -> 640 x 380 */
  const gr_series *series;
  int n_series;
} gr_plot;

/* Writes a standalone <svg> element (no XML prolog, so it can be inlined in
 * HTML) for plot p to fp: title, axes with ticks and labels, one <path> per
 * drawn line segment run (class "series"), markers (class "marker"), legend.
 * Empty data gives axes and a "no data" note. */
gr_status gr_svg_write_plot(FILE *fp, const gr_plot *p);
/* Same as a file with an XML prolog, written atomically. */
gr_status gr_svg_save_plot(const char *path, const gr_plot *p);

/* ---- HTML report ------------------------------------------------------- */

typedef struct gr_report_info {
  const char *title;   /* "graft demo: Fashion-MNIST 0-4 -> 5-9" */
  const char *summary; /* one paragraph under the title (may be NULL) */
  const char *config;  /* run configuration shown verbatim in <pre> (may be NULL) */
  int threads;         /* threads used (0: not shown) */
  double total_seconds;/* wall time of the whole job (NaN/<=0: not shown) */
} gr_report_info;

/* Writes a self-contained report.html (inline CSS and SVG, no scripts, no
 * external resources) atomically to path: header (title, date, CPU model,
 * threads, config), accuracy by method x budget (mean ± std over seeds), the
 * accuracy-vs-labels plot, training curves, other phases, and every run. */
gr_status gr_report_write_html(const char *path, const gr_report_info *info, const gr_results *rs);

#ifdef __cplusplus
}
#endif
#endif
