/* tests/test_report_render.c — renders a demo-shaped report.html in headless
 * Chromium and checks the screenshot is a real page (size, many colours,
 * not blank) with tests/report/check_png.py. Skipped (exit 77) when no
 * chromium is installed. The page is left at $GRAFT_TMP/report_render/ for
 * a human to look at. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report_sample.h"
#include "testutil.h"

#define SKIP 77

static const char *find_chromium(void) {
  static const char *const names[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (access(names[i], X_OK) == 0) return names[i];
  return NULL;
}

int main(void) {
  const char *chromium = find_chromium();
  if (!chromium) {
    printf("SKIP: chromium is not installed (apt-get install chromium); report rendering not checked\n");
    return SKIP;
  }
  char dir[512], html[600], png[600], cmd[4096];
  snprintf(dir, sizeof dir, "%s/report_render", test_tmpdir());
  mkdir(dir, 0755);
  snprintf(html, sizeof html, "%s/report.html", dir);
  snprintf(png, sizeof png, "%s/report.png", dir);
  unlink(png);
  gr_results rs = {0};
  CHECK_OK(sample_results(&rs));
  gr_report_info info = {.title = "graft demo: Fashion-MNIST 0-4 \u2192 5-9",
                         .summary = "Synthetic numbers for a rendering test: a CNN pretrained on classes 0-4, "
                                    "transferred to classes 5-9 with 1%, 10% and 100% of the labels.",
                         .config = "graft demo --seed 0 --threads 2",
                         .threads = 2,
                         .total_seconds = 312.0};
  CHECK_OK(gr_report_write_html(html, &info, &rs));
  gr_results_free(&rs);
  snprintf(cmd, sizeof cmd,
           "timeout 120 '%s' --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir='%s/profile' "
           "--window-size=1200,2400 --screenshot='%s' 'file://%s' >'%s/chromium.log' 2>&1",
           chromium, dir, png, html, dir);
  int rc = system(cmd);
  struct stat st;
  CHECK_MSG(stat(png, &st) == 0 && st.st_size > 10000, "chromium (exit %d) wrote no usable screenshot %s; see %s/chromium.log",
            rc, png, dir);
  snprintf(cmd, sizeof cmd, "'%s' '%s/tests/report/check_png.py' '%s' 1200 2400", report_test_python(),
           report_test_source_dir(), png);
  CHECK(system(cmd) == 0);
  return test_summary();
}
