/* cli/train.c — `graft train`: train a model from scratch on a data spec and
 * write a model directory (model.safetensors, config.json, metrics.jsonl). */
#include <cjson/cJSON.h>
#include <string.h>

#include "cli/lm_runs.h"
#include "cli/runs.h"

int cmd_train(int argc, char **argv) {
  if (train_text_wanted(argc, argv)) return cmd_train_text(argc, argv); /* --model gpt... */
  runs_train_flags f;
  cli_opt opts[RUNS_TRAIN_NOPTS + 2];
  runs_train_flags_init(&f, opts);
  const char *arch = "lenet", *init = "default";
  opts[RUNS_TRAIN_NOPTS] = (cli_opt){"--model", CLI_STR, &arch, "architecture: lenet|mlp|resnet8|resnet20 (text: gpt[:...], see --model gpt --help)"};
  opts[RUNS_TRAIN_NOPTS + 1] = (cli_opt){"--init", CLI_STR, &init, "default|kaiming|xavier|critical (critical: PDLT C_W=2 for ReLU)"};
  cli_spec spec = {"train", "graft train --model M --data D --out DIR [--epochs N | --steps N] [options]",
                   "Train a model from random init; evaluate on the test split; write a model directory. "
                   "--ckpt-every N writes DIR/checkpoint.safetensors (model, optimizer, RNG, step, config); "
                   "the same command with --resume DIR continues it to the same bits.", opts,
                   RUNS_TRAIN_NOPTS + 2, 0, 0};
  gr_train_cfg tc;
  gr_optim_cfg oc;
  int rc = runs_train_parse(&spec, argc, argv, &f, &tc, &oc);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  gr_init_kind ik = !strcmp(init, "default") ? GR_INIT_TORCH_DEFAULT
                    : !strcmp(init, "kaiming") ? GR_INIT_KAIMING_NORMAL
                    : !strcmp(init, "xavier")  ? GR_INIT_XAVIER_NORMAL
                    : !strcmp(init, "critical") ? GR_INIT_CRITICAL : (gr_init_kind)-1;
  if ((int)ik < 0) {
    fprintf(stderr, "graft train: --init '%s' (default|kaiming|xavier|critical)\n", init);
    return CLI_USAGE;
  }
  if (!gr_arch_lookup(arch)) {
    fprintf(stderr, "graft train: %s\n", gr_last_error());
    return CLI_USAGE;
  }
  gr_set_threads(f.threads);
  cJSON *config = runs_train_config(&f, "train");
  cJSON_AddStringToObject(config, "model", arch);
  cJSON_AddStringToObject(config, "init", init);
  runs_ckpt ck;
  gr_dataset *train = NULL, *test = NULL;
  if ((rc = runs_ckpt_begin(&f, config, &ck)) || (rc = runs_load_data(&f, &train, &test))) {
    runs_ckpt_end(&ck);
    return rc;
  }
  gr_model_config mc = {.in_ch = train->c, .h = train->h, .w = train->w, .n_classes = train->n_classes};
  snprintf(mc.arch, sizeof mc.arch, "%s", arch);
  snprintf(mc.data, sizeof mc.data, "%s", f.data);
  gr_model *m = gr_model_new((uint64_t)f.seed);
  gr_module *root = m ? gr_arch_build(m, arch, train->c, train->h, train->w, train->n_classes) : NULL;
  gr_status s = root ? gr_model_set_root(m, root) : gr_last_status();
  if (!s && ik != GR_INIT_TORCH_DEFAULT) s = gr_init_module(m->root, &m->rng, ik, 0, 2.0f, 0.0f);
  rc = s ? cli_fail_status("building the model") : runs_train_and_save(&f, m, &mc, train, test, &tc, &oc, NULL, NULL, &ck);
  runs_ckpt_end(&ck);
  gr_model_free(m);
  gr_dataset_free(train);
  gr_dataset_free(test);
  return rc;
}
