/* graft/logreg.h — multinomial logistic regression solved to convergence
 * (src/optim/logreg.c), for linear probes on frozen features: minimizes
 *   f(W, b) = (1/n) sum_i CE(softmax(W x_i + b), y_i) + (l2/2) ||W||^2
 * (b not penalized) — scikit-learn's LogisticRegression(C) objective divided
 * by n C, i.e. l2 = 1/(n C) — with L-BFGS (history "history", Armijo
 * backtracking line search), in double precision, from W = 0, b = 0, until
 * the largest gradient component is below tol or max_iter iterations. A
 * deterministic, tuning-free alternative to SGD epochs, whose result depends
 * on the learning rate and the epoch count. */
#ifndef GRAFT_LOGREG_H
#define GRAFT_LOGREG_H
#include <stdbool.h>
#include <stdint.h>

#include "graft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gr_logreg_cfg {
  double l2;      /* >= 0 */
  int max_iter;   /* 0: 1000 */
  double tol;     /* 0: 1e-6 */
  int history;    /* 0: 10 */
} gr_logreg_cfg;

typedef struct gr_logreg_result {
  int iters;
  double objective, grad_max;
  bool converged; /* grad_max < tol */
} gr_logreg_result;

/* x: [n, d] row-major, y: [n] in [0, k). w: [k, d], b: [k] (written).
 * GR_EARG for NULL, n/d < 1, k < 2, a label out of range, l2 < 0 or NaN;
 * GR_ENUMERIC for a non-finite x. res may be NULL. Not converging within
 * max_iter is not an error (res->converged says). */
gr_status gr_logreg_fit(const float *x, const int32_t *y, int64_t n, int64_t d, int k, const gr_logreg_cfg *cfg,
                        float *w, float *b, gr_logreg_result *res);
/* Accuracy in [0, 1] and mean cross-entropy of (w, b) on x, y (same shapes;
 * argmax ties go to the lower class). */
gr_status gr_logreg_eval(const float *x, const int32_t *y, int64_t n, int64_t d, int k, const float *w, const float *b,
                         double *accuracy, double *loss);

#ifdef __cplusplus
}
#endif
#endif
