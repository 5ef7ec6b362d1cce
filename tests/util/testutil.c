/* tests/util/testutil.c — harness implementation. */
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>

int test_checks, test_failures;

void test_fail(const char *file, int line, const char *fmt, ...) {
  test_failures++;
  fprintf(stderr, "FAIL %s:%d: ", file, line);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

bool test_allclose(const char *what, const float *got, const float *want, int64_t n, double atol,
                   double rtol) {
  int64_t worst = -1;
  double worst_excess = 0, max_abs = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - (double)want[i]);
    if (isnan(got[i]) != isnan(want[i])) d = INFINITY;
    if (d > max_abs) max_abs = d;
    double excess = d - (atol + rtol * fabs((double)want[i]));
    if (excess > 0 && (worst < 0 || excess > worst_excess)) {
      worst = i;
      worst_excess = excess;
    }
  }
  if (worst >= 0) {
    fprintf(stderr, "  %s: element %lld got %.8g want %.8g (max abs err %.3g, atol %g rtol %g)\n", what,
            (long long)worst, got[worst], want[worst], max_abs, atol, rtol);
    return false;
  }
  return true;
}

void test_fill(gr_rng *r, float *x, int64_t n, float lo, float hi) { gr_rng_fill_uniform(r, x, n, lo, hi); }

int test_summary(void) {
  printf("%d checks, %d failed\n", test_checks, test_failures);
  return test_failures ? 1 : 0;
}

const char *test_tmpdir(void) {
  /* per build directory (set by CMake), so concurrent builds never share */
  const char *d = getenv("GRAFT_TMP");
  if (!d || !*d) d = "/tmp";
  mkdir(d, 0755);
  return d;
}

uint8_t *test_read_file(const char *path, size_t *len) {
  *len = 0;
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  uint8_t *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (b) {
    *len = fread(b, 1, (size_t)n, fp);
    b[*len] = 0;
  }
  fclose(fp);
  return b;
}
