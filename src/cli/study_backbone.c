/* cli/study_backbone.c — `graft study` with a "backbone" key: transfer from
 * a real pretrained network (an imported model directory, e.g. the nsfwjs
 * MobileNetV2) to a small labelled target, against the same architecture
 * from random init and against raw pixels. Methods:
 *   raw-linear       softmax regression on the raw pixels
 *   probe            linear probe on the frozen backbone's features
 *   probe-random     the same on a randomly initialized backbone
 *   finetune         backbone + new head, all trained
 *   finetune-random  the same from random init (training from scratch)
 *   lp-ft            probe first (on unstandardized features), then
 *                    fine-tune everything from that head
 * Probes train a linear head on the standardized features from zero with
 * L2 1/(n C) on the mean loss (scikit-learn's LogisticRegression(C)
 * objective): "probe_solver" "sgd" (probe_epochs of SGD, momentum 0.9,
 * probe_lr; the default) or "lbfgs" (solved to convergence, gr_logreg_fit;
 * the bias is then not penalized, as in scikit-learn). Features come from a feature cache
 * (gr_onnx_features_cached): each image goes through a backbone once per
 * study however many seeds draw it; with "feature_cache": DIR the caches
 * persist across studies (DIR/<hash of the source>.grfc; the source's key
 * includes a hash of the backbone's weights, so features of other weights
 * are never reused). Selection:
 * "backbone", "features_at" (null: the default cut) and "probe_c" may be
 * arrays of candidates; a
 * probe (raw-linear: over probe_c only) then picks, for each seed, the
 * candidate with the best stratified cv_folds-fold cross-validation accuracy
 * on that seed's labelled training images alone (ties: the first in listing
 * order, backbone-major, then features_at, then C) and reports its test
 * accuracy; the pick is printed and kept in results.jsonl ("cv_accuracy",
 * "probe_c", "candidate"). Fine-tuning uses the first candidate and trains
 * every weight with batch-norm statistics frozen (eval mode).
 * A randomly initialized backbone ("init": "torchvision" or "pytorch", see
 * gr_onnx_init) has running statistics 0/1 that do not describe its
 * activations: they are recalibrated (gr_onnx_module_recalibrate_bn) on the
 * labelled draw (recalibrate_images 0: a new random network per seed) or on
 * recalibrate_images unlabelled images of the train split (one random
 * network, seed "seed", for every seed). Config keys (unknown keys are
 * errors):
 *   {"backbone": DIR|[DIR...], "features_at": VALUE|[VALUE...], "data": SPEC,
 *    "test_data": SPEC, "labels_per_class": [20], "seeds": 1, "seed": 1,
 *    "test_seed": (the run seed), "methods": [...], "probe_epochs": 100,
 *    "probe_lr": 0.01, "probe_c": 1|[C...], "probe_solver": "sgd", "cv_folds": 5,
 *    "finetune_epochs": 10, "finetune_lr": 0.01, "finetune_clip": 0,
 *    "batch": 20, "init": "torchvision", "recalibrate_images": 0,
 *    "pad": 0|[P...], "feature_cache": DIR, "export_features": DIR}
 * pad (a candidate list too) surrounds every image a backbone sees with that
 * many zero pixels (the digits then sit centred in a larger field, as
 * MNIST's 20 px digits in 28 px); raw-linear never pads.
 * test_seed fixes the test draw across seeds. export_features writes each
 * probe's final train/test features as CSV (label last) per seed.
 * finetune_clip > 0 clips the global gradient norm of fine-tuning steps.
 * Writes results.jsonl and report.html like the grid study. */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/runs.h"
#include "graft/fileio.h"
#include "graft/logreg.h"
#include "graft/onnx.h"
#include "graft/rng.h"

#define BB_MAX_CAND 8   /* candidates per list (backbones, cuts, C values) */
#define BB_MAX_SOURCES 64

typedef struct bb_cfg {
  const char *backbones[BB_MAX_CAND], *cuts[BB_MAX_CAND];
  int n_backbones, n_cuts, n_c;
  double probe_c[BB_MAX_CAND];
  const char *data, *test_data, *feature_cache, *export_dir;
  int per_class[RUNS_MAX_BUDGETS], n_budgets;
  const char *methods[8];
  bool lbfgs; /* probe_solver "lbfgs" (else "sgd") */
  int n_methods, seeds, seed, test_seed, probe_epochs, finetune_epochs, batch, cv_folds, recal_images;
  int pads[BB_MAX_CAND], n_pads;
  gr_onnx_init init;
  double probe_lr, finetune_lr, finetune_clip;
} bb_cfg;

static const char *const METHODS[] = {"raw-linear", "probe", "probe-random", "finetune", "finetune-random", "lp-ft"};

static int bb_string(const cJSON *it, const char *path, const char **dst) {
  if (!cJSON_IsString(it)) return cli_fail("%s: \"%s\" must be a string", path, it->string);
  *dst = it->valuestring;
  return CLI_OK;
}

/* A string or an array of 1..BB_MAX_CAND strings (with_null: or nulls,
 * kept as NULL). */
static int bb_strings(const cJSON *it, const char *path, bool with_null, const char **dst, int *n) {
  if (cJSON_IsString(it)) return *n = 1, bb_string(it, path, dst);
  if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) < 1 || cJSON_GetArraySize(it) > BB_MAX_CAND)
    return cli_fail("%s: \"%s\" must be a string or an array of 1..%d strings", path, it->string, BB_MAX_CAND);
  *n = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, it) {
    if (!cJSON_IsString(e) && !(with_null && cJSON_IsNull(e)))
      return cli_fail("%s: \"%s\" must be a string or an array of 1..%d strings", path, it->string, BB_MAX_CAND);
    dst[(*n)++] = cJSON_IsNull(e) ? NULL : e->valuestring;
  }
  return CLI_OK;
}

/* A number in lo..hi (an integer when integer is set), or an array of
 * 1..BB_MAX_CAND of them; what names the rule in the error. */
static int bb_numbers(const cJSON *it, const char *path, const char *what, double lo, double hi, bool integer,
                      double *dst, int *n) {
  int k = 0;
  const cJSON *e = cJSON_IsArray(it) ? it->child : it;
  bool ok = cJSON_IsNumber(it) || (cJSON_IsArray(it) && cJSON_GetArraySize(it) >= 1 && cJSON_GetArraySize(it) <= BB_MAX_CAND);
  for (; ok && e; e = cJSON_IsArray(it) ? e->next : NULL) {
    double v = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    ok = isfinite(v) && v >= lo && v <= hi && (!integer || v == floor(v));
    if (ok) dst[k++] = v;
  }
  if (!ok) return cli_fail("%s: \"%s\" must be %s or an array of 1..%d of them", path, it->string, what, BB_MAX_CAND);
  *n = k;
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

static int bb_pads(const cJSON *it, const char *path, bb_cfg *c) {
  double v[BB_MAX_CAND];
  int rc = bb_numbers(it, path, "an integer in 0..1000", 0, 1000, true, v, &c->n_pads);
  for (int k = 0; !rc && k < c->n_pads; k++) c->pads[k] = (int)v[k];
  return rc;
}

static int bb_init(const cJSON *it, const char *path, gr_onnx_init *dst) {
  const char *v = cJSON_IsString(it) ? it->valuestring : "";
  if (!strcmp(v, "torchvision")) *dst = GR_ONNX_INIT_TORCHVISION;
  else if (!strcmp(v, "pytorch")) *dst = GR_ONNX_INIT_TORCH_DEFAULT;
  else return cli_fail("%s: \"init\" must be \"torchvision\" or \"pytorch\"", path);
  return CLI_OK;
}

/* The integer-valued keys: their field and range; NULL when k is not one. */
static int *bb_int_key(bb_cfg *c, const char *k, int *lo, int *hi) {
  static const struct { const char *name; size_t off; int lo, hi; } keys[] = {
      {"seeds", offsetof(bb_cfg, seeds), 1, RUNS_MAX_SEEDS},
      {"seed", offsetof(bb_cfg, seed), 0, 1 << 30},
      {"test_seed", offsetof(bb_cfg, test_seed), 0, 1 << 30},
      {"probe_epochs", offsetof(bb_cfg, probe_epochs), 1, 100000},
      {"finetune_epochs", offsetof(bb_cfg, finetune_epochs), 1, 100000},
      {"batch", offsetof(bb_cfg, batch), 1, 100000},
      {"cv_folds", offsetof(bb_cfg, cv_folds), 2, 100},
      {"recalibrate_images", offsetof(bb_cfg, recal_images), 0, 1000000},
  };
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    if (!strcmp(k, keys[i].name)) return *lo = keys[i].lo, *hi = keys[i].hi, (int *)((char *)c + keys[i].off);
  return NULL;
}

static int bb_key(const cJSON *it, const char *path, bb_cfg *c) {
  const char *k = it->string;
  int lo, hi, *ip = bb_int_key(c, k, &lo, &hi);
  if (ip) return bb_int(it, path, lo, hi, ip);
  if (!strcmp(k, "backbone")) return bb_strings(it, path, false, c->backbones, &c->n_backbones);
  if (!strcmp(k, "features_at")) return bb_strings(it, path, true, c->cuts, &c->n_cuts);
  if (!strcmp(k, "probe_c")) return bb_numbers(it, path, "a positive number", DBL_MIN, DBL_MAX, false, c->probe_c, &c->n_c);
  if (!strcmp(k, "pad")) return bb_pads(it, path, c);
  if (!strcmp(k, "data")) return bb_string(it, path, &c->data);
  if (!strcmp(k, "test_data")) return bb_string(it, path, &c->test_data);
  if (!strcmp(k, "feature_cache")) return bb_string(it, path, &c->feature_cache);
  if (!strcmp(k, "export_features")) return bb_string(it, path, &c->export_dir);
  if (!strcmp(k, "labels_per_class")) return bb_budgets(it, path, c);
  if (!strcmp(k, "methods")) return bb_methods(it, path, c);
  if (!strcmp(k, "init")) return bb_init(it, path, &c->init);
  if (!strcmp(k, "probe_solver")) {
    const char *v = cJSON_IsString(it) ? it->valuestring : "";
    if (strcmp(v, "sgd") && strcmp(v, "lbfgs")) return cli_fail("%s: \"probe_solver\" must be \"sgd\" or \"lbfgs\"", path);
    c->lbfgs = !strcmp(v, "lbfgs");
    return CLI_OK;
  }
  if (!strcmp(k, "finetune_clip")) {
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0)) return cli_fail("%s: \"%s\" must be a number >= 0", path, k);
    c->finetune_clip = it->valuedouble;
    return CLI_OK;
  }
  if (!strcmp(k, "probe_lr") || !strcmp(k, "finetune_lr")) {
    if (!cJSON_IsNumber(it) || !(it->valuedouble > 0)) return cli_fail("%s: \"%s\" must be a positive number", path, k);
    *(!strcmp(k, "probe_lr") ? &c->probe_lr : &c->finetune_lr) = it->valuedouble;
    return CLI_OK;
  }
  return cli_fail("%s: unknown key \"%s\" in a backbone study", path, k);
}

static int bb_parse(const cJSON *cfg, const char *path, bb_cfg *c) {
  *c = (bb_cfg){.n_cuts = 1, .n_c = 1, .n_pads = 1, .probe_c = {1.0}, .n_budgets = 1, .per_class = {20}, .seeds = 1, .seed = 1,
                .test_seed = -1, .probe_epochs = 100, .finetune_epochs = 10, .batch = 20, .cv_folds = 5,
                .probe_lr = 1e-2, .finetune_lr = 0.01, .n_methods = 6};
  for (int i = 0; i < 6; i++) c->methods[i] = METHODS[i];
  const cJSON *it;
  cJSON_ArrayForEach(it, cfg) {
    int rc = bb_key(it, path, c);
    if (rc) return rc;
  }
  if (!c->n_backbones || !c->data) return cli_fail("%s: a backbone study needs \"backbone\" and \"data\"", path);
  return CLI_OK;
}

/* ---- feature sources -------------------------------------------------------------- */

/* A backbone (pretrained or random) cut at one value, with its feature cache. */
typedef struct bb_source {
  char key[1200];
  gr_model *m;
  int64_t fbatch; /* images per extraction batch */
  gr_feature_cache *fc;
} bb_source;

typedef struct bb_state {
  bb_source src[BB_MAX_SOURCES];
  int n_src;
  uint64_t seed; /* the current run's */
} bb_state;

static void state_free(bb_state *st) {
  for (int i = 0; i < st->n_src; i++) gr_model_free(st->src[i].m), gr_feature_cache_free(st->src[i].fc);
  st->n_src = 0;
}

/* Images per feature-extraction batch for a graph fed h x w: the forward
 * keeps every activation of a batch until it ends (~0.9 GiB for 3 images
 * of 224x224 through MobileNetV2), so large inputs go a few at a time. */
static int64_t feature_batch(const gr_model_config *mc) {
  int64_t k = (int64_t)160000 / ((int64_t)mc->h * mc->w > 0 ? (int64_t)mc->h * mc->w : 1);
  return k < 1 ? 1 : k > 20 ? 20 : k;
}

/* A copy of d with pad zero pixels around every image. */
static gr_status pad_images(const gr_dataset *d, int pad, gr_dataset **out) {
  int h = d->h + 2 * pad, w = d->w + 2 * pad;
  *out = gr_dataset_new(d->n, d->c, h, w, d->n_classes);
  if (!*out) return gr_last_status();
  for (int64_t i = 0; i < d->n; i++) {
    (*out)->y[i] = d->y[i];
    for (int ch = 0; ch < d->c; ch++)
      for (int y = 0; y < d->h; y++)
        memcpy((*out)->x + i * (*out)->dim + ((int64_t)ch * h + y + pad) * w + pad,
               d->x + i * d->dim + ((int64_t)ch * d->h + y) * d->w, (size_t)d->w * sizeof(float));
  }
  return GR_OK;
}

/* The images a random backbone's batch-norm statistics are recalibrated on:
 * the labelled draw, or recal_images unlabelled train images (seed "seed"). */
static gr_status recal_images(const bb_cfg *c, int pad, const gr_dataset *train, gr_dataset **own,
                              const gr_dataset **use) {
  *own = NULL, *use = train;
  if (!c->recal_images) return GR_OK; /* train is padded already */
  gr_data_spec ds;
  gr_dataset *full = NULL, *sub = NULL;
  gr_status s = gr_data_spec_parse(c->data, &ds);
  if (!s) s = gr_data_load(&ds, "train", (uint64_t)c->seed, &full);
  if (!s) s = gr_dataset_subsample(full, c->recal_images, (uint64_t)c->seed, &sub);
  if (!s && pad) s = pad_images(sub, pad, own);
  else if (!s) *own = sub, sub = NULL;
  gr_dataset_free(sub);
  gr_dataset_free(full);
  if (!s) *use = *own;
  return s;
}

/* The backbone with a fresh head at cut; random: re-initialized (model seed
 * mseed), batch-norm statistics recalibrated. */
static gr_status load_backbone(const bb_cfg *c, const char *dir, const char *cut, int pad, bool random,
                               const gr_dataset *train, uint64_t mseed, gr_model **out, int64_t *fbatch) {
  gr_model_config mc;
  gr_dataset *own = NULL;
  const gr_dataset *recal = NULL;
  gr_status s = gr_model_load_dir(dir, mseed, &mc, out);
  if (!s) s = gr_onnx_module_set_head(*out, cut, train->n_classes);
  if (!s && random) {
    gr_rng r;
    gr_rng_seed(&r, mseed * 7919 + 3);
    s = gr_onnx_module_reinit(*out, &r, c->init);
    if (!s) s = recal_images(c, pad, train, &own, &recal);
    if (!s) s = gr_onnx_module_recalibrate_bn(*out, recal, c->batch);
  }
  gr_dataset_free(own);
  if (!s) *fbatch = feature_batch(&mc);
  if (s) gr_model_free(*out), *out = NULL;
  return s;
}

/* What names a source within a run: directory, cut, init and what a random
 * network was recalibrated on (padded images differ in content, so a
 * pretrained source's features serve every pad). */
static void source_key(const bb_cfg *c, const char *dir, const char *cut, int pad, bool random, uint64_t mseed,
                       char *key, size_t cap) {
  int n = snprintf(key, cap, "backbone=%s features_at=%s", dir, cut ? cut : "(default)");
  if (random && n > 0 && (size_t)n < cap)
    snprintf(key + n, cap - (size_t)n, " random init=%s seed=%llu recalibrate=%s%d batch=%d pad=%d",
             c->init == GR_ONNX_INIT_TORCH_DEFAULT ? "pytorch" : "torchvision", (unsigned long long)mseed,
             c->recal_images ? "unlabelled:" : "draw", c->recal_images, c->batch, pad);
}

/* FNV-1a over the names and values of every backbone parameter and buffer
 * (the new classifier "head.*" excluded: it does not shape the features).
 * Part of the feature cache's key, so features of other weights (a model
 * re-imported, another random init) are never read from a stale file. */
static uint64_t backbone_hash(const gr_model *m) {
  uint64_t h = GR_FNV1A_OFFSET;
  for (int i = 0; i < m->n_entries; i++) {
    const gr_named_tensor *e = &m->entries[i];
    if (!strncmp(e->name, "head.", 5)) continue;
    h = gr_fnv1a(h, e->name, strlen(e->name));
    h = gr_fnv1a(h, e->t->data, (size_t)e->t->numel * sizeof(float));
  }
  return h;
}

/* The source for (dir, cut, random), loaded on first use. A random network
 * recalibrated on the labelled draw is one per seed (its key says so). */
static gr_status get_source(const bb_cfg *c, bb_state *st, const char *dir, const char *cut, int pad, bool random,
                            const gr_dataset *train, bb_source **out) {
  uint64_t mseed = random && c->recal_images ? (uint64_t)c->seed : st->seed;
  char key[1200];
  source_key(c, dir, cut, pad, random, mseed, key, sizeof key);
  for (int i = 0; i < st->n_src; i++)
    if (!strcmp(st->src[i].key, key)) return *out = &st->src[i], GR_OK;
  if (st->n_src == BB_MAX_SOURCES) return gr_error(GR_ENOMEM, "backbone study: more than %d feature sources", BB_MAX_SOURCES);
  bb_source *src = &st->src[st->n_src];
  memset(src, 0, sizeof *src);
  snprintf(src->key, sizeof src->key, "%s", key);
  gr_status s = load_backbone(c, dir, cut, pad, random, train, mseed, &src->m, &src->fbatch);
  char file[1200] = "", cache_key[1300];
  snprintf(cache_key, sizeof cache_key, "%s weights_fnv1a=%016llx", key, (unsigned long long)(s ? 0 : backbone_hash(src->m)));
  if (c->feature_cache)
    snprintf(file, sizeof file, "%s/%016llx.grfc", c->feature_cache,
             (unsigned long long)gr_fnv1a(GR_FNV1A_OFFSET, cache_key, strlen(cache_key))); /* names the file */
  if (!s) s = gr_feature_cache_open(c->feature_cache ? file : NULL, cache_key, &src->fc);
  if (s) {
    gr_model_free(src->m);
    return s;
  }
  st->n_src++;
  *out = src;
  return GR_OK;
}

/* ---- linear heads ---------------------------------------------------------------- */

/* Per-feature standardization with the train statistics, applied to both;
 * mean/sd (dim each) receive them. */
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
    mean_out[j] = mean, sd_out[j] = sd;
  }
}

static gr_status train_and_eval(gr_model *m, const gr_dataset *train, const gr_dataset *test, gr_optim_cfg oc, int epochs,
                                int batch, float clip, uint64_t seed, const char *label, bool quiet,
                                gr_train_result *res) {
  gr_optim *o = gr_optim_new(m, &oc);
  if (!o) return gr_last_status();
  gr_train_cfg tc = {.epochs = epochs, .batch = batch, .clip_norm = clip, .seed = seed, .eval_batch = 20};
  runs_monitor mon;
  runs_monitor_start(&mon, label, gr_train_total_steps(&tc, train->n), quiet);
  gr_train_hooks hooks = runs_monitor_hooks(&mon);
  gr_status s = gr_train(m, o, train, test, &tc, &hooks, res);
  runs_monitor_finish(&mon, s ? "failed" : "done");
  gr_optim_free(o);
  return s;
}

/* Copies a head (w [k, f], b [k]) trained on standardized features into
 * the backbone's head on the raw features (head.*): W' = W/sd,
 * b' = b - W mean/sd. */
static gr_status fold_head(const float *w, const float *b, int64_t k, int64_t f, const double *mean, const double *sd,
                           gr_model *into) {
  gr_tensor *hw = gr_model_find(into, "head.weight"), *hb = gr_model_find(into, "head.bias");
  if (!hw || !hb || hw->numel != k * f || hb->numel != k)
    return gr_error(GR_ESHAPE, "lp-ft: the backbone's head does not match the probe's");
  for (int64_t c = 0; c < k; c++) {
    double bias = b[c];
    for (int64_t j = 0; j < f; j++) {
      hw->data[c * f + j] = (float)(w[c * f + j] / sd[j]);
      bias -= w[c * f + j] * mean[j] / sd[j];
    }
    hb->data[c] = (float)bias;
  }
  return GR_OK;
}

/* One linear head: its data, strength and where it goes. */
typedef struct lin_job {
  const gr_dataset *train, *test;
  double c_inv_l2; /* scikit-learn's C: L2 1/(n C) */
  uint64_t seed;
  const char *label;
  bool quiet;
  gr_model *into; /* NULL, or the backbone whose head receives the result */
} lin_job;

/* A zero-started softmax regression head on flattened inputs of dim. */
static gr_status linear_model(int64_t dim, int n_classes, uint64_t seed, gr_model **out) {
  gr_model *m = gr_model_new(seed);
  gr_module *root = m ? gr_nn_sequential(m) : NULL;
  gr_status s = root ? gr_module_add(root, "flatten", gr_nn_flatten(m)) : gr_last_status();
  if (!s) s = gr_module_add(root, "fc", gr_nn_linear(m, dim, n_classes, true));
  if (!s) s = gr_model_set_root(m, root);
  /* zero start, as logistic regression: a unit the train set never moves keeps weight 0 */
  gr_tensor *w = s ? NULL : gr_model_find(m, "fc.weight"), *b = s ? NULL : gr_model_find(m, "fc.bias");
  if (w && b) memset(w->data, 0, (size_t)w->numel * sizeof(float)), memset(b->data, 0, (size_t)b->numel * sizeof(float));
  if (s) gr_model_free(m), m = NULL;
  *out = m;
  return s;
}

/* The head of m (fc.*) fitted exactly by L-BFGS on tr, evaluated on te. */
static gr_status lbfgs_run(const gr_dataset *tr, const gr_dataset *te, const lin_job *j, gr_model *m,
                           gr_train_result *res) {
  gr_tensor *w = gr_model_find(m, "fc.weight"), *b = gr_model_find(m, "fc.bias");
  gr_logreg_cfg lc = {.l2 = 1.0 / ((double)tr->n * j->c_inv_l2), .max_iter = 5000};
  gr_logreg_result lr;
  gr_status s = gr_logreg_fit(tr->x, tr->y, tr->n, tr->dim, tr->n_classes, &lc, w->data, b->data, &lr);
  if (!s) s = gr_logreg_eval(te->x, te->y, te->n, te->dim, te->n_classes, w->data, b->data, &res->eval.accuracy, &res->eval.loss);
  if (!s) res->steps = lr.iters, res->train_loss = lr.objective;
  if (!s && !j->quiet)
    printf("%s: L-BFGS %d iterations, objective %.6g, max |gradient| %.2g%s, test accuracy %.2f%%\n", j->label,
           lr.iters, lr.objective, lr.grad_max, lr.converged ? "" : " (not converged)", 100 * res->eval.accuracy);
  return s;
}

/* Softmax regression on standardized copies of train/test (features or
 * pixels). With into set the features are not standardized and the head is
 * copied into it: folded into a head on raw features, 1/sd of a nearly
 * constant feature becomes a huge weight, and fine-tuning from it diverged
 * (loss ~1e4 in the first epoch at 224 px). */
static gr_status linear_run(const lin_job *j, const bb_cfg *c, gr_train_result *res, int64_t *params) {
  gr_dataset *tr = NULL, *te = NULL; /* standardized copies */
  gr_status s = gr_dataset_subsample(j->train, j->train->n, j->seed, &tr);
  if (!s) s = gr_dataset_subsample(j->test, j->test->n, j->seed, &te);
  double *mean = s ? NULL : gr_calloc(2 * (size_t)j->train->dim, sizeof(double)), *sd = mean ? mean + j->train->dim : NULL;
  gr_model *m = NULL;
  if (!s && !mean) s = gr_error(GR_ENOMEM, "linear probe: out of memory");
  if (!s) s = linear_model(tr->dim, tr->n_classes, j->seed, &m);
  if (!s) {
    if (!j->into) standardize(tr, te, mean, sd);
    for (int64_t k = 0; j->into && k < tr->dim; k++) mean[k] = 0, sd[k] = 1;
    if (params) *params = gr_model_param_count(m, true);
    /* L2 of weight 1/(n C) on the mean loss = scikit-learn's LogisticRegression(C) objective */
    gr_optim_cfg oc = gr_sgd_cfg((float)c->probe_lr, 0.9f, (float)(1.0 / ((double)tr->n * j->c_inv_l2)), false);
    if (c->lbfgs) s = lbfgs_run(tr, te, j, m, res);
    else s = train_and_eval(m, tr, te, oc, c->probe_epochs, c->batch, 0.0f, j->seed, j->label, j->quiet, res);
    gr_tensor *w = gr_model_find(m, "fc.weight"), *b = gr_model_find(m, "fc.bias");
    if (!s && j->into) s = fold_head(w->data, b->data, b->numel, tr->dim, mean, sd, j->into);
  }
  gr_free(mean);
  gr_model_free(m);
  gr_dataset_free(tr);
  gr_dataset_free(te);
  return s;
}

/* Stratified k-fold cross-validation accuracy of a probe with strength C on
 * the labelled set d alone: fold of a sample = its rank within its class
 * after a seeded shuffle, mod k. */
static gr_status cv_accuracy(const gr_dataset *d, double C, const bb_cfg *c, uint64_t seed, double *acc) {
  int64_t *perm = gr_malloc((size_t)d->n * 3 * sizeof *perm), *fold = perm ? perm + d->n : NULL, *idx = fold ? fold + d->n : NULL;
  int64_t rank[256] = {0}, right = 0;
  if (!perm) return gr_error(GR_ENOMEM, "cross-validation: out of memory");
  if (d->n_classes > 256) return gr_free(perm), gr_error(GR_EUNSUPPORTED, "cross-validation: more than 256 classes");
  gr_rng r;
  gr_rng_seed(&r, seed * 104729 + 17);
  gr_rng_permutation(&r, d->n, perm);
  for (int64_t i = 0; i < d->n; i++) fold[perm[i]] = rank[d->y[perm[i]]]++ % c->cv_folds;
  gr_status s = GR_OK;
  for (int f = 0; f < c->cv_folds && !s; f++) {
    int64_t n_tr = 0, n_te = 0;
    for (int64_t i = 0; i < d->n; i++) if (fold[i] != f) idx[n_tr++] = i;
    for (int64_t i = 0; i < d->n; i++) if (fold[i] == f) idx[n_tr + n_te++] = i;
    if (!n_te || !n_tr) continue;
    gr_dataset *tr = gr_dataset_take(d, idx, n_tr), *te = tr ? gr_dataset_take(d, idx + n_tr, n_te) : NULL;
    gr_train_result res;
    lin_job j = {tr, te, C, seed + (uint64_t)f, "cv", true, NULL};
    s = te ? linear_run(&j, c, &res, NULL) : gr_last_status();
    if (!s) right += (int64_t)llround(res.eval.accuracy * (double)n_te);
    gr_dataset_free(tr), gr_dataset_free(te);
  }
  gr_free(perm);
  *acc = (double)right / (double)d->n;
  return s;
}

/* ---- probes with candidate selection --------------------------------------------- */

typedef struct bb_pick {
  int b, cut, pad, ci; /* indices into backbones, cuts, pads, probe_c */
  double cv; /* NaN: a single candidate, nothing to select */
} bb_pick;

/* The inputs of candidate p for d: raw-linear's pixels (borrowed) or the
 * source's cached features of d padded (*own, freed by the caller). */
static gr_status candidate_features(const bb_cfg *c, bb_state *st, const char *method, const bb_pick *p,
                                    const gr_dataset *d, const gr_dataset *train, gr_dataset **own,
                                    const gr_dataset **use) {
  *own = NULL, *use = d;
  if (!strcmp(method, "raw-linear")) return GR_OK;
  int pad = c->pads[p->pad];
  gr_dataset *pd = NULL, *ptr = NULL;
  bb_source *src;
  gr_status s = pad ? pad_images(d, pad, &pd) : GR_OK;
  if (!s && pad && train != d) s = pad_images(train, pad, &ptr);
  const gr_dataset *dd = pad ? pd : d, *tt = !pad ? train : train == d ? pd : ptr;
  if (!s) s = get_source(c, st, c->backbones[p->b], c->cuts[p->cut], pad, strstr(method, "random") != NULL, tt, &src);
  if (!s) s = gr_onnx_features_cached(src->m, src->fc, dd, src->fbatch, own);
  if (!s) *use = *own;
  gr_dataset_free(pd);
  gr_dataset_free(ptr);
  return s;
}

/* One line naming candidate p of method and its cross-validation accuracy. */
static void print_pick(const bb_cfg *c, const bb_state *st, const char *method, const char *what, const bb_pick *p) {
  bool raw = !strcmp(method, "raw-linear");
  printf("  %s seed %llu %s: backbone %s, features_at %s, pad %d, C %g (cv %.2f%%)\n", method,
         (unsigned long long)st->seed, what, raw ? "(pixels)" : c->backbones[p->b],
         raw || !c->cuts[p->cut] ? "(default)" : c->cuts[p->cut], raw ? 0 : c->pads[p->pad], c->probe_c[p->ci],
         100 * p->cv);
}

/* The candidate with the best cross-validation accuracy on train alone. */
static gr_status pick_candidate(const bb_cfg *c, bb_state *st, const char *method, const gr_dataset *train,
                                bb_pick *pick) {
  bool raw = !strcmp(method, "raw-linear");
  int n_b = raw ? 1 : c->n_backbones, n_cut = raw ? 1 : c->n_cuts, n_pad = raw ? 1 : c->n_pads;
  *pick = (bb_pick){0, 0, 0, 0, NAN};
  if (n_b * n_cut * n_pad * c->n_c == 1) return GR_OK;
  gr_status s = GR_OK;
  double best = -1;
  for (int k = 0; k < n_b * n_cut * n_pad && !s; k++) {
    bb_pick p = {k / (n_cut * n_pad), k / n_pad % n_cut, k % n_pad, 0, NAN};
    gr_dataset *own;
    const gr_dataset *f;
    s = candidate_features(c, st, method, &p, train, train, &own, &f);
    for (p.ci = 0; p.ci < c->n_c && !s; p.ci++) {
      s = cv_accuracy(f, c->probe_c[p.ci], c, st->seed, &p.cv);
      print_pick(c, st, method, "candidate", &p);
      if (!s && p.cv > best) best = p.cv, *pick = p;
    }
    gr_dataset_free(own);
    fflush(stdout); /* progress in a log file */
  }
  return s;
}

/* d as CSV (features, then the label) at dir/name. */
static gr_status export_csv(const gr_dataset *d, const char *dir, const char *name) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  size_t cap = (size_t)d->n * ((size_t)d->dim * 16 + 16) + 1, len = 0;
  char *buf = gr_malloc(cap);
  if (!buf) return gr_error(GR_ENOMEM, "export features: out of memory for '%s'", path);
  for (int64_t i = 0; i < d->n; i++) {
    for (int64_t j = 0; j < d->dim; j++) len += (size_t)snprintf(buf + len, cap - len, "%.9g,", (double)d->x[i * d->dim + j]);
    len += (size_t)snprintf(buf + len, cap - len, "%d\n", (int)d->y[i]);
  }
  gr_status s = gr_write_file_atomic(path, buf, len);
  gr_free(buf);
  return s;
}

/* raw-linear, probe, probe-random: pick a candidate, then train on all of
 * train and evaluate on test; the pick goes into r's extras. */
static gr_status probe_run(const bb_cfg *c, bb_state *st, const char *method, const gr_dataset *train,
                           const gr_dataset *test, const char *label, gr_train_result *res, int64_t *params,
                           gr_run_result *r) {
  bb_pick p;
  gr_dataset *own_tr = NULL, *own_te = NULL;
  const gr_dataset *ftr, *fte;
  gr_status s = pick_candidate(c, st, method, train, &p);
  if (!s) s = candidate_features(c, st, method, &p, train, train, &own_tr, &ftr);
  if (!s) s = candidate_features(c, st, method, &p, test, train, &own_te, &fte);
  char name[200];
  snprintf(name, sizeof name, "%s-seed%llu-train.csv", method, (unsigned long long)st->seed);
  if (!s && c->export_dir) s = export_csv(ftr, c->export_dir, name);
  snprintf(name, sizeof name, "%s-seed%llu-test.csv", method, (unsigned long long)st->seed);
  if (!s && c->export_dir) s = export_csv(fte, c->export_dir, name);
  lin_job j = {ftr, fte, c->probe_c[p.ci], st->seed, label, false, NULL};
  if (!s) s = linear_run(&j, c, res, params);
  if (!s && !isnan(p.cv)) {
    print_pick(c, st, method, "picked", &p);
    s = gr_run_result_set_extra(r, "cv_accuracy", p.cv);
    if (!s) s = gr_run_result_set_extra(r, "candidate", (double)(((p.b * c->n_cuts + p.cut) * c->n_pads + p.pad) * c->n_c + p.ci));
  }
  if (!s) s = gr_run_result_set_extra(r, "probe_c", c->probe_c[p.ci]);
  gr_dataset_free(own_tr);
  gr_dataset_free(own_te);
  return s;
}

/* ---- fine-tuning ---------------------------------------------------------------- */

/* Trains every weight of m with batch-norm statistics frozen (eval mode):
 * batches of 20 grey digits would otherwise normalize with statistics the
 * evaluation never sees. */
static gr_status finetune_model(gr_model *m, const bb_cfg *c, const gr_dataset *train, const gr_dataset *test,
                                uint64_t seed, const char *label, gr_train_result *res, int64_t *params) {
  gr_model_train(m, false);
  *params = gr_model_param_count(m, true);
  return train_and_eval(m, train, test, gr_sgd_cfg((float)c->finetune_lr, 0.9f, 0.0f, false), c->finetune_epochs,
                        c->batch, (float)c->finetune_clip, seed, label, false, res);
}

/* lp-ft's probe stage: the first candidate's probe (pretrained source's
 * cache) on unstandardized features, copied into m's head. */
static gr_status lpft_probe(const bb_cfg *c, bb_state *st, const gr_dataset *train, const gr_dataset *test,
                            const char *label, gr_model *m) {
  gr_dataset *ftr = NULL, *fte = NULL;
  const gr_dataset *utr, *ute;
  bb_pick first = {0, 0, 0, 0, NAN};
  gr_status s = candidate_features(c, st, "probe", &first, train, train, &ftr, &utr);
  if (!s) s = candidate_features(c, st, "probe", &first, test, train, &fte, &ute);
  gr_train_result probe_res;
  char probe_label[120];
  snprintf(probe_label, sizeof probe_label, "%s (probe stage)", label);
  lin_job j = {utr, ute, c->probe_c[0], st->seed, probe_label, false, m};
  if (!s) s = linear_run(&j, c, &probe_res, NULL);
  gr_dataset_free(ftr);
  gr_dataset_free(fte);
  return s;
}

/* finetune, finetune-random, lp-ft on a fresh copy of the first backbone at
 * the first cut, images padded by the first pad. */
static gr_status finetune_run(const bb_cfg *c, bb_state *st, const char *method, const gr_dataset *train,
                              const gr_dataset *test, const char *label, gr_train_result *res, int64_t *params) {
  bool random = strstr(method, "random") != NULL;
  uint64_t mseed = random && c->recal_images ? (uint64_t)c->seed : st->seed;
  int pad = c->pads[0];
  gr_dataset *ptr = NULL, *pte = NULL;
  gr_status s = pad ? pad_images(train, pad, &ptr) : GR_OK;
  if (!s && pad) s = pad_images(test, pad, &pte);
  const gr_dataset *tr = pad ? ptr : train, *te = pad ? pte : test;
  gr_model *m = NULL;
  int64_t fbatch;
  if (!s) s = load_backbone(c, c->backbones[0], c->cuts[0], pad, random, tr, mseed, &m, &fbatch);
  if (!s && !strcmp(method, "lp-ft")) s = lpft_probe(c, st, train, test, label, m);
  if (!s) s = finetune_model(m, c, tr, te, st->seed, label, res, params);
  gr_model_free(m);
  gr_dataset_free(ptr);
  gr_dataset_free(pte);
  return s;
}

static gr_status one_run(const bb_cfg *c, bb_state *st, const char *method, const gr_dataset *train,
                         const gr_dataset *test, gr_run_result *r) {
  gr_train_result res;
  memset(&res, 0, sizeof res);
  int64_t params = -1;
  char label[96];
  snprintf(label, sizeof label, "%s n=%lld seed=%llu", method, (long long)train->n, (unsigned long long)st->seed);
  double t0 = gr_wall_seconds();
  gr_status s = !strncmp(method, "probe", 5) || !strcmp(method, "raw-linear")
                    ? probe_run(c, st, method, train, test, label, &res, &params, r)
                    : finetune_run(c, st, method, train, test, label, &res, &params);
  if (s) return s;
  snprintf(r->method, sizeof r->method, "%s", method);
  r->seed = st->seed;
  r->n_labels = train->n;
  r->accuracy = res.eval.accuracy;
  r->loss = res.eval.loss;
  r->trainable_params = params;
  r->seconds = gr_wall_seconds() - t0;
  r->peak_rss_bytes = gr_peak_rss_bytes();
  return GR_OK;
}

/* The budgeted train split (per_class labels of each class) and the test
 * set (drawn with test_seed when set); *fraction: the share of the train
 * split's labels used. */
static gr_status load_data(const bb_cfg *c, int per_class, uint64_t seed, gr_dataset **train, gr_dataset **test,
                           double *fraction) {
  gr_data_spec ds, ts;
  gr_dataset *full = NULL;
  uint64_t tseed = c->test_seed >= 0 ? (uint64_t)c->test_seed : seed;
  gr_status s = gr_data_spec_parse(c->data, &ds);
  if (!s) s = gr_data_spec_parse(c->test_data ? c->test_data : c->data, &ts);
  if (!s) s = gr_data_load(&ds, "train", seed, &full);
  if (!s) s = gr_dataset_budget(full, per_class, 1.0, seed, train);
  if (!s) s = gr_data_load(&ts, c->test_data ? NULL : "test", tseed, test);
  if (!s) *fraction = (double)(*train)->n / (double)full->n;
  gr_dataset_free(full);
  return s;
}

/* Every method on one seed's draw; results to jl and rs. */
static gr_status seed_runs(const bb_cfg *c, bb_state *st, int per_class, gr_jsonl *jl, gr_results *rs) {
  gr_dataset *train = NULL, *test = NULL;
  double fraction = 1.0;
  gr_status s = load_data(c, per_class, st->seed, &train, &test, &fraction);
  for (int i = 0; i < c->n_methods && !s; i++) {
    gr_run_result r;
    gr_run_result_init(&r);
    snprintf(r.dataset, sizeof r.dataset, "%s", c->data);
    r.budget = fraction;
    s = one_run(c, st, c->methods[i], train, test, &r);
    if (!s) s = gr_jsonl_write_result(jl, &r);
    if (!s) s = gr_results_add(rs, &r);
  }
  for (int i = 0; i < st->n_src && !s; i++) s = gr_feature_cache_save(st->src[i].fc);
  gr_dataset_free(train);
  gr_dataset_free(test);
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
  bb_state st = {.n_src = 0};
  gr_status s = GR_OK;
  double t0 = gr_wall_seconds();
  for (int b = 0; b < c.n_budgets && !s; b++)
    for (int k = 0; k < c.seeds && !s; k++) {
      st.seed = (uint64_t)c.seed + (uint64_t)k;
      s = seed_runs(&c, &st, c.per_class[b], jl, &rs);
    }
  state_free(&st);
  gr_jsonl_close(jl);
  if (!s) {
    printf("backbone %s%s, features at %s%s, data %s\n", c.backbones[0], c.n_backbones > 1 ? " (+ candidates)" : "",
           c.cuts[0] ? c.cuts[0] : "(default cut)", c.n_cuts > 1 ? " (+ candidates)" : "", c.data);
    s = gr_results_print_summary(&rs, stdout, GR_TABLE_TEXT);
    gr_report_info info = {"graft study: transfer from an imported backbone", NULL, NULL, 0, gr_wall_seconds() - t0};
    if (!s) s = gr_report_write_html(runs_path(file, sizeof file, out, "report.html"), &info, &rs);
  }
  gr_results_free(&rs);
  return s ? cli_fail_status("study") : CLI_OK;
}
