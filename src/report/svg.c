/* report/svg.c — line plots as standalone SVG (inlined in report.html or
 * saved alone): axes with "nice" ticks (linear or log10 x), gridlines,
 * several series with markers and error bars, a legend and a title. Skips
 * non-finite points; degenerate ranges (one point, all-equal values) get a
 * padded range so the plot still reads. Not a general charting library. */
#include <math.h>
#include <string.h>

#include "graft/report.h"
#include "report/atomic_file.h"
#include "report/markup.h"

#define MAX_TICKS 12

/* Okabe-Ito colour-blind-safe palette, then a few more distinct colours. */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                      "#56B4E9", "#000000", "#F0E442", "#7F3C8D", "#11A579"};
#define N_COLORS (int)(sizeof palette / sizeof palette[0])

typedef struct axis {
  double lo, hi;         /* data range after padding/rounding (log10 units on a log axis) */
  bool log;
  gr_tick_format format;
  double ticks[MAX_TICKS]; /* in axis units */
  int n_ticks;
  double step;           /* linear tick step (axis units) */
} axis;

typedef struct frame {
  double left, top, width, height; /* plot area in pixels */
  axis x, y;
} frame;

static bool usable_x(const gr_plot *p, double x) { return isfinite(x) && (!p->log_x || x > 0); }

static double to_axis(const axis *a, double v) { return a->log ? log10(v) : v; }

/* Range of the usable data (with error bars on y); false when none. */
static bool data_range(const gr_plot *p, double *xlo, double *xhi, double *ylo, double *yhi) {
  bool any = false;
  *xlo = *ylo = INFINITY;
  *xhi = *yhi = -INFINITY;
  for (int s = 0; s < p->n_series; s++) {
    const gr_series *sr = &p->series[s];
    for (int i = 0; i < sr->n; i++) {
      double x = sr->x[i], y = sr->y[i];
      if (!usable_x(p, x) || !isfinite(y)) continue;
      double e = sr->y_err && isfinite(sr->y_err[i]) ? fabs(sr->y_err[i]) : 0;
      x = p->log_x ? log10(x) : x;
      *xlo = fmin(*xlo, x), *xhi = fmax(*xhi, x);
      *ylo = fmin(*ylo, y - e), *yhi = fmax(*yhi, y + e);
      any = true;
    }
  }
  return any;
}

/* 1, 2 or 5 times a power of ten, near range/target. */
static double nice_step(double range, int target) {
  double raw = range / target;
  double mag = pow(10, floor(log10(raw)));
  double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void setup_axis(axis *a, double lo, double hi, bool log_axis, gr_tick_format fmt) {
  a->log = log_axis;
  a->format = fmt;
  if (hi - lo < 1e-12 * fmax(1.0, fabs(lo))) { /* one value: pad around it */
    double pad = log_axis ? 0.5 : fmax(fabs(lo) * 0.1, 0.5);
    if (!log_axis && fmt == GR_TICK_PERCENT) pad = fmax(fabs(lo) * 0.1, 0.05);
    lo -= pad, hi += pad;
  }
  double first_tick, last_tick;
  if (log_axis) { /* ticks at whole decades; a little room beyond them for markers */
    first_tick = floor(lo), last_tick = ceil(hi);
    a->step = fmax(1.0, ceil((last_tick - first_tick) / (MAX_TICKS - 1)));
    double room = 0.05 * (last_tick - first_tick);
    a->lo = first_tick - room, a->hi = last_tick + room;
  } else {
    a->step = nice_step(hi - lo, 5);
    a->lo = first_tick = floor(lo / a->step) * a->step;
    a->hi = last_tick = ceil(hi / a->step) * a->step;
  }
  a->n_ticks = 0;
  for (double t = first_tick; t <= last_tick + a->step * 1e-6 && a->n_ticks < MAX_TICKS; t += a->step)
    a->ticks[a->n_ticks++] = fabs(t) < a->step * 1e-9 ? 0.0 : t;
}

/* Tick label of axis value t (axis units). */
static void tick_label(const axis *a, double t, char *buf, size_t n) {
  double v = a->log ? pow(10, t) : t;
  double scale = a->format == GR_TICK_PERCENT ? 100.0 : 1.0;
  double shown = v * scale, step = a->log ? shown : a->step * scale;
  const char *suffix = a->format == GR_TICK_PERCENT ? "%" : "";
  if (shown != 0 && (fabs(shown) >= 1e6 || fabs(shown) < 1e-4)) {
    snprintf(buf, n, "%.3g%s", shown, suffix);
    return;
  }
  int decimals = step > 0 ? (int)fmax(0, -floor(log10(step) + 1e-9)) : 0;
  snprintf(buf, n, "%.*f%s", decimals > 6 ? 6 : decimals, shown, suffix);
}

static double px_x(const frame *f, double v) {
  return f->left + (to_axis(&f->x, v) - f->x.lo) / (f->x.hi - f->x.lo) * f->width;
}
static double px_y(const frame *f, double v) {
  return f->top + f->height - (v - f->y.lo) / (f->y.hi - f->y.lo) * f->height;
}

static void text_el(FILE *fp, const char *cls, double x, double y, const char *anchor, const char *extra,
                    const char *text) {
  fprintf(fp, "<text class=\"%s\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", cls, x, y, anchor, extra);
  report_write_escaped(fp, text);
  fputs("</text>\n", fp);
}

static void draw_axes(FILE *fp, const frame *f, const gr_plot *p) {
  char label[48];
  double bottom = f->top + f->height, right = f->left + f->width;
  fputs("<g class=\"axes\" font-size=\"11\" fill=\"#333\">\n", fp);
  for (int i = 0; i < f->y.n_ticks; i++) {
    double y = f->top + f->height - (f->y.ticks[i] - f->y.lo) / (f->y.hi - f->y.lo) * f->height;
    fprintf(fp, "<path class=\"grid\" d=\"M%.1f %.1fH%.1f\" stroke=\"#e5e5e5\"/>\n", f->left, y, right);
    tick_label(&f->y, f->y.ticks[i], label, sizeof label);
    text_el(fp, "ytick", f->left - 6, y + 4, "end", "", label);
  }
  for (int i = 0; i < f->x.n_ticks; i++) {
    double x = f->left + (f->x.ticks[i] - f->x.lo) / (f->x.hi - f->x.lo) * f->width;
    fprintf(fp, "<path class=\"grid\" d=\"M%.1f %.1fV%.1f\" stroke=\"#e5e5e5\"/>\n", x, f->top, bottom);
    fprintf(fp, "<path class=\"tick\" d=\"M%.1f %.1fv5\" stroke=\"#333\"/>\n", x, bottom);
    tick_label(&f->x, f->x.ticks[i], label, sizeof label);
    text_el(fp, "xtick", x, bottom + 17, "middle", "", label);
  }
  fprintf(fp, "<path class=\"axis\" d=\"M%.1f %.1fV%.1fH%.1f\" stroke=\"#333\" fill=\"none\"/>\n", f->left, f->top,
          bottom, right);
  fputs("</g>\n", fp);
  if (p->x_label) text_el(fp, "xlabel", f->left + f->width / 2, bottom + 36, "middle", " font-size=\"12\"", p->x_label);
  if (p->y_label) {
    char rot[96];
    double cx = 16, cy = f->top + f->height / 2;
    snprintf(rot, sizeof rot, " font-size=\"12\" transform=\"rotate(-90 %.1f %.1f)\"", cx, cy);
    text_el(fp, "ylabel", cx, cy, "middle", rot, p->y_label);
  }
}

/* One series: a <path> per run of consecutive usable points, error bars,
 * and markers (always for a run of one point, which a path cannot show). */
static void draw_series(FILE *fp, const frame *f, const gr_plot *p, const gr_series *s, const char *color) {
  fprintf(fp, "<g class=\"series-group\" stroke=\"%s\" fill=\"%s\">\n", color, color);
  int i = 0;
  while (i < s->n) {
    while (i < s->n && !(usable_x(p, s->x[i]) && isfinite(s->y[i]))) i++;
    int start = i;
    while (i < s->n && usable_x(p, s->x[i]) && isfinite(s->y[i])) i++;
    if (i - start >= 2) {
      fputs("<path class=\"series\" fill=\"none\" stroke-width=\"2\" d=\"", fp);
      for (int k = start; k < i; k++) fprintf(fp, "%s%.1f %.1f", k == start ? "M" : "L", px_x(f, s->x[k]), px_y(f, s->y[k]));
      fputs("\"/>\n", fp);
    }
    for (int k = start; k < i; k++) {
      double x = px_x(f, s->x[k]), y = px_y(f, s->y[k]);
      double e = s->y_err && isfinite(s->y_err[k]) ? fabs(s->y_err[k]) : 0;
      if (e > 0) {
        double y0 = px_y(f, s->y[k] - e), y1 = px_y(f, s->y[k] + e);
        fprintf(fp, "<path class=\"errorbar\" stroke-width=\"1.2\" d=\"M%.1f %.1fV%.1fM%.1f %.1fh8M%.1f %.1fh8\"/>\n", x,
                y0, y1, x - 4, y0, x - 4, y1);
      }
      if (p->markers || i - start == 1)
        fprintf(fp, "<circle class=\"marker\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" stroke=\"#fff\"/>\n", x, y);
    }
  }
  fputs("</g>\n", fp);
}

static int legend_width(const gr_plot *p) {
  int chars = 0;
  for (int s = 0; s < p->n_series; s++)
    if (p->series[s].name) chars = (int)fmax(chars, fmin(28, (double)strlen(p->series[s].name)));
  return chars ? 40 + chars * 7 : 0;
}

static void draw_legend(FILE *fp, const gr_plot *p, double x, double y) {
  fputs("<g class=\"legend\" font-size=\"12\">\n", fp);
  for (int s = 0; s < p->n_series; s++) {
    const char *name = p->series[s].name;
    if (!name) continue;
    char shown[128];
    size_t len = strlen(name);
    /* cut at 28 bytes, backing off to a UTF-8 boundary, with an ellipsis */
    size_t cut = len > 28 ? 27 : len;
    while (cut < len && cut > 0 && ((unsigned char)name[cut] & 0xC0) == 0x80) cut--;
    snprintf(shown, sizeof shown, "%.*s%s", (int)cut, name, cut < len ? "\u2026" : "");
    const char *color = palette[s % N_COLORS];
    double row = y + 18.0 * s;
    fprintf(fp, "<path class=\"legend-line\" d=\"M%.1f %.1fh22\" stroke=\"%s\" stroke-width=\"2\"/>\n", x, row, color);
    fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", x + 11, row, color);
    text_el(fp, "legend-text", x + 28, row + 4, "start", " fill=\"#222\"", shown);
  }
  fputs("</g>\n", fp);
}

gr_status gr_svg_write_plot(FILE *fp, const gr_plot *p) {
  if (!fp || !p) return gr_error(GR_EARG, "svg plot: NULL argument");
  if (p->n_series < 0 || (p->n_series > 0 && !p->series)) return gr_error(GR_EARG, "svg plot: bad series list");
  for (int s = 0; s < p->n_series; s++)
    if (p->series[s].n < 0 || (p->series[s].n > 0 && (!p->series[s].x || !p->series[s].y)))
      return gr_error(GR_EARG, "svg plot: series %d ('%s') has %d points but no data", s,
                      p->series[s].name ? p->series[s].name : "", p->series[s].n);
  int w = p->width > 0 ? p->width : 640, h = p->height > 0 ? p->height : 380;
  if (w < 160 || h < 120 || w > 10000 || h > 10000)
    return gr_error(GR_EARG, "svg plot: size %dx%d outside 160x120..10000x10000", w, h);
  double xlo, xhi, ylo, yhi;
  bool any = data_range(p, &xlo, &xhi, &ylo, &yhi);
  if (!any) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (!isfinite(xhi - xlo) || !isfinite(yhi - ylo))
    return gr_error(GR_ENUMERIC, "svg plot '%s': data range too large to draw", p->title ? p->title : "");
  frame f;
  int lw = legend_width(p);
  f.left = 64, f.top = p->title ? 36 : 14;
  f.width = w - f.left - 16 - lw, f.height = h - f.top - (p->x_label ? 50 : 34);
  if (f.width < 40) f.width = 40;
  setup_axis(&f.x, xlo, xhi, p->log_x, p->x_format);
  /* keep points off the frame, without inventing negative values or >100% */
  double margin = 0.04 * (yhi - ylo), ylo_pad = ylo - margin, yhi_pad = yhi + margin;
  if (ylo >= 0 && ylo_pad < 0) ylo_pad = 0;
  if (p->y_format == GR_TICK_PERCENT && yhi <= 1 && yhi_pad > 1) yhi_pad = 1;
  setup_axis(&f.y, ylo_pad, yhi_pad, false, p->y_format);
  fprintf(fp, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
              "font-family=\"Helvetica, Arial, sans-serif\" class=\"plot\" role=\"img\">\n", w, h, w, h);
  if (p->title) {
    fputs("<title>", fp);
    report_write_escaped(fp, p->title);
    fputs("</title>\n", fp);
  }
  fprintf(fp, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", w, h);
  if (p->title) text_el(fp, "title", w / 2.0, 22, "middle", " font-size=\"14\" font-weight=\"bold\"", p->title);
  draw_axes(fp, &f, p);
  for (int s = 0; s < p->n_series; s++) draw_series(fp, &f, p, &p->series[s], palette[s % N_COLORS]);
  if (!any) text_el(fp, "nodata", f.left + f.width / 2, f.top + f.height / 2, "middle", " fill=\"#888\"", "no data");
  if (lw) draw_legend(fp, p, f.left + f.width + 16, f.top + 10);
  fputs("</svg>\n", fp);
  if (ferror(fp)) return gr_error(GR_EIO, "svg plot: write failed");
  return GR_OK;
}

gr_status gr_svg_save_plot(const char *path, const gr_plot *p) {
  report_atomic_file f;
  gr_status s = report_atomic_open(&f, path);
  if (s != GR_OK) return s;
  fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f.fp);
  s = gr_svg_write_plot(f.fp, p);
  if (s != GR_OK) {
    report_atomic_abort(&f);
    return s;
  }
  return report_atomic_commit(&f);
}
