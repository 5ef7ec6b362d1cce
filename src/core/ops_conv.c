/* core/ops_conv.c — 2-D convolution (NCHW) lowered to sgemm.
 *
 * Lowering: the batch is cut into chunks of nb samples whose columns fit in
 * L2 (see chunk_samples); for each chunk and group, im2col gives
 * col [Cg*kh*kw, nb*OH*OW]; one gemm w_g [Og, Cg*kh*kw] @ col gives the
 * group's output as [Og, nb*OH*OW], copied to y [N,O,OH,OW] with the bias
 * added. Backward recomputes each chunk's col from x: dW_g += dY_g col^T,
 * dcol = W_g^T dY_g, dx += col2im(dcol).
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
  return true;
}

/* [lo, hi): the outputs o < n whose input index o*stride + off lies in
 * [0, len); outside it the input is padding. Computed once per kernel tap,
 * so the copy loops below have no bounds tests (per-row tests and short
 * copies were a third of a LeNet training step). */
static void valid_span(int64_t n, int64_t stride, int64_t off, int64_t len, int64_t *lo, int64_t *hi) {
  int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t b = len - off <= 0 ? 0 : (len - off - 1) / stride + 1;
  if (b > n) b = n;
  *lo = a < b ? a : b;
  *hi = b;
}

/* The spans of output rows and columns that kernel tap (ki, kj) reads from
 * inside the input, and the input offset of output (0, 0) for that tap. */
typedef struct tap_span {
  int64_t hlo, hhi, wlo, whi, off;
} tap_span;

static tap_span tap_of(const conv_geom *g, int64_t ki, int64_t kj) {
  tap_span t;
  int64_t oy = ki * g->dh - g->ph, ox = kj * g->dw - g->pw;
  valid_span(g->OH, g->sh, oy, g->H, &t.hlo, &t.hhi);
  valid_span(g->OW, g->sw, ox, g->W, &t.wlo, &t.whi);
  t.off = oy * g->W + ox;
  return t;
}

/* Samples per chunk: the columns of one chunk, [K, nb*OH*OW], stay within
 * CONV_CHUNK_FLOATS (256 KiB, half an L2) so im2col writes them, sgemm
 * packs them and col2im reads them back while they are in cache. Lowering
 * the whole batch at once streamed up to 19 MB of columns through memory
 * per layer and kept them for backward (the peak RSS of a small ResNet). */
#define CONV_CHUNK_FLOATS (64 * 1024)

static int64_t chunk_samples(const conv_geom *g) {
  int64_t nb = CONV_CHUNK_FLOATS / (g->K * g->OH * g->OW);
  if (nb > g->N) nb = g->N;
  return nb < 1 ? 1 : nb;
}

/* One plane of col for tap t: d[oh*OW + ow] = x[(oh*sh)*W + ow*sw + t.off]
 * inside the spans, 0 outside. */
static void im2col_plane(const conv_geom *g, const tap_span *t, const float *x, float *d) {
  memset(d, 0, (size_t)(t->hlo * g->OW) * sizeof(float));
  for (int64_t oh = t->hlo; oh < t->hhi; oh++) {
    const float *s = x + oh * g->sh * g->W + t->off;
    float *row = d + oh * g->OW;
    for (int64_t ow = 0; ow < t->wlo; ow++) row[ow] = 0.0f;
    if (g->sw == 1)
      for (int64_t ow = t->wlo; ow < t->whi; ow++) row[ow] = s[ow];
    else
      for (int64_t ow = t->wlo; ow < t->whi; ow++) row[ow] = s[ow * g->sw];
    for (int64_t ow = t->whi; ow < g->OW; ow++) row[ow] = 0.0f;
  }
  memset(d + t->hhi * g->OW, 0, (size_t)((g->OH - t->hhi) * g->OW) * sizeof(float));
}

/* col[r, j*OH*OW + p] for r = (c, ki, kj) of group gi and sample n0 + j, j < nb. */
static void im2col(const conv_geom *g, const float *x, int64_t gi, int64_t n0, int64_t nb, float *col) {
  int64_t plane = g->OH * g->OW, width = nb * plane;
#pragma omp parallel for schedule(static) if (g->K * width > GR_PAR_MIN)
  for (int64_t r = 0; r < g->K; r++) {
    int64_t c = gi * g->Cg + r / (g->kh * g->kw);
    tap_span t = tap_of(g, (r / g->kw) % g->kh, r % g->kw);
    for (int64_t j = 0; j < nb; j++)
      im2col_plane(g, &t, x + ((n0 + j) * g->C + c) * g->H * g->W, col + r * width + j * plane);
  }
}

/* dx[(oh*sh)*W + ow*sw + t.off] += d[oh*OW + ow] inside the spans of tap t. */
static void col2im_plane(const conv_geom *g, const tap_span *t, const float *d, float *dx) {
  for (int64_t oh = t->hlo; oh < t->hhi; oh++) {
    float *s = dx + oh * g->sh * g->W + t->off;
    const float *row = d + oh * g->OW;
    if (g->sw == 1)
      for (int64_t ow = t->wlo; ow < t->whi; ow++) s[ow] += row[ow];
    else
      for (int64_t ow = t->wlo; ow < t->whi; ow++) s[ow * g->sw] += row[ow];
  }
}

/* dx += col2im(dcol) for group gi and samples n0..n0+nb-1; parallel over
 * input channels, so no two threads write the same element. */
static void col2im(const conv_geom *g, const float *dcol, int64_t gi, int64_t n0, int64_t nb, float *dx) {
  int64_t plane = g->OH * g->OW, kk = g->kh * g->kw, width = nb * plane;
#pragma omp parallel for schedule(static) if (g->K * width > GR_PAR_MIN)
  for (int64_t cl = 0; cl < g->Cg; cl++) {
    int64_t c = gi * g->Cg + cl;
    for (int64_t k = 0; k < kk; k++) {
      tap_span t = tap_of(g, k / g->kw, k % g->kw);
      for (int64_t j = 0; j < nb; j++)
        col2im_plane(g, &t, dcol + (cl * kk + k) * width + j * plane, dx + ((n0 + j) * g->C + c) * g->H * g->W);
    }
  }
}

/* Copies group gi of samples n0..n0+nb-1 between the gemm layout
 * grp [Og, nb, plane] and the tensor layout nchw [N, O, plane]. To nchw it
 * adds the bias (when given) on the way, while the rows are in cache. */
static void relayout(const conv_geom *g, int64_t gi, int64_t n0, int64_t nb, float *grp, float *nchw, bool to_nchw,
                     const float *bias) {
  int64_t plane = g->OH * g->OW;
#pragma omp parallel for schedule(static) if (g->Og * nb * plane > GR_PAR_MIN)
  for (int64_t o = 0; o < g->Og; o++)
    for (int64_t j = 0; j < nb; j++) {
      float *a = nchw + ((n0 + j) * g->O + gi * g->Og + o) * plane;
      float *b = grp + (o * nb + j) * plane;
      if (!to_nchw) {
        memcpy(b, a, (size_t)plane * sizeof(float));
      } else if (bias) {
        float bv = bias[gi * g->Og + o];
        for (int64_t i = 0; i < plane; i++) a[i] = b[i] + bv;
      } else {
        memcpy(a, b, (size_t)plane * sizeof(float));
      }
    }
}

/* The bias gradient: db[o] += sum over n and the plane of dy. */
static void conv_bias_backward(const conv_geom *g, const float *dy, float *db) {
  int64_t plane = g->OH * g->OW;
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t o = 0; o < g->O; o++) {
      const float *p = dy + (n * g->O + o) * plane;
      double acc = 0; /* simd reduction: vectorized (the strict-order loop was 4% of a LeNet conv step) */
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < plane; i++) acc += p[i];
      db[o] += (float)acc;
    }
}

/* Backward chunk by chunk: the columns are recomputed from x (cheaper, in
 * cache, than keeping the whole batch's columns from forward), then
 * dW_g += dY_g col^T, dcol = W_g^T dY_g, dx += col2im(dcol). */
static void conv_backward(gr_ctx *c, gr_node *nd) {
  gr_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->n_in > 2 ? nd->in[2] : NULL;
  const conv_geom *g = nd->saved;
  const float *dy = nd->out->grad;
  if (b && b->requires_grad) conv_bias_backward(g, dy, gr_grad_buf(c, b));
  if (!x->requires_grad && !w->requires_grad) return;
  int64_t nb = chunk_samples(g), width = nb * g->OH * g->OW;
  float *dyg = gr_scratch_uninit(c, (size_t)(g->Og * width) * sizeof(float));
  float *col = w->requires_grad ? gr_scratch_uninit(c, (size_t)(g->K * width) * sizeof(float)) : NULL;
  float *dcol = x->requires_grad ? gr_scratch_uninit(c, (size_t)(g->K * width) * sizeof(float)) : NULL;
  float *dw = w->requires_grad ? gr_grad_buf(c, w) : NULL, *dx = x->requires_grad ? gr_grad_buf(c, x) : NULL;
  GR_ASSERT(dyg && (col || !dw) && (dcol || !dx));
  for (int64_t n0 = 0; n0 < g->N; n0 += nb) {
    int64_t m = g->N - n0 < nb ? g->N - n0 : nb, mw = m * g->OH * g->OW;
    for (int64_t gi = 0; gi < g->g; gi++) {
      relayout(g, gi, n0, m, dyg, nd->out->grad, false, NULL);
      if (dw) {
        im2col(g, x->data, gi, n0, m, col);
        gr_sgemm_rm(false, true, g->Og, g->K, mw, dyg, mw, col, mw, 1, dw + gi * g->Og * g->K, g->K);
      }
      if (dx) {
        gr_sgemm_rm(true, false, g->K, mw, g->Og, w->data + gi * g->Og * g->K, g->K, dyg, mw, 0, dcol, mw);
        col2im(g, dcol, gi, n0, m, dx);
      }
    }
  }
}

static const gr_op_def OP_CONV2D = {"conv2d", conv_backward};

/* y = conv(x, w) + b, chunk by chunk: im2col of a chunk, one gemm per group
 * into the chunk's [Og, nb*plane] buffer, then to NCHW with the bias added. */
static void conv_forward(const conv_geom *g, const float *x, const float *w, const float *b, float *col,
                         float *yg, float *y) {
  int64_t nb = chunk_samples(g);
  for (int64_t n0 = 0; n0 < g->N; n0 += nb) {
    int64_t m = g->N - n0 < nb ? g->N - n0 : nb, mw = m * g->OH * g->OW;
    for (int64_t gi = 0; gi < g->g; gi++) {
      im2col(g, x, gi, n0, m, col);
      gr_sgemm_rm(false, false, g->Og, mw, g->K, w + gi * g->Og * g->K, g->K, col, mw, 0, yg, mw);
      relayout(g, gi, n0, m, yg, y, true, b);
    }
  }
}

gr_tensor *gr_conv2d(gr_ctx *c, gr_tensor *x, gr_tensor *w, gr_tensor *b, const gr_conv2d_opts *o) {
  GR_NEED("conv2d", c);
  GR_NEED("conv2d", x);
  GR_NEED("conv2d", w);
  conv_geom g;
  if (!conv_geometry(x, w, b, o, &g)) return NULL;
  gr_tensor *y = gr_tensor_new_uninit(c, 4, GR_SHAPE(g.N, g.O, g.OH, g.OW)); /* relayout fills it */
  int64_t width = chunk_samples(&g) * g.OH * g.OW;
  float *col = y ? gr_scratch_uninit(c, (size_t)(g.K * width) * sizeof(float)) : NULL;
  float *yg = col ? gr_scratch_uninit(c, (size_t)(g.Og * width) * sizeof(float)) : NULL;
  if (!yg) return NULL;
  conv_forward(&g, x->data, w->data, b ? b->data : NULL, col, yg, y->data);
  gr_node *nd = gr_tape_record(c, &OP_CONV2D, y, b ? 3 : 2, (gr_tensor *[]){x, w, b});
  if (nd) {
    nd->saved = gr_scratch(c, sizeof g);
    if (!nd->saved) return NULL;
    memcpy(nd->saved, &g, sizeof g);
  }
  return y;
}
