/* report/progress.c — progress of a long loop (pretraining, a study grid):
 * on a terminal one line redrawn in place (done/total, rate, ETA, status);
 * into a log file or pipe a full line at each 10% or every 5 s, so logs stay
 * short. Rate limits are checked before any formatting, so an update per
 * training step costs a clock read. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "graft/report.h"

#define TTY_REDRAW_SECONDS 0.1
#define PLAIN_EVERY_SECONDS 5.0
#define PLAIN_STEPS 10 /* lines per total in plain mode */

struct gr_progress {
  FILE *fp;
  char label[64];
  int64_t total, done;
  gr_progress_mode mode;
  double t_start, t_last_print;
  int last_decile;   /* plain mode: tenths of total already printed */
  int tty_width;     /* columns; the TTY line is cut to fit */
  size_t last_len;   /* TTY: length of the line drawn last, to blank leftovers */
};

static gr_progress_mode resolve_mode(FILE *fp, gr_progress_mode mode) {
  if (mode != GR_PROGRESS_AUTO) return mode;
  const char *env = getenv("GRAFT_PROGRESS");
  if (env && !strcmp(env, "tty")) return GR_PROGRESS_TTY;
  if (env && !strcmp(env, "plain")) return GR_PROGRESS_PLAIN;
  if (env && !strcmp(env, "off")) return GR_PROGRESS_OFF;
  return isatty(fileno(fp)) ? GR_PROGRESS_TTY : GR_PROGRESS_PLAIN;
}

static int terminal_width(FILE *fp) {
  struct winsize ws;
  if (ioctl(fileno(fp), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 100;
}

gr_progress *gr_progress_new(FILE *fp, const char *label, int64_t total, gr_progress_mode mode) {
  gr_progress *p = calloc(1, sizeof *p);
  if (!p) {
    gr_error(GR_ENOMEM, "progress: out of memory");
    return NULL;
  }
  p->fp = fp;
  snprintf(p->label, sizeof p->label, "%s", label ? label : "");
  p->total = total > 0 ? total : 0;
  p->mode = fp ? resolve_mode(fp, mode) : GR_PROGRESS_OFF;
  p->t_start = p->t_last_print = gr_wall_seconds();
  if (p->mode == GR_PROGRESS_TTY) p->tty_width = terminal_width(fp);
  return p;
}

/* "label  340/1000  34%  512.3 it/s  ETA 1.29s  status" into buf. */
static void format_line(const gr_progress *p, double now, bool final, const char *status, char *buf, size_t n) {
  double elapsed = now - p->t_start;
  double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
  char t1[32], t2[32];
  int len;
  if (p->total > 0)
    len = snprintf(buf, n, "%s%s%lld/%lld %3.0f%%", p->label, *p->label ? "  " : "", (long long)p->done,
                   (long long)p->total, 100.0 * (double)p->done / (double)p->total);
  else
    len = snprintf(buf, n, "%s%s%lld", p->label, *p->label ? "  " : "", (long long)p->done);
  if (len < 0 || (size_t)len >= n) return;
  char rate_text[32];
  if (rate >= 1000) snprintf(rate_text, sizeof rate_text, "%s it/s", gr_fmt_count((int64_t)llround(rate), t1, sizeof t1));
  else if (rate >= 1 || rate == 0) snprintf(rate_text, sizeof rate_text, "%.1f it/s", rate);
  else snprintf(rate_text, sizeof rate_text, "%s/it", gr_fmt_duration(1 / rate, t1, sizeof t1));
  len += snprintf(buf + len, n - (size_t)len, "  %s", rate_text);
  if ((size_t)len >= n) return;
  if (final)
    len += snprintf(buf + len, n - (size_t)len, "  in %s", gr_fmt_duration(elapsed, t1, sizeof t1));
  else if (p->total > 0 && rate > 0)
    len += snprintf(buf + len, n - (size_t)len, "  ETA %s",
                    gr_fmt_duration((double)(p->total - p->done) / rate, t2, sizeof t2));
  if ((size_t)len >= n) return;
  if (status && *status) snprintf(buf + len, n - (size_t)len, "  %s", status);
}

static void draw(gr_progress *p, double now, bool final, const char *status) {
  char line[512];
  format_line(p, now, final, status, line, sizeof line);
  if (p->mode == GR_PROGRESS_TTY) {
    size_t max = (size_t)p->tty_width - 1;
    if (strlen(line) > max) line[max] = 0; /* stay on one terminal row */
    size_t len = strlen(line);
    fprintf(p->fp, "\r%s%*s", line, p->last_len > len ? (int)(p->last_len - len) : 0, "");
    if (final) fputc('\n', p->fp);
    p->last_len = len;
  } else {
    fprintf(p->fp, "%s\n", line);
  }
  fflush(p->fp);
  p->t_last_print = now;
}

void gr_progress_update(gr_progress *p, int64_t done, const char *status) {
  if (!p || p->mode == GR_PROGRESS_OFF) return;
  p->done = done < 0 ? 0 : done;
  double now = gr_wall_seconds();
  if (p->mode == GR_PROGRESS_TTY) {
    if (now - p->t_last_print >= TTY_REDRAW_SECONDS) draw(p, now, false, status);
    return;
  }
  int decile = p->total > 0 ? (int)(PLAIN_STEPS * (p->done < p->total ? p->done : p->total) / p->total) : 0;
  if (decile > p->last_decile || now - p->t_last_print >= PLAIN_EVERY_SECONDS) {
    if (decile >= PLAIN_STEPS) return; /* the finish line reports 100% */
    p->last_decile = decile > p->last_decile ? decile : p->last_decile;
    draw(p, now, false, status);
  }
}

void gr_progress_finish(gr_progress *p, const char *status) {
  if (!p) return;
  if (p->mode != GR_PROGRESS_OFF) draw(p, gr_wall_seconds(), true, status);
  free(p);
}
