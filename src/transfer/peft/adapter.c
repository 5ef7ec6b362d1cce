/* transfer/peft/adapter.c — bottleneck adapters: sequential (Houlsby et al.,
 * "Parameter-Efficient Transfer Learning for NLP", 2019; Pfeiffer et al.,
 * "AdapterFusion", 2021), parallel and scaled parallel (He et al., "Towards
 * a Unified View of Parameter-Efficient Transfer Learning", 2022, sec. 3-4).
 *
 * In the unified view the change is Δh = s * up(ReLU(down(z))) added to the
 * module's output h = base(x):
 *   sequential:  z = h   (the adapter reads the module's output)
 *   parallel:    z = x   (it reads the module's input, beside the module)
 *   scaled PA:   parallel with s = 4 (the paper's best), s = 1 otherwise.
 * Init as the paper's code ("lora" init): down kaiming-uniform(a=sqrt 5)
 * (PyTorch's default), up = 0 and both biases 0, so Δh = 0 at step 0.
 * For a Conv2d, down is a 1x1 conv out->r (sequential) or a k x k conv with
 * the base's stride/padding in->r (parallel), up a 1x1 conv r->out.
 * What it changes in the model: the target becomes an "Adapter" wrapper with
 * children base_layer, adapter_down, adapter_up. Nonlinear: never merged.
 * Files: graft's BOTTLENECK extension of the PEFT layout (graft/peft_io.h). */
#include <math.h>
#include <string.h>

#include "transfer/peft/peft_layer.h"

typedef struct adapter_cfg {
  peft_layer L;
  int r;
  bool parallel;
  float scale;
} adapter_cfg;

static void adapter_describe(const gr_module *w, peft_desc *d) {
  const adapter_cfg *cf = w->cfg;
  *d = (peft_desc){.type = GR_PEFT_BOTTLENECK, .r = cf->r, .scale = cf->scale, .parallel = cf->parallel};
}
const peft_layer_ops peft_adapter_ops = {"Adapter", NULL, adapter_describe};

enum { ADAPTER_DOWN = 1, ADAPTER_UP = 2 };

static gr_tensor *adapter_forward(gr_module *w, gr_ctx *c, gr_tensor *x) {
  adapter_cfg *cf = w->cfg;
  gr_module *down = w->children[ADAPTER_DOWN], *up = w->children[ADAPTER_UP];
  gr_tensor *h = peft_base_forward(w, c, x);
  gr_tensor *z = h ? down->forward(down, c, cf->parallel ? x : h) : NULL;
  z = z ? up->forward(up, c, gr_relu(c, z)) : NULL;
  return z ? gr_add(c, h, gr_scale(c, z, cf->scale)) : NULL;
}

gr_status peft_adapter_check(gr_model *m, const char *path, const gr_adapter_opts *o) {
  peft_target t;
  gr_status s = o ? peft_target_get(m, path, "Adapter", &t) : gr_error(GR_EARG, "Adapter: NULL options");
  if (s) return s;
  bool par = o->placement == GR_ADAPTER_PARALLEL;
  if (!par && o->placement != GR_ADAPTER_SEQUENTIAL)
    return gr_error(GR_EARG, "Adapter: unknown placement %d for '%s'", (int)o->placement, path);
  if (!isfinite(o->scale)) return gr_error(GR_EARG, "Adapter: scale for module '%s' is not finite", path);
  int64_t lim = par && t.in < t.out ? t.in : t.out;
  return peft_check_rank(&t, "Adapter", o->r, lim, par ? "min(in, out)" : "out");
}

gr_status gr_adapter_wrap(gr_model *m, const char *path, const gr_adapter_opts *o) {
  gr_status s = peft_adapter_check(m, path, o);
  if (s) return s;
  peft_target t;
  peft_target_get(m, path, "Adapter", &t);
  bool par = o->placement == GR_ADAPTER_PARALLEL;
  gr_module *down = NULL, *up = NULL;
  if ((s = peft_make_factors(m, &t, o->r, !par, true, &down, &up))) return s;
  gr_module *w = peft_layer_new(m, &peft_adapter_ops, adapter_forward, sizeof(adapter_cfg), &t);
  if (!w) return gr_last_status();
  adapter_cfg *cf = w->cfg;
  cf->r = o->r;
  cf->parallel = par;
  cf->scale = o->scale;
  gr_tensor_fill(gr_module_param_get(down, "bias"), 0.0f);
  if (!o->random_up) {
    gr_tensor_fill(gr_module_param_get(up, "weight"), 0.0f);
    gr_tensor_fill(gr_module_param_get(up, "bias"), 0.0f);
  }
  const char *names[] = {"adapter_down", "adapter_up"};
  gr_module *kids[] = {down, up};
  return peft_layer_install(m, &t, w, 2, names, kids);
}
