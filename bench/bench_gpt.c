/* bench/bench_gpt.c — GPT training throughput: tokens/s of graft's GPT
 * (4 layers, width 128, 4 heads, block 64, vocab 96, batch 8, AdamW) on
 * random tokens. Its PyTorch twin is bench/peer_gpt.py (same shapes); run
 * both at one thread: GRAFT_THREADS=1 build/bench_gpt; OMP_NUM_THREADS=1
 * /usr/bin/python3 bench/peer_gpt.py. Prints one line: tokens/s. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "graft/gpt.h"
#include "graft/optim.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 30;
  const int64_t B = 8, T = 64;
  gr_gpt_config cfg = {.vocab = 96, .block = 64, .n_layer = 4, .n_head = 4, .n_embd = 128};
  gr_set_threads(0);
  gr_gpt *g = NULL;
  if (gr_gpt_new(&cfg, 1, &g)) return fprintf(stderr, "bench_gpt: %s\n", gr_last_error()), 1;
  gr_optim_cfg oc = gr_adamw_cfg(3e-4f, 0.01f);
  gr_optim *o = gr_optim_new(g->model, &oc);
  gr_ctx *c = gr_ctx_new(64 << 20, 1);
  gr_rng r;
  gr_rng_seed(&r, 2);
  int32_t ids[8 * 65], x[8 * 64], y[8 * 64];
  double t0 = 0, loss = 0;
  for (int s = 0; s < steps + 3; s++) {
    if (s == 3) t0 = now(); /* 3 warm-up steps */
    for (int i = 0; i < B * (T + 1); i++) ids[i] = (int32_t)gr_rng_below(&r, (uint64_t)cfg.vocab);
    for (int b = 0; b < B; b++)
      for (int t = 0; t < T; t++) x[b * T + t] = ids[b * (T + 1) + t], y[b * T + t] = ids[b * (T + 1) + t + 1];
    gr_model_zero_grad(g->model);
    gr_tensor *l = gr_gpt_loss(g, c, x, y, B, T, 0);
    if (!l || gr_backward(c, l) || gr_optim_step(o)) return fprintf(stderr, "bench_gpt: %s\n", gr_last_error()), 1;
    loss = l->data[0];
    gr_ctx_reset(c);
  }
  double dt = now() - t0;
  printf("bench_gpt threads=%d params=%lld steps=%d loss=%.4f tokens/s=%.0f\n", gr_threads(),
         (long long)gr_model_param_count(g->model, false), steps, loss, steps * B * T / dt);
  gr_ctx_free(c);
  gr_optim_free(o);
  gr_gpt_free(g);
  return 0;
}
