/* bench/bench_lenet.c — LeNet-5 on 1x28x28 inputs (gr_arch_lenet: conv 1->6
 * 5x5 pad 2, relu, maxpool 2; conv 6->16 5x5, relu, maxpool 2; fc
 * 400-120-84-10 with relu) trained with SGD on a fixed cycle of random
 * batches; inference latency at batch 1 and the training batch. The PyTorch
 * peer is bench/peer_lenet.py. Usage: as bench_mlp.c. */
#include "bench_train.h"

int main(int argc, char **argv) {
  bench_model m = {.model = gr_model_new(42), .sample_ndim = 3, .sample_shape = {1, 28, 28}};
  if (!m.model || gr_model_set_root(m.model, gr_arch_lenet(m.model, 1, 10))) bench_die("lenet");
  double conv1 = 6 * 28 * 28 * 25, conv2 = 16 * 10 * 10 * 150, fc = 400 * 120 + 120 * 84 + 84 * 10;
  m.fwd_flops = 2 * (conv1 + conv2 + fc);
  m.train_flops = 2 * (2 * (conv1 + conv2 + fc) + conv2 + fc); /* no dx for the input image */
  return bench_main(argc, argv, &m, "lenet", 64, 60, (size_t)64 << 20);
}
