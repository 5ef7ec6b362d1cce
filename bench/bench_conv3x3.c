/* bench/bench_conv3x3.c — one sample's same-size 3x3 convolution (pad 1) on
 * ResNet-8's shapes, the direct kernels (conv_direct.c) against Winograd
 * F(2x2, 3x3) (conv_winograd.c): forward (dx is the same kernel) and the
 * weight gradient, padding copy included, CPU time per call (minimum of 5
 * rounds), and the largest difference between the two results. Not run by
 * `make bench` (no PyTorch twin): the A/B for kernel work.
 * Usage: build/bench_conv3x3 (one thread; set OMP_NUM_THREADS=1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/conv_direct.h"
#include "core/conv_winograd.h"

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *random_floats(int64_t n) {
  float *p = malloc((size_t)n * sizeof(float));
  for (int64_t i = 0; p && i < n; i++) p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  return p;
}

static double max_diff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
  return m;
}

/* One shape's buffers; y, dw and du receive the results. */
typedef struct conv_case {
  gr_conv_direct d;
  gr_conv_taps t;
  float *x, *xp, *w, *u, *dy, *y, *dw, *du, *scratch;
} conv_case;

static void direct_forward(conv_case *k) {
  gr_conv_direct_pad(&k->d, k->x, k->xp, true);
  gr_conv_taps_forward(&k->t, k->xp, k->w, NULL, false, k->y);
}
static void wino_forward(conv_case *k) {
  gr_conv_direct_pad(&k->d, k->x, k->xp, true);
  gr_conv_wino_forward(&k->d, k->xp, k->u, NULL, false, k->scratch, k->y);
}
static void direct_wgrad(conv_case *k) {
  gr_conv_direct_pad(&k->d, k->x, k->xp, true);
  gr_conv_taps_wgrad(&k->t, k->xp, k->dy, k->dw);
}
static void wino_wgrad(conv_case *k) {
  gr_conv_direct_pad(&k->d, k->x, k->xp, true);
  gr_conv_wino_wgrad(&k->d, k->xp, k->dy, k->scratch, k->du);
}

/* Seconds per call of fn(k) (minimum over 5 rounds of reps calls). */
static double time_calls(void (*fn)(conv_case *), conv_case *k, int reps) {
  double best = 1e30;
  for (int round = 0; round < 5; round++) {
    double t0 = cpu_now();
    for (int r = 0; r < reps; r++) fn(k);
    best = fmin(best, (cpu_now() - t0) / reps);
  }
  return best;
}

int main(void) {
  static const int shapes[][2] = {{16, 32}, {32, 16}, {64, 8}}; /* channels, plane side */
  for (int s = 0; s < 3; s++) {
    int64_t C = shapes[s][0], H = shapes[s][1];
    conv_case k = {.d = {C, C, H, H, 3, 3, 1, 1, 1, 1}};
    if (!gr_conv_wino_wgrad_fits(&k.d)) {
      printf("Winograd does not fit here (no AVX2?)\n");
      return 77;
    }
    int64_t scratch = gr_conv_wino_scratch_floats(&k.d), ws = gr_conv_wino_wgrad_scratch_floats(&k.d);
    gr_conv_direct_taps(&k.d, &k.t);
    k.x = random_floats(C * H * H), k.dy = random_floats(C * H * H), k.w = random_floats(C * C * 9);
    k.xp = calloc((size_t)gr_conv_direct_pad_floats(&k.d) + GR_CONV_TAPS_SLACK, sizeof(float));
    k.u = malloc((size_t)(16 * C * C) * sizeof(float)), k.du = malloc((size_t)(16 * C * C) * sizeof(float));
    k.scratch = malloc((size_t)(scratch > ws ? scratch : ws) * sizeof(float));
    k.y = malloc((size_t)(C * H * H) * sizeof(float));
    float *y1 = malloc((size_t)(C * H * H) * sizeof(float)), *dw2 = calloc((size_t)(C * C * 9), sizeof(float));
    k.dw = calloc((size_t)(C * C * 9), sizeof(float));
    gr_conv_direct_pad(&k.d, k.x, k.xp, false);
    gr_conv_wino_weights(C, C, k.w, k.u);
    direct_forward(&k);
    memcpy(y1, k.y, (size_t)(C * H * H) * sizeof(float));
    wino_forward(&k);
    double fdiff = max_diff(y1, k.y, C * H * H);
    direct_wgrad(&k);
    wino_wgrad(&k);
    gr_conv_wino_wgrad_add(C, C, k.du, dw2);
    double wdiff = max_diff(k.dw, dw2, C * C * 9);
    int reps = (int)(64000 / (C * C * H * H / 256));
    double fl = 2.0 * (double)(C * C * 9 * H * H);
    double tf = time_calls(direct_forward, &k, reps), twf = time_calls(wino_forward, &k, reps);
    double tw = time_calls(direct_wgrad, &k, reps), tww = time_calls(wino_wgrad, &k, reps);
    printf("C=%-3lld %2lldx%-2lld forward: direct %6.1f us (%5.1f GF/s)  winograd %6.1f us  %.2fx  max diff %.1e | "
           "dW: direct %6.1f us (%5.1f GF/s)  winograd %6.1f us  %.2fx  max diff %.1e\n",
           (long long)C, (long long)H, (long long)H, tf * 1e6, fl / tf * 1e-9, twf * 1e6, tf / twf, fdiff, tw * 1e6,
           fl / tw * 1e-9, tww * 1e6, tw / tww, wdiff);
    free(k.x), free(k.dy), free(k.w), free(k.xp), free(k.u), free(k.du), free(k.scratch), free(k.y), free(y1);
    free(dw2), free(k.dw);
  }
  return 0;
}
