/* transfer/peft/ia3.c — (IA)^3, learned rescaling vectors.
 *
 * Paper: Liu et al., "Few-Shot Parameter-Efficient Fine-Tuning is Better
 * and Cheaper than In-Context Learning" (2022), sec. 3.3: activations are
 * rescaled elementwise by learned vectors l (keys, values, and the inner
 * FFN activation), l = 1 at init. Implemented as Hugging Face PEFT does
 * (tuners/ia3/layer.py, FORMATS.md §2.3):
 *   other targets:         y = l * base(x)   l [out,1]     ([1,out,1,1] conv)
 *   feedforward_modules:   y = base(l * x)   l [1,in]      ([1,C_in,1,1] conv)
 * Merge: W' = l[o] W[o,:], b' = l b (output scaling) or W' = W[:,i] l[i],
 * bias untouched (input scaling); unmerge divides by l (exactly; PEFT adds
 * 1e-8, and a zero in l makes the merge impossible to undo: GR_ENUMERIC).
 * What it changes in the model: the target becomes an "IA3" wrapper with
 * the parameter "ia3_l" and the untouched base as "base_layer". */
#include <math.h>
#include <string.h>

#include "transfer/peft/peft_layer.h"

typedef struct ia3_cfg {
  peft_layer L;
  bool feedforward;
} ia3_cfg;

static gr_status ia3_fold(gr_module *w, bool merge);
static void ia3_describe(const gr_module *w, peft_desc *d) {
  *d = (peft_desc){.type = GR_PEFT_IA3, .feedforward = ((const ia3_cfg *)w->cfg)->feedforward};
}
const peft_layer_ops peft_ia3_ops = {"IA3", ia3_fold, ia3_describe};

static gr_tensor *ia3_forward(gr_module *w, gr_ctx *c, gr_tensor *x) {
  ia3_cfg *cf = w->cfg;
  if (cf->L.merged) return peft_base_forward(w, c, x);
  gr_tensor *l = gr_module_param_get(w, "ia3_l");
  if (cf->feedforward) return x ? peft_base_forward(w, c, gr_mul(c, x, l)) : NULL;
  gr_tensor *y = peft_base_forward(w, c, x);
  /* [out,1] multiplies the last dim of a Linear's output as [out] */
  gr_tensor *lv = cf->L.t.conv ? l : gr_reshape(c, l, 1, GR_SHAPE(cf->L.t.out));
  return y && lv ? gr_mul(c, y, lv) : NULL;
}

gr_status gr_ia3_wrap(gr_model *m, const char *path, bool feedforward, bool init_ones) {
  peft_target t;
  gr_status s = peft_target_get(m, path, "IA3", &t);
  if (s) return s;
  gr_module *w = peft_layer_new(m, &peft_ia3_ops, ia3_forward, sizeof(ia3_cfg), &t);
  if (!w) return gr_last_status();
  ((ia3_cfg *)w->cfg)->feedforward = feedforward;
  int64_t width = feedforward ? t.in_ch : t.out;
  int64_t lin_ff[2] = {1, width}, lin_out[2] = {width, 1}, conv[4] = {1, width, 1, 1};
  gr_tensor *l = gr_module_new_param(w, "ia3_l", t.conv ? 4 : 2, t.conv ? conv : feedforward ? lin_ff : lin_out, false);
  if (!l) return gr_last_status();
  if (init_ones) gr_tensor_fill(l, 1.0f);
  else gr_rng_fill_normal(&m->rng, l->data, l->numel, 0.0f, 1.0f);
  return peft_layer_install(m, &t, w, 0, NULL, NULL);
}

static gr_status ia3_fold(gr_module *w, bool merge) {
  ia3_cfg *cf = w->cfg;
  const float *l = gr_module_param_get(w, "ia3_l")->data;
  gr_module *base = w->children[0];
  gr_tensor *wt = gr_module_param_get(base, "weight"), *bias = gr_module_param_get(base, "bias");
  int64_t out = cf->L.t.out, in = cf->L.t.in, n_l = cf->feedforward ? cf->L.t.in_ch : out;
  int64_t per_channel = in / cf->L.t.in_ch; /* kh*kw of a conv, 1 for a Linear */
  for (int64_t k = 0; k < n_l && !merge; k++)
    if (l[k] == 0 || !isfinite(1.0f / l[k]))
      return gr_error(GR_ENUMERIC, "IA3: ia3_l[%lld] of '%s' is %g; the merge cannot be undone", (long long)k,
                      cf->L.t.path, l[k]);
  for (int64_t o = 0; o < out; o++)
    for (int64_t i = 0; i < in; i++) {
      float f = cf->feedforward ? l[i / per_channel] : l[o];
      wt->data[o * in + i] = merge ? wt->data[o * in + i] * f : wt->data[o * in + i] / f;
    }
  if (!cf->feedforward && bias)
    for (int64_t o = 0; o < out; o++) bias->data[o] = merge ? bias->data[o] * l[o] : bias->data[o] / l[o];
  return GR_OK;
}
