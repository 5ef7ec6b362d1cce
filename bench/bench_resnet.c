/* bench/bench_resnet.c — a small ResNet on 3x32x32 inputs: gr_arch_resnet
 * depth 8, width 16 (conv1+bn1; layer1..3 of one BasicBlock each, widths
 * 16/32/64, stride 2 with a 1x1 conv + bn downsample at layer2/3; global
 * average pool; fc 64->10). Trained with SGD in training mode (batch
 * statistics, running stats updated); inference in eval mode. The PyTorch
 * peer is bench/peer_resnet.py. Usage: as bench_mlp.c. */
#include "bench_train.h"

/* Multiply-accumulates of a k x k conv from cin to cout channels on an hw x hw output. */
static double conv_macs(double cin, double cout, double k, double hw) { return cin * cout * k * k * hw * hw; }

int main(int argc, char **argv) {
  bench_model m = {.model = gr_model_new(42), .sample_ndim = 3, .sample_shape = {3, 32, 32}};
  if (!m.model || gr_model_set_root(m.model, gr_arch_resnet(m.model, 8, 3, 16, 10))) bench_die("resnet");
  double stem = conv_macs(3, 16, 3, 32);
  double body = 2 * conv_macs(16, 16, 3, 32)                                                 /* layer1 */
                + conv_macs(16, 32, 3, 16) + conv_macs(32, 32, 3, 16) + conv_macs(16, 32, 1, 16) /* layer2 */
                + conv_macs(32, 64, 3, 8) + conv_macs(64, 64, 3, 8) + conv_macs(32, 64, 1, 8)    /* layer3 */
                + 64 * 10;                                                                   /* fc */
  m.fwd_flops = 2 * (stem + body);
  m.train_flops = 2 * (2 * (stem + body) + body); /* no dx for the input image */
  return bench_main(argc, argv, &m, "resnet", 32, 20, (size_t)128 << 20);
}
