/* bench/bench_finetune.c — a fine-tuning step, full or LoRA: MLP
 * 784-1024-1024-10 (gr_arch_mlp, ReLU) trained with SGD on a fixed cycle of
 * random batches, either every parameter (--lora 0, benchmark "ft") or LoRA
 * adapters of rank R on its three Linear layers with the base weights frozen
 * (--lora R, benchmark "lora": gr_lora_wrap, alpha 8; A and B both random,
 * PEFT's init_lora_weights=False, so the loss moves within the few timed
 * steps, which the same-result check needs; the init file carries A and B;
 * the step's cost does not depend on the values). The driver runs both, so one run gives
 * the LoRA step against the full step on both sides. The PyTorch peer is
 * bench/peer_finetune.py (a LoRA module with PEFT's parameter names).
 * Usage: as bench_mlp.c, plus --lora R (first flag pair, default 0). */
#include "bench_train.h"
#include "graft/peft.h"

#define FT_IN 784
#define FT_HIDDEN 1024
#define FT_CLASSES 10

/* The --lora R flag pair, removed from argv (bench_parse rejects unknown flags). */
static int take_lora_flag(int *argc, char **argv) {
  for (int i = 1; i + 1 < *argc; i++)
    if (!strcmp(argv[i], "--lora")) {
      int r = atoi(argv[i + 1]);
      for (int j = i; j + 2 <= *argc; j++) argv[j] = argv[j + 2];
      *argc -= 2;
      return r;
    }
  return 0;
}

int main(int argc, char **argv) {
  int r = take_lora_flag(&argc, argv);
  static const int64_t hidden[] = {FT_HIDDEN, FT_HIDDEN};
  bench_model m = {.model = gr_model_new(42), .sample_ndim = 1, .sample_shape = {FT_IN}};
  if (!m.model || gr_model_set_root(m.model, gr_arch_mlp(m.model, FT_IN, hidden, 2, FT_CLASSES, "relu")))
    bench_die("mlp");
  double layers[3][2] = {{FT_IN, FT_HIDDEN}, {FT_HIDDEN, FT_HIDDEN}, {FT_HIDDEN, FT_CLASSES}};
  double base = 0, dx = 0, lora = 0;
  for (int i = 0; i < 3; i++) {
    base += layers[i][0] * layers[i][1];
    if (i) dx += layers[i][0] * layers[i][1]; /* no dx for the input */
    lora += r * (layers[i][0] + layers[i][1]);
  }
  if (r > 0) {
    gr_lora_opts o = {.r = r, .alpha = 8, .init = GR_LORA_INIT_RANDOM};
    const char *paths[] = {"layers.0", "layers.2", "layers.4"};
    for (int i = 0; i < 3; i++)
      if (gr_lora_wrap(m.model, paths[i], &o)) bench_die("lora");
    if (gr_model_freeze(m.model, "*.base_layer.*", true) != 6) bench_die("freezing the base layers");
    m.fwd_flops = 2 * (base + lora);
    m.train_flops = 2 * (base + lora + dx + 3 * lora); /* base dx; LoRA dA, dB and dx */
  } else {
    m.fwd_flops = 2 * base;
    m.train_flops = 2 * (2 * base + dx);
  }
  return bench_main(argc, argv, &m, r > 0 ? "lora" : "ft", 64, 30, (size_t)64 << 20);
}
