/* conv2d, max/avg pooling, global average pooling: PyTorch reference
 * (forward + backward), finite-difference gradients, bad input. */
#include <math.h>
#include <string.h>

#include "core/conv_direct.h"
#include "core/conv_valid.h"
#include "core/conv_winograd.h"
#include "gradcheck.h"
#include "refdata.h"

static gr_tensor *f_conv(gr_ctx *c, gr_tensor **in, void *ud) {
  return gr_conv2d(c, in[0], in[1], in[2], (const gr_conv2d_opts *)ud);
}
static gr_tensor *f_conv_nb(gr_ctx *c, gr_tensor **in, void *ud) {
  return gr_conv2d(c, in[0], in[1], NULL, (const gr_conv2d_opts *)ud);
}
/* x used twice: the second backward into x accumulates (the first one's grad is fresh). */
static gr_tensor *f_conv_twice(gr_ctx *c, gr_tensor **in, void *ud) {
  gr_tensor *a = gr_conv2d(c, in[0], in[1], in[2], (const gr_conv2d_opts *)ud);
  gr_tensor *b = gr_conv2d(c, in[0], in[3], NULL, (const gr_conv2d_opts *)ud);
  return a && b ? gr_add(c, a, b) : NULL;
}
static gr_tensor *f_max(gr_ctx *c, gr_tensor **in, void *ud) { return gr_max_pool2d(c, in[0], ud); }
static gr_tensor *f_max_relu(gr_ctx *c, gr_tensor **in, void *ud) { return gr_max_pool2d_relu(c, in[0], ud); }
/* h = 1*x pooled twice: the plain pool's backward (recorded last) gets a
 * fresh grad for h (the leaf x's is zero-filled: accumulated into), the
 * fused one's accumulates into it. */
/* The fused pool of h = 1*x: its backward writes h's fresh grad whole. */
static gr_tensor *f_max_relu_of_scaled(gr_ctx *c, gr_tensor **in, void *ud) {
  gr_tensor *h = gr_scale(c, in[0], 1.0f);
  return h ? gr_max_pool2d_relu(c, h, ud) : NULL;
}
static gr_tensor *f_max_relu_and_max(gr_ctx *c, gr_tensor **in, void *ud) {
  gr_tensor *h = gr_scale(c, in[0], 1.0f);
  gr_tensor *a = h ? gr_max_pool2d_relu(c, h, ud) : NULL, *b = a ? gr_max_pool2d(c, h, ud) : NULL;
  return b ? gr_add(c, a, gr_scale(c, b, 0.5f)) : NULL;
}
/* h = 1*x into a 3x3 stride-2 pad-1 and a 1x1 stride-2 convolution (ResNet's
 * conv1 and downsample), summed: the one recorded last (the 1x1 when *ud is
 * 0) writes h's fresh grad whole (zeros where the 1x1 reads nothing), the
 * other accumulates into it. */
static gr_tensor *f_s2_pair_of_scaled(gr_ctx *c, gr_tensor **in, void *ud) {
  gr_conv2d_opts k3 = {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}, k1 = {.stride_h = 2, .stride_w = 2};
  gr_tensor *h = gr_scale(c, in[0], 1.0f), *a = NULL, *b = NULL;
  if (h && *(const int *)ud == 0) a = gr_conv2d(c, h, in[1], NULL, &k3), b = a ? gr_conv2d(c, h, in[2], NULL, &k1) : NULL;
  if (h && *(const int *)ud == 1) b = gr_conv2d(c, h, in[2], NULL, &k1), a = b ? gr_conv2d(c, h, in[1], NULL, &k3) : NULL;
  return a && b ? gr_add(c, a, b) : NULL;
}
static gr_tensor *f_avg(gr_ctx *c, gr_tensor **in, void *ud) { return gr_avg_pool2d(c, in[0], ud); }
static gr_tensor *f_gap(gr_ctx *c, gr_tensor **in, void *ud) { return gr_global_avg_pool(c, in[0]); }

static const float *opts_of(const char *name, ref_file **keep) {
  char n[64];
  snprintf(n, sizeof n, "%s_opts", name);
  *keep = ref_open(n);
  const ref_array *a = *keep ? ref_get(*keep, "opts") : NULL;
  return a ? a->data : NULL;
}

static void conv_refs(void) {
  static const char *names[] = {"conv_basic", "conv_pad_stride", "conv_dilated", "conv_groups",
                                "conv_depthwise", "conv_1x1", "conv_lenet2", "conv_edge1",
                                "conv_chunks", "conv_chunks_groups", "conv_lenet1", "conv_wide_odd",
                                "conv_wide_groups_chunks", "conv_resnet3x3", "conv_stride3_dil", "conv_1x1_s2",
                                "conv_same_thin", "conv_same_flat", "conv_same_dil_groups", "conv_same_wide",
                                "conv_same_k5", "conv_same_k7", "conv_valid_o8_k3x2", "conv_valid_groups_o16",
                                "conv_valid_o16_k1x5", "conv_resnet_s2", "conv_resnet_s2_rows8", "conv_resnet_down",
                                "conv_s2_odd", "conv_s2_tiny", "conv_s2_wide", "conv_s1_pad_k5", "conv_s2_k9", "conv_s2_pad2_odd",
                                "conv_s2_groups_o16", "conv_s2_k5_even",
                                "conv_valid_o8_ow12", "conv_valid_o16_ow13",
                                "conv_wino_rows8", "conv_wino_rows8_tall", "conv_wino_tails", "conv_wino_groups",
                                "conv_wino_h10", "conv_wino_wide"};
  static const char *xwb[] = {"x", "w", "b"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    ref_file *of;
    const float *o = opts_of(names[i], &of);
    CHECK_MSG(o != NULL, "options of %s", names[i]);
    if (!o) continue;
    gr_conv2d_opts co = {.stride_h = (int)o[0], .stride_w = (int)o[0], .pad_h = (int)o[1], .pad_w = (int)o[1],
                         .dil_h = (int)o[2], .dil_w = (int)o[2], .groups = (int)o[3]};
    ref_file *f = ref_open(names[i]);
    bool has_b = f && ref_has(f, "b");
    ref_close(f);
    if (has_b) CHECK_REF(names[i], f_conv, &co, 3, xwb);
    else CHECK_REF(names[i], f_conv_nb, &co, 2, xwb);
    ref_close(of);
  }
}

static void pool_refs(void) {
  static const char *names[] = {"pool_2x2", "pool_3s2p1", "pool_3s2p1_nopad", "pool_overlap", "pool_2x2_wide"};
  static const char *x[] = {"x"};
  char n[64];
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    ref_file *of;
    const float *o = opts_of(names[i], &of);
    CHECK_MSG(o != NULL, "options of %s", names[i]);
    if (!o) continue;
    gr_pool2d_opts po = {.kernel_h = (int)o[0], .kernel_w = (int)o[0], .stride_h = (int)o[1], .stride_w = (int)o[1],
                         .pad_h = (int)o[2], .pad_w = (int)o[2], .count_include_pad = o[3] != 0};
    snprintf(n, sizeof n, "max%s", names[i]);
    CHECK_REF(n, f_max, &po, 1, x);
    snprintf(n, sizeof n, "maxrelu%s", names[i]);
    CHECK_REF(n, f_max_relu, &po, 1, x);
    snprintf(n, sizeof n, "avg%s", names[i]);
    CHECK_REF(n, f_avg, &po, 1, x);
    ref_close(of);
  }
  CHECK_REF("gap", f_gap, NULL, 1, x);
}

static void gradchecks(void) {
  gr_rng r;
  gr_rng_seed(&r, 11);
  gr_conv2d_opts co = {.stride_h = 2, .stride_w = 1, .pad_h = 1, .pad_w = 2, .dil_h = 1, .dil_w = 2, .groups = 2};
  gc_input in[3] = {gc_rand(&r, 4, GR_SHAPE(2, 4, 5, 6), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(4, 2, 3, 2), -1, 1, true),
                    gc_rand(&r, 1, GR_SHAPE(4), -1, 1, true)};
  CHECK_GRAD("conv2d stride/pad/dil/groups", f_conv, &co, 3, in);
  for (int k = 0; k < 3; k++) gc_input_free(&in[k]);
  /* stride 1 (the wide lowering): unequal padding, dilation and groups; then no padding (dx written in place) */
  gr_conv2d_opts wide = {.pad_h = 2, .pad_w = 1, .dil_h = 2, .groups = 2};
  gc_input wi[3] = {gc_rand(&r, 4, GR_SHAPE(2, 4, 5, 7), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(4, 2, 3, 2), -1, 1, true),
                    gc_rand(&r, 1, GR_SHAPE(4), -1, 1, true)};
  CHECK_GRAD("conv2d stride 1, pad 2x1, dil 2, groups 2", f_conv, &wide, 3, wi);
  gr_conv2d_opts nopad = {.groups = 2};
  CHECK_GRAD("conv2d stride 1, no padding, groups 2", f_conv, &nopad, 3, wi);
  for (int k = 0; k < 3; k++) gc_input_free(&wi[k]);
  /* valid with 8 output channels (conv_valid.c's dW kernel): 2 samples, one chunk */
  gc_input vi[3] = {gc_rand(&r, 4, GR_SHAPE(2, 2, 5, 6), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(8, 2, 3, 3), -1, 1, true),
                    gc_rand(&r, 1, GR_SHAPE(8), -1, 1, true)};
  CHECK_GRAD("conv2d valid, 8 output channels", f_conv, NULL, 3, vi);
  for (int k = 0; k < 3; k++) gc_input_free(&vi[k]);
  /* same size (direct kernels or shifted planes): groups, dilation, x read by two convolutions */
  gr_conv2d_opts same = {.pad_h = 2, .pad_w = 1, .dil_h = 2, .groups = 2};
  gc_input si[4] = {gc_rand(&r, 4, GR_SHAPE(2, 4, 5, 9), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(4, 2, 3, 3), -1, 1, true),
                    gc_rand(&r, 1, GR_SHAPE(4), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(4, 2, 3, 3), -1, 1, true)};
  CHECK_GRAD("conv2d same size, pad 2x1, dil 2x1, groups 2, x used twice", f_conv_twice, &same, 4, si);
  for (int k = 0; k < 4; k++) gc_input_free(&si[k]);
  /* 3x3 pad 1 with 8 channels: Winograd (when enabled), dx fresh then accumulated */
  gr_conv2d_opts pad1 = {.pad_h = 1, .pad_w = 1};
  gc_input wg[4] = {gc_rand(&r, 4, GR_SHAPE(2, 8, 4, 8), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(8, 8, 3, 3), -1, 1, true),
                    gc_rand(&r, 1, GR_SHAPE(8), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(8, 8, 3, 3), -1, 1, true)};
  CHECK_GRAD("conv2d 3x3 pad 1, 8 channels, x used twice", f_conv_twice, &pad1, 4, wg);
  for (int k = 0; k < 4; k++) gc_input_free(&wg[k]);
  /* stride 2 (direct kernels over phase-split planes): a 3x3 pad-1 kernel on
   * odd sizes, a 1x1 downsample, a plane smaller than the kernel (batch 1) */
  gr_conv2d_opts s2 = {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
  gc_input s2i[3] = {gc_rand(&r, 4, GR_SHAPE(2, 3, 7, 9), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(7, 3, 3, 3), -1, 1, true),
                     gc_rand(&r, 1, GR_SHAPE(7), -1, 1, true)};
  CHECK_GRAD("conv2d 3x3 stride 2 pad 1", f_conv, &s2, 3, s2i);
  for (int k = 0; k < 3; k++) gc_input_free(&s2i[k]);
  /* 16 output channels on an even plane: the weight gradient transposed
   * (gr_conv_taps_wgrad_t), dx by x parity */
  gc_input s16[2] = {gc_rand(&r, 4, GR_SHAPE(2, 2, 6, 8), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(16, 2, 3, 3), -1, 1, true)};
  CHECK_GRAD("conv2d 3x3 stride 2 pad 1, 16 output channels", f_conv_nb, &s2, 2, s16);
  for (int k = 0; k < 2; k++) gc_input_free(&s16[k]);
  /* ResNet's conv1 + downsample on an intermediate (dx by parity, fresh then accumulated), both orders */
  gc_input pi[3] = {gc_rand(&r, 4, GR_SHAPE(2, 3, 6, 8), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(8, 3, 3, 3), -1, 1, true),
                    gc_rand(&r, 4, GR_SHAPE(8, 3, 1, 1), -1, 1, true)};
  for (int order = 0; order < 2; order++)
    CHECK_GRAD(order ? "conv2d 1x1 then 3x3 stride 2 of 1*x" : "conv2d 3x3 then 1x1 stride 2 of 1*x",
               f_s2_pair_of_scaled, &order, 3, pi);
  for (int k = 0; k < 3; k++) gc_input_free(&pi[k]);
  gr_conv2d_opts down = {.stride_h = 2, .stride_w = 2};
  gc_input di[2] = {gc_rand(&r, 4, GR_SHAPE(2, 4, 5, 6), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(5, 4, 1, 1), -1, 1, true)};
  CHECK_GRAD("conv2d 1x1 stride 2", f_conv_nb, &down, 2, di);
  for (int k = 0; k < 2; k++) gc_input_free(&di[k]);
  gc_input ti[2] = {gc_rand(&r, 4, GR_SHAPE(1, 2, 2, 1), -1, 1, true), gc_rand(&r, 4, GR_SHAPE(3, 2, 3, 3), -1, 1, true)};
  CHECK_GRAD("conv2d 3x3 stride 2 pad 1 on a 2x1 plane", f_conv_nb, &s2, 2, ti);
  for (int k = 0; k < 2; k++) gc_input_free(&ti[k]);
  /* max pool: values spaced 0.05 apart so eps = 1e-2 never flips a window's max */
  gc_input mp = gc_rand(&r, 4, GR_SHAPE(1, 2, 5, 5), 0, 1, true);
  int64_t perm[50];
  gr_rng_permutation(&r, 50, perm);
  for (int i = 0; i < 50; i++) mp.data[i] = (float)perm[i] * 0.05f;
  gr_pool2d_opts po = {.kernel_h = 3, .kernel_w = 2, .stride_h = 2, .stride_w = 1, .pad_h = 1, .pad_w = 1};
  CHECK_GRAD("max_pool2d", f_max, &po, 1, &mp);
  CHECK_GRAD("avg_pool2d", f_avg, &po, 1, &mp);
  po.count_include_pad = true;
  CHECK_GRAD("avg_pool2d include pad", f_avg, &po, 1, &mp);
  CHECK_GRAD("global_avg_pool", f_gap, NULL, 1, &mp);
  /* fused max pool + ReLU: half the values negative (none within eps of 0) */
  for (int i = 0; i < 50; i++) mp.data[i] = (float)perm[i] * 0.05f - 1.225f;
  po.count_include_pad = false;
  CHECK_GRAD("max_pool2d_relu", f_max_relu, &po, 1, &mp);
  gc_input_free(&mp);
  /* 2x2 windows tiling a 6x8 plane: the backward that writes dx whole, fresh then accumulated */
  gc_input tp = gc_rand(&r, 4, GR_SHAPE(2, 2, 6, 8), 0, 1, true);
  int64_t tperm[192];
  gr_rng_permutation(&r, 192, tperm);
  for (int i = 0; i < 192; i++) tp.data[i] = (float)tperm[i] * 0.05f - 4.775f;
  gr_pool2d_opts p22 = {.kernel_h = 2, .kernel_w = 2};
  CHECK_GRAD("max_pool2d_relu 2x2", f_max_relu, &p22, 1, &tp);
  CHECK_GRAD("max_pool2d_relu 2x2 and max_pool2d of the same x", f_max_relu_and_max, &p22, 1, &tp);
  CHECK_GRAD("max_pool2d_relu 2x2 of 1*x (fresh grad)", f_max_relu_of_scaled, &p22, 1, &tp);
  gr_pool2d_opts p32 = {.kernel_h = 3, .kernel_w = 2, .stride_h = 3, .stride_w = 2};
  CHECK_GRAD("max_pool2d_relu 3x2 tiles", f_max_relu_and_max, &p32, 1, &tp);
  gc_input_free(&tp);
}

/* The 2x2 stride-2 max pool's fast path (vectorized, with masked tails)
 * against a plain window scan on data full of ties and NaNs: the first
 * maximum in row-major window order wins, a NaN wins over numbers (the first
 * NaN of the window), and backward sends each output's gradient there. */
static void maxpool_2x2_ties_and_nans(void) {
  enum { N = 2, C = 3, H = 7, W = 39, OH = 3, OW = 19 };
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_rng r;
  gr_rng_seed(&r, 5);
  static float x[N * C * H * W], seed[N * C * OH * OW], want_dx[N * C * H * W];
  for (int i = 0; i < N * C * H * W; i++) x[i] = gr_rng_below(&r, 7) == 0 ? NAN : 0.5f * (float)gr_rng_below(&r, 3);
  for (int i = 0; i < N * C * OH * OW; i++) seed[i] = (float)(i + 1);
  gr_tensor *xt = gr_leaf(c, 4, GR_SHAPE(N, C, H, W), x);
  gr_pool2d_opts po = {.kernel_h = 2, .kernel_w = 2};
  gr_tensor *y = gr_max_pool2d(c, xt, &po);
  CHECK(y && y->shape[2] == OH && y->shape[3] == OW);
  if (!y) return;
  int bad = 0;
  for (int p = 0; p < N * C; p++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        int at = -1;
        for (int ki = 0; ki < 2; ki++)
          for (int kj = 0; kj < 2; kj++) {
            int i = p * H * W + (2 * oh + ki) * W + 2 * ow + kj;
            if (at < 0 || (!isnan(x[at]) && (x[i] > x[at] || isnan(x[i])))) at = i;
          }
        float got = y->data[(p * OH + oh) * OW + ow];
        bad += isnan(x[at]) ? !isnan(got) : got != x[at];
        want_dx[at] += seed[(p * OH + oh) * OW + ow];
      }
  CHECK_MSG(bad == 0, "2x2 max pool: %d outputs differ from the window scan", bad);
  CHECK(gr_backward_seed(c, y, seed) == GR_OK);
  bad = 0;
  for (int i = 0; i < N * C * H * W; i++) bad += xt->grad[i] != want_dx[i];
  CHECK_MSG(bad == 0, "2x2 max pool backward: %d input gradients differ", bad);
  gr_ctx_free(c);
}

static void bad_input(void) {
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x = gr_tensor_new(c, 4, GR_SHAPE(1, 3, 4, 4)), *w = gr_tensor_new(c, 4, GR_SHAPE(2, 3, 5, 5));
  gr_tensor *w2 = gr_tensor_new(c, 4, GR_SHAPE(2, 2, 3, 3)), *x3 = gr_tensor_new(c, 3, GR_SHAPE(3, 4, 4));
  CHECK_FAILS(gr_conv2d(c, x, w, NULL, NULL), GR_ESHAPE);              /* kernel > input */
  CHECK_FAILS(gr_conv2d(c, x, w2, NULL, NULL), GR_ESHAPE);             /* channel mismatch */
  gr_conv2d_opts g2 = {.groups = 2};
  CHECK_FAILS(gr_conv2d(c, x, w2, NULL, &g2), GR_ESHAPE);              /* 3 channels, 2 groups */
  CHECK_FAILS(gr_conv2d(c, x3, w2, NULL, NULL), GR_ESHAPE);            /* rank 3 */
  CHECK_FAILS(gr_conv2d(c, NULL, w2, NULL, NULL), GR_EARG);
  gr_conv2d_opts neg = {.stride_h = -1};
  CHECK_FAILS(gr_conv2d(c, x, w2, NULL, &neg), GR_EARG);
  gr_tensor *bb = gr_tensor_new(c, 1, GR_SHAPE(3));
  gr_tensor *w3 = gr_tensor_new(c, 4, GR_SHAPE(2, 3, 3, 3));
  CHECK_FAILS(gr_conv2d(c, x, w3, bb, NULL), GR_ESHAPE);               /* bias size */
  gr_pool2d_opts big = {.kernel_h = 6, .kernel_w = 6};
  CHECK_FAILS(gr_max_pool2d(c, x, &big), GR_ESHAPE);
  gr_pool2d_opts zero = {0};
  CHECK_FAILS(gr_avg_pool2d(c, x, &zero), GR_EARG);
  CHECK_FAILS(gr_max_pool2d(c, x, NULL), GR_EARG);
  CHECK_FAILS(gr_global_avg_pool(c, x3), GR_ESHAPE);
  CHECK_FAILS(gr_max_pool2d_relu(c, x, &big), GR_ESHAPE);
  CHECK_FAILS(gr_max_pool2d_relu(c, x, NULL), GR_EARG);
  CHECK_FAILS(gr_max_pool2d_relu(c, x3, &zero), GR_ESHAPE);
  CHECK_FAILS(gr_max_pool2d_relu(c, NULL, &big), GR_EARG);
  CHECK(strstr(gr_last_error(), "max_pool2d_relu") != NULL);
  gr_tensor *empty = gr_tensor_new(c, 4, GR_SHAPE(0, 3, 4, 4));
  gr_tensor *ye = gr_conv2d(c, empty, w3, NULL, NULL);
  CHECK(ye && ye->shape[0] == 0 && ye->shape[1] == 2);
  gr_ctx_free(c);
}

int main(void) {
  conv_refs();
  pool_refs();
  gradchecks();
  /* again on the direct kernels where Winograd took the 3x3 convolutions */
  gr_conv_wino_set_enabled(false);
  conv_refs();
  gradchecks();
  gr_conv_wino_set_enabled(true);
  /* again on the gemm path that machines without AVX2 take (the same on those) */
  gr_conv_direct_set_enabled(false);
  gr_conv_valid_set_enabled(false);
  conv_refs();
  gradchecks();
  gr_conv_direct_set_enabled(true);
  gr_conv_valid_set_enabled(true);
  maxpool_2x2_ties_and_nans();
  bad_input();
  return test_summary();
}
