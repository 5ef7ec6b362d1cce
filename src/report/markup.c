/* report/markup.c — escaping text for SVG and HTML (see markup.h). */
#include "report/markup.h"

#include <stdbool.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static int utf8_sequence_length(const unsigned char *s) {
  int n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
  if (s[0] >= 0xF5 || n == 0) return 0;
  for (int i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  unsigned cp = n == 2 ? (s[0] & 0x1Fu) : n == 3 ? (s[0] & 0x0Fu) : (s[0] & 0x07u);
  for (int i = 1; i < n; i++) cp = (cp << 6) | (s[i] & 0x3Fu);
  bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
  if (overlong || surrogate || cp > 0x10FFFF || cp == 0xFFFE || cp == 0xFFFF) return 0;
  return n;
}

void report_write_escaped(FILE *fp, const char *text) {
  if (!text) return;
  const unsigned char *s = (const unsigned char *)text;
  while (*s) {
    unsigned char c = *s;
    if (c < 0x80) {
      switch (c) {
        case '&': fputs("&amp;", fp); break;
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '"': fputs("&quot;", fp); break;
        case '\'': fputs("&#39;", fp); break;
        default: fputc(c < 0x20 && c != '\t' && c != '\n' && c != '\r' ? '?' : c, fp);
      }
      s++;
      continue;
    }
    int n = utf8_sequence_length(s);
    if (n == 0) {
      fputc('?', fp);
      s++;
    } else {
      fwrite(s, 1, (size_t)n, fp);
      s += n;
    }
  }
}
