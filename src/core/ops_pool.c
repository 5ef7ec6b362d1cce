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
/* dr[w] = g[w / 2] if arg[w / 2] == base + w, else 0, for w < 2*n: one row
 * of a 2-wide window's gradient. A select through integer masks, 8 columns a
 * vector with AVX2: the compiler's version of this loop was a branch per
 * element (half of a LeNet training step's time mispredicting). */
static void maxpool_row_grad_2wide(const float *g, const int32_t *arg, int64_t n, int32_t base, float *dr) {
  int64_t o = 0;
#ifdef __AVX2__
  const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3), lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (; o + 4 <= n; o += 4) {
    __m256 gv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(g + o)), dup);
    __m256i av = _mm256_permutevar8x32_epi32(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(arg + o))), dup);
    __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(base + 2 * (int32_t)o), lane);
    _mm256_storeu_ps(dr + 2 * o, _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(av, idx))));
  }
#endif
  for (; o < n; o++) {
    int32_t gb, at = base + 2 * (int32_t)o;
    __builtin_memcpy(&gb, g + o, sizeof gb);
    int32_t even = gb & -(int32_t)(arg[o] == at), odd = gb & -(int32_t)(arg[o] == at + 1);
    __builtin_memcpy(dr + 2 * o, &even, sizeof even);
    __builtin_memcpy(dr + 2 * o + 1, &odd, sizeof odd);
  }
}

/* One plane's dx = g routed to each window's argmax, for windows that tile
 * the plane (stride = kernel, no padding, H = OH*kh, W = OW*kw): every
 * element written once, g at its window's argmax and 0 elsewhere. Zeroing a
 * fresh grad, then scattering into it, was 6% of a LeNet training step (the
 * scalar adds waited on the zeroing's stores). */
static void maxpool_plane_grad_tiled(int64_t H, int64_t W, int64_t kh, int64_t kw, const float *g, const int32_t *arg,
                                     float *dx) {
  int64_t OW = W / kw;
  for (int64_t h = 0; h < H; h++) {
    const float *gr = g + (h / kh) * OW;
    const int32_t *ar = arg + (h / kh) * OW;
    float *dr = dx + h * W;
    int32_t base = (int32_t)(h * W);
    if (kw == 2) {
      maxpool_row_grad_2wide(gr, ar, OW, base, dr);
      continue;
    }
    for (int64_t w = 0; w < W; w++) dr[w] = 0.0f;
    for (int64_t o = 0; o < OW; o++)
      if (ar[o] >= base && ar[o] < base + W) dr[ar[o] - base] = gr[o];
  }
}

/* dx (+)= dy routed to each window's argmax; with the fused ReLU (i[0])
 * only where the output is positive (relu'(0) = 0, as PyTorch). i[1..6]:
 * kh, kw, sh, sw, ph, pw. */
static void maxpool_backward(gr_ctx *c, gr_node *n) {
  gr_tensor *x = n->in[0];
  if (!x->requires_grad) return;
  const int32_t *arg = n->saved;
  const int64_t *k = n->i + 1;
  int64_t H = x->shape[2], W = x->shape[3], plane_in = H * W, plane_out = n->out->shape[2] * n->out->shape[3];
  int64_t NC = x->shape[0] * x->shape[1];
  bool relu = n->i[0], fresh = false;
  bool tiled = k[2] == k[0] && k[3] == k[1] && !k[4] && !k[5] && H % k[0] == 0 && W % k[1] == 0 &&
               plane_out * k[0] * k[1] == plane_in;
  float *dx = tiled ? gr_grad_buf_fresh(c, x, &fresh) : gr_grad_buf(c, x);
  const float *dy = n->out->grad, *y = n->out->data;
#pragma omp parallel for schedule(static) if (x->numel > GR_PAR_MIN)
  for (int64_t p = 0; p < NC; p++) {
    float *d = dx + p * plane_in, gm[1024];
    const float *g = dy + p * plane_out, *yp = y + p * plane_out;
    const int32_t *a = arg + p * plane_out;
    for (int64_t i0 = 0; i0 < plane_out; i0 += 1024) { /* the gradient past the ReLU, a block at a time */
      int64_t m = plane_out - i0 < 1024 ? plane_out - i0 : 1024;
      for (int64_t i = 0; i < m; i++) gm[i] = !relu || yp[i0 + i] > 0 ? g[i0 + i] : 0.0f;
      if (fresh && m == plane_out) {
        maxpool_plane_grad_tiled(H, W, k[0], k[1], gm, a, d);
        break;
      }
      if (fresh && i0 == 0) memset(d, 0, (size_t)plane_in * sizeof(float));
      for (int64_t i = 0; i < m; i++) d[a[i0 + i]] += gm[i];
    }
  }
}

static const gr_op_def OP_MAXPOOL = {"max_pool2d", maxpool_backward};
static const gr_op_def OP_MAXPOOL_RELU = {"max_pool2d_relu", maxpool_backward};

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

/* One plane of any geometry: the window scan with bounds checks. */
static void maxpool_plane_general(const pool_geom *g, const float *src, float *y, int32_t *arg) {
  for (int64_t oh = 0; oh < g->OH; oh++)
    for (int64_t ow = 0; ow < g->OW; ow++) {
      float best = -INFINITY;
      int32_t at = -1;
      for (int64_t ki = 0; ki < g->kh; ki++) {
        int64_t ih = oh * g->sh - g->ph + ki;
        if (ih < 0 || ih >= g->H) continue;
        for (int64_t kj = 0; kj < g->kw; kj++) {
          int64_t iw = ow * g->sw - g->pw + kj;
          if (iw < 0 || iw >= g->W) continue;
          float v = src[ih * g->W + iw];
          if (v > best || at < 0 || isnan(v)) {
            best = v;
            at = (int32_t)(ih * g->W + iw);
            if (isnan(v)) ki = g->kh, kj = g->kw; /* NaN wins, as in PyTorch */
          }
        }
      }
      y[oh * g->OW + ow] = best;
      arg[oh * g->OW + ow] = at;
    }
}

/* y = max_pool2d(x), then relu(y) in place when `relu` (while the plane is
 * in cache): max and ReLU commute, so this is also max_pool2d(relu(x)) on a
 * quarter of the elements for 2x2 windows. NaN stays NaN (PyTorch's relu
 * and max pool both propagate it). */
static gr_tensor *max_pool(gr_ctx *c, const gr_op_def *def, gr_tensor *x, const gr_pool2d_opts *o, bool relu) {
  GR_NEED(def->name, c);
  GR_NEED(def->name, x);
  pool_geom g;
  if (!pool_geometry(def->name, x, o, &g)) return NULL;
  gr_tensor *y = gr_tensor_new_uninit(c, 4, GR_SHAPE(x->shape[0], x->shape[1], g.OH, g.OW));
  int32_t *arg = y ? gr_scratch_uninit(c, (size_t)y->numel * sizeof(int32_t)) : NULL;
  if (!arg) return NULL;
  int64_t plane_out = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (y->numel * g.kh * g.kw > GR_PAR_MIN)
  for (int64_t p = 0; p < g.NC; p++) {
    const float *src = x->data + p * g.H * g.W;
    float *yp = y->data + p * plane_out;
    if (g.ph == 0 && g.pw == 0) maxpool_plane_nopad(&g, src, yp, arg + p * plane_out);
    else maxpool_plane_general(&g, src, yp, arg + p * plane_out);
    if (relu)
      for (int64_t i = 0; i < plane_out; i++) yp[i] = yp[i] > 0 || yp[i] != yp[i] ? yp[i] : 0.0f;
  }
  gr_node *n = gr_tape_record(c, def, y, 1, &x);
  if (n) {
    n->saved = arg;
    int64_t geom[] = {relu, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw};
    memcpy(n->i, geom, sizeof geom);
  }
  return y;
}

gr_tensor *gr_max_pool2d(gr_ctx *c, gr_tensor *x, const gr_pool2d_opts *o) {
  return max_pool(c, &OP_MAXPOOL, x, o, false);
}

gr_tensor *gr_max_pool2d_relu(gr_ctx *c, gr_tensor *x, const gr_pool2d_opts *o) {
  return max_pool(c, &OP_MAXPOOL_RELU, x, o, true);
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
