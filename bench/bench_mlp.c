/* bench/bench_mlp.c — MLP 784-256-256-10 (ReLU) trained with SGD on a fixed
 * cycle of random batches, written with graft's core ops; inference latency
 * at batch 1 and 64. The PyTorch peer (bench/peer_mlp.py) starts from the
 * same init file and must reach the same losses. Usage:
 *   bench_mlp --write-init FILE --batch B          (writes init + data)
 *   bench_mlp --init FILE --batch B --steps N --threads T [--quick] */
#include "bench_train.h"

static const int64_t MLP_DIMS[] = {784, 256, 256, 10};
#define MLP_LAYERS 3

typedef struct mlp {
  gr_tensor *w[MLP_LAYERS], *b[MLP_LAYERS];
} mlp;

static gr_tensor *mlp_forward(gr_ctx *c, void *self, gr_tensor *x) {
  mlp *m = self;
  for (int l = 0; l < MLP_LAYERS; l++) {
    x = gr_linear(c, x, m->w[l], m->b[l]);
    if (l + 1 < MLP_LAYERS) x = gr_relu(c, x);
  }
  return x;
}

/* Parameters in PyTorch's state_dict order (0.weight, 0.bias, 2.weight, ...),
 * initialized like nn.Linear: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias. */
static void mlp_init(mlp *m, bench_model *bm, gr_tensor **params, gr_arena *a, gr_rng *r) {
  double macs = 0, input_grad_macs = 0;
  for (int l = 0; l < MLP_LAYERS; l++) {
    int64_t in = MLP_DIMS[l], out = MLP_DIMS[l + 1];
    m->w[l] = gr_tensor_new_in(a, 2, GR_SHAPE(out, in), true);
    m->b[l] = gr_tensor_new_in(a, 1, GR_SHAPE(out), true);
    if (!m->w[l] || !m->b[l]) bench_die("mlp params");
    float bound = 1.0f / sqrtf((float)in);
    gr_rng_fill_uniform(r, m->w[l]->data, out * in, -bound, bound);
    gr_rng_fill_uniform(r, m->b[l]->data, out, -bound, bound);
    params[2 * l] = m->w[l];
    params[2 * l + 1] = m->b[l];
    macs += (double)(in * out);
    if (l > 0) input_grad_macs += (double)(in * out); /* no dx for the input layer */
  }
  *bm = (bench_model){.params = params, .nparams = 2 * MLP_LAYERS, .forward = mlp_forward, .self = m,
                      .sample_ndim = 1, .sample_shape = {MLP_DIMS[0]},
                      .train_flops = 2 * (2 * macs + input_grad_macs), .fwd_flops = 2 * macs};
}

int main(int argc, char **argv) {
  bench_args a = {.batch = 64, .steps = 100};
  bench_parse(argc, argv, &a);
  gr_set_threads(a.threads);
  gr_ctx *c = gr_ctx_new((size_t)16 << 20, 42);
  gr_arena *arena = gr_arena_new((size_t)4 << 20);
  if (!c || !arena) bench_die("context");
  mlp m;
  bench_model bm;
  gr_tensor *params[2 * MLP_LAYERS];
  mlp_init(&m, &bm, params, arena, gr_ctx_rng(c));
  return bench_main(c, &bm, &a, "mlp", arena);
}
