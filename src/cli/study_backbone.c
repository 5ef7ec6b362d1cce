/* cli/study_backbone.c — `graft study` with a "backbone" key: transfer from
 * a real pretrained network (an imported model directory, e.g. the nsfwjs
 * MobileNetV2 at 96 px) to a small labelled target, against the same
 * architecture from random init and against raw pixels. Methods:
 *   raw-linear       softmax regression on the raw pixels
 *   probe            linear probe on the frozen backbone's features
 *   probe-random     the same on a randomly initialized backbone
 *   finetune         backbone + new head, all trained
 *   finetune-random  the same from random init (training from scratch)
 *   lp-ft            probe first (on unstandardized features), then
 *                    fine-tune everything from that head
 * Probes extract the features once (eval mode, a few images per batch at
 * large input sizes to bound memory) and train the linear head on the
 * standardized features (SGD, momentum 0.9, L2 1/n: logistic regression
 * with C=1); fine-tuning trains every weight with batch-norm statistics
 * frozen (eval mode). A randomly initialized backbone has running
 * statistics 0/1 that do not describe its activations (they vanish or
 * explode layer by layer): its batch-norm statistics are recalibrated on the
 * training images first (gr_onnx_module_recalibrate_bn, batches of
 * "batch"). Config keys (unknown keys are errors):
 *   {"backbone": DIR, "features_at": VALUE, "data": SPEC, "test_data": SPEC,
 *    "labels_per_class": [20], "seeds": 1, "seed": 1, "methods": [...],
 *    "probe_epochs": 100, "probe_lr": 0.01, "finetune_epochs": 10,
 *    "finetune_lr": 0.01, "finetune_clip": 0, "batch": 20}
 * finetune_clip > 0 clips the global gradient norm of fine-tuning steps.
 * Writes results.jsonl and report.html like the grid study. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/runs.h"
#include "graft/onnx.h"

typedef struct bb_cfg {
  const char *backbone, *features_at, *data, *test_data;
  int per_class[RUNS_MAX_BUDGETS], n_budgets;
  const char *methods[8];
  int n_methods, seeds, seed, probe_epochs, finetune_epochs, batch;
  double probe_lr, finetune_lr, finetune_clip;
} bb_cfg;

static const char *const METHODS[] = {"raw-linear", "probe", "probe-random", "finetune", "finetune-random", "lp-ft"};

static int bb_string(const cJSON *it, const char *path, const char **dst) {
  if (!cJSON_IsString(it)) return cli_fail("%s: \"%s\" must be a string", path, it->string);
  *dst = it->valuestring;
  return CLI_OK;
}

static int bb_int(const cJSON *it, const char *path, int lo, int hi, int *dst) {
  if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || it->valuedouble < lo || it->valuedouble > hi)
    return cli_fail("%s: \"%s\" must be an integer in %d..%d", path, it->string, lo, hi);
  *dst = (int)it->valuedouble;
  return CLI_OK;
}

static int bb_methods(const cJSON *it, const char *path, bb_cfg *c) {
  if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) < 1 || cJSON_GetArraySize(it) > 8)
    return cli_fail("%s: \"methods\" must be an array of 1..8 names", path);
  c->n_methods = 0;
  const cJSON *m;
  cJSON_ArrayForEach(m, it) {
    bool known = false;
    for (size_t i = 0; cJSON_IsString(m) && i < sizeof METHODS / sizeof *METHODS; i++) known |= !strcmp(m->valuestring, METHODS[i]);
    if (!known) return cli_fail("%s: unknown backbone-study method (raw-linear|probe|probe-random|finetune|finetune-random|lp-ft)", path);
    c->methods[c->n_methods++] = m->valuestring;
  }
  return CLI_OK;
}

static int bb_budgets(const cJSON *it, const char *path, bb_cfg *c) {
  if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) < 1 || cJSON_GetArraySize(it) > RUNS_MAX_BUDGETS)
    return cli_fail("%s: \"labels_per_class\" must be an array of 1..%d integers", path, RUNS_MAX_BUDGETS);
  c->n_budgets = 0;
  const cJSON *b;
  cJSON_ArrayForEach(b, it) {
    int rc = bb_int(b, path, 1, 100000, &c->per_class[c->n_budgets++]);
    if (rc) return rc;
  }
  return CLI_OK;
}

static int bb_parse(const cJSON *cfg, const char *path, bb_cfg *c) {
  *c = (bb_cfg){.data = NULL, .n_budgets = 1, .per_class = {20}, .seeds = 1, .seed = 1, .probe_epochs = 100,
                .finetune_epochs = 10, .batch = 20, .probe_lr = 1e-2, .finetune_lr = 0.01, .n_methods = 6};
  for (int i = 0; i < 6; i++) c->methods[i] = METHODS[i];
  const cJSON *it;
  int rc = CLI_OK;
  cJSON_ArrayForEach(it, cfg) {
    const char *k = it->string;
    if (!strcmp(k, "backbone")) rc = bb_string(it, path, &c->backbone);
    else if (!strcmp(k, "features_at")) rc = bb_string(it, path, &c->features_at);
    else if (!strcmp(k, "data")) rc = bb_string(it, path, &c->data);
    else if (!strcmp(k, "test_data")) rc = bb_string(it, path, &c->test_data);
    else if (!strcmp(k, "labels_per_class")) rc = bb_budgets(it, path, c);
    else if (!strcmp(k, "methods")) rc = bb_methods(it, path, c);
    else if (!strcmp(k, "seeds")) rc = bb_int(it, path, 1, RUNS_MAX_SEEDS, &c->seeds);
    else if (!strcmp(k, "seed")) rc = bb_int(it, path, 0, 1 << 30, &c->seed);
    else if (!strcmp(k, "probe_epochs")) rc = bb_int(it, path, 1, 100000, &c->probe_epochs);
    else if (!strcmp(k, "finetune_epochs")) rc = bb_int(it, path, 1, 100000, &c->finetune_epochs);
    else if (!strcmp(k, "batch")) rc = bb_int(it, path, 1, 100000, &c->batch);
    else if (!strcmp(k, "finetune_clip")) {
      if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0)) return cli_fail("%s: \"%s\" must be a number >= 0", path, k);
      c->finetune_clip = it->valuedouble;
    } else if (!strcmp(k, "probe_lr") || !strcmp(k, "finetune_lr")) {
      if (!cJSON_IsNumber(it) || !(it->valuedouble > 0)) return cli_fail("%s: \"%s\" must be a positive number", path, k);
      *(!strcmp(k, "probe_lr") ? &c->probe_lr : &c->finetune_lr) = it->valuedouble;
    } else return cli_fail("%s: unknown key \"%s\" in a backbone study", path, k);
    if (rc) return rc;
  }
  if (!c->backbone || !c->data) return cli_fail("%s: a backbone study needs \"backbone\" and \"data\"", path);
  return CLI_OK;
}

/* ---- features and linear heads ------------------------------------------------ */

/* Images per feature-extraction batch for a graph fed h x w: the forward
 * keeps every activation of a batch until it ends (~0.9 GiB for 3 images
 * of 224x224 through MobileNetV2), so large inputs go a few at a time. */
static int64_t feature_batch(const gr_model_config *mc) {
  int64_t k = (int64_t)160000 / ((int64_t)mc->h * mc->w > 0 ? (int64_t)mc->h * mc->w : 1);
  return k < 1 ? 1 : k > 20 ? 20 : k;
}

/* out: one row of features per sample of d (labels kept); m in eval mode. */
static gr_status extract_features(gr_model *m, const gr_dataset *d, int64_t batch, gr_dataset **out) {
  *out = NULL;
  gr_ctx *c = gr_ctx_new(16 << 20, 1);
  if (!c) return gr_last_status();
  gr_ctx_set_grad(c, false);
  gr_model_train(m, false);
  gr_status s = GR_OK;
  for (int64_t start = 0; start < d->n && !s; start += batch) {
    int64_t k = d->n - start < batch ? d->n - start : batch;
    gr_tensor *x;
    const int32_t *y;
    s = gr_dataset_batch(d, c, start, k, &x, &y);
    gr_tensor *f = s ? NULL : gr_onnx_module_features(m, c, x);
    if (!s && !f) s = gr_last_status();
    if (!s && !*out && !(*out = gr_dataset_new(d->n, 1, 1, (int)f->shape[1], d->n_classes))) s = gr_last_status();
    if (!s) {
      memcpy((*out)->x + start * (*out)->dim, f->data, (size_t)f->numel * sizeof(float));
      memcpy((*out)->y + start, d->y + start, (size_t)k * sizeof(int32_t));
    }
    gr_ctx_reset(c);
  }
  gr_ctx_free(c);
  if (s) gr_dataset_free(*out), *out = NULL;
  return s;
}

/* Per-feature standardization with the train statistics, applied to both;
 * mean/sd (dim each, or NULL) receive them. */
static void standardize(gr_dataset *train, gr_dataset *test, double *mean_out, double *sd_out) {
  for (int64_t j = 0; j < train->dim; j++) {
    double s = 0, ss = 0;
    for (int64_t i = 0; i < train->n; i++) s += train->x[i * train->dim + j];
    double mean = s / (double)train->n;
    for (int64_t i = 0; i < train->n; i++) ss += pow(train->x[i * train->dim + j] - mean, 2);
    double sd = sqrt(ss / (double)train->n);
    if (sd < 1e-6) sd = 1.0; /* constant on the train set (a dead unit): centred, not blown up */
    for (int64_t i = 0; i < train->n; i++) train->x[i * train->dim + j] = (float)((train->x[i * train->dim + j] - mean) / sd);
    for (int64_t i = 0; i < test->n; i++) test->x[i * test->dim + j] = (float)((test->x[i * test->dim + j] - mean) / sd);
    if (mean_out) mean_out[j] = mean, sd_out[j] = sd;
  }
}

static gr_status train_and_eval(gr_model *m, const gr_dataset *train, const gr_dataset *test, gr_optim_cfg oc, int epochs,
                                int batch, float clip, uint64_t seed, const char *label, gr_train_result *res) {
  gr_optim *o = gr_optim_new(m, &oc);
  if (!o) return gr_last_status();
  gr_train_cfg tc = {.epochs = epochs, .batch = batch, .clip_norm = clip, .seed = seed, .eval_batch = 20};
  runs_monitor mon;
  runs_monitor_start(&mon, label, gr_train_total_steps(&tc, train->n), false);
  gr_train_hooks hooks = runs_monitor_hooks(&mon);
  gr_status s = gr_train(m, o, train, test, &tc, &hooks, res);
  runs_monitor_finish(&mon, s ? "failed" : "done");
  gr_optim_free(o);
  return s;
}

/* Copies a head trained on standardized features (fc.*) into the backbone's
 * head on the raw features (head.*): W' = W/sd, b' = b - W mean/sd. */
static gr_status fold_head(gr_model *probe, const double *mean, const double *sd, gr_model *into) {
  gr_tensor *w = gr_model_find(probe, "fc.weight"), *b = gr_model_find(probe, "fc.bias");
  gr_tensor *hw = gr_model_find(into, "head.weight"), *hb = gr_model_find(into, "head.bias");
  if (!w || !b || !hw || !hb || hw->numel != w->numel || hb->numel != b->numel)
    return gr_error(GR_ESHAPE, "lp-ft: the backbone's head does not match the probe's");
  int64_t f = w->shape[1];
  for (int64_t k = 0; k < b->numel; k++) {
    double bias = b->data[k];
    for (int64_t j = 0; j < f; j++) {
      hw->data[k * f + j] = (float)(w->data[k * f + j] / sd[j]);
      bias -= w->data[k * f + j] * mean[j] / sd[j];
    }
    hb->data[k] = (float)bias;
  }
  return GR_OK;
}

/* Softmax regression on standardized copies of train/test (features or
 * pixels). into (or NULL) receives the trained head, and then the features
 * are not standardized: folded into a head on raw features, 1/sd of a
 * nearly constant feature becomes a huge weight, and fine-tuning from it
 * diverged (loss ~1e4 in the first epoch at 224 px). */
static gr_status linear_run(const gr_dataset *train, const gr_dataset *test, const bb_cfg *c, uint64_t seed,
                            const char *label, gr_train_result *res, int64_t *params, gr_model *into) {
  gr_dataset *tr = NULL, *te = NULL; /* standardized copies */
  gr_status s = gr_dataset_subsample(train, train->n, seed, &tr);
  if (!s) s = gr_dataset_subsample(test, test->n, seed, &te);
  double *mean = s ? NULL : gr_calloc(2 * (size_t)train->dim, sizeof(double)), *sd = mean ? mean + train->dim : NULL;
  gr_model *m = s ? NULL : gr_model_new(seed);
  if (!s && (!m || !mean)) s = m ? gr_error(GR_ENOMEM, "linear probe: out of memory") : gr_last_status();
  if (!s) {
    if (!into) standardize(tr, te, mean, sd);
    for (int64_t j = 0; into && j < tr->dim; j++) mean[j] = 0, sd[j] = 1;
    gr_module *root = gr_nn_sequential(m);
    s = root ? gr_module_add(root, "flatten", gr_nn_flatten(m)) : gr_last_status();
    if (!s) s = gr_module_add(root, "fc", gr_nn_linear(m, tr->dim, tr->n_classes, true));
    if (!s) s = gr_model_set_root(m, root);
    if (!s) *params = gr_model_param_count(m, true);
    /* zero start, as logistic regression: a unit the train set never moves keeps weight 0 */
    gr_tensor *w = s ? NULL : gr_model_find(m, "fc.weight"), *b = s ? NULL : gr_model_find(m, "fc.bias");
    if (w && b) memset(w->data, 0, (size_t)w->numel * sizeof(float)), memset(b->data, 0, (size_t)b->numel * sizeof(float));
    /* L2 of weight 1/n on the mean loss = scikit-learn's LogisticRegression(C=1) objective */
    gr_optim_cfg oc = gr_sgd_cfg((float)c->probe_lr, 0.9f, 1.0f / (float)tr->n, false);
    if (!s) s = train_and_eval(m, tr, te, oc, c->probe_epochs, c->batch, 0.0f, seed, label, res);
    if (!s && into) s = fold_head(m, mean, sd, into);
  }
  gr_free(mean);
  gr_model_free(m);
  gr_dataset_free(tr);
  gr_dataset_free(te);
  return s;
}

/* ---- the runs ------------------------------------------------------------------- */

/* The backbone with a fresh head at the features; random: re-initialized,
 * batch-norm statistics recalibrated on the train images. *fbatch: images
 * per feature-extraction batch. */
static gr_status load_backbone(const bb_cfg *c, bool random, const gr_dataset *train, uint64_t seed, gr_model **out,
                               int64_t *fbatch) {
  gr_model_config mc;
  gr_status s = gr_model_load_dir(c->backbone, seed, &mc, out);
  if (!s) s = gr_onnx_module_set_head(*out, c->features_at, train->n_classes);
  if (!s && random) {
    gr_rng r;
    gr_rng_seed(&r, seed * 7919 + 3);
    s = gr_onnx_module_reinit(*out, &r);
    if (!s) s = gr_onnx_module_recalibrate_bn(*out, train, c->batch);
  }
  if (!s) *fbatch = feature_batch(&mc);
  if (s) gr_model_free(*out), *out = NULL;
  return s;
}

/* Features of train and test through m (eval mode), then the linear probe;
 * into (or NULL): m, whose head receives the probe. */
static gr_status features_and_probe(gr_model *m, int64_t fbatch, const bb_cfg *c, const gr_dataset *train,
                                    const gr_dataset *test, uint64_t seed, const char *label, gr_train_result *res,
                                    int64_t *params, gr_model *into) {
  gr_dataset *ftr = NULL, *fte = NULL;
  gr_status s = extract_features(m, train, fbatch, &ftr);
  if (!s) s = extract_features(m, test, fbatch, &fte);
  if (!s) s = linear_run(ftr, fte, c, seed, label, res, params, into);
  gr_dataset_free(ftr);
  gr_dataset_free(fte);
  return s;
}

/* Trains every weight of m with batch-norm statistics frozen (eval mode):
 * batches of 20 grey digits would otherwise normalize with statistics the
 * evaluation never sees. */
static gr_status finetune_model(gr_model *m, const bb_cfg *c, const gr_dataset *train, const gr_dataset *test,
                                uint64_t seed, const char *label, gr_train_result *res, int64_t *params) {
  gr_model_train(m, false);
  *params = gr_model_param_count(m, true);
  return train_and_eval(m, train, test, gr_sgd_cfg((float)c->finetune_lr, 0.9f, 0.0f, false), c->finetune_epochs,
                        c->batch, (float)c->finetune_clip, seed, label, res);
}

/* probe, probe-random, finetune, finetune-random, lp-ft on the backbone. */
static gr_status backbone_run(const bb_cfg *c, const char *method, const gr_dataset *train, const gr_dataset *test,
                              uint64_t seed, const char *label, gr_train_result *res, int64_t *params) {
  gr_model *m = NULL;
  int64_t fbatch = 1;
  gr_status s = load_backbone(c, strstr(method, "random") != NULL, train, seed, &m, &fbatch);
  if (s) return s;
  if (!strncmp(method, "probe", 5)) {
    s = features_and_probe(m, fbatch, c, train, test, seed, label, res, params, NULL);
  } else if (!strcmp(method, "lp-ft")) {
    gr_train_result probe_res;
    int64_t probe_params;
    char probe_label[120];
    snprintf(probe_label, sizeof probe_label, "%s (probe stage)", label);
    s = features_and_probe(m, fbatch, c, train, test, seed, probe_label, &probe_res, &probe_params, m);
    if (!s) s = finetune_model(m, c, train, test, seed, label, res, params);
  } else {
    s = finetune_model(m, c, train, test, seed, label, res, params);
  }
  gr_model_free(m);
  return s;
}

static gr_status one_run(const bb_cfg *c, const char *method, const gr_dataset *train, const gr_dataset *test,
                         uint64_t seed, gr_run_result *r) {
  gr_train_result res;
  memset(&res, 0, sizeof res);
  int64_t params = -1;
  char label[96];
  snprintf(label, sizeof label, "%s n=%lld seed=%llu", method, (long long)train->n, (unsigned long long)seed);
  double t0 = gr_wall_seconds();
  gr_status s = !strcmp(method, "raw-linear") ? linear_run(train, test, c, seed, label, &res, &params, NULL)
                                             : backbone_run(c, method, train, test, seed, label, &res, &params);
  if (s) return s;
  snprintf(r->method, sizeof r->method, "%s", method);
  r->seed = seed;
  r->n_labels = train->n;
  r->accuracy = res.eval.accuracy;
  r->loss = res.eval.loss;
  r->trainable_params = params;
  r->seconds = gr_wall_seconds() - t0;
  r->peak_rss_bytes = gr_peak_rss_bytes();
  return GR_OK;
}

/* The budgeted train split (per_class labels of each class) and the test
 * set; *fraction: the share of the train split's labels used. */
static gr_status load_data(const bb_cfg *c, int per_class, uint64_t seed, gr_dataset **train, gr_dataset **test,
                           double *fraction) {
  gr_data_spec ds, ts;
  gr_dataset *full = NULL;
  gr_status s = gr_data_spec_parse(c->data, &ds);
  if (!s) s = gr_data_spec_parse(c->test_data ? c->test_data : c->data, &ts);
  if (!s) s = gr_data_load(&ds, "train", seed, &full);
  if (!s) s = gr_dataset_budget(full, per_class, 1.0, seed, train);
  if (!s) s = gr_data_load(&ts, c->test_data ? NULL : "test", seed, test);
  if (!s) *fraction = (double)(*train)->n / (double)full->n;
  gr_dataset_free(full);
  return s;
}

int study_backbone_run(const cJSON *cfg, const char *path, const char *out, bool force) {
  bb_cfg c;
  int rc = bb_parse(cfg, path, &c);
  if (rc || (rc = runs_prepare_outdir(out, force))) return rc;
  char file[1100];
  gr_jsonl *jl = gr_jsonl_open(runs_path(file, sizeof file, out, "results.jsonl"), true);
  if (!jl) return cli_fail_status(file);
  gr_results rs = {0};
  gr_status s = GR_OK;
  double t0 = gr_wall_seconds();
  for (int b = 0; b < c.n_budgets && !s; b++)
    for (int k = 0; k < c.seeds && !s; k++) {
      uint64_t seed = (uint64_t)c.seed + (uint64_t)k;
      gr_dataset *train = NULL, *test = NULL;
      double fraction = 1.0;
      s = load_data(&c, c.per_class[b], seed, &train, &test, &fraction);
      for (int i = 0; i < c.n_methods && !s; i++) {
        gr_run_result r;
        gr_run_result_init(&r);
        snprintf(r.dataset, sizeof r.dataset, "%s", c.data);
        r.budget = fraction;
        s = one_run(&c, c.methods[i], train, test, seed, &r);
        if (!s) s = gr_jsonl_write_result(jl, &r);
        if (!s) s = gr_results_add(&rs, &r);
      }
      gr_dataset_free(train);
      gr_dataset_free(test);
    }
  gr_jsonl_close(jl);
  if (!s) {
    printf("backbone %s, features at %s, data %s\n", c.backbone,
           c.features_at ? c.features_at : "(default cut)", c.data);
    s = gr_results_print_summary(&rs, stdout, GR_TABLE_TEXT);
    gr_report_info info = {"graft study: transfer from an imported backbone", NULL, NULL, 0, gr_wall_seconds() - t0};
    if (!s) s = gr_report_write_html(runs_path(file, sizeof file, out, "report.html"), &info, &rs);
  }
  gr_results_free(&rs);
  return s ? cli_fail_status("study") : CLI_OK;
}
