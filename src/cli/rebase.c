/* cli/rebase.c — `graft rebase --old-base A --old-tuned B --new-base C
 * [--alpha 1] --out DIR`: fine-tuning transfer (Lin et al., EMNLP 2025,
 * arXiv 2503.20110): θ' = C + α (B − A), the diff vector of a fine-tune
 * carried onto a new version of its base, computed in double per entry and
 * rounded once. Streamed tensor by tensor (combine.h) with a report of
 * matched tensors and of those on one side only or with other shapes. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/combine.h"

int cmd_rebase(int argc, char **argv) {
  const char *a_path = NULL, *b_path = NULL, *c_path = NULL, *out = NULL, *unmatched = "keep", *tuned_only = "ignore",
             *dtype = NULL;
  double alpha = 1.0;
  int threads = 0;
  int64_t seed = 0;
  bool force = false, json = false;
  cli_opt opts[] = {
      {"--old-base", CLI_STR, &a_path, "A: the base the fine-tune started from"},
      {"--old-tuned", CLI_STR, &b_path, "B: the fine-tuned model"},
      {"--new-base", CLI_STR, &c_path, "C: the new base version"},
      {"--alpha", CLI_FLOAT, &alpha, "scale of the diff vector B - A"},
      {"--out", CLI_STR, &out, "output directory (written whole or not at all)"},
      {"--unmatched", CLI_STR, &unmatched,
       "a tensor of C missing from A or B, or shaped differently: keep (C's value), drop, or error"},
      {"--tuned-only", CLI_STR, &tuned_only, "a tensor of B that C lacks: ignore, or add (copied from B)"},
      {"--dtype", CLI_STR, &dtype, "output dtype of float tensors: f32, f16, bf16 (default: C's)"},
      {"--threads", CLI_INT, &threads, "threads (0 = GRAFT_THREADS or all cores)"},
      {"--seed", CLI_I64, &seed, "unused (no randomness); accepted like every verb"},
      {"--force", CLI_BOOL, &force, "replace an existing non-empty output directory"},
      {"--json", CLI_BOOL, &json, "print the report as one JSON object"},
  };
  cli_spec spec = {"rebase", "graft rebase --old-base A --old-tuned B --new-base C [--alpha 1] --out DIR",
                   "Moves a fine-tune onto a new base: theta' = C + alpha * (B - A).", opts,
                   (int)(sizeof opts / sizeof opts[0]), 0, 0};
  int npos = 0, rc = cli_parse(&spec, argc, argv, NULL, &npos);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  if (!a_path || !b_path || !c_path || !out)
    return cli_fail("rebase: --old-base, --old-tuned, --new-base and --out are required");
  combine_spec s = {.verb = "rebase", .ref_is_base = true, .out = out, .force = force, .json = json};
  if (!combine_parse_unmatched(unmatched, &s.unmatched))
    return cli_fail("rebase: --unmatched must be keep, drop or error, not '%s'", unmatched);
  if (strcmp(tuned_only, "ignore") && strcmp(tuned_only, "add"))
    return cli_fail("rebase: --tuned-only must be ignore or add, not '%s'", tuned_only);
  if (!combine_parse_dtype(dtype, &s.dtype)) return cli_fail("rebase: --dtype must be f32, f16 or bf16");
  s.add_extra = !strcmp(tuned_only, "add");
  gr_set_threads(threads);
  ts_model *a = NULL, *b = NULL, *c = NULL;
  if (ts_model_open(c_path, &c) || ts_model_open(b_path, &b) || ts_model_open(a_path, &a)) {
    rc = cli_fail_status("rebase");
  } else {
    s.ref = c;
    s.terms[s.n_terms++] = (combine_term){b, a, alpha};
    rc = combine_run(&s);
  }
  ts_model_close(a);
  ts_model_close(b);
  ts_model_close(c);
  return rc;
}
