/* data/digits.c — the 5,000 real handwritten digits of OpenCV's sample data
 * (digits.png in the opencv-doc package: one 2000x1000 8-bit grey PNG of 50
 * rows x 100 columns of 20x20 digits; rows 5k..5k+4 hold digit k). The
 * "train" split is columns 0-49 of every row, "test" columns 50-99 (2,500
 * each, 250 per class). Pixels scaled to [0,1], 1x20x20. Decoded with
 * libpng; every header field is checked before anything is allocated. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/data.h"

#define DIGITS_W 2000
#define DIGITS_H 1000
#define DIGIT_PX 20

/* libpng reports through these (library code never prints): the message is
 * kept for the error, then libpng's longjmp returns to read_png_grey. */
static _Thread_local char png_message[160];
static void png_on_error(png_structp png, png_const_charp msg) {
  snprintf(png_message, sizeof png_message, "%s", msg ? msg : "?");
  png_longjmp(png, 1);
}
static void png_on_warning(png_structp png, png_const_charp msg) {}

static gr_status read_png_grey(const char *path, uint8_t **pixels) {
  *pixels = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return gr_error(GR_ENOTFOUND, "%s: cannot open (%s)", path, GR_DIGITS_HINT);
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  /* volatile: assigned between setjmp and a possible longjmp */
  uint8_t *volatile buf = NULL;
  png_bytep *volatile rows = NULL;
  volatile gr_status st = GR_OK;
  if (!png || !info) {
    st = gr_error(GR_ENOMEM, "%s: out of memory", path);
  } else if (setjmp(png_jmpbuf(png))) {
    st = gr_error(GR_EFORMAT, "%s: not a readable PNG (%s)", path, png_message);
  } else {
    png_init_io(png, f);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    if (w != DIGITS_W || h != DIGITS_H || depth != 8 || type != PNG_COLOR_TYPE_GRAY ||
        png_get_interlace_type(png, info) != PNG_INTERLACE_NONE) {
      st = gr_error(GR_EFORMAT, "%s: want a %dx%d 8-bit grey non-interlaced PNG, got %ux%u depth %d type %d", path,
                    DIGITS_W, DIGITS_H, (unsigned)w, (unsigned)h, depth, type);
    } else {
      buf = gr_malloc((size_t)DIGITS_W * DIGITS_H);
      rows = gr_malloc(DIGITS_H * sizeof *rows);
      if (!buf || !rows) {
        st = gr_error(GR_ENOMEM, "%s: out of memory", path);
      } else {
        for (int r = 0; r < DIGITS_H; r++) rows[r] = (uint8_t *)buf + (size_t)r * DIGITS_W;
        png_read_image(png, (png_bytep *)rows);
        png_read_end(png, NULL);
      }
    }
  }
  png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
  fclose(f);
  gr_free((void *)rows);
  if (st) {
    gr_free((void *)buf);
    return st;
  }
  *pixels = (uint8_t *)buf;
  return GR_OK;
}

gr_status gr_digits_load(const char *path, const char *split, gr_dataset **out) {
  if (!out || !split) return gr_error(GR_EARG, "digits: NULL argument");
  *out = NULL;
  bool train = !strcmp(split, "train");
  if (!train && strcmp(split, "test")) return gr_error(GR_EARG, "digits: split '%s' (want train or test)", split);
  if (!path || !path[0]) path = getenv("GRAFT_DIGITS") ? getenv("GRAFT_DIGITS") : GR_DIGITS_PATH;
  uint8_t *px;
  gr_status st = read_png_grey(path, &px);
  if (st) return st;
  const int rows = DIGITS_H / DIGIT_PX, cols = DIGITS_W / DIGIT_PX, half = cols / 2;
  gr_dataset *d = gr_dataset_new((int64_t)rows * half, 1, DIGIT_PX, DIGIT_PX, 10);
  if (!d) {
    gr_free(px);
    return gr_error(GR_ENOMEM, "digits: out of memory");
  }
  int64_t n = 0;
  for (int r = 0; r < rows; r++)
    for (int cidx = train ? 0 : half; cidx < (train ? half : cols); cidx++, n++) {
      float *dst = d->x + n * d->dim;
      for (int y = 0; y < DIGIT_PX; y++)
        for (int x = 0; x < DIGIT_PX; x++)
          dst[y * DIGIT_PX + x] = px[(size_t)(r * DIGIT_PX + y) * DIGITS_W + (size_t)(cidx * DIGIT_PX + x)] / 255.0f;
      d->y[n] = r / 5;
    }
  gr_free(px);
  *out = d;
  return GR_OK;
}
