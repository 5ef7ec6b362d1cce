/* model directories: save/load round trip, strict name and shape checks,
 * bad config.json, missing files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/modeldir.h"
#include "graft/safetensors.h"
#include "testutil.h"

static void write_text(const char *path, const char *s) {
  FILE *f = fopen(path, "w");
  fputs(s, f);
  fclose(f);
}

int main(void) {
  char dir[400], path[700];
  snprintf(dir, sizeof dir, "%s/modeldir", test_tmpdir());
  char cmd[1600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
  CHECK(system(cmd) == 0);

  gr_model *m = gr_model_new(5);
  gr_model_set_root(m, gr_arch_build(m, "mlp", 1, 4, 4, 3));
  gr_model_config cfg = {"mlp", 1, 4, 4, 3, "csv:x.csv"};
  CHECK_OK(gr_model_save_dir(m, &cfg, dir));
  gr_model_config back;
  gr_model *m2 = NULL;
  CHECK_OK(gr_model_load_dir(dir, 99, &back, &m2));
  CHECK(m2 && !strcmp(back.arch, "mlp") && back.n_classes == 3 && back.h == 4 && !strcmp(back.data, "csv:x.csv"));
  if (m2) CHECK(m2->numel == m->numel && memcmp(m2->data, m->data, (size_t)m->numel * sizeof(float)) == 0);
  gr_model_free(m2);

  /* the file holds exactly the state_dict names, F32, format=pt */
  gr_st_file *f = NULL;
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  CHECK_OK(gr_st_open(path, &f));
  if (f) {
    CHECK(gr_st_count(f) == (size_t)m->n_entries);
    CHECK(gr_st_find(f, "layers.0.weight") && gr_st_find(f, "layers.0.weight")->dtype == GR_DT_F32);
    const char *fmt = gr_st_metadata_get(f, "format");
    CHECK(fmt && !strcmp(fmt, "pt"));
    gr_st_close(f);
  }

  /* a model of another shape refuses the file, naming the tensor */
  gr_model *other = gr_model_new(1);
  gr_model_set_root(other, gr_arch_build(other, "mlp", 1, 4, 4, 5));
  CHECK_FAILS(gr_model_load_weights(other, path, true) == GR_OK, GR_ESHAPE);
  CHECK(strstr(gr_last_error(), "layers.4") != NULL);
  gr_model_free(other);

  /* bad config.json */
  snprintf(path, sizeof path, "%s/config.json", dir);
  write_text(path, "{\"architecture\": \"mlp\", \"in_channels\": 1, \"height\": 4, \"width\": 4}");
  CHECK_FAILS(gr_model_load_dir(dir, 1, &back, &m2) == GR_OK, GR_EFORMAT);
  CHECK(strstr(gr_last_error(), "num_classes") != NULL);
  write_text(path, "[1,2]");
  CHECK_FAILS(gr_model_load_dir(dir, 1, &back, &m2) == GR_OK, GR_EFORMAT);
  write_text(path, "{\"architecture\": \"vgg\", \"in_channels\": 1, \"height\": 4, \"width\": 4, \"num_classes\": 3}");
  CHECK_FAILS(gr_model_load_dir(dir, 1, &back, &m2) == GR_OK, GR_EARG);
  /* truncated weights */
  CHECK_OK(gr_model_save_dir(m, &cfg, dir));
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  snprintf(cmd, sizeof cmd, "truncate -s -7 '%s'", path);
  CHECK(system(cmd) == 0);
  CHECK_FAILS(gr_model_load_dir(dir, 1, &back, &m2) == GR_OK, GR_EFORMAT);
  CHECK(m2 == NULL);
  char missing[700];
  snprintf(missing, sizeof missing, "%s/nope", dir);
  CHECK_FAILS(gr_model_load_dir(missing, 1, &back, &m2) == GR_OK, GR_ENOTFOUND);
  gr_model_free(m);
  return test_summary();
}
