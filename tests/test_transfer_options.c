/* Transfer-method options shared by every registry row: a method spec
 * "name:key=value" finds its method, gr_transfer_take_option splits one
 * numeric option out of an options string, and "lr=X" in a run's options
 * sets that run's learning rate and "adapter_lr=K" multiplies the adapter
 * parameters' lr while the method still gets its own options (LoRA's r) and
 * setup_optim never sees either; "adamw=1,warmup=N,cosine=1" switch the
 * run to AdamW with a warmup and cosine-decayed lr, "train_bn=1" trains
 * BatchNorm's affine parameters beside an adapter, "bn_stats=frozen" keeps
 * BatchNorm in eval mode (source running statistics used, not updated) while
 * an adapter trains, "freeze_a=1" (lora) keeps lora_A at its init, "b_lr=K" multiplies the
 * up factor's lr (LoRA+); bad values are errors naming the option. */
#include <math.h>
#include <string.h>

#include "graft/peft.h"
#include "graft/transfer.h"
#include "testmodels.h"
#include "testutil.h"

static void take_option(void) {
  char rest[64];
  double v = -1;
  bool found = true;
  CHECK_OK(gr_transfer_take_option("r=2,lr=0.25,alpha=4", "lr", rest, sizeof rest, &v, &found));
  CHECK(found && v == 0.25 && !strcmp(rest, "r=2,alpha=4"));
  v = -1;
  CHECK_OK(gr_transfer_take_option("r=2", "lr", rest, sizeof rest, &v, &found));
  CHECK(!found && v == -1 && !strcmp(rest, "r=2"));
  CHECK_OK(gr_transfer_take_option(NULL, "lr", rest, sizeof rest, &v, NULL));
  CHECK(rest[0] == 0 && v == -1);
  /* "lrx=1" is another key, not lr */
  CHECK_OK(gr_transfer_take_option("lrx=1,lr=3", "lr", rest, sizeof rest, &v, &found));
  CHECK(found && v == 3 && !strcmp(rest, "lrx=1"));
  CHECK_FAILS(gr_transfer_take_option("lr=abc", "lr", rest, sizeof rest, &v, NULL) == GR_OK, GR_EARG);
  CHECK(strstr(gr_last_error(), "lr=abc") != NULL);
  CHECK_FAILS(gr_transfer_take_option("lr=0.1x", "lr", rest, sizeof rest, &v, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_transfer_take_option("lr=nan", "lr", rest, sizeof rest, &v, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_transfer_take_option("r=2,alpha=4,targets=a;b", "lr", rest, 8, &v, NULL) == GR_OK, GR_EARG);
  CHECK_FAILS(gr_transfer_take_option("lr=1", NULL, rest, sizeof rest, &v, NULL) == GR_OK, GR_EARG);
}

static void find_spec(void) {
  const gr_transfer_method *m = gr_transfer_find("lora:lr=0.1:r=2");
  CHECK(m && !strcmp(m->name, "lora"));
  m = gr_transfer_find("finetune");
  CHECK(m && !strcmp(m->name, "finetune"));
  CHECK(gr_transfer_find("lor:lr=0.1") == NULL);
  CHECK(gr_transfer_find("lorax") == NULL && strstr(gr_last_error(), "lorax") != NULL);
  /* option keys are checked at lookup, before any training: a typo names itself */
  CHECK(gr_transfer_find("corda-kp:samples=64:balanced=0:r=2:lr=0.1:clip=1:adapter_lr=2") != NULL);
  CHECK(gr_transfer_find("finetune-discriminative:backbone_lr=0.5,lr=0.2") != NULL);
  CHECK(gr_transfer_find("finetune-frozen-early:freeze=conv*") != NULL);
  CHECK_FAILS(gr_transfer_find("lora:rank=2") != NULL, GR_EARG);
  CHECK(strstr(gr_last_error(), "'rank=2'") != NULL && strstr(gr_last_error(), "lora") != NULL);
  CHECK_FAILS(gr_transfer_find("finetune:r=2") != NULL, GR_EARG);       /* a PEFT key on a method without it */
  CHECK_FAILS(gr_transfer_find("lora:lr") != NULL, GR_EARG);            /* no value */
  CHECK_FAILS(gr_transfer_find("lora:=2") != NULL, GR_EARG);            /* no key */
  CHECK_FAILS(gr_transfer_find("lora:lr=0.1::r=2") != NULL, GR_EARG);   /* empty option */
  CHECK_FAILS(gr_transfer_find("scratch:lrr=0.1") != NULL, GR_EARG);
  CHECK_FAILS(gr_transfer_find("lora:") != NULL, GR_EARG);              /* ':' with nothing after it */
}

/* "lr=0.5,r=2,adapter_lr=4" on the lora row: the run's lr becomes 0.5,
 * LoRA gets r=2, its A and B train at 4x that lr and the head at 1x. */
static void prepare_with_lr(void) {
  gr_model *src = test_mlp(1, 6, 8, 5), *dst = test_mlp(2, 6, 8, 5);
  gr_train_cfg cfg = {.steps = 1, .batch = 4};
  gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
  gr_transfer_run run = {dst, src, "layers.2", NULL, "lr=0.5,r=2,adapter_lr=4", &cfg, &oc, false, NULL, NULL};
  const gr_transfer_method *meth = gr_transfer_find("lora");
  CHECK_OK(gr_transfer_prepare(meth, &run));
  CHECK_NEAR(oc.lr, 0.5, 1e-7);
  CHECK(cfg.clip_norm == 0);
  CHECK(!strcmp(run.options, "lr=0.5,r=2,adapter_lr=4")); /* the caller's string is left as given */
  gr_module *l0 = gr_module_find(dst->root, "layers.0");
  CHECK(l0 && gr_lora_is(l0) && gr_lora_rank(l0) == 2);
  gr_optim *o = gr_optim_new(dst, &oc);
  CHECK(o != NULL);
  if (o) {
    CHECK_OK(gr_transfer_prepare_optim(meth, &run, o));
    CHECK_NEAR(oc.lr, 0.5, 1e-7);
    int n_adapter = 0;
    for (int i = 0; i < o->n; i++) {
      bool adapter = strstr(dst->entries[i].name, ".lora_") != NULL;
      n_adapter += adapter;
      CHECK_MSG(o->lr_scale[i] == (adapter ? 4.0f : 1.0f), "%s: lr scale %g", dst->entries[i].name, o->lr_scale[i]);
    }
    CHECK(n_adapter == 2);
  }
  gr_optim_free(o);
  /* finetune-discriminative reads backbone_lr itself; lr= beside it is taken out first */
  gr_model *d2 = test_mlp(3, 6, 8, 5);
  gr_optim_cfg oc2 = gr_sgd_cfg(0.01f, 0.9f, 0, false);
  gr_transfer_run r2 = {d2, src, "layers.2", NULL, "lr=0.2,backbone_lr=0.5", &cfg, &oc2, false, NULL, NULL};
  const gr_transfer_method *disc = gr_transfer_find("finetune-discriminative");
  r2.options = "lr=0.2,backbone_lr=0.5,clip=1.5";
  CHECK_OK(gr_transfer_prepare(disc, &r2));
  {
    gr_optim *bad = gr_optim_new(d2, &oc2);
    gr_transfer_run r5 = r2;
    r5.options = "backbone_lr=0.5x";
    CHECK(bad != NULL);
    if (bad) CHECK_FAILS(gr_transfer_prepare_optim(disc, &r5, bad) == GR_OK, GR_EARG); /* was read as 0.5 */
    gr_optim_free(bad);
  }
  CHECK_NEAR(oc2.lr, 0.2, 1e-7);
  CHECK_NEAR(cfg.clip_norm, 1.5, 1e-7);
  gr_optim *o2 = gr_optim_new(d2, &oc2);
  CHECK(o2 != NULL);
  if (o2) {
    CHECK_OK(gr_transfer_prepare_optim(disc, &r2, o2));
    float lo = 1, hi = 0;
    for (int i = 0; i < o2->n; i++) lo = fminf(lo, o2->lr_scale[i]), hi = fmaxf(hi, o2->lr_scale[i]);
    CHECK_NEAR(lo, 0.5, 1e-7);
    CHECK_NEAR(hi, 1.0, 1e-7);
  }
  gr_optim_free(o2);
  /* adapter_lr on a method without adapters is an error, not a silent no-op */
  gr_model *d4 = test_mlp(5, 6, 8, 5);
  gr_transfer_run r4 = {d4, src, "layers.2", NULL, "adapter_lr=2", &cfg, &oc2, false, NULL, NULL};
  const gr_transfer_method *ft = gr_transfer_find("finetune");
  CHECK_OK(gr_transfer_prepare(ft, &r4));
  gr_optim *o4 = gr_optim_new(d4, &oc2);
  CHECK(o4 != NULL);
  if (o4) CHECK_FAILS(gr_transfer_prepare_optim(ft, &r4, o4) == GR_OK, GR_EARG);
  gr_optim_free(o4);
  gr_model_free(d4);
  /* a bad lr is an error naming the option; the model is left alone */
  gr_model *d3 = test_mlp(4, 6, 8, 5);
  gr_transfer_run r3 = {d3, src, "layers.2", NULL, "r=2,lr=-1", &cfg, &oc, false, NULL, NULL};
  CHECK_FAILS(gr_transfer_prepare(meth, &r3) == GR_OK, GR_EARG);
  CHECK(strstr(gr_last_error(), "lr=-1") != NULL);
  CHECK(!gr_lora_is(gr_module_find(d3->root, "layers.0")));
  gr_model_free(src), gr_model_free(dst), gr_model_free(d2), gr_model_free(d3);
}

/* The PEFT recipe options: AdamW at the run's lr (weight decay 0), linear
 * warmup from 0 over N steps, cosine decay to 0; LoRA still gets r; a second
 * pass (prepare_optim) changes neither config. */
static void prepare_recipe(void) {
  gr_model *src = test_mlp(1, 6, 8, 5), *dst = test_mlp(2, 6, 8, 5);
  gr_train_cfg cfg = {.steps = 1, .batch = 4};
  gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
  gr_transfer_run run = {dst, src, "layers.2", NULL, "adamw=1,lr=0.003,warmup=10,r=2,cosine=1", &cfg, &oc, false,
                         NULL, NULL};
  const gr_transfer_method *meth = gr_transfer_find("lora");
  CHECK_OK(gr_transfer_prepare(meth, &run));
  CHECK(oc.kind == GR_OPT_ADAMW && oc.weight_decay == 0 && oc.beta1 == 0.9f && oc.beta2 == 0.999f);
  CHECK_NEAR(oc.lr, 0.003, 1e-9);
  CHECK(cfg.sched.kind == GR_SCHED_COSINE && cfg.sched.warmup_steps == 10 && cfg.sched.warmup_start == 0);
  CHECK(cfg.sched.min_lr == 0);
  CHECK(gr_lora_rank(gr_module_find(dst->root, "layers.0")) == 2);
  gr_optim *o = gr_optim_new(dst, &oc);
  CHECK(o != NULL);
  gr_train_cfg before = cfg;
  if (o) CHECK_OK(gr_transfer_prepare_optim(meth, &run, o));
  CHECK(o && o->cfg.kind == GR_OPT_ADAMW && oc.kind == GR_OPT_ADAMW && !memcmp(&before, &cfg, sizeof cfg));
  gr_optim_free(o);
  /* without the options nothing changes: SGD, constant lr */
  gr_model *d2 = test_mlp(3, 6, 8, 5);
  gr_train_cfg cfg2 = {.steps = 1, .batch = 4};
  gr_optim_cfg oc2 = gr_sgd_cfg(0.01f, 0.9f, 0, false);
  gr_transfer_run r2 = {d2, src, "layers.2", NULL, "r=2", &cfg2, &oc2, false, NULL, NULL};
  CHECK_OK(gr_transfer_prepare(meth, &r2));
  CHECK(oc2.kind == GR_OPT_SGD && oc2.momentum == 0.9f && cfg2.sched.kind == GR_SCHED_CONSTANT);
  CHECK(cfg2.sched.warmup_steps == 0);
  /* bad values name the option and leave the model alone */
  const char *bad[] = {"adamw=2", "cosine=0.5", "warmup=1.5", "warmup=-3"};
  for (int i = 0; i < 4; i++) {
    gr_model *d3 = test_mlp(4, 6, 8, 5);
    gr_transfer_run r3 = {d3, src, "layers.2", NULL, bad[i], &cfg2, &oc2, false, NULL, NULL};
    CHECK_FAILS(gr_transfer_prepare(meth, &r3) == GR_OK, GR_EARG);
    CHECK_MSG(strstr(gr_last_error(), "adamw=") != NULL, "%s: %s", bad[i], gr_last_error());
    CHECK(!gr_lora_is(gr_module_find(d3->root, "layers.0")));
    gr_model_free(d3);
  }
  gr_model_free(src), gr_model_free(dst), gr_model_free(d2);
}

static gr_model *resnet8(uint64_t seed) {
  gr_model *m = gr_model_new(seed);
  gr_module *root = m ? gr_arch_build(m, "resnet8", 1, 28, 28, 5) : NULL;
  CHECK(root && gr_model_set_root(m, root) == GR_OK);
  return m;
}

/* "freeze_a=1" on the lora row: every lora_A frozen at its (random) init,
 * lora_B and the head trainable, other options still applied (r=2); the
 * trainable count drops by exactly A's size (r x in of layers.0, the one
 * adapted Linear, the head being layers.2: 2x6);
 * a value other than 0/1 is an error naming the option. */
static void prepare_freeze_a(void) {
  const gr_transfer_method *lora = gr_transfer_find("lora:freeze_a=1");
  CHECK(lora != NULL);
  int64_t trainable[2] = {0, 0};
  const char *opts[] = {"r=2,freeze_a=0", "r=2,freeze_a=1", "r=2,freeze_a=2"};
  for (int fa = 0; fa < 3 && lora; fa++) {
    gr_model *src = test_mlp(1, 6, 8, 5), *dst = test_mlp(2, 6, 8, 5);
    gr_train_cfg cfg = {.steps = 1, .batch = 4};
    gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
    gr_transfer_run run = {dst, src, "layers.2", NULL, opts[fa], &cfg, &oc, false, NULL, NULL};
    if (fa == 2) {
      CHECK_FAILS(gr_transfer_prepare(lora, &run) == GR_OK, GR_EARG);
      CHECK(strstr(gr_last_error(), "freeze_a") != NULL);
    } else {
      CHECK_OK(gr_transfer_prepare(lora, &run));
      gr_module *l0 = gr_module_find(dst->root, "layers.0");
      CHECK(l0 && gr_lora_is(l0) && gr_lora_rank(l0) == 2);
      gr_tensor *a = gr_model_find(dst, "layers.0.lora_A.weight"), *b = gr_model_find(dst, "layers.0.lora_B.weight");
      CHECK(a && b && a->requires_grad == (fa == 0) && b->requires_grad);
      CHECK(gr_model_find(dst, "layers.0.base_layer.weight")->requires_grad == false);
      CHECK(gr_model_find(dst, "layers.2.weight")->requires_grad);
      trainable[fa] = gr_model_param_count(dst, true);
    }
    gr_model_free(src), gr_model_free(dst);
  }
  CHECK_MSG(trainable[0] - trainable[1] == 2 * 6, "freeze_a=1 freezes %lld", (long long)(trainable[0] - trainable[1]));
  CHECK_FAILS(gr_transfer_find("rslora:freeze_a=1") != NULL, GR_EARG); /* the lora and CorDA rows only */
}

/* "train_bn=1" on a PEFT row: ResNet8's BatchNorm affine parameters (16 +
 * 2x16 + 3x32 + 3x64 channels, weight and bias: 672) train too; a model
 * without BatchNorm or a value other than 0/1 is an error. */
static void prepare_train_bn(void) {
  const gr_arch_info *arch = gr_arch_lookup("resnet8");
  const gr_transfer_method *lora = gr_transfer_find("lora");
  int64_t trainable[2] = {0, 0};
  gr_model *src = resnet8(1);
  for (int bn = 0; bn < 2; bn++) {
    gr_model *dst = resnet8(2);
    gr_train_cfg cfg = {.steps = 1, .batch = 4};
    gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
    gr_transfer_run run = {dst, src, arch->head, arch->early, bn ? "r=1,train_bn=1" : "r=1", &cfg, &oc, false, NULL, NULL};
    CHECK_OK(gr_transfer_prepare(lora, &run));
    trainable[bn] = gr_model_param_count(dst, true);
    gr_model_free(dst);
  }
  CHECK_MSG(trainable[1] - trainable[0] == 672, "train_bn adds %lld", (long long)(trainable[1] - trainable[0]));
  gr_model *mlp = test_mlp(2, 6, 8, 5), *msrc = test_mlp(1, 6, 8, 5);
  gr_train_cfg cfg = {.steps = 1, .batch = 4};
  gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
  gr_transfer_run run = {mlp, msrc, "layers.2", NULL, "r=2,train_bn=1", &cfg, &oc, false, NULL, NULL};
  CHECK_FAILS(gr_transfer_prepare(lora, &run) == GR_OK, GR_ENOTFOUND);
  CHECK(strstr(gr_last_error(), "BatchNorm2d") != NULL);
  gr_model_free(mlp);
  mlp = test_mlp(2, 6, 8, 5);
  run.model = mlp, run.options = "r=2,train_bn=2";
  CHECK_FAILS(gr_transfer_prepare(lora, &run) == GR_OK, GR_EARG);
  CHECK(strstr(gr_last_error(), "train_bn") != NULL);
  gr_model_free(mlp), gr_model_free(msrc), gr_model_free(src);
}

/* The names of the modules LoRA wrapped (one lora_A each), comma-joined. */
static void wrapped(const gr_model *m, char *out, size_t n) {
  size_t k = 0;
  out[0] = 0;
  for (int i = 0; i < m->n_entries; i++) {
    const char *nm = m->entries[i].name, *a = strstr(nm, ".lora_A.");
    if (a && k < n) k += (size_t)snprintf(out + k, n - k, "%s%.*s", k ? "," : "", (int)(a - nm), nm);
  }
}

/* "targets=conv1" matches as PEFT's list does (the path or its dotted
 * suffix: the stem and every block's conv1); "target_regex=conv1" is a full
 * match (the stem alone), alternatives work; a regex matching nothing, an
 * empty one or one with targets= too is an error naming it. */
static void prepare_target_regex(void) {
  const gr_arch_info *arch = gr_arch_lookup("resnet8");
  const gr_transfer_method *lora = gr_transfer_find("lora");
  static const struct { const char *opts, *want; } cases[] = {
      {"r=1,targets=conv1", "conv1,layer1.0.conv1,layer2.0.conv1,layer3.0.conv1"},
      {"r=1,target_regex=conv1", "conv1"},
      {"r=1,target_regex=conv1|layer3\\.0\\.conv.", "conv1,layer3.0.conv1,layer3.0.conv2"},
  };
  gr_model *src = resnet8(1);
  char got[512];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    gr_model *dst = resnet8(2);
    gr_train_cfg cfg = {.steps = 1, .batch = 4};
    gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
    gr_transfer_run run = {dst, src, arch->head, arch->early, cases[i].opts, &cfg, &oc, false, NULL, NULL};
    CHECK_OK(gr_transfer_prepare(lora, &run));
    wrapped(dst, got, sizeof got);
    CHECK_MSG(!strcmp(got, cases[i].want), "%s wrapped %s, want %s", cases[i].opts, got, cases[i].want);
    gr_model_free(dst);
  }
  static const struct { const char *opts, *names; gr_status st; } bad[] = {
      {"r=1,target_regex=conv9", "conv9", GR_ENOTFOUND},
      {"r=1,target_regex=", "target_regex", GR_EARG},
      {"r=1,targets=conv1,target_regex=conv1", "target_regex", GR_EARG},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    gr_model *dst = resnet8(2);
    gr_train_cfg cfg = {.steps = 1, .batch = 4};
    gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
    gr_transfer_run run = {dst, src, arch->head, arch->early, bad[i].opts, &cfg, &oc, false, NULL, NULL};
    CHECK_FAILS(gr_transfer_prepare(lora, &run) == GR_OK, bad[i].st);
    CHECK_MSG(strstr(gr_last_error(), bad[i].names) != NULL, "%s: error '%s'", bad[i].opts, gr_last_error());
    gr_model_free(dst);
  }
  gr_model_free(src);
}

/* ResNet8 adapted by LoRA for 3 steps on random images: with opts holding
 * bn_stats=frozen (frozen=true) the running statistics stay the source's
 * (set to non-trivial values first) and a training-mode forward equals the
 * inference forward; without it they move and the two forwards differ. With
 * train_bn=1 the affine parameters train either way. */
static void bn_stats_run(const char *opts, bool frozen) {
  const gr_arch_info *arch = gr_arch_lookup("resnet8");
  gr_model *src = resnet8(1), *dst = resnet8(2);
  for (int i = 0; i < src->n_entries; i++) {
    gr_named_tensor *e = &src->entries[i];
    bool var = strstr(e->name, "running_var") != NULL;
    if (e->buffer && (var || strstr(e->name, "running_mean")))
      for (int64_t k = 0; k < e->t->numel; k++) e->t->data[k] = var ? 0.5f + 0.1f * (float)(k % 7) : 0.05f * (float)(k % 5) - 0.1f;
  }
  gr_dataset *ds = gr_dataset_new(8, 1, 28, 28, 5);
  for (int64_t k = 0; k < 8 * 784; k++) ds->x[k] = (float)sin(0.37 * (double)k) + 0.3f;
  for (int k = 0; k < 8; k++) ds->y[k] = k % 5;
  gr_train_cfg cfg = {.steps = 3, .batch = 4, .seed = 1};
  gr_optim_cfg oc = gr_sgd_cfg(0.05f, 0.9f, 0, false);
  gr_transfer_run run = {dst, src, arch->head, arch->early, opts, &cfg, &oc, false, NULL, NULL};
  const gr_transfer_method *lora = gr_transfer_find("lora");
  CHECK_OK(gr_transfer_prepare(lora, &run));
  gr_optim *o = gr_optim_new(dst, &oc);
  CHECK(o != NULL);
  gr_train_result res = {0};
  if (o) CHECK_OK(gr_transfer_prepare_optim(lora, &run, o));
  if (o) CHECK_OK(gr_train(dst, o, ds, NULL, &cfg, NULL, &res));
  int stats = 0, stats_moved = 0, affine = 0, affine_moved = 0;
  for (int i = 0; i < src->n_entries; i++) {
    const gr_named_tensor *e = &src->entries[i];
    if (!e->owner || !e->owner->kind || strcmp(e->owner->kind, "BatchNorm2d")) continue;
    gr_tensor *t = gr_model_find(dst, e->name);
    CHECK_MSG(t != NULL, "%s not in the adapted model", e->name);
    if (!t) continue;
    bool moved = memcmp(t->data, e->t->data, (size_t)t->numel * sizeof(float)) != 0;
    if (e->buffer) stats++, stats_moved += moved;
    else affine++, affine_moved += moved;
  }
  CHECK_MSG(stats == 18 && affine == 18, "%d running statistics, %d affine tensors", stats, affine);
  CHECK_MSG(frozen ? stats_moved == 0 : stats_moved == stats, "%s: %d of %d running statistics moved", opts,
            stats_moved, stats);
  CHECK_MSG(affine_moved == affine, "%s: %d of %d affine tensors trained", opts, affine_moved, affine);
  /* the training-mode forward (grad on, not inference) against inference */
  gr_ctx *c = gr_ctx_new(1 << 24, 0);
  gr_tensor *x = NULL, *y[2] = {NULL, NULL};
  const int32_t *lab = NULL;
  CHECK_OK(gr_dataset_batch(ds, c, 0, 4, &x, &lab));
  for (int inf = 0; inf < 2 && x; inf++) {
    dst->inference = inf == 1;
    gr_ctx_set_grad(c, inf == 0);
    y[inf] = gr_model_forward(dst, c, x);
  }
  dst->inference = false;
  CHECK(y[0] && y[1]);
  if (y[0] && y[1]) {
    double diff = 0;
    for (int64_t k = 0; k < y[0]->numel; k++) diff = fmax(diff, fabs((double)y[0]->data[k] - y[1]->data[k]));
    CHECK_MSG(frozen ? diff <= 1e-5 : diff > 1e-3, "%s: training and inference forward differ by %g", opts, diff);
  }
  gr_ctx_free(c), gr_optim_free(o), gr_dataset_free(ds), gr_model_free(dst), gr_model_free(src);
}

/* "bn_stats=frozen" on PEFT rows; a model without BatchNorm or another value
 * is an error naming the option; the spec key is known to the PEFT rows and
 * CorDA, not to finetune. */
static void prepare_bn_stats(void) {
  bn_stats_run("r=1,train_bn=1,bn_stats=frozen", true);
  bn_stats_run("r=1,train_bn=1", false);
  bn_stats_run("r=1,train_bn=1,bn_stats=train", false);
  CHECK(gr_transfer_find("corda-kp:bn_stats=frozen:r=2") != NULL);
  CHECK(gr_transfer_find("adapter-par:bn_stats=frozen") != NULL);
  CHECK_FAILS(gr_transfer_find("finetune:bn_stats=frozen") != NULL, GR_EARG);
  gr_model *msrc = test_mlp(1, 6, 8, 5);
  const char *bad[] = {"r=2,bn_stats=frozen", "r=2,bn_stats=fro", "r=2,bn_stats=frozenx", "r=2,bn_stats="};
  for (int i = 0; i < 4; i++) {
    gr_model *mlp = test_mlp(2, 6, 8, 5);
    gr_train_cfg cfg = {.steps = 1, .batch = 4};
    gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
    gr_transfer_run run = {mlp, msrc, "layers.2", NULL, bad[i], &cfg, &oc, false, NULL, NULL};
    CHECK_FAILS(gr_transfer_prepare(gr_transfer_find("lora"), &run) == GR_OK, i ? GR_EARG : GR_ENOTFOUND);
    CHECK_MSG(strstr(gr_last_error(), "bn_stats") != NULL, "%s: %s", bad[i], gr_last_error());
    gr_model_free(mlp);
  }
  gr_model_free(msrc);
}

/* lr scale of each parameter after prepare + prepare_optim of spec on a
 * fresh MLP; the scale of every entry into scale[] (NULL on failure). */
static gr_status prepare_scales(const char *spec, const char *opts, float *scale, int n) {
  gr_model *src = test_mlp(1, 6, 8, 5), *dst = test_mlp(2, 6, 8, 5);
  gr_train_cfg cfg = {.steps = 1, .batch = 4};
  gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
  gr_transfer_run run = {dst, src, "layers.2", NULL, opts, &cfg, &oc, false, NULL, NULL};
  const gr_transfer_method *m = gr_transfer_find(spec);
  gr_status s = m ? gr_transfer_prepare(m, &run) : gr_last_status();
  gr_optim *o = s ? NULL : gr_optim_new(dst, &oc);
  if (!s && !o) s = gr_last_status();
  if (!s) s = gr_transfer_prepare_optim(m, &run, o);
  for (int i = 0; !s && i < n; i++) scale[i] = i < o->n ? o->lr_scale[i] : -1;
  CHECK(s || o->n <= n);
  gr_optim_free(o);
  gr_model_free(src), gr_model_free(dst);
  return s;
}

/* "b_lr=K" (LoRA+): the up factor (lora_B, adapter_up) trains at K times
 * the rest of the adapter, on top of adapter_lr; the head and the down
 * factor keep theirs; a model without an up factor or K <= 0 is an error. */
static void prepare_b_lr(void) {
  float sc[64];
  gr_model *names = test_mlp(2, 6, 8, 5);
  CHECK_OK(prepare_scales("lora", "r=2,adapter_lr=2,b_lr=4", sc, 64));
  {
    gr_train_cfg cfg = {.steps = 1, .batch = 4};
    gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
    gr_model *src = test_mlp(1, 6, 8, 5);
    gr_transfer_run run = {names, src, "layers.2", NULL, "r=2", &cfg, &oc, false, NULL, NULL};
    CHECK_OK(gr_transfer_prepare(gr_transfer_find("lora"), &run));
    gr_model_free(src);
  }
  int n_a = 0, n_b = 0;
  for (int i = 0; i < names->n_entries && i < 64; i++) {
    const char *nm = names->entries[i].name;
    bool a = strstr(nm, ".lora_A.") != NULL, b = strstr(nm, ".lora_B.") != NULL;
    n_a += a, n_b += b;
    CHECK(gr_peft_param_is_up(&names->entries[i]) == b);
    if (!names->entries[i].buffer)
      CHECK_MSG(sc[i] == (b ? 8.0f : a ? 2.0f : 1.0f), "%s: lr scale %g", nm, sc[i]);
  }
  CHECK(n_a == 1 && n_b == 1);
  gr_model_free(names);
  /* the parallel adapter: adapter_up (weight and bias) at b_lr, adapter_down at 1 */
  CHECK_OK(prepare_scales("adapter-par", "r=2,b_lr=3", sc, 64));
  gr_model *ad = test_mlp(2, 6, 8, 5), *src = test_mlp(1, 6, 8, 5);
  gr_train_cfg cfg = {.steps = 1, .batch = 4};
  gr_optim_cfg oc = gr_sgd_cfg(0.01f, 0.9f, 0, false);
  gr_transfer_run run = {ad, src, "layers.2", NULL, "r=2", &cfg, &oc, false, NULL, NULL};
  CHECK_OK(gr_transfer_prepare(gr_transfer_find("adapter-par"), &run));
  int n_up = 0;
  for (int i = 0; i < ad->n_entries && i < 64; i++) {
    bool up = strstr(ad->entries[i].name, ".adapter_up.") != NULL;
    n_up += up;
    if (!ad->entries[i].buffer)
      CHECK_MSG(sc[i] == (up ? 3.0f : 1.0f), "%s: lr scale %g", ad->entries[i].name, sc[i]);
  }
  CHECK(n_up == 2);
  gr_model_free(ad), gr_model_free(src);
  /* no up factor to act on, or a factor <= 0: errors naming b_lr */
  CHECK_FAILS(prepare_scales("finetune", "b_lr=2", sc, 64) == GR_OK, GR_EARG);
  CHECK(strstr(gr_last_error(), "b_lr") != NULL);
  CHECK_FAILS(prepare_scales("ia3", "b_lr=2", sc, 64) == GR_OK, GR_EARG);
  CHECK_FAILS(prepare_scales("lora", "r=2,b_lr=0", sc, 64) == GR_OK, GR_EARG);
  CHECK(strstr(gr_last_error(), "b_lr") != NULL);
  CHECK_OK(prepare_scales("finetune", "b_lr=1", sc, 64)); /* 1 changes nothing, allowed anywhere */
  CHECK(gr_transfer_find("lora:b_lr=16:lr=0.01") != NULL);
}

int main(void) {
  take_option();
  prepare_b_lr();
  find_spec();
  prepare_with_lr();
  prepare_recipe();
  prepare_freeze_a();
  prepare_train_bn();
  prepare_bn_stats();
  prepare_target_regex();
  return test_summary();
}
