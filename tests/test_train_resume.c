/* gr_train checkpoints and resume at the library level: an MLP with
 * dropout, AdamW and early-stopping state paused at step 23 and resumed
 * ends with the same bits (weights, losses, best step) as the run that never
 * stopped; the checkpoint's dropout generator and optimizer moments matter
 * (changing them changes the result); damaged or foreign checkpoints are
 * refused with the field named and the model left untouched. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "train_fixture.h"

enum { TOTAL = 70, PAUSE = 23 };

typedef struct run {
  gr_model *m;
  gr_optim *o;
  gr_train_result res;
} run;

static gr_optim_cfg adamw(void) { return gr_adamw_cfg(0.03f, 0.01f); }

static run make(int hidden, gr_optim_cfg oc) {
  run r = {.m = fixture_dropout_mlp(8, hidden, 3, 0.3f, 5)};
  r.o = gr_optim_new(r.m, &oc);
  return r;
}

static void run_free(run *r) {
  gr_optim_free(r->o);
  gr_model_free(r->m);
}

static gr_train_cfg base_cfg(void) {
  return (gr_train_cfg){.steps = TOTAL, .batch = 16, .eval_every = 10, .patience = 50, .seed = 9,
                        .sched = {.kind = GR_SCHED_COSINE, .warmup_steps = 5, .warmup_start = 0.3f}};
}

static bool same_run(const run *a, const run *b) {
  return a->m->numel == b->m->numel && !memcmp(a->m->data, b->m->data, (size_t)a->m->numel * sizeof(float)) &&
         a->res.steps == b->res.steps && a->res.best_step == b->res.best_step &&
         !memcmp(&a->res.train_loss, &b->res.train_loss, sizeof(double)) &&
         !memcmp(&a->res.eval.loss, &b->res.eval.loss, sizeof(double));
}

/* Trains a fresh model resuming from path; returns the status. */
static gr_status resume_from(const char *path, run *r, const gr_dataset *tr, const gr_dataset *te, gr_train_cfg cfg) {
  gr_st_file *f = NULL;
  gr_status s = gr_st_open(path, &f);
  if (s) return s;
  cfg.ckpt = (gr_train_ckpt){.resume = f};
  s = gr_train(r->m, r->o, tr, te, &cfg, NULL, &r->res);
  gr_st_close(f);
  return s;
}

/* Copies src to dst with metadata key set to value (NULL: removed) and the
 * tensor `drop` left out; `poke` (if not NULL) gets element 0 of tensor
 * poke_name set to poke_value. */
typedef struct edit {
  const char *key, *value, *drop, *poke_name;
  float poke_value;
} edit;

static void rewrite(const char *src, const char *dst, edit e) {
  gr_st_file *f = NULL;
  CHECK_OK(gr_st_open(src, &f));
  if (!f) return;
  size_t n = gr_st_count(f), nm = gr_st_metadata_count(f), k = 0, km = 0;
  gr_arena *a = gr_arena_new(1 << 20);
  gr_ckpt_tensor *ts = gr_calloc(n, sizeof *ts);
  gr_st_kv *meta = gr_calloc(nm + 1, sizeof *meta);
  for (size_t i = 0; i < n; i++) {
    const gr_st_tensor *t = gr_st_at(f, i);
    if (e.drop && !strcmp(t->name, e.drop)) continue;
    int64_t shape[GR_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) shape[d] = (int64_t)t->shape[d];
    gr_tensor *x = gr_tensor_new_in(a, t->ndim, shape, false);
    CHECK_OK(gr_st_read_f32(t, x->data, (uint64_t)x->numel));
    if (e.poke_name && !strcmp(t->name, e.poke_name)) x->data[0] = e.poke_value;
    ts[k++] = (gr_ckpt_tensor){t->name, x};
  }
  bool set = false;
  for (size_t i = 0; i < nm; i++) {
    const char *key, *val;
    gr_st_metadata_at(f, i, &key, &val);
    if (e.key && !strcmp(key, e.key)) {
      set = true;
      if (!e.value) continue;
      val = e.value;
    }
    meta[km++] = (gr_st_kv){key, val};
  }
  if (e.key && e.value && !set) meta[km++] = (gr_st_kv){e.key, e.value};
  CHECK_OK(gr_ckpt_save(dst, ts, k, GR_DT_F32, meta, km));
  gr_free(ts), gr_free(meta);
  gr_arena_free(a);
  gr_st_close(f);
}

/* A resume from path must fail with want, naming `words`, and leave the model as built. */
static void refused(const char *path, const char *words, gr_status want, const gr_dataset *tr, const gr_dataset *te,
                    gr_train_cfg cfg, int hidden, gr_optim_cfg oc) {
  run r = make(hidden, oc);
  float *before = gr_malloc((size_t)r.m->numel * sizeof(float));
  memcpy(before, r.m->data, (size_t)r.m->numel * sizeof(float));
  gr_status s = resume_from(path, &r, tr, te, cfg);
  CHECK_MSG(s == want, "%s: got %s (%s), want %s", words, gr_strerror(s), gr_last_error(), gr_strerror(want));
  CHECK_MSG(strstr(gr_last_error(), words) != NULL, "message '%s' does not name '%s'", gr_last_error(), words);
  CHECK_MSG(!memcmp(before, r.m->data, (size_t)r.m->numel * sizeof(float)), "%s: model changed by a refused resume",
            words);
  gr_free(before);
  run_free(&r);
}

int main(void) {
  gr_set_threads(1);
  char full[600], pause[600], bad[600];
  snprintf(full, sizeof full, "%s/resume_full_%d.safetensors", test_tmpdir(), (int)getpid());
  snprintf(pause, sizeof pause, "%s/resume_pause_%d.safetensors", test_tmpdir(), (int)getpid());
  snprintf(bad, sizeof bad, "%s/resume_bad_%d.safetensors", test_tmpdir(), (int)getpid());
  gr_dataset *tr = fixture_blobs(200, 8, 3, 1), *te = fixture_blobs(120, 8, 3, 2);
  gr_rng noise;
  gr_rng_seed(&noise, 3);
  for (int64_t i = 0; i < tr->n; i += 2) tr->y[i] = (int32_t)gr_rng_below(&noise, 3); /* overfitting: a best step */
  gr_train_cfg cfg = base_cfg();

  run a = make(32, adamw()), b = make(32, adamw()), c = make(32, adamw()), plain = make(32, adamw());
  CHECK_OK(gr_train(plain.m, plain.o, tr, te, &cfg, NULL, &plain.res));
  gr_train_cfg ck = cfg;
  ck.ckpt = (gr_train_ckpt){.path = full, .every = 10};
  CHECK_OK(gr_train(a.m, a.o, tr, te, &ck, NULL, &a.res));
  CHECK_MSG(same_run(&a, &plain), "writing checkpoints changed the run");
  CHECK(a.res.best_step != a.res.steps); /* the best-weights restore is part of what must match */
  ck.ckpt = (gr_train_ckpt){.path = pause, .stop_at = PAUSE};
  CHECK_OK(gr_train(b.m, b.o, tr, te, &ck, NULL, &b.res));
  CHECK(b.res.paused && b.res.steps == PAUSE && b.res.eval.n == 0);
  CHECK_OK(resume_from(pause, &c, tr, te, cfg));
  CHECK(c.res.resumed_at == PAUSE && !c.res.paused);
  CHECK_MSG(same_run(&a, &c), "paused at %d + resumed differs from the uninterrupted run", PAUSE);
  run d = make(32, adamw()); /* resuming the final checkpoint only re-evaluates */
  CHECK_OK(resume_from(full, &d, tr, te, cfg));
  CHECK(d.res.resumed_at == TOTAL && same_run(&a, &d));

  /* the state in the file is what makes it equal: another dropout stream or moment differs */
  const char *other_rng = "xoshiro256**:0123456789abcdef:0123456789abcdef:0123456789abcdef:0123456789abcdef:0:00000000";
  rewrite(pause, bad, (edit){.key = "rng.dropout.rank0", .value = other_rng});
  run e = make(32, adamw());
  CHECK_OK(resume_from(bad, &e, tr, te, cfg));
  CHECK_MSG(!same_run(&a, &e), "the dropout generator of the checkpoint made no difference");
  rewrite(pause, bad, (edit){.poke_name = "optimizer.exp_avg_sq.4.weight", .poke_value = 1.0f});
  run g = make(32, adamw());
  CHECK_OK(resume_from(bad, &g, tr, te, cfg));
  CHECK_MSG(!same_run(&a, &g), "the optimizer moments of the checkpoint made no difference");
  run_free(&e), run_free(&g), run_free(&d);

  /* refusals: foreign runs and damaged files */
  gr_train_cfg longer = cfg;
  longer.steps = TOTAL + 10;
  refused(pause, "total steps", GR_EFORMAT, tr, te, longer, 32, adamw());
  gr_train_cfg batch = cfg;
  batch.batch = 32;
  refused(pause, "batch", GR_EFORMAT, tr, te, batch, 32, adamw());
  refused(pause, "optimizer", GR_EFORMAT, tr, te, cfg, 32, gr_sgd_cfg(0.1f, 0.9f, 0, false));
  refused(pause, "'1.weight'", GR_ESHAPE, tr, te, cfg, 16, adamw()); /* another model */
  gr_train_cfg nopat = cfg;
  nopat.patience = 0; /* no best weights in this run: the file's are unexpected */
  refused(pause, "best.", GR_EFORMAT, tr, te, nopat, 32, adamw());
  rewrite(pause, bad, (edit){.key = "checkpoint.version", .value = NULL});
  refused(bad, "not a graft training checkpoint", GR_EFORMAT, tr, te, cfg, 32, adamw());
  rewrite(pause, bad, (edit){.key = "step", .value = "71"});
  refused(bad, "'step'", GR_EFORMAT, tr, te, cfg, 32, adamw());
  rewrite(pause, bad, (edit){.key = "optim.steps", .value = "23,23"});
  refused(bad, "optim.steps", GR_EFORMAT, tr, te, cfg, 32, adamw());
  rewrite(pause, bad, (edit){.key = "rng.loader", .value = "xoshiro256**:0:0:0:0:0:0"});
  refused(bad, "rng state", GR_EFORMAT, tr, te, cfg, 32, adamw());
  rewrite(pause, bad, (edit){.key = "loader.pos", .value = "-1"});
  refused(bad, "loader.pos", GR_EFORMAT, tr, te, cfg, 32, adamw());
  rewrite(pause, bad, (edit){.poke_name = "loader.perm", .poke_value = 5.0f}); /* 5 twice */
  refused(bad, "not a permutation", GR_EFORMAT, tr, te, cfg, 32, adamw());
  rewrite(pause, bad, (edit){.poke_name = "loader.perm", .poke_value = 0.5f});
  refused(bad, "not a permutation", GR_EFORMAT, tr, te, cfg, 32, adamw());
  rewrite(pause, bad, (edit){.drop = "optimizer.exp_avg.4.bias"});
  refused(bad, "optimizer.exp_avg.4.bias", GR_ENOTFOUND, tr, te, cfg, 32, adamw());
  gr_dataset *small = fixture_blobs(100, 8, 3, 1);
  run h = make(32, adamw());
  CHECK_FAILS(resume_from(pause, &h, small, te, cfg) == GR_OK, GR_EFORMAT);
  CHECK(strstr(gr_last_error(), "training samples") != NULL);
  gr_train_cfg nopath = cfg;
  nopath.ckpt.stop_at = 5;
  CHECK_FAILS(gr_train(h.m, h.o, tr, te, &nopath, NULL, &h.res) == GR_OK, GR_EARG);
  run_free(&h);
  gr_dataset_free(small);

  run_free(&a), run_free(&b), run_free(&c), run_free(&plain);
  gr_dataset_free(tr), gr_dataset_free(te);
  unlink(full), unlink(pause), unlink(bad);
  return test_summary();
}
