/* data layer: IDX validation, Fashion-MNIST loading, class subsets, label
 * budgets, loaders, augmentation, CSV and data spec parsing, bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "graft/data.h"
#include "testutil.h"

static char path_buf[1024];
static const char *tmp_path(const char *name) {
  snprintf(path_buf, sizeof path_buf, "%s/data_%s", test_tmpdir(), name);
  return path_buf;
}

static void write_bytes(const char *path, const void *b, size_t n, bool gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb");
    gzwrite(f, b, (unsigned)n);
    gzclose(f);
  } else {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
  }
}

/* magic 0x00000803, dims 2x3x4, then `payload` bytes */
static size_t make_idx3(uint8_t *b, uint8_t magic3, uint32_t d0, size_t payload) {
  uint8_t h[16] = {0, 0, 8, magic3, 0, 0, 0, (uint8_t)d0, 0, 0, 0, 3, 0, 0, 0, 4};
  memcpy(b, h, 16);
  for (size_t i = 0; i < payload; i++) b[16 + i] = (uint8_t)i;
  return 16 + payload;
}

static void test_idx(void) {
  uint8_t b[256];
  gr_idx x;
  size_t n = make_idx3(b, 3, 2, 24);
  write_bytes(tmp_path("ok.idx.gz"), b, n, true);
  CHECK_OK(gr_idx_read(tmp_path("ok.idx.gz"), &x));
  CHECK(x.ndim == 3 && x.dims[0] == 2 && x.dims[1] == 3 && x.dims[2] == 4 && x.count == 24);
  CHECK(x.data && x.data[0] == 0 && x.data[23] == 23);
  gr_idx_free(&x);
  write_bytes(tmp_path("raw.idx"), b, n, false);
  CHECK_OK(gr_idx_read(tmp_path("raw.idx"), &x));
  gr_idx_free(&x);

  write_bytes(tmp_path("trunc.idx.gz"), b, n - 1, true);
  CHECK_FAILS(gr_idx_read(tmp_path("trunc.idx.gz"), &x) == GR_OK, GR_EFORMAT);
  CHECK(strstr(gr_last_error(), "trunc.idx.gz") != NULL);
  write_bytes(tmp_path("long.idx.gz"), b, n + 5 > sizeof b ? n : n + 5, true);
  CHECK_FAILS(gr_idx_read(tmp_path("long.idx.gz"), &x) == GR_OK, GR_EFORMAT);
  uint8_t bad[256];
  memcpy(bad, b, n);
  bad[0] = 0x1f;
  write_bytes(tmp_path("magic.idx"), bad, n, false);
  CHECK_FAILS(gr_idx_read(tmp_path("magic.idx"), &x) == GR_OK, GR_EFORMAT);
  memcpy(bad, b, n);
  bad[2] = 0x0D; /* float elements */
  write_bytes(tmp_path("type.idx"), bad, n, false);
  CHECK_FAILS(gr_idx_read(tmp_path("type.idx"), &x) == GR_OK, GR_EUNSUPPORTED);
  n = make_idx3(b, 3, 0, 0);
  write_bytes(tmp_path("zero.idx"), b, n, false);
  CHECK_FAILS(gr_idx_read(tmp_path("zero.idx"), &x) == GR_OK, GR_EFORMAT);
  n = make_idx3(b, 9, 2, 24); /* 9 dims */
  write_bytes(tmp_path("dims.idx"), b, n, false);
  CHECK_FAILS(gr_idx_read(tmp_path("dims.idx"), &x) == GR_OK, GR_EFORMAT);
  uint8_t huge[16] = {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 4};
  write_bytes(tmp_path("huge.idx"), huge, 16, false);
  CHECK_FAILS(gr_idx_read(tmp_path("huge.idx"), &x) == GR_OK, GR_EFORMAT);
  write_bytes(tmp_path("short.idx"), b, 3, false);
  CHECK_FAILS(gr_idx_read(tmp_path("short.idx"), &x) == GR_OK, GR_EFORMAT);
  /* gzip header followed by garbage */
  uint8_t garbage[64] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
  for (int i = 10; i < 64; i++) garbage[i] = (uint8_t)(i * 37);
  write_bytes(tmp_path("garbage.gz"), garbage, sizeof garbage, false);
  CHECK_FAILS(gr_idx_read(tmp_path("garbage.gz"), &x) == GR_OK, GR_EFORMAT);
  CHECK_FAILS(gr_idx_read(tmp_path("does-not-exist"), &x) == GR_OK, GR_ENOTFOUND);
  CHECK_FAILS(gr_idx_read(NULL, &x) == GR_OK, GR_EARG);
}

static void test_fmnist_missing(void) {
  gr_dataset *d = NULL;
  CHECK_FAILS(gr_fmnist_load(test_tmpdir(), "train", &d) == GR_OK, GR_ENOTFOUND);
  CHECK(strstr(gr_last_error(), GR_FMNIST_PACKAGE) != NULL);
  CHECK(strstr(gr_last_error(), "train-images-idx3-ubyte.gz") != NULL);
  CHECK_FAILS(gr_fmnist_load(NULL, "validation", &d) == GR_OK, GR_EARG);
  CHECK(d == NULL);
}

static void test_fmnist_and_selections(void) {
  gr_dataset *tr = NULL, *te = NULL;
  gr_status s = gr_fmnist_load(NULL, "train", &tr);
  if (s == GR_ENOTFOUND) {
    printf("SKIP fmnist: %s\n", gr_last_error());
    return;
  }
  CHECK_OK(s);
  CHECK_OK(gr_fmnist_load(NULL, "test", &te));
  if (!tr || !te) return;
  CHECK(tr->n == 60000 && te->n == 10000 && tr->dim == 784 && tr->h == 28 && tr->c == 1);
  int64_t counts[10];
  gr_dataset_class_counts(tr, counts);
  for (int k = 0; k < 10; k++) CHECK(counts[k] == 6000);
  double mean = 0, var = 0;
  for (int64_t i = 0; i < tr->n * tr->dim; i++) mean += tr->x[i];
  mean /= (double)(tr->n * tr->dim);
  for (int64_t i = 0; i < tr->n * tr->dim; i++) var += (tr->x[i] - mean) * (tr->x[i] - mean);
  var /= (double)(tr->n * tr->dim);
  CHECK_NEAR(mean, GR_FMNIST_MEAN, 1e-3);
  CHECK_NEAR(sqrt(var), GR_FMNIST_STD, 1e-3);

  gr_dataset *sub = NULL, *bud = NULL, *bud2 = NULL, *bud3 = NULL;
  int cls[] = {7, 5, 9};
  CHECK_OK(gr_dataset_select_classes(tr, cls, 3, &sub));
  CHECK(sub->n == 18000 && sub->n_classes == 3);
  /* the first sample of class 7 maps to label 0 with identical pixels */
  int64_t first7 = 0;
  while (tr->y[first7] != 7) first7++;
  int64_t j = 0;
  while (sub->y[j] != 0) j++;
  CHECK(memcmp(sub->x + j * 784, tr->x + first7 * 784, 784 * sizeof(float)) == 0);
  CHECK_OK(gr_dataset_budget(sub, 10, 0, 42, &bud));
  CHECK(bud->n == 30);
  int64_t bc[3];
  gr_dataset_class_counts(bud, bc);
  CHECK(bc[0] == 10 && bc[1] == 10 && bc[2] == 10);
  CHECK_OK(gr_dataset_budget(sub, 0, 0.01, 42, &bud2));
  gr_dataset_class_counts(bud2, bc);
  CHECK(bud2->n == 180 && bc[0] == 60 && bc[2] == 60);
  gr_dataset_free(bud2);
  CHECK_OK(gr_dataset_budget(sub, 10, 0, 42, &bud2));
  CHECK_OK(gr_dataset_budget(sub, 10, 0, 43, &bud3));
  CHECK(memcmp(bud->x, bud2->x, 30 * 784 * sizeof(float)) == 0);  /* same seed, same subset */
  CHECK(memcmp(bud->x, bud3->x, 30 * 784 * sizeof(float)) != 0);  /* other seed, other subset */
  gr_dataset *none = NULL;
  CHECK_FAILS(gr_dataset_budget(sub, 0, 1.5, 1, &none) == GR_OK, GR_EARG);
  int dup[] = {1, 1};
  gr_dataset *tmp = NULL;
  CHECK_FAILS(gr_dataset_select_classes(tr, dup, 2, &tmp) == GR_OK, GR_EARG);
  int oor[] = {10};
  CHECK_FAILS(gr_dataset_select_classes(tr, oor, 1, &tmp) == GR_OK, GR_EARG);
  gr_dataset_free(sub);
  gr_dataset_free(bud);
  gr_dataset_free(bud2);
  gr_dataset_free(bud3);

  gr_data_spec sp;
  CHECK_OK(gr_data_spec_parse("fmnist:classes=5-9,labels=10%", &sp));
  gr_dataset *d = NULL;
  CHECK_OK(gr_data_load(&sp, NULL, 1, &d));
  CHECK(d && d->n == 3000 && d->n_classes == 5);
  if (d) {
    double m = 0;
    for (int64_t i = 0; i < d->n * d->dim; i++) m += d->x[i];
    CHECK(fabs(m / (double)(d->n * d->dim)) < 0.5); /* normalized */
  }
  gr_dataset_free(d);
  CHECK_OK(gr_data_load(&sp, "test", 1, &d)); /* no budget on the test split */
  CHECK(d && d->n == 5000);
  gr_dataset_free(d);
  gr_dataset_free(tr);
  gr_dataset_free(te);
}

static void test_loader_and_augment(void) {
  gr_dataset *d = gr_dataset_new(10, 1, 2, 3, 10);
  for (int64_t i = 0; i < 10; i++) {
    d->y[i] = (int32_t)i;
    for (int k = 0; k < 6; k++) d->x[i * 6 + k] = (float)(i * 100 + k);
  }
  gr_loader l;
  CHECK_OK(gr_loader_init(&l, d, 4, true, 5));
  CHECK(gr_loader_batches(&l) == 3);
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  int seen[10] = {0};
  int64_t sizes[3];
  for (int b = 0; b < 3; b++) {
    gr_tensor *x;
    const int32_t *y;
    CHECK_OK(gr_loader_next(&l, c, &x, &y));
    sizes[b] = x->shape[0];
    for (int64_t i = 0; i < x->shape[0]; i++) {
      seen[y[i]]++;
      CHECK(x->data[i * 6 + 5] == (float)(y[i] * 100 + 5)); /* pixels travel with their label */
    }
  }
  CHECK(sizes[0] == 4 && sizes[1] == 4 && sizes[2] == 2);
  for (int i = 0; i < 10; i++) CHECK(seen[i] == 1);
  gr_tensor *x;
  const int32_t *y;
  CHECK_OK(gr_loader_next(&l, c, &x, &y));
  CHECK(l.epoch == 1);
  gr_loader_free(&l);
  CHECK_FAILS(gr_loader_init(&l, d, 0, true, 1) == GR_OK, GR_EARG);
  gr_ctx_free(c);
  gr_dataset_free(d);

  /* crop: the output is the input shifted by (dy-p, dx-p) with pad values */
  gr_rng r;
  gr_rng_seed(&r, 9);
  gr_augment aug = {.crop_pad = 2, .pad_value = -1};
  float img[5 * 5], orig[25], scratch[25];
  for (int i = 0; i < 25; i++) orig[i] = (float)i;
  int shifted = 0;
  for (int t = 0; t < 20; t++) {
    memcpy(img, orig, sizeof img);
    gr_augment_sample(&aug, &r, img, 1, 5, 5, scratch);
    int found = 0;
    for (int sy = -2; sy <= 2; sy++)
      for (int sx = -2; sx <= 2; sx++) {
        bool ok = true;
        for (int i = 0; i < 5; i++)
          for (int j = 0; j < 5; j++) {
            int si = i + sy, sj = j + sx;
            float want = (si >= 0 && si < 5 && sj >= 0 && sj < 5) ? orig[si * 5 + sj] : -1;
            ok &= img[i * 5 + j] == want;
          }
        if (ok) found++, shifted += (sy || sx);
      }
    CHECK(found == 1);
  }
  CHECK(shifted > 0);
  gr_augment fl = {.hflip = true};
  int flips = 0;
  for (int t = 0; t < 40; t++) {
    memcpy(img, orig, sizeof img);
    gr_augment_sample(&fl, &r, img, 1, 5, 5, scratch);
    if (img[0] == 4 && img[4] == 0 && img[5] == 9) flips++;
    else CHECK(memcmp(img, orig, sizeof img) == 0);
  }
  CHECK(flips > 5 && flips < 35);
}

static void write_text(const char *path, const char *s) { write_bytes(path, s, strlen(s), false); }

static void test_csv_and_spec(void) {
  gr_dataset *d = NULL;
  write_text(tmp_path("ok.csv"), "f1,f2,label\n1.5,2,0\n\n-3,4e1,2\n");
  CHECK_OK(gr_csv_load(tmp_path("ok.csv"), -1, &d));
  CHECK(d && d->n == 2 && d->dim == 2 && d->n_classes == 3 && d->y[1] == 2 && d->x[2] == -3 && d->x[3] == 40);
  gr_dataset_free(d);
  CHECK_OK(gr_csv_load(tmp_path("ok.csv"), 1, &d)); /* label in column 1 */
  CHECK(d && d->y[0] == 2 && d->x[1] == 0);
  gr_dataset_free(d);
  write_text(tmp_path("ragged.csv"), "1,2,0\n1,0\n");
  CHECK_FAILS(gr_csv_load(tmp_path("ragged.csv"), -1, &d) == GR_OK, GR_EFORMAT);
  CHECK(strstr(gr_last_error(), ":2:") != NULL);
  write_text(tmp_path("word.csv"), "1,2,0\n1,x,0\n");
  CHECK_FAILS(gr_csv_load(tmp_path("word.csv"), -1, &d) == GR_OK, GR_EFORMAT);
  write_text(tmp_path("nan.csv"), "1,2,0\n1,nan,0\n");
  CHECK_FAILS(gr_csv_load(tmp_path("nan.csv"), -1, &d) == GR_OK, GR_EFORMAT);
  write_text(tmp_path("label.csv"), "1,2,0.5\n");
  CHECK_FAILS(gr_csv_load(tmp_path("label.csv"), -1, &d) == GR_OK, GR_EFORMAT);
  write_text(tmp_path("empty.csv"), "a,b\n");
  CHECK_FAILS(gr_csv_load(tmp_path("empty.csv"), -1, &d) == GR_OK, GR_EFORMAT);
  CHECK_FAILS(gr_csv_load(tmp_path("missing.csv"), -1, &d) == GR_OK, GR_ENOTFOUND);

  gr_data_spec s;
  CHECK_OK(gr_data_spec_parse("fmnist:classes=0-2+7,labels=25/class,split=test", &s));
  CHECK(s.n_classes_sel == 4 && s.classes[3] == 7 && s.per_class == 25 && !strcmp(s.split, "test"));
  CHECK_OK(gr_data_spec_parse("fmnist", &s));
  CHECK(s.n_classes_sel == 0 && s.fraction == 1.0);
  char spec[1200];
  snprintf(spec, sizeof spec, "csv:%s,label=last", tmp_path("ok.csv"));
  CHECK_OK(gr_data_spec_parse(spec, &s));
  CHECK_OK(gr_data_load(&s, NULL, 1, &d));
  CHECK(d && d->n == 2);
  gr_dataset_free(d);
  const char *bad[] = {"", "mnist:classes=1", "fmnist:classes=9-5", "fmnist:labels=150%", "fmnist:labels=abc",
                       "fmnist:colour=red", "fmnist:split=val", "fmnist:classes", "csv:", "fmnist:limit=-3"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK_FAILS(gr_data_spec_parse(bad[i], &s) == GR_OK, GR_EARG);
}

int main(void) {
  test_idx();
  test_fmnist_missing();
  test_fmnist_and_selections();
  test_loader_and_augment();
  test_csv_and_spec();
  return test_summary();
}
