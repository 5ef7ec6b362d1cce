/* core/ops_pool.c — 2-D max and average pooling and global average pooling
 * (NCHW). Max pooling pads with -inf and saves the argmax of each window
 * (first maximum on ties, as PyTorch) for backward; average pooling divides
 * by the full window (count_include_pad) or by its in-bounds part. */
#include <math.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#include <string.h>

#include "core/op.h"

typedef struct pool_geom {
  int64_t NC, H, W, kh, kw, sh, sw, ph, pw, OH, OW;
  bool include_pad;
} pool_geom;

static bool pool_geometry(const char *op, const gr_tensor *x, const gr_pool2d_opts *o, pool_geom *g) {
  char sx[96];
  if (x->ndim != 4) {
    gr_error(GR_ESHAPE, "%s: want x[N,C,H,W], got x%s", op, gr_shape_str(x, sx, sizeof sx));
    return false;
  }
  if (!o || o->kernel_h < 1 || o->kernel_w < 1 || o->stride_h < 0 || o->stride_w < 0 || o->pad_h < 0 || o->pad_w < 0 ||
      o->pad_h * 2 > o->kernel_h || o->pad_w * 2 > o->kernel_w) {
    gr_error(GR_EARG, "%s: need kernel >= 1, stride >= 0 and 0 <= padding <= kernel/2", op);
    return false;
  }
  *g = (pool_geom){.NC = x->shape[0] * x->shape[1], .H = x->shape[2], .W = x->shape[3], .kh = o->kernel_h,
                   .kw = o->kernel_w, .sh = o->stride_h ? o->stride_h : o->kernel_h,
                   .sw = o->stride_w ? o->stride_w : o->kernel_w, .ph = o->pad_h, .pw = o->pad_w,
                   .include_pad = o->count_include_pad};
  if (g->H + 2 * g->ph < g->kh || g->W + 2 * g->pw < g->kw) {
    gr_error(GR_ESHAPE, "%s: kernel %lldx%lld larger than padded input x%s", op, (long long)g->kh, (long long)g->kw,
             gr_shape_str(x, sx, sizeof sx));
    return false;
  }
  g->OH = (g->H + 2 * g->ph - g->kh) / g->sh + 1;
  g->OW = (g->W + 2 * g->pw - g->kw) / g->sw + 1;
  return true;
}

/* ---- max pool ---------------------------------------------------------- */
static void maxpool_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  if (!x->requires_grad) return;
  const int32_t *arg = n->saved;
  const float *dy = n->out->grad;
  float *dx = gr_grad_buf(c, x);
  int64_t plane_in = x->shape[2] * x->shape[3], plane_out = n->out->shape[2] * n->out->shape[3];
  int64_t NC = x->shape[0] * x->shape[1];
  for (int64_t p = 0; p < NC; p++)
    for (int64_t i = 0; i < plane_out; i++) dx[p * plane_in + arg[p * plane_out + i]] += dy[p * plane_out + i];
}

static const gr_op_def OP_MAXPOOL = {"max_pool2d", maxpool_backward};

/* One plane without padding (every window inside the input), a row of
 * outputs at a time: the row starts as each window's first element, then
 * every other window position updates the whole row with a select (no
 * branch, no dependency from one window to the next). Same result and
 * argmax as the general loop below: windows are scanned row-major, the
 * first maximum wins ties, the first NaN wins. The branchy per-window loop
 * was 20% of a LeNet training step (mispredicted on random data). */
/* One window position (base + ow*step) for a row of outputs: a select per
 * output, which vectorizes (restrict: the row, its argmax and the input
 * never overlap). Inlined into one copy per common stride, where step is a
 * constant: with a run-time step the strided loads did not vectorize (the
 * 2x2 pools were 10% of a LeNet training step). */
static inline __attribute__((always_inline)) void maxpool_row_update(const float *restrict src, float *restrict yr,
                                                                     int32_t *restrict ar, int64_t OW, int32_t base,
                                                                     int32_t step) {
  for (int64_t ow = 0; ow < OW; ow++) {
    int32_t idx = base + (int32_t)ow * step;
    float v = src[idx], best = yr[ow];
    bool take = ((v > best) | (v != v)) & (best == best);
    yr[ow] = take ? v : best;
    ar[ow] = take ? idx : ar[ow];
  }
}

static void maxpool_row_update_s1(const float *src, float *yr, int32_t *ar, int64_t OW, int32_t base) {
  maxpool_row_update(src, yr, ar, OW, base, 1);
}

static void maxpool_row_update_s2(const float *src, float *yr, int32_t *ar, int64_t OW, int32_t base) {
  maxpool_row_update(src, yr, ar, OW, base, 2);
}

static void maxpool_row_update_any(const float *src, float *yr, int32_t *ar, int64_t OW, int32_t base, int32_t step) {
  if (step == 1) maxpool_row_update_s1(src, yr, ar, OW, base);
  else if (step == 2) maxpool_row_update_s2(src, yr, ar, OW, base);
  else maxpool_row_update(src, yr, ar, OW, base, step);
}

/* (best, at) becomes (v, idx) when v is larger or NaN and best is not NaN:
 * one step of the window scan (first maximum wins ties, first NaN wins). */
static inline void maxpool_take(float *best, int32_t *at, float v, int32_t idx) {
  int take = ((v > *best) | (v != v)) & (*best == *best);
  *best = take ? v : *best;
  *at = take ? idx : *at;
}

#ifdef __AVX2__
/* Eight outputs of a 2x2 stride-2 window row pair with AVX2: the even and
 * odd columns of both rows, then the scan's four steps as blends. The
 * compiler left these loops scalar (a branch per element on random data;
 * the pools were 10% of a LeNet training step). Past the row's end the
 * loads and stores are whole vectors while they stay inside the plane
 * (src_end, y_end: one past the input and output planes): the extra outputs
 * land on the next output row, which this thread writes next (the plane is
 * one thread's), and only a plane's last vectors are masked. LeNet's rows of
 * 14 and 5 outputs all ended in masked stores, half the pool's time. */
static void maxpool_2x2_row(const float *r0, const float *r1, float *y, int32_t *arg, int64_t n, int32_t i0,
                            int32_t w, const float *src_end, const float *y_end) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), lane2 = _mm256_add_epi32(lane, lane);
  for (int64_t j = 0; j < n; j += 8) {
    int cnt = n - j < 8 ? (int)(n - j) : 8;
    __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), lane);
    __m256i klo = _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * cnt), lane);
    __m256i khi = _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * cnt - 8), lane);
    bool whole_in = r1 + 2 * j + 16 <= src_end, whole_out = y + j + 8 <= y_end;
    __m256 v[4]; /* a b (row 0), c d (row 1): scan order */
    for (int r = 0; r < 2; r++) {
      const float *p = (r ? r1 : r0) + 2 * j;
      __m256 lo = whole_in ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, klo);
      __m256 hi = whole_in ? _mm256_loadu_ps(p + 8) : _mm256_maskload_ps(p + 8, khi);
      v[2 * r] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xd8));
      v[2 * r + 1] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xdd)), 0xd8));
    }
    __m256i base = _mm256_add_epi32(_mm256_set1_epi32(i0 + 2 * (int32_t)j), lane2);
    __m256i idx[4] = {base, _mm256_add_epi32(base, _mm256_set1_epi32(1)), _mm256_add_epi32(base, _mm256_set1_epi32(w)),
                      _mm256_add_epi32(base, _mm256_set1_epi32(w + 1))};
    __m256 best = v[0];
    __m256 at = _mm256_castsi256_ps(idx[0]);
    for (int k = 1; k < 4; k++) {
      __m256 take = _mm256_and_ps(_mm256_or_ps(_mm256_cmp_ps(v[k], best, _CMP_GT_OQ), _mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q)),
                                  _mm256_cmp_ps(best, best, _CMP_ORD_Q));
      best = _mm256_blendv_ps(best, v[k], take);
      at = _mm256_blendv_ps(at, _mm256_castsi256_ps(idx[k]), take);
    }
    if (whole_out) {
      _mm256_storeu_ps(y + j, best);
      _mm256_storeu_si256((__m256i *)(arg + j), _mm256_castps_si256(at));
    } else {
      _mm256_maskstore_ps(y + j, keep, best);
      _mm256_maskstore_epi32(arg + j, keep, _mm256_castps_si256(at));
    }
  }
}
#else
/* The same without AVX2: the scan's steps per output. */
static void maxpool_2x2_row(const float *r0, const float *r1, float *y, int32_t *arg, int64_t n, int32_t i0,
                            int32_t w, const float *src_end, const float *y_end) {
  (void)src_end, (void)y_end;
  for (int64_t j = 0; j < n; j++) {
    int32_t a = i0 + 2 * (int32_t)j;
    float best = r0[2 * j];
    maxpool_take(&best, &a, r0[2 * j + 1], i0 + 2 * (int32_t)j + 1);
    maxpool_take(&best, &a, r1[2 * j], i0 + 2 * (int32_t)j + w);
    maxpool_take(&best, &a, r1[2 * j + 1], i0 + 2 * (int32_t)j + w + 1);
    y[j] = best;
    arg[j] = a;
  }
}
#endif

/* The 2x2 stride-2 pool (LeNet's, VGG's) of one plane without padding. */
static void maxpool_plane_2x2(const pool_geom *g, const float *src, float *y, int32_t *arg) {
  const float *src_end = src + g->H * g->W, *y_end = y + g->OH * g->OW;
  for (int64_t oh = 0; oh < g->OH; oh++) {
    const float *r0 = src + 2 * oh * g->W;
    maxpool_2x2_row(r0, r0 + g->W, y + oh * g->OW, arg + oh * g->OW, g->OW, (int32_t)(2 * oh * g->W), (int32_t)g->W,
                    src_end, y_end);
  }
}

static void maxpool_plane_nopad(const pool_geom *g, const float *src, float *y, int32_t *arg) {
  if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2) {
    maxpool_plane_2x2(g, src, y, arg);
    return;
  }
  for (int64_t oh = 0; oh < g->OH; oh++) {
    float *yr = y + oh * g->OW;
    int32_t *ar = arg + oh * g->OW;
    int64_t h0 = oh * g->sh;
    for (int64_t ow = 0; ow < g->OW; ow++) {
      ar[ow] = (int32_t)(h0 * g->W + ow * g->sw);
      yr[ow] = src[ar[ow]];
    }
    for (int64_t ki = 0; ki < g->kh; ki++)
      for (int64_t kj = ki ? 0 : 1; kj < g->kw; kj++)
        maxpool_row_update_any(src, yr, ar, g->OW, (int32_t)((h0 + ki) * g->W + kj), (int32_t)g->sw);
  }
}

gr_tensor *gr_max_pool2d(gr_ctx *c, gr_tensor *x, const gr_pool2d_opts *o) {
  GR_NEED("max_pool2d", c);
  GR_NEED("max_pool2d", x);
  pool_geom g;
  if (!pool_geometry("max_pool2d", x, o, &g)) return NULL;
  gr_tensor *y = gr_tensor_new_uninit(c, 4, GR_SHAPE(x->shape[0], x->shape[1], g.OH, g.OW));
  int32_t *arg = y ? gr_scratch_uninit(c, (size_t)y->numel * sizeof(int32_t)) : NULL;
  if (!arg) return NULL;
#pragma omp parallel for schedule(static) if (y->numel * g.kh * g.kw > GR_PAR_MIN)
  for (int64_t p = 0; p < g.NC; p++) {
    const float *src = x->data + p * g.H * g.W;
    if (g.ph == 0 && g.pw == 0) {
      maxpool_plane_nopad(&g, src, y->data + p * g.OH * g.OW, arg + p * g.OH * g.OW);
      continue;
    }
    for (int64_t oh = 0; oh < g.OH; oh++)
      for (int64_t ow = 0; ow < g.OW; ow++) {
        float best = -INFINITY;
        int32_t at = -1;
        for (int64_t ki = 0; ki < g.kh; ki++) {
          int64_t ih = oh * g.sh - g.ph + ki;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t kj = 0; kj < g.kw; kj++) {
            int64_t iw = ow * g.sw - g.pw + kj;
            if (iw < 0 || iw >= g.W) continue;
            float v = src[ih * g.W + iw];
            if (v > best || at < 0 || isnan(v)) {
              best = v;
              at = (int32_t)(ih * g.W + iw);
              if (isnan(v)) ki = g.kh, kj = g.kw; /* NaN wins, as in PyTorch */
            }
          }
        }
        int64_t i = (p * g.OH + oh) * g.OW + ow;
        y->data[i] = best;
        arg[i] = at;
      }
  }
  gr_node *n = gr_tape_record(c, &OP_MAXPOOL, y, 1, &x);
  if (n) n->saved = arg;
  return y;
}

/* ---- average pool ------------------------------------------------------ */
/* The in-bounds part [h0,h1) x [w0,w1) of window (oh, ow), and its divisor:
 * the full kernel with count_include_pad, else the in-bounds area. */
static float avg_window(const pool_geom *g, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1, int64_t *w0,
                        int64_t *w1) {
  int64_t hs = oh * g->sh - g->ph, ws = ow * g->sw - g->pw;
  *h0 = hs < 0 ? 0 : hs;
  *w0 = ws < 0 ? 0 : ws;
  *h1 = hs + g->kh < g->H ? hs + g->kh : g->H;
  *w1 = ws + g->kw < g->W ? ws + g->kw : g->W;
  return g->include_pad ? (float)(g->kh * g->kw) : (float)((*h1 - *h0) * (*w1 - *w0));
}

static void avgpool_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  if (!x->requires_grad) return;
  const pool_geom *g = n->saved;
  const float *dy = n->out->grad;
  float *dx = gr_grad_buf(c, x);
  int64_t h0, h1, w0, w1;
  for (int64_t p = 0; p < g->NC; p++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        float div = avg_window(g, oh, ow, &h0, &h1, &w0, &w1);
        float gv = dy[(p * g->OH + oh) * g->OW + ow] / div;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) dx[(p * g->H + ih) * g->W + iw] += gv;
      }
}

static const gr_op_def OP_AVGPOOL = {"avg_pool2d", avgpool_backward};

gr_tensor *gr_avg_pool2d(gr_ctx *c, gr_tensor *x, const gr_pool2d_opts *o) {
  GR_NEED("avg_pool2d", c);
  GR_NEED("avg_pool2d", x);
  pool_geom g;
  if (!pool_geometry("avg_pool2d", x, o, &g)) return NULL;
  gr_tensor *y = gr_tensor_new(c, 4, GR_SHAPE(x->shape[0], x->shape[1], g.OH, g.OW));
  if (!y) return NULL;
#pragma omp parallel for schedule(static) if (y->numel * g.kh * g.kw > GR_PAR_MIN)
  for (int64_t p = 0; p < g.NC; p++)
    for (int64_t oh = 0; oh < g.OH; oh++)
      for (int64_t ow = 0; ow < g.OW; ow++) {
        int64_t h0, h1, w0, w1;
        float div = avg_window(&g, oh, ow, &h0, &h1, &w0, &w1);
        double acc = 0;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) acc += x->data[(p * g.H + ih) * g.W + iw];
        y->data[(p * g.OH + oh) * g.OW + ow] = (float)(acc / div);
      }
  gr_node *n = gr_tape_record(c, &OP_AVGPOOL, y, 1, &x);
  if (n) {
    n->saved = gr_scratch(c, sizeof g);
    if (!n->saved) return NULL;
    memcpy(n->saved, &g, sizeof g);
  }
  return y;
}

/* ---- global average pool ----------------------------------------------- */
static void gap_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  if (!x->requires_grad) return;
  int64_t plane = x->shape[2] * x->shape[3], NC = x->shape[0] * x->shape[1];
  float *dx = gr_grad_buf(c, x);
  const float *dy = n->out->grad;
  for (int64_t p = 0; p < NC; p++) {
    float gv = dy[p] / (float)plane;
    for (int64_t i = 0; i < plane; i++) dx[p * plane + i] += gv;
  }
}

static const gr_op_def OP_GAP = {"global_avg_pool", gap_backward};

gr_tensor *gr_global_avg_pool(gr_ctx *c, gr_tensor *x) {
  GR_NEED("global_avg_pool", c);
  GR_NEED("global_avg_pool", x);
  char sx[96];
  if (x->ndim != 4 || x->shape[2] * x->shape[3] == 0) {
    gr_error(GR_ESHAPE, "global_avg_pool: want x[N,C,H,W] with H,W >= 1, got x%s", gr_shape_str(x, sx, sizeof sx));
    return NULL;
  }
  gr_tensor *y = gr_tensor_new(c, 4, GR_SHAPE(x->shape[0], x->shape[1], 1, 1));
  if (!y) return NULL;
  int64_t plane = x->shape[2] * x->shape[3];
  for (int64_t p = 0; p < y->numel; p++) {
    double acc = 0;
    for (int64_t i = 0; i < plane; i++) acc += x->data[p * plane + i];
    y->data[p] = (float)(acc / (double)plane);
  }
  gr_tape_record(c, &OP_GAP, y, 1, &x);
  return y;
}
