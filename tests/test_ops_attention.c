/* gr_causal_attention (the fused multi-head self-attention): PyTorch
 * reference (forward + backward; causal, prefix-LM, a one-token sequence,
 * GPT-sized heads, and a grad that accumulates), finite-difference
 * gradients, equality with the composed ops, bad input. */
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "refdata.h"

typedef struct attn_case {
  const char *name;
  int64_t heads, prefix;
  bool twice; /* y + qkv[..., :C]: the slice's backward runs first */
} attn_case;

static gr_tensor *f_attention(gr_ctx *c, gr_tensor **in, void *ud) {
  const attn_case *a = ud;
  gr_tensor *y = gr_causal_attention(c, in[0], a->heads, a->prefix);
  if (!a->twice || !y) return y;
  return gr_add(c, y, gr_slice(c, in[0], -1, 0, y->shape[2]));
}

/* Must match CASES in tests/ref/ref_ops_attention.py. */
static const attn_case CASES[] = {{"causal", 3, 0, false}, {"prefix", 2, 3, false}, {"prefix_all", 2, 4, false},
                                  {"one", 1, 0, false},    {"gpt", 4, 0, false},    {"accumulate", 2, 0, true}};

static void test_reference(void) {
  static const char *x[] = {"qkv"};
  char name[64];
  for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
    snprintf(name, sizeof name, "attention_%s", CASES[i].name);
    CHECK_REF(name, f_attention, (void *)&CASES[i], 1, x);
  }
}

static void test_gradients(void) {
  gr_rng r;
  gr_rng_seed(&r, 5);
  gc_input in = gc_rand(&r, 3, GR_SHAPE(2, 4, 12), -1.5f, 1.5f, true);
  attn_case causal = {"causal", 2, 0, false}, prefix = {"prefix", 2, 2, false}, twice = {"twice", 1, 0, true};
  CHECK_GRAD("attention causal", f_attention, &causal, 1, &in);
  CHECK_GRAD("attention prefix", f_attention, &prefix, 1, &in);
  CHECK_GRAD("attention accumulating", f_attention, &twice, 1, &in);
  gc_input_free(&in);
}

/* The same math through slices, permutes, matmuls and the prefix softmax. */
static gr_tensor *composed(gr_ctx *c, gr_tensor *qkv, int64_t H, int64_t prefix) {
  int64_t B = qkv->shape[0], T = qkv->shape[1], C = qkv->shape[2] / 3;
  gr_tensor *p[3];
  for (int k = 0; k < 3; k++) {
    p[k] = gr_reshape(c, gr_slice(c, qkv, -1, k * C, (k + 1) * C), 4, GR_SHAPE(B, T, H, C / H));
    p[k] = gr_permute(c, p[k], (const int[]){0, 2, 1, 3});
  }
  gr_tensor *att = gr_scale(c, gr_matmul(c, p[0], p[1], false, true), 1.0f / sqrtf((float)(C / H)));
  att = gr_prefix_softmax(c, att, prefix);
  gr_tensor *y = gr_permute(c, gr_matmul(c, att, p[2], false, false), (const int[]){0, 2, 1, 3});
  return gr_reshape(c, y, 3, GR_SHAPE(B, T, C));
}

static void test_equals_composition(void) {
  gr_rng r;
  gr_rng_seed(&r, 8);
  gr_ctx *c = gr_ctx_new(1 << 20, 1);
  float data[3 * 9 * 24];
  test_fill(&r, data, 3 * 9 * 24, -2, 2);
  gr_tensor *qkv = gr_tensor_from(c, 3, GR_SHAPE(3, 9, 24), data);
  for (int64_t prefix = 0; prefix <= 9; prefix += 4) {
    gr_tensor *a = gr_causal_attention(c, qkv, 4, prefix), *b = composed(c, qkv, 4, prefix);
    CHECK(a && b);
    if (a && b) CHECK_CLOSE("fused vs composed attention", a->data, b->data, a->numel, 1e-5, 1e-5);
  }
  gr_ctx_free(c);
}

static void test_bad_input(void) {
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *x = gr_tensor_new(c, 3, GR_SHAPE(2, 4, 12));
  CHECK_FAILS(gr_causal_attention(c, x, 5, 0) != NULL, GR_ESHAPE); /* C = 4 not divisible by 5 */
  CHECK_FAILS(gr_causal_attention(c, x, 0, 0) != NULL, GR_ESHAPE);
  CHECK_FAILS(gr_causal_attention(c, gr_tensor_new(c, 2, GR_SHAPE(4, 12)), 2, 0) != NULL, GR_ESHAPE);
  CHECK_FAILS(gr_causal_attention(c, gr_tensor_new(c, 3, GR_SHAPE(2, 4, 10)), 1, 0) != NULL, GR_ESHAPE);
  CHECK_FAILS(gr_causal_attention(c, gr_tensor_new(c, 3, GR_SHAPE(2, 4, 0)), 1, 0) != NULL, GR_ESHAPE);
  CHECK_FAILS(gr_causal_attention(c, x, 2, 5) != NULL, GR_EARG); /* prefix > T */
  CHECK_FAILS(gr_causal_attention(c, x, 2, -1) != NULL, GR_EARG);
  CHECK_FAILS(gr_causal_attention(c, NULL, 2, 0) != NULL, GR_EARG);
  CHECK_FAILS(gr_causal_attention(NULL, x, 2, 0) != NULL, GR_EARG);
  gr_ctx_free(c);
}

int main(void) {
  gr_set_threads(1);
  test_reference();
  test_gradients();
  test_equals_composition();
  test_bad_input();
  return test_summary();
}
