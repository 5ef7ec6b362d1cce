/* cli/import.c — `graft import FILE.onnx --out DIR`: reads an ONNX model,
 * checks that graft runs every op in it (else lists the unsupported ops and
 * their nodes), optionally runs it once on a zero input to check shapes, and
 * writes DIR/model.safetensors + DIR/config.json (docs/ONNX.md). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "graft/onnx.h"

int cmd_import(int argc, char **argv) {
  const char *out = NULL;
  const cli_opt opts[] = {{"--out", CLI_STR, &out, "model directory to write (created)"}};
  cli_spec spec = {"import", "graft import FILE.onnx --out DIR",
                   "Import a pretrained ONNX network: every op must be one graft runs (the error lists the others "
                   "with their node names). Writes DIR/model.safetensors (weights by ONNX name) and DIR/config.json "
                   "(the graph).",
                   opts, 1, 1, 1};
  const char *pos[1];
  int np = 0, rc = cli_parse(&spec, argc, argv, pos, &np);
  if (rc == CLI_HELP) return CLI_OK;
  if (rc) return rc;
  if (!out) {
    fprintf(stderr, "graft import: --out DIR is required\n");
    return CLI_USAGE;
  }
  size_t n = strlen(pos[0]);
  if (n < 5 || strcmp(pos[0] + n - 5, ".onnx"))
    return cli_fail("%s: graft import reads .onnx files (TF.js model.json is not supported yet)", pos[0]);
  gr_onnx_model *m = NULL;
  if (gr_onnx_load(pos[0], &m)) return cli_fail_file(pos[0]);
  if (gr_onnx_check(m)) {
    gr_onnx_free(m);
    return cli_fail_status(pos[0]);
  }
  if (mkdir(out, 0777) && errno != EEXIST) {
    gr_onnx_free(m);
    return cli_fail("%s: cannot create directory", out);
  }
  gr_status st = gr_onnx_save_dir(m, out);
  if (!st)
    printf("imported %s: %d nodes, %d initializers, opset %lld -> %s\n", pos[0], m->n_nodes, m->n_inits,
           (long long)m->opset, out);
  gr_onnx_free(m);
  return st ? cli_fail_file(out) : CLI_OK;
}
