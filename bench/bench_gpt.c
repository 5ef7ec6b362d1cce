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

int main(int argc, char **argv) {
  bench_args a = {.steps = 30};
  bench_parse(argc, argv, &a);
  if (a.quick && a.steps > 10) a.steps = 10;
  if (a.steps < 1) return fprintf(stderr, "bench_gpt: --steps must be >= 1\n"), 2;
  gr_set_threads(a.threads);
  gr_gpt_config cfg = {.vocab = 96, .block = 64, .n_layer = 4, .n_head = 4, .n_embd = 128};
  gr_gpt *g = NULL;
  if (gr_gpt_new(&cfg, 1, &g)) bench_die("gpt");
  gr_optim_cfg oc = gr_adamw_cfg(3e-4f, 0.01f);
  gr_optim *o = gr_optim_new(g->model, &oc);
  gr_ctx *c = gr_ctx_new(64 << 20, 1);
  if (!o || !c) bench_die("gpt optimizer/context");
  gr_rng r;
  gr_rng_seed(&r, 2);
  int32_t x[B * T], y[B * T];
  double t0 = 0, cpu0 = 0, loss0 = 0, loss = 0;
  for (int s = 0; s < WARMUP + a.steps; s++) {
    if (s == WARMUP) t0 = bench_now(), cpu0 = bench_cpu_now();
    synth_batch(&r, cfg.vocab, x, y);
    gr_model_zero_grad(g->model);
    gr_tensor *l = gr_gpt_loss(g, c, x, y, B, T, 0);
    if (!l || gr_backward(c, l) || gr_optim_step(o)) bench_die("gpt step");
    loss = l->data[0];
    if (s == 0) loss0 = loss;
    gr_ctx_reset(c);
  }
  double per_step = (bench_now() - t0) / a.steps, cpu_per_step = (bench_cpu_now() - cpu0) / a.steps;
  printf("{\"bench\":\"gpt\",\"case\":\"train\",\"time_s\":%.6e,\"cpu_s\":%.6e,\"items\":%d,\"params\":%lld,"
         "\"loss0\":%.7g,\"loss_final\":%.7g,\"steps\":%d,",
         per_step, cpu_per_step, B * T, (long long)gr_model_param_count(g->model, false), loss0, loss, WARMUP + a.steps);
  bench_print_blas(stdout);
  printf("}\n");
  gr_ctx_free(c);
  gr_optim_free(o);
  gr_gpt_free(g);
  return 0;
}
