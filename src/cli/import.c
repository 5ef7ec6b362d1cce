/* cli/import.c — `graft import FILE.onnx|model.json --out DIR`: reads an ONNX
 * model or a TF.js layers model, checks that graft runs every op in it (else
 * lists the unsupported ops and their nodes), and writes DIR/model.safetensors
 * + DIR/config.json (docs/ONNX.md), a model directory the other verbs load. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "graft/onnx.h"

static bool ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && !strcmp(s + n - k, suf);
}

static int parse_size(const char *s, gr_onnx_input_spec *in) {
  char tail;
  if (s && sscanf(s, "%dx%dx%d%c", &in->in_ch, &in->h, &in->w, &tail) != 3) {
    fprintf(stderr, "graft import: --input-size '%s' must be CxHxW, e.g. 3x48x192\n", s);
    return CLI_USAGE;
  }
  return CLI_OK;
}

static gr_status load_any(const char *path, gr_onnx_model **m) {
  if (ends_with(path, ".json")) return gr_tfjs_load(path, m);
  return gr_onnx_load(path, m);
}

int cmd_import(int argc, char **argv) {
  const char *out = NULL, *size = NULL;
  gr_onnx_input_spec in = {0, 0, 0, 1.0f, 0.0f};
  double scale = 1.0, shift = 0.0; /* CLI_FLOAT writes a double */
  const cli_opt opts[] = {
      {"--out", CLI_STR, &out, "model directory to write (created)"},
      {"--input-size", CLI_STR, &size, "CxHxW the graph is fed (needed when the file leaves it symbolic)"},
      {"--input-scale", CLI_FLOAT, &scale, "inputs are x*scale+shift before the graph"},
      {"--input-shift", CLI_FLOAT, &shift, "see --input-scale"},
  };
  cli_spec spec = {"import", "graft import FILE.onnx|model.json --out DIR [--input-size CxHxW]",
                   "Import a pretrained ONNX or TF.js layers network: every op must be one graft runs (the error "
                   "lists the others with their node names). Writes DIR/model.safetensors (weights by name) and "
                   "DIR/config.json (the graph), a model directory eval/finetune load.",
                   opts, (int)(sizeof opts / sizeof opts[0]), 1, 1};
  const char *pos[1];
  int np = 0, rc = cli_parse(&spec, argc, argv, pos, &np);
  if (rc == CLI_HELP) return CLI_OK;
  if (rc) return rc;
  if (!out) {
    fprintf(stderr, "graft import: --out DIR is required\n");
    return CLI_USAGE;
  }
  if ((rc = parse_size(size, &in))) return rc;
  if (!(fabs(scale) <= 1e30 && fabs(shift) <= 1e30)) return cli_fail("graft import: --input-scale/--input-shift out of range");
  in.scale = (float)scale, in.shift = (float)shift;
  if (!ends_with(pos[0], ".onnx") && !ends_with(pos[0], ".json"))
    return cli_fail("%s: graft import reads .onnx files and TF.js model.json files", pos[0]);
  gr_onnx_model *m = NULL;
  if (load_any(pos[0], &m)) return cli_fail_file(pos[0]);
  if (gr_onnx_check(m)) {
    gr_onnx_free(m);
    return cli_fail_status(pos[0]);
  }
  if (mkdir(out, 0777) && errno != EEXIST) {
    gr_onnx_free(m);
    return cli_fail("%s: cannot create directory", out);
  }
  gr_status st = gr_onnx_save_dir(m, &in, out);
  if (!st)
    printf("imported %s: %d nodes, %d initializers, opset %lld -> %s\n", pos[0], m->n_nodes, m->n_inits,
           (long long)m->opset, out);
  gr_onnx_free(m);
  return st ? cli_fail_file(out) : CLI_OK;
}
