/* core/ops_conv.c — 2-D convolution (NCHW) lowered to sgemm.
 *
 * Lowering: the batch is cut into chunks of nb samples whose columns fit in
 * L2 (see chunk_samples); for each chunk and group, the lowering gives
 * col [Cg*kh*kw, nb*cols]; one gemm w_g [Og, Cg*kh*kw] @ col gives the
 * group's output as [Og, nb*cols], copied to y [N,O,OH,OW] with the bias
 * added. Backward recomputes each chunk's col from x: dW_g += dY_g col^T,
 * dcol = W_g^T dY_g, dx += col2im(dcol). Valid convolutions (stride 1, no
 * padding or dilation: LeNet's second) take y and dW from conv_valid.c's
 * direct kernels instead (dW chunk by chunk as the gemm did); dx stays a
 * gemm + col2im.
 *
 * The lowering is "wide": output (oh, ow) is column oh*Wq + ow of a plane
 * of pitch Wq, so the row of col for channel c and kernel tap (ki, kj) is
 * one contiguous slice of an input plane, and im2col is Cg*kh*kw long
 * memcpys (copies of OW-float rows were a third of a LeNet training step)
 * and col2im as many long vector adds. cols = (OH-1)*Wq + OW columns per
 * sample; the Wq-OW columns after each output row are garbage that is never
 * copied out (and whose dY is 0 in backward, so they add nothing). With
 * stride 1 and no padding the planes are x itself (Wq = W). Otherwise a
 * chunk's input is copied zero-padded and split into sh*sw phases: phase
 * (a, b) holds the padded rows sh*h'+a and columns sw*w'+b, [Hq, Wq] with
 * Hq = ceil(Hp/sh), Wq = ceil(Wp/sw), so a strided tap reads phase
 * (ki*dh % sh, kj*dw % sw) from row ki*dh/sh, column kj*dw/sw on, and is a
 * slice again. Backward adds the phases back into dx.
 * Same-size convolutions (stride 1, OH = H, OW = W: LeNet's padded first
 * conv, every stride-1 conv of a ResNet) take neither path: see "same-size
 * convolutions" below.
 * Threads: the chunks (and same-size samples) run in parallel, each thread
 * with its own buffers, one fork and join per convolution; the weight
 * gradients add up in an order fixed by the batch alone (sample_blocks), so
 * the bits do not depend on the thread count. With a single chunk (batch 1)
 * the copy loops run under OpenMP instead (over col rows, and over input
 * channels for col2im so no two threads write the same element) and
 * gr_sgemm_rm splits large gemms. Not here: transposed convolution. */
#include <cblas.h>
#include <omp.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "core/conv_direct.h"
#include "core/conv_valid.h"
#include "core/conv_winograd.h"
#include "core/op.h"

typedef struct conv_geom {
  int64_t N, C, H, W, O, kh, kw, OH, OW;
  int64_t sh, sw, ph, pw, dh, dw, g, Cg, Og;
  int64_t K;  /* Cg*kh*kw: rows of col */
  bool same;        /* stride 1, OH = H, OW = W: the shifted-plane path (file comment) */
  bool copy;        /* planes are a padded, phase-split copy (else x itself) */
  int64_t Hq, Wq;   /* one phase plane (file comment); H, W without copy */
  int64_t cplane;   /* floats per input channel: sh*sw*Hq*Wq */
  int64_t cols;     /* columns of col per sample: (OH-1)*Wq + OW */
  float *planes;    /* phased direct path: forward's planes of sample n, group gi at
                       (n*g + gi)*plane_pitch, kept for dW (NULL: dW copies again) */
  int64_t plane_pitch;
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
  g->same = g->sh == 1 && g->sw == 1 && g->OH == g->H && g->OW == g->W;
  g->copy = g->sh != 1 || g->sw != 1 || g->ph || g->pw;
  g->Hq = (g->H + 2 * g->ph + g->sh - 1) / g->sh;
  g->Wq = (g->W + 2 * g->pw + g->sw - 1) / g->sw;
  g->cplane = g->sh * g->sw * g->Hq * g->Wq;
  g->cols = (g->OH - 1) * g->Wq + g->OW;
  return true;
}

/* [lo, hi): the outputs o < n whose input index o*stride + off lies in
 * [0, len); outside it the input is padding. */
static void valid_span(int64_t n, int64_t stride, int64_t off, int64_t len, int64_t *lo, int64_t *hi) {
  int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t b = len - off <= 0 ? 0 : (len - off - 1) / stride + 1;
  if (b > n) b = n;
  *lo = a < b ? a : b;
  *hi = b;
}

/* Samples per chunk: the columns of one chunk, [K, nb*cols], stay within
 * CONV_CHUNK_FLOATS (256 KiB, half an L2) so im2col writes them, sgemm
 * packs them and col2im reads them back while they are in cache. Lowering
 * the whole batch at once streamed up to 19 MB of columns through memory
 * per layer and kept them for backward (the peak RSS of a small ResNet).
 * nb is a power of two: a batch split over data-parallel ranks (power-of-
 * two shares) then runs the same gemm shapes as the whole batch, so each
 * sample's output rounds the same (OpenBLAS picks its kernel by shape; a
 * different last chunk made 2-rank LeNet training drift 3e-2 from 1 process
 * in 100 steps, tests/mpi/cli_train_dp.sh). */
#define CONV_CHUNK_FLOATS (64 * 1024)

static int64_t chunk_samples(const conv_geom *g) {
  int64_t fit = CONV_CHUNK_FLOATS / (g->K * g->cols), nb = 1;
  while (nb * 2 <= fit && nb * 2 <= g->N) nb *= 2;
  return nb;
}

/* The row of x that row hq of row phase a holds, or -1 in the padding. */
static int64_t phase_row_of(const conv_geom *g, int64_t a, int64_t hq) {
  int64_t h = g->sh * hq + a - g->ph;
  return h >= 0 && h < g->H ? h : -1;
}

/* Whether some kernel tap reads phase (a, b) (a 1x1 stride-2 kernel reads
 * only phase (0, 0); the others are not copied). */
static bool phase_used(const conv_geom *g, int64_t a, int64_t b) {
  bool row = false, col = false;
  for (int64_t ki = 0; ki < g->kh; ki++) row |= ki * g->dh % g->sh == a;
  for (int64_t kj = 0; kj < g->kw; kj++) col |= kj * g->dw % g->sw == b;
  return row && col;
}

/* Phase (a, b) of one input plane x [H, W], padded: d [Hq, Wq], zero where
 * the padded position lies outside x. */
static void phase_plane(const conv_geom *g, const float *x, int64_t a, int64_t b, float *d) {
  int64_t lo, hi, Wq = g->Wq, sw = g->sw;
  valid_span(Wq, sw, b - g->pw, g->W, &lo, &hi); /* columns inside x, the same for every row */
  for (int64_t hq = 0; hq < g->Hq; hq++) {
    float *row = d + hq * Wq;
    int64_t h = phase_row_of(g, a, hq);
    if (h < 0) {
      for (int64_t w = 0; w < Wq; w++) row[w] = 0.0f;
      continue;
    }
    for (int64_t w = 0; w < lo; w++) row[w] = 0.0f;
    int64_t at = h * g->W + b - g->pw; /* column w is x[at + w*sw], inside x for w in [lo, hi) */
    if (sw == 1)
      for (int64_t w = lo; w < hi; w++) row[w] = x[at + w];
    else if (sw == 2) /* a constant stride vectorizes (the variable-stride loop was half of this copy) */
      for (int64_t w = lo; w < hi; w++) row[w] = x[at + 2 * w];
    else
      for (int64_t w = lo; w < hi; w++) row[w] = x[at + w * sw];
    for (int64_t w = hi; w < Wq; w++) row[w] = 0.0f;
  }
}

/* Columns 2m and 2m+1 of an x row to e[m] and o[m], m < n: the stride-2
 * column split of both column phases in one pass over the row. */
static void deinterleave2(const float *s, int64_t n, float *e, float *o) {
  int64_t m = 0;
#ifdef __AVX2__
  for (; m + 8 <= n; m += 8) {
    __m256 v0 = _mm256_loadu_ps(s + 2 * m), v1 = _mm256_loadu_ps(s + 2 * m + 8);
    __m256d ev = _mm256_castps_pd(_mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0)));
    __m256d ov = _mm256_castps_pd(_mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1)));
    _mm256_storeu_ps(e + m, _mm256_castpd_ps(_mm256_permute4x64_pd(ev, _MM_SHUFFLE(3, 1, 2, 0))));
    _mm256_storeu_ps(o + m, _mm256_castpd_ps(_mm256_permute4x64_pd(ov, _MM_SHUFFLE(3, 1, 2, 0))));
  }
#endif
  for (; m < n; m++) {
    e[m] = s[2 * m];
    o[m] = s[2 * m + 1];
  }
}

/* deinterleave2's inverse, added: s[2m] += e[m], s[2m+1] += o[m], m < n
 * (assigned instead when not add). */
static void interleave2_put(const float *e, const float *o, int64_t n, float *s, bool add) {
  int64_t m = 0;
#ifdef __AVX2__
  for (; m + 8 <= n; m += 8) {
    __m256 ev = _mm256_loadu_ps(e + m), ov = _mm256_loadu_ps(o + m);
    __m256 lo = _mm256_unpacklo_ps(ev, ov), hi = _mm256_unpackhi_ps(ev, ov);
    __m256 first = _mm256_permute2f128_ps(lo, hi, 0x20), second = _mm256_permute2f128_ps(lo, hi, 0x31);
    _mm256_storeu_ps(s + 2 * m, add ? _mm256_add_ps(_mm256_loadu_ps(s + 2 * m), first) : first);
    _mm256_storeu_ps(s + 2 * m + 8, add ? _mm256_add_ps(_mm256_loadu_ps(s + 2 * m + 8), second) : second);
  }
#endif
  for (; m < n; m++) {
    s[2 * m] = add ? s[2 * m] + e[m] : e[m];
    s[2 * m + 1] = add ? s[2 * m + 1] + o[m] : o[m];
  }
}

/* With stride 2 across columns and both column phases read, row hq of phase
 * (a, 0) and (a, 1) come from one pass over x's row: x column c sits at
 * padded column c + pw, so even columns go to phase pw%2 from column pw/2 on,
 * odd ones to the other phase from (pw+1)/2 on. */
static bool column_pair(const conv_geom *g, int64_t a) {
  return g->sw == 2 && phase_used(g, a, 0) && phase_used(g, a, 1);
}

/* Where even and odd columns start, from row hq of phase (a, 0); phase
 * (a, 1) lies one phase plane (Hq*Wq) further. */
static void pair_starts(const conv_geom *g, int64_t *even, int64_t *odd) {
  int64_t pq = g->Hq * g->Wq;
  *even = (g->pw % 2 ? pq : 0) + g->pw / 2;
  *odd = (g->pw % 2 ? 0 : pq) + (g->pw + 1) / 2;
}

/* row[w] = 0 for w < lo and lo + n <= w < Wq: the padding around n copied
 * values (mostly one float a side: a store, not a memset call). */
static void zero_around(float *row, int64_t Wq, int64_t lo, int64_t n) {
  int64_t hi = lo + n;
  if (lo == 1) row[0] = 0.0f;
  else if (lo > 1) memset(row, 0, (size_t)lo * sizeof(float));
  if (Wq - hi == 1) row[hi] = 0.0f;
  else if (Wq - hi > 1) memset(row + hi, 0, (size_t)(Wq - hi) * sizeof(float));
}

/* Phases (a, 0) and (a, 1) of one input plane x [H, W]: d [2, Hq, Wq]. */
static void phase_plane_pair(const conv_geom *g, const float *x, int64_t a, float *d) {
  int64_t Wq = g->Wq, pq = g->Hq * Wq, half = g->W / 2, ev, od;
  pair_starts(g, &ev, &od);
  for (int64_t hq = 0; hq < g->Hq; hq++) {
    float *r0 = d + hq * Wq, *r1 = r0 + pq, *e = r0 + ev, *o = r0 + od;
    int64_t h = phase_row_of(g, a, hq);
    if (h < 0) {
      zero_around(r0, Wq, 0, 0);
      zero_around(r1, Wq, 0, 0);
      continue;
    }
    /* only the padding is zeroed (whole rows were a third of this copy's stores) */
    zero_around(r0 + (ev >= pq ? pq : 0), Wq, ev % pq, half + g->W % 2);
    zero_around(r0 + (od >= pq ? pq : 0), Wq, od % pq, half);
    deinterleave2(x + h * g->W, half, e, o);
    if (g->W % 2) e[half] = x[h * g->W + g->W - 1];
  }
}

/* Group gi of samples n0..n0+nb-1 copied to xp [nb, Cg, sh*sw, Hq, Wq]:
 * padded and split into phases (file comment). */
static void phase_chunk(const conv_geom *g, const float *x, int64_t gi, int64_t n0, int64_t nb, float *xp) {
  int64_t pq = g->Hq * g->Wq;
#pragma omp parallel for schedule(static) if (nb * g->Cg * g->cplane > GR_PAR_MIN)
  for (int64_t jc = 0; jc < nb * g->Cg; jc++) {
    const float *s = x + ((n0 + jc / g->Cg) * g->C + gi * g->Cg + jc % g->Cg) * g->H * g->W;
    for (int64_t a = 0; a < g->sh; a++) {
      float *d = xp + jc * g->cplane + a * g->sw * pq;
      if (column_pair(g, a)) {
        phase_plane_pair(g, s, a, d);
        continue;
      }
      for (int64_t b = 0; b < g->sw; b++)
        if (phase_used(g, a, b)) phase_plane(g, s, a, b, d + b * pq);
    }
  }
}

/* dx plane d [H, W] += phases (a, 0) and (a, 1) of dxp: s [2, Hq, Wq]. */
static void unphase_pair_add(const conv_geom *g, const float *s, int64_t a, float *d) {
  int64_t half = g->W / 2, ev, od;
  pair_starts(g, &ev, &od);
  for (int64_t hq = 0; hq < g->Hq; hq++) {
    int64_t h = phase_row_of(g, a, hq);
    if (h < 0) continue;
    const float *e = s + hq * g->Wq + ev, *o = s + hq * g->Wq + od;
    interleave2_put(e, o, half, d + h * g->W, true);
    if (g->W % 2) d[h * g->W + g->W - 1] += e[half];
  }
}

/* dx += phase_chunk's layout dxp, added back to where it came from. */
static void unphase_add(const conv_geom *g, const float *dxp, int64_t gi, int64_t n0, int64_t nb, float *dx) {
  int64_t nph = g->sh * g->sw;
#pragma omp parallel for schedule(static) if (nb * g->Cg * g->cplane > GR_PAR_MIN)
  for (int64_t jc = 0; jc < nb * g->Cg; jc++) {
    float *d = dx + ((n0 + jc / g->Cg) * g->C + gi * g->Cg + jc % g->Cg) * g->H * g->W;
    for (int64_t p = 0; p < nph; p++) {
      int64_t a = p / g->sw, b = p % g->sw, lo, hi;
      if (b == 0 && column_pair(g, a)) {
        unphase_pair_add(g, dxp + jc * g->cplane + p * g->Hq * g->Wq, a, d);
        p++; /* phase (a, 1) done too */
        continue;
      }
      valid_span(g->Wq, g->sw, b - g->pw, g->W, &lo, &hi);
      if (!phase_used(g, a, b)) continue;
      for (int64_t hq = 0; hq < g->Hq; hq++) {
        int64_t h = phase_row_of(g, a, hq);
        if (h < 0) continue;
        const float *s = dxp + jc * g->cplane + (p * g->Hq + hq) * g->Wq;
        int64_t at = h * g->W + b - g->pw; /* column w goes to d[at + w*sw] */
        if (g->sw == 1)
          for (int64_t w = lo; w < hi; w++) d[at + w] += s[w];
        else if (g->sw == 2)
          for (int64_t w = lo; w < hi; w++) d[at + 2 * w] += s[w];
        else
          for (int64_t w = lo; w < hi; w++) d[at + w * g->sw] += s[w];
      }
    }
  }
}

/* Where sample j's input planes of group gi start (planes + j * *sample_stride):
 * in xp (phase_chunk's copy) when the geometry needs one, else in x. */
static float *chunk_planes(const conv_geom *g, float *x, float *xp, int64_t gi, int64_t n0, int64_t *sample_stride) {
  *sample_stride = g->copy ? g->Cg * g->cplane : g->C * g->H * g->W;
  return g->copy ? xp : x + (n0 * g->C + gi * g->Cg) * g->H * g->W;
}

/* Offset in a sample's planes of the slice that row r = (c, ki, kj) of col copies. */
static int64_t tap_offset(const conv_geom *g, int64_t r) {
  int64_t kk = g->kh * g->kw, k = r % kk, ti = (k / g->kw) * g->dh, tj = (k % g->kw) * g->dw;
  int64_t phase = (ti % g->sh) * g->sw + tj % g->sw;
  return (r / kk) * g->cplane + (phase * g->Hq + ti / g->sh) * g->Wq + tj / g->sw;
}

/* col[r, j*cols + q] = planes_j[tap_offset(r) + q]: one memcpy per row and sample. */
static void im2col(const conv_geom *g, const float *planes, int64_t sample_stride, int64_t nb, float *col) {
  int64_t width = nb * g->cols;
#pragma omp parallel for schedule(static) if (g->K * width > GR_PAR_MIN)
  for (int64_t r = 0; r < g->K; r++) {
    const float *s = planes + tap_offset(g, r);
    for (int64_t j = 0; j < nb; j++)
      memcpy(col + r * width + j * g->cols, s + j * sample_stride, (size_t)g->cols * sizeof(float));
  }
}

/* planes_j[tap_offset(r) + q] += dcol[r, j*cols + q]; parallel over input
 * channels (the slices of one channel overlap). */
static void col2im(const conv_geom *g, const float *dcol, float *planes, int64_t sample_stride, int64_t nb) {
  int64_t kk = g->kh * g->kw, width = nb * g->cols, cols = g->cols;
#pragma omp parallel for schedule(static) if (g->K * width > GR_PAR_MIN)
  for (int64_t cl = 0; cl < g->Cg; cl++)
    for (int64_t r = cl * kk; r < (cl + 1) * kk; r++)
      for (int64_t j = 0; j < nb; j++) {
        float *d = planes + j * sample_stride + tap_offset(g, r);
        const float *s = dcol + r * width + j * cols;
        for (int64_t q = 0; q < cols; q++) d[q] += s[q];
      }
}

/* col for group gi of samples n0..n0+nb-1; xp is the chunk's plane buffer
 * (NULL when the geometry needs no copy). */
static void lower_chunk(const conv_geom *g, const float *x, float *xp, int64_t gi, int64_t n0, int64_t nb,
                        float *col) {
  if (g->copy) phase_chunk(g, x, gi, n0, nb, xp);
  int64_t stride;
  const float *planes = chunk_planes(g, (float *)x, xp, gi, n0, &stride);
  im2col(g, planes, stride, nb, col);
}

/* dx += col2im(dcol) for group gi of samples n0..n0+nb-1; dxp as xp above. */
static void raise_chunk(const conv_geom *g, const float *dcol, float *dxp, int64_t gi, int64_t n0, int64_t nb,
                        float *dx) {
  if (g->copy) memset(dxp, 0, (size_t)(nb * g->Cg * g->cplane) * sizeof(float));
  int64_t stride;
  float *planes = chunk_planes(g, dx, dxp, gi, n0, &stride);
  col2im(g, dcol, planes, stride, nb);
  if (g->copy) unphase_add(g, dxp, gi, n0, nb, dx);
}

/* Copies group gi of samples n0..n0+nb-1 between the gemm layout
 * grp [Og, nb, cols] (output rows Wq apart) and the tensor layout
 * nchw [N, O, OH, OW]. To nchw it adds the bias (when given) on the way,
 * while the rows are in cache; to grp it zero-fills the garbage columns
 * (so they add nothing in backward). */
static void relayout(const conv_geom *g, int64_t gi, int64_t n0, int64_t nb, float *grp, float *nchw, bool to_nchw,
                     const float *bias) {
  int64_t pitch = g->Wq, gap = pitch - g->OW;
  int64_t rows = gap ? g->OH : 1, len = gap ? g->OW : g->OH * g->OW; /* no gaps: one row per plane */
#pragma omp parallel for schedule(static) if (g->Og * nb * g->cols > GR_PAR_MIN)
  for (int64_t o = 0; o < g->Og; o++)
    for (int64_t j = 0; j < nb; j++) {
      float *a = nchw + ((n0 + j) * g->O + gi * g->Og + o) * g->OH * g->OW;
      float *b = grp + (o * nb + j) * g->cols;
      float bv = bias ? bias[gi * g->Og + o] : 0.0f;
      for (int64_t row = 0; row < rows; row++) {
        float *ar = a + row * len, *br = b + row * pitch;
        if (!to_nchw) {
          memcpy(br, ar, (size_t)len * sizeof(float));
          if (gap && row + 1 < rows) memset(br + len, 0, (size_t)gap * sizeof(float));
        } else if (bias) {
          for (int64_t i = 0; i < len; i++) ar[i] = br[i] + bv;
        } else {
          memcpy(ar, br, (size_t)len * sizeof(float));
        }
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

/* The plane buffer of one chunk (NULL when the geometry needs no copy). */
static float *pad_scratch(gr_ctx *c, const conv_geom *g, bool *ok) {
  if (!g->copy) return NULL;
  float *p = gr_scratch_uninit(c, (size_t)(chunk_samples(g) * g->Cg * g->cplane) * sizeof(float));
  *ok = *ok && p;
  return p;
}

/* ---- same-size convolutions -------------------------------------------------
 * With stride 1, OH = H and OW = W, output (h, w) reads input
 * (h + ki*dh - ph, w + kj*dw - pw), and one sample's output planes are
 * [Og, H*W] with no garbage columns, so these convolutions run a sample
 * and group at a time (which also keeps a data-parallel split of the batch
 * on the same shapes) and need no relayout. With AVX2 the direct kernels of
 * conv_direct.c compute them from a zero-padded copy of the sample's planes
 * (no lowering, no gemm packing); otherwise, and for 1x1 kernels, a gemm
 * against the shifted-plane lowering: the row of col for (c, ki, kj) is
 * plane c shifted by (ki*dh - ph)*W + kj*dw - pw floats, zero where the
 * shifted position leaves the plane (whole rows at the top or bottom, the
 * first or last |kj*dw - pw| columns of each row); a 1x1 kernel lowers to
 * the planes themselves. dx is the same convolution of dY with the kernel
 * flipped and transposed, wflip[c, o, ki, kj] = w[o, c, kh-1-ki, kw-1-kj]
 * (same padding: 2*ph = dh*(kh-1)). dW = dY col^T is a gemm. The samples
 * run in parallel, each thread with its own padded copies (one fork and
 * join per convolution: per sample, the forks cost more than the kernels
 * gained on 2 cores); their weight gradients add up as in one thread
 * (sample_blocks). */

/* col[r, q] for rows r = (c, ki, kj), c < nch, of planes src [nch, H, W]:
 * src[c] shifted by ki*dh - ph rows and kj*dw - pw columns, 0 where that
 * falls outside the plane. */
static void shift_lower(const conv_geom *g, const float *src, int64_t nch, float *col) {
  int64_t H = g->H, W = g->W, HW = H * W, kk = g->kh * g->kw;
#pragma omp parallel for schedule(static) if (nch * kk * HW > GR_PAR_MIN)
  for (int64_t r = 0; r < nch * kk; r++) {
    int64_t t = r % kk, dr = (t / g->kw) * g->dh - g->ph, dc = (t % g->kw) * g->dw - g->pw;
    int64_t off = dr * W + dc, h0 = dr < 0 ? -dr : 0, h1 = H - (dr > 0 ? dr : 0); /* rows h: h + dr inside */
    if (h0 > H) h0 = H;
    if (h1 < h0) h1 = h0;
    /* q + off must stay in the plane: a shifted first or last column may
     * not be (it is an edge column, zeroed below) */
    int64_t q0 = h0 * W > -off ? h0 * W : -off, q1 = h1 * W < HW - off ? h1 * W : HW - off;
    if (q0 > HW) q0 = HW; /* padding taller than the plane: nothing inside */
    if (q1 < q0) q1 = q0;
    const float *s = src + (r / kk) * HW;
    float *d = col + r * HW;
    memset(d, 0, (size_t)q0 * sizeof(float));
    if (q1 > q0) memcpy(d + q0, s + q0 + off, (size_t)(q1 - q0) * sizeof(float));
    memset(d + q1, 0, (size_t)(HW - q1) * sizeof(float));
    int64_t edge = dc < 0 ? -dc : dc;
    if (edge > W) edge = W;
    for (int64_t h = h0; edge && h < h1; h++) {
      float *e = d + h * W + (dc < 0 ? 0 : W - edge);
      for (int64_t i = 0; i < edge; i++) e[i] = 0.0f;
    }
  }
}

static bool same_direct(const conv_geom *g) {
  return g->kh * g->kw > 1 && g->kh * g->kw <= GR_CONV_TAPS_MAX && gr_conv_direct_available();
}

static gr_conv_direct same_direct_geom(const conv_geom *g, int64_t cin, int64_t cout) {
  return (gr_conv_direct){cin, cout, g->H, g->W, g->kh, g->kw, g->dh, g->dw, g->ph, g->pw};
}

/* Floats of same_conv_group's scratch from cin to cout planes: the padded
 * input (+ Winograd's transforms after it, in whole cache lines). */
static int64_t same_scratch_floats(const conv_geom *g, int64_t cin, int64_t cout) {
  if (same_direct(g)) {
    gr_conv_direct d = same_direct_geom(g, cin, cout);
    int64_t pad = (gr_conv_direct_pad_floats(&d) + 15) / 16 * 16;
    return pad + (gr_conv_wino_fits(&d) ? gr_conv_wino_scratch_floats(&d) : 0);
  }
  return g->kh * g->kw > 1 ? cin * g->kh * g->kw * g->H * g->W : 0;
}

/* Winograd's weights of every group, [g][16][cout][cin] (conv_winograd.h),
 * for the same-size convolution from cin to cout planes a group with
 * kernels wk [g][cout][cin][kh][kw]; NULL when Winograd does not fit it
 * (and *ok false when out of memory). */
static float *same_wino_weights(gr_ctx *c, const conv_geom *g, int64_t cin, int64_t cout, const float *wk, bool *ok) {
  gr_conv_direct d = same_direct_geom(g, cin, cout);
  if (!same_direct(g) || !gr_conv_wino_fits(&d)) return NULL;
  float *u = gr_scratch_uninit(c, (size_t)(g->g * 16 * cout * cin) * sizeof(float));
  *ok = *ok && u;
  for (int64_t gi = 0; u && gi < g->g; gi++)
    gr_conv_wino_weights(cout, cin, wk + gi * cout * cin * 9, u + gi * 16 * cout * cin);
  return u;
}

/* One sample's group: y [cout, H, W] (+= when accumulate) conv(x [cin, H, W],
 * wk [cout, cin, kh, kw]) + b, by Winograd when wu (the group's
 * same_wino_weights) is given; scratch as same_scratch_floats, already
 * holding a padded input of this geometry when `reused`. */
static void same_conv_group(const conv_geom *g, int64_t cin, int64_t cout, const float *x, const float *wk,
                            const float *wu, const float *b, bool accumulate, float *scratch, bool reused, float *y) {
  int64_t HW = g->H * g->W, kk = g->kh * g->kw;
  if (same_direct(g)) {
    gr_conv_direct d = same_direct_geom(g, cin, cout);
    gr_conv_taps t;
    gr_conv_direct_pad(&d, x, scratch, reused);
    if (wu) {
      float *wino = scratch + (gr_conv_direct_pad_floats(&d) + 15) / 16 * 16;
      gr_conv_wino_forward(&d, scratch, wu, b, accumulate, wino, y);
      return;
    }
    gr_conv_direct_taps(&d, &t);
    gr_conv_taps_forward(&t, scratch, wk, b, accumulate, y);
    return;
  }
  if (kk > 1) shift_lower(g, x, cin, scratch);
  for (int64_t o = 0; b && o < cout; o++) /* the bias first, the gemm adds (no bias when accumulating) */
    for (int64_t q = 0; q < HW; q++) y[o * HW + q] = b[o];
  gr_sgemm_rm(false, false, cout, HW, cin * kk, wk, cin * kk, kk > 1 ? scratch : x, HW, b || accumulate ? 1 : 0, y,
              HW);
}

/* Samples in parallel, each thread with its own padded-input scratch
 * (scratch holds `per` floats per thread): a sample's output does not
 * depend on the thread count. */
static void same_forward(const conv_geom *g, const float *x, const float *w, const float *wu, const float *b,
                         float *scratch, int64_t per, int T, float *y) {
  int64_t HW = g->H * g->W;
#pragma omp parallel num_threads(T) if (T > 1)
  {
    float *own = scratch + omp_get_thread_num() * per;
    bool padded = false;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g->N; n++)
      for (int64_t gi = 0; gi < g->g; gi++, padded = true)
        same_conv_group(g, g->Cg, g->Og, x + (n * g->C + gi * g->Cg) * HW, w + gi * g->Og * g->K,
                        wu ? wu + gi * 16 * g->Og * g->Cg : NULL, b ? b + gi * g->Og : NULL, false, own, padded,
                        y + (n * g->O + gi * g->Og) * HW);
  }
}

/* wflip[gi][c][o][kh-1-ki][kw-1-kj] = w[gi*Og + o][c][ki][kj]: each group's kernel for dx. */
static void same_kernel_for_dx(const conv_geom *g, const float *w, float *wflip) {
  int64_t kk = g->kh * g->kw;
  for (int64_t gi = 0; gi < g->g; gi++)
    for (int64_t ch = 0; ch < g->Cg; ch++)
      for (int64_t o = 0; o < g->Og; o++)
        for (int64_t t = 0; t < kk; t++)
          wflip[((gi * g->Cg + ch) * g->Og + o) * kk + kk - 1 - t] = w[((gi * g->Og + o) * g->Cg + ch) * kk + t];
}

/* Per-sample weight gradients summed as a binary tree over the samples:
 * level l holds the sum of a block of 2^l consecutive samples (left +
 * right). A batch split over a power-of-two number of data-parallel ranks,
 * each rank summing its share and the allreduce adding the shares, then
 * gives one process's sum bit for bit; with a running sum 2-rank LeNet
 * training drifted 3e-2 from one process in 100 steps
 * (tests/mpi/cli_train_dp.sh). `part` receives the next sample's gradient. */
typedef struct sample_tree {
  float *level[64], *part;
  int64_t n;     /* floats per gradient */
  uint64_t full; /* bit l: level l holds a block */
} sample_tree;

static bool sample_tree_init(gr_ctx *c, sample_tree *t, int64_t n, int64_t samples) {
  *t = (sample_tree){.n = n};
  bool ok = (t->part = gr_scratch_uninit(c, (size_t)n * sizeof(float))) != NULL;
  for (int l = 0; ok && (l == 0 || ((int64_t)1 << l) <= samples); l++)
    ok = (t->level[l] = gr_scratch_uninit(c, (size_t)n * sizeof(float))) != NULL;
  return ok;
}

/* Adds part, the sum of the block of 2^l0 samples that follows those pushed
 * so far (the levels below l0 are empty), to the tree: full levels from l0
 * up to the first empty one are summed into it, as binary carries. */
static void sample_tree_push_at(sample_tree *t, int l0) {
  float *carry = t->part;
  int l = l0;
  for (; t->full >> l & 1; l++)
    for (int64_t i = 0; i < t->n; i++) carry[i] = t->level[l][i] + carry[i];
  t->part = t->level[l];
  t->level[l] = carry;
  t->full = (t->full & ~(((uint64_t)1 << l) - 1)) | (uint64_t)1 << l;
}

/* The sum of every block pushed (the levels, lowest first, into part);
 * NULL when none was. The tree is left empty. */
static const float *sample_tree_sum(sample_tree *t) {
  const float *sum = NULL;
  for (int l = 0; l < 64; l++) {
    if (!(t->full >> l & 1)) continue;
    if (sum)
      for (int64_t i = 0; i < t->n; i++) t->part[i] = t->level[l][i] + sum[i];
    sum = sum ? t->part : t->level[l];
  }
  t->full = 0;
  return sum;
}

/* dw += the sum of every sample pushed. */
static void sample_tree_add_to(sample_tree *t, float *dw) {
  const float *sum = sample_tree_sum(t);
  for (int64_t i = 0; sum && i < t->n; i++) dw[i] += sum[i];
}

/* Blocks of consecutive samples (or chunks) that threads sum on their own:
 * aligned blocks of S, the largest power of two with 2*T*S <= N (at least
 * 1: two blocks per thread), then the binary decomposition of the N mod S
 * left over. Each block is a node of the sample tree, so pushing the block
 * sums at their levels, in order, gives the bits of the tree of single
 * samples whatever S is: the same at any thread count T. */
typedef struct sample_blocks {
  int n, top;                         /* blocks; level of the largest */
  int64_t start[4 * GR_MAX_THREADS + 64]; /* block i: samples start[i] .. start[i+1]-1 */
  int level[4 * GR_MAX_THREADS + 64];     /* block i holds 2^level[i] samples */
} sample_blocks;

static void sample_blocks_init(sample_blocks *b, int64_t N, int T) {
  int L = 0;
  while (((int64_t)4 * T << L) <= N) L++; /* 2*T * 2^L <= N */
  int64_t at = 0;
  *b = (sample_blocks){.top = L};
  for (int l = L; l >= 0; l--)
    while (N - at >= ((int64_t)1 << l)) { /* whole blocks of S, then at most one of each smaller size */
      b->start[b->n] = at;
      b->level[b->n++] = l;
      at += (int64_t)1 << l;
      if (l < L) break;
    }
  b->start[b->n] = N;
}

/* Threads for a convolution of `macs` multiply-adds over n samples (or
 * chunks): the samples in parallel, but not inside another OpenMP region,
 * and not for work smaller than a fork and join (~10 us) is worth. */
static int conv_threads(int64_t n, double macs) {
  int T = omp_get_level() || macs < (double)(1 << 21) ? 1 : gr_threads();
  if (T > GR_MAX_THREADS) T = GR_MAX_THREADS;
  return T < n ? T : (int)n;
}

/* The items (samples or chunks) of blocks b over T threads: fn(ctx, t, j)
 * for each item j on thread t. With trees (one per thread; fn leaves item
 * j's weight gradient in trees[t].part), the items of a block are summed
 * as a tree and the block's sum copied to sums + i*numel. */
typedef void (*block_item_fn)(void *ctx, int t, int64_t j);

static void run_blocks(const sample_blocks *b, int T, block_item_fn fn, void *ctx, sample_tree *trees, float *sums) {
#pragma omp parallel for schedule(static) num_threads(T) if (T > 1)
  for (int i = 0; i < b->n; i++) {
    int t = omp_get_thread_num();
    for (int64_t j = b->start[i]; j < b->start[i + 1]; j++) {
      fn(ctx, t, j);
      if (trees) sample_tree_push_at(&trees[t], 0);
    }
    if (trees) memcpy(sums + i * trees[t].n, sample_tree_sum(&trees[t]), (size_t)trees[t].n * sizeof(float));
  }
}

/* dw += the sum of the block sums, pushed into tree as nodes (in order). */
static void blocks_add_to(const sample_blocks *b, const float *sums, sample_tree *tree, float *dw) {
  for (int i = 0; i < b->n; i++) {
    memcpy(tree->part, sums + i * tree->n, (size_t)tree->n * sizeof(float));
    sample_tree_push_at(tree, b->level[i]);
  }
  sample_tree_add_to(tree, dw);
}

/* dw [g][Og][K] += dwt [g][K][Og]: the weight gradient from the transposed
 * layout of gr_conv_taps_wgrad_t. */
static void add_transposed_wgrad(const conv_geom *g, const float *dwt, float *dw) {
  for (int64_t gi = 0; gi < g->g; gi++) {
    const float *s = dwt + gi * g->Og * g->K;
    float *d = dw + gi * g->Og * g->K;
    for (int64_t o = 0; o < g->Og; o++)
      for (int64_t r = 0; r < g->K; r++) d[o * g->K + r] += s[r * g->Og + o];
  }
}

/* dw += the sum of the block sums, which hold the weight gradient
 * transposed (dwt, as add_transposed_wgrad) when transposed. */
static void blocks_add_wgrad(gr_ctx *c, const conv_geom *g, const sample_blocks *b, const float *sums,
                             sample_tree *tree, bool transposed, float *dw) {
  if (!transposed) {
    blocks_add_to(b, sums, tree, dw);
    return;
  }
  float *dwt = gr_scratch(c, (size_t)tree->n * sizeof(float));
  GR_ASSERT(dwt); /* step arena exhausted mid-backward */
  blocks_add_to(b, sums, tree, dwt);
  add_transposed_wgrad(g, dwt, dw);
}

/* The weight-gradient trees of T threads over blocks b, the block sums and
 * the tree that adds them (false when out of memory). */
static bool block_trees_init(gr_ctx *c, const sample_blocks *b, int T, int64_t numel, int64_t items,
                             sample_tree *trees, float **sums, sample_tree *tree) {
  *sums = gr_scratch_uninit(c, (size_t)(b->n * numel) * sizeof(float));
  bool ok = *sums && sample_tree_init(c, tree, numel, items);
  for (int t = 0; ok && t < T; t++) ok = sample_tree_init(c, &trees[t], numel, (int64_t)1 << b->top);
  return ok;
}

/* One thread's buffers in same_backward. */
typedef struct same_bwd_work {
  float *xpad, *ypad, *col; /* padded x and dY (direct kernels), lowered x (gemm) */
  float *wino;              /* gr_conv_wino_wgrad's scratch */
  float *dyt;               /* gr_conv_taps_wgrad_t's scratch */
  bool padded;              /* xpad and ypad already hold a padded sample */
} same_bwd_work;

typedef struct same_bwd {
  const conv_geom *g;
  const float *x, *dy, *wflip, *wflip_u; /* wflip_u: wflip's Winograd weights (NULL: direct kernels) */
  float *dx;
  bool fresh, direct, wgrad; /* dx assigned (not accumulated); direct kernels; dW wanted */
  bool wino_wgrad;           /* dW by Winograd: the trees sum du [g][16][Og][Cg] (conv_winograd.h) */
  bool wgrad_t;              /* dW by gr_conv_taps_wgrad_t: the trees sum dwt [g][K][Og] */
  sample_tree trees[GR_MAX_THREADS];
  same_bwd_work wk[GR_MAX_THREADS];
} same_bwd;

/* Sample n on thread t: its weight gradient into trees[t].part, dx[n] (=
 * when fresh, else +=). */
static void same_backward_sample(void *ctx, int t, int64_t n) {
  same_bwd *s = ctx;
  same_bwd_work *wk = &s->wk[t];
  const conv_geom *g = s->g;
  int64_t HW = g->H * g->W, kk = g->kh * g->kw;
  gr_conv_direct fw = same_direct_geom(g, g->Cg, g->Og);
  float *part = s->wgrad ? s->trees[t].part : NULL;
  if (part && s->direct && !s->wino_wgrad && !s->wgrad_t) memset(part, 0, (size_t)s->trees[t].n * sizeof(float));
  for (int64_t gi = 0; gi < g->g; gi++) {
    const float *dys = s->dy + (n * g->O + gi * g->Og) * HW, *xs = s->x + (n * g->C + gi * g->Cg) * HW;
    float *dwg = part ? part + gi * g->Og * g->K : NULL;
    float *dxs = s->dx ? s->dx + (n * g->C + gi * g->Cg) * HW : NULL;
    const float *wfg = s->wflip ? s->wflip + gi * g->Cg * g->Og * kk : NULL;
    const float *wug = s->wflip_u ? s->wflip_u + gi * 16 * g->Cg * g->Og : NULL;
    if (s->direct) { /* dW from padded x and dY itself, dx from padded dY */
      gr_conv_taps ft;
      gr_conv_direct_taps(&fw, &ft);
      if (dwg) gr_conv_direct_pad(&fw, xs, wk->xpad, wk->padded);
      if (dwg && s->wino_wgrad) gr_conv_wino_wgrad(&fw, wk->xpad, dys, wk->wino, part + gi * 16 * g->Og * g->Cg);
      else if (dwg && s->wgrad_t) gr_conv_taps_wgrad_t(&ft, wk->xpad, dys, wk->dyt, dwg);
      else if (dwg) gr_conv_taps_wgrad(&ft, wk->xpad, dys, dwg);
      if (dxs) same_conv_group(g, g->Og, g->Cg, dys, wfg, wug, NULL, !s->fresh, wk->ypad, wk->padded, dxs);
      wk->padded = true;
      continue;
    }
    if (dwg) {
      if (kk > 1) shift_lower(g, xs, g->Cg, wk->col);
      gr_sgemm_rm(false, true, g->Og, g->K, HW, dys, HW, kk > 1 ? wk->col : xs, HW, 0, dwg, g->K);
    }
    if (dxs) same_conv_group(g, g->Og, g->Cg, dys, wfg, NULL, NULL, !s->fresh, wk->ypad, false, dxs);
  }
}

/* One thread's buffers (false when out of memory). */
static bool same_bwd_work_init(gr_ctx *c, const same_bwd *s, same_bwd_work *wk) {
  const conv_geom *g = s->g;
  bool lowered = s->wgrad && g->kh * g->kw > 1 && !s->direct;
  *wk = (same_bwd_work){0};
  wk->col = lowered ? gr_scratch_uninit(c, (size_t)(g->K * g->H * g->W) * sizeof(float)) : NULL;
  gr_conv_direct fw = same_direct_geom(g, g->Cg, g->Og);
  wk->xpad = s->direct && s->wgrad ? gr_scratch_uninit(c, (size_t)gr_conv_direct_pad_floats(&fw) * sizeof(float)) : NULL;
  wk->ypad = s->dx ? gr_scratch_uninit(c, (size_t)(same_scratch_floats(g, g->Og, g->Cg) + 1) * sizeof(float)) : NULL;
  wk->wino =
      s->wino_wgrad ? gr_scratch_uninit(c, (size_t)gr_conv_wino_wgrad_scratch_floats(&fw) * sizeof(float)) : NULL;
  gr_conv_taps ft;
  gr_conv_direct_taps(&fw, &ft);
  wk->dyt = s->wgrad_t ? gr_scratch_uninit(c, (size_t)gr_conv_taps_wgrad_t_scratch(&ft) * sizeof(float)) : NULL;
  return (wk->col || !lowered) && (wk->xpad || !s->wgrad || !s->direct) && (wk->ypad || !s->dx) &&
         (wk->wino || !s->wino_wgrad) && (wk->dyt || !s->wgrad_t);
}

/* dW (per sample, into a tree) and dx (=, when fresh, else +=) conv(dY_g,
 * wflip_g), a sample and group at a time: the direct kernels from padded
 * copies of dY_g and x_g, else the gemm dY_g col_g^T and same_conv_group.
 * Blocks of samples in parallel (run_blocks). The bias gradient is done by
 * the caller. */
static void same_backward(gr_ctx *c, gr_node *nd) {
  gr_tensor *x = nd->in[0], *w = nd->in[1];
  const conv_geom *g = nd->saved;
  same_bwd *s = gr_scratch(c, sizeof *s);
  GR_ASSERT(s);
  *s = (same_bwd){.g = g, .x = x->data, .dy = nd->out->grad, .direct = same_direct(g), .wgrad = w->requires_grad};
  gr_conv_direct fw = same_direct_geom(g, g->Cg, g->Og);
  gr_conv_taps ft;
  if (s->direct) gr_conv_direct_taps(&fw, &ft);
  s->wino_wgrad = s->wgrad && s->direct && gr_conv_wino_wgrad_fits(&fw);
  s->wgrad_t = s->wgrad && s->direct && !s->wino_wgrad && gr_conv_taps_wgrad_t_fits(&ft);
  int64_t dw_numel = s->wino_wgrad ? g->g * 16 * g->Og * g->Cg : w->numel; /* floats per sample in the trees */
  int T = conv_threads(g->N, (double)g->N * g->H * g->W * g->O * g->K);
  sample_blocks blk;
  sample_blocks_init(&blk, g->N, T);
  sample_tree tree = {0};
  float *sums = NULL;
  bool ok = !s->wgrad || block_trees_init(c, &blk, T, dw_numel, g->N, s->trees, &sums, &tree);
  float *wflip = x->requires_grad ? gr_scratch_uninit(c, (size_t)w->numel * sizeof(float)) : NULL;
  s->wflip = wflip;
  s->dx = x->requires_grad ? gr_grad_buf_fresh(c, x, &s->fresh) : NULL;
  for (int t = 0; t < T; t++) ok = ok && same_bwd_work_init(c, s, &s->wk[t]);
  GR_ASSERT(ok && (wflip || !s->dx));
  if (s->dx) same_kernel_for_dx(g, w->data, wflip);
  if (s->dx) s->wflip_u = same_wino_weights(c, g, g->Og, g->Cg, wflip, &ok);
  GR_ASSERT(ok);
  run_blocks(&blk, T, same_backward_sample, s, s->wgrad ? s->trees : NULL, sums);
  if (s->wgrad && s->wino_wgrad) { /* the batch's du, then dW once */
    float *du = gr_scratch(c, (size_t)dw_numel * sizeof(float)), *dw = gr_grad_buf(c, w);
    GR_ASSERT(du);
    blocks_add_to(&blk, sums, &tree, du);
    for (int64_t gi = 0; gi < g->g; gi++)
      gr_conv_wino_wgrad_add(g->Og, g->Cg, du + gi * 16 * g->Og * g->Cg, dw + gi * g->Og * g->K);
  } else if (s->wgrad) {
    blocks_add_wgrad(c, g, &blk, sums, &tree, s->wgrad_t, gr_grad_buf(c, w));
  }
}

/* One thread's buffers in conv_backward. */
typedef struct chunk_bwd_work {
  float *dyg, *col, *dcol, *xp, *dxp; /* dY in gemm layout, lowered x, its gradient, their plane copies */
  float *dyt;                         /* conv_valid.c's scratch (direct_dw) */
} chunk_bwd_work;

typedef struct chunk_bwd {
  const conv_geom *g;
  const float *x, *w;
  float *dy, *dx;
  int64_t nb; /* samples per chunk */
  sample_tree *trees; /* NULL: no weight gradient */
  gr_conv_valid cv;   /* one group's geometry for conv_valid.c */
  bool direct_dw;     /* dW by conv_valid.c's direct kernel (valid convolutions) */
  chunk_bwd_work wk[GR_MAX_THREADS];
} chunk_bwd;

/* Chunk j on thread t: its weight gradient into trees[t].part, dx += its dx. */
static void chunk_backward(void *ctx, int t, int64_t j) {
  chunk_bwd *s = ctx;
  chunk_bwd_work *wk = &s->wk[t];
  const conv_geom *g = s->g;
  int64_t n0 = j * s->nb, m = g->N - n0 < s->nb ? g->N - n0 : s->nb, mw = m * g->cols;
  for (int64_t gi = 0; gi < g->g; gi++) {
    if (s->direct_dw)
      gr_conv_valid_wgrad(&s->cv, s->x + (n0 * g->C + gi * g->Cg) * g->H * g->W,
                          s->dy + (n0 * g->O + gi * g->Og) * g->OH * g->OW, m, wk->dyt,
                          s->trees[t].part + gi * g->Og * g->K);
    if (!s->dx && s->direct_dw) continue;
    relayout(g, gi, n0, m, wk->dyg, s->dy, false, NULL);
    if (s->trees && !s->direct_dw) {
      lower_chunk(g, s->x, wk->xp, gi, n0, m, wk->col);
      gr_sgemm_rm(false, true, g->Og, g->K, mw, wk->dyg, mw, wk->col, mw, 0, s->trees[t].part + gi * g->Og * g->K, g->K);
    }
    if (s->dx) {
      gr_sgemm_rm(true, false, g->K, mw, g->Og, s->w + gi * g->Og * g->K, g->K, wk->dyg, mw, 0, wk->dcol, mw);
      raise_chunk(g, wk->dcol, wk->dxp, gi, n0, m, s->dx);
    }
  }
}

/* ---- strided and padded convolutions, direct ----------------------------------
 * With AVX2, a convolution whose planes are a padded, phase-split copy
 * (g->copy) and that is not same-size runs a sample and group at a time on
 * the direct kernels: the copy of one sample's group (phase_chunk with
 * nb = 1) is the planes, and tap (ki, kj) reads them from tap_offset on,
 * output (oh, ow) at oh*Wq + ow: no lowering, no gemm, no relayout (the
 * lowering, relayout and gemm packing of the stride-2 and 1x1 downsampling
 * convolutions were a quarter of a ResNet-8 step). Samples in parallel;
 * dW per sample into the sample tree (blocks of it per thread, as
 * same_backward); dx into a zeroed copy of the planes, added back by
 * unphase_add. */
static bool phased_direct(const conv_geom *g) {
  return g->copy && !g->same && g->kh * g->kw <= GR_CONV_TAPS_MAX && gr_conv_direct_available();
}

static void phased_taps(const conv_geom *g, gr_conv_taps *t) {
  *t = (gr_conv_taps){.cin = g->Cg, .cout = g->Og, .OH = g->OH, .OW = g->OW, .pitch = g->Wq, .cstride = g->cplane,
                      .kk = g->kh * g->kw};
  for (int64_t k = 0; k < t->kk; k++) t->toff[k] = tap_offset(g, k);
}

/* One sample's planes (zeroed, with the slack the kernels may read past
 * them), for each of T threads: per floats apart. */
static float *phased_scratch(gr_ctx *c, const conv_geom *g, int T, int64_t *per) {
  *per = (g->Cg * g->cplane + GR_CONV_TAPS_SLACK + 15) / 16 * 16; /* whole cache lines */
  return gr_scratch(c, (size_t)(T * *per) * sizeof(float));
}

static int phased_threads(const conv_geom *g) { return conv_threads(g->N, (double)g->N * g->OH * g->OW * g->O * g->K); }

/* With keep (a weight gradient will be wanted), every sample's planes are
 * kept in g->planes for phased_backward (the second copy of the input for
 * dW was 3% of a ResNet-8 step); else one buffer per thread. */
static bool phased_forward(gr_ctx *c, conv_geom *g, const float *x, const float *w, const float *b, float *y,
                           bool keep) {
  int T = phased_threads(g);
  int64_t per;
  float *planes = keep ? NULL : phased_scratch(c, g, T, &per);
  if (keep) {
    per = (g->Cg * g->cplane + GR_CONV_TAPS_SLACK + 15) / 16 * 16;
    /* uninitialized: phase_chunk writes every phase a tap reads; what the
     * vectors past a row's end read (other phases, the slack) is dropped */
    planes = gr_scratch_uninit(c, (size_t)(g->N * g->g * per) * sizeof(float));
    g->planes = planes;
    g->plane_pitch = per;
  }
  if (!planes) return false;
  gr_conv_taps t;
  phased_taps(g, &t);
#pragma omp parallel for schedule(static) num_threads(T) if (T > 1)
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t gi = 0; gi < g->g; gi++) {
      float *xp = planes + (keep ? n * g->g + gi : omp_get_thread_num()) * per;
      phase_chunk(g, x, gi, n, 1, xp);
      gr_conv_taps_forward(&t, xp, w + gi * g->Og * g->K, b ? b + gi * g->Og : NULL, false,
                           y + (n * g->O + gi * g->Og) * g->OH * g->OW);
    }
  return true;
}

/* ---- stride-2 input gradients by x parity ------------------------------------
 * With stride 2, dilation 1 and OH = H/2, OW = W/2 (ResNet's stride-2 convs
 * on even planes), x pixel (2u + s, 2v + t) receives from output (u + du,
 * v + dv) through the taps (ki, kj) with ki = s + ph - 2du, kj = t + pw - 2dv
 * (each tap in one parity (s, t)). For each parity, dx is a stride-1
 * convolution of dY, zero-padded where u + du leaves it, with those taps:
 * the forward kernel (gr_conv_taps_forward, the conv's input channels as its
 * outputs) writes each element once into [Cg, H/2, W/2], which is added into
 * dx's rows 2u + s, columns 2v + t. The tap-by-tap kernel (gr_conv_taps_dx)
 * added every tap's product into a zeroed copy of the phase planes, then the
 * planes into dx: 11% of a ResNet-8 step at about 60% of the forward's FMA
 * rate. */
typedef struct parity_dx {
  int64_t top, left, Hd, pitch; /* dY padded: Hd rows of pitch floats, dY row r at row top + r, column left + c */
  int64_t woff[4];              /* where parity p's weights start in a group's [Cg][Og][kk of p] blocks */
  gr_conv_taps t[4];            /* parity p = 2s + t over padded dY; kk 0: no tap reads that parity */
  int64_t tap[4][GR_CONV_TAPS_MAX]; /* parity p's taps ki*kw + kj, in toff's order */
} parity_dx;

static bool parity_fits(const conv_geom *g) {
  return g->sh == 2 && g->sw == 2 && g->dh == 1 && g->dw == 1 && g->H % 2 == 0 && g->W % 2 == 0 &&
         g->OH == g->H / 2 && g->OW == g->W / 2 && gr_conv_direct_available();
}

/* Output offset of tap k for x parity s (kernel index k, padding p): the d
 * with k = s + p - 2d, or false when the tap reads the other parity. */
static bool parity_offset(int64_t s, int64_t p, int64_t k, int64_t *d) {
  int64_t e = s + p - k;
  if (e % 2) return false;
  *d = e / 2;
  return true;
}

static void parity_init(const conv_geom *g, parity_dx *pd) {
  int64_t lo_r = 0, hi_r = 0, lo_c = 0, hi_c = 0, d;
  for (int64_t s = 0; s < 2; s++)
    for (int64_t k = 0; k < g->kh; k++)
      if (parity_offset(s, g->ph, k, &d)) lo_r = d < lo_r ? d : lo_r, hi_r = d > hi_r ? d : hi_r;
  for (int64_t s = 0; s < 2; s++)
    for (int64_t k = 0; k < g->kw; k++)
      if (parity_offset(s, g->pw, k, &d)) lo_c = d < lo_c ? d : lo_c, hi_c = d > hi_c ? d : hi_c;
  *pd = (parity_dx){.top = -lo_r, .left = -lo_c, .Hd = g->OH - lo_r + hi_r, .pitch = g->OW - lo_c + hi_c};
  int64_t at = 0;
  for (int p = 0; p < 4; p++) {
    gr_conv_taps *t = &pd->t[p];
    *t = (gr_conv_taps){.cin = g->Og, .cout = g->Cg, .OH = g->H / 2, .OW = g->W / 2, .pitch = pd->pitch,
                        .cstride = pd->Hd * pd->pitch};
    int64_t du, dv;
    for (int64_t ki = 0; ki < g->kh; ki++)
      for (int64_t kj = 0; kj < g->kw; kj++)
        if (parity_offset(p / 2, g->ph, ki, &du) && parity_offset(p % 2, g->pw, kj, &dv)) {
          pd->tap[p][t->kk] = ki * g->kw + kj;
          t->toff[t->kk++] = (du + pd->top) * pd->pitch + dv + pd->left;
        }
    pd->woff[p] = at;
    at += g->Cg * g->Og * t->kk;
  }
}

/* Each group's weights by parity: wpar[gi][woff[p] + (c*Og + o)*kk_p + j] = w[gi*Og + o][c][tap[p][j]]. */
static void parity_weights(const conv_geom *g, const parity_dx *pd, const float *w, float *wpar) {
  int64_t kk = g->kh * g->kw;
  for (int64_t gi = 0; gi < g->g; gi++)
    for (int p = 0; p < 4; p++) {
      int64_t n = pd->t[p].kk;
      float *d = wpar + gi * g->Og * g->K + pd->woff[p];
      for (int64_t c = 0; c < g->Cg; c++)
        for (int64_t o = 0; o < g->Og; o++)
          for (int64_t j = 0; j < n; j++) d[(c * g->Og + o) * n + j] = w[((gi * g->Og + o) * g->Cg + c) * kk + pd->tap[p][j]];
    }
}

/* Floats of one thread's parity scratch: padded dY (+ the slack the forward
 * kernel may read), then 4 outputs [Cg, H/2, W/2]. */
static int64_t parity_scratch_floats(const conv_geom *g, const parity_dx *pd) {
  return (g->Og * pd->Hd * pd->pitch + GR_CONV_TAPS_SLACK + 15) / 16 * 16 + 4 * g->Cg * g->OH * g->OW;
}

/* dx [Cg, H, W] += the parity outputs out[p] [Cg, H/2, W/2] (= when fresh:
 * zero where no tap reads). */
static void parity_add(const conv_geom *g, const parity_dx *pd, const float *out, bool fresh, float *dx) {
  int64_t hh = g->H / 2, hw = g->W / 2, pl = g->Cg * hh * hw;
  for (int64_t c = 0; c < g->Cg; c++)
    for (int64_t u = 0; u < g->H; u++) {
      float *row = dx + (c * g->H + u) * g->W;
      int64_t s = u % 2, at = (c * hh + u / 2) * hw;
      const float *e = pd->t[2 * s].kk ? out + 2 * s * pl + at : NULL, *o = pd->t[2 * s + 1].kk ? out + (2 * s + 1) * pl + at : NULL;
      if (e && o) {
        interleave2_put(e, o, hw, row, !fresh);
        continue;
      }
      for (int64_t v = 0; fresh && v < g->W; v++) row[v] = 0.0f;
      for (int64_t v = 0; e && v < hw; v++) row[2 * v] += e[v];
      for (int64_t v = 0; o && v < hw; v++) row[2 * v + 1] += o[v];
    }
}

/* dx [Cg, H, W] += (= when fresh) the input gradient of one sample's group
 * from dys [Og, OH, OW]; scratch as parity_scratch_floats, its padding zero
 * when `padded`. */
static void parity_dx_group(const conv_geom *g, const parity_dx *pd, const float *dys, const float *wpar,
                            float *scratch, bool padded, bool fresh, float *dx) {
  int64_t plane = pd->Hd * pd->pitch, rows = g->Og * plane;
  float *out = scratch + (rows + GR_CONV_TAPS_SLACK + 15) / 16 * 16;
  if (!padded) memset(scratch, 0, (size_t)(rows + GR_CONV_TAPS_SLACK) * sizeof(float));
  for (int64_t o = 0; o < g->Og; o++)
    for (int64_t r = 0; r < g->OH; r++)
      memcpy(scratch + o * plane + (pd->top + r) * pd->pitch + pd->left, dys + (o * g->OH + r) * g->OW,
             (size_t)g->OW * sizeof(float));
  for (int p = 0; p < 4; p++)
    if (pd->t[p].kk) gr_conv_taps_forward(&pd->t[p], scratch, wpar + pd->woff[p], NULL, false, out + p * g->Cg * g->OH * g->OW);
  parity_add(g, pd, out, fresh, dx);
}

typedef struct phased_bwd {
  const conv_geom *g;
  gr_conv_taps t;
  const float *x, *w, *dy;
  float *dx, *xp, *dxp; /* planes of x (per floats apart for each thread) and dx's scratch (dx_per apart) */
  int64_t per, dx_per;
  float *dyt;          /* gr_conv_taps_wgrad_t's scratch, dyt_per floats for each thread (NULL: not used) */
  int64_t dyt_per;
  parity_dx *pd;       /* dx by parity (NULL: gr_conv_taps_dx into the planes) */
  float *wpar;         /* parity_weights */
  bool padded[GR_MAX_THREADS]; /* the thread's parity scratch has its zero padding */
  bool fresh;                  /* dx assigned, not accumulated (parity path only) */
  sample_tree *trees; /* NULL: no weight gradient */
} phased_bwd;

/* Sample n on thread th: its weight gradient into trees[th].part, dx[n] +=. */
static void phased_backward_sample(void *ctx, int th, int64_t n) {
  phased_bwd *s = ctx;
  const conv_geom *g = s->g;
  float *part = s->trees ? s->trees[th].part : NULL, *xp = s->xp ? s->xp + th * s->per : NULL;
  float *dxp = s->dxp ? s->dxp + th * s->dx_per : NULL;
  if (part && !s->dyt) memset(part, 0, (size_t)s->trees[th].n * sizeof(float));
  for (int64_t gi = 0; gi < g->g; gi++) {
    const float *dys = s->dy + (n * g->O + gi * g->Og) * g->OH * g->OW;
    if (part) {
      const float *planes = g->planes ? g->planes + (n * g->g + gi) * g->plane_pitch : xp;
      if (!g->planes) phase_chunk(g, s->x, gi, n, 1, xp);
      if (s->dyt) gr_conv_taps_wgrad_t(&s->t, planes, dys, s->dyt + th * s->dyt_per, part + gi * g->Og * g->K);
      else gr_conv_taps_wgrad(&s->t, planes, dys, part + gi * g->Og * g->K);
    }
    if (s->dx && s->pd) {
      parity_dx_group(g, s->pd, dys, s->wpar + gi * g->Og * g->K, dxp, s->padded[th], s->fresh,
                      s->dx + (n * g->C + gi * g->Cg) * g->H * g->W);
      s->padded[th] = true;
    } else if (s->dx) {
      memset(dxp, 0, (size_t)(g->Cg * g->cplane) * sizeof(float));
      gr_conv_taps_dx(&s->t, dys, s->w + gi * g->Og * g->K, dxp);
      unphase_add(g, dxp, gi, n, 1, s->dx);
    }
  }
}

/* Blocks of samples in parallel (run_blocks), per-sample dW summed as the sample tree. */
static void phased_backward(gr_ctx *c, gr_node *nd) {
  gr_tensor *x = nd->in[0], *w = nd->in[1];
  const conv_geom *g = nd->saved;
  int T = phased_threads(g);
  phased_bwd *s = gr_scratch(c, sizeof *s);
  sample_tree *trees = gr_scratch(c, (size_t)T * sizeof *trees), tree = {0};
  GR_ASSERT(s && trees);
  *s = (phased_bwd){.g = g, .x = x->data, .w = w->data, .dy = nd->out->grad, .trees = w->requires_grad ? trees : NULL};
  phased_taps(g, &s->t);
  sample_blocks blk;
  sample_blocks_init(&blk, g->N, T);
  float *sums = NULL;
  bool ok = !s->trees || block_trees_init(c, &blk, T, w->numel, g->N, trees, &sums, &tree);
  s->xp = s->trees && !g->planes ? phased_scratch(c, g, T, &s->per) : NULL;
  bool parity = x->requires_grad && parity_fits(g);
  s->dx = !x->requires_grad ? NULL : parity ? gr_grad_buf_fresh(c, x, &s->fresh) : gr_grad_buf(c, x);
  if (parity && s->dx) {
    s->pd = gr_scratch(c, sizeof *s->pd);
    s->wpar = gr_scratch_uninit(c, (size_t)w->numel * sizeof(float));
    ok = ok && s->pd && s->wpar;
    if (ok) parity_init(g, s->pd);
    if (ok) parity_weights(g, s->pd, w->data, s->wpar);
  }
  if (s->pd) { /* padded dY and the parity outputs */
    s->dx_per = (parity_scratch_floats(g, s->pd) + 15) / 16 * 16;
    s->dxp = gr_scratch_uninit(c, (size_t)(T * s->dx_per) * sizeof(float));
  } else if (s->dx) { /* the gradient of the planes */
    s->dxp = phased_scratch(c, g, T, &s->dx_per);
  }
  if (s->trees && gr_conv_taps_wgrad_t_fits(&s->t)) {
    s->dyt_per = (gr_conv_taps_wgrad_t_scratch(&s->t) + 15) / 16 * 16;
    s->dyt = gr_scratch_uninit(c, (size_t)(T * s->dyt_per) * sizeof(float));
    ok = ok && s->dyt;
  }
  GR_ASSERT(ok && (s->xp || g->planes || !s->trees) && (s->dxp || !s->dx));
  run_blocks(&blk, T, phased_backward_sample, s, s->trees, sums);
  if (s->trees) blocks_add_wgrad(c, g, &blk, sums, &tree, s->dyt != NULL, gr_grad_buf(c, w));
}

/* Whether conv_valid.c's direct kernels take this (stride 1, unpadded,
 * undilated) convolution; *cv is its geometry for one group. */
static bool valid_direct(const conv_geom *g, gr_conv_valid *cv) {
  *cv = (gr_conv_valid){g->Cg, g->Og, g->H, g->W, g->kh, g->kw, g->C * g->H * g->W, g->O * g->OH * g->OW};
  return !g->copy && !g->same && g->dh == 1 && g->dw == 1 && gr_conv_valid_fits(cv);
}

/* Backward chunk by chunk: the columns are recomputed from x (cheaper, in
 * cache, than keeping the whole batch's columns from forward), then
 * dW_g += dY_g col^T, dcol = W_g^T dY_g, dx += col2im(dcol). Blocks of
 * chunks in parallel (run_blocks); a chunk's dx rows are its own. */
static void conv_backward(gr_ctx *c, gr_node *nd) {
  gr_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->n_in > 2 ? nd->in[2] : NULL;
  const conv_geom *g = nd->saved;
  if (b && b->requires_grad) conv_bias_backward(g, nd->out->grad, gr_grad_buf(c, b));
  if (!x->requires_grad && !w->requires_grad) return;
  if (g->same) {
    same_backward(c, nd);
    return;
  }
  if (phased_direct(g)) {
    phased_backward(c, nd);
    return;
  }
  int64_t nb = chunk_samples(g), width = nb * g->cols, chunks = (g->N + nb - 1) / nb;
  int T = conv_threads(chunks, (double)g->N * g->OH * g->OW * g->O * g->K);
  chunk_bwd *s = gr_scratch(c, sizeof *s);
  sample_tree *trees = gr_scratch(c, (size_t)T * sizeof *trees), tree = {0};
  GR_ASSERT(s && trees);
  *s = (chunk_bwd){.g = g, .x = x->data, .w = w->data, .dy = nd->out->grad, .nb = nb,
                   .trees = w->requires_grad ? trees : NULL};
  /* valid convolutions: dW by conv_valid.c's direct kernel, from x and dY as they are */
  s->direct_dw = s->trees && valid_direct(g, &s->cv);
  sample_blocks blk;
  sample_blocks_init(&blk, chunks, T); /* of chunks (a power of two samples each) */
  float *sums = NULL;
  bool ok = !s->trees || block_trees_init(c, &blk, T, w->numel, chunks, trees, &sums, &tree);
  for (int t = 0; t < T; t++) {
    chunk_bwd_work *wk = &s->wk[t];
    wk->dyg = gr_scratch_uninit(c, (size_t)(g->Og * width) * sizeof(float));
    wk->col = s->trees && !s->direct_dw ? gr_scratch_uninit(c, (size_t)(g->K * width) * sizeof(float)) : NULL;
    wk->dyt = s->direct_dw ? gr_scratch_uninit(c, (size_t)gr_conv_valid_wgrad_scratch(&s->cv, nb) * sizeof(float))
                           : NULL;
    wk->dcol = x->requires_grad ? gr_scratch_uninit(c, (size_t)(g->K * width) * sizeof(float)) : NULL;
    wk->xp = s->trees ? pad_scratch(c, g, &ok) : NULL;
    wk->dxp = x->requires_grad ? pad_scratch(c, g, &ok) : NULL;
    ok = ok && wk->dyg && (wk->col || wk->dyt || !s->trees) && (wk->dcol || !x->requires_grad);
  }
  s->dx = x->requires_grad ? gr_grad_buf(c, x) : NULL;
  GR_ASSERT(ok);
  run_blocks(&blk, T, chunk_backward, s, s->trees, sums);
  if (s->trees) blocks_add_to(&blk, sums, &tree, gr_grad_buf(c, w));
}

static const gr_op_def OP_CONV2D = {"conv2d", conv_backward};

/* y = conv(x, w) + b, chunk by chunk: the lowering of a chunk, one gemm per
 * group into the chunk's [Og, nb*cols] buffer, then to NCHW with the bias
 * added. Chunks in parallel, each thread with its own buffers (false when
 * out of memory). */
static bool conv_forward(gr_ctx *c, const conv_geom *g, const float *x, const float *w, const float *b, float *y) {
  int64_t nb = chunk_samples(g), width = nb * g->cols, chunks = (g->N + nb - 1) / nb;
  int T = conv_threads(chunks, (double)g->N * g->OH * g->OW * g->O * g->K);
  float *col[GR_MAX_THREADS], *yg[GR_MAX_THREADS], *xp[GR_MAX_THREADS];
  bool ok = true;
  for (int t = 0; t < T; t++) {
    col[t] = gr_scratch_uninit(c, (size_t)(g->K * width) * sizeof(float));
    yg[t] = gr_scratch_uninit(c, (size_t)(g->Og * width) * sizeof(float));
    xp[t] = pad_scratch(c, g, &ok);
    ok = ok && col[t] && yg[t];
  }
  if (!ok) return false;
#pragma omp parallel for schedule(static) num_threads(T) if (T > 1)
  for (int64_t j = 0; j < chunks; j++) {
    int t = omp_get_thread_num();
    int64_t n0 = j * nb, m = g->N - n0 < nb ? g->N - n0 : nb, mw = m * g->cols;
    for (int64_t gi = 0; gi < g->g; gi++) {
      lower_chunk(g, x, xp[t], gi, n0, m, col[t]);
      gr_sgemm_rm(false, false, g->Og, mw, g->K, w + gi * g->Og * g->K, g->K, col[t], mw, 0, yg[t], mw);
      relayout(g, gi, n0, m, yg[t], y, true, b);
    }
  }
  return true;
}

gr_tensor *gr_conv2d(gr_ctx *c, gr_tensor *x, gr_tensor *w, gr_tensor *b, const gr_conv2d_opts *o) {
  GR_NEED("conv2d", c);
  GR_NEED("conv2d", x);
  GR_NEED("conv2d", w);
  conv_geom g;
  gr_conv_valid cv;
  if (!conv_geometry(x, w, b, o, &g)) return NULL;
  gr_tensor *y = gr_tensor_new_uninit(c, 4, GR_SHAPE(g.N, g.O, g.OH, g.OW)); /* every element written below */
  if (!y) return NULL;
  if (g.same) {
    int T = conv_threads(g.N, (double)g.N * g.H * g.W * g.O * g.K);
    int64_t per = (same_scratch_floats(&g, g.Cg, g.Og) + 16) / 16 * 16; /* + 1, in whole cache lines */
    float *scratch = gr_scratch_uninit(c, (size_t)(T * per) * sizeof(float));
    bool ok = scratch != NULL;
    float *wu = same_wino_weights(c, &g, g.Cg, g.Og, w->data, &ok);
    if (!ok) return NULL;
    same_forward(&g, x->data, w->data, wu, b ? b->data : NULL, scratch, per, T, y->data);
  } else if (phased_direct(&g)) {
    if (!phased_forward(c, &g, x->data, w->data, b ? b->data : NULL, y->data, w->requires_grad && gr_ctx_grad(c)))
      return NULL;
  } else if (valid_direct(&g, &cv)) {
    float *wt = gr_scratch_uninit(c, (size_t)(g.Og * g.K) * sizeof(float));
    if (!wt) return NULL;
    for (int64_t gi = 0; gi < g.g; gi++)
      gr_conv_valid_forward(&cv, x->data + gi * g.Cg * g.H * g.W, w->data + gi * g.Og * g.K,
                            b ? b->data + gi * g.Og : NULL, g.N, wt, y->data + gi * g.Og * g.OH * g.OW);
  } else if (!conv_forward(c, &g, x->data, w->data, b ? b->data : NULL, y->data)) {
    return NULL;
  }
  gr_node *nd = gr_tape_record(c, &OP_CONV2D, y, b ? 3 : 2, (gr_tensor *[]){x, w, b});
  if (nd) {
    nd->saved = gr_scratch(c, sizeof g);
    if (!nd->saved) return NULL;
    memcpy(nd->saved, &g, sizeof g);
  }
  return y;
}
