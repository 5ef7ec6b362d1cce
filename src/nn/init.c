/* nn/init.c — weight initializers for Linear/Conv2d: PyTorch's defaults,
 * kaiming, xavier, normal, and the critical init of the PDLT book
 * (Roberts, Yaida, Hanin 2022): W ~ N(0, C_W/fan_in), b ~ N(0, C_b) with
 * (C_W, C_b) chosen so the kernel neither explodes nor vanishes with depth. */
#include <math.h>
#include <string.h>

#include "graft/nn.h"

void gr_init_fans(const gr_tensor *w, int64_t *fan_in, int64_t *fan_out) {
  int64_t rf = 1;
  for (int i = 2; i < w->ndim; i++) rf *= w->shape[i];
  *fan_in = w->ndim >= 2 ? w->shape[1] * rf : w->numel;
  *fan_out = w->ndim >= 2 ? w->shape[0] * rf : w->numel;
}

gr_status gr_init_critical_params(const char *act, float *cw, float *cb) {
  if (!act || !cw || !cb) return gr_error(GR_EARG, "critical init: NULL argument");
  *cb = 0.0f;
  if (!strcmp(act, "relu")) *cw = 2.0f;
  else if (!strcmp(act, "tanh") || !strcmp(act, "linear") || !strcmp(act, "none")) *cw = 1.0f;
  else return gr_error(GR_EARG, "critical init: activation '%s' (relu|tanh|linear)", act);
  return GR_OK;
}

static void init_weight_bias(gr_tensor *w, gr_tensor *b, gr_rng *r, gr_init_kind kind, float std, float cw,
                             float cb) {
  int64_t fi, fo;
  gr_init_fans(w, &fi, &fo);
  double bound;
  switch (kind) {
    case GR_INIT_TORCH_DEFAULT:
      bound = 1.0 / sqrt((double)fi);
      gr_rng_fill_uniform(r, w->data, w->numel, (float)-bound, (float)bound);
      if (b) gr_rng_fill_uniform(r, b->data, b->numel, (float)-bound, (float)bound);
      return;
    case GR_INIT_KAIMING_NORMAL: gr_rng_fill_normal(r, w->data, w->numel, 0, (float)sqrt(2.0 / fi)); break;
    case GR_INIT_KAIMING_UNIFORM:
      bound = sqrt(6.0 / fi);
      gr_rng_fill_uniform(r, w->data, w->numel, (float)-bound, (float)bound);
      break;
    case GR_INIT_XAVIER_NORMAL: gr_rng_fill_normal(r, w->data, w->numel, 0, (float)sqrt(2.0 / (fi + fo))); break;
    case GR_INIT_XAVIER_UNIFORM:
      bound = sqrt(6.0 / (fi + fo));
      gr_rng_fill_uniform(r, w->data, w->numel, (float)-bound, (float)bound);
      break;
    case GR_INIT_NORMAL: gr_rng_fill_normal(r, w->data, w->numel, 0, std); break;
    case GR_INIT_CRITICAL:
      gr_rng_fill_normal(r, w->data, w->numel, 0, (float)sqrt((double)cw / fi));
      if (b) {
        if (cb > 0) gr_rng_fill_normal(r, b->data, b->numel, 0, sqrtf(cb));
        else gr_tensor_fill(b, 0);
      }
      return;
  }
  if (b) gr_tensor_fill(b, 0);
}

gr_status gr_init_module(gr_module *mod, gr_rng *r, gr_init_kind kind, float std, float cw, float cb) {
  if (!mod || !r) return gr_error(GR_EARG, "init: NULL module or rng");
  if (kind < GR_INIT_TORCH_DEFAULT || kind > GR_INIT_CRITICAL) return gr_error(GR_EARG, "init: unknown kind %d", kind);
  if ((kind == GR_INIT_NORMAL && !(std >= 0)) || (kind == GR_INIT_CRITICAL && !(cw > 0 && cb >= 0)))
    return gr_error(GR_EARG, "init: bad std=%g or C_W=%g C_b=%g", std, cw, cb);
  if (!strcmp(mod->kind, "Linear") || !strcmp(mod->kind, "Conv2d"))
    init_weight_bias(gr_module_param_get(mod, "weight"), gr_module_param_get(mod, "bias"), r, kind, std, cw, cb);
  for (int i = 0; i < mod->n_children; i++) {
    gr_status s = gr_init_module(mod->children[i], r, kind, std, cw, cb);
    if (s) return s;
  }
  return GR_OK;
}
