/* data/shift.c — synthetic domain shifts of image datasets, applied in place
 * to every sample (each channel alike): the new "domains" that merging and
 * rebasing studies fine-tune on (graft study merge|rebase) and that a data
 * spec selects with shift=KIND (fmnist:shift=invert). Geometric shifts follow
 * numpy: rot90 is np.rot90(img) (counter-clockwise), hflip np.fliplr, vflip
 * np.flipud, transpose img.T. invert is 1 − x, meant for [0,1] pixels
 * (gr_data_load applies shifts before normalization). */
#include <string.h>

#include "graft/data.h"

static const char *const shift_names[] = {"none", "invert", "rot90", "rot180", "rot270", "hflip", "vflip", "transpose"};
enum { SHIFT_NONE, SHIFT_INVERT, SHIFT_ROT90, SHIFT_ROT180, SHIFT_ROT270, SHIFT_HFLIP, SHIFT_VFLIP, SHIFT_TRANSPOSE, SHIFT_N };

static int shift_lookup(const char *kind) {
  for (int k = 0; kind && k < SHIFT_N; k++)
    if (!strcmp(kind, shift_names[k])) return k;
  return -1;
}

bool gr_shift_known(const char *kind) { return shift_lookup(kind) >= 0; }

/* Source pixel (r, c) of output pixel (i, j) of an h x w image. */
static void shift_source(int kind, int h, int w, int i, int j, int *r, int *c) {
  switch (kind) {
  case SHIFT_ROT90: *r = j, *c = w - 1 - i; break;
  case SHIFT_ROT180: *r = h - 1 - i, *c = w - 1 - j; break;
  case SHIFT_ROT270: *r = h - 1 - j, *c = i; break;
  case SHIFT_HFLIP: *r = i, *c = w - 1 - j; break;
  case SHIFT_VFLIP: *r = h - 1 - i, *c = j; break;
  case SHIFT_TRANSPOSE: *r = j, *c = i; break;
  default: *r = i, *c = j; break;
  }
}

gr_status gr_dataset_shift(gr_dataset *d, const char *kind) {
  int k = shift_lookup(kind);
  if (!d) return gr_error(GR_EARG, "shift: dataset is NULL");
  if (k < 0)
    return gr_error(GR_EARG, "shift: unknown kind '%s' (none, invert, rot90, rot180, rot270, hflip, vflip, transpose)",
                    kind ? kind : "(null)");
  bool square_only = k == SHIFT_ROT90 || k == SHIFT_ROT270 || k == SHIFT_TRANSPOSE;
  if (square_only && d->h != d->w) return gr_error(GR_ESHAPE, "shift: %s needs square images, not %dx%d", kind, d->h, d->w);
  int64_t plane = (int64_t)d->h * d->w, planes = d->n * d->c;
  if (k == SHIFT_INVERT) {
    for (int64_t i = 0; i < planes * plane; i++) d->x[i] = 1.0f - d->x[i];
    return GR_OK;
  }
  if (k == SHIFT_NONE || planes == 0) return GR_OK;
  float *tmp = gr_malloc((size_t)plane * sizeof(float) + 4);
  if (!tmp) return gr_error(GR_ENOMEM, "shift: out of memory");
  for (int64_t p = 0; p < planes; p++) {
    float *img = d->x + p * plane;
    memcpy(tmp, img, (size_t)plane * sizeof(float));
    for (int i = 0; i < d->h; i++)
      for (int j = 0; j < d->w; j++) {
        int r, c;
        shift_source(k, d->h, d->w, i, j, &r, &c);
        img[(int64_t)i * d->w + j] = tmp[(int64_t)r * d->w + c];
      }
  }
  gr_free(tmp);
  return GR_OK;
}
