/* Domain shifts (gr_dataset_shift, data/shift.c) against numpy
 * (tests/ref/ref_data_shift.py) on square and non-square 2-channel images;
 * the shift= data spec field; bad kinds and shapes. */
#include <string.h>

#include "refdata.h"

static const char *const kinds[] = {"invert", "rot90", "rot180", "rot270", "hflip", "vflip", "transpose"};

static void check_case(const char *name, int h, int w) {
  ref_file *f = ref_open(name);
  CHECK_PTR(f);
  if (!f) return;
  const ref_array *x = ref_get(f, "x");
  for (size_t k = 0; x && k < sizeof kinds / sizeof kinds[0]; k++) {
    gr_dataset *d = gr_dataset_new(3, 2, h, w, 2);
    memcpy(d->x, x->data, (size_t)x->numel * sizeof(float));
    gr_status s = gr_dataset_shift(d, kinds[k]);
    if (!ref_has(f, kinds[k])) {
      CHECK_MSG(s == GR_ESHAPE, "%s of %dx%d images must be refused", kinds[k], h, w);
    } else {
      const ref_array *want = ref_get(f, kinds[k]);
      CHECK_OK(s);
      CHECK_MSG(want && memcmp(want->data, d->x, (size_t)want->numel * sizeof(float)) == 0, "%s %dx%d differs from numpy",
                kinds[k], h, w);
    }
    gr_dataset_free(d);
  }
  ref_close(f);
}

static void check_spec(void) {
  gr_data_spec s;
  CHECK_OK(gr_data_spec_parse("fmnist:shift=rot90,limit=5", &s));
  CHECK(!strcmp(s.shift, "rot90") && s.limit == 5);
  CHECK(gr_data_spec_parse("fmnist:shift=rot45", &s) == GR_EARG && strstr(gr_last_error(), "rot45"));
  CHECK(gr_data_spec_parse("fmnist:shift=invertinvertinvert", &s) == GR_EARG);
  gr_dataset *d = gr_dataset_new(1, 1, 2, 2, 2);
  CHECK(gr_dataset_shift(d, "sideways") == GR_EARG);
  CHECK(gr_dataset_shift(d, NULL) == GR_EARG);
  CHECK(gr_dataset_shift(NULL, "invert") == GR_EARG);
  CHECK_OK(gr_dataset_shift(d, "none"));
  gr_dataset_free(d);
}

int main(void) {
  check_case("shift_4x4", 4, 4);
  check_case("shift_3x5", 3, 5);
  check_spec();
  return test_summary();
}
