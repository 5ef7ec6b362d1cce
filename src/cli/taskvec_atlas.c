/* cli/taskvec_atlas.c — `graft taskvec atlas BASE TV... --data SPEC --out DIR`:
 * aTLAS (graft/atlas.h). BASE is a model directory; each TV a task vector
 * (`graft taskvec extract` output: a directory holding model.safetensors, or
 * the file itself) whose tensors are matched to BASE's parameters by name (a
 * parameter the vector lacks has τ = 0 there). One coefficient per (task
 * vector, parameter tensor) is trained with AdamW on the labelled --data;
 * --val-data keeps the coefficients of the best validation accuracy. Writes
 * DIR/model.safetensors + config.json (the composed model, loadable by
 * every verb) and DIR/atlas.json (the coefficient table and the fit). */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/runs.h"
#include "cli/taskvec_atlas.h"

typedef struct atlas_opts {
  const char *data, *val_data, *out;
  gr_atlas_cfg fit;
  double lr, wd, clip, init;
  int seed, threads;
  bool force, json, quiet;
} atlas_opts;

/* τ of one task vector file, laid out like base->data. */
static gr_status load_task_vector(const char *path, const gr_model_config *mc, const gr_model *base, float *tau) {
  char file[1100];
  struct stat st;
  if (!stat(path, &st) && S_ISDIR(st.st_mode)) snprintf(file, sizeof file, "%s/model.safetensors", path);
  else snprintf(file, sizeof file, "%s", path);
  gr_model *m = gr_model_new(0);
  gr_module *root = m ? gr_arch_build(m, mc->arch, mc->in_ch, mc->h, mc->w, mc->n_classes) : NULL;
  gr_status s = root ? gr_model_set_root(m, root) : gr_last_status();
  if (!s && m->numel != base->numel) s = gr_error(GR_ESTATE, "%s: layout differs from the base model", path);
  if (!s) {
    memset(m->data, 0, (size_t)m->numel * sizeof(float));
    s = gr_model_load_weights(m, file, false);
  }
  if (!s) memcpy(tau, m->data, (size_t)m->numel * sizeof(float));
  gr_model_free(m);
  return s;
}

static gr_status write_atlas_json(const char *dir, gr_atlas *a, const char *const *tv_paths,
                                  const gr_atlas_fit_result *res) {
  cJSON *root = cJSON_CreateObject(), *tvs = cJSON_AddArrayToObject(root, "task_vectors");
  cJSON *blocks = cJSON_AddArrayToObject(root, "blocks"), *lam = cJSON_AddArrayToObject(root, "lambda");
  int T = gr_atlas_n_tv(a), B = gr_atlas_n_blocks(a);
  const float *coef = gr_atlas_coef(a);
  for (int t = 0; t < T; t++) {
    cJSON_AddItemToArray(tvs, cJSON_CreateString(tv_paths[t]));
    cJSON *row = cJSON_CreateArray();
    for (int b = 0; b < B; b++) cJSON_AddItemToArray(row, cJSON_CreateNumber(coef[t * B + b]));
    cJSON_AddItemToArray(lam, row);
  }
  for (int b = 0; b < B; b++) cJSON_AddItemToArray(blocks, cJSON_CreateString(gr_atlas_block_name(a, b)));
  cJSON_AddNumberToObject(root, "steps", (double)res->steps);
  cJSON_AddNumberToObject(root, "first_loss", res->first_loss);
  cJSON_AddNumberToObject(root, "train_loss", res->train_loss);
  cJSON_AddNumberToObject(root, "best_step", (double)res->best_step);
  if (!isnan(res->best_val_acc)) cJSON_AddNumberToObject(root, "val_accuracy", res->best_val_acc);
  char *text = cJSON_Print(root), path[1100];
  cJSON_Delete(root);
  gr_status s = text ? gr_write_file_atomic(runs_path(path, sizeof path, dir, "atlas.json"), text, strlen(text))
                     : gr_error(GR_ENOMEM, "atlas.json: out of memory");
  cJSON_free(text);
  return s;
}

static void print_table(gr_atlas *a, const char *const *tv_paths, const gr_atlas_fit_result *res) {
  int T = gr_atlas_n_tv(a), B = gr_atlas_n_blocks(a);
  const float *coef = gr_atlas_coef(a);
  printf("aTLAS: %d task vectors x %d blocks = %d coefficients, %lld steps, batch loss %.4f -> %.4f", T, B, T * B,
         (long long)res->steps, res->first_loss, res->train_loss);
  if (!isnan(res->best_val_acc)) printf(", kept step %lld (val acc %.2f%%)", (long long)res->best_step, 100 * res->best_val_acc);
  printf("\n%-28s", "block");
  for (int t = 0; t < T; t++) printf(" %8s%d", "tv", t);
  printf("\n");
  for (int b = 0; b < B; b++) {
    printf("%-28s", gr_atlas_block_name(a, b));
    for (int t = 0; t < T; t++) printf(" %9.4f", coef[t * B + b]);
    printf("\n");
  }
  for (int t = 0; t < T; t++) printf("tv%d = %s\n", t, tv_paths[t]);
}

static int run_atlas(const atlas_opts *o, const char *base_dir, const char *const *tv_paths, int T) {
  gr_model_config mc;
  gr_model *m = NULL;
  gr_dataset *train = NULL, *val = NULL;
  gr_atlas *a = NULL;
  float *tv[ATLAS_CLI_MAX_TV] = {0};
  gr_data_spec ds;
  if (gr_model_load_dir(base_dir, (uint64_t)o->seed, &mc, &m)) return cli_fail_status(base_dir);
  gr_status s = gr_data_spec_parse(o->data, &ds);
  if (!s) s = gr_data_load(&ds, NULL, (uint64_t)o->seed, &train);
  if (!s && o->val_data && !(s = gr_data_spec_parse(o->val_data, &ds))) s = gr_data_load(&ds, NULL, (uint64_t)o->seed, &val);
  for (int t = 0; !s && t < T; t++) {
    tv[t] = gr_malloc((size_t)m->numel * sizeof(float) + 4);
    s = tv[t] ? load_task_vector(tv_paths[t], &mc, m, tv[t]) : gr_error(GR_ENOMEM, "out of memory");
  }
  if (!s && !(a = gr_atlas_new(m, T, (const float *const *)tv))) s = gr_last_status();
  gr_atlas_fit_result res;
  if (!s) {
    gr_atlas_set_all(a, (float)o->init);
    runs_monitor mon;
    runs_monitor_start(&mon, "aTLAS", o->fit.steps, o->quiet);
    gr_train_hooks hooks = runs_monitor_hooks(&mon);
    s = gr_atlas_fit(a, train, val, &o->fit, &hooks, &res);
    runs_monitor_finish(&mon, s ? "failed" : "done");
  }
  if (!s) s = gr_model_save_dir(m, &mc, o->out);
  if (!s) s = write_atlas_json(o->out, a, tv_paths, &res);
  if (!s && !o->json) print_table(a, tv_paths, &res);
  if (!s && o->json)
    printf("{\"coefficients\": %d, \"steps\": %lld, \"first_loss\": %.6g, \"train_loss\": %.6g, \"val_accuracy\": %.6g}\n",
           T * gr_atlas_n_blocks(a), (long long)res.steps, res.first_loss, res.train_loss, res.best_val_acc);
  gr_atlas_free(a);
  for (int t = 0; t < T; t++) gr_free(tv[t]);
  gr_dataset_free(train), gr_dataset_free(val);
  gr_model_free(m);
  return s ? cli_fail_status("taskvec atlas") : CLI_OK;
}

int taskvec_atlas_main(int argc, char **argv) {
  atlas_opts o = {.fit = gr_atlas_cfg_default(), .seed = 1};
  o.lr = o.fit.lr, o.wd = o.fit.weight_decay, o.clip = o.fit.clip_norm;
  const cli_opt opts[] = {
      {"--data", CLI_STR, &o.data, "labelled data the coefficients are trained on (data spec)"},
      {"--val-data", CLI_STR, &o.val_data, "validation data: keep the coefficients of the best accuracy"},
      {"--out", CLI_STR, &o.out, "output model directory (model.safetensors, config.json, atlas.json)"},
      {"--steps", CLI_I64, &o.fit.steps, "AdamW steps"},
      {"--batch", CLI_I64, &o.fit.batch, "batch size"},
      {"--lr", CLI_FLOAT, &o.lr, "AdamW learning rate"},
      {"--wd", CLI_FLOAT, &o.wd, "AdamW weight decay on the coefficients"},
      {"--clip", CLI_FLOAT, &o.clip, "clip the coefficient gradient norm (0: off)"},
      {"--init", CLI_FLOAT, &o.init, "initial value of every coefficient (0: the base model)"},
      {"--eval-every", CLI_I64, &o.fit.eval_every, "steps between validations (with --val-data; 0: every 10% of the run)"},
      {"--seed", CLI_INT, &o.seed, "batch order and data subsampling"},
      {"--threads", CLI_INT, &o.threads, "threads (0 = GRAFT_THREADS or all cores)"},
      {"--force", CLI_BOOL, &o.force, "overwrite a non-empty output directory"},
      {"--quiet", CLI_BOOL, &o.quiet, "no progress bar"},
      {"--json", CLI_BOOL, &o.json, "print the summary as one JSON object"},
  };
  cli_spec spec = {"taskvec atlas",
                   "graft taskvec atlas BASE TV... --data SPEC [--val-data SPEC] --out DIR",
                   "aTLAS: learn one coefficient per (task vector, parameter tensor), "
                   "theta_b = base_b + sum_t lambda_tb tau_tb, by AdamW on labelled data; base and task vectors frozen.",
                   opts, (int)(sizeof opts / sizeof opts[0]), 2, ATLAS_CLI_MAX_TV + 1};
  const char *pos[ATLAS_CLI_MAX_TV + 1];
  int np = 0, rc = cli_parse(&spec, argc, argv, pos, &np);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  if (!o.data || !o.out) {
    fprintf(stderr, "graft taskvec atlas: --data SPEC and --out DIR are required\nusage: %s\n", spec.usage);
    return CLI_USAGE;
  }
  if (!(o.lr >= 0) || !(o.wd >= 0) || !(o.clip >= 0) || !isfinite(o.init) || o.fit.steps < 1 || o.fit.batch < 1 ||
      o.fit.eval_every < 0)
    return cli_fail("taskvec atlas: --steps and --batch must be >= 1, --lr/--wd/--clip >= 0, --init finite");
  o.fit.lr = (float)o.lr, o.fit.weight_decay = (float)o.wd, o.fit.clip_norm = (float)o.clip;
  o.fit.seed = (uint64_t)o.seed;
  if (o.val_data && o.fit.eval_every == 0) o.fit.eval_every = o.fit.steps / 10 > 0 ? o.fit.steps / 10 : 1;
  if ((rc = runs_prepare_outdir(o.out, o.force))) return rc;
  gr_set_threads(o.threads);
  return run_atlas(&o, pos[0], pos + 1, np - 1);
}
