/* core/ops_binary.c — broadcasting add, sub, mul, div.
 * Shapes broadcast as in numpy. Both operands are folded into one "plan":
 * output dims of size 1 are dropped and neighbouring dims merged when both
 * operands step through them alike, so the common cases become one flat
 * loop (same shape, scalar operand) or rows over a contiguous inner loop
 * (row bias [N,D]+[D], channel bias [N,C,H,W]+[C,1,1]). The plan is walked
 * in segments of at most SEG inner elements, in parallel above GR_PAR_MIN
 * elements. Backward walks the same plan and sums an operand's gradient over
 * its broadcast dims. Not here: scalar and unary math (ops_unary.c). */
#include <string.h>

#include "core/op.h"

#define SEG 4096

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV } bin_kind;

typedef struct bc_plan {
  int nd;                          /* merged dims, >= 1 */
  int64_t shape[GR_MAX_DIMS];
  int64_t st[2][GR_MAX_DIMS];      /* element strides of a and b; 0 = broadcast */
  int64_t numel, inner, rows, chunks;
} bc_plan;

/* One segment: a run of `len` inner elements starting at out[out_off]. */
typedef struct bc_seg {
  int64_t out_off, off[2], len;
} bc_seg;

static bool broadcast_shape(const char *op, const gr_tensor *a, const gr_tensor *b, int *nd,
                            int64_t *shape) {
  int n = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int d = 0; d < n; d++) {
    int ia = d - (n - a->ndim), ib = d - (n - b->ndim);
    int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      char s1[96], s2[96];
      gr_error(GR_ESHAPE, "%s: shapes a%s and b%s do not broadcast (%lld vs %lld at dim %d from the end)",
               op, gr_shape_str(a, s1, sizeof s1), gr_shape_str(b, s2, sizeof s2), (long long)sa,
               (long long)sb, n - d);
      return false;
    }
    shape[d] = sa == 1 ? sb : sa;
  }
  *nd = n;
  return true;
}

/* Contiguous strides of t aligned to an nd-dim output; 0 where t has size 1. */
static void aligned_strides(const gr_tensor *t, int nd, int64_t *st) {
  int64_t s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    int it = d - (nd - t->ndim);
    int64_t size = it >= 0 ? t->shape[it] : 1;
    st[d] = size == 1 ? 0 : s;
    s *= size;
  }
}

static void plan_build(const gr_tensor *a, const gr_tensor *b, int nd, const int64_t *shape, bc_plan *p) {
  int64_t st[2][GR_MAX_DIMS];
  aligned_strides(a, nd, st[0]);
  aligned_strides(b, nd, st[1]);
  memset(p, 0, sizeof *p);
  p->numel = 1;
  for (int d = 0; d < nd; d++) {
    p->numel *= shape[d];
    if (shape[d] == 1) continue;
    int m = p->nd;
    if (m > 0 && p->st[0][m - 1] == st[0][d] * shape[d] && p->st[1][m - 1] == st[1][d] * shape[d]) {
      p->shape[m - 1] *= shape[d]; /* both operands step through d-1,d as one dim */
      p->st[0][m - 1] = st[0][d];
      p->st[1][m - 1] = st[1][d];
      continue;
    }
    p->shape[m] = shape[d];
    p->st[0][m] = st[0][d];
    p->st[1][m] = st[1][d];
    p->nd++;
  }
  if (p->nd == 0) { /* scalar output */
    p->nd = 1;
    p->shape[0] = 1;
  }
  p->inner = p->shape[p->nd - 1];
  p->rows = p->inner ? p->numel / p->inner : 0;
  p->chunks = (p->inner + SEG - 1) / SEG;
}

static bc_seg plan_segment(const bc_plan *p, int64_t s) {
  bc_seg g;
  int64_t row = s / p->chunks, start = (s % p->chunks) * SEG;
  g.out_off = row * p->inner + start;
  g.len = p->inner - start < SEG ? p->inner - start : SEG;
  g.off[0] = start * p->st[0][p->nd - 1];
  g.off[1] = start * p->st[1][p->nd - 1];
  for (int d = p->nd - 2; d >= 0; d--) {
    int64_t idx = row % p->shape[d];
    row /= p->shape[d];
    g.off[0] += idx * p->st[0][d];
    g.off[1] += idx * p->st[1][d];
  }
  return g;
}

/* Runs BODY for i in [0,n) with x = A[i*sa], y = B[i*sb], the inner strides
 * (0 or 1) hoisted out of the loop so each case vectorizes. */
#define STRIDED(BODY)                                                   \
  do {                                                                  \
    if (sa && sb) {                                                     \
      for (int64_t i = 0; i < n; i++) {                                 \
        float x = A[i], y = B[i];                                       \
        BODY;                                                           \
      }                                                                 \
    } else if (sa) {                                                    \
      float y = B[0];                                                   \
      for (int64_t i = 0; i < n; i++) {                                 \
        float x = A[i];                                                 \
        BODY;                                                           \
      }                                                                 \
    } else if (sb) {                                                    \
      float x = A[0];                                                   \
      for (int64_t i = 0; i < n; i++) {                                 \
        float y = B[i];                                                 \
        BODY;                                                           \
      }                                                                 \
    } else {                                                            \
      float x = A[0], y = B[0];                                         \
      for (int64_t i = 0; i < n; i++) {                                 \
        BODY;                                                           \
      }                                                                 \
    }                                                                   \
  } while (0)

static void bin_segment(bin_kind k, float *O, const float *A, int64_t sa, const float *B, int64_t sb,
                        int64_t n) {
  switch (k) {
    case BIN_ADD: STRIDED(O[i] = x + y); break;
    case BIN_SUB: STRIDED(O[i] = x - y); break;
    case BIN_MUL: STRIDED(O[i] = x * y); break;
    case BIN_DIV: STRIDED(O[i] = x / y); break;
  }
}

/* D[i] += TERM, or, when this operand is broadcast along the segment
 * (sd == 0), D[0] += the sum of TERM. TERM uses x, y and dy[i]. */
#define GRAD_LOOP(TERM)                                                 \
  do {                                                                  \
    if (sd) {                                                           \
      STRIDED((void)x; (void)y; D[i] += (TERM));                        \
    } else {                                                            \
      float s_ = 0;                                                     \
      STRIDED((void)x; (void)y; s_ += (TERM));                          \
      D[0] += s_;                                                       \
    }                                                                   \
  } while (0)

/* Accumulates d(out)/d(operand `which`) * dy into D (inner stride sd). */
static void bin_grad_segment(bin_kind k, int which, float *D, int64_t sd, const float *dy, const float *A,
                             int64_t sa, const float *B, int64_t sb, int64_t n) {
  switch (k * 2 + which) {
    case BIN_ADD * 2: case BIN_ADD * 2 + 1: case BIN_SUB * 2: GRAD_LOOP(dy[i]); break;
    case BIN_SUB * 2 + 1: GRAD_LOOP(-dy[i]); break;
    case BIN_MUL * 2: GRAD_LOOP(dy[i] * y); break;
    case BIN_MUL * 2 + 1: GRAD_LOOP(dy[i] * x); break;
    case BIN_DIV * 2: GRAD_LOOP(dy[i] / y); break;
    case BIN_DIV * 2 + 1: GRAD_LOOP(-dy[i] * x / (y * y)); break;
  }
}

static void bin_forward(bin_kind k, const bc_plan *p, const float *a, const float *b, float *y) {
  int64_t nseg = p->rows * p->chunks, ia = p->st[0][p->nd - 1], ib = p->st[1][p->nd - 1];
#pragma omp parallel for if (p->numel > GR_PAR_MIN) schedule(static)
  for (int64_t s = 0; s < nseg; s++) {
    bc_seg g = plan_segment(p, s);
    bin_segment(k, y + g.out_off, a + g.off[0], ia, b + g.off[1], ib, g.len);
  }
}

/* Accumulates the gradient of operand `which` into D. Parallel only when the
 * operand is not broadcast (segments then write disjoint elements). */
static void bin_grad(bin_kind k, int which, const bc_plan *p, const gr_tensor *t, float *D, const float *dy,
                     const float *a, const float *b) {
  int64_t nseg = p->rows * p->chunks, ia = p->st[0][p->nd - 1], ib = p->st[1][p->nd - 1];
  int64_t sd = which ? ib : ia;
  bool disjoint = t->numel == p->numel;
#pragma omp parallel for if (disjoint && p->numel > GR_PAR_MIN) schedule(static)
  for (int64_t s = 0; s < nseg; s++) {
    bc_seg g = plan_segment(p, s);
    bin_grad_segment(k, which, D + g.off[which], sd, dy + g.out_off, a + g.off[0], ia, b + g.off[1], ib,
                     g.len);
  }
}

static void binary_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *a = n->in[0], *b = n->in[1];
  bc_plan p;
  plan_build(a, b, n->out->ndim, n->out->shape, &p);
  bin_kind k = (bin_kind)n->i[0];
  gr_tensor *in[2] = {a, b};
  for (int which = 0; which < 2; which++) {
    gr_tensor *t = in[which];
    if (!t->requires_grad) continue;
    bool fresh = false;
    if ((k == BIN_ADD || (k == BIN_SUB && which == 0)) && t->numel == p.numel) { /* d = dy (residual adds) */
      float *d = gr_grad_buf_fresh(c, t, &fresh);
      if (fresh) gr_fill_floats(d, n->out->grad, t->numel); /* not zero-fill + accumulate */
    }
    if (!fresh) bin_grad(k, which, &p, t, gr_grad_buf(c, t), n->out->grad, a->data, b->data);
  }
}

static const gr_op_def OP_ADD = {"add", binary_backward};
static const gr_op_def OP_SUB = {"sub", binary_backward};
static const gr_op_def OP_MUL = {"mul", binary_backward};
static const gr_op_def OP_DIV = {"div", binary_backward};

static gr_tensor *binary(gr_ctx *c, bin_kind k, const gr_op_def *def, gr_tensor *a, gr_tensor *b) {
  GR_NEED(def->name, c);
  GR_NEED(def->name, a);
  GR_NEED(def->name, b);
  int nd;
  int64_t shape[GR_MAX_DIMS];
  if (!broadcast_shape(def->name, a, b, &nd, shape)) return NULL;
  gr_tensor *y = gr_tensor_new_uninit(c, nd, shape); /* the plan's segments write every element */
  if (!y) return NULL;
  bc_plan p;
  plan_build(a, b, nd, shape, &p);
  if (p.numel) bin_forward(k, &p, a->data, b->data, y->data);
  gr_node *n = gr_tape_record(c, def, y, 2, (gr_tensor *[]){a, b});
  if (n) n->i[0] = k;
  return y;
}

gr_tensor *gr_add(gr_ctx *c, gr_tensor *a, gr_tensor *b) { return binary(c, BIN_ADD, &OP_ADD, a, b); }
gr_tensor *gr_sub(gr_ctx *c, gr_tensor *a, gr_tensor *b) { return binary(c, BIN_SUB, &OP_SUB, a, b); }
gr_tensor *gr_mul(gr_ctx *c, gr_tensor *a, gr_tensor *b) { return binary(c, BIN_MUL, &OP_MUL, a, b); }
gr_tensor *gr_div(gr_ctx *c, gr_tensor *a, gr_tensor *b) { return binary(c, BIN_DIV, &OP_DIV, a, b); }
