/* transfer/peft/mam.c — the MAM adapter ("Mix-And-Match") for the GPT.
 *
 * Paper: He, Zhou, Ma, Berg-Kirkpatrick, Neubig, "Towards a Unified View of
 * Parameter-Efficient Transfer Learning" (ICLR 2022), sec. 4.4: prefix
 * tuning with a small l at every attention sublayer (a gated parallel
 * adapter on attention, eq. 7) and a scaled parallel adapter with a large
 * bottleneck on every FFN sublayer,
 *   h_ffn = FFN(x) + s * up(ReLU(down(x))),  x the FFN's input, s = 4.
 * What it changes in the model: prefix.c's prompt encoder, and adapter.c's
 * "Adapter" wrapper (parallel, scale s) around each "transformer.h.<i>.mlp";
 * every other parameter is frozen. No math of its own. */
#include <stdio.h>
#include <string.h>

#include "graft/peft_prefix.h"
#include "transfer/peft/peft_layer.h"

static void ffn_path(char *buf, size_t n, int64_t layer) { snprintf(buf, n, "transformer.h.%lld.mlp", (long long)layer); }

gr_status gr_mam_attach(gr_gpt *g, const gr_mam_opts *o) {
  if (!g || !g->model || !o) return gr_error(GR_EARG, "MAM: NULL argument");
  if (!(o->pa_scale > 0 && o->pa_scale < 1e6f)) return gr_error(GR_EARG, "MAM: adapter scale %g must be positive", o->pa_scale);
  gr_adapter_opts ao = {.r = o->pa_r, .placement = GR_ADAPTER_PARALLEL, .scale = o->pa_scale};
  char path[GR_NAME_MAX];
  for (int64_t l = 0; l < g->cfg.n_layer; l++) {
    ffn_path(path, sizeof path, l);
    gr_status s = peft_adapter_check(g->model, path, &ao);
    if (s) return s;
  }
  gr_status s = gr_prefix_attach(g, &o->prefix);
  for (int64_t l = 0; l < g->cfg.n_layer && !s; l++) {
    ffn_path(path, sizeof path, l);
    s = gr_adapter_wrap(g->model, path, &ao);
  }
  if (s) return s;
  gr_model *m = g->model;
  for (int i = 0; i < m->n_entries; i++) {
    gr_named_tensor *e = &m->entries[i];
    if (!e->buffer)
      e->t->requires_grad = !strncmp(e->name, GR_GPT_PROMPT_ENCODER ".", strlen(GR_GPT_PROMPT_ENCODER) + 1) ||
                            gr_peft_param_is_adapter(e);
  }
  return GR_OK;
}
