/* tests/util/gradcheck.c — see gradcheck.h. */
#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

gc_input gc_rand(gr_rng *r, int ndim, const int64_t *shape, float lo, float hi, bool grad) {
  gc_input in = {.ndim = ndim, .grad = grad};
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    in.shape[i] = shape[i];
    n *= shape[i];
  }
  in.data = malloc((size_t)(n ? n : 1) * sizeof(float));
  gr_rng_fill_uniform(r, in.data, n, lo, hi);
  return in;
}

void gc_input_free(gc_input *in) {
  free(in->data);
  in->data = NULL;
}

static int64_t numel_of(const gc_input *in) {
  int64_t n = 1;
  for (int i = 0; i < in->ndim; i++) n *= in->shape[i];
  return n;
}

/* Evaluates f on the inputs; returns y (in c) or NULL. */
static gr_tensor *eval(gr_ctx *c, gc_fn f, void *ud, int n, gc_input *in, bool leaves, gr_tensor **t) {
  for (int k = 0; k < n; k++) {
    t[k] = leaves && in[k].grad ? gr_leaf(c, in[k].ndim, in[k].shape, in[k].data)
                                : gr_tensor_from(c, in[k].ndim, in[k].shape, in[k].data);
    if (!t[k]) return NULL;
  }
  return f(c, t, ud);
}

static double weighted_sum(const gr_tensor *y, const float *R) {
  double s = 0;
  for (int64_t i = 0; i < y->numel; i++) s += (double)y->data[i] * R[i];
  return s;
}

static double loss_at(gc_fn f, void *ud, int n, gc_input *in, const float *R) {
  gr_ctx *c = gr_ctx_new(1 << 16, 1234);
  gr_ctx_set_grad(c, false);
  gr_tensor *t[16];
  gr_tensor *y = eval(c, f, ud, n, in, false, t);
  double L = y ? weighted_sum(y, R) : NAN;
  gr_ctx_free(c);
  return L;
}

bool gradcheck_tol(const char *name, gc_fn f, void *ud, int n, gc_input *in, double eps, double atol,
                   double rtol) {
  if (n > 16) return false;
  gr_ctx *c = gr_ctx_new(1 << 16, 1234);
  gr_tensor *t[16];
  gr_tensor *y = eval(c, f, ud, n, in, true, t);
  if (!y) {
    fprintf(stderr, "  gradcheck %s: forward failed: %s\n", name, gr_last_error());
    gr_ctx_free(c);
    return false;
  }
  float *R = malloc((size_t)(y->numel ? y->numel : 1) * sizeof(float));
  gr_rng rr;
  gr_rng_seed(&rr, 99);
  gr_rng_fill_uniform(&rr, R, y->numel, -1, 1);
  bool ok = true;
  if (gr_backward_seed(c, y, R) != GR_OK) {
    fprintf(stderr, "  gradcheck %s: backward failed: %s\n", name, gr_last_error());
    ok = false;
  }
  for (int k = 0; ok && k < n; k++) {
    if (!in[k].grad) continue;
    int64_t m = numel_of(&in[k]);
    for (int64_t j = 0; j < m; j++) {
      float x0 = in[k].data[j];
      in[k].data[j] = x0 + (float)eps;
      double lp = loss_at(f, ud, n, in, R);
      in[k].data[j] = x0 - (float)eps;
      double lm = loss_at(f, ud, n, in, R);
      in[k].data[j] = x0;
      double num = (lp - lm) / (2 * eps);
      double ana = t[k]->grad ? t[k]->grad[j] : 0.0;
      if (!(fabs(ana - num) <= atol + rtol * fabs(num))) {
        fprintf(stderr, "  gradcheck %s: input %d element %lld: analytic %.6g numeric %.6g\n", name, k,
                (long long)j, ana, num);
        ok = false;
        break;
      }
    }
  }
  free(R);
  gr_ctx_free(c);
  return ok;
}

bool gradcheck(const char *name, gc_fn f, void *ud, int n, gc_input *in) {
  return gradcheck_tol(name, f, ud, n, in, 1e-2, 2e-3, 2e-2);
}
