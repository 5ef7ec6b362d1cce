/* core/ops_conv.c — 2-D convolution (NCHW) lowered to sgemm.
 *
 * Lowering: for each group, im2col of the whole batch gives
 * col [Cg*kh*kw, N*OH*OW]; one gemm w_g [Og, Cg*kh*kw] @ col gives the
 * group's output as [Og, N*OH*OW], scattered to y [N,O,OH,OW]. One large
 * gemm per group instead of one small gemm per sample. Backward reuses the
 * saved col: dW_g += dY_g col^T, dcol = W_g^T dY_g, dx += col2im(dcol).
 * im2col/col2im loops run under OpenMP (over col rows, and over input
 * channels for col2im so no two threads write the same element); BLAS is
 * called outside those regions. Not here: transposed convolution. */
#include <cblas.h>
#include <string.h>

#include "core/op.h"

typedef struct conv_geom {
  int64_t N, C, H, W, O, kh, kw, OH, OW;
  int64_t sh, sw, ph, pw, dh, dw, g, Cg, Og;
  int64_t K;  /* Cg*kh*kw: rows of col */
  int64_t P;  /* N*OH*OW: columns of col */
} conv_geom;

static int64_t or1(int v) { return v ? v : 1; }

static bool conv_geometry(const gr_tensor *x, const gr_tensor *w, const gr_tensor *b, const gr_conv2d_opts *o,
                          conv_geom *g) {
  char sx[96], sw[96];
  if (x->ndim != 4 || w->ndim != 4) {
    gr_error(GR_ESHAPE, "conv2d: want x[N,C,H,W] and w[O,C/groups,kh,kw], got x%s w%s",
             gr_shape_str(x, sx, sizeof sx), gr_shape_str(w, sw, sizeof sw));
    return false;
  }
  gr_conv2d_opts d = o ? *o : (gr_conv2d_opts){0};
  if (d.stride_h < 0 || d.stride_w < 0 || d.pad_h < 0 || d.pad_w < 0 || d.dil_h < 0 || d.dil_w < 0 || d.groups < 0) {
    gr_error(GR_EARG, "conv2d: negative stride, padding, dilation or groups");
    return false;
  }
  *g = (conv_geom){.N = x->shape[0], .C = x->shape[1], .H = x->shape[2], .W = x->shape[3], .O = w->shape[0],
                   .kh = w->shape[2], .kw = w->shape[3], .sh = or1(d.stride_h), .sw = or1(d.stride_w),
                   .ph = d.pad_h, .pw = d.pad_w, .dh = or1(d.dil_h), .dw = or1(d.dil_w), .g = or1(d.groups)};
  if (g->C % g->g || g->O % g->g || w->shape[1] != g->C / g->g) {
    gr_error(GR_ESHAPE, "conv2d: x%s w%s groups %lld: channels must divide by groups and w.shape[1] = C/groups",
             gr_shape_str(x, sx, sizeof sx), gr_shape_str(w, sw, sizeof sw), (long long)g->g);
    return false;
  }
  if (b && (b->ndim != 1 || b->shape[0] != g->O)) {
    gr_error(GR_ESHAPE, "conv2d: bias must be [%lld], got %s", (long long)g->O, gr_shape_str(b, sx, sizeof sx));
    return false;
  }
  int64_t eh = g->dh * (g->kh - 1) + 1, ew = g->dw * (g->kw - 1) + 1;
  if (g->kh < 1 || g->kw < 1 || g->H + 2 * g->ph < eh || g->W + 2 * g->pw < ew) {
    gr_error(GR_ESHAPE, "conv2d: kernel %lldx%lld (dilated %lldx%lld) larger than padded input of x%s",
             (long long)g->kh, (long long)g->kw, (long long)eh, (long long)ew, gr_shape_str(x, sx, sizeof sx));
    return false;
  }
  g->OH = (g->H + 2 * g->ph - eh) / g->sh + 1;
  g->OW = (g->W + 2 * g->pw - ew) / g->sw + 1;
  g->Cg = g->C / g->g;
  g->Og = g->O / g->g;
  g->K = g->Cg * g->kh * g->kw;
  g->P = g->N * g->OH * g->OW;
  return true;
}

/* With stride 1 along w, output column ow reads input column ow + kj*dw - pw:
 * [lo, hi) is the range of ow where that is inside the row (lo <= hi). The
 * branch-free copy over it was most of im2col's time (16% of a LeNet step). */
static bool unit_stride_span(const conv_geom *g, int64_t kj, int64_t *lo, int64_t *hi) {
  if (g->sw != 1) return false;
  int64_t shift = kj * g->dw - g->pw;
  *lo = shift < 0 ? -shift : 0;
  *hi = g->W - shift < g->OW ? g->W - shift : g->OW;
  if (*lo > g->OW) *lo = g->OW;
  if (*hi < *lo) *hi = *lo;
  return true;
}

/* col[r, n*OH*OW + p] for r = (c, ki, kj) of group gi. */
static void im2col(const conv_geom *g, const float *x, int64_t gi, float *col) {
  int64_t plane = g->OH * g->OW;
#pragma omp parallel for schedule(static) if (g->K * g->P > GR_PAR_MIN)
  for (int64_t r = 0; r < g->K; r++) {
    int64_t c = gi * g->Cg + r / (g->kh * g->kw), ki = (r / g->kw) % g->kh, kj = r % g->kw;
    float *dst = col + r * g->P;
    for (int64_t n = 0; n < g->N; n++) {
      const float *src = x + (n * g->C + c) * g->H * g->W;
      for (int64_t oh = 0; oh < g->OH; oh++) {
        int64_t ih = oh * g->sh - g->ph + ki * g->dh;
        float *d = dst + n * plane + oh * g->OW;
        if (ih < 0 || ih >= g->H) {
          memset(d, 0, (size_t)g->OW * sizeof(float));
          continue;
        }
        const float *s = src + ih * g->W;
        int64_t lo, hi;
        if (unit_stride_span(g, kj, &lo, &hi)) { /* zeros, a shifted copy, zeros (rows are short:
                                                       plain loops, not memset/memcpy calls) */
          const float *ss = s + kj * g->dw - g->pw;
          for (int64_t ow = 0; ow < lo; ow++) d[ow] = 0.0f;
          for (int64_t ow = lo; ow < hi; ow++) d[ow] = ss[ow];
          for (int64_t ow = hi; ow < g->OW; ow++) d[ow] = 0.0f;
          continue;
        }
        for (int64_t ow = 0; ow < g->OW; ow++) {
          int64_t iw = ow * g->sw - g->pw + kj * g->dw;
          d[ow] = (iw >= 0 && iw < g->W) ? s[iw] : 0.0f;
        }
      }
    }
  }
}

/* dx += col2im(dcol) for group gi; parallel over input channels. */
static void col2im(const conv_geom *g, const float *dcol, int64_t gi, float *dx) {
  int64_t plane = g->OH * g->OW, kk = g->kh * g->kw;
#pragma omp parallel for schedule(static) if (g->K * g->P > GR_PAR_MIN)
  for (int64_t cl = 0; cl < g->Cg; cl++) {
    int64_t c = gi * g->Cg + cl;
    for (int64_t k = 0; k < kk; k++) {
      int64_t ki = k / g->kw, kj = k % g->kw;
      const float *src = dcol + (cl * kk + k) * g->P;
      for (int64_t n = 0; n < g->N; n++) {
        float *dst = dx + (n * g->C + c) * g->H * g->W;
        for (int64_t oh = 0; oh < g->OH; oh++) {
          int64_t ih = oh * g->sh - g->ph + ki * g->dh;
          if (ih < 0 || ih >= g->H) continue;
          const float *s = src + n * plane + oh * g->OW;
          float *d = dst + ih * g->W;
          int64_t lo, hi;
          if (unit_stride_span(g, kj, &lo, &hi)) {
            float *dd = d + kj * g->dw - g->pw;
            for (int64_t ow = lo; ow < hi; ow++) dd[ow] += s[ow];
            continue;
          }
          for (int64_t ow = 0; ow < g->OW; ow++) {
            int64_t iw = ow * g->sw - g->pw + kj * g->dw;
            if (iw >= 0 && iw < g->W) d[iw] += s[ow];
          }
        }
      }
    }
  }
}

/* Copies group gi between the gemm layout grp [Og, N, plane] and the tensor
 * layout nchw [N, O, plane]; direction to_nchw or back. */
static void relayout(const conv_geom *g, int64_t gi, float *grp, float *nchw, bool to_nchw) {
  int64_t plane = g->OH * g->OW;
#pragma omp parallel for schedule(static) if (g->Og * g->P > GR_PAR_MIN)
  for (int64_t o = 0; o < g->Og; o++)
    for (int64_t n = 0; n < g->N; n++) {
      float *a = nchw + (n * g->O + gi * g->Og + o) * plane;
      float *b = grp + o * g->P + n * plane;
      if (to_nchw) memcpy(a, b, (size_t)plane * sizeof(float));
      else memcpy(b, a, (size_t)plane * sizeof(float));
    }
}

static void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B,
                  int64_t ldb, float beta, float *C, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) { /* C = beta C; C may be uninitialized when beta is 0 */
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) C[i * ldc + j] = beta == 0 ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
              1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

typedef struct conv_saved {
  conv_geom g;
  float *col; /* g groups x [K, P] */
} conv_saved;

static void conv_backward(gr_ctx *c, gr_node *nd) {
  gr_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->n_in > 2 ? nd->in[2] : NULL;
  conv_saved *s = nd->saved;
  const conv_geom *g = &s->g;
  int64_t plane = g->OH * g->OW;
  const float *dy = nd->out->grad;
  if (b && b->requires_grad) {
    float *db = gr_grad_buf(c, b);
    for (int64_t n = 0; n < g->N; n++)
      for (int64_t o = 0; o < g->O; o++) {
        const float *p = dy + (n * g->O + o) * plane;
        double acc = 0; /* simd reduction: vectorized (the strict-order loop was 4% of a LeNet conv step) */
#pragma omp simd reduction(+ : acc)
        for (int64_t i = 0; i < plane; i++) acc += p[i];
        db[o] += (float)acc;
      }
  }
  if (!x->requires_grad && !w->requires_grad) return;
  float *dyg = gr_scratch_uninit(c, (size_t)(g->Og * g->P) * sizeof(float));
  float *dcol = x->requires_grad ? gr_scratch_uninit(c, (size_t)(g->K * g->P) * sizeof(float)) : NULL;
  GR_ASSERT(dyg && (dcol || !x->requires_grad));
  for (int64_t gi = 0; gi < g->g; gi++) {
    relayout(g, gi, dyg, nd->out->grad, false);
    const float *col = s->col + gi * g->K * g->P;
    const float *wg = w->data + gi * g->Og * g->K;
    if (w->requires_grad) sgemm(false, true, g->Og, g->K, g->P, dyg, g->P, col, g->P, 1, gr_grad_buf(c, w) + gi * g->Og * g->K, g->K);
    if (x->requires_grad) {
      sgemm(true, false, g->K, g->P, g->Og, wg, g->K, dyg, g->P, 0, dcol, g->P);
      col2im(g, dcol, gi, gr_grad_buf(c, x));
    }
  }
}

static const gr_op_def OP_CONV2D = {"conv2d", conv_backward};

gr_tensor *gr_conv2d(gr_ctx *c, gr_tensor *x, gr_tensor *w, gr_tensor *b, const gr_conv2d_opts *o) {
  GR_NEED("conv2d", c);
  GR_NEED("conv2d", x);
  GR_NEED("conv2d", w);
  conv_saved s;
  if (!conv_geometry(x, w, b, o, &s.g)) return NULL;
  const conv_geom *g = &s.g;
  gr_tensor *y = gr_tensor_new_uninit(c, 4, GR_SHAPE(g->N, g->O, g->OH, g->OW)); /* relayout fills it */
  s.col = y ? gr_scratch_uninit(c, (size_t)(g->g * g->K * g->P) * sizeof(float)) : NULL;
  float *yg = s.col ? gr_scratch_uninit(c, (size_t)(g->Og * g->P) * sizeof(float)) : NULL;
  if (!yg) return NULL;
  for (int64_t gi = 0; gi < g->g; gi++) {
    float *col = s.col + gi * g->K * g->P;
    im2col(g, x->data, gi, col);
    sgemm(false, false, g->Og, g->P, g->K, w->data + gi * g->Og * g->K, g->K, col, g->P, 0, yg, g->P);
    relayout(g, gi, yg, y->data, true);
  }
  if (b) {
    int64_t plane = g->OH * g->OW;
    for (int64_t n = 0; n < g->N; n++)
      for (int64_t oc = 0; oc < g->O; oc++) {
        float *p = y->data + (n * g->O + oc) * plane, bv = b->data[oc];
        for (int64_t i = 0; i < plane; i++) p[i] += bv;
      }
  }
  gr_node *nd = gr_tape_record(c, &OP_CONV2D, y, b ? 3 : 2, (gr_tensor *[]){x, w, b});
  if (nd) {
    nd->saved = gr_scratch(c, sizeof s);
    if (!nd->saved) return NULL;
    memcpy(nd->saved, &s, sizeof s);
  }
  return y;
}
