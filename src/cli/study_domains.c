/* cli/study_domains.c — the shared half of `graft study merge|rebase` (see
 * study_domains.h): data pools under domain shifts, short SGD runs with
 * progress, evaluation, result records and table files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/study_domains.h"

gr_status sd_data_load(sd_data *d) {
  memset(d, 0, sizeof *d);
  gr_status s = gr_fmnist_load(NULL, "train", &d->train);
  if (!s) s = gr_fmnist_load(NULL, "test", &d->test);
  d->perm = s ? NULL : gr_malloc((size_t)d->train->n * sizeof(int64_t));
  if (!s && !d->perm) s = gr_error(GR_ENOMEM, "study: out of memory");
  return s;
}

void sd_data_free(sd_data *d) {
  gr_dataset_free(d->train);
  gr_dataset_free(d->test);
  gr_free(d->perm);
  memset(d, 0, sizeof *d);
}

void sd_data_reseed(sd_data *d, uint64_t seed, int64_t n_val_pool) {
  gr_rng r = gr_rng_stream(seed, 0x5D0A1);
  gr_rng_permutation(&r, d->train->n, d->perm);
  d->n_val_pool = n_val_pool < d->train->n / 2 ? n_val_pool : d->train->n / 2;
}

static gr_status shifted(const gr_dataset *src, const int64_t *idx, int64_t k, const char *shift, gr_dataset **out) {
  *out = k > 0 ? gr_dataset_take(src, idx, k) : NULL;
  if (!*out) return gr_error(GR_EARG, "study: empty %s subset", shift);
  gr_status s = gr_dataset_shift(*out, shift);
  if (!s) s = gr_dataset_normalize(*out, GR_FMNIST_MEAN, GR_FMNIST_STD);
  if (s) gr_dataset_free(*out), *out = NULL;
  return s;
}

gr_status sd_train_set(const sd_data *d, const char *shift, int64_t start, int64_t count, gr_dataset **out) {
  int64_t pool = d->train->n - d->n_val_pool;
  start %= pool;
  if (count > pool - start) count = pool - start;
  return shifted(d->train, d->perm + start, count, shift, out);
}

gr_status sd_val_set(const sd_data *d, const char *shift, int block, int64_t count, gr_dataset **out) {
  int64_t pool = d->n_val_pool, start = (int64_t)block * count;
  if (start >= pool) start %= pool;
  if (count > pool - start) count = pool - start;
  return shifted(d->train, d->perm + (d->train->n - pool) + start, count, shift, out);
}

gr_status sd_test_set(const sd_data *d, const char *shift, int64_t count, gr_dataset **out) {
  if (count > d->test->n) count = d->test->n;
  int64_t *idx = gr_malloc((size_t)count * sizeof(int64_t) + 8);
  if (!idx) return gr_error(GR_ENOMEM, "study: out of memory");
  for (int64_t i = 0; i < count; i++) idx[i] = i;
  gr_status s = shifted(d->test, idx, count, shift, out);
  gr_free(idx);
  return s;
}

gr_status sd_concat(gr_dataset *const *parts, int n, gr_dataset **out) {
  int64_t total = 0;
  for (int i = 0; i < n; i++) total += parts[i]->n;
  *out = gr_dataset_new(total, parts[0]->c, parts[0]->h, parts[0]->w, parts[0]->n_classes);
  if (!*out) return gr_last_status() ? gr_last_status() : gr_error(GR_ENOMEM, "study: out of memory");
  int64_t at = 0;
  for (int i = 0; i < n; i++) {
    memcpy((*out)->x + at * parts[i]->dim, parts[i]->x, (size_t)(parts[i]->n * parts[i]->dim) * sizeof(float));
    memcpy((*out)->y + at, parts[i]->y, (size_t)parts[i]->n * sizeof(int32_t));
    at += parts[i]->n;
  }
  return GR_OK;
}

gr_model *sd_lenet(uint64_t seed) {
  gr_model *m = gr_model_new(seed);
  gr_module *root = m ? gr_arch_build(m, "lenet", 1, 28, 28, 10) : NULL;
  if (!root || gr_model_set_root(m, root)) {
    gr_model_free(m);
    return NULL;
  }
  return m;
}

void sd_copy_weights(gr_model *dst, const gr_model *src) {
  memcpy(dst->data, src->data, (size_t)src->numel * sizeof(float));
  if (src->buf_numel) memcpy(dst->buf, src->buf, (size_t)src->buf_numel * sizeof(float));
}

gr_status sd_train(gr_model *m, const gr_dataset *train, int64_t steps, const sd_opts *o, uint64_t seed,
                   const char *label) {
  gr_optim_cfg oc = gr_sgd_cfg((float)o->lr, (float)o->momentum, 0, false);
  gr_optim *opt = gr_optim_new(m, &oc);
  if (!opt) return gr_last_status();
  gr_train_cfg tc = {.steps = steps, .batch = o->batch, .seed = seed};
  gr_train_result res;
  runs_monitor mon;
  runs_monitor_start(&mon, label, steps, o->quiet);
  gr_train_hooks hooks = runs_monitor_hooks(&mon);
  gr_status s = gr_train(m, opt, train, NULL, &tc, &hooks, &res);
  char st[48];
  snprintf(st, sizeof st, "loss %.4f", res.train_loss);
  runs_monitor_finish(&mon, s ? "failed" : st);
  gr_optim_free(opt);
  return s;
}

gr_status sd_accuracy(gr_model *m, gr_ctx *c, const gr_dataset *ds, double *acc) {
  gr_eval_result ev;
  gr_status s = gr_evaluate(m, c, ds, 500, &ev);
  *acc = s ? NAN : ev.accuracy;
  return s;
}

int sd_parse_tasks(const char *list, const char **names, char *storage, size_t n) {
  int k = runs_parse_list(list, names, SD_MAX_TASKS, storage, n);
  for (int i = 0; i < k; i++)
    if (!gr_shift_known(names[i])) return -1 - i;
  return k;
}

gr_status sd_write_record(gr_jsonl *out, const char *phase, const char *method, const char *dataset, uint64_t seed,
                          double acc, const char *const *extra_names, const double *extra, int n_extra) {
  gr_run_result r;
  gr_run_result_init(&r);
  snprintf(r.phase, sizeof r.phase, "%s", phase);
  snprintf(r.method, sizeof r.method, "%s", method);
  snprintf(r.dataset, sizeof r.dataset, "%s", dataset);
  r.seed = seed;
  r.accuracy = acc;
  r.budget = 1;
  gr_status s = GR_OK;
  for (int i = 0; !s && i < n_extra; i++) s = gr_run_result_set_extra(&r, extra_names[i], extra[i]);
  return s ? s : gr_jsonl_write_result(out, &r);
}

gr_status sd_emit_table(const gr_table *t, const char *dir, const char *name, const char *heading) {
  char *buf = NULL, path[1100];
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  if (!mem) return gr_error(GR_ENOMEM, "study: out of memory for the table");
  fprintf(mem, "%s\n\n", heading);
  gr_status s = gr_table_print(t, mem, GR_TABLE_MARKDOWN);
  fclose(mem);
  if (!s) {
    fwrite(buf, 1, len, stdout);
    s = gr_write_file_atomic(runs_path(path, sizeof path, dir, name), buf, len);
  }
  free(buf);
  return s;
}

void sd_opts_default(sd_opts *o) {
  *o = (sd_opts){.seed = 1, .seeds = 1, .base_steps = 800, .ft_steps = 300, .batch = 64, .val_per_task = 500,
                 .test_per_task = 2000, .lr = 0.01, .momentum = 0.9};
}

int sd_opts_finish(sd_opts *o, const char *verb) {
  if (!o->out) {
    fprintf(stderr, "graft study %s: --out DIR is required\n", verb);
    return CLI_USAGE;
  }
  if (o->quick) {
    o->base_steps = o->base_steps < 40 ? o->base_steps : 40;
    o->ft_steps = o->ft_steps < 25 ? o->ft_steps : 25;
    o->val_per_task = o->val_per_task < 60 ? o->val_per_task : 60;
    o->test_per_task = o->test_per_task < 200 ? o->test_per_task : 200;
  }
  if (o->seeds < 1 || o->seeds > RUNS_MAX_SEEDS || o->base_steps < 1 || o->ft_steps < 1 || o->batch < 1 ||
      o->val_per_task < 1 || o->test_per_task < 1 || !(o->lr > 0) || !(o->momentum >= 0 && o->momentum < 1)) {
    fprintf(stderr, "graft study %s: --seeds in 1..%d; steps, batch and set sizes >= 1; lr > 0; momentum in [0,1)\n",
            verb, RUNS_MAX_SEEDS);
    return CLI_USAGE;
  }
  return runs_prepare_outdir(o->out, o->force);
}
