/* optim/logreg.c — multinomial logistic regression by L-BFGS (graft/logreg.h):
 * objective, gradient, two-loop recursion, Armijo backtracking. Everything
 * in double; the parameters are one vector theta = [W (k x d), b (k)]. */
#include <math.h>
#include <string.h>

#include "graft/logreg.h"
#include "graft/tensor.h"

typedef struct lr_prob {
  const float *x;
  const int32_t *y;
  int64_t n, d;
  int k;
  double l2;
  double *logits; /* [k] scratch */
} lr_prob;

/* log(sum exp v[0..k)), computed from the largest entry; its index into *best. */
static double log_sum_exp(const double *v, int k, int *best) {
  double mx = -INFINITY, z = 0;
  for (int c = 0; c < k; c++)
    if (v[c] > mx) mx = v[c], *best = c;
  for (int c = 0; c < k; c++) z += exp(v[c] - mx);
  return mx + log(z);
}

/* f(theta), and its gradient into g (when not NULL). */
static double objective(const lr_prob *p, const double *th, double *g) {
  const int64_t d = p->d, nw = (int64_t)p->k * d;
  double f = 0;
  if (g) memset(g, 0, (size_t)(nw + p->k) * sizeof *g);
  for (int64_t i = 0; i < p->n; i++) {
    const float *xi = p->x + i * d;
    for (int c = 0; c < p->k; c++) {
      double s = th[nw + c];
      for (int64_t j = 0; j < d; j++) s += th[c * d + j] * xi[j];
      p->logits[c] = s;
    }
    int best = 0;
    double lse = log_sum_exp(p->logits, p->k, &best);
    f += lse - p->logits[p->y[i]];
    for (int c = 0; g && c < p->k; c++) {
      double r = (exp(p->logits[c] - lse) - (c == p->y[i])) / (double)p->n;
      for (int64_t j = 0; j < d; j++) g[c * d + j] += r * xi[j];
      g[nw + c] += r;
    }
  }
  f /= (double)p->n;
  for (int64_t j = 0; j < nw; j++) {
    f += 0.5 * p->l2 * th[j] * th[j];
    if (g) g[j] += p->l2 * th[j];
  }
  return f;
}

static double dot(const double *a, const double *b, int64_t m) {
  double s = 0;
  for (int64_t i = 0; i < m; i++) s += a[i] * b[i];
  return s;
}

static double max_abs(const double *a, int64_t m) {
  double s = 0;
  for (int64_t i = 0; i < m; i++) s = fabs(a[i]) > s ? fabs(a[i]) : s;
  return s;
}

/* dir = -H g by the two-loop recursion over the h stored pairs (newest at
 * (top - 1) mod hist). */
static void two_loop(const double *g, double *dir, int64_t m, double *const *s, double *const *yv, const double *rho,
                     int h, int top, int hist, double *alpha) {
  for (int64_t i = 0; i < m; i++) dir[i] = -g[i];
  for (int t = 0; t < h; t++) {
    int j = ((top - 1 - t) % hist + hist) % hist;
    alpha[j] = rho[j] * dot(s[j], dir, m);
    for (int64_t i = 0; i < m; i++) dir[i] -= alpha[j] * yv[j][i];
  }
  if (h > 0) {
    int j = ((top - 1) % hist + hist) % hist;
    double gamma = dot(s[j], yv[j], m) / dot(yv[j], yv[j], m);
    for (int64_t i = 0; i < m; i++) dir[i] *= gamma;
  }
  for (int t = h - 1; t >= 0; t--) {
    int j = ((top - 1 - t) % hist + hist) % hist;
    double beta = rho[j] * dot(yv[j], dir, m);
    for (int64_t i = 0; i < m; i++) dir[i] += (alpha[j] - beta) * s[j][i];
  }
}

static gr_status check_args(const float *x, const int32_t *y, int64_t n, int64_t d, int k, const void *w,
                            const void *b) {
  if (!x || !y || !w || !b) return gr_error(GR_EARG, "logreg: NULL argument");
  if (n < 1 || d < 1 || k < 2 || d > ((int64_t)1 << 30) / k) return gr_error(GR_EARG, "logreg: bad sizes n=%lld d=%lld k=%d", (long long)n, (long long)d, k);
  for (int64_t i = 0; i < n; i++)
    if (y[i] < 0 || y[i] >= k) return gr_error(GR_EARG, "logreg: label %d of sample %lld is outside 0..%d", (int)y[i], (long long)i, k - 1);
  for (int64_t i = 0; i < n * d; i++)
    if (!isfinite(x[i])) return gr_error(GR_ENUMERIC, "logreg: x[%lld] is not finite", (long long)i);
  return GR_OK;
}

/* The L-BFGS iterations on p from th (updated in place). */
static void lbfgs(const lr_prob *p, double *th, double *work, int64_t m, const gr_logreg_cfg *c, gr_logreg_result *r) {
  const int hist = c->history;
  double *g = work, *g2 = g + m, *dir = g2 + m, *th2 = dir + m, *rho = th2 + m, *alpha = rho + hist;
  double *s[64], *yv[64];
  for (int t = 0; t < hist; t++) s[t] = alpha + hist + (int64_t)2 * t * m, yv[t] = s[t] + m;
  double f = objective(p, th, g);
  int h = 0, top = 0, it = 0;
  for (; it < c->max_iter && max_abs(g, m) >= c->tol; it++) {
    two_loop(g, dir, m, s, yv, rho, h, top, hist, alpha);
    double gd = dot(g, dir, m);
    if (gd >= 0) { /* not a descent direction: restart from steepest descent */
      for (int64_t i = 0; i < m; i++) dir[i] = -g[i];
      gd = dot(g, dir, m), h = 0;
    }
    double step = h ? 1.0 : 1.0 / (1.0 + max_abs(g, m)), f2 = f;
    for (int ls = 0; ls < 60; ls++, step *= 0.5) {
      for (int64_t i = 0; i < m; i++) th2[i] = th[i] + step * dir[i];
      f2 = objective(p, th2, g2);
      if (f2 <= f + 1e-4 * step * gd) break;
    }
    if (!(f2 < f)) break; /* no decrease at any step: at machine precision */
    for (int64_t i = 0; i < m; i++) s[top][i] = th2[i] - th[i], yv[top][i] = g2[i] - g[i];
    double sy = dot(s[top], yv[top], m);
    if (sy > 1e-12) rho[top] = 1.0 / sy, top = (top + 1) % hist, h = h < hist ? h + 1 : hist;
    memcpy(th, th2, (size_t)m * sizeof *th), memcpy(g, g2, (size_t)m * sizeof *g);
    f = f2;
  }
  r->iters = it, r->objective = f, r->grad_max = max_abs(g, m), r->converged = r->grad_max < c->tol;
}

gr_status gr_logreg_fit(const float *x, const int32_t *y, int64_t n, int64_t d, int k, const gr_logreg_cfg *cfg,
                        float *w, float *b, gr_logreg_result *res) {
  gr_status s = check_args(x, y, n, d, k, w, b);
  if (s) return s;
  gr_logreg_cfg c = cfg ? *cfg : (gr_logreg_cfg){0};
  if (!(c.l2 >= 0) || !isfinite(c.l2) || c.max_iter < 0 || !(c.tol >= 0) || c.history < 0 || c.history > 64)
    return gr_error(GR_EARG, "logreg: bad settings (l2 %g, max_iter %d, tol %g, history %d)", c.l2, c.max_iter, c.tol, c.history);
  if (!c.max_iter) c.max_iter = 1000;
  if (!(c.tol > 0)) c.tol = 1e-6;
  if (!c.history) c.history = 10;
  int64_t m = (int64_t)k * d + k;
  double *th = gr_calloc((size_t)(m * (5 + 2 * (int64_t)c.history) + 2 * c.history + k), sizeof *th);
  if (!th) return gr_error(GR_ENOMEM, "logreg: out of memory for %lld parameters", (long long)m);
  lr_prob p = {x, y, n, d, k, c.l2, th + m * (5 + 2 * (int64_t)c.history) + 2 * c.history};
  gr_logreg_result r;
  lbfgs(&p, th, th + m, m, &c, &r);
  for (int64_t i = 0; i < (int64_t)k * d; i++) w[i] = (float)th[i];
  for (int i = 0; i < k; i++) b[i] = (float)th[(int64_t)k * d + i];
  if (res) *res = r;
  gr_free(th);
  return GR_OK;
}

gr_status gr_logreg_eval(const float *x, const int32_t *y, int64_t n, int64_t d, int k, const float *w, const float *b,
                         double *accuracy, double *loss) {
  gr_status s = check_args(x, y, n, d, k, w, b);
  if (s) return s;
  if (!accuracy || !loss) return gr_error(GR_EARG, "logreg: NULL argument");
  int64_t right = 0;
  double total = 0, logits[256];
  if (k > 256) return gr_error(GR_EARG, "logreg eval: more than 256 classes");
  for (int64_t i = 0; i < n; i++) {
    for (int c = 0; c < k; c++) {
      double v = b[c];
      for (int64_t j = 0; j < d; j++) v += (double)w[c * d + j] * x[i * d + j];
      logits[c] = v;
    }
    int best = 0;
    total += log_sum_exp(logits, k, &best) - logits[y[i]];
    right += best == y[i];
  }
  *accuracy = (double)right / (double)n, *loss = total / (double)n;
  return GR_OK;
}
