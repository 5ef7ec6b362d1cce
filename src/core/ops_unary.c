/* core/ops_unary.c — elementwise maps of one tensor: exp, log, sqrt, pow,
 * relu, gelu (tanh approximation), tanh, sigmoid, and the scalar ops scale
 * and add_scalar. One forward and one backward serve every map: the node
 * keeps the map's kind (i[0]) and parameter (f[0]); the backward reads the
 * input x and output y to form dy * f'(x). Loops run in parallel above
 * GR_PAR_MIN elements. Not here: two-tensor broadcasting ops (ops_binary.c). */
#include <math.h>
#include <string.h>

#include "core/op.h"

typedef enum {
  U_EXP, U_LOG, U_SQRT, U_POW, U_RELU, U_GELU, U_TANH, U_SIGMOID, U_SCALE, U_ADD_SCALAR
} unary_kind;

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

/* 0.5 x (1 + tanh u) = x sigmoid(2u), u = K (x + C x^3): one exponential
 * e = e^{-2u}, no tanhf (which neither vectorizes nor is cheap).
 * d/dx = s + 2 x s (1-s) u' with s = 1/(1+e), 1-s = e s (no cancellation
 * as s -> 1), u' = K (1 + 3 C x^2). */
static inline float gelu_value(float x) {
  return x / (1.0f + gr_expf_poly(-2.0f * GELU_K * (x + GELU_C * x * x * x)));
}

static inline float gelu_deriv(float x) {
  float e = gr_expf_poly(-2.0f * GELU_K * (x + GELU_C * x * x * x)), s = 1.0f / (1.0f + e);
  return s + 2.0f * x * s * (e * s) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
}

static inline float sigmoid_value(float x) {
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

/* ys[i] = EXPR(x = xs[i]) */
#define MAP(EXPR)                                                              \
  _Pragma("omp parallel for if (n > GR_PAR_MIN) schedule(static)")            \
  for (int64_t i = 0; i < n; i++) {                                            \
    float x = xs[i];                                                           \
    ys[i] = (EXPR);                                                            \
  }

static void unary_map(unary_kind k, float p, const float *xs, float *ys, int64_t n) {
  switch (k) {
    case U_EXP: MAP(expf(x)); break;
    case U_LOG: MAP(logf(x)); break;
    case U_SQRT: MAP(sqrtf(x)); break;
    case U_POW: MAP(powf(x, p)); break;
    case U_RELU: MAP(x > 0 ? x : 0.0f); break;
    case U_GELU: MAP(gelu_value(x)); break;
    case U_TANH: MAP(tanhf(x)); break;
    case U_SIGMOID: MAP(sigmoid_value(x)); break;
    case U_SCALE: MAP(p * x); break;
    case U_ADD_SCALAR: MAP(x + p); break;
  }
}

/* One elementwise backward loop: dx[i] = (or +=) STEP for i in [0, n). A
 * fresh gradient buffer is written, an accumulating one added to, in two
 * separate loops (a fresh dx is uninitialized, so it is never read): a
 * select on `fresh` inside the loop keeps GCC from
 * vectorizing it (seen in perf: GELU's backward was 17% of a GPT step). */
#define MAP_GRAD_LOOP(OP, STEP)                                                \
  do {                                                                         \
    _Pragma("omp parallel for if (n > GR_PAR_MIN) schedule(static)")          \
    for (int64_t i = 0; i < n; i++) {                                          \
      float x = xs[i], y = ys[i];                                              \
      (void)x;                                                                 \
      (void)y;                                                                 \
      dx[i] OP (STEP);                                                         \
    }                                                                          \
  } while (0)
#define MAP_GRAD_STEP(STEP)                                                    \
  do {                                                                         \
    if (fresh) MAP_GRAD_LOOP(=, STEP);                                         \
    else MAP_GRAD_LOOP(+=, STEP);                                              \
  } while (0)

/* dx[i] (+)= dy[i] * EXPR(x = xs[i], y = ys[i]). */
#define MAP_GRAD(EXPR) MAP_GRAD_STEP(dy[i] * (EXPR))

/* dx[i] (+)= COND(x = xs[i]) ? dy[i] : 0 — a select, which vectorizes; the
 * product dy * (COND ? 1 : 0) compiles to a branch per element (seen in perf:
 * relu's backward was 9% of an MLP training step, mispredicting on signs). */
#define MAP_GRAD_MASK(COND) MAP_GRAD_STEP((COND) ? dy[i] : 0.0f)

static void unary_grad(unary_kind k, float p, const float *xs, const float *ys, const float *dy, float *dx,
                       int64_t n, bool fresh) {
  switch (k) {
    case U_EXP: MAP_GRAD(y); break;
    case U_LOG: MAP_GRAD(1.0f / x); break;
    case U_SQRT: MAP_GRAD(0.5f / y); break;
    case U_POW: /* d/dx x^0 = 0 everywhere (also at x = 0), as in PyTorch */
      if (p == 0) {
        if (fresh) memset(dx, 0, (size_t)n * sizeof(float));
        break;
      }
      MAP_GRAD(p * powf(x, p - 1.0f));
      break;
    case U_RELU: MAP_GRAD_MASK(x > 0); break;
    case U_GELU: MAP_GRAD(gelu_deriv(x)); break;
    case U_TANH: MAP_GRAD(1.0f - y * y); break;
    case U_SIGMOID: MAP_GRAD(y * (1.0f - y)); break;
    case U_SCALE: MAP_GRAD(p); break;
    case U_ADD_SCALAR: MAP_GRAD(1.0f); break;
  }
}

static void unary_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  if (!x->requires_grad) return;
  bool fresh;
  float *dx = gr_grad_buf_fresh(c, x, &fresh);
  unary_grad((unary_kind)n->i[0], n->f[0], x->data, n->out->data, n->out->grad, dx, x->numel, fresh);
}

static const gr_op_def OP_EXP = {"exp", unary_backward};
static const gr_op_def OP_LOG = {"log", unary_backward};
static const gr_op_def OP_SQRT = {"sqrt", unary_backward};
static const gr_op_def OP_POW = {"pow", unary_backward};
static const gr_op_def OP_RELU = {"relu", unary_backward};
static const gr_op_def OP_GELU = {"gelu", unary_backward};
static const gr_op_def OP_TANH = {"tanh", unary_backward};
static const gr_op_def OP_SIGMOID = {"sigmoid", unary_backward};
static const gr_op_def OP_SCALE = {"scale", unary_backward};
static const gr_op_def OP_ADD_SCALAR = {"add_scalar", unary_backward};

static gr_tensor *unary(gr_ctx *c, unary_kind k, const gr_op_def *def, gr_tensor *x, float p) {
  GR_NEED(def->name, c);
  GR_NEED(def->name, x);
  gr_tensor *y = gr_tensor_new_uninit(c, x->ndim, x->shape); /* the map writes every element */
  if (!y) return NULL;
  unary_map(k, p, x->data, y->data, x->numel);
  gr_node *n = gr_tape_record(c, def, y, 1, &x);
  if (n) {
    n->i[0] = k;
    n->f[0] = p;
  }
  return y;
}

gr_tensor *gr_exp(gr_ctx *c, gr_tensor *x) { return unary(c, U_EXP, &OP_EXP, x, 0); }
gr_tensor *gr_log(gr_ctx *c, gr_tensor *x) { return unary(c, U_LOG, &OP_LOG, x, 0); }
gr_tensor *gr_sqrt(gr_ctx *c, gr_tensor *x) { return unary(c, U_SQRT, &OP_SQRT, x, 0); }
gr_tensor *gr_pow(gr_ctx *c, gr_tensor *x, float p) { return unary(c, U_POW, &OP_POW, x, p); }
gr_tensor *gr_relu(gr_ctx *c, gr_tensor *x) { return unary(c, U_RELU, &OP_RELU, x, 0); }
gr_tensor *gr_gelu(gr_ctx *c, gr_tensor *x) { return unary(c, U_GELU, &OP_GELU, x, 0); }
gr_tensor *gr_tanh(gr_ctx *c, gr_tensor *x) { return unary(c, U_TANH, &OP_TANH, x, 0); }
gr_tensor *gr_sigmoid(gr_ctx *c, gr_tensor *x) { return unary(c, U_SIGMOID, &OP_SIGMOID, x, 0); }
gr_tensor *gr_scale(gr_ctx *c, gr_tensor *x, float s) { return unary(c, U_SCALE, &OP_SCALE, x, s); }
gr_tensor *gr_add_scalar(gr_ctx *c, gr_tensor *x, float s) { return unary(c, U_ADD_SCALAR, &OP_ADD_SCALAR, x, s); }
