/* safetensors reader/writer: golden bytes from the reference crate's tests,
 * the writer's order, reader error parity with each crafted case of the
 * crate, duplicates and reserved names, exact round trips for every dtype,
 * f16/bf16 rounding against numpy/torch, byte parity with an independent
 * Python writer (tests/ref/safetensors_writer.py, run at test time), the
 * streaming API and atomic replacement. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/safetensors.h"
#include "refdata.h"
#include "testutil.h"

static char *tmp_path(const char *name) {
  static char buf[8][512];
  static int k;
  char *p = buf[k++ % 8];
  snprintf(p, 512, "%s/st_%d_%s", test_tmpdir(), (int)getpid(), name);
  return p;
}

/* Expects gr_st_parse of buf to fail with kind (and the Rust variant rust). */
static void expect_kind(const char *what, const void *buf, size_t len, gr_st_err kind, const char *rust) {
  gr_st_file *f = NULL;
  gr_status st = gr_st_parse(buf, len, what, &f);
  test_checks++;
  if (st != GR_EFORMAT || gr_st_last_err() != kind || f)
    test_fail(__FILE__, __LINE__, "%s: expected %s, got status %s kind %s (%s)", what, gr_st_err_name(kind),
              gr_strerror(st), gr_st_err_name(gr_st_last_err()), gr_last_error());
  if (rust) CHECK_MSG(gr_st_err_rust(kind) && !strcmp(gr_st_err_rust(kind), rust), "%s: rust variant", what);
  gr_st_close(f);
}

static gr_st_file *expect_ok(const char *what, const void *buf, size_t len) {
  gr_st_file *f = NULL;
  gr_status st = gr_st_parse(buf, len, what, &f);
  CHECK_MSG(st == GR_OK && f, "%s: expected a valid parse, got %s (%s)", what, gr_st_err_name(gr_st_last_err()),
            gr_last_error());
  return f;
}

#define LIT(s) s, sizeof(s) - 1

static void test_golden_bytes(void) {
  uint8_t *h;
  size_t n;
  static const uint8_t empty[] = {8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32};
  CHECK_OK(gr_st_header_bytes(NULL, 0, NULL, 0, &h, &n));
  CHECK(n == sizeof empty && !memcmp(h, empty, n));
  gr_free(h);
  static const uint8_t empty_meta[] = {40,  0,   0,   0,   0,   0,   0,   0,   123, 34,  95,  95,  109, 101, 116, 97,
                                       100, 97,  116, 97,  95,  95,  34,  58,  123, 34,  102, 114, 97,  109, 101, 119,
                                       111, 114, 107, 34,  58,  34,  112, 116, 34,  125, 125, 32,  32,  32,  32,  32};
  gr_st_kv fw = {"framework", "pt"};
  CHECK_OK(gr_st_header_bytes(NULL, 0, &fw, 1, &h, &n));
  CHECK(n == sizeof empty_meta && !memcmp(h, empty_meta, n));
  gr_free(h);
  /* test_serialization_forced_alignement: F32 [1,1,2,3] "attn0" */
  static const uint8_t forced[] = {
      72,  0,   0,   0,   0,   0,   0,  0,   123, 34,  97,  116, 116, 110, 48,  34,  58,  123, 34,  100, 116, 121,
      112, 101, 34,  58,  34,  70,  51, 50,  34,  44,  34,  115, 104, 97,  112, 101, 34,  58,  91,  49,  44,  49,
      44,  50,  44,  51,  93,  44,  34, 100, 97,  116, 97,  95,  111, 102, 102, 115, 101, 116, 115, 34,  58,  91,
      48,  44,  50,  52,  93,  125, 125, 32, 32,  32,  32,  32,  32,  32,  0,   0,   0,   0,   0,   0,   128, 63,
      0,   0,   0,   64,  0,   0,   64,  64, 0,   0,   128, 64,  0,   0,   160, 64};
  float vals[6] = {0, 1, 2, 3, 4, 5};
  gr_st_entry e = {"attn0", GR_DT_F32, 4, GR_SHAPE(1, 1, 2, 3)};
  const void *datas[1] = {vals};
  const char *p = tmp_path("forced.safetensors");
  CHECK_OK(gr_st_save(p, &e, datas, 1, NULL, 0));
  uint8_t *b = test_read_file(p, &n);
  CHECK(b && n == sizeof forced && !memcmp(b, forced, n));
  gr_st_file *f = NULL;
  CHECK_OK(gr_st_open(p, &f));
  const gr_st_tensor *t = f ? gr_st_find(f, "attn0") : NULL;
  CHECK_PTR(t);
  if (t) CHECK((uintptr_t)t->data % 4 == 0 && t->file_offset == 80 && t->numel == 6);
  gr_st_close(f);
  free(b);
  unlink(p);
  /* test_serialization: "attn.0" F32 [1,2,3]: 64-byte header, no padding */
  gr_st_entry e2 = {"attn.0", GR_DT_F32, 3, GR_SHAPE(1, 2, 3)};
  CHECK_OK(gr_st_header_bytes(&e2, 1, NULL, 0, &h, &n));
  CHECK(n == 72 && h[0] == 64 && !memcmp(h + 8, "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", 64));
  gr_free(h);
}

static void test_writer_order(void) {
  const char *names[] = {"b", "i8", "h", "bf", "f", "d", "l", "f_a", "h0"};
  gr_dtype dts[] = {GR_DT_BOOL, GR_DT_I8, GR_DT_F16, GR_DT_BF16, GR_DT_F32, GR_DT_F64, GR_DT_I64, GR_DT_F32, GR_DT_F16};
  int64_t lens[] = {3, 5, 3, 1, 7, 1, 2, 2, 1};
  gr_st_entry e[9];
  const void *datas[9];
  static uint8_t zeros[64];
  for (int i = 0; i < 9; i++) {
    e[i] = (gr_st_entry){names[i], dts[i], 1, &lens[i]};
    datas[i] = zeros;
  }
  const char *p = tmp_path("order.safetensors");
  CHECK_OK(gr_st_save(p, e, datas, 9, NULL, 0));
  gr_st_file *f = NULL;
  CHECK_OK(gr_st_open(p, &f));
  const char *want[] = {"l", "d", "f", "f_a", "bf", "h", "h0", "i8", "b"}; /* I64 F64 F32 F32 BF16 F16 F16 I8 BOOL */
  for (size_t i = 0; f && i < gr_st_count(f); i++) {
    const gr_st_tensor *t = gr_st_at(f, i);
    CHECK_MSG(!strcmp(t->name, want[i]), "position %zu: %s, want %s", i, t->name, want[i]);
    CHECK(t->file_offset % (gr_dtype_bits(t->dtype) / 8) == 0);
  }
  gr_st_close(f);
  unlink(p);
}

/* Each crafted file of the crate's tensor.rs tests, with its variant. */
static void test_reader_parity(void) {
  expect_kind("empty buffer", "", 0, GR_ST_HEADER_TOO_SMALL, "HeaderTooSmall");
  expect_kind("7 bytes", LIT("\x01\0\0\0\0\0\0"), GR_ST_HEADER_TOO_SMALL, "HeaderTooSmall");
  expect_kind("N=2^56 huge", LIT("<\x00\x00\x00\x00\xff\xff\xff{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}"),
              GR_ST_HEADER_TOO_LARGE, "HeaderTooLarge");
  expect_kind("N=1e8+1", LIT("\x01\xe1\xf5\x05\0\0\0\0{}"), GR_ST_HEADER_TOO_LARGE, "HeaderTooLarge");
  expect_kind("N beyond file", LIT("<\x00\x00\x00\x00\x00\x00\x00"), GR_ST_INVALID_HEADER_LENGTH, "InvalidHeaderLength");
  expect_kind("non-utf8", LIT("\x01\x00\x00\x00\x00\x00\x00\x00\xff"), GR_ST_INVALID_UTF8, "InvalidHeader");
  expect_kind("overlong utf8", LIT("\x04\0\0\0\0\0\0\0{\xc0\xaf}"), GR_ST_INVALID_UTF8, "InvalidHeader");
  expect_kind("surrogate utf8", LIT("\x05\0\0\0\0\0\0\0{\xed\xa0\x80}"), GR_ST_INVALID_UTF8, "InvalidHeader");
  expect_kind("not json", LIT("\x01\x00\x00\x00\x00\x00\x00\x00{"), GR_ST_BAD_JSON, "InvalidHeaderDeserialization");
  expect_kind("invalid info", LIT("<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0, 4]}}"),
              GR_ST_TENSOR_INVALID_INFO, "TensorInvalidInfo");
  expect_kind("shape overflow",
              LIT("O\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,18446744073709551614],\"data_offsets\":[0,16]}}"
                  "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
              GR_ST_VALIDATION_OVERFLOW, "ValidationOverflow");
  expect_kind("bits overflow",
              LIT("N\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,9223372036854775807],\"data_offsets\":[0,16]}}"
                  "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
              GR_ST_VALIDATION_OVERFLOW, "ValidationOverflow");
  expect_kind("polyglot trailing data",
              LIT("<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}"
                  "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0extra_bogus_data_for_polyglot_file"),
              GR_ST_INCOMPLETE_BUFFER, "MetadataIncompleteBuffer");
  expect_kind("2 bytes short",
              LIT("<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}"
                  "\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
              GR_ST_INCOMPLETE_BUFFER, "MetadataIncompleteBuffer");
  /* test_json_attack: 10 F32 [2,2] tensors all at [0,16], 16 data bytes */
  char hdr[2048] = "{";
  for (int i = 0; i < 10; i++)
    snprintf(hdr + strlen(hdr), sizeof hdr - strlen(hdr), "%s\"weight_%d\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}",
             i ? "," : "", i);
  strcat(hdr, "}");
  size_t hn = strlen(hdr);
  uint8_t file[2048] = {0};
  for (int i = 0; i < 8; i++) file[i] = (uint8_t)(hn >> (8 * i));
  memcpy(file + 8, hdr, hn);
  expect_kind("json attack", file, 8 + hn + 16, GR_ST_INVALID_OFFSET, "InvalidOffset");
  CHECK(strstr(gr_last_error(), "weight_") != NULL); /* names the tensor */
  /* accepted: whitespace on both sides, [2,0] at [0,0], [] at [0,4], and an
   * unknown field inside a tensor entry (serde ignores it) */
  gr_st_file *f = expect_ok("trailing ws", LIT("\x06\x00\x00\x00\x00\x00\x00\x00{}\x0D\x20\x09\x0A"));
  CHECK(f && gr_st_count(f) == 0);
  gr_st_close(f);
  f = expect_ok("leading ws", LIT("\x06\x00\x00\x00\x00\x00\x00\x00\x09\x0A{}\x0D\x20"));
  gr_st_close(f);
  f = expect_ok("zero sized", LIT("<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,0],\"data_offsets\":[0, 0]}}"));
  const gr_st_tensor *t = f ? gr_st_find(f, "test") : NULL;
  CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 0 && t->numel == 0 && t->nbytes == 0);
  gr_st_close(f);
  f = expect_ok("scalar", LIT("8\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}\x07\x00\x00\x00"));
  t = f ? gr_st_find(f, "test") : NULL;
  int32_t v = 0;
  if (t) memcpy(&v, t->data, 4);
  CHECK(t && t->ndim == 0 && t->numel == 1 && v == 7);
  gr_st_close(f);
  expect_kind("NUL padding", LIT("\x08\0\0\0\0\0\0\0{}\0\0\0\0\0\0"), GR_ST_BAD_JSON, "InvalidHeaderDeserialization");
  f = expect_ok("extra field", LIT("\x48\0\0\0\0\0\0\0{\"t\":{\"dtype\":\"U8\",\"x\":[{\"y\":null}],\"shape\":[1],\"data_offsets\":[0,1]}}  \x05"));
  gr_st_close(f);
}

static void test_header_fields(void) {
  char b[512];
#define HDR(json) (snprintf(b + 8, sizeof b - 8, "%s", json), memset(b, 0, 8), b[0] = (char)strlen(json), b), 8 + strlen(json)
  expect_kind("array top", HDR("[]"), GR_ST_NOT_OBJECT, NULL);
  expect_kind("string top", HDR("\"x\""), GR_ST_NOT_OBJECT, NULL);
  expect_kind("entry not object", HDR("{\"a\":1}"), GR_ST_NOT_OBJECT, NULL);
  expect_kind("unknown dtype", HDR("{\"a\":{\"dtype\":\"F33\",\"shape\":[],\"data_offsets\":[0,4]}}"), GR_ST_UNKNOWN_DTYPE, NULL);
  expect_kind("lowercase dtype", HDR("{\"a\":{\"dtype\":\"f32\",\"shape\":[],\"data_offsets\":[0,4]}}"), GR_ST_UNKNOWN_DTYPE, NULL);
  expect_kind("dtype number", HDR("{\"a\":{\"dtype\":5,\"shape\":[],\"data_offsets\":[0,4]}}"), GR_ST_BAD_TENSOR_INFO, NULL);
  expect_kind("missing shape", HDR("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}"), GR_ST_BAD_TENSOR_INFO, NULL);
  expect_kind("negative dim", HDR("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}"), GR_ST_BAD_SHAPE, NULL);
  expect_kind("float dim", HDR("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}"), GR_ST_BAD_SHAPE, NULL);
  expect_kind("exp dim", HDR("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}"), GR_ST_BAD_SHAPE, NULL);
  expect_kind("dim > u64", HDR("{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,4]}}"), GR_ST_BAD_SHAPE, NULL);
  expect_kind("leading zero", HDR("{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}"), GR_ST_BAD_SHAPE, NULL);
  expect_kind("3 offsets", HDR("{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4,8]}}"), GR_ST_BAD_OFFSETS, NULL);
  expect_kind("1 offset", HDR("{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0]}}"), GR_ST_BAD_OFFSETS, NULL);
  expect_kind("meta number", HDR("{\"__metadata__\":{\"a\":1}}"), GR_ST_BAD_METADATA, NULL);
  expect_kind("meta object", HDR("{\"__metadata__\":{\"a\":{}}}"), GR_ST_BAD_METADATA, NULL);
  expect_kind("meta array", HDR("{\"__metadata__\":[]}"), GR_ST_BAD_METADATA, NULL);
  expect_kind("trailing comma", HDR("{\"__metadata__\":{},}"), GR_ST_BAD_JSON, NULL);
  expect_kind("trailing chars", HDR("{} x"), GR_ST_BAD_JSON, NULL);
  expect_kind("lone surrogate", HDR("{\"\\ud800\":{}}"), GR_ST_BAD_JSON, NULL);
  expect_kind("raw control", HDR("{\"a\x01\":{}}"), GR_ST_BAD_JSON, NULL);
  expect_kind("NUL name", HDR("{\"a\\u0000\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,0]}}"), GR_ST_BAD_NAME, NULL);
  /* duplicates: the crate keeps the last entry; graft rejects them all */
  expect_kind("dup tensor", HDR("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}"),
              GR_ST_DUPLICATE_KEY, NULL);
  expect_kind("dup zero-sized", HDR("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}"),
              GR_ST_DUPLICATE_KEY, NULL);
  expect_kind("dup meta key", HDR("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}"), GR_ST_DUPLICATE_KEY, NULL);
  expect_kind("dup __metadata__", HDR("{\"__metadata__\":{},\"__metadata__\":{}}"), GR_ST_DUPLICATE_KEY, NULL);
  expect_kind("dup field", HDR("{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}"), GR_ST_DUPLICATE_KEY, NULL);
  expect_kind("tensor named __metadata__", HDR("{\"__metadata__\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}"),
              GR_ST_BAD_METADATA, NULL);
  expect_kind("end<begin", HDR("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},\"c\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,2]}}"),
              GR_ST_INVALID_OFFSET, NULL);
  expect_kind("hole", HDR("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}"), GR_ST_INVALID_OFFSET, NULL);
  expect_kind("F4 odd", HDR("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}"), GR_ST_MISALIGNED_SLICE, NULL);
  gr_st_file *f = expect_ok("meta null", HDR("{\"__metadata__\":null}"));
  gr_st_close(f);
  f = expect_ok("escapes", HDR("{\"__metadata__\":{\"\\u00e9\\ud83d\\ude00\\n\":\"\\\"\\/\"}}"));
  const char *k = NULL, *v = NULL;
  if (f) gr_st_metadata_at(f, 0, &k, &v);
  CHECK(k && !strcmp(k, "\xc3\xa9\xf0\x9f\x98\x80\n") && v && !strcmp(v, "\"/"));
  gr_st_close(f);
#undef HDR
  /* writer side */
  gr_st_writer *w = NULL;
  gr_st_entry bad = {"__metadata__", GR_DT_F32, 0, NULL};
  CHECK_FAILS(gr_st_writer_begin(tmp_path("x"), &bad, 1, NULL, 0, &w) == GR_OK, GR_EFORMAT);
  CHECK(gr_st_last_err() == GR_ST_RESERVED_NAME && !w);
  gr_st_entry two[2] = {{"a", GR_DT_F32, 0, NULL}, {"a", GR_DT_F16, 0, NULL}};
  CHECK_FAILS(gr_st_writer_begin(tmp_path("x"), two, 2, NULL, 0, &w) == GR_OK, GR_EFORMAT);
  CHECK(gr_st_last_err() == GR_ST_DUPLICATE_KEY);
  gr_st_entry latin1 = {"caf\xe9", GR_DT_F32, 0, NULL};
  CHECK_FAILS(gr_st_writer_begin(tmp_path("x"), &latin1, 1, NULL, 0, &w) == GR_OK, GR_EFORMAT);
  CHECK(gr_st_last_err() == GR_ST_BAD_NAME);
  gr_st_kv badv = {"k", "\xff"};
  CHECK_FAILS(gr_st_writer_begin(tmp_path("x"), NULL, 0, &badv, 1, &w) == GR_OK, GR_EFORMAT);
  CHECK(gr_st_last_err() == GR_ST_BAD_NAME);
  gr_st_kv dupm[2] = {{"k", "1"}, {"k", "2"}};
  CHECK_FAILS(gr_st_writer_begin(tmp_path("x"), NULL, 0, dupm, 2, &w) == GR_OK, GR_EFORMAT);
  CHECK(gr_st_last_err() == GR_ST_DUPLICATE_KEY);
  char *big = malloc(GR_ST_MAX_HEADER + 1);
  memset(big, 'a', GR_ST_MAX_HEADER);
  big[GR_ST_MAX_HEADER] = 0;
  gr_st_kv bigm = {"very_large_metadata", big};
  CHECK_FAILS(gr_st_writer_begin(tmp_path("x"), NULL, 0, &bigm, 1, &w) == GR_OK, GR_EFORMAT);
  CHECK(gr_st_last_err() == GR_ST_HEADER_TOO_LARGE);
  free(big);
  CHECK(access(tmp_path("x"), F_OK) != 0);
}

/* Every dtype, shapes incl. scalar and zero-size: bytes survive exactly. */
static void test_roundtrip_all_dtypes(void) {
  gr_st_entry e[GR_DT_COUNT * 3];
  const void *datas[GR_DT_COUNT * 3];
  uint8_t *bufs[GR_DT_COUNT * 3];
  char names[GR_DT_COUNT * 3][32];
  static const int64_t shapes[3][3] = {{0}, {3, 0, 2}, {2, 3, 4}};
  static const int ndims[3] = {0, 3, 3};
  gr_rng r;
  gr_rng_seed(&r, 5);
  size_t n = 0;
  for (int dt = 0; dt < GR_DT_COUNT; dt++)
    for (int s = 0; s < 3; s++) {
      uint64_t numel = 1;
      for (int d = 0; d < ndims[s]; d++) numel *= (uint64_t)shapes[s][d];
      if (numel * gr_dtype_bits((gr_dtype)dt) % 8) continue; /* F6 scalar: not whole bytes */
      size_t nb = numel * gr_dtype_bits((gr_dtype)dt) / 8;
      bufs[n] = malloc(nb + 1);
      for (size_t i = 0; i < nb; i++) bufs[n][i] = (uint8_t)gr_rng_next(&r);
      snprintf(names[n], sizeof names[n], "%s.%d", gr_dtype_name((gr_dtype)dt), s);
      e[n] = (gr_st_entry){names[n], (gr_dtype)dt, ndims[s], shapes[s]};
      datas[n] = bufs[n];
      n++;
    }
  const char *p = tmp_path("alldt.safetensors");
  gr_st_kv meta[2] = {{"format", "pt"}, {"step", "12"}};
  CHECK_OK(gr_st_save(p, e, datas, n, meta, 2));
  gr_st_file *f = NULL;
  CHECK_OK(gr_st_open(p, &f));
  CHECK(f && gr_st_count(f) == n);
  for (size_t i = 0; f && i < n; i++) {
    const gr_st_tensor *t = gr_st_find(f, names[i]);
    CHECK_MSG(t && t->dtype == e[i].dtype && t->ndim == e[i].ndim, "tensor %s", names[i]);
    if (!t) continue;
    bool same = true;
    for (int d = 0; d < t->ndim; d++) same &= t->shape[d] == (uint64_t)e[i].shape[d];
    same &= !memcmp(t->data, bufs[i], (size_t)t->nbytes);
    CHECK_MSG(same, "tensor %s: shape or bytes differ", names[i]);
  }
  CHECK(f && !strcmp(gr_st_metadata_get(f, "step"), "12") && gr_st_metadata_get(f, "nope") == NULL);
  CHECK_FAILS(gr_st_find(f, "nope") != NULL, GR_ENOTFOUND);
  CHECK(gr_st_last_err() == GR_ST_NOT_FOUND);
  gr_st_close(f);
  for (size_t i = 0; i < n; i++) free(bufs[i]);
  unlink(p);
}

/* f32 -> f16/bf16 bits and back, against numpy / torch. */
static void test_half_rounding(void) {
  ref_file *rf = ref_open("st_half");
  CHECK_PTR(rf);
  if (!rf) return;
  const ref_array *x = ref_get(rf, "x"), *h = ref_get(rf, "f16bits"), *b = ref_get(rf, "bf16bits");
  int bad16 = 0, badbf = 0, badback = 0;
  for (int64_t i = 0; i < x->numel; i++) {
    uint16_t want16 = (uint16_t)h->data[i], wantbf = (uint16_t)b->data[i];
    bad16 += gr_f32_to_f16(x->data[i]) != want16;
    badbf += gr_f32_to_bf16(x->data[i]) != wantbf;
    float back = gr_f16_to_f32(want16);
    uint16_t again = gr_f32_to_f16(back);
    badback += again != want16 && !isnan(back);
  }
  CHECK_MSG(bad16 == 0, "%d f16 mismatches", bad16);
  CHECK_MSG(badbf == 0, "%d bf16 mismatches", badbf);
  CHECK_MSG(badback == 0, "%d f16 values do not survive f16->f32->f16", badback);
  CHECK(isnan(gr_f16_to_f32(gr_f32_to_f16(NAN))) && isnan(gr_bf16_to_f32(gr_f32_to_bf16(NAN))));
  ref_close(rf);
  /* F8 decoding: a few exact values (OCP FP8 spec) */
  uint8_t e4m3[4] = {0x38, 0x7e, 0x01, 0x7f}, e5m2[3] = {0x3c, 0x7b, 0x7c};
  float o[4];
  CHECK_OK(gr_dtype_to_f32(GR_DT_F8_E4M3, e4m3, o, 4));
  CHECK(o[0] == 1.0f && o[1] == 448.0f && o[2] == ldexpf(1, -9) && isnan(o[3]));
  CHECK_OK(gr_dtype_to_f32(GR_DT_F8_E5M2, e5m2, o, 3));
  CHECK(o[0] == 1.0f && o[1] == 57344.0f && isinf(o[2]));
  CHECK_FAILS(gr_dtype_to_f32(GR_DT_C64, e4m3, o, 1) == GR_OK, GR_EUNSUPPORTED);
}

static gr_dtype parse_dt(const char *s) {
  gr_dtype d = GR_DT_COUNT;
  gr_dtype_parse(s, strlen(s), &d);
  return d;
}

/* One case of the Python writer: graft loads it identically and writes the
 * same bytes for the same tensors and metadata. */
static void check_python_case(const char *dir, const char *name, const cJSON *c) {
  char path[2200];
  snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
  const cJSON *ts = cJSON_GetObjectItem(c, "tensors"), *md = cJSON_GetObjectItem(c, "metadata");
  int n = cJSON_GetArraySize(ts), nm = cJSON_IsObject(md) ? cJSON_GetArraySize(md) : 0;
  gr_st_entry *e = calloc((size_t)n + 1, sizeof *e);
  const void **datas = calloc((size_t)n + 1, sizeof *datas);
  int64_t(*shapes)[8] = calloc((size_t)n + 1, sizeof *shapes);
  gr_st_kv *meta = calloc((size_t)nm + 1, sizeof *meta);
  gr_st_file *f = NULL;
  CHECK_OK(gr_st_open(path, &f));
  for (int i = 0; i < n; i++) {
    const cJSON *t = cJSON_GetArrayItem(ts, i);
    const char *hex = cJSON_GetObjectItem(t, "hex")->valuestring;
    size_t nb = strlen(hex) / 2;
    uint8_t *bytes = malloc(nb + 1);
    for (size_t k = 0; k < nb; k++) sscanf(hex + 2 * k, "%2hhx", &bytes[k]);
    const cJSON *sh = cJSON_GetObjectItem(t, "shape");
    e[i].name = cJSON_GetObjectItem(t, "name")->valuestring;
    e[i].dtype = parse_dt(cJSON_GetObjectItem(t, "dtype")->valuestring);
    e[i].ndim = cJSON_GetArraySize(sh);
    for (int d = 0; d < e[i].ndim; d++) shapes[i][d] = (int64_t)cJSON_GetArrayItem(sh, d)->valuedouble;
    e[i].shape = shapes[i];
    datas[i] = bytes;
    const gr_st_tensor *g = f ? gr_st_find(f, e[i].name) : NULL;
    CHECK_MSG(g && g->dtype == e[i].dtype && g->ndim == e[i].ndim && g->nbytes == nb && !memcmp(g->data, bytes, nb),
              "%s: tensor '%s' differs", name, e[i].name);
  }
  for (int i = 0; i < nm; i++) {
    const cJSON *kv = cJSON_GetArrayItem(md, i);
    meta[i] = (gr_st_kv){kv->string, kv->valuestring};
    CHECK(f && gr_st_metadata_get(f, kv->string) && !strcmp(gr_st_metadata_get(f, kv->string), kv->valuestring));
  }
  CHECK(f && gr_st_count(f) == (size_t)n && gr_st_metadata_count(f) == (size_t)nm);
  gr_st_close(f);
  char out[1024];
  snprintf(out, sizeof out, "%s", tmp_path("pyparity.safetensors"));
  CHECK_OK(gr_st_save(out, e, datas, (size_t)n, meta, (size_t)nm));
  size_t la = 0, lb = 0;
  uint8_t *a = test_read_file(path, &la), *b = test_read_file(out, &lb);
  CHECK_MSG(a && b && la == lb && !memcmp(a, b, la), "%s: graft's bytes differ from the Python writer's", name);
  free(a);
  free(b);
  unlink(out);
  for (int i = 0; i < n; i++) free((void *)datas[i]);
  free(e);
  free(datas);
  free(shapes);
  free(meta);
}

static void test_python_writer_parity(void) {
  char dir[1024], mpath[1100];
  const char *ref = getenv("GRAFT_REF_DIR");
  snprintf(dir, sizeof dir, "%s/st_py", ref ? ref : "ref");
  snprintf(mpath, sizeof mpath, "%s/manifest.json", dir);
  size_t n;
  char *text = (char *)test_read_file(mpath, &n);
  CHECK_MSG(text != NULL, "missing %s (ref_safetensors.py fixture)", mpath);
  if (!text) return;
  text[n] = 0;
  cJSON *m = cJSON_Parse(text);
  CHECK_PTR(m);
  int cases = 0;
  for (const cJSON *c = m ? m->child : NULL; c; c = c->next, cases++) check_python_case(dir, c->string, c);
  CHECK(cases >= 7);
  cJSON_Delete(m);
  free(text);
}

/* Streaming: any write order, all checks, and atomic replacement. */
static void test_streaming(void) {
  const char *p = tmp_path("stream.safetensors");
  float a[4] = {1, 2, 3, 4}, b[3] = {-1.5f, 0.25f, 1e-3f};
  gr_st_entry e[3] = {{"a", GR_DT_F32, 1, GR_SHAPE(4)}, {"b", GR_DT_BF16, 1, GR_SHAPE(3)}, {"c", GR_DT_F16, 1, GR_SHAPE(3)}};
  CHECK_OK(gr_st_save(p, e, (const void *const[]){a, "\0\0\0\0\0\0", "\0\0\0\0\0\0"}, 3, NULL, 0));
  size_t n0;
  uint8_t *before = test_read_file(p, &n0);
  gr_st_writer *w = NULL;
  CHECK_OK(gr_st_writer_begin(p, e, 3, &(gr_st_kv){"format", "pt"}, 1, &w));
  CHECK_OK(gr_st_writer_write_f32(w, "c", b, 3));
  CHECK_FAILS(gr_st_writer_write_f32(w, "c", b, 3) == GR_OK, GR_ESTATE);
  CHECK_FAILS(gr_st_writer_write_f32(w, "b", b, 2) == GR_OK, GR_ESHAPE);
  CHECK_FAILS(gr_st_writer_write(w, "zz", b, 4) == GR_OK, GR_ENOTFOUND);
  CHECK_OK(gr_st_writer_write_f32(w, "b", b, 3));
  size_t n1;
  uint8_t *mid = test_read_file(p, &n1); /* target untouched while writing */
  CHECK(mid && n1 == n0 && !memcmp(mid, before, n0));
  free(mid);
  CHECK_FAILS(gr_st_writer_finish(w) == GR_OK, GR_ESTATE); /* "a" never written: target kept */
  mid = test_read_file(p, &n1);
  CHECK(mid && n1 == n0 && !memcmp(mid, before, n0));
  free(mid);
  CHECK_OK(gr_st_writer_begin(p, e, 3, &(gr_st_kv){"format", "pt"}, 1, &w));
  CHECK_OK(gr_st_writer_write_f32(w, "c", b, 3));
  CHECK_OK(gr_st_writer_write_f32(w, "b", b, 3));
  CHECK_OK(gr_st_writer_write(w, "a", a, sizeof a));
  CHECK_OK(gr_st_writer_finish(w));
  gr_st_file *f = NULL;
  CHECK_OK(gr_st_open(p, &f));
  float got[4];
  const gr_st_tensor *t = f ? gr_st_find(f, "b") : NULL;
  CHECK(t && gr_st_read_f32(t, got, 4) == GR_OK && got[0] == -1.5f && got[1] == 0.25f &&
        got[2] == gr_bf16_to_f32(gr_f32_to_bf16(1e-3f)));
  t = f ? gr_st_find(f, "a") : NULL;
  CHECK(t && gr_st_read_f32(t, got, 4) == GR_OK && got[3] == 4.0f);
  CHECK_FAILS(gr_st_read_f32(t, got, 3) == GR_OK, GR_ESHAPE);
  CHECK(f && !strcmp(gr_st_metadata_get(f, "format"), "pt"));
  gr_st_close(f);
  free(before);
  /* no temp files left beside the target */
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "ls -a %s | grep -c 'st_%d_stream.safetensors.tmp' >/dev/null", test_tmpdir(), (int)getpid());
  CHECK(system(cmd) != 0);
  unlink(p);
  CHECK_FAILS(gr_st_open(p, &f) == GR_OK, GR_ENOTFOUND);
}

int main(void) {
  test_golden_bytes();
  test_writer_order();
  test_reader_parity();
  test_header_fields();
  test_roundtrip_all_dtypes();
  test_half_rounding();
  test_python_writer_parity();
  test_streaming();
  return test_summary();
}
