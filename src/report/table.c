/* report/table.c — console tables: aligned columns (numbers right, text
 * left), a header rule, plain text or Markdown. Used by demo, study and
 * inspect. Cells are strings; the caller formats numbers (gr_fmt_*). */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "graft/report.h"

#define TABLE_MAX_COLS 64

struct gr_table {
  int n_cols, n_rows, cap_rows;
  char **cells; /* (n_rows + 1) x n_cols, row 0 the headers */
};

static char *copy_cell(const char *s) { return strdup(s ? s : ""); }

static gr_status append_row(gr_table *t, const char *const *cells) {
  if (t->n_rows + 1 == t->cap_rows) {
    int cap = t->cap_rows * 2;
    char **bigger = realloc(t->cells, (size_t)cap * (size_t)t->n_cols * sizeof *bigger);
    if (!bigger) return gr_error(GR_ENOMEM, "table: out of memory");
    t->cells = bigger;
    t->cap_rows = cap;
  }
  char **row = t->cells + (size_t)(t->n_rows + 1) * (size_t)t->n_cols;
  for (int c = 0; c < t->n_cols; c++) {
    row[c] = copy_cell(cells[c]);
    if (!row[c]) {
      while (c-- > 0) free(row[c]);
      return gr_error(GR_ENOMEM, "table: out of memory");
    }
  }
  t->n_rows++;
  return GR_OK;
}

gr_table *gr_table_new(int n_cols, const char *const *headers) {
  if (n_cols < 1 || n_cols > TABLE_MAX_COLS || !headers) {
    gr_error(GR_EARG, "table: need 1..%d columns and their headers (got %d)", TABLE_MAX_COLS, n_cols);
    return NULL;
  }
  gr_table *t = calloc(1, sizeof *t);
  if (t) {
    t->n_cols = n_cols;
    t->cap_rows = 16;
    t->cells = calloc((size_t)t->cap_rows * (size_t)n_cols, sizeof *t->cells);
  }
  if (!t || !t->cells) {
    free(t);
    gr_error(GR_ENOMEM, "table: out of memory");
    return NULL;
  }
  t->n_rows = -1; /* the header row is row 0 of cells */
  if (append_row(t, headers) != GR_OK) {
    gr_table_free(t);
    return NULL;
  }
  return t;
}

gr_status gr_table_add_row(gr_table *t, const char *const *cells) {
  if (!t || !cells) return gr_error(GR_EARG, "table add row: NULL argument");
  return append_row(t, cells);
}

gr_status gr_table_addf(gr_table *t, const char *fmt, ...) {
  if (!t || !fmt) return gr_error(GR_EARG, "table addf: NULL argument");
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  const char *cells[TABLE_MAX_COLS] = {0};
  int n = 0;
  for (char *p = line; p; n++) {
    if (n == t->n_cols) return gr_error(GR_EARG, "table addf: more than %d tab-separated cells", t->n_cols);
    cells[n] = p;
    char *tab = strchr(p, '\t');
    if (tab) *tab++ = 0;
    p = tab;
  }
  return append_row(t, cells); /* missing trailing cells stay empty */
}

void gr_table_free(gr_table *t) {
  if (!t) return;
  for (int i = 0; i < (t->n_rows + 1) * t->n_cols; i++) free(t->cells[i]);
  free(t->cells);
  free(t);
}

/* ---- printing ------------------------------------------------------------ */

/* Display width of a UTF-8 string: one per code point. */
static int display_width(const char *s) {
  int w = 0;
  for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
  return w;
}

/* "12", "-0.5", "85.1%", "1.2 MiB", "0.81 ± 0.02": starts like a number. */
static bool starts_numeric(const char *s) {
  if (*s == '+' || *s == '-') s++;
  if (*s == '.') s++;
  return isdigit((unsigned char)*s);
}

/* Cells that say nothing about a column's kind. */
static bool is_neutral(const char *s) { return !*s || !strcmp(s, "n/a") || !strcmp(s, "-"); }

static bool column_is_numeric(const gr_table *t, int c) {
  bool any = false;
  for (int r = 1; r <= t->n_rows; r++) {
    const char *cell = t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
    if (is_neutral(cell)) continue;
    if (!starts_numeric(cell)) return false;
    any = true;
  }
  return any;
}

static void print_padded(FILE *fp, const char *s, int width, bool right, bool markdown) {
  int pad = width - display_width(s);
  for (const char *p = s; markdown && *p; p++) pad -= *p == '|';
  if (right) fprintf(fp, "%*s", pad > 0 ? pad : 0, "");
  for (const char *p = s; *p; p++) {
    if (markdown && *p == '|') fputc('\\', fp); /* keep Markdown cells intact */
    fputc(*p, fp);
  }
  if (!right) fprintf(fp, "%*s", pad > 0 ? pad : 0, "");
}

static void print_rule(FILE *fp, const gr_table *t, const int *width, const bool *right, bool markdown) {
  for (int c = 0; c < t->n_cols; c++) {
    if (markdown) {
      fputs(c ? " " : "| ", fp);
      for (int i = 0; i < width[c] - 1; i++) fputc('-', fp);
      fputs(right[c] ? ":" : "-", fp);
      fputs(" |", fp);
    } else {
      if (c) fputs("  ", fp);
      for (int i = 0; i < width[c]; i++) fputc('-', fp);
    }
  }
  fputc('\n', fp);
}

gr_status gr_table_print(const gr_table *t, FILE *fp, gr_table_style style) {
  if (!t || !fp) return gr_error(GR_EARG, "table print: NULL argument");
  bool md = style == GR_TABLE_MARKDOWN;
  int width[TABLE_MAX_COLS];
  bool right[TABLE_MAX_COLS];
  for (int c = 0; c < t->n_cols; c++) {
    right[c] = column_is_numeric(t, c);
    width[c] = md ? 3 : 1;
    for (int r = 0; r <= t->n_rows; r++) {
      const char *cell = t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
      int w = display_width(cell);
      for (const char *p = cell; md && *p; p++) w += *p == '|';
      if (w > width[c]) width[c] = w;
    }
  }
  for (int r = 0; r <= t->n_rows; r++) {
    for (int c = 0; c < t->n_cols; c++) {
      fputs(md ? (c ? " " : "| ") : (c ? "  " : ""), fp);
      bool last_plain = !md && c == t->n_cols - 1 && !right[c];
      print_padded(fp, t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c], last_plain ? 0 : width[c], right[c], md);
      if (md) fputs(" |", fp);
    }
    fputc('\n', fp);
    if (r == 0) print_rule(fp, t, width, right, md);
  }
  if (ferror(fp)) return gr_error(GR_EIO, "table print: write failed");
  return GR_OK;
}
