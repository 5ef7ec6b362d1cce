/* Thread-count independence: the work graft splits over threads (gemms cut
 * along m or n, convolutions over samples with the weight gradients summed
 * as a fixed tree of sample blocks) gives the same bits at 1, 2 and 3
 * threads, and a whole ResNet-8 training step (every op of it) does too,
 * and so does the optimizer's update (split over the threads per parameter).
 * The sample blocks shrink with the thread count: at 3 threads the 15
 * samples of "same 3x3 N=15" are summed one by one (the tree itself), at 1
 * and 2 as blocks of 4 and 2 samples with a tail of 2 + 1 and 1. */
#include <math.h>
#include <string.h>

#include "core/conv_direct.h"
#include "core/op.h"
#include "graft/nn.h"
#include "graft/optim.h"
#include "graft/rng.h"
#include "testutil.h"

static const int THREADS[] = {1, 2, 3};
#define N_THREADS 3

static float *random_floats(gr_rng *r, int64_t n) {
  float *p = gr_malloc((size_t)n * sizeof(float));
  gr_rng_fill_uniform(r, p, n, -1, 1);
  return p;
}

/* C = op(A) op(B) + beta C at each thread count, compared bit for bit. */
static void test_gemm_split(void) {
  static const int64_t shapes[][5] = {/* m, n, k, ta, tb */
                                      {64, 1024, 784, 0, 0}, {1024, 64, 784, 1, 0}, {512, 384, 128, 0, 1},
                                      {300, 77, 301, 1, 1},  {33, 1031, 129, 0, 0}, {2047, 17, 211, 1, 0},
                                      {96, 96, 96, 0, 0},    {40, 4000, 50, 0, 1},  {16, 8192, 100, 0, 0}, {64, 120, 400, 0, 1},
                                      {1, 4096, 1024, 0, 1}, {1, 3000, 700, 1, 0},  {1, 2053, 1031, 1, 1}};
  gr_rng r;
  gr_rng_seed(&r, 7);
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
    bool ta = shapes[s][3], tb = shapes[s][4];
    float *A = random_floats(&r, m * k), *B = random_floats(&r, k * n), *C0 = random_floats(&r, m * n);
    float *want = NULL;
    for (int beta = 0; beta < 2; beta++)
      for (int t = 0; t < N_THREADS; t++) {
        float *C = gr_malloc((size_t)(m * n) * sizeof(float));
        memcpy(C, C0, (size_t)(m * n) * sizeof(float));
        gr_set_threads(THREADS[t]);
        gr_sgemm_rm(ta, tb, m, n, k, A, ta ? m : k, B, tb ? k : n, (float)beta, C, n);
        if (t == 0) {
          gr_free(want);
          want = C;
          continue;
        }
        CHECK_MSG(!memcmp(C, want, (size_t)(m * n) * sizeof(float)),
                  "gemm %lldx%lldx%lld ta %d tb %d beta %d: %d threads differ from 1", (long long)m, (long long)n,
                  (long long)k, ta, tb, beta, THREADS[t]);
        gr_free(C);
      }
    gr_free(want);
    gr_free(A);
    gr_free(B);
    gr_free(C0);
  }
}

typedef struct conv_case {
  const char *name;
  int64_t N, C, H, O, k;
  gr_conv2d_opts o;
  bool direct; /* the direct kernels where available, else the gemm path */
} conv_case;

/* y, dx, dw, db of one convolution with a random seed gradient. */
static void conv_run(const conv_case *cc, const float *x, const float *w, const float *b, const float *seed,
                     float *out[4], int64_t len[4]) {
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  gr_tensor *tx = gr_leaf(c, 4, GR_SHAPE(cc->N, cc->C, cc->H, cc->H), x);
  gr_tensor *tw = gr_leaf(c, 4, GR_SHAPE(cc->O, cc->C / (cc->o.groups ? cc->o.groups : 1), cc->k, cc->k), w);
  gr_tensor *tb = gr_leaf(c, 1, GR_SHAPE(cc->O), b);
  gr_tensor *y = tx && tw && tb ? gr_conv2d(c, tx, tw, tb, &cc->o) : NULL;
  CHECK(y != NULL);
  if (!y) return;
  CHECK_OK(gr_backward_seed(c, y, seed));
  gr_tensor *all[4] = {y, tx, tw, tb};
  for (int i = 0; i < 4; i++) {
    len[i] = all[i]->numel;
    out[i] = gr_malloc((size_t)len[i] * sizeof(float));
    memcpy(out[i], i ? all[i]->grad : y->data, (size_t)len[i] * sizeof(float));
  }
  gr_ctx_free(c);
}

static void test_conv_split(void) {
  static const conv_case cases[] = {
      {"same 3x3 N=32", 32, 16, 16, 16, 3, {.pad_h = 1, .pad_w = 1}, true},
      {"same 3x3 N=15", 15, 8, 12, 24, 3, {.pad_h = 1, .pad_w = 1}, true},
      {"same 3x3 N=29 gemm path", 29, 8, 10, 8, 3, {.pad_h = 1, .pad_w = 1}, false},
      {"same 5x5 groups N=6", 6, 8, 28, 12, 5, {.pad_h = 2, .pad_w = 2, .groups = 2}, true},
      {"stride 2 3x3 N=24", 24, 16, 16, 32, 3, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}, true},
      {"valid 5x5 N=64", 64, 6, 14, 16, 5, {0}, true},
      {"1x1 stride 2 N=11", 11, 16, 16, 32, 1, {.stride_h = 2, .stride_w = 2}, true},
  };
  static const char *what[4] = {"y", "dx", "dw", "db"};
  gr_rng r;
  gr_rng_seed(&r, 11);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const conv_case *cc = &cases[i];
    int64_t g = cc->o.groups ? cc->o.groups : 1;
    float *x = random_floats(&r, cc->N * cc->C * cc->H * cc->H), *w = random_floats(&r, cc->O * cc->C / g * cc->k * cc->k);
    float *b = random_floats(&r, cc->O), *seed = random_floats(&r, cc->N * cc->O * cc->H * cc->H); /* >= y's numel */
    float *want[4] = {0}, *got[4] = {0};
    int64_t len[4] = {0};
    gr_conv_direct_set_enabled(cc->direct);
    for (int t = 0; t < N_THREADS; t++) {
      gr_set_threads(THREADS[t]);
      conv_run(cc, x, w, b, seed, t ? got : want, len);
      for (int j = 0; t && j < 4; j++) {
        CHECK_MSG(got[j] && want[j] && !memcmp(got[j], want[j], (size_t)len[j] * sizeof(float)),
                  "conv %s: %s at %d threads differs from 1 thread", cc->name, what[j], THREADS[t]);
        gr_free(got[j]);
      }
    }
    gr_conv_direct_set_enabled(true);
    for (int j = 0; j < 4; j++) gr_free(want[j]);
    gr_free(x);
    gr_free(w);
    gr_free(b);
    gr_free(seed);
  }
}

/* Every parameter gradient of a ResNet-8 training step (batch norm in
 * training mode, pooling, cross-entropy: every op the step runs). */
static float *resnet_step_grads(const float *x, const int32_t *labels, int64_t N, int64_t *numel) {
  gr_model *m = gr_model_new(5);
  CHECK_OK(gr_model_set_root(m, gr_arch_resnet(m, 8, 3, 16, 10)));
  gr_model_train(m, true);
  gr_ctx *c = gr_ctx_new(1 << 22, 1);
  gr_tensor *tx = gr_tensor_from(c, 4, GR_SHAPE(N, 3, 16, 16), x);
  gr_tensor *logits = gr_model_forward(m, c, tx);
  gr_tensor *loss = logits ? gr_cross_entropy(c, logits, labels, 0.0f, -100) : NULL;
  CHECK(loss != NULL);
  if (loss) CHECK_OK(gr_backward(c, loss));
  *numel = m->numel;
  float *g = gr_malloc((size_t)m->numel * sizeof(float));
  memcpy(g, m->grad, (size_t)m->numel * sizeof(float));
  gr_ctx_free(c);
  gr_model_free(m);
  return g;
}

static void test_resnet_step(void) {
  enum { N = 24 };
  gr_rng r;
  gr_rng_seed(&r, 3);
  float *x = random_floats(&r, N * 3 * 16 * 16);
  int32_t labels[N];
  for (int i = 0; i < N; i++) labels[i] = (int32_t)gr_rng_below(&r, 10);
  int64_t n = 0;
  gr_set_threads(1);
  float *want = resnet_step_grads(x, labels, N, &n);
  for (int t = 1; t < N_THREADS; t++) {
    gr_set_threads(THREADS[t]);
    float *got = resnet_step_grads(x, labels, N, &n);
    CHECK_MSG(!memcmp(got, want, (size_t)n * sizeof(float)), "resnet-8 step: grads at %d threads differ from 1",
              THREADS[t]);
    gr_free(got);
  }
  gr_free(want);
  gr_free(x);
}

/* Parameters after three optimizer steps with fixed random grads at this
 * thread count (an MLP 300-200-64-10: 74k parameters, above the size where
 * the update is split over the threads; the biases go whole to one thread). */
static gr_model *optim_mlp(void) {
  static const int64_t hidden[] = {200, 64};
  gr_model *m = gr_model_new(5);
  CHECK(m && !gr_model_set_root(m, gr_arch_mlp(m, 300, hidden, 2, 10, "relu")));
  return m;
}

static float *optim_steps(const gr_optim_cfg *cfg, int64_t *numel) {
  gr_model *m = optim_mlp();
  gr_optim *o = gr_optim_new(m, cfg);
  CHECK(o != NULL);
  gr_rng r;
  gr_rng_seed(&r, 9);
  for (int s = 0; s < 3; s++) {
    gr_model_zero_grad(m);
    gr_model_grad_sync(m);
    gr_rng_fill_uniform(&r, m->grad, m->numel, -1, 1);
    CHECK(gr_optim_step(o) == GR_OK);
  }
  *numel = m->numel;
  float *p = gr_malloc((size_t)m->numel * sizeof(float));
  memcpy(p, m->data, (size_t)m->numel * sizeof(float));
  gr_optim_free(o);
  gr_model_free(m);
  return p;
}

static void test_optim_split(void) {
  gr_optim_cfg cfgs[] = {gr_sgd_cfg(0.1f, 0.9f, 0.01f, true), gr_adamw_cfg(1e-3f, 0.01f)};
  for (int c = 0; c < 2; c++) {
    int64_t n = 0;
    gr_set_threads(1);
    float *want = optim_steps(&cfgs[c], &n);
    CHECK(n > 65536);
    for (int t = 1; t < N_THREADS; t++) {
      gr_set_threads(THREADS[t]);
      float *got = optim_steps(&cfgs[c], &n);
      CHECK_MSG(!memcmp(got, want, (size_t)n * sizeof(float)), "%s: parameters at %d threads differ from 1",
                c ? "adamw" : "sgd", THREADS[t]);
      gr_free(got);
    }
    gr_free(want);
  }
  /* a NaN in the part of a weight the last thread updates: an error naming it, and no update at all */
  gr_set_threads(2);
  gr_model *m = optim_mlp();
  gr_optim_cfg cfg = gr_sgd_cfg(0.1f, 0, 0, false);
  gr_optim *o = gr_optim_new(m, &cfg);
  gr_model_zero_grad(m);
  gr_model_grad_sync(m);
  for (int64_t j = 0; j < m->numel; j++) m->grad[j] = 1.0f;
  float *before = gr_malloc((size_t)m->numel * sizeof(float));
  memcpy(before, m->data, (size_t)m->numel * sizeof(float));
  m->entries[0].t->grad[m->entries[0].t->numel - 3] = NAN;
  CHECK(gr_optim_step(o) == GR_ENUMERIC);
  CHECK_MSG(strstr(gr_last_error(), m->entries[0].name) && strstr(gr_last_error(), "59997"), "error: %s",
            gr_last_error());
  CHECK(!memcmp(before, m->data, (size_t)m->numel * sizeof(float)));
  gr_free(before);
  gr_optim_free(o);
  gr_model_free(m);
}

int main(void) {
  test_optim_split();
  test_gemm_split();
  test_conv_split();
  test_resnet_step();
  gr_set_threads(1);
  return test_summary();
}
