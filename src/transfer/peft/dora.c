/* transfer/peft/dora.c — DoRA, the magnitude/direction part of a LoRA
 * wrapper with use_dora.
 *
 * Paper: Liu et al., "DoRA: Weight-Decomposed Low-Rank Adaptation" (2024),
 * eq. (5): W' = m (W0 + B A) / ||W0 + B A||_c, with the norm treated as a
 * constant in backward (sec. 4.3). Implemented as Hugging Face PEFT does
 * (tuners/lora/dora.py, FORMATS.md §2.3), per output row o:
 *   g_o = m_o / ||W_o + s (B A)_o||   (norm detached: no gradient)
 *   y = base(x) + (g - 1) * (W xd) + g * s * B(A(xd)),  xd = dropout(x)
 * which without dropout is g * (W x + s B A x) + b. m starts at the norm
 * itself (so the model is unchanged at init). Merge: W' = g * (W + s B A),
 * bias untouched; the norm is cached, unmerge is W = W' / g - s B A.
 * What it changes in the model: one parameter on the LoRA wrapper,
 * "lora_magnitude_vector" ([out]; [1,out,1,1] for a Conv2d, as PEFT). */
#include <math.h>
#include <string.h>

#include "transfer/peft/peft_layer.h"

enum { BASE = 0, FACTOR_A = 1, FACTOR_B = 2 };

void peft_dora_row_norms(const gr_module *w, float scaling, float *norm) {
  const peft_layer *L = w->cfg;
  gr_module *base = w->children[BASE];
  const gr_tensor *wt = gr_module_param_get(base, "weight");
  const gr_tensor *a = w->children[FACTOR_A]->p[0].t, *b = w->children[FACTOR_B]->p[0].t;
  int64_t out = L->t.out, in = L->t.in, r = a->shape[0];
  for (int64_t o = 0; o < out; o++) {
    double acc = 0;
    for (int64_t i = 0; i < in; i++) {
      double ba = 0;
      for (int64_t k = 0; k < r; k++) ba += (double)b->data[o * r + k] * a->data[k * in + i];
      double v = (double)wt->data[o * in + i] + (double)scaling * (float)ba;
      acc += v * v;
    }
    norm[o] = (float)sqrt(acc);
  }
}

gr_status peft_dora_init(gr_module *w, int64_t out, bool conv) {
  int64_t lin[1] = {out}, cv[4] = {1, out, 1, 1};
  gr_tensor *mag = gr_module_new_param(w, "lora_magnitude_vector", conv ? 4 : 1, conv ? cv : lin, false);
  if (!mag) return gr_last_status();
  peft_dora_row_norms(w, gr_lora_scaling(w), mag->data);
  return gr_model_layout(w->model);
}

static gr_tensor *base_weight_only(gr_module *w, gr_ctx *c, gr_tensor *xd) {
  gr_module *base = w->children[BASE];
  gr_tensor *wt = gr_module_param_get(base, "weight");
  const peft_layer *L = w->cfg;
  return L->t.conv ? gr_conv2d(c, xd, wt, NULL, gr_nn_conv2d_opts(base)) : gr_linear(c, xd, wt, NULL);
}

gr_tensor *peft_dora_output(gr_module *w, gr_ctx *c, gr_tensor *y, gr_tensor *xd, gr_tensor *ba, float scaling) {
  gr_tensor *mag = gr_module_param_get(w, "lora_magnitude_vector");
  gr_tensor *norm = gr_tensor_new(c, mag->ndim, mag->shape); /* a constant: the detached norm */
  if (!norm) return NULL;
  peft_dora_row_norms(w, scaling, norm->data);
  gr_tensor *g = gr_div(c, mag, norm);
  gr_tensor *wx = base_weight_only(w, c, xd);
  if (!g || !wx) return NULL;
  gr_tensor *d = gr_add(c, gr_mul(c, gr_add_scalar(c, g, -1.0f), wx), gr_mul(c, g, gr_scale(c, ba, scaling)));
  return d ? gr_add(c, y, d) : NULL;
}

/* W <- W + sign * s B A, rows [out, in]. */
static void add_delta(gr_module *w, float scaling, float sign) {
  const peft_layer *L = w->cfg;
  gr_tensor *wt = gr_module_param_get(w->children[BASE], "weight");
  const gr_tensor *a = w->children[FACTOR_A]->p[0].t, *b = w->children[FACTOR_B]->p[0].t;
  gr_lora_delta_apply(wt->data, a->data, b->data, L->t.out, L->t.in, (int)a->shape[0], sign * scaling, false);
}

gr_status peft_dora_fold(gr_module *w, float scaling, bool merge, float **norm) {
  const peft_layer *L = w->cfg;
  int64_t out = L->t.out, in = L->t.in;
  const float *m = gr_module_param_get(w, "lora_magnitude_vector")->data;
  float *wd = gr_module_param_get(w->children[BASE], "weight")->data;
  if (!*norm && !(*norm = gr_arena_alloc(w->model->arena, (size_t)out * sizeof(float))))
    return gr_error(GR_ENOMEM, "DoRA: out of memory merging '%s'", L->t.path);
  if (merge) peft_dora_row_norms(w, scaling, *norm);
  for (int64_t o = 0; o < out; o++)
    if (!(m[o] != 0 && (*norm)[o] > 0 && isfinite(m[o] / (*norm)[o])))
      return gr_error(GR_ENUMERIC, "DoRA: row %lld of '%s' has magnitude %g and norm %g; it cannot be %s", (long long)o,
                      L->t.path, m[o], (*norm)[o], merge ? "merged" : "unmerged");
  if (merge) add_delta(w, scaling, 1.0f);
  for (int64_t o = 0; o < out; o++) {
    double g = (double)m[o] / (*norm)[o];
    for (int64_t i = 0; i < in; i++) wd[o * in + i] = (float)(merge ? wd[o * in + i] * g : wd[o * in + i] / g);
  }
  if (!merge) add_delta(w, scaling, -1.0f);
  return GR_OK;
}
