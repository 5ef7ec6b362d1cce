/* cli/finetune.c — `graft finetune`: transfer a model directory to new data
 * with a method of the transfer registry (default: full fine-tuning),
 * optional freezing by glob, a linear probe (--head-only) and a fresh head
 * (--reinit-head, automatic when the class count changes). With --peft the
 * method is a PEFT row of the registry (lora, rslora, dora, ia3,
 * adapter-seq, adapter-par, adapter-scaled, ...; --r, --lora-alpha,
 * --target-modules override its defaults) and the adapter is also written
 * to --out as a PEFT adapter directory (adapter_config.json +
 * adapter_model.safetensors). */
#include <cjson/cJSON.h>
#include <string.h>

#include "cli/runs.h"
#include "graft/dist.h"
#include "graft/onnx.h"

typedef struct ft_hook {
  const gr_transfer_method *method;
  gr_transfer_run *run;
} ft_hook;

/* Appends "key=a;b;c," for the comma-separated list (the registry's option
 * syntax) at opts[k]; returns the new length (>= n when it did not fit). */
static size_t append_list(char *opts, size_t k, size_t n, const char *key, const char *list) {
  if (!list || k >= n) return k;
  k += (size_t)snprintf(opts + k, n - k, "%s=", key);
  for (const char *c = list; *c && k < n; c++) opts[k++] = *c == ',' ? ';' : *c;
  if (k < n) opts[k++] = ',';
  if (k < n) opts[k] = 0;
  return k;
}

/* --peft NAME [--r N] [--lora-alpha A] [--target-modules a,b]
 * [--feedforward-modules b]: the registry row (DESIGN.md's names adapter /
 * parallel-adapter / scaled-parallel-adapter are aliases) and its options. */
static int peft_method(const char *peft, int r, double alpha, const char *targets, const char *ff, const char **method,
                       char *opts, size_t n) {
  static const char *const alias[][2] = {
      {"adapter", "adapter-seq"}, {"parallel-adapter", "adapter-par"}, {"scaled-parallel-adapter", "adapter-scaled"}};
  *method = peft;
  for (size_t i = 0; i < sizeof alias / sizeof *alias; i++)
    if (!strcmp(peft, alias[i][0])) *method = alias[i][1];
  if (r < 0 || !(alpha >= 0)) {
    fprintf(stderr, "graft finetune: --r and --lora-alpha must be >= 0 (0: the method's default)\n");
    return CLI_USAGE;
  }
  size_t k = 0;
  opts[0] = 0;
  if (r > 0) k += (size_t)snprintf(opts + k, n - k, "r=%d,", r);
  if (alpha > 0 && k < n) k += (size_t)snprintf(opts + k, n - k, "alpha=%.17g,", alpha);
  k = append_list(opts, k, n, "targets", targets);
  k = append_list(opts, k, n, "feedforward", ff);
  if (k >= n) {
    fprintf(stderr, "graft finetune: --target-modules / --feedforward-modules are too long\n");
    return CLI_USAGE;
  }
  if (k) opts[k - 1] = 0; /* the trailing comma */
  return CLI_OK;
}

/* An imported graph ("onnx_graph") is its own architecture: the target is
 * the source directory loaded again, with a fresh head on the features at
 * features_at (default: before the last MatMul/Gemm) unless the source has a
 * head for the same classes and no new cut is asked for. */
static gr_status graph_target(const char *from, uint64_t seed, int n_classes,
                              const char *features_at, bool *new_head, gr_model **out) {
  gr_model_config again;
  gr_status s = gr_model_load_dir(from, seed, &again, out);
  if (s) return s;
  bool has_head = gr_module_find((*out)->root, "head") != NULL;
  gr_clear_error();
  *new_head = *new_head || features_at || !has_head;
  if (*new_head && has_head)
    return gr_error(GR_EUNSUPPORTED, "%s: a new head on a graph that already has one (fine-tune it with the same "
                    "classes, or start from the imported directory)", from);
  return *new_head ? gr_onnx_module_set_head(*out, features_at, n_classes) : GR_OK;
}

static gr_status ft_optim_hook(void *ud, gr_optim *o) {
  ft_hook *h = ud;
  return gr_transfer_prepare_optim(h->method, h->run, o);
}

int cmd_finetune(int argc, char **argv) {
  runs_train_flags f;
  cli_opt opts[RUNS_TRAIN_NOPTS + 11];
  runs_train_flags_init(&f, opts);
  const char *from = NULL, *freeze = NULL, *method = "finetune", *peft = NULL, *targets = NULL, *features_at = NULL,
             *ff = NULL;
  int peft_r = 0;
  double peft_alpha = 0;
  char peft_opts[1024] = "";
  bool head_only = false, reinit = false;
  opts[RUNS_TRAIN_NOPTS] = (cli_opt){"--from", CLI_STR, &from, "source model directory"};
  opts[RUNS_TRAIN_NOPTS + 1] = (cli_opt){"--freeze", CLI_STR, &freeze, "freeze parameters matching this glob (e.g. 'features.*')"};
  opts[RUNS_TRAIN_NOPTS + 2] = (cli_opt){"--head-only", CLI_BOOL, &head_only, "linear probe: train only the head"};
  opts[RUNS_TRAIN_NOPTS + 3] = (cli_opt){"--reinit-head", CLI_BOOL, &reinit, "start from a freshly initialized head"};
  opts[RUNS_TRAIN_NOPTS + 4] = (cli_opt){"--method", CLI_STR, &method, "transfer method from the registry"};
  opts[RUNS_TRAIN_NOPTS + 5] = (cli_opt){"--peft", CLI_STR, &peft,
                                         "PEFT method (lora|rslora|dora|ia3|adapter|parallel-adapter|"
                                         "scaled-parallel-adapter or a registry row); writes the adapter dir too"};
  opts[RUNS_TRAIN_NOPTS + 6] = (cli_opt){"--r", CLI_INT, &peft_r, "PEFT rank / bottleneck width (0: the method's default)"};
  opts[RUNS_TRAIN_NOPTS + 7] = (cli_opt){"--lora-alpha", CLI_FLOAT, &peft_alpha, "LoRA alpha (0: the method's default)"};
  opts[RUNS_TRAIN_NOPTS + 8] = (cli_opt){"--target-modules", CLI_STR, &targets,
                                         "comma-separated module names (PEFT suffix rule; default: every conv/linear but the head)"};
  opts[RUNS_TRAIN_NOPTS + 9] = (cli_opt){"--features-at", CLI_STR, &features_at,
                                         "imported graphs: the value (layer output) a new head reads"};
  opts[RUNS_TRAIN_NOPTS + 10] = (cli_opt){"--feedforward-modules", CLI_STR, &ff,
                                         "IA3: targets whose input is scaled (PEFT's feedforward_modules)"};
  cli_spec spec = {"finetune", "graft finetune --from DIR --data D --out DIR [--freeze GLOB] [--head-only] [--peft M] [options]",
                   "Transfer a trained model directory to new data; write a new model directory.", opts,
                   RUNS_TRAIN_NOPTS + 11, 0, 0};
  gr_train_cfg tc;
  gr_optim_cfg oc;
  int rc = runs_train_parse(&spec, argc, argv, &f, &tc, &oc);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  if (!from) {
    fprintf(stderr, "graft finetune: --from DIR is required\n");
    return CLI_USAGE;
  }
  if (head_only) method = "linear-probe";
  if (peft && (rc = peft_method(peft, peft_r, peft_alpha, targets, ff, &method, peft_opts, sizeof peft_opts))) return rc;
  const gr_transfer_method *meth = gr_transfer_find(method);
  if (!meth) {
    fprintf(stderr, "graft finetune: %s\n", gr_last_error());
    return CLI_USAGE;
  }
  gr_set_threads(f.threads);
  gr_model_config mc;
  gr_model *src = NULL, *m = NULL;
  if (gr_model_load_dir(from, (uint64_t)f.seed, &mc, &src)) return cli_fail_status("--from");
  cJSON *config = runs_train_config(&f, "finetune");
  cJSON_AddStringToObject(config, "from", from);
  if (freeze) cJSON_AddStringToObject(config, "freeze", freeze);
  else cJSON_AddNullToObject(config, "freeze");
  cJSON_AddStringToObject(config, "method", method);
  if (peft) cJSON_AddStringToObject(config, "peft_options", peft_opts);
  cJSON_AddBoolToObject(config, "reinit_head", reinit);
  runs_ckpt ck;
  gr_dataset *train = NULL, *test = NULL;
  if ((rc = runs_ckpt_begin(&f, config, &ck)) || (rc = runs_load_data(&f, &train, &test))) {
    runs_ckpt_end(&ck);
    gr_model_free(src);
    return rc;
  }
  bool new_head = reinit || train->n_classes != mc.n_classes;
  const char *head = "head", *early = NULL;
  gr_status s = GR_OK;
  if (!strcmp(mc.arch, "onnx_graph")) {
    s = graph_target(from, (uint64_t)f.seed + 1, train->n_classes, features_at, &new_head, &m);
  } else {
    const gr_arch_info *arch = gr_arch_lookup(mc.arch);
    m = gr_model_new((uint64_t)f.seed + 1);
    gr_module *root = m && arch ? gr_arch_build(m, mc.arch, train->c, train->h, train->w, train->n_classes) : NULL;
    s = root ? gr_model_set_root(m, root) : gr_last_status();
    if (features_at) s = gr_error(GR_EARG, "--features-at applies to imported graphs (onnx_graph), not '%s'", mc.arch);
    if (arch) head = arch->head, early = arch->early;
  }
  gr_transfer_run run = {m, src, head, early, peft ? peft_opts : NULL, &tc, &oc, !new_head, NULL, train};
  if (!s) s = gr_transfer_prepare(meth, &run);
  gr_peft_config *peft_cfg = !s && peft ? gr_peft_config_from_model(m) : NULL;
  if (!s && peft && !peft_cfg) s = gr_error(GR_EARG, "--peft %s: method '%s' adapts no module (%s)", peft, method, gr_last_error());
  gr_peft_config_free(peft_cfg);
  if (!s && freeze && gr_model_freeze(m, freeze, true) == 0)
    s = gr_error(GR_ENOTFOUND, "--freeze '%s' matches no parameter", freeze);
  mc.n_classes = train->n_classes;
  snprintf(mc.data, sizeof mc.data, "%s", f.data);
  ft_hook h = {meth, &run};
  rc = s ? cli_fail_status("preparing the model")
         : runs_train_and_save(&f, m, &mc, train, test, &tc, &oc, ft_optim_hook, &h, &ck);
  if (rc == CLI_OK && peft && !ck.paused && gr_dist_rank() == 0) {
    if (gr_peft_save(m, f.out)) rc = cli_fail_status("writing the adapter directory");
    else printf("wrote %s/{adapter_config.json,adapter_model.safetensors} (PEFT layout)\n", f.out);
  }
  runs_ckpt_end(&ck);
  gr_model_free(m);
  gr_model_free(src);
  gr_dataset_free(train);
  gr_dataset_free(test);
  return rc;
}
