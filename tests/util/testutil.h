/* tests/util/testutil.h — the minimal test harness every test_*.c uses.
 * CHECK* macros record failures and continue; main ends with
 * `return test_summary();` which prints "N checks, M failed" for the file. */
#ifndef GRAFT_TESTUTIL_H
#define GRAFT_TESTUTIL_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "graft/graft.h"

extern int test_checks, test_failures;

void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define CHECK(cond)                                                        \
  do {                                                                     \
    test_checks++;                                                         \
    if (!(cond)) test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond); \
  } while (0)
#define CHECK_MSG(cond, ...)                                     \
  do {                                                           \
    test_checks++;                                               \
    if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__);     \
  } while (0)
/* A status that must be GR_OK; prints gr_last_error() otherwise. */
#define CHECK_OK(expr)                                                                      \
  do {                                                                                      \
    test_checks++;                                                                          \
    gr_status st_ = (expr);                                                                 \
    if (st_ != GR_OK)                                                                       \
      test_fail(__FILE__, __LINE__, "%s -> %s: %s", #expr, gr_strerror(st_), gr_last_error()); \
  } while (0)
/* A pointer that must be non-NULL; prints gr_last_error() otherwise. */
#define CHECK_PTR(expr)                                                                     \
  do {                                                                                      \
    test_checks++;                                                                          \
    if (!(expr)) test_fail(__FILE__, __LINE__, "%s is NULL: %s", #expr, gr_last_error());   \
  } while (0)
#define CHECK_NEAR(a, b, tol)                                                              \
  do {                                                                                     \
    test_checks++;                                                                         \
    double a_ = (a), b_ = (b);                                                             \
    if (!(fabs(a_ - b_) <= (tol)))                                                         \
      test_fail(__FILE__, __LINE__, "%s = %.8g, %s = %.8g, |diff| > %g", #a, a_, #b, b_, (double)(tol)); \
  } while (0)
/* Expect an op to fail with status st (and a non-empty message). */
#define CHECK_FAILS(expr, st)                                                               \
  do {                                                                                      \
    test_checks++;                                                                          \
    gr_clear_error();                                                                       \
    bool ok_ = (expr);                                                                      \
    if (ok_ || gr_last_status() != (st) || !gr_last_error()[0])                             \
      test_fail(__FILE__, __LINE__, "%s: expected failure %s, got %s (%s)", #expr,          \
                gr_strerror(st), ok_ ? "success" : gr_strerror(gr_last_status()), gr_last_error()); \
  } while (0)

/* max |got-want| <= atol + rtol |want| elementwise; prints the worst element. */
bool test_allclose(const char *what, const float *got, const float *want, int64_t n, double atol,
                   double rtol);
#define CHECK_CLOSE(what, got, want, n, atol, rtol) \
  do {                                              \
    test_checks++;                                  \
    if (!test_allclose(what, got, want, n, atol, rtol)) test_fail(__FILE__, __LINE__, "%s not close", what); \
  } while (0)

/* Fills with uniform [lo,hi) from a fixed-seed rng. */
void test_fill(gr_rng *r, float *x, int64_t n, float lo, float hi);
/* Prints "N checks, M failed" and returns the exit code. */
int test_summary(void);
/* A whole file in a malloc'd buffer (one spare byte, NUL-terminated); NULL
 * if unreadable. *len gets its size. */
uint8_t *test_read_file(const char *path, size_t *len);
/* Directory for scratch files of this test (created): $GRAFT_TMP or /tmp. */
const char *test_tmpdir(void);

#endif
