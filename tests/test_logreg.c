/* test_logreg.c — gr_logreg_fit / gr_logreg_eval (optim/logreg.c) against
 * the exact optimum torch's float64 L-BFGS finds (tests/ref/ref_logreg.py)
 * for two regularization strengths: weights, biases, held-out accuracy and
 * loss within 1e-4; the optimum is a stationary point (finite differences of
 * the objective through gr_logreg_eval's loss vanish); bad arguments fail
 * with named errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "graft/logreg.h"
#include "util/refdata.h"

static int32_t *labels(const ref_array *a) {
  int32_t *y = malloc((size_t)a->numel * sizeof *y);
  for (int64_t i = 0; y && i < a->numel; i++) y[i] = (int32_t)lrint(a->data[i]);
  return y;
}

/* f = mean CE + l2/2 |W|^2 at (w, b) on x, y, via gr_logreg_eval. */
static double objective(const ref_array *x, const int32_t *y, int64_t n, int64_t d, int k, const float *w,
                        const float *b, double l2) {
  double acc, loss, r = 0;
  if (gr_logreg_eval(x->data, y, n, d, k, w, b, &acc, &loss)) return NAN;
  for (int64_t i = 0; i < k * d; i++) r += (double)w[i] * w[i];
  return loss + 0.5 * l2 * r;
}

static void check_case(const char *name) {
  ref_file *rf = ref_open(name);
  const ref_array *x = rf ? ref_get(rf, "x") : NULL, *y = rf ? ref_get(rf, "y") : NULL, *w = rf ? ref_get(rf, "w") : NULL;
  const ref_array *b = rf ? ref_get(rf, "b") : NULL, *xt = rf ? ref_get(rf, "xt") : NULL, *yt = rf ? ref_get(rf, "yt") : NULL;
  const ref_array *l2 = rf ? ref_get(rf, "l2") : NULL, *acc = rf ? ref_get(rf, "acc") : NULL, *loss = rf ? ref_get(rf, "loss") : NULL;
  CHECK(x && y && w && b && xt && yt && l2 && acc && loss);
  if (!x || !y || !w || !b || !xt || !yt || !l2 || !acc || !loss) return ref_close(rf);
  const int64_t n = y->numel, k = b->numel, d = w->numel / k;
  int32_t *yi = labels(y), *yti = labels(yt);
  float gw[64], gb[8];
  gr_logreg_cfg cfg = {.l2 = l2->data[0], .tol = 1e-7};
  gr_logreg_result res;
  CHECK_OK(gr_logreg_fit(x->data, yi, n, d, (int)k, &cfg, gw, gb, &res));
  CHECK(res.converged && res.iters > 0);
  CHECK_CLOSE("W", gw, w->data, k * d, 1e-4, 1e-4);
  CHECK_CLOSE("b", gb, b->data, k, 1e-4, 1e-4);
  double a, l;
  CHECK_OK(gr_logreg_eval(xt->data, yti, yt->numel, d, (int)k, gw, gb, &a, &l));
  CHECK_NEAR(a, acc->data[0], 1e-6); /* the reference file stores f32 */
  CHECK_NEAR(l, loss->data[0], 1e-4);
  /* stationary: central differences of the objective along each weight ~ 0 */
  double worst = 0, h = 1e-2;
  for (int64_t i = 0; i < k * d; i++) {
    float keep = gw[i];
    gw[i] = keep + (float)h;
    double fp = objective(x, yi, n, d, (int)k, gw, gb, cfg.l2);
    gw[i] = keep - (float)h;
    double fm = objective(x, yi, n, d, (int)k, gw, gb, cfg.l2);
    gw[i] = keep;
    worst = fmax(worst, fabs(fp - fm) / (2 * h));
  }
  CHECK(worst < 1e-4);
  free(yi), free(yti);
  ref_close(rf);
}

static void check_bad_input(void) {
  float x[6] = {0, 1, 2, 3, 4, 5}, w[6], b[2];
  int32_t y[3] = {0, 1, 1}, bad_y[3] = {0, 2, 1};
  gr_logreg_cfg c = {.l2 = 0.1};
  double a, l;
  CHECK_FAILS(gr_logreg_fit(NULL, y, 3, 2, 2, &c, w, b, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_logreg_fit(x, y, 0, 2, 2, &c, w, b, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_logreg_fit(x, y, 3, 2, 1, &c, w, b, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_logreg_fit(x, bad_y, 3, 2, 2, &c, w, b, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_logreg_fit(x, y, 3, (int64_t)1 << 40, 2, &c, w, b, NULL) == GR_OK, GR_EARG);
  c.l2 = -1;
  CHECK_FAILS(gr_logreg_fit(x, y, 3, 2, 2, &c, w, b, NULL) == GR_OK, GR_EARG);
  c.l2 = NAN;
  CHECK_FAILS(gr_logreg_fit(x, y, 3, 2, 2, &c, w, b, NULL) == GR_OK, GR_EARG);
  c = (gr_logreg_cfg){.l2 = 0.1, .history = 65};
  CHECK_FAILS(gr_logreg_fit(x, y, 3, 2, 2, &c, w, b, NULL) == GR_OK, GR_EARG);
  c.history = 0;
  x[3] = NAN;
  CHECK_FAILS(gr_logreg_fit(x, y, 3, 2, 2, &c, w, b, NULL) == GR_OK, GR_ENUMERIC);
  x[3] = 3;
  /* separable data without L2: weights grow; max_iter stops it, reported as not converged */
  c = (gr_logreg_cfg){.l2 = 0, .max_iter = 5};
  gr_logreg_result r;
  CHECK_OK(gr_logreg_fit(x, y, 3, 2, 2, &c, w, b, &r));
  CHECK(r.iters <= 5 && !r.converged && isfinite(w[0]));
  CHECK_OK(gr_logreg_eval(x, y, 3, 2, 2, w, b, &a, &l));
  CHECK(a == 1.0 && l < log(2.0));
  CHECK_FAILS(gr_logreg_eval(x, y, 3, 2, 2, w, b, NULL, &l) == GR_OK, GR_EARG);
}

int main(void) {
  check_case("logreg_c1");
  check_case("logreg_c01");
  check_bad_input();
  return test_summary();
}
