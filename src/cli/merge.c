/* cli/merge.c — `graft merge CONFIG.yml --out DIR`: a mergekit-compatible
 * merge (graft/mergekit.h for the YAML, graft/merge.h for the kernels),
 * streamed one tensor at a time from the input models (tensor_stream.h) into
 * an output directory that appears only when complete.
 * Per tensor, as mergekit does: a model whose tensor shape differs from the
 * base's is skipped with a warning (task-arithmetic family), embeddings are
 * cut to the base's rows/cols (or, for linear/slerp/model_stock, to the
 * common submatrix); a tensor missing from a model, or stored in a different
 * dtype, is an error naming it. Non-float tensors are copied from the base.
 * The arithmetic is float32 whatever `dtype` says; the output has out_dtype,
 * else dtype, else the base tensor's dtype. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/tensor_stream.h"
#include "graft/dist.h"
#include "graft/mergekit.h"
#include "graft/report.h"

#define MERGE_MAX_INPUTS 64

typedef struct merge_opts {
  const char *out, *rescale_mode, *shard_size;
  int64_t seed;
  int threads;
  bool force, json, keep_top, quiet, peft;
} merge_opts;

/* One output tensor: where its inputs come from. */
typedef struct planned {
  ts_tensor spec;          /* output name, dtype, shape */
  int base_idx;            /* in the reference model */
  int n_in;                /* merge models used for this tensor */
  int in_model[MERGE_MAX_INPUTS], in_idx[MERGE_MAX_INPUTS], in_param[MERGE_MAX_INPUTS];
  bool copy, cut;          /* copied from the base; some input cut to the output shape */
  double t;                /* layer position for gradients */
} planned;

typedef struct merge_job {
  gr_mk_config *cfg;
  const char *cfg_path;
  ts_model *ref;             /* the base, or the first model when there is none */
  ts_model *inputs[MERGE_MAX_INPUTS];
  int n_inputs, merge_idx[MERGE_MAX_INPUTS]; /* inputs[k] is cfg->models[merge_idx[k]] */
  planned *plan;
  int n_plan, n_skipped, n_cut, n_copied, n_quirk;
  int64_t bytes_in, bytes_out;
  uint64_t shard_bytes;
  merge_opts opt;
} merge_job;

/* A model path as written, else relative to the config file's directory. */
static gr_status resolve_model_path(const char *cfg_path, const char *model, int line, char *buf, size_t n) {
  struct stat st;
  if (stat(model, &st) == 0) return snprintf(buf, n, "%s", model) < (int)n ? GR_OK : gr_error(GR_EARG, "path too long");
  char *dup = strdup(cfg_path);
  if (!dup) return gr_error(GR_ENOMEM, "out of memory");
  int w = snprintf(buf, n, "%s/%s", dirname(dup), model);
  free(dup);
  if (model[0] != '/' && w < (int)n && stat(buf, &st) == 0) return GR_OK;
  return gr_error(GR_ENOTFOUND, "%s:%d: model '%s' not found (graft reads local model directories or .safetensors files)",
                  cfg_path, line, model);
}

static gr_status open_model(merge_job *j, const char *model, int line, ts_model **out) {
  char path[4096];
  gr_status st = resolve_model_path(j->cfg_path, model, line, path, sizeof path);
  return st ? st : ts_model_open(path, out);
}

static gr_status open_inputs(merge_job *j) {
  gr_mk_config *c = j->cfg;
  for (int i = 0; i < c->n_models; i++)
    if (c->models[i].lora)
      return gr_error(GR_EUNSUPPORTED, "%s:%d: model '%s+%s': LoRA-augmented inputs are not supported; merge the "
                      "adapter first (graft peft merge)", j->cfg_path, c->models[i].line, c->models[i].model, c->models[i].lora);
  j->n_inputs = gr_mk_merge_models(c, j->merge_idx);
  if (j->n_inputs > MERGE_MAX_INPUTS) return gr_error(GR_EARG, "%d models: at most %d", j->n_inputs, MERGE_MAX_INPUTS);
  for (int k = 0; k < j->n_inputs; k++) {
    const gr_mk_model *m = &c->models[j->merge_idx[k]];
    gr_status st = open_model(j, m->model, m->line, &j->inputs[k]);
    if (st) return st;
  }
  if (c->base_model) return open_model(j, c->base_model, c->base_line, &j->ref);
  if (gr_merge_info(c->method)->needs_base)
    return gr_error(GR_EARG, "%s: merge_method %s needs base_model", j->cfg_path, gr_merge_info(c->method)->name);
  if (j->n_inputs == 0) return gr_error(GR_EARG, "%s: no models to merge", j->cfg_path);
  return GR_OK;
}

static void shape_str(const ts_tensor *t, char *buf, size_t n) {
  int w = snprintf(buf, n, "[");
  for (int d = 0; d < t->ndim && w < (int)n; d++) w += snprintf(buf + w, n - (size_t)w, "%s%lld", d ? "," : "", (long long)t->shape[d]);
  if (w < (int)n) snprintf(buf + w, n - (size_t)w, "]");
}

/* Decides what model k contributes to tensor p (see the file comment). */
static gr_status plan_input(merge_job *j, planned *p, int k, const ts_tensor *base) {
  const gr_merge_method_info *info = gr_merge_info(j->cfg->method);
  const char *mpath = ts_model_path(j->inputs[k]);
  int idx = ts_model_find(j->inputs[k], base->name);
  if (idx < 0) return gr_error(GR_ENOTFOUND, "tensor '%s' is missing from model %s", base->name, mpath);
  const ts_tensor *t = ts_model_tensor(j->inputs[k], idx);
  if (strcmp(t->dtype, base->dtype))
    return gr_error(GR_EFORMAT, "tensor '%s': dtype %s in %s but %s in the base %s", base->name, t->dtype, mpath,
                    base->dtype, ts_model_path(j->ref));
  if (!ts_same_shape(t, base)) {
    char a[64], b[64];
    shape_str(t, a, sizeof a);
    shape_str(base, b, sizeof b);
    bool embed = gr_merge_is_embedding(base->name) && t->ndim == 2 && base->ndim == 2;
    if (embed && (!info->is_task_arithmetic || (t->shape[0] >= base->shape[0] && t->shape[1] >= base->shape[1]))) {
      p->cut = true;
      if (!j->opt.quiet) fprintf(stderr, "graft merge: warning: %s: using the common submatrix of %s %s (base %s)\n", base->name, mpath, a, b);
    } else if (info->is_task_arithmetic) {
      j->n_skipped++;
      if (!j->opt.quiet) fprintf(stderr, "graft merge: warning: skipping %s:%s due to size mismatch (%s vs base %s)\n", mpath, base->name, a, b);
      return GR_OK;
    } else
      return gr_error(GR_ESHAPE, "tensor '%s': shape %s in %s but %s in the base", base->name, a, mpath, b);
  }
  p->in_model[p->n_in] = k;
  p->in_idx[p->n_in] = idx;
  p->in_param[p->n_in] = k;
  p->n_in++;
  return GR_OK;
}

static const char *out_dtype(const merge_job *j, const ts_tensor *base) {
  const char *d = j->cfg->out_dtype ? j->cfg->out_dtype : j->cfg->dtype;
  if (!d || !base->is_float) return base->dtype;
  return !strcmp(d, "float32") ? "F32" : !strcmp(d, "float16") ? "F16" : "BF16";
}

/* Output shape of a cut embedding: the common submatrix of base and inputs. */
static void cut_shape(merge_job *j, planned *p) {
  for (int q = 0; q < p->n_in; q++) {
    const ts_tensor *t = ts_model_tensor(j->inputs[p->in_model[q]], p->in_idx[q]);
    for (int d = 0; d < 2; d++)
      if (t->shape[d] < p->spec.shape[d]) p->spec.shape[d] = t->shape[d];
  }
  p->spec.numel = p->spec.shape[0] * p->spec.shape[1];
}

static gr_status build_plan(merge_job *j) {
  ts_model *ref = j->ref ? j->ref : j->inputs[0];
  int n = ts_model_count(ref);
  j->plan = calloc((size_t)(n ? n : 1), sizeof *j->plan);
  const char **names = calloc((size_t)(n ? n : 1), sizeof *names);
  double *t = calloc((size_t)(n ? n : 1), sizeof *t);
  if (!j->plan || !names || !t) return free(names), free(t), gr_error(GR_ENOMEM, "out of memory");
  for (int i = 0; i < n; i++) names[i] = ts_model_tensor(ref, i)->name;
  gr_mk_layer_positions(names, n, t);
  gr_status st = GR_OK;
  int layers = gr_mk_layer_count(names, n), want = j->cfg->n_models ? j->cfg->models[0].layer_range[1] : 0;
  if (j->cfg->from_slices && layers != want)
    st = gr_error(GR_EUNSUPPORTED, "%s: the slice's layer_range [0, %d] does not cover the %d layers of %s; only "
                  "whole-model slices are supported", j->cfg_path, want, layers, ts_model_path(ref));
  for (int i = 0; i < n && !st; i++) {
    const ts_tensor *base = ts_model_tensor(ref, i);
    planned *p = &j->plan[j->n_plan++];
    p->spec = *base;
    p->base_idx = i;
    p->t = t[i];
    snprintf(p->spec.dtype, sizeof p->spec.dtype, "%s", out_dtype(j, base));
    p->copy = !base->is_float;
    for (int k = 0; k < j->n_inputs && !p->copy && !st; k++) st = plan_input(j, p, k, base);
    if (!st && p->cut && !gr_merge_info(j->cfg->method)->is_task_arithmetic) cut_shape(j, p);
    if (!st && p->n_in == 0 && !j->ref) p->copy = true;
    j->n_cut += p->cut;
  }
  free(names);
  free(t);
  return st;
}

/* Copies the leading rows/cols of a 2-D f32 tensor of shape src into dst of shape (r, c). */
static float *submatrix(const float *src, int64_t src_cols, int64_t r, int64_t c) {
  float *dst = malloc(sizeof(float) * (size_t)(r * c > 0 ? r * c : 1));
  if (!dst) return NULL;
  for (int64_t i = 0; i < r; i++) memcpy(dst + i * c, src + i * src_cols, sizeof(float) * (size_t)c);
  return dst;
}

typedef struct tensor_input {
  ts_model *m;
  int idx;
  const float *data;
  float *owned, *cut;
} tensor_input;

static gr_status load_input(merge_job *j, planned *p, tensor_input *in) {
  gr_status st = ts_model_read_f32(in->m, in->idx, &in->data, &in->owned);
  if (st) return st;
  const ts_tensor *t = ts_model_tensor(in->m, in->idx);
  j->bytes_in += t->nbytes;
  if (p->cut && !ts_same_shape(t, &p->spec)) {
    in->cut = submatrix(in->data, t->shape[1], p->spec.shape[0], p->spec.shape[1]);
    if (!in->cut) return gr_error(GR_ENOMEM, "tensor '%s': out of memory", p->spec.name);
    in->data = in->cut;
  }
  return GR_OK;
}

static void release_input(tensor_input *in) {
  if (in->m) ts_model_done(in->m, in->idx, in->owned);
  free(in->cut);
  memset(in, 0, sizeof *in);
}

/* Tensor i's output before it is written: raw bytes of the base (copies,
 * still mapped while `mapped`) or f32 values in `owned`. */
typedef struct merged {
  const void *bytes;
  void *owned;
  bool mapped;
} merged;

static int64_t merged_bytes(const planned *p) { return p->copy ? p->spec.nbytes : p->spec.numel * (int64_t)sizeof(float); }

static gr_status merged_write(merge_job *j, ts_out *o, int i, const merged *r) {
  return j->plan[i].copy ? ts_out_write_raw(o, i, r->bytes) : ts_out_write_f32(o, i, r->bytes);
}

static void merged_release(merge_job *j, int i, merged *r) {
  if (r->mapped) ts_model_done(j->ref ? j->ref : j->inputs[0], j->plan[i].base_idx, NULL);
  free(r->owned);
  memset(r, 0, sizeof *r);
}

static gr_status merge_compute(merge_job *j, int i, merged *r) {
  planned *p = &j->plan[i];
  ts_model *ref = j->ref ? j->ref : j->inputs[0];
  if (p->copy) {
    gr_status st = ts_model_read_raw(ref, p->base_idx, &r->bytes);
    r->mapped = true;
    j->n_copied++;
    j->bytes_in += p->spec.nbytes;
    return st;
  }
  gr_merge_model_params all[MERGE_MAX_INPUTS], params[MERGE_MAX_INPUTS];
  gr_merge_args a;
  gr_status st = gr_mk_resolve(j->cfg, p->spec.name, p->t, &a, all);
  tensor_input base = {.m = j->ref, .idx = p->base_idx}, in[MERGE_MAX_INPUTS] = {0};
  const float *models[MERGE_MAX_INPUTS];
  float *out = NULL;
  if (!st && j->ref) st = load_input(j, p, &base);
  for (int q = 0; q < p->n_in && !st; q++) {
    in[q] = (tensor_input){.m = j->inputs[p->in_model[q]], .idx = p->in_idx[q]};
    st = load_input(j, p, &in[q]);
    models[q] = in[q].data;
    params[q] = all[p->in_param[q]];
  }
  if (!st && !(out = malloc(sizeof(float) * (size_t)(p->spec.numel ? p->spec.numel : 1))))
    st = gr_error(GR_ENOMEM, "tensor '%s': out of memory", p->spec.name);
  if (!st) {
    a.numel = p->spec.numel;
    a.ndim = p->spec.ndim;
    a.shape = p->spec.shape;
    a.base = base.data;
    a.n_models = p->n_in;
    a.models = models;
    a.params = params;
    a.seed = (uint64_t)j->opt.seed;
    a.breadcrumbs_keep_top = j->opt.keep_top;
    a.rescale_mode = !strcmp(j->opt.rescale_mode, "l1") && !j->opt.peft ? GR_RESCALE_L1 : GR_RESCALE_INV_DENSITY;
    a.peft_semantics = j->opt.peft;
    gr_merge_report rep;
    if (p->n_in == 0) memcpy(out, base.data, sizeof(float) * (size_t)p->spec.numel); /* mergekit: no task vectors → base */
    else st = gr_merge_tensor(&a, out, &rep);
    if (!st && p->n_in && rep.quirk_zeroed) {
      j->n_quirk += rep.quirk_zeroed;
      if (!j->opt.quiet)
        fprintf(stderr, "graft merge: warning: %s: %d task vector(s) zeroed because int(gamma*%lld) == 0 (mergekit's "
                "breadcrumbs behaviour; --breadcrumbs-keep-top keeps them)\n", p->spec.name, rep.quirk_zeroed, (long long)p->spec.numel);
    }
  }
  release_input(&base);
  for (int q = 0; q < p->n_in; q++) release_input(&in[q]);
  r->bytes = r->owned = out;
  return st;
}

/* Every tensor in order, one process. */
static gr_status merge_all_local(merge_job *j, ts_out *o) {
  gr_status st = GR_OK;
  for (int i = 0; i < j->n_plan && !st; i++) {
    merged r = {0};
    st = merge_compute(j, i, &r);
    if (!st) st = merged_write(j, o, i, &r);
    merged_release(j, i, &r);
  }
  return st;
}

/* Sharded over the MPI ranks: in rounds of `size` tensors, rank q merges
 * tensor round+q, every result is broadcast from its rank, and rank 0 (the
 * only one with an output, o) writes them in the reference order, so the
 * files equal the one-process merge byte for byte. */
static gr_status merge_all_sharded(merge_job *j, ts_out *o) {
  int n = gr_dist_size(), me = gr_dist_rank();
  merged *round = calloc((size_t)n, sizeof *round);
  gr_status st = gr_dist_agree(round ? GR_OK : gr_error(GR_ENOMEM, "merge: out of memory"));
  for (int first = 0; first < j->n_plan && !st; first += n) {
    int k = j->n_plan - first < n ? j->n_plan - first : n;
    gr_status mine = me < k ? merge_compute(j, first + me, &round[me]) : GR_OK;
    for (int q = 0; q < k && !mine; q++)
      if (q != me && !(round[q].owned = malloc((size_t)merged_bytes(&j->plan[first + q]) + 1)))
        mine = gr_error(GR_ENOMEM, "merge: out of memory");
      else if (q != me) round[q].bytes = round[q].owned;
    st = gr_dist_agree(mine);
    if (!st) {
      gr_status wrote = GR_OK;
      for (int q = 0; q < k && !st; q++) {
        st = gr_dist_broadcast_bytes((void *)round[q].bytes, merged_bytes(&j->plan[first + q]), q);
        if (!st && o && !wrote) wrote = merged_write(j, o, first + q, &round[q]);
      }
      st = gr_dist_agree(st ? st : wrote);
    }
    for (int q = 0; q < k; q++) merged_release(j, first + q, &round[q]);
  }
  free(round);
  double counts[3] = {j->n_copied, j->n_quirk, (double)j->bytes_in};
  if (!st) st = gr_dist_allreduce_sum_f64(counts, 3);
  j->n_copied = (int)counts[0], j->n_quirk = (int)counts[1], j->bytes_in = (int64_t)counts[2];
  return st;
}

/* config.json from the base (else the first model), as mergekit; tokenizer
 * files from tokenizer_source (the base by default). */
static gr_status copy_side_files(merge_job *j, ts_out *o) {
  static const char *const config_files[] = {"config.json", "generation_config.json"};
  static const char *const tok_files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                          "tokenizer.model", "vocab.json", "merges.txt"};
  const char *src = j->cfg->tokenizer_source;
  if (src && !strcmp(src, "union"))
    return gr_error(GR_EUNSUPPORTED, "%s: tokenizer_source: union is not supported", j->cfg_path);
  const char *first = j->cfg->base_model ? j->cfg->base_model : j->cfg->models[j->merge_idx[0]].model;
  const char *tok = !src || !strcmp(src, "base") ? first : src;
  gr_status st = GR_OK;
  for (int pass = 0; pass < 2 && !st; pass++) {
    char path[4096];
    struct stat sb;
    st = resolve_model_path(j->cfg_path, pass ? tok : first, pass ? 1 : j->cfg->base_line, path, sizeof path);
    if (st || stat(path, &sb) || !S_ISDIR(sb.st_mode)) continue;
    const char *const *files = pass ? tok_files : config_files;
    size_t n = pass ? sizeof tok_files / sizeof *tok_files : sizeof config_files / sizeof *config_files;
    for (size_t i = 0; i < n && !st; i++) st = ts_out_copy_file(o, path, files[i]);
  }
  return st;
}

/* Rank 0 alone writes (MPI runs); all ranks agree at each phase boundary. */
static gr_status write_output(merge_job *j, double *seconds) {
  ts_out *o = NULL;
  bool lead = gr_dist_rank() == 0, sharded = gr_dist_size() > 1;
  gr_status st = lead ? ts_out_open(j->opt.out, j->opt.force, j->shard_bytes, &o) : GR_OK;
  ts_tensor *specs = calloc((size_t)(j->n_plan ? j->n_plan : 1), sizeof *specs);
  if (!st && !specs) st = gr_error(GR_ENOMEM, "out of memory");
  for (int i = 0; i < j->n_plan && !st; i++) specs[i] = j->plan[i].spec;
  if (!st && lead) st = ts_out_declare(o, j->n_plan, specs);
  st = gr_dist_agree(st);
  double t0 = gr_wall_seconds();
  if (!st) st = sharded ? merge_all_sharded(j, o) : merge_all_local(j, o);
  for (int i = 0; i < j->n_plan; i++) j->bytes_out += j->plan[i].spec.numel * ts_dtype_size(j->plan[i].spec.dtype);
  if (!lead) {
    free(specs);
    return st;
  }
  if (!st) st = copy_side_files(j, o);
  if (!st) {
    FILE *fp = fopen(ts_out_path(o, "mergekit_config.yml"), "w");
    st = fp ? gr_mk_write(j->cfg, fp) : gr_error(GR_EIO, "cannot write mergekit_config.yml");
    if (fp && fclose(fp) && !st) st = gr_error(GR_EIO, "cannot write mergekit_config.yml");
  }
  free(specs);
  if (st) {
    ts_out_abort(o);
    return st;
  }
  st = ts_out_commit(o);
  *seconds = gr_wall_seconds() - t0;
  return st;
}

static void print_summary(const merge_job *j, double secs) {
  double gb_in = (double)j->bytes_in / 1e9, gb_out = (double)j->bytes_out / 1e9;
  double rss = (double)gr_peak_rss_bytes() / (1 << 20);
  if (j->opt.json) {
    printf("{\"method\":\"%s\",\"tensors\":%d,\"copied\":%d,\"skipped\":%d,\"cut\":%d,\"breadcrumbs_zeroed\":%d,"
           "\"bytes_in\":%lld,\"bytes_out\":%lld,\"seconds\":%.3f,\"gb_per_s\":%.3f,\"peak_rss_mb\":%.1f,\"out\":\"%s\"}\n",
           gr_merge_info(j->cfg->method)->name, j->n_plan, j->n_copied, j->n_skipped, j->n_cut, j->n_quirk,
           (long long)j->bytes_in, (long long)j->bytes_out, secs, secs > 0 ? gb_in / secs : 0, rss, j->opt.out);
    return;
  }
  printf("graft merge: %s of %d model(s): %d tensors (%d copied, %d model-tensor pairs skipped, %d cut) -> %s\n",
         gr_merge_info(j->cfg->method)->name, j->n_inputs, j->n_plan, j->n_copied, j->n_skipped, j->n_cut, j->opt.out);
  printf("graft merge: read %.3f GB, wrote %.3f GB in %.2f s (%.3f GB/s read), peak RSS %.1f MB\n", gb_in, gb_out, secs,
         secs > 0 ? gb_in / secs : 0, rss);
}

/* "5B" (mergekit: 5e9), "500M", "20K" or plain bytes. */
static bool parse_shard_size(const char *s, uint64_t *out) {
  char *end;
  double v = strtod(s, &end);
  double mult = !*end ? 1 : !strcmp(end, "K") ? 1e3 : !strcmp(end, "M") ? 1e6 : !strcmp(end, "B") || !strcmp(end, "G") ? 1e9 : -1;
  if (end == s || mult < 0 || !(v * mult >= 1) || v * mult > 1e15) return false;
  *out = (uint64_t)(v * mult);
  return true;
}

static void job_free(merge_job *j) {
  for (int k = 0; k < j->n_inputs; k++) ts_model_close(j->inputs[k]);
  ts_model_close(j->ref);
  free(j->plan);
  gr_mk_free(j->cfg);
}

int cmd_merge(int argc, char **argv) {
  merge_job j = {.opt = {.rescale_mode = "l1"}};
  cli_opt opts[] = {
      {"--out", CLI_STR, &j.opt.out, "output model directory (written whole or not at all)"},
      {"--seed", CLI_I64, &j.opt.seed, "seed of the DARE/DELLA masks (per tensor stream from the tensor name)"},
      {"--threads", CLI_INT, &j.opt.threads, "threads (0 = GRAFT_THREADS or all cores)"},
      {"--rescale-mode", CLI_STR, &j.opt.rescale_mode, "l1 (mergekit: match the L1 norm) or inverse-density (DARE paper, PEFT: 1/d)"},
      {"--peft-semantics", CLI_BOOL, &j.opt.peft,
       "ties/dare_ties as PEFT's merge_utils: sign elected on unweighted deltas, divide by the agreeing count, DARE 1/d"},
      {"--breadcrumbs-keep-top", CLI_BOOL, &j.opt.keep_top, "when int(gamma*numel) == 0 keep the top entries instead of mergekit's zeroing"},
      {"--out-shard-size", CLI_STR, &j.opt.shard_size, "largest output shard: bytes, or with K/M/B (1e3/1e6/1e9) like mergekit"},
      {"--force", CLI_BOOL, &j.opt.force, "replace an existing non-empty output directory"},
      {"--quiet", CLI_BOOL, &j.opt.quiet, "no per-tensor warnings"},
      {"--json", CLI_BOOL, &j.opt.json, "print the summary as one JSON object"},
  };
  cli_spec spec = {"merge", "graft merge CONFIG.yml --out DIR [options]",
                   "Merges models as a mergekit YAML config says (linear, task_arithmetic, ties, dare_ties, dare_linear,\n"
                   "breadcrumbs, breadcrumbs_ties, della, della_linear, slerp, model_stock), one tensor at a time.",
                   opts, (int)(sizeof opts / sizeof opts[0]), 1, 1};
  const char *pos[1];
  int npos = 0, rc = cli_parse(&spec, argc, argv, pos, &npos);
  if (rc) return rc == CLI_HELP ? CLI_OK : rc;
  if (!j.opt.out) return cli_fail("merge: --out DIR is required");
  if (strcmp(j.opt.rescale_mode, "l1") && strcmp(j.opt.rescale_mode, "inverse-density"))
    return cli_fail("merge: --rescale-mode must be l1 or inverse-density, not '%s'", j.opt.rescale_mode);
  if (j.opt.shard_size && !parse_shard_size(j.opt.shard_size, &j.shard_bytes))
    return cli_fail("merge: --out-shard-size wants a size like 5B, 500M or 1000000, not '%s'", j.opt.shard_size);
  gr_set_threads(j.opt.threads);
  j.cfg_path = pos[0];
  double secs = 0;
  gr_status st = gr_mk_load(pos[0], &j.cfg);
  if (!st) st = open_inputs(&j);
  if (!st) st = build_plan(&j);
  st = gr_dist_agree(st); /* MPI: every rank stops together when one cannot start */
  if (!st) st = write_output(&j, &secs);
  if (!st && gr_dist_rank() == 0) print_summary(&j, secs);
  job_free(&j);
  return st ? cli_fail_status("merge") : CLI_OK;
}
