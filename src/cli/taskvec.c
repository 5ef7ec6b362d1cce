/* cli/taskvec.c — `graft taskvec extract|apply|scale|negate`: task vectors
 * (Ilharco et al. 2023, "Editing Models with Task Arithmetic"):
 *   extract FT BASE --out TV          τ = θ_ft − θ_base (float tensors only)
 *   apply BASE TV... --scale λ        θ = θ_base + λ Σ_k τ_k
 *   scale TV --scale λ / negate TV    λ τ / −τ
 *   atlas BASE TV... --data SPEC      learned per-tensor coefficients (taskvec_atlas.c)
 * streamed tensor by tensor (combine.h); the output is a model directory. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/combine.h"
#include "cli/taskvec_atlas.h"

typedef struct taskvec_opts {
  const char *out, *unmatched, *dtype;
  double scale;
  int threads;
  int64_t seed;
  bool force, json;
} taskvec_opts;

static int run_sub(const char *sub, const char **pos, int npos, taskvec_opts *o) {
  combine_spec s = {.out = o->out, .force = o->force, .json = o->json};
  ts_model *models[COMBINE_MAX_TERMS + 1] = {0};
  int nm = 0, rc = CLI_OK;
  if (!combine_parse_unmatched(o->unmatched, &s.unmatched))
    return cli_fail("taskvec: --unmatched must be keep, drop or error, not '%s'", o->unmatched);
  if (!combine_parse_dtype(o->dtype, &s.dtype)) return cli_fail("taskvec: --dtype must be f32, f16 or bf16");
  if (npos > COMBINE_MAX_TERMS + 1) return cli_fail("taskvec: at most %d task vectors", COMBINE_MAX_TERMS);
  for (; nm < npos; nm++)
    if (ts_model_open(pos[nm], &models[nm])) {
      rc = cli_fail_status("taskvec");
      goto done;
    }
  if (!strcmp(sub, "extract")) {
    s.verb = "taskvec extract";
    s.ref = models[0];
    s.terms[s.n_terms++] = (combine_term){models[0], models[1], 1.0};
    if (!o->dtype) s.dtype = "F32";
  } else if (!strcmp(sub, "apply")) {
    s.verb = "taskvec apply";
    s.ref = models[0];
    s.ref_is_base = true;
    for (int k = 1; k < nm; k++) s.terms[s.n_terms++] = (combine_term){models[k], NULL, o->scale};
  } else {
    s.verb = !strcmp(sub, "negate") ? "taskvec negate" : "taskvec scale";
    s.ref = models[0];
    s.terms[s.n_terms++] = (combine_term){models[0], NULL, !strcmp(sub, "negate") ? -o->scale : o->scale};
  }
  rc = combine_run(&s);
done:
  for (int k = 0; k < nm; k++) ts_model_close(models[k]);
  return rc;
}

int cmd_taskvec(int argc, char **argv) {
  static const char *usage = "graft taskvec extract FT BASE --out TV | apply BASE TV... --scale L --out DIR |\n"
                             "       scale TV --scale L --out DIR | negate TV --out DIR |\n"
                             "       atlas BASE TV... --data SPEC [--val-data SPEC] --out DIR";
  if (argc < 2 || argv[1][0] == '-') {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
      printf("usage: %s\n", usage);
      return CLI_OK;
    }
    fprintf(stderr, "usage: %s\n", usage);
    return CLI_USAGE;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "atlas")) return taskvec_atlas_main(argc - 1, argv + 1);
  bool extract = !strcmp(sub, "extract"), apply = !strcmp(sub, "apply");
  bool scale = !strcmp(sub, "scale"), negate = !strcmp(sub, "negate");
  if (!extract && !apply && !scale && !negate) {
    fprintf(stderr, "graft taskvec: unknown subcommand '%s'\nusage: %s\n", sub, usage);
    return CLI_USAGE;
  }
  taskvec_opts o = {.scale = 1.0, .unmatched = extract ? "drop" : "keep"};
  cli_opt opts[] = {
      {"--out", CLI_STR, &o.out, "output directory (written whole or not at all)"},
      {"--scale", CLI_FLOAT, &o.scale, "lambda: the coefficient of the task vector(s)"},
      {"--unmatched", CLI_STR, &o.unmatched, "a tensor without a partner (or with another shape): keep, drop or error"},
      {"--dtype", CLI_STR, &o.dtype, "output dtype of float tensors: f32, f16, bf16 (default: f32 for extract, else the input's)"},
      {"--threads", CLI_INT, &o.threads, "threads (0 = GRAFT_THREADS or all cores)"},
      {"--seed", CLI_I64, &o.seed, "unused (no randomness); accepted like every verb"},
      {"--force", CLI_BOOL, &o.force, "replace an existing non-empty output directory"},
      {"--json", CLI_BOOL, &o.json, "print the report as one JSON object"},
  };
  int min = extract ? 2 : apply ? 2 : 1, max = extract ? 2 : apply ? COMBINE_MAX_TERMS + 1 : 1;
  cli_spec spec = {extract ? "taskvec extract" : apply ? "taskvec apply" : scale ? "taskvec scale" : "taskvec negate",
                   usage, "Task vectors: tau = theta_ft - theta_base; theta = theta_base + lambda * sum(tau).", opts,
                   (int)(sizeof opts / sizeof opts[0]), min, max};
  const char *pos[COMBINE_MAX_TERMS + 1];
  int npos = 0, rc = cli_parse(&spec, argc - 1, argv + 1, pos, &npos);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  if (!o.out) return cli_fail("taskvec %s: --out DIR is required", sub);
  gr_set_threads(o.threads);
  return run_sub(sub, pos, npos, &o);
}
