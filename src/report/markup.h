/* report/markup.h — internal: text into SVG/HTML safely. Shared by the SVG
 * plot writer and the HTML report. */
#ifndef GRAFT_REPORT_MARKUP_H
#define GRAFT_REPORT_MARKUP_H
#include <stdio.h>

/* Writes s with & < > " ' escaped as entities; control characters and bytes
 * that are not valid UTF-8 become '?', so the output is always well-formed
 * XML text. NULL writes nothing. */
void report_write_escaped(FILE *fp, const char *s);

#endif
