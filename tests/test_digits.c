/* test_digits.c — the real MNIST digits of OpenCV's sample data
 * (data/digits.c): the "train"/"test" halves of digits.png (when extracted
 * by scripts/fetch_models.sh into build/data, or $GRAFT_DIGITS) hold 2,500
 * 20x20 digits each, 250 per class, pixels in [0,1], rows of 5 per digit;
 * the data spec "digits:" with a label budget; a missing, truncated,
 * non-PNG or wrongly sized file is a named error, never a crash. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "util/testutil.h"

static void write_png(const char *path, int w, int h) {
  FILE *f = fopen(path, "wb");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) abort();
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_bytep row = calloc((size_t)w, 1);
  for (int r = 0; r < h; r++) png_write_row(png, row);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(row);
  fclose(f);
}

static void check_bad_files(const char *real) {
  char path[700], cmd[1600];
  gr_dataset *d = NULL;
  snprintf(path, sizeof path, "%s/digits_small.png", test_tmpdir());
  write_png(path, 20, 20);
  CHECK_FAILS(gr_digits_load(path, "train", &d) == GR_OK, GR_EFORMAT);
  CHECK(strstr(gr_last_error(), "2000x1000") != NULL);
  snprintf(path, sizeof path, "%s/digits_text.png", test_tmpdir());
  FILE *f = fopen(path, "wb");
  fputs("not a png at all", f);
  fclose(f);
  CHECK_FAILS(gr_digits_load(path, "train", &d) == GR_OK, GR_EFORMAT);
  CHECK_FAILS(gr_digits_load("/nonexistent/digits.png", "train", &d) == GR_OK, GR_ENOTFOUND);
  CHECK(strstr(gr_last_error(), "fetch_models") != NULL);
  CHECK_FAILS(gr_digits_load(path, "valid", &d) == GR_OK, GR_EARG);
  if (real) {
    snprintf(path, sizeof path, "%s/digits_trunc.png", test_tmpdir());
    snprintf(cmd, sizeof cmd, "head -c 300000 '%s' > '%s'", real, path);
    CHECK(system(cmd) == 0);
    CHECK_FAILS(gr_digits_load(path, "test", &d) == GR_OK, GR_EFORMAT);
  }
  CHECK(d == NULL);
}

int main(void) {
  const char *src = getenv("GRAFT_SRC") ? getenv("GRAFT_SRC") : ".";
  char real[600];
  snprintf(real, sizeof real, "%s/build/data/digits.png", src);
  if (getenv("GRAFT_DIGITS")) snprintf(real, sizeof real, "%s", getenv("GRAFT_DIGITS"));
  FILE *f = fopen(real, "rb");
  if (f) fclose(f);
  check_bad_files(f ? real : NULL);
  if (!f) {
    printf("note: %s missing (scripts/fetch_models.sh): real digits part skipped\n", real);
    return test_summary();
  }
  gr_dataset *tr = NULL, *te = NULL;
  CHECK_OK(gr_digits_load(real, "train", &tr));
  CHECK_OK(gr_digits_load(real, "test", &te));
  if (tr && te) {
    CHECK(tr->n == 2500 && te->n == 2500 && tr->c == 1 && tr->h == 20 && tr->w == 20 && tr->n_classes == 10);
    int64_t counts[10];
    gr_dataset_class_counts(tr, counts);
    for (int k = 0; k < 10; k++) CHECK(counts[k] == 250);
    float lo = 1, hi = 0;
    double ink[10] = {0};
    for (int64_t i = 0; i < tr->n * tr->dim; i++) lo = tr->x[i] < lo ? tr->x[i] : lo, hi = tr->x[i] > hi ? tr->x[i] : hi;
    for (int64_t i = 0; i < tr->n; i++)
      for (int64_t j = 0; j < tr->dim; j++) ink[tr->y[i]] += tr->x[i * tr->dim + j];
    CHECK(lo == 0.0f && hi == 1.0f);
    CHECK(ink[1] < ink[0] && ink[1] < ink[8]); /* a one has the least ink */
    CHECK(memcmp(tr->x, te->x, (size_t)tr->dim * sizeof(float)) != 0);
  }
  gr_dataset_free(tr);
  gr_dataset_free(te);
  /* through a data spec with a label budget */
  char spec[700];
  snprintf(spec, sizeof spec, "digits:path=%s,labels=20/class", real);
  gr_data_spec ds;
  gr_dataset *b = NULL;
  CHECK_OK(gr_data_spec_parse(spec, &ds));
  CHECK_OK(gr_data_load(&ds, NULL, 3, &b));
  CHECK(b && b->n == 200);
  gr_dataset_free(b);
  return test_summary();
}
