/* report/html_parts.h — internal: the sections of report.html, split from
 * the page skeleton (html.c) by responsibility. */
#ifndef GRAFT_REPORT_HTML_PARTS_H
#define GRAFT_REPORT_HTML_PARTS_H
#include <stdio.h>

#include "graft/report.h"
#include "report/format_internal.h"

typedef struct html_summary_rows {
  const gr_summary_row *rows;
  int n;
} html_summary_rows;

/* Escaped text; a <td> with an optional class. */
void html_text(FILE *fp, const char *s);
void html_cell(FILE *fp, const char *cls, const char *text);

/* Accuracy table (method x budget), accuracy-vs-labels plot, cost table and
 * training curves of the "transfer" phase. Writes nothing without such runs. */
gr_status html_write_transfer_sections(FILE *fp, const gr_results *rs, const html_summary_rows *sr);
/* A table and loss curves for each phase other than "transfer". */
gr_status html_write_other_phases(FILE *fp, const gr_results *rs, const html_summary_rows *sr);
/* Every run, one row each, inside a <details> element. */
void html_write_all_runs(FILE *fp, const gr_results *rs);

#endif
