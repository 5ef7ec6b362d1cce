/* cli/resume.c — checkpoints and --resume for `graft train` / `graft
 * finetune`: the run's config (the flags that shape the result) as JSON
 * metadata, opening the checkpoint to continue and refusing one whose config
 * differs (naming the field), the output-directory rules for a resume, and
 * the metrics.jsonl records the checkpoint had already counted. The
 * training state itself is saved and restored by gr_train (graft/train.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/runs.h"
#include "graft/dist.h"

cJSON *runs_train_config(const runs_train_flags *f, const char *verb) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "verb", verb);
  cJSON_AddStringToObject(o, "data", f->data);
  if (f->test_data) cJSON_AddStringToObject(o, "test_data", f->test_data);
  else cJSON_AddNullToObject(o, "test_data");
  cJSON_AddNumberToObject(o, "seed", f->seed);
  cJSON_AddNumberToObject(o, "epochs", f->epochs);
  cJSON_AddNumberToObject(o, "steps", (double)f->steps);
  cJSON_AddNumberToObject(o, "batch", f->batch);
  cJSON_AddStringToObject(o, "optim", f->optim);
  cJSON_AddNumberToObject(o, "lr", f->lr);
  cJSON_AddNumberToObject(o, "momentum", f->momentum);
  cJSON_AddBoolToObject(o, "nesterov", f->nesterov);
  cJSON_AddNumberToObject(o, "wd", f->wd);
  cJSON_AddStringToObject(o, "schedule", f->schedule);
  cJSON_AddNumberToObject(o, "warmup", (double)f->warmup);
  cJSON_AddNumberToObject(o, "clip", f->clip);
  cJSON_AddNumberToObject(o, "label_smoothing", f->label_smoothing);
  cJSON_AddNumberToObject(o, "eval_every", f->eval_every);
  cJSON_AddNumberToObject(o, "patience", f->patience);
  cJSON_AddStringToObject(o, "augment", f->augment);
  return o;
}

/* Every field of want equals the checkpoint's, and it has no other. */
static int config_check(const gr_st_file *ckf, const cJSON *want) {
  const char *path = gr_st_path(ckf), *text = gr_st_metadata_get(ckf, "config");
  if (!text) return cli_fail("--resume %s: no 'config' metadata (not a checkpoint of graft train/finetune)", path);
  cJSON *have = cJSON_Parse(text);
  if (!cJSON_IsObject(have)) {
    cJSON_Delete(have);
    return cli_fail("--resume %s: the 'config' metadata is not a JSON object", path);
  }
  const cJSON *miss = NULL, *h = NULL;
  for (const cJSON *w = want->child; w && !miss; w = w->next) {
    h = cJSON_GetObjectItemCaseSensitive(have, w->string);
    if (!h || !cJSON_Compare(h, w, true)) miss = w;
  }
  for (const cJSON *x = have->child; x && !miss; x = x->next)
    if (!cJSON_GetObjectItemCaseSensitive(want, x->string)) miss = h = x;
  int rc = CLI_OK;
  if (miss) {
    const cJSON *mine = cJSON_GetObjectItemCaseSensitive(want, miss->string);
    char *a = h ? cJSON_PrintUnformatted(h) : NULL, *b = mine ? cJSON_PrintUnformatted(mine) : NULL;
    rc = cli_fail("--resume %s: field '%s' differs: the checkpoint's run has %s, this command %s (resume with the "
                  "flags of the run it continues)", path, miss->string, a ? a : "(none)", b ? b : "(none)");
    cJSON_free(a), cJSON_free(b);
  }
  cJSON_Delete(have);
  return rc;
}

static bool is_dir(const char *p) {
  struct stat st;
  return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static bool exists(const char *p) {
  struct stat st;
  return !stat(p, &st);
}

/* The directory holding the checkpoint file into dir. */
static void ckpt_dir(const char *file, char *dir, size_t n) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", file);
  snprintf(dir, n, "%s", dirname(tmp));
}

static bool same_dir(const char *a, const char *b) {
  char ra[PATH_MAX], rb[PATH_MAX];
  return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

static void threads_note(const gr_st_file *ckf) {
  uint64_t t = 0, ranks = 1;
  if (!gr_ckpt_meta_u64(ckf, "run.threads", &t) && t != (uint64_t)gr_threads())
    fprintf(stderr, "graft: note: the checkpoint was written with %llu threads, this run uses %d: the result may "
                    "differ from an uninterrupted run in the last bits\n", (unsigned long long)t, gr_threads());
  if (!gr_ckpt_meta_u64(ckf, "dist.ranks", &ranks) && ranks != (uint64_t)gr_dist_size() && gr_dist_rank() == 0)
    fprintf(stderr, "graft: note: the checkpoint was written by %llu ranks, this run has %d: the gradient sums add "
                    "in another order, so the result equals an uninterrupted run to float rounding, not bit for bit\n",
            (unsigned long long)ranks, gr_dist_size());
  gr_clear_error();
}

int runs_ckpt_begin(const runs_train_flags *f, cJSON *config, runs_ckpt *ck) {
  memset(ck, 0, sizeof *ck);
  ck->config = config;
  if (!config) return cli_fail("out of memory");
  ck->config_text = cJSON_PrintUnformatted(config);
  if (!ck->config_text) return cli_fail("out of memory");
  snprintf(ck->threads, sizeof ck->threads, "%d", gr_threads());
  ck->meta[0] = (gr_st_kv){"config", ck->config_text};
  ck->meta[1] = (gr_st_kv){"run.threads", ck->threads};
  runs_path(ck->path, sizeof ck->path, f->out, "checkpoint.safetensors");
  bool force = f->force;
  if (f->resume) {
    if (is_dir(f->resume)) runs_path(ck->resume_path, sizeof ck->resume_path, f->resume, "checkpoint.safetensors");
    else snprintf(ck->resume_path, sizeof ck->resume_path, "%s", f->resume);
    if (gr_st_open(ck->resume_path, &ck->resume)) return cli_fail_file(ck->resume_path);
    int rc = config_check(ck->resume, config);
    if (rc) return rc;
    threads_note(ck->resume);
    char dir[PATH_MAX], model[PATH_MAX + 32];
    ckpt_dir(ck->resume_path, dir, sizeof dir);
    runs_path(model, sizeof model, f->out, "model.safetensors");
    /* continuing a run in its own directory: no --force needed until it holds a finished model */
    if (same_dir(dir, f->out) && exists(model) && !force && gr_dist_rank() == 0)
      return cli_fail("--resume: %s already holds the finished model of that run; use --force to resume into it "
                      "anyway or --out another directory", f->out);
    if (same_dir(dir, f->out)) force = true;
  }
  return runs_prepare_outdir(f->out, force);
}

void runs_ckpt_end(runs_ckpt *ck) {
  gr_st_close(ck->resume);
  cJSON_free(ck->config_text);
  cJSON_Delete(ck->config);
  memset(ck, 0, sizeof *ck);
}

void runs_ckpt_train_cfg(const runs_train_flags *f, const runs_ckpt *ck, gr_train_cfg *tc) {
  bool on = f->ckpt_every > 0 || f->stop_at > 0 || ck->resume;
  tc->ckpt = (gr_train_ckpt){.path = on ? ck->path : NULL, .every = f->ckpt_every, .stop_at = f->stop_at,
                             .meta = ck->meta, .n_meta = 2, .resume = ck->resume};
}

/* The first `keep` lines of src into text (gr_malloc'd); *got = lines kept. */
static gr_status read_lines(const char *src, int64_t keep, char **text, size_t *len, int64_t *got) {
  *text = NULL, *len = 0, *got = 0;
  FILE *fp = fopen(src, "rb");
  if (!fp) return errno == ENOENT ? GR_OK : gr_error(GR_EIO, "%s: cannot open: %s", src, strerror(errno));
  size_t cap = 1 << 16;
  char *buf = gr_malloc(cap), *line = NULL;
  size_t lcap = 0;
  ssize_t n;
  gr_status s = buf ? GR_OK : gr_error(GR_ENOMEM, "out of memory");
  while (!s && *got < keep && (n = getline(&line, &lcap, fp)) > 0 && line[n - 1] == '\n') {
    while (*len + (size_t)n + 1 > cap) {
      char *nb = gr_malloc(cap * 2);
      if (!nb) {
        s = gr_error(GR_ENOMEM, "out of memory");
        break;
      }
      memcpy(nb, buf, *len);
      gr_free(buf);
      buf = nb, cap *= 2;
    }
    if (s) break;
    memcpy(buf + *len, line, (size_t)n);
    *len += (size_t)n, (*got)++;
  }
  free(line);
  fclose(fp);
  if (s) gr_free(buf);
  else *text = buf;
  return s;
}

gr_status runs_ckpt_metrics_prefix(const runs_train_flags *f, const runs_ckpt *ck) {
  if (!ck->resume || gr_dist_rank() != 0) return GR_OK;
  uint64_t evals = 0;
  gr_status s = gr_ckpt_meta_u64(ck->resume, "train.evals", &evals);
  if (s) return s;
  char dir[PATH_MAX], src[PATH_MAX + 32], dst[1100], *text = NULL;
  ckpt_dir(ck->resume_path, dir, sizeof dir);
  runs_path(src, sizeof src, dir, "metrics.jsonl");
  size_t len;
  int64_t got;
  s = read_lines(src, (int64_t)evals, &text, &len, &got);
  if (!s && got < (int64_t)evals)
    fprintf(stderr, "graft: note: %s holds %lld of the %llu evaluation records the checkpoint counts; "
                    "metrics.jsonl continues after those\n", src, (long long)got, (unsigned long long)evals);
  if (!s) s = gr_write_file_atomic(runs_path(dst, sizeof dst, f->out, "metrics.jsonl"), text ? text : "", len);
  gr_free(text);
  return s;
}
