/* optim/schedule.c — learning-rate schedules: linear warmup, then constant,
 * cosine annealing or step decay (PyTorch LinearLR / CosineAnnealingLR /
 * StepLR closed forms). */
#include <math.h>
#include <string.h>

#include "graft/optim.h"

float gr_schedule_lr(const gr_schedule *s, int64_t t) {
  if (!s) return NAN;
  if (t < 0) t = 0;
  double base = s->base_lr;
  if (s->warmup_steps > 0 && t < s->warmup_steps)
    return (float)(base * (s->warmup_start + (1.0 - s->warmup_start) * (double)t / (double)s->warmup_steps));
  int64_t u = t - (s->warmup_steps > 0 ? s->warmup_steps : 0);
  switch (s->kind) {
    case GR_SCHED_COSINE: {
      int64_t len = s->total_steps - (s->warmup_steps > 0 ? s->warmup_steps : 0);
      if (len <= 0) return s->min_lr;
      if (u > len) u = len;
      return (float)(s->min_lr + (base - s->min_lr) * (1.0 + cos(M_PI * (double)u / (double)len)) / 2.0);
    }
    case GR_SCHED_STEP:
      if (s->step_size <= 0) return (float)base;
      return (float)(base * pow(s->gamma, (double)(u / s->step_size)));
    case GR_SCHED_CONSTANT: break;
  }
  return (float)base;
}

gr_status gr_schedule_kind_parse(const char *name, gr_sched_kind *out) {
  if (!name || !out) return gr_error(GR_EARG, "schedule: NULL argument");
  if (!strcmp(name, "constant")) *out = GR_SCHED_CONSTANT;
  else if (!strcmp(name, "cosine")) *out = GR_SCHED_COSINE;
  else if (!strcmp(name, "step")) *out = GR_SCHED_STEP;
  else return gr_error(GR_EARG, "schedule '%s' (constant|cosine|step)", name);
  return GR_OK;
}
