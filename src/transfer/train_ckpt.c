/* transfer/train_ckpt.c — the training state of gr_train in a checkpoint
 * (what is saved and restored is listed at gr_train_ckpt in graft/train.h).
 * The file format is io/checkpoint.c's; the loop that calls this is
 * train.c. Every value that reaches the next step is saved exactly: floats
 * as F32 tensors, doubles as hex floats, generators in their text form. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/dist.h"
#include "transfer/train_state.h"

#define CKPT_VERSION "1"
#define PERM_MAX ((int64_t)1 << 24) /* loader.perm is stored as F32: exact up to 2^24 */
#define NAME_LEN (GR_NAME_MAX + 32)
#define VAL_LEN 112

/* ---- tensors: model entries, optimizer state, best weights, loader order ---- */
typedef struct state_tensors {
  gr_ckpt_tensor *ts;
  size_t n;
  gr_tensor *views;  /* views[i] backs ts[i] when ts[i] is not a model tensor */
  char *names;       /* NAME_LEN per entry */
  float *perm;       /* the loader's order as floats */
} state_tensors;

static void state_tensors_free(state_tensors *s) {
  gr_free(s->ts), gr_free(s->views), gr_free(s->names), gr_free(s->perm);
  memset(s, 0, sizeof *s);
}

/* Adds "<prefix><name>" as a view of data with e's shape. */
static void add_view(state_tensors *s, const char *prefix, const char *name, const gr_tensor *shape_of, float *data) {
  gr_tensor *v = &s->views[s->n];
  *v = (gr_tensor){.data = data, .ndim = shape_of->ndim, .numel = shape_of->numel};
  memcpy(v->shape, shape_of->shape, sizeof v->shape);
  char *nm = s->names + s->n * NAME_LEN;
  snprintf(nm, NAME_LEN, "%s%s", prefix, name);
  s->ts[s->n++] = (gr_ckpt_tensor){nm, v};
}

static const char *optim_kind_name(const gr_optim *o) { return o->cfg.kind == GR_OPT_SGD ? "sgd" : "adamw"; }

static gr_status state_tensors_build(const train_run *r, state_tensors *s) {
  const gr_model *m = r->m;
  const gr_optim *o = r->o;
  int64_t n = r->l.ds->n;
  if (o->n != m->n_entries) return gr_error(GR_ESTATE, "checkpoint: model layout changed since the optimizer was made");
  if (n > PERM_MAX)
    return gr_error(GR_EUNSUPPORTED, "checkpoint: %lld training samples; checkpoints hold at most %lld", (long long)n,
                    (long long)PERM_MAX);
  size_t cap = 4 * (size_t)m->n_entries + 1;
  s->ts = gr_calloc(cap, sizeof *s->ts);
  s->views = gr_calloc(cap, sizeof *s->views);
  s->names = gr_calloc(cap, NAME_LEN);
  s->perm = gr_malloc((size_t)n * sizeof(float) + 4);
  if (!s->ts || !s->views || !s->names || !s->perm) return gr_error(GR_ENOMEM, "checkpoint: out of memory");
  for (int i = 0; i < m->n_entries; i++) s->ts[s->n++] = (gr_ckpt_tensor){m->entries[i].name, m->entries[i].t};
  bool adam = o->cfg.kind == GR_OPT_ADAMW;
  for (int i = 0; i < m->n_entries; i++) {
    const gr_named_tensor *e = &m->entries[i];
    if (e->buffer || !e->t->requires_grad) continue;
    add_view(s, adam ? "optimizer.exp_avg." : "optimizer.momentum_buffer.", e->name, e->t, o->m1 + e->offset);
    if (adam) add_view(s, "optimizer.exp_avg_sq.", e->name, e->t, o->m2 + e->offset);
  }
  if (r->cfg->patience > 0)
    for (int i = 0; i < m->n_entries; i++) {
      const gr_named_tensor *e = &m->entries[i];
      add_view(s, "best.", e->name, e->t, (e->buffer ? r->best.buf : r->best.data) + e->offset);
    }
  add_view(s, "", "loader.perm", &(gr_tensor){.ndim = 1, .shape = {n}, .numel = n}, s->perm);
  return GR_OK;
}

/* ---- metadata ---------------------------------------------------------------- */
typedef struct meta_list {
  gr_st_kv *kv;
  char (*keys)[48];
  char (*vals)[VAL_LEN];
  size_t n, cap;
  char *steps;  /* per-entry optimizer step counts, "12,12,0,..." */
} meta_list;

static void meta_list_free(meta_list *ml) {
  gr_free(ml->kv), gr_free(ml->keys), gr_free(ml->vals), gr_free(ml->steps);
  memset(ml, 0, sizeof *ml);
}

static void meta_put(meta_list *ml, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void meta_put(meta_list *ml, const char *key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ml->vals[ml->n], VAL_LEN, fmt, ap);
  va_end(ap);
  snprintf(ml->keys[ml->n], sizeof ml->keys[0], "%s", key);
  ml->kv[ml->n] = (gr_st_kv){ml->keys[ml->n], ml->vals[ml->n]};
  ml->n++;
}

static char *steps_text(const gr_optim *o) {
  size_t cap = (size_t)o->n * 21 + 2, k = 0;
  char *t = gr_malloc(cap);
  if (!t) return NULL;
  t[0] = 0;
  for (int i = 0; i < o->n; i++) k += (size_t)snprintf(t + k, cap - k, "%s%lld", i ? "," : "", (long long)o->steps[i]);
  return t;
}

static gr_status meta_build(const train_run *r, int64_t step, int64_t total, char (*rngs)[GR_CKPT_RNG_LEN], int nr,
                            meta_list *ml) {
  const gr_train_ckpt *ck = &r->cfg->ckpt;
  ml->cap = 32 + (size_t)nr + ck->n_meta;
  ml->kv = gr_calloc(ml->cap, sizeof *ml->kv);
  ml->keys = gr_calloc(ml->cap, sizeof *ml->keys);
  ml->vals = gr_calloc(ml->cap, sizeof *ml->vals);
  ml->steps = steps_text(r->o);
  if (!ml->kv || !ml->keys || !ml->vals || !ml->steps) return gr_error(GR_ENOMEM, "checkpoint: out of memory");
  char f64[GR_CKPT_F64_LEN];
  meta_put(ml, "checkpoint.version", CKPT_VERSION);
  meta_put(ml, "step", "%lld", (long long)step);
  meta_put(ml, "train.total_steps", "%lld", (long long)total);
  meta_put(ml, "train.batch", "%lld", (long long)r->cfg->batch);
  meta_put(ml, "train.samples", "%lld", (long long)r->l.ds->n);
  gr_ckpt_f64_encode(r->window_sum, f64);
  meta_put(ml, "train.window_sum", "%s", f64);
  meta_put(ml, "train.window_n", "%lld", (long long)r->window_n);
  meta_put(ml, "train.evals", "%lld", (long long)r->evals);
  gr_ckpt_f64_encode(r->best.loss, f64);
  meta_put(ml, "best.loss", "%s", f64);
  meta_put(ml, "best.step", "%lld", (long long)(r->best.step + 1)); /* +1: -1 (none) is stored as 0 */
  meta_put(ml, "best.bad_evals", "%d", r->best.bad_evals);
  meta_put(ml, "optim.kind", "%s", optim_kind_name(r->o));
  meta_put(ml, "optim.step", "%lld", (long long)r->o->step);
  ml->kv[ml->n++] = (gr_st_kv){"optim.steps", ml->steps};
  meta_put(ml, "loader.pos", "%lld", (long long)r->l.pos);
  meta_put(ml, "loader.epoch", "%lld", (long long)r->l.epoch);
  char rng[GR_CKPT_RNG_LEN];
  gr_ckpt_rng_encode(&r->l.rng, rng);
  meta_put(ml, "rng.loader", "%s", rng);
  gr_ckpt_rng_encode(&r->m->rng, rng);
  meta_put(ml, "rng.model", "%s", rng);
  meta_put(ml, "dist.ranks", "%d", nr);
  for (int k = 0; k < nr; k++) {
    char key[48];
    snprintf(key, sizeof key, "rng.dropout.rank%d", k);
    meta_put(ml, key, "%s", rngs[k]);
  }
  for (size_t i = 0; i < ck->n_meta; i++) ml->kv[ml->n++] = ck->meta[i];
  return GR_OK;
}

static gr_status write_file(const train_run *r, int64_t step, int64_t total, char (*rngs)[GR_CKPT_RNG_LEN], int nr) {
  state_tensors st = {0};
  meta_list ml = {0};
  gr_status s = state_tensors_build(r, &st);
  for (int64_t i = 0; !s && i < r->l.ds->n; i++) st.perm[i] = (float)r->l.perm[i];
  if (!s) s = meta_build(r, step, total, rngs, nr, &ml);
  if (!s) s = gr_ckpt_save(r->cfg->ckpt.path, st.ts, st.n, GR_DT_F32, ml.kv, ml.n);
  meta_list_free(&ml);
  state_tensors_free(&st);
  return s;
}

gr_status gr_train_state_save(const train_run *r, int64_t step, int64_t total) {
  int nr = gr_dist_size(), rank = gr_dist_rank();
  char(*rngs)[GR_CKPT_RNG_LEN] = gr_calloc((size_t)nr, GR_CKPT_RNG_LEN);
  gr_status s = gr_dist_agree(rngs ? GR_OK : gr_error(GR_ENOMEM, "checkpoint: out of memory"));
  if (!s) gr_ckpt_rng_encode(gr_ctx_rng(r->c), rngs[rank]);
  for (int k = 0; k < nr && !s; k++) s = gr_dist_broadcast_bytes(rngs[k], GR_CKPT_RNG_LEN, k);
  if (!s && rank == 0) s = write_file(r, step, total, rngs, nr);
  gr_free(rngs);
  return gr_dist_agree(s);
}

/* ---- restore ------------------------------------------------------------------ */
/* Metadata u64 key that must equal want (this run's value). */
static gr_status expect_u64(const gr_st_file *f, const char *key, int64_t want, const char *what) {
  uint64_t v;
  gr_status s = gr_ckpt_meta_u64(f, key, &v);
  if (s) return s;
  if (v != (uint64_t)want)
    return gr_error(GR_EFORMAT, "%s: the checkpoint's run has %s %llu, this run %lld (metadata '%s')", gr_st_path(f), what,
                    (unsigned long long)v, (long long)want, key);
  return GR_OK;
}

static gr_status meta_u64_max(const gr_st_file *f, const char *key, uint64_t max, int64_t *out) {
  uint64_t v;
  gr_status s = gr_ckpt_meta_u64(f, key, &v);
  if (!s && v > max)
    s = gr_error(GR_EFORMAT, "%s: metadata '%s' = %llu is out of range (at most %llu)", gr_st_path(f), key,
                 (unsigned long long)v, (unsigned long long)max);
  if (!s) *out = (int64_t)v;
  return s;
}

/* "a,b,c" into steps[n] (each <= max). */
static gr_status parse_steps(const gr_st_file *f, int n, int64_t max, int64_t *steps) {
  const char *t = gr_st_metadata_get(f, "optim.steps");
  if (!t) return gr_error(GR_ENOTFOUND, "%s: no metadata 'optim.steps'", gr_st_path(f));
  for (int i = 0; i < n; i++) {
    char *end;
    if (*t < '0' || *t > '9') break;
    unsigned long long v = strtoull(t, &end, 10);
    if (v > (unsigned long long)max || (*end != ',' && *end != 0) || (*end == 0) != (i == n - 1)) break;
    steps[i] = (int64_t)v;
    t = *end ? end + 1 : end;
    if (i == n - 1) return GR_OK;
  }
  return gr_error(GR_EFORMAT, "%s: metadata 'optim.steps' is not a list of %d step counts (one per model entry)",
                  gr_st_path(f), n);
}

/* The loader order of the file into s->perm: integers 0..n-1, each once. */
static gr_status read_perm(const gr_st_file *f, int64_t n, float *perm) {
  const gr_st_tensor *t = gr_st_find(f, "loader.perm");
  if (!t) return gr_error(GR_ENOTFOUND, "%s: checkpoint has no tensor 'loader.perm'", gr_st_path(f));
  if (t->ndim != 1 || t->shape[0] != (uint64_t)n)
    return gr_error(GR_EFORMAT, "%s: 'loader.perm' holds %llu samples, the training data has %lld", gr_st_path(f),
                    (unsigned long long)(t->ndim == 1 ? t->shape[0] : 0), (long long)n);
  gr_status s = gr_st_read_f32(t, perm, (uint64_t)n);
  uint8_t *seen = s ? NULL : gr_calloc((size_t)n + 1, 1);
  if (!s && !seen) s = gr_error(GR_ENOMEM, "checkpoint: out of memory");
  for (int64_t i = 0; !s && i < n; i++) {
    float v = perm[i];
    if (!(v >= 0 && v < (float)n) || v != (float)(int64_t)v || seen[(int64_t)v]++)
      s = gr_error(GR_EFORMAT, "%s: 'loader.perm' is not a permutation of the %lld samples (element %lld)",
                   gr_st_path(f), (long long)n, (long long)i);
  }
  gr_free(seen);
  return s;
}

/* Everything but the tensors, parsed into a staging copy of the run. */
static gr_status parse_meta(const gr_st_file *f, const train_run *r, int64_t total, train_run *st, int64_t *steps,
                            gr_rng *dropout) {
  int64_t ranks, big = (int64_t)1 << 62;
  uint64_t v;
  gr_status s = GR_OK;
  const char *kind = gr_st_metadata_get(f, "optim.kind");
  if (!kind) s = gr_error(GR_ENOTFOUND, "%s: no metadata 'optim.kind'", gr_st_path(f));
  else if (strcmp(kind, optim_kind_name(r->o)))
    s = gr_error(GR_EFORMAT, "%s: the checkpoint's optimizer is %.20s, this run uses %s (metadata 'optim.kind')",
                 gr_st_path(f), kind, optim_kind_name(r->o));
  if (!s) s = expect_u64(f, "train.total_steps", total, "total steps");
  if (!s) s = expect_u64(f, "train.batch", r->cfg->batch, "batch");
  if (!s) s = expect_u64(f, "train.samples", r->l.ds->n, "training samples");
  if (!s) s = meta_u64_max(f, "step", (uint64_t)total, &st->start);
  if (!s) s = meta_u64_max(f, "loader.pos", (uint64_t)r->l.ds->n, &st->l.pos);
  if (!s) s = meta_u64_max(f, "loader.epoch", (uint64_t)big, &st->l.epoch);
  if (!s) s = gr_ckpt_meta_f64(f, "train.window_sum", &st->window_sum);
  if (!s) s = meta_u64_max(f, "train.window_n", (uint64_t)big, &st->window_n);
  if (!s) s = meta_u64_max(f, "train.evals", (uint64_t)big, &st->evals);
  if (!s) s = gr_ckpt_meta_f64(f, "best.loss", &st->best.loss);
  if (!s) s = meta_u64_max(f, "best.step", (uint64_t)total + 1, &st->best.step);
  if (!s) st->best.step -= 1;
  if (!s) s = gr_ckpt_meta_u64(f, "best.bad_evals", &v);
  if (!s) st->best.bad_evals = v > 1000000000 ? 1000000000 : (int)v;
  if (!s) s = meta_u64_max(f, "optim.step", (uint64_t)big, &st->o->step);
  if (!s) s = parse_steps(f, r->o->n, big, steps);
  if (!s) s = gr_ckpt_meta_rng(f, "rng.loader", &st->l.rng);
  if (!s) s = gr_ckpt_meta_rng(f, "rng.model", &st->m->rng);
  if (!s) s = meta_u64_max(f, "dist.ranks", 1 << 24, &ranks);
  if (!s && ranks < 1) s = gr_error(GR_EFORMAT, "%s: metadata 'dist.ranks' is 0", gr_st_path(f));
  /* this rank's dropout generator; ranks beyond the checkpoint's keep their fresh one */
  char key[48];
  snprintf(key, sizeof key, "rng.dropout.rank%d", gr_dist_rank());
  *dropout = *gr_ctx_rng(r->c);
  if (!s && gr_dist_rank() < ranks) s = gr_ckpt_meta_rng(f, key, dropout);
  return s;
}

static gr_status check_version(const gr_st_file *f) {
  const char *v = gr_st_metadata_get(f, "checkpoint.version");
  if (!v)
    return gr_error(GR_EFORMAT, "%s: not a graft training checkpoint (no 'checkpoint.version' metadata)", gr_st_path(f));
  if (strcmp(v, CKPT_VERSION))
    return gr_error(GR_EUNSUPPORTED, "%s: checkpoint version '%.20s' (this graft reads version %s)", gr_st_path(f), v,
                    CKPT_VERSION);
  return GR_OK;
}

gr_status gr_train_state_restore(train_run *r, int64_t total) {
  const gr_st_file *f = r->cfg->ckpt.resume;
  gr_optim o_stage = *r->o;
  gr_model m_stage = {0};
  train_run st = *r;
  st.o = &o_stage, st.m = &m_stage;
  int64_t *steps = gr_calloc((size_t)r->o->n + 1, sizeof *steps);
  state_tensors ts = {0};
  gr_rng dropout;
  gr_status s = steps ? check_version(f) : gr_error(GR_ENOMEM, "checkpoint: out of memory");
  if (!s) s = parse_meta(f, r, total, &st, steps, &dropout);
  if (!s) s = state_tensors_build(r, &ts);
  if (!s) s = read_perm(f, r->l.ds->n, ts.perm);
  if (!s) s = gr_ckpt_load(f, ts.ts, ts.n, GR_CKPT_STRICT); /* checks every tensor, then writes */
  if (!s) {
    for (int64_t i = 0; i < r->l.ds->n; i++) r->l.perm[i] = (int64_t)ts.perm[i];
    memcpy(r->o->steps, steps, (size_t)r->o->n * sizeof *steps);
    r->o->step = o_stage.step;
    r->m->rng = m_stage.rng;
    r->l.rng = st.l.rng, r->l.pos = st.l.pos, r->l.epoch = st.l.epoch;
    *gr_ctx_rng(r->c) = dropout;
    r->window_sum = st.window_sum, r->window_n = st.window_n, r->evals = st.evals;
    r->best.loss = st.best.loss, r->best.step = st.best.step, r->best.bad_evals = st.best.bad_evals;
    r->start = st.start;
    r->stop = r->cfg->patience > 0 && r->best.bad_evals >= r->cfg->patience;
  }
  state_tensors_free(&ts);
  gr_free(steps);
  return s;
}
