/* graft/data.h — datasets in memory, readers, selections and mini-batches.
 *
 * A gr_dataset holds n samples of `dim` f32 features (images as C*H*W,
 * row-major) and one int32 label each; it owns its two arrays (gr_malloc) and
 * is freed with gr_dataset_free(). Every selection (class subset, label
 * budget) returns a new dataset, so the source stays valid.
 *
 * Readers validate before use: IDX headers (magic, element type, dims, size
 * against the decompressed length), CSV fields (numbers, equal column count).
 * A missing Fashion-MNIST file is GR_ENOTFOUND with a message naming the file
 * and the Debian package that installs it.
 *
 * A data spec string names a source and a selection, e.g.
 *   fmnist:classes=5-9,labels=10%        (train split, 10% of labels, stratified)
 *   fmnist:classes=0-4,labels=100/class  (100 labels per class)
 *   fmnist:split=test,classes=5-9,limit=2000
 *   fmnist:shift=invert                  (a domain shift, gr_dataset_shift)
 *   csv:/path/file.csv,label=last        (label column: first|last|index)
 *   digits:path=build/data/digits.png,labels=20/class   (real MNIST digits)
 * Labels of a class subset are remapped to 0..k-1 in the listed order. */
#ifndef GRAFT_DATA_H
#define GRAFT_DATA_H
#include <stdbool.h>
#include <stdint.h>

#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GR_FMNIST_DIR "/usr/share/datasets/fashion-mnist"
#define GR_FMNIST_PACKAGE "dataset-fashion-mnist"
#define GR_DATA_MAX_CLASSES 1024

typedef struct gr_dataset {
  int64_t n;        /* samples */
  int64_t dim;      /* features per sample = c*h*w */
  int c, h, w;      /* image layout; tabular data is c=1, h=1, w=dim */
  int n_classes;    /* labels are in [0, n_classes) */
  float *x;         /* [n, dim] */
  int32_t *y;       /* [n] */
} gr_dataset;

void gr_dataset_free(gr_dataset *d);
/* A new empty dataset of n samples shaped (c,h,w), arrays zero-filled. */
gr_dataset *gr_dataset_new(int64_t n, int c, int h, int w, int n_classes);
/* Samples idx[0..k) of src, in that order (labels unchanged). */
gr_dataset *gr_dataset_take(const gr_dataset *src, const int64_t *idx, int64_t k);

/* ---- IDX (MNIST family), gzip or raw ------------------------------------ */
typedef struct gr_idx {
  int ndim;
  int64_t dims[4];
  int64_t count;     /* product of dims */
  uint8_t *data;     /* count bytes (unsigned byte element type only) */
} gr_idx;
/* Reads and validates an IDX file of ubyte elements (magic 0x0000080N with
 * N = ndim in 1..4, dims > 0, payload length == product of dims). */
gr_status gr_idx_read(const char *path, gr_idx *out);
void gr_idx_free(gr_idx *x);

/* Fashion-MNIST split "train" or "test" from dir (NULL: $GRAFT_FMNIST_DIR or
 * GR_FMNIST_DIR). Pixels scaled to [0,1]; 1x28x28; 10 classes. */
gr_status gr_fmnist_load(const char *dir, const char *split, gr_dataset **out);

/* The 5,000 real handwritten digits of OpenCV's sample data (digits.png of
 * the opencv-doc package; scripts/fetch_models.sh extracts it into
 * build/data). path NULL or "": $GRAFT_DIGITS, else GR_DIGITS_PATH. Split
 * "train" = the first 50 digits of each of the 50 rows, "test" = the last
 * 50 (2,500 each, 250 per class); 1x20x20, pixels in [0,1], 10 classes. */
#define GR_DIGITS_PATH "/usr/share/doc/opencv-doc/examples/data/digits.png"
#define GR_DIGITS_HINT "extract it with scripts/fetch_models.sh, or from the opencv-doc package, and give digits:path=FILE"
gr_status gr_digits_load(const char *path, const char *split, gr_dataset **out);

/* Plain numeric CSV: one sample per line, comma separated, an optional header
 * line (detected: first line not numeric), label_col the column holding an
 * integer class label (-1: the last column). Blank lines are skipped. */
gr_status gr_csv_load(const char *path, int label_col, gr_dataset **out);

/* ---- selections --------------------------------------------------------- */
/* Samples whose label is in classes[0..k), relabelled to their index there. */
gr_status gr_dataset_select_classes(const gr_dataset *src, const int *classes, int k, gr_dataset **out);
/* Stratified, seeded label budget: per_class > 0 keeps that many samples of
 * each class (all when fewer), else keeps round(fraction * count) of each
 * class (at least 1). Original order is preserved among kept samples. */
gr_status gr_dataset_budget(const gr_dataset *src, int64_t per_class, double fraction, uint64_t seed,
                            gr_dataset **out);
/* The first `limit` samples after a seeded shuffle (limit >= n: a copy). */
gr_status gr_dataset_subsample(const gr_dataset *src, int64_t limit, uint64_t seed, gr_dataset **out);
/* x = (x - mean) / std in place. */
gr_status gr_dataset_normalize(gr_dataset *d, float mean, float std);
/* Synthetic domain shift of every image in place (data/shift.c): "none",
 * "invert" (1 − x, for [0,1] pixels), "rot90" (np.rot90: counter-clockwise),
 * "rot180", "rot270", "hflip", "vflip", "transpose"; GR_EARG for another
 * kind, GR_ESHAPE for rot90/rot270/transpose of non-square images. */
gr_status gr_dataset_shift(gr_dataset *d, const char *kind);
bool gr_shift_known(const char *kind);
/* Per-class sample counts into counts[0..n_classes). */
void gr_dataset_class_counts(const gr_dataset *d, int64_t *counts);

/* ---- data specs ---------------------------------------------------------- */
typedef struct gr_data_spec {
  char source[16];       /* "fmnist", "csv" or "digits" */
  char path[512];        /* csv file, or fmnist dir ("" = default) */
  char split[8];         /* "train" (default) or "test" */
  int classes[GR_DATA_MAX_CLASSES];
  int n_classes_sel;     /* 0 = all classes */
  int64_t per_class;     /* labels=N/class */
  double fraction;       /* labels=P% (1.0 = all) */
  int64_t limit;         /* limit=N (0 = none) */
  int label_col;         /* csv: -1 = last */
  bool normalize;        /* norm=1: fmnist mean/std normalization (default on) */
  char shift[16];        /* shift=KIND: gr_dataset_shift before normalization ("" = none) */
} gr_data_spec;
/* Parses a spec string (see top of file); GR_EARG naming the bad field. */
gr_status gr_data_spec_parse(const char *spec, gr_data_spec *out);
/* Loads the spec's data; split overrides the spec's split when not NULL.
 * The label budget only applies to the train split; limit to any split. */
gr_status gr_data_load(const gr_data_spec *spec, const char *split, uint64_t seed, gr_dataset **out);

/* Fashion-MNIST's training-set pixel mean and std (of [0,1] pixels). */
#define GR_FMNIST_MEAN 0.2860f
#define GR_FMNIST_STD 0.3530f

/* ---- mini-batches and augmentation -------------------------------------- */
typedef struct gr_augment {
  int crop_pad;     /* random crop with zero padding of this many pixels (0: off) */
  bool hflip;       /* random horizontal flip */
  float pad_value;  /* value of padded pixels (normalized zero pixel) */
} gr_augment;

typedef struct gr_loader {
  const gr_dataset *ds;
  int64_t batch;
  bool shuffle, drop_last;
  gr_augment aug;
  gr_rng rng;
  int64_t *perm;     /* current epoch order */
  int64_t pos;       /* next sample in perm */
  int64_t epoch;     /* completed epochs */
} gr_loader;

/* batch > 0. The loader borrows ds (it must outlive the loader). */
gr_status gr_loader_init(gr_loader *l, const gr_dataset *ds, int64_t batch, bool shuffle, uint64_t seed);
void gr_loader_free(gr_loader *l);
/* Number of batches per epoch. */
int64_t gr_loader_batches(const gr_loader *l);
/* Next batch as x [B,c,h,w] in the ctx's step arena and labels in *y (step
 * arena); starts a new (reshuffled) epoch when the current one is done.
 * *y_out and *x_out are valid until gr_ctx_reset. */
gr_status gr_loader_next(gr_loader *l, gr_ctx *c, gr_tensor **x_out, const int32_t **y_out);
/* Samples [start, start+k) of ds as a batch (for evaluation, no augmentation). */
gr_status gr_dataset_batch(const gr_dataset *ds, gr_ctx *c, int64_t start, int64_t k, gr_tensor **x_out,
                           const int32_t **y_out);
/* Applies aug to one c*h*w sample in place (scratch holds c*h*w floats). */
void gr_augment_sample(const gr_augment *aug, gr_rng *r, float *x, int c, int h, int w, float *scratch);

#ifdef __cplusplus
}
#endif
#endif
