/* bench/bench_gpt.c — GPT training throughput: tokens/s of graft's GPT
 * (4 layers, width 128, 4 heads, block 64, vocab 96, batch 8, AdamW lr 3e-4)
 * on synthetic sequences (row b counts up from a random start modulo the
 * vocabulary, so the loss falls). Its PyTorch twin is bench/peer_gpt.py
 * (same shapes, same data rule, its own init); bench/driver.py runs both
 * (`make bench`, bench "gpt", 1 and 2 threads). Flags of bench_util.h:
 * --threads N --steps N (timed steps after 3 warm-up steps) --quick.
 * Prints one JSON line (case "train", time_s per step, items = tokens per step). */
#include "bench_util.h"
#include "graft/gpt.h"

enum { B = 8, T = 64, WARMUP = 3 };

static void synth_batch(gr_rng *r, int vocab, int32_t *x, int32_t *y) {
  for (int b = 0; b < B; b++) {
    int start = (int)gr_rng_below(r, (uint64_t)vocab);
    for (int t = 0; t < T; t++) x[b * T + t] = (start + t) % vocab, y[b * T + t] = (start + t + 1) % vocab;
  }
}

typedef struct gpt_loop {
  gr_gpt *g;
  gr_optim *o;
  gr_ctx *c;
  gr_rng r;
} gpt_loop;

static float gpt_step(void *arg, int s) {
  (void)s;
  gpt_loop *l = arg;
  int32_t x[B * T], y[B * T];
  synth_batch(&l->r, l->g->cfg.vocab, x, y);
  gr_model_zero_grad(l->g->model);
  gr_tensor *loss = gr_gpt_loss(l->g, l->c, x, y, B, T, 0);
  if (!loss || gr_backward(l->c, loss) || gr_optim_step(l->o)) bench_die("gpt step");
  float v = loss->data[0];
  gr_ctx_reset(l->c);
  return v;
}

int main(int argc, char **argv) {
  bench_args a = {.steps = 30};
  bench_parse(argc, argv, &a);
  if (a.quick && a.steps > 10) a.steps = 10;
  if (a.steps < 1) return fprintf(stderr, "bench_gpt: --steps must be >= 1\n"), 2;
  bench_check_blocks("gpt", a.steps);
  gr_set_threads(a.threads);
  gr_gpt_config cfg = {.vocab = 96, .block = 64, .n_layer = 4, .n_head = 4, .n_embd = 128};
  gpt_loop l = {0};
  if (gr_gpt_new(&cfg, 1, &l.g)) bench_die("gpt");
  gr_optim_cfg oc = gr_adamw_cfg(3e-4f, 0.01f);
  l.o = gr_optim_new(l.g->model, &oc);
  l.c = gr_ctx_new(64 << 20, 1);
  if (!l.o || !l.c) bench_die("gpt optimizer/context");
  gr_rng_seed(&l.r, 2);
  float loss0 = 0;
  for (int s = 0; s < WARMUP; s++) {
    float loss = gpt_step(&l, s);
    if (s == 0) loss0 = loss;
  }
  bench_timing t = bench_time_steps("gpt", gpt_step, &l, WARMUP, a.steps);
  printf("{\"bench\":\"gpt\",\"case\":\"train\",\"time_s\":%.6e,\"cpu_s\":%.6e,\"items\":%d,\"params\":%lld,"
         "\"loss0\":%.7g,\"loss_final\":%.7g,\"steps\":%d,",
         t.wall_s / a.steps, t.cpu_s / a.steps, B * T, (long long)gr_model_param_count(l.g->model, false), loss0,
         t.loss, WARMUP + a.steps);
  bench_print_blas(stdout);
  printf("}\n");
  gr_ctx_free(l.c);
  gr_optim_free(l.o);
  gr_gpt_free(l.g);
  return 0;
}
