/* Checkpoints: save/load of named tensors with metadata, shape and name
 * checks, dtype conversion on save, exact RNG state through the text form
 * (a resumed generator continues the same stream), atomic replacement. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "graft/checkpoint.h"
#include "testutil.h"

static void test_save_load(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/ckpt_%d.safetensors", test_tmpdir(), (int)getpid());
  gr_arena *a = gr_arena_new(1 << 16);
  gr_tensor *w = gr_tensor_new_in(a, 2, GR_SHAPE(3, 4), false), *b = gr_tensor_new_in(a, 1, GR_SHAPE(4), false);
  gr_tensor *s = gr_tensor_new_in(a, 0, NULL, false), *m = gr_tensor_new_in(a, 2, GR_SHAPE(3, 4), false);
  gr_rng r;
  gr_rng_seed(&r, 3);
  test_fill(&r, w->data, w->numel, -2, 2);
  test_fill(&r, b->data, b->numel, -2, 2);
  test_fill(&r, m->data, m->numel, -2, 2);
  s->data[0] = 42.5f;
  gr_ckpt_tensor ts[4] = {{"fc.weight", w}, {"fc.bias", b}, {"scale", s}, {"optim.m.fc.weight", m}};
  char rng_text[GR_CKPT_RNG_LEN];
  gr_rng_normal(&r); /* leaves a spare normal: the state includes it */
  gr_ckpt_rng_encode(&r, rng_text);
  gr_st_kv meta[3] = {{"step", "1234"}, {"rng", rng_text}, {"config", "{\"lr\":0.1}"}};
  CHECK_OK(gr_ckpt_save(path, ts, 4, GR_DT_F32, meta, 3));
  /* load into fresh tensors */
  gr_tensor *w2 = gr_tensor_new_in(a, 2, GR_SHAPE(3, 4), false), *b2 = gr_tensor_new_in(a, 1, GR_SHAPE(4), false);
  gr_tensor *s2 = gr_tensor_new_in(a, 0, NULL, false), *m2 = gr_tensor_new_in(a, 2, GR_SHAPE(3, 4), false);
  gr_ckpt_tensor ts2[4] = {{"fc.weight", w2}, {"fc.bias", b2}, {"scale", s2}, {"optim.m.fc.weight", m2}};
  gr_st_file *f = NULL;
  CHECK_OK(gr_st_open(path, &f));
  CHECK(f && gr_st_metadata_get(f, "format") && !strcmp(gr_st_metadata_get(f, "format"), "pt")); /* HF convention */
  CHECK(f && gr_st_metadata_count(f) == 4);
  CHECK_OK(gr_ckpt_load(f, ts2, 4, GR_CKPT_STRICT));
  CHECK(!memcmp(w->data, w2->data, 48) && !memcmp(b->data, b2->data, 16) && s2->data[0] == 42.5f &&
        !memcmp(m->data, m2->data, 48));
  uint64_t step = 0;
  CHECK_OK(gr_ckpt_meta_u64(f, "step", &step));
  CHECK(step == 1234);
  CHECK_FAILS(gr_ckpt_meta_u64(f, "config", &step) == GR_OK, GR_EFORMAT);
  CHECK_FAILS(gr_ckpt_meta_u64(f, "nope", &step) == GR_OK, GR_ENOTFOUND);
  gr_rng r2;
  CHECK_OK(gr_ckpt_meta_rng(f, "rng", &r2));
  bool same = true;
  for (int i = 0; i < 100; i++) same &= gr_rng_normal(&r) == gr_rng_normal(&r2);
  CHECK(same);
  /* strictness: missing, unexpected, shape mismatch; nothing half-loaded */
  gr_tensor *bad = gr_tensor_new_in(a, 2, GR_SHAPE(4, 3), false);
  gr_tensor_fill(w2, 7);
  gr_ckpt_tensor wrong[4] = {{"fc.weight", w2}, {"fc.bias", b2}, {"scale", s2}, {"optim.m.fc.weight", bad}};
  CHECK_FAILS(gr_ckpt_load(f, wrong, 4, GR_CKPT_STRICT) == GR_OK, GR_ESHAPE);
  CHECK(w2->data[0] == 7); /* checked before any write */
  CHECK_FAILS(gr_ckpt_load(f, ts2, 3, GR_CKPT_STRICT) == GR_OK, GR_EFORMAT);
  CHECK_OK(gr_ckpt_load(f, ts2, 3, GR_CKPT_ALLOW_UNEXPECTED));
  gr_ckpt_tensor extra[2] = {{"fc.weight", w2}, {"missing", b2}};
  CHECK_FAILS(gr_ckpt_load(f, extra, 2, GR_CKPT_ALLOW_UNEXPECTED) == GR_OK, GR_ENOTFOUND);
  CHECK_OK(gr_ckpt_load(f, extra, 2, GR_CKPT_ALLOW_UNEXPECTED | GR_CKPT_ALLOW_MISSING));
  gr_st_close(f);
  /* bf16 weights: values round to bf16; a format the caller names is kept */
  gr_st_kv fmt = {"format", "np"};
  CHECK_OK(gr_ckpt_save(path, ts, 1, GR_DT_BF16, &fmt, 1));
  CHECK_OK(gr_st_open(path, &f));
  CHECK(f && gr_st_metadata_count(f) == 1 && !strcmp(gr_st_metadata_get(f, "format"), "np"));
  CHECK(f && gr_st_at(f, 0)->dtype == GR_DT_BF16);
  CHECK_OK(gr_ckpt_load(f, ts2, 1, GR_CKPT_STRICT));
  bool rounded = true;
  for (int i = 0; i < 12; i++) rounded &= w2->data[i] == gr_bf16_to_f32(gr_f32_to_bf16(w->data[i]));
  CHECK(rounded);
  gr_st_close(f);
  /* a failing save leaves the previous file */
  gr_ckpt_tensor dup[2] = {{"x", w}, {"x", b}};
  CHECK_FAILS(gr_ckpt_save(path, dup, 2, GR_DT_F32, NULL, 0) == GR_OK, GR_EFORMAT);
  CHECK_OK(gr_st_open(path, &f));
  CHECK(f && gr_st_count(f) == 1);
  gr_st_close(f);
  unlink(path);
  gr_arena_free(a);
}

static void test_rng_text(void) {
  gr_rng r;
  gr_rng_seed(&r, 99);
  char t[GR_CKPT_RNG_LEN];
  gr_ckpt_rng_encode(&r, t);
  gr_rng back;
  CHECK_OK(gr_ckpt_rng_decode(t, &back));
  CHECK(!memcmp(back.s, r.s, sizeof r.s) && back.has_spare == r.has_spare);
  CHECK_FAILS(gr_ckpt_rng_decode("xoshiro256**:0", &back) == GR_OK, GR_EFORMAT);
  CHECK_FAILS(gr_ckpt_rng_decode("xoshiro256**:0000000000000000:0000000000000000:0000000000000000:0000000000000000:0:00000000", &back) == GR_OK, GR_EFORMAT);
  char trailing[GR_CKPT_RNG_LEN + 2];
  snprintf(trailing, sizeof trailing, "%sx", t);
  CHECK_FAILS(gr_ckpt_rng_decode(trailing, &back) == GR_OK, GR_EFORMAT);
}

/* Doubles in metadata keep every bit (hex floats); garbage is GR_EFORMAT. */
static void test_f64_text(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/ckpt_f64_%d.safetensors", test_tmpdir(), (int)getpid());
  const double v[6] = {0.1, -0.0, INFINITY, 4.9e-324, 1.7976931348623157e308, -3.25};
  char text[6][GR_CKPT_F64_LEN], key[6][16];
  gr_st_kv meta[8];
  for (int i = 0; i < 6; i++) {
    gr_ckpt_f64_encode(v[i], text[i]);
    snprintf(key[i], sizeof key[i], "v%d", i);
    meta[i] = (gr_st_kv){key[i], text[i]};
  }
  meta[6] = (gr_st_kv){"bad", "0x1.8p+1zz"};
  meta[7] = (gr_st_kv){"nan", "nan"};
  CHECK_OK(gr_ckpt_save(path, NULL, 0, GR_DT_F32, meta, 8));
  gr_st_file *f = NULL;
  CHECK_OK(gr_st_open(path, &f));
  for (int i = 0; i < 6; i++) {
    double got = 1;
    CHECK_OK(gr_ckpt_meta_f64(f, key[i], &got));
    CHECK_MSG(!memcmp(&got, &v[i], sizeof got), "%s: %a != %a", key[i], got, v[i]);
  }
  double x;
  CHECK_FAILS(gr_ckpt_meta_f64(f, "bad", &x) == GR_OK, GR_EFORMAT);
  CHECK_FAILS(gr_ckpt_meta_f64(f, "nan", &x) == GR_OK, GR_EFORMAT);
  CHECK_FAILS(gr_ckpt_meta_f64(f, "absent", &x) == GR_OK, GR_ENOTFOUND);
  gr_st_close(f);
  unlink(path);
}

int main(void) {
  test_save_load();
  test_f64_text();
  test_rng_text();
  return test_summary();
}
