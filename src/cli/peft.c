/* cli/peft.c — `graft peft merge|unmerge`: fold a PEFT adapter directory
 * (LoRA, rsLoRA, DoRA, IA3) into a base model directory and write a plain
 * model directory, and take it out of a merged one again.
 *   graft peft merge   --base DIR --adapter DIR --out DIR
 *   graft peft unmerge --model DIR --adapter DIR --out DIR
 * The adapter's modules_to_save (a new head) are loaded as they are in both
 * directions. DoRA's merge is not invertible from the merged weights alone
 * (W' = m (W + sBA)/||W + sBA|| fixes the direction, not ||W + sBA||), so
 * merge also writes dora_weight_norm.safetensors (<module>.dora_weight_norm,
 * the norms merging used; graft's own file) and unmerge reads it from the
 * merged model's directory. Bottleneck adapters are nonlinear: merging one
 * is an error naming the module. */
#include <stdio.h>
#include <string.h>

#include "cli/runs.h"

#define DORA_FILE "dora_weight_norm.safetensors"
enum { MAX_DORA = 256 };

typedef struct dora_names {
  char name[MAX_DORA][GR_NAME_MAX + 24];
  int n;
} dora_names;

/* "<path>.dora_weight_norm" of every LoRA wrapper, tree order. */
static void list_lora(gr_module *mod, dora_names *d) {
  if (gr_lora_is(mod)) {
    char p[GR_NAME_MAX];
    if (d->n < MAX_DORA) snprintf(d->name[d->n], sizeof d->name[0], "%s.dora_weight_norm", gr_module_path(mod, p, sizeof p));
    d->n++;
    return;
  }
  for (int i = 0; i < mod->n_children; i++) list_lora(mod->children[i], d);
}

static gr_status write_dora_norms(gr_model *m, const char *out, dora_names *d) {
  gr_tensor *norms[MAX_DORA];
  int n = 0;
  gr_status s = gr_peft_dora_norms(m, norms, MAX_DORA, &n);
  if (s || n == 0) return s;
  d->n = 0;
  list_lora(m->root, d);
  if (n != d->n || n > MAX_DORA) return gr_error(GR_EUNSUPPORTED, "peft merge: %d DoRA modules (at most %d)", n, MAX_DORA);
  gr_ckpt_tensor ts[MAX_DORA];
  for (int i = 0; i < n; i++) ts[i] = (gr_ckpt_tensor){d->name[i], norms[i]};
  char path[1100];
  return gr_ckpt_save(runs_path(path, sizeof path, out, DORA_FILE), ts, (size_t)n, GR_DT_F32, NULL, 0);
}

/* Declares the loaded adapter merged; DoRA norms come from the merged model's dir. */
static gr_status mark_merged(gr_model *m, const gr_peft_config *cfg, const char *model_dir, dora_names *d) {
  if (cfg->type != GR_PEFT_LORA || !cfg->use_dora) return gr_peft_mark_merged(m, NULL, 0);
  d->n = 0;
  list_lora(m->root, d);
  if (d->n > MAX_DORA) return gr_error(GR_EUNSUPPORTED, "peft unmerge: %d DoRA modules (at most %d)", d->n, MAX_DORA);
  char path[1100];
  gr_st_file *f = NULL;
  gr_status s = gr_st_open(runs_path(path, sizeof path, model_dir, DORA_FILE), &f);
  if (s) return gr_error(s, "%s (DoRA cannot be unmerged without the norms `graft peft merge` saved)", gr_last_error());
  gr_tensor *norms[MAX_DORA];
  gr_ckpt_tensor ts[MAX_DORA];
  for (int i = 0; i < d->n && !s; i++) {
    char mag_name[GR_NAME_MAX + 48];
    snprintf(mag_name, sizeof mag_name, "%.*s.lora_magnitude_vector",
             (int)(strlen(d->name[i]) - strlen(".dora_weight_norm")), d->name[i]);
    gr_tensor *mag = gr_model_find(m, mag_name);
    norms[i] = mag ? gr_tensor_new_in(m->arena, 1, GR_SHAPE(mag->numel), false) : NULL;
    if (!norms[i]) s = gr_error(GR_ENOMEM, "peft unmerge: out of memory");
    ts[i] = (gr_ckpt_tensor){d->name[i], norms[i]};
  }
  if (!s) s = gr_ckpt_load(f, ts, (size_t)d->n, GR_CKPT_STRICT);
  gr_st_close(f);
  return s ? s : gr_peft_mark_merged(m, (const gr_tensor *const *)norms, d->n);
}

static int peft_run(bool merge, const char *model_dir, const char *adapter, const char *out, bool force, int64_t seed) {
  gr_model_config mc;
  gr_model *m = NULL;
  gr_peft_config *cfg = NULL;
  dora_names *d = gr_calloc(1, sizeof *d);
  if (!d) return cli_fail("peft: out of memory");
  int rc = CLI_OK;
  int n = 0;
  if (gr_model_load_dir(model_dir, (uint64_t)seed, &mc, &m)) rc = cli_fail_status(merge ? "--base" : "--model");
  else if (gr_peft_load(m, adapter, &cfg)) rc = cli_fail_status("--adapter");
  else if ((!merge && mark_merged(m, cfg, model_dir, d)) || gr_peft_merge_all(m, merge, &n))
    rc = cli_fail_status(merge ? "peft merge" : "peft unmerge");
  else if (!(rc = runs_prepare_outdir(out, force))) {
    /* the output directory is touched only once the adapter is folded */
    gr_status s = merge ? write_dora_norms(m, out, d) : GR_OK;
    if (!s) s = gr_peft_unwrap_all(m);
    if (!s) s = gr_model_save_dir(m, &mc, out);
    if (s) rc = cli_fail_status(merge ? "peft merge" : "peft unmerge");
    else printf("%s %d module%s (%s adapter) -> %s/{model.safetensors,config.json}\n", merge ? "merged" : "unmerged", n,
                n == 1 ? "" : "s", cfg->use_dora ? "DoRA" : cfg->peft_type, out);
  }
  gr_peft_config_free(cfg);
  gr_model_free(m);
  gr_free(d);
  return rc;
}

int cmd_peft(int argc, char **argv) {
  const char *base = NULL, *model = NULL, *adapter = NULL, *out = NULL;
  int threads = 0;
  int64_t seed = 0;
  bool force = false;
  cli_opt opts[] = {
      {"--base", CLI_STR, &base, "merge: the base model directory"},
      {"--model", CLI_STR, &model, "unmerge: the merged model directory"},
      {"--adapter", CLI_STR, &adapter, "PEFT adapter directory (adapter_config.json + adapter_model.safetensors)"},
      {"--out", CLI_STR, &out, "output model directory"},
      {"--force", CLI_BOOL, &force, "overwrite a non-empty output directory"},
      {"--threads", CLI_INT, &threads, "threads (0: GRAFT_THREADS or all cores)"},
      {"--seed", CLI_I64, &seed, "unused (no randomness); accepted like every verb"},
  };
  cli_spec spec = {"peft", "graft peft merge --base DIR --adapter DIR --out DIR | unmerge --model DIR --adapter DIR --out DIR",
                   "Folds a PEFT adapter (LoRA, rsLoRA, DoRA, IA3) into a base model directory, or takes it out of a "
                   "merged one.",
                   opts, (int)(sizeof opts / sizeof opts[0]), 1, 1};
  const char *pos[1] = {NULL};
  int npos = 0, rc = cli_parse(&spec, argc, argv, pos, &npos);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  bool merge = !strcmp(pos[0], "merge");
  if (!merge && strcmp(pos[0], "unmerge")) {
    fprintf(stderr, "graft peft: unknown action '%s' (merge|unmerge)\n", pos[0]);
    return CLI_USAGE;
  }
  const char *src = merge ? base : model;
  if (!src || !adapter || !out || (merge ? model != NULL : base != NULL)) {
    fprintf(stderr, "graft peft: %s needs %s, --adapter and --out\n", pos[0], merge ? "--base" : "--model");
    return CLI_USAGE;
  }
  gr_set_threads(threads);
  return peft_run(merge, src, adapter, out, force, seed);
}
