/* bench/bench_mlp.c — MLP 784-256-256-10 (ReLU; gr_arch_mlp) trained with
 * the optimizer API's SGD on a fixed cycle of random batches; inference
 * latency at batch 1 and 64. The PyTorch peer (bench/peer_mlp.py) starts
 * from the same init file and must reach the same losses. Usage:
 *   bench_mlp --write-init FILE [--batch B]         (writes init + data)
 *   bench_mlp --init FILE [--batch B] [--steps N] [--threads T] [--quick] */
#include "bench_train.h"

int main(int argc, char **argv) {
  static const int64_t hidden[] = {256, 256};
  bench_model m = {.model = gr_model_new(42), .sample_ndim = 1, .sample_shape = {784}};
  if (!m.model || gr_model_set_root(m.model, gr_arch_mlp(m.model, 784, hidden, 2, 10, "relu")))
    bench_die("mlp");
  double macs = 784 * 256 + 256 * 256 + 256 * 10, dx_macs = 256 * 256 + 256 * 10; /* no dx for the input */
  m.fwd_flops = 2 * macs;
  m.train_flops = 2 * (2 * macs + dx_macs);
  return bench_main(argc, argv, &m, "mlp", 64, 100, (size_t)16 << 20);
}
