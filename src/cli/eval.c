/* cli/eval.c — `graft eval`: evaluate a model directory on a data spec
 * (accuracy, loss, ECE, per-class accuracy; --json for one JSON object). */
#include <string.h>

#include "cli/runs.h"

int cmd_eval(int argc, char **argv) {
  const char *model = NULL, *data = NULL;
  int seed = 1, threads = 0;
  bool json = false;
  const cli_opt opts[] = {
      {"--model", CLI_STR, &model, "model directory"},
      {"--data", CLI_STR, &data, "data spec (default split: test), e.g. fmnist:classes=5-9"},
      {"--seed", CLI_INT, &seed, "seed (for limit= subsampling)"},
      {"--threads", CLI_INT, &threads, "threads (0: GRAFT_THREADS or all cores)"},
      {"--json", CLI_BOOL, &json, "print one JSON object"},
  };
  cli_spec spec = {"eval", "graft eval --model DIR --data D [--json]",
                   "Evaluate a model directory on the test split of a data spec (unless split= is given).", opts,
                   (int)(sizeof opts / sizeof opts[0]), 0, 0};
  const char *pos[1];
  int np = 0, rc = cli_parse(&spec, argc, argv, pos, &np);
  if (rc == CLI_HELP) return CLI_OK;
  if (rc) return rc;
  if (!model || !data) {
    fprintf(stderr, "graft eval: --model DIR and --data SPEC are required\n");
    return CLI_USAGE;
  }
  gr_set_threads(threads);
  gr_data_spec ds;
  if (gr_data_spec_parse(data, &ds)) return cli_fail_status("--data");
  bool split_given = strstr(data, "split=") != NULL;
  gr_model_config mc;
  gr_model *m = NULL;
  gr_dataset *d = NULL;
  if (gr_model_load_dir(model, (uint64_t)seed, &mc, &m)) return cli_fail_status("--model");
  gr_status s = gr_data_load(&ds, split_given ? NULL : "test", (uint64_t)seed, &d);
  gr_ctx *c = s ? NULL : gr_ctx_new(8 << 20, (uint64_t)seed);
  gr_eval_result ev;
  if (!s) s = c ? gr_evaluate(m, c, d, 500, &ev) : gr_last_status();
  if (!s) runs_print_eval(stdout, &ev, json);
  gr_ctx_free(c);
  gr_dataset_free(d);
  gr_model_free(m);
  return s ? cli_fail_status("eval") : CLI_OK;
}
