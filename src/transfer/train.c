/* transfer/train.c — the training loop and evaluation (see graft/train.h).
 * One step: batch from the loader, forward, cross-entropy, backward, clip,
 * schedule, optimizer step, step-arena reset. Not a place for method
 * logic: transfer methods set up the model and optimizer before gr_train. */
#include <math.h>
#include <string.h>

#include "graft/dist.h"
#include "graft/train.h"
#include "transfer/train_dist.h"
#include "transfer/train_state.h"

static void softmax_row(const float *z, int k, float *p) {
  float mx = z[0];
  for (int j = 1; j < k; j++) mx = z[j] > mx ? z[j] : mx;
  double s = 0;
  for (int j = 0; j < k; j++) s += (p[j] = expf(z[j] - mx));
  for (int j = 0; j < k; j++) p[j] = (float)(p[j] / s);
}

typedef struct eval_acc {
  double loss_sum;
  int64_t n, correct;
  int64_t cls_n[GR_DATA_MAX_CLASSES], cls_ok[GR_DATA_MAX_CLASSES];
  double bin_conf[GR_ECE_BINS], bin_ok[GR_ECE_BINS];
  int64_t bin_n[GR_ECE_BINS];
} eval_acc;

static void eval_accumulate(eval_acc *a, const gr_tensor *logits, const int32_t *y, float *p) {
  int k = (int)logits->shape[1];
  for (int64_t i = 0; i < logits->shape[0]; i++) {
    softmax_row(logits->data + i * k, k, p);
    int best = 0;
    for (int j = 1; j < k; j++) best = p[j] > p[best] ? j : best;
    bool ok = best == y[i];
    a->loss_sum += -log(fmax(p[y[i]], 1e-30));
    a->n++, a->correct += ok;
    a->cls_n[y[i]]++, a->cls_ok[y[i]] += ok;
    int bin = (int)(p[best] * GR_ECE_BINS);
    if (bin >= GR_ECE_BINS) bin = GR_ECE_BINS - 1;
    a->bin_conf[bin] += p[best], a->bin_ok[bin] += ok, a->bin_n[bin]++;
  }
}

static void eval_finish(const eval_acc *a, int n_classes, gr_eval_result *out) {
  memset(out, 0, sizeof *out);
  out->n = a->n;
  out->loss = a->loss_sum / (double)a->n;
  out->accuracy = (double)a->correct / (double)a->n;
  for (int b = 0; b < GR_ECE_BINS; b++)
    if (a->bin_n[b]) out->ece += fabs(a->bin_ok[b] - a->bin_conf[b]) / (double)a->n;
  out->n_classes = n_classes;
  for (int k = 0; k < n_classes; k++) out->per_class_acc[k] = a->cls_n[k] ? (double)a->cls_ok[k] / a->cls_n[k] : NAN;
}


gr_status gr_evaluate(gr_model *m, gr_ctx *c, const gr_dataset *ds, int64_t batch, gr_eval_result *out) {
  if (!m || !c || !ds || !out) return gr_error(GR_EARG, "evaluate: NULL argument");
  if (ds->n == 0) return gr_error(GR_EARG, "evaluate: empty dataset");
  if (batch <= 0) batch = 500;
  bool was_inference = m->inference, was_grad = gr_ctx_grad(c);
  m->inference = true;
  gr_ctx_set_grad(c, false);
  eval_acc *a = gr_calloc(1, sizeof *a);
  float *p = gr_calloc((size_t)ds->n_classes + 1, sizeof(float));
  gr_status s = a && p ? GR_OK : gr_error(GR_ENOMEM, "evaluate: out of memory");
  for (int64_t start = 0; !s && start < ds->n; start += batch) {
    int64_t k = ds->n - start < batch ? ds->n - start : batch;
    gr_tensor *x;
    const int32_t *y;
    s = gr_dataset_batch(ds, c, start, k, &x, &y);
    gr_tensor *logits = s ? NULL : gr_model_forward(m, c, x);
    if (!s && !logits) s = gr_last_status();
    if (!s && (logits->ndim != 2 || logits->shape[1] != ds->n_classes))
      s = gr_error(GR_ESHAPE, "evaluate: model gives %d-D output with %lld classes, data has %d classes",
                   logits->ndim, (long long)(logits->ndim == 2 ? logits->shape[1] : 0), ds->n_classes);
    if (!s) eval_accumulate(a, logits, y, p);
    gr_ctx_reset(c);
  }
  if (!s) eval_finish(a, ds->n_classes, out);
  gr_free(a);
  gr_free(p);
  m->inference = was_inference;
  gr_ctx_set_grad(c, was_grad);
  return s;
}

int64_t gr_train_total_steps(const gr_train_cfg *cfg, int64_t n) {
  if (cfg->steps > 0) return cfg->steps;
  int64_t b = cfg->batch > 0 ? cfg->batch : 64;
  return cfg->epochs * ((n + b - 1) / b);
}

/* One optimizer step on the loader's next batch; *loss gets the batch loss. */
static gr_status train_step(gr_model *m, gr_optim *o, gr_ctx *c, gr_loader *l, gr_dp *dp,
                            const gr_train_cfg *cfg, double *loss) {
  gr_tensor *x;
  const int32_t *y;
  double weight;
  gr_status s = gr_loader_next(l, c, &x, &y);
  if (!s) s = gr_dp_shard(c, &x, &y, &weight);
  if (s) return s;
  gr_tensor *logits = gr_model_forward(m, c, x);
  gr_tensor *L = logits ? gr_cross_entropy(c, logits, y, cfg->label_smoothing, -100) : NULL;
  if (!L) return gr_last_status() ? gr_last_status() : gr_error(GR_ESTATE, "train: forward failed");
  *loss = L->data[0];
  gr_model_zero_grad(m);
  s = gr_backward(c, L);
  if (!s) s = gr_dp_reduce(dp, m, weight, loss);
  if (!s && cfg->clip_norm > 0 && !isfinite(gr_clip_grad_norm(m, cfg->clip_norm)))
    s = gr_error(GR_ENUMERIC, "train: gradient norm is not finite");
  if (!s) s = gr_optim_step(o);
  gr_ctx_reset(c);
  return s;
}

static void best_save(best_state *b, const gr_model *m) {
  memcpy(b->data, m->data, (size_t)m->numel * sizeof(float));
  memcpy(b->buf, m->buf, (size_t)m->buf_numel * sizeof(float));
}

static void best_restore(const best_state *b, gr_model *m) {
  memcpy(m->data, b->data, (size_t)m->numel * sizeof(float));
  memcpy(m->buf, b->buf, (size_t)m->buf_numel * sizeof(float));
}

/* Evaluates and updates early-stopping state; *stop set when patience is out. */
static gr_status eval_point(train_run *r, int64_t step, bool *stop) {
  gr_eval_result *ev = &r->last;
  gr_status s = gr_evaluate(r->m, r->c, r->eval, r->cfg->eval_batch, ev);
  if (s) return s;
  double tl = r->window_n ? r->window_sum / (double)r->window_n : NAN;
  if (r->hooks && r->hooks->on_eval) r->hooks->on_eval(r->hooks->ud, step, tl, ev);
  r->evals++;
  if (r->cfg->patience <= 0) return GR_OK;
  if (ev->loss < r->best.loss) {
    r->best.loss = ev->loss, r->best.step = step, r->best.bad_evals = 0;
    best_save(&r->best, r->m);
  } else if (++r->best.bad_evals >= r->cfg->patience) {
    *stop = true;
  }
  return GR_OK;
}

/* The loop from r->start; checkpoints every ckpt.every steps and at the
 * end (or the pause at ckpt.stop_at, after which there is no final
 * evaluation). */
static gr_status train_loop(train_run *r, int64_t total, gr_train_result *res) {
  const gr_train_cfg *cfg = r->cfg;
  const gr_train_ckpt *ck = &cfg->ckpt;
  float base = cfg->sched.base_lr > 0 ? cfg->sched.base_lr : r->o->cfg.lr;
  gr_schedule sched = cfg->sched;
  sched.base_lr = base;
  if (sched.kind == GR_SCHED_COSINE && sched.total_steps <= 0) sched.total_steps = total;
  if (sched.kind == GR_SCHED_STEP && sched.step_size <= 0) sched.step_size = total / 3 > 0 ? total / 3 : 1;
  int64_t per_epoch = gr_loader_batches(&r->l);
  bool paused = false;
  gr_status s = GR_OK;
  int64_t step = r->start;
  while (step < total && !r->stop && !paused && !s) {
    r->o->lr = gr_schedule_lr(&sched, step);
    double loss = 0;
    s = train_step(r->m, r->o, r->c, &r->l, &r->dp, cfg, &loss);
    if (s) break;
    if (step % per_epoch == 0) r->window_sum = 0, r->window_n = 0;
    r->window_sum += loss, r->window_n++;
    step++;
    if (r->hooks && r->hooks->on_step) r->hooks->on_step(r->hooks->ud, step, total, loss);
    if (r->eval && cfg->eval_every > 0 && step % cfg->eval_every == 0 && step < total) s = eval_point(r, step, &r->stop);
    paused = ck->stop_at == step && step < total && !r->stop;
    if (!s && ck->path && ck->every > 0 && step % ck->every == 0 && step < total && !r->stop && !paused)
      s = gr_train_state_save(r, step, total);
  }
  if (!s && ck->path) s = gr_train_state_save(r, step, total);
  res->steps = step;
  res->resumed_at = r->start;
  res->paused = paused;
  res->stopped_early = r->stop;
  res->train_loss = r->window_n ? r->window_sum / (double)r->window_n : NAN;
  if (s || paused) return s;
  bool stop = r->stop;
  if (r->eval && !stop) s = eval_point(r, step, &stop);
  res->best_step = cfg->patience > 0 && r->best.step >= 0 ? r->best.step : step;
  if (!s && r->eval && res->best_step != step) {
    best_restore(&r->best, r->m);
    s = gr_evaluate(r->m, r->c, r->eval, cfg->eval_batch, &r->last);
  }
  if (!s && r->eval) res->eval = r->last;
  return s;
}

gr_status gr_train(gr_model *m, gr_optim *o, const gr_dataset *train, const gr_dataset *eval,
                   const gr_train_cfg *cfg_in, const gr_train_hooks *hooks, gr_train_result *res) {
  if (!m || !o || !train || !cfg_in || !res) return gr_error(GR_EARG, "train: NULL argument");
  if (o->model != m) return gr_error(GR_EARG, "train: optimizer belongs to another model");
  gr_train_cfg cfg = *cfg_in;
  if (cfg.batch <= 0) cfg.batch = 64;
  if (cfg.eval_batch <= 0) cfg.eval_batch = 500;
  if (cfg.steps <= 0 && cfg.epochs <= 0) return gr_error(GR_EARG, "train: need steps > 0 or epochs > 0");
  if (cfg.ckpt.every < 0 || cfg.ckpt.stop_at < 0 || (cfg.ckpt.n_meta && !cfg.ckpt.meta))
    return gr_error(GR_EARG, "train: checkpoint every/stop_at must be >= 0");
  if (!cfg.ckpt.path && (cfg.ckpt.every || cfg.ckpt.stop_at))
    return gr_error(GR_EARG, "train: checkpoint every/stop_at without a checkpoint path");
  memset(res, 0, sizeof *res);
  train_run r = {.m = m, .o = o, .eval = eval, .cfg = &cfg, .hooks = hooks};
  r.best.loss = INFINITY, r.best.step = -1;
  gr_status s = gr_dp_begin(&r.dp, m, cfg.batch);
  if (!s) s = gr_loader_init(&r.l, train, cfg.batch, true, cfg.seed);
  r.l.aug = cfg.aug;
  r.c = s ? NULL : gr_ctx_new(8 << 20, gr_dp_local_seed(cfg.seed ^ 0xC0FFEE));
  if (!s && !r.c) s = gr_error(GR_ENOMEM, "train: out of memory for the step arena");
  if (!s && cfg.patience > 0) {
    r.best.data = gr_malloc((size_t)m->numel * sizeof(float) + 4);
    r.best.buf = gr_malloc((size_t)m->buf_numel * sizeof(float) + 4);
    if (!r.best.data || !r.best.buf) s = gr_error(GR_ENOMEM, "train: out of memory for the best weights");
  }
  int64_t total = gr_train_total_steps(&cfg, train->n);
  if (!s && cfg.ckpt.resume) s = gr_dist_agree(gr_train_state_restore(&r, total));
  if (!s) s = train_loop(&r, total, res);
  gr_free(r.best.data), gr_free(r.best.buf);
  gr_ctx_free(r.c);
  gr_loader_free(&r.l);
  gr_dp_end(&r.dp);
  return s;
}
