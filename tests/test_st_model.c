/* Sharded models: the streaming sharded writer splits by size and writes
 * transformers' index; the reader finds every tensor across shards and
 * rejects inconsistent indexes (missing/extra tensors, wrong shard, path
 * traversal, duplicate keys, bad JSON). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/safetensors.h"
#include "testutil.h"

static char dir[512];

static void write_text(const char *name, const char *text) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *fp = fopen(p, "w");
  fputs(text, fp);
  fclose(fp);
}

static void test_sharded_roundtrip(void) {
  enum { N = 7 };
  char names[N][32];
  gr_st_entry e[N];
  float data[N][100];
  int64_t lens[N];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "layers.%d.weight", i);
    lens[i] = 10 + 10 * i;
    e[i] = (gr_st_entry){names[i], i % 2 ? GR_DT_F32 : GR_DT_F16, 1, &lens[i]};
    for (int k = 0; k < 100; k++) data[i][k] = (float)(i * 100 + k); /* exact in f16 */
  }
  gr_st_sharded_writer *w = NULL;
  CHECK_OK(gr_st_sharded_begin(dir, "model", e, N, 300, &(gr_st_kv){"format", "pt"}, 1, &w));
  for (int i = N - 1; i >= 0; i--) CHECK_OK(gr_st_sharded_write_f32(w, names[i], data[i], (uint64_t)lens[i]));
  CHECK_FAILS(gr_st_sharded_write_f32(w, "nope", data[0], 1) == GR_OK, GR_ENOTFOUND);
  CHECK_OK(gr_st_sharded_finish(w));
  gr_st_model *m = NULL;
  CHECK_OK(gr_st_model_open(dir, &m));
  CHECK(m && gr_st_model_shards(m) > 2 && gr_st_model_count(m) == N && gr_st_model_index_path(m));
  uint64_t max_shard = 0;
  for (size_t s = 0; m && s < gr_st_model_shards(m); s++) {
    const gr_st_file *f = gr_st_model_shard(m, s);
    uint64_t bytes = gr_st_file_len(f) - 8 - gr_st_header_len(f);
    if (gr_st_count(f) > 1 && bytes > max_shard) max_shard = bytes;
    CHECK(!strcmp(gr_st_metadata_get(f, "format"), "pt"));
  }
  CHECK(max_shard <= 300);
  for (int i = 0; m && i < N; i++) {
    const gr_st_tensor *t = gr_st_model_find(m, names[i]);
    float got[100];
    CHECK_MSG(t && gr_st_read_f32(t, got, 100) == GR_OK && got[0] == (float)(i * 100) &&
                  got[lens[i] - 1] == (float)(i * 100 + lens[i] - 1), "tensor %s", names[i]);
  }
  CHECK_FAILS(gr_st_model_find(m, "nope") != NULL, GR_ENOTFOUND);
  gr_st_model_close(m);
  /* the index file itself also opens; its exact text is transformers' */
  char idx[1024];
  snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
  CHECK_OK(gr_st_model_open(idx, &m));
  gr_st_model_close(m);
  FILE *fp = fopen(idx, "r");
  char head[200] = {0};
  CHECK(fp && fread(head, 1, 60, fp) > 0);
  if (fp) fclose(fp);
  CHECK(!strncmp(head, "{\n  \"metadata\": {\n    \"total_size\": ", 36));
}

static void expect_bad_index(const char *what, const char *json, gr_st_err kind) {
  write_text("model.safetensors.index.json", json);
  gr_st_model *m = NULL;
  gr_status st = gr_st_model_open(dir, &m);
  CHECK_MSG(st != GR_OK && !m && gr_st_last_err() == kind, "%s: expected %s, got %s (%s)", what, gr_st_err_name(kind),
            gr_st_err_name(gr_st_last_err()), gr_last_error());
}

static void test_bad_indexes(void) {
  const char *s1 = "model-00001-of-00004.safetensors";
  char j[4096];
  expect_bad_index("not json", "{", GR_ST_BAD_INDEX);
  expect_bad_index("no weight_map", "{\"metadata\":{}}", GR_ST_BAD_INDEX);
  expect_bad_index("traversal", "{\"weight_map\":{\"a\":\"../x.safetensors\"}}", GR_ST_BAD_INDEX);
  expect_bad_index("absolute", "{\"weight_map\":{\"a\":\"/etc/passwd\"}}", GR_ST_BAD_INDEX);
  snprintf(j, sizeof j, "{\"weight_map\":{\"layers.0.weight\":\"%s\",\"layers.0.weight\":\"%s\"}}", s1, s1);
  expect_bad_index("duplicate key", j, GR_ST_BAD_INDEX);
  snprintf(j, sizeof j, "{\"weight_map\":{\"layers.0.weight\":\"%s\"}}", s1);
  expect_bad_index("missing tensors", j, GR_ST_BAD_INDEX);
  snprintf(j, sizeof j, "{\"weight_map\":{\"ghost\":\"%s\"}}", s1);
  expect_bad_index("ghost tensor", j, GR_ST_BAD_INDEX);
  expect_bad_index("missing shard", "{\"weight_map\":{\"a\":\"nope.safetensors\"}}", GR_ST_IO);
  /* corrupt shard: its own error comes through */
  write_text("bad.safetensors", "garbage!xx");
  expect_bad_index("corrupt shard", "{\"weight_map\":{\"a\":\"bad.safetensors\"}}", GR_ST_HEADER_TOO_LARGE);
}

static void test_single_file_model(void) {
  char p[1024];
  snprintf(p, sizeof p, "%s/single", dir);
  mkdir(p, 0755);
  gr_st_entry e = {"w", GR_DT_F32, 1, GR_SHAPE(3)};
  gr_st_sharded_writer *w = NULL;
  CHECK_OK(gr_st_sharded_begin(p, "model", &e, 1, 1000, NULL, 0, &w));
  CHECK_OK(gr_st_sharded_write_f32(w, "w", (float[]){1, 2, 3}, 3));
  CHECK_OK(gr_st_sharded_finish(w));
  gr_st_model *m = NULL;
  CHECK_OK(gr_st_model_open(p, &m));
  CHECK(m && gr_st_model_shards(m) == 1 && !gr_st_model_index_path(m) && gr_st_model_find(m, "w"));
  gr_st_model_close(m);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s/st_model_%d", test_tmpdir(), (int)getpid());
  mkdir(dir, 0755);
  test_sharded_roundtrip();
  test_bad_indexes();
  test_single_file_model();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
  return test_summary();
}
