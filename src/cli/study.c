/* cli/study.c — `graft study CONFIG --out DIR`: the demo's protocol as a
 * grid read from a JSON config (methods x label budgets x seeds), run by the
 * same code (demo_run -> runs_grid_run). Config keys (all optional):
 *   {"arch": "lenet", "methods": ["scratch", "finetune"], "budgets": [0.01, 1],
 *    "seed": 1, "seeds": 3, "source_epochs": 3, "target_epochs": 3,
 *    "min_steps": 100, "lr": 0.01, "momentum": 0.9, "batch": 64, "quick": false,
 *    "holdout": 0, "source_dir": DIR}
 * "source_dir": load each seed's source model from DIR/source-seed<N> (the
 * model directory an earlier study or demo wrote) instead of pretraining it.
 * A method may carry options, "lora:lr=0.1:r=8" (graft/transfer.h); "holdout":
 * N > 0 evaluates on N held-out target training images instead of the test
 * set (runs_grid.holdout: for choosing settings such as the lr).
 * Unknown keys are errors (a typo must not silently change the study).
 * `graft study merge|rebase` run the merging and rebasing studies instead
 * (cli/study_merge.c, cli/study_rebase.c); a config with "backbone" runs
 * study_backbone.c (transfer from an imported pretrained network; its own
 * keys). */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli/demo.h"
#include "cli/study_verbs.h"
#include "cli/lm_runs.h"

/* study_backbone.c */
int study_backbone_run(const cJSON *cfg, const char *path, const char *out, bool force);

typedef struct study_strings {
  char methods[RUNS_MAX_LIST_CHARS], budgets[256], arch[32], source_dir[512];
} study_strings;

static int join_array(const cJSON *a, char *out, size_t n, bool strings, const char *key, const char *path) {
  size_t k = 0;
  out[0] = 0;
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0) return cli_fail("%s: \"%s\" must be a non-empty array", path, key);
  const cJSON *it;
  cJSON_ArrayForEach(it, a) {
    if (strings ? !cJSON_IsString(it) : !cJSON_IsNumber(it))
      return cli_fail("%s: \"%s\" must hold %s", path, key, strings ? "strings" : "numbers");
    int w = strings ? snprintf(out + k, n - k, "%s%s", k ? "," : "", it->valuestring)
                    : snprintf(out + k, n - k, "%s%.17g", k ? "," : "", it->valuedouble);
    if (w < 0 || (size_t)w >= n - k) return cli_fail("%s: \"%s\" is too long", path, key);
    k += (size_t)w;
  }
  return CLI_OK;
}

static int set_number(const cJSON *it, const char *path, void *dst, bool is_int) {
  if (!cJSON_IsNumber(it) || (is_int && it->valuedouble != (double)(long long)it->valuedouble))
    return cli_fail("%s: \"%s\" must be a%s number", path, it->string, is_int ? "n integer" : "");
  if (is_int) *(int *)dst = (int)it->valuedouble;
  else *(double *)dst = it->valuedouble;
  return CLI_OK;
}

static int study_apply(const cJSON *cfg, const char *path, demo_opts *o, study_strings *st) {
  static const struct {
    const char *key;
    size_t off;
    bool is_int;
  } nums[] = {{"seed", offsetof(demo_opts, seed), true},           {"seeds", offsetof(demo_opts, seeds), true},
              {"source_epochs", offsetof(demo_opts, source_epochs), true},
              {"target_epochs", offsetof(demo_opts, target_epochs), true},
              {"batch", offsetof(demo_opts, batch), true},          {"lr", offsetof(demo_opts, lr), false},
              {"momentum", offsetof(demo_opts, momentum), false}};
  const cJSON *it;
  cJSON_ArrayForEach(it, cfg) {
    int rc = -1;
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
      if (!strcmp(it->string, nums[i].key)) rc = set_number(it, path, (char *)o + nums[i].off, nums[i].is_int);
    if (rc >= 0) {
      if (rc) return rc;
      continue;
    }
    if (!strcmp(it->string, "min_steps") || !strcmp(it->string, "holdout")) {
      int v = 0;
      if ((rc = set_number(it, path, &v, true))) return rc;
      if (v < 0) return cli_fail("%s: \"%s\" must be >= 0", path, it->string);
      *(it->string[0] == 'h' ? &o->holdout : &o->min_steps) = v;
    } else if (!strcmp(it->string, "quick")) {
      if (!cJSON_IsBool(it)) return cli_fail("%s: \"quick\" must be true or false", path);
      o->quick = cJSON_IsTrue(it);
    } else if (!strcmp(it->string, "arch")) {
      if (!cJSON_IsString(it) || strlen(it->valuestring) >= sizeof st->arch) return cli_fail("%s: \"arch\" must be a name", path);
      snprintf(st->arch, sizeof st->arch, "%s", it->valuestring);
      o->arch = st->arch;
    } else if (!strcmp(it->string, "source_dir")) {
      if (!cJSON_IsString(it) || !it->valuestring[0] || strlen(it->valuestring) >= sizeof st->source_dir)
        return cli_fail("%s: \"source_dir\" must be a directory name", path);
      snprintf(st->source_dir, sizeof st->source_dir, "%s", it->valuestring);
      o->source_dir = st->source_dir;
    } else if (!strcmp(it->string, "methods")) {
      if ((rc = join_array(it, st->methods, sizeof st->methods, true, "methods", path))) return rc;
      o->methods = st->methods;
    } else if (!strcmp(it->string, "budgets")) {
      if ((rc = join_array(it, st->budgets, sizeof st->budgets, false, "budgets", path))) return rc;
      o->budgets = st->budgets;
    } else {
      return cli_fail("%s: unknown key \"%s\"", path, it->string);
    }
  }
  return CLI_OK;
}

static int study_read(const char *path, cJSON **out) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return cli_fail("%s: cannot open the study config", path);
  char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, fp);
  bool big = !feof(fp);
  fclose(fp);
  if (big) return cli_fail("%s: config larger than 64 KiB", path);
  buf[n] = 0;
  *out = cJSON_Parse(buf);
  if (!cJSON_IsObject(*out)) {
    cJSON_Delete(*out);
    return cli_fail("%s: not a JSON object", path);
  }
  return CLI_OK;
}

int cmd_study(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "merge")) return study_merge_main(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "rebase")) return study_rebase_main(argc - 1, argv + 1);
  if (argc > 1 && !strcmp(argv[1], "text")) return study_text_main(argc - 1, argv + 1); /* cli/study_text.c */
  if (argc > 1 && !strcmp(argv[1], "gpt-peft")) return study_gptpeft_main(argc - 1, argv + 1); /* cli/study_gptpeft.c */
  demo_opts o;
  demo_opts_default(&o);
  o.out = NULL;
  const cli_opt opts[] = {
      {"--out", CLI_STR, &o.out, "output directory (results.jsonl, report.html)"},
      {"--force", CLI_BOOL, &o.force, "overwrite a non-empty output directory"},
      {"--threads", CLI_INT, &o.threads, "threads (0: GRAFT_THREADS or all cores)"},
      {"--seed", CLI_INT, &o.seed, "base seed (the config's \"seed\" wins)"},
      {"--quiet", CLI_BOOL, &o.quiet, "no progress bars"},
  };
  cli_spec spec = {"study", "graft study CONFIG.json --out DIR [--force] | graft study merge|rebase|text --out DIR [--quick]",
                   "Run a grid of transfer methods x label budgets x seeds (Fashion-MNIST 0-4 -> 5-9, the demo's "
                   "protocol) from a JSON config; write results.jsonl and report.html.",
                   opts, (int)(sizeof opts / sizeof opts[0]), 1, 1};
  const char *pos[1];
  int np = 0, rc = cli_parse(&spec, argc, argv, pos, &np);
  if (rc == CLI_HELP) return runs_print_methods(stdout), CLI_OK;
  if (rc) return rc;
  if (!o.out) {
    fprintf(stderr, "graft study: --out DIR is required\nusage: %s\n", spec.usage);
    return CLI_USAGE;
  }
  cJSON *cfg = NULL;
  study_strings st;
  if ((rc = study_read(pos[0], &cfg))) return rc;
  if (cJSON_GetObjectItemCaseSensitive(cfg, "backbone")) { /* transfer from an imported network */
    gr_set_threads(o.threads);
    rc = study_backbone_run(cfg, pos[0], o.out, o.force);
    cJSON_Delete(cfg);
    return rc;
  }
  rc = study_apply(cfg, pos[0], &o, &st);
  if (!rc) rc = demo_opts_check(&o) ? CLI_FAIL : CLI_OK;
  if (!rc) {
    gr_set_threads(o.threads);
    rc = demo_run(&o);
  }
  cJSON_Delete(cfg);
  return rc;
}
