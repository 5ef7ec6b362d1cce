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

gr_status gr_method_freeze_early_setup(gr_transfer_run *run) {
  const char *glob = run->early;
  if (run->options && !strncmp(run->options, "freeze=", 7)) glob = run->options + 7;
  if (!glob) return gr_error(GR_EARG, "freeze-early: no early-layer pattern for this architecture");
  return freeze_or_fail(run->model, glob, true);
}

gr_status gr_method_discriminative_optim(gr_transfer_run *run, gr_optim *o) {
  float scale = 0.1f;
  if (run->options && !strncmp(run->options, "backbone_lr=", 12)) scale = strtof(run->options + 12, NULL);
  if (!(scale >= 0)) return gr_error(GR_EARG, "finetune-discriminative: bad backbone_lr '%s'", run->options);
  char glob[GR_NAME_MAX + 4];
  snprintf(glob, sizeof glob, "%s.*", run->head);
  if (gr_optim_set_group(o, "*", scale, -1) < 0 || gr_optim_set_group(o, glob, 1.0f, -1) <= 0)
    return gr_error(GR_ENOTFOUND, "finetune-discriminative: head '%s' has no parameters", run->head);
  return GR_OK;
}
