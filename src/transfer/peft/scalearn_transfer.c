/* transfer/peft/scalearn_transfer.c — ScaLearn's rows of the transfer
 * registry: stage 1 trains one LoRA adapter per source task on the
 * source backbone, stage 2 wraps every adapted layer in a ScaLearn module
 * (scalearn.c) holding those adapters frozen and trains only the scaling
 * omegas and the new head on the target task.
 *
 * Source tasks, all built from the data the run has (the paper's GLUE
 * tasks have no counterpart here): the source task itself, its images
 * negated (contrast-inverted in normalized units), its images rotated by
 * 90 degrees, and, as in the paper, the target task itself (its budgeted
 * training set). Each source adapter is LoRA with the lora row's targets
 * and options, trained with the run's optimizer settings for
 * max(SOURCE_STEPS, the run's own step count) steps, its head discarded.
 * The backbone (weights and batch-norm buffers) is restored after each
 * adapter, so every adapter starts from the same source model. */
#include <stdio.h>
#include <string.h>

#include "graft/peft.h"
#include "graft/scalearn.h"
#include "transfer/methods.h"

enum { N_TASKS = 4, MAX_LAYERS = 64, SOURCE_STEPS = 150 };

typedef struct layer_factors {
  char path[GR_NAME_MAX];
  float *a[N_TASKS], *b[N_TASKS];
  int r[N_TASKS];
  float scaling[N_TASKS];
} layer_factors;

typedef struct source_bank {
  layer_factors layer[MAX_LAYERS];
  int n_layers;
} source_bank;

static void bank_free(source_bank *bk) {
  for (int l = 0; l < bk->n_layers; l++)
    for (int k = 0; k < N_TASKS; k++) gr_free(bk->layer[l].a[k]), gr_free(bk->layer[l].b[k]);
}

/* Source task k's images (a copy): 0 as is, 1 negated, 2 rotated 90 degrees. */
static gr_dataset *source_task(const gr_transfer_run *run, int k) {
  const gr_dataset *src = run->source_data;
  int64_t *idx = gr_malloc((size_t)src->n * sizeof *idx);
  if (!idx) return NULL;
  for (int64_t i = 0; i < src->n; i++) idx[i] = i;
  gr_dataset *d = gr_dataset_take(src, idx, src->n);
  gr_free(idx);
  if (!d || k == 0) return d;
  float *tmp = k == 2 ? gr_malloc((size_t)d->dim * sizeof(float)) : NULL;
  if (k == 2 && (!tmp || d->h != d->w)) {
    gr_free(tmp), gr_dataset_free(d);
    gr_error(GR_EUNSUPPORTED, "scalearn: rotated source task needs square images");
    return NULL;
  }
  for (int64_t n = 0; n < d->n; n++) {
    float *x = d->x + n * d->dim;
    if (k == 1)
      for (int64_t j = 0; j < d->dim; j++) x[j] = -x[j];
    if (k != 2) continue;
    memcpy(tmp, x, (size_t)d->dim * sizeof(float));
    for (int c = 0; c < d->c; c++)
      for (int i = 0; i < d->h; i++)
        for (int j = 0; j < d->w; j++) x[(c * d->h + i) * d->w + j] = tmp[(c * d->h + j) * d->w + (d->w - 1 - i)];
  }
  gr_free(tmp);
  return d;
}

/* Copies the factors of every LoRA module of m into task slot k. */
static gr_status bank_take(source_bank *bk, gr_module *mod, int k) {
  if (gr_lora_is(mod)) {
    char p[GR_NAME_MAX];
    gr_module_path(mod, p, sizeof p);
    int l = 0;
    while (l < bk->n_layers && strcmp(bk->layer[l].path, p)) l++;
    if (l == bk->n_layers) {
      if (l == MAX_LAYERS) return gr_error(GR_EUNSUPPORTED, "scalearn: more than %d adapted layers", MAX_LAYERS);
      snprintf(bk->layer[l].path, sizeof bk->layer[l].path, "%s", p);
      bk->n_layers++;
    }
    layer_factors *lf = &bk->layer[l];
    gr_tensor *a = gr_module_param_get(gr_module_find(mod, "lora_A"), "weight");
    gr_tensor *b = gr_module_param_get(gr_module_find(mod, "lora_B"), "weight");
    lf->a[k] = gr_malloc((size_t)a->numel * sizeof(float)), lf->b[k] = gr_malloc((size_t)b->numel * sizeof(float));
    if (!lf->a[k] || !lf->b[k]) return gr_error(GR_ENOMEM, "scalearn: out of memory");
    memcpy(lf->a[k], a->data, (size_t)a->numel * sizeof(float));
    memcpy(lf->b[k], b->data, (size_t)b->numel * sizeof(float));
    lf->r[k] = gr_lora_rank(mod), lf->scaling[k] = gr_lora_scaling(mod);
    return GR_OK;
  }
  for (int i = 0; i < mod->n_children; i++) {
    gr_status s = bank_take(bk, mod->children[i], k);
    if (s) return s;
  }
  return GR_OK;
}

/* Flat parameters and buffers of m (same layout before and after). */
typedef struct snapshot {
  float *data, *buf;
  int64_t numel, buf_numel;
} snapshot;

static gr_status snapshot_take(const gr_model *m, snapshot *sn) {
  sn->numel = m->numel, sn->buf_numel = m->buf_numel;
  sn->data = gr_malloc((size_t)(m->numel + 1) * sizeof(float));
  sn->buf = gr_malloc((size_t)(m->buf_numel + 1) * sizeof(float));
  if (!sn->data || !sn->buf) return gr_error(GR_ENOMEM, "scalearn: out of memory");
  memcpy(sn->data, m->data, (size_t)m->numel * sizeof(float));
  if (m->buf_numel) memcpy(sn->buf, m->buf, (size_t)m->buf_numel * sizeof(float));
  return GR_OK;
}

static gr_status snapshot_restore(gr_model *m, const snapshot *sn) {
  if (m->numel != sn->numel || m->buf_numel != sn->buf_numel)
    return gr_error(GR_ESTATE, "scalearn: model layout changed while training a source adapter");
  memcpy(m->data, sn->data, (size_t)m->numel * sizeof(float));
  if (m->buf_numel) memcpy(m->buf, sn->buf, (size_t)m->buf_numel * sizeof(float));
  gr_model_freeze(m, "*", false);
  return GR_OK;
}

/* Stage 1 for task k: LoRA on the backbone, trained, factors kept, backbone back. */
static gr_status train_source_adapter(gr_transfer_run *run, const gr_dataset *task, int k, const snapshot *sn,
                                      source_bank *bk) {
  gr_status s = gr_method_lora_setup(run);
  gr_optim *o = s ? NULL : gr_optim_new(run->model, run->optim);
  if (!s && !o) s = gr_last_status();
  gr_train_cfg cfg = *run->train;
  int64_t own = gr_train_total_steps(run->train, run->target_data->n);
  cfg.steps = own > SOURCE_STEPS ? own : SOURCE_STEPS;
  cfg.eval_every = 0, cfg.patience = 0, cfg.seed = run->train->seed + 101 * (uint64_t)(k + 1);
  gr_train_result res = {0};
  if (!s) s = gr_train(run->model, o, task, NULL, &cfg, NULL, &res);
  gr_optim_free(o);
  if (!s) s = bank_take(bk, run->model->root, k);
  if (!s) s = gr_peft_merge_all(run->model, true, NULL);
  if (!s) s = gr_peft_unwrap_all(run->model);
  return s ? s : snapshot_restore(run->model, sn);
}

/* Stage 2: every adapted layer wrapped, only omega and the head trainable. */
static gr_status wrap_all(gr_transfer_run *run, source_bank *bk, gr_scalearn_kind kind) {
  gr_scalearn_opts o = {.kind = kind, .dropout = 0.3f, .init_scale = 2.0f};
  bool pp = kind == GR_SCALEARN_PP || kind == GR_SCALEARN_UNIFORM_PP;
  gr_module *owners[MAX_LAYERS];
  int n_owners = 0;
  for (int l = 0; l < bk->n_layers; l++) {
    layer_factors *lf = &bk->layer[l];
    gr_scalearn_source src[N_TASKS];
    for (int k = 0; k < N_TASKS; k++) src[k] = (gr_scalearn_source){lf->a[k], lf->b[k], lf->r[k], lf->scaling[k]};
    gr_module *share = NULL;
    gr_tensor *w = gr_module_param_get(gr_module_find(run->model->root, lf->path), "weight");
    for (int i = 0; pp && w && i < n_owners && !share; i++) {
      gr_tensor *om = gr_scalearn_omega(owners[i]);
      if (kind == GR_SCALEARN_UNIFORM_PP || om->shape[1] == w->shape[0]) share = owners[i];
    }
    gr_status s = gr_scalearn_wrap(run->model, lf->path, N_TASKS, src, &o, share);
    if (s) return s;
    if (!share) owners[n_owners++] = gr_module_find(run->model->root, lf->path);
  }
  gr_model_freeze(run->model, "*", true);
  gr_model_freeze(run->model, "*.scalearn_omega", false);
  if (run->head) {
    char glob[GR_NAME_MAX + 4];
    snprintf(glob, sizeof glob, "%s.*", run->head);
    gr_model_freeze(run->model, glob, false);
  }
  return GR_OK;
}

static gr_status scalearn_setup(gr_transfer_run *run, gr_scalearn_kind kind) {
  if (!run->source_data || !run->target_data)
    return gr_error(GR_EARG, "scalearn needs the source and target training sets (source adapters are trained on them)");
  source_bank *bk = gr_calloc(1, sizeof *bk);
  snapshot sn = {0};
  gr_status s = bk ? snapshot_take(run->model, &sn) : gr_error(GR_ENOMEM, "scalearn: out of memory");
  for (int k = 0; k < N_TASKS && !s; k++) {
    gr_dataset *own = k == 3 ? NULL : source_task(run, k);
    const gr_dataset *task = k == 3 ? run->target_data : own;
    s = task ? train_source_adapter(run, task, k, &sn, bk) : gr_last_status();
    gr_dataset_free(own);
  }
  if (!s) s = wrap_all(run, bk, kind);
  if (bk) bank_free(bk);
  gr_free(bk), gr_free(sn.data), gr_free(sn.buf);
  return s;
}

gr_status gr_method_scalearn_setup(gr_transfer_run *run) { return scalearn_setup(run, GR_SCALEARN); }
gr_status gr_method_scalearn_uniform_setup(gr_transfer_run *run) { return scalearn_setup(run, GR_SCALEARN_UNIFORM); }
gr_status gr_method_scalearn_pp_setup(gr_transfer_run *run) { return scalearn_setup(run, GR_SCALEARN_PP); }
gr_status gr_method_scalearn_uniform_pp_setup(gr_transfer_run *run) {
  return scalearn_setup(run, GR_SCALEARN_UNIFORM_PP);
}
