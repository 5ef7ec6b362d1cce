/* transfer/finetune.c — the classic transfer baselines (Yosinski et al.
 * 2014, "How transferable are features in deep neural networks?"):
 * training from scratch, a linear probe (only the new head trains on frozen
 * features), full fine-tuning, fine-tuning with the early layers frozen,
 * and fine-tuning with a smaller backbone learning rate (discriminative
 * rates). The registry row of each is in registry.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/transfer.h"
#include "transfer/methods.h"

static gr_status freeze_or_fail(gr_model *m, const char *glob, bool frozen) {
  if (gr_model_freeze(m, glob, frozen) == 0)
    return gr_error(GR_ENOTFOUND, "transfer: no parameter matches '%s'", glob);
  return GR_OK;
}

gr_status gr_method_linear_probe_setup(gr_transfer_run *run) {
  char glob[GR_NAME_MAX + 4];
  snprintf(glob, sizeof glob, "%s.*", run->head);
  gr_model_freeze(run->model, "*", true);
  gr_status s = freeze_or_fail(run->model, glob, false);
  /* frozen batch-norm statistics too: the features must not drift */
  if (!s) gr_model_train(run->model, false);
  return s;
}

/* Option "freeze=GLOB" (up to the next ','): the layers to freeze instead of
 * the architecture's early layers. */
gr_status gr_method_freeze_early_setup(gr_transfer_run *run) {
  char given[GR_NAME_MAX];
  const char *glob = run->early;
  if (run->options && !strncmp(run->options, "freeze=", 7)) {
    size_t n = strcspn(run->options + 7, ",");
    if (n == 0 || n >= sizeof given) return gr_error(GR_EARG, "freeze-early: bad option '%s'", run->options);
    snprintf(given, sizeof given, "%.*s", (int)n, run->options + 7);
    glob = given;
  }
  if (!glob) return gr_error(GR_EARG, "freeze-early: no early-layer pattern for this architecture");
  return freeze_or_fail(run->model, glob, true);
}

/* Option "backbone_lr=K" (default 0.1): the backbone's lr is K times the run's. */
gr_status gr_method_discriminative_optim(gr_transfer_run *run, gr_optim *o) {
  double scale = 0.1;
  char rest[512];
  gr_status s = gr_transfer_take_option(run->options, "backbone_lr", rest, sizeof rest, &scale, NULL);
  if (s) return s;
  if (!(scale >= 0)) return gr_error(GR_EARG, "finetune-discriminative: backbone_lr=%g must be >= 0", scale);
  char glob[GR_NAME_MAX + 4];
  snprintf(glob, sizeof glob, "%s.*", run->head);
  if (gr_optim_set_group(o, "*", (float)scale, -1) < 0 || gr_optim_set_group(o, glob, 1.0f, -1) <= 0)
    return gr_error(GR_ENOTFOUND, "finetune-discriminative: head '%s' has no parameters", run->head);
  return GR_OK;
}
