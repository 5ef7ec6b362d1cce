/* tests/util/refdata.h — reference tensors written by tests/ref/ref_*.py.
 * File $GRAFT_REF_DIR/<case>.ref (little-endian): "GRREF1\0\0", u32 count,
 * then per array: u32 name_len, name, u32 ndim, i64 shape[ndim],
 * f32 data[numel]. Integer arrays (targets, ids) are stored as f32. */
#ifndef GRAFT_REFDATA_H
#define GRAFT_REFDATA_H
#include "testutil.h"

typedef struct ref_array {
  char name[64];
  int ndim;
  int64_t shape[GR_MAX_DIMS];
  int64_t numel;
  float *data;
} ref_array;

typedef struct ref_file {
  int count;
  ref_array *a;
} ref_file;

/* Loads <case>.ref; prints why and returns NULL if missing or malformed. */
ref_file *ref_open(const char *case_name);
/* Whether the file holds the named array (silent). */
bool ref_has(const ref_file *f, const char *name);
/* The named array or NULL (prints a message). */
const ref_array *ref_get(const ref_file *f, const char *name);
void ref_close(ref_file *f);
/* A step-arena tensor (leaf if grad) holding the named array. */
gr_tensor *ref_tensor(gr_ctx *c, const ref_file *f, const char *name, bool grad);

/* Generic forward+backward comparison: loads <case>, builds the inputs
 * names[0..n) (as leaves when the file holds "d<name>"), runs f, compares
 * its output with "y", back-propagates "gy" and compares each input grad
 * with "d<name>". |got-want| <= atol + rtol |want|. */
typedef gr_tensor *(*ref_fn)(gr_ctx *c, gr_tensor **in, void *ud);
bool ref_check(const char *case_name, ref_fn f, void *ud, int n, const char *const *names, double atol,
               double rtol);
#define CHECK_REF(case_name, f, ud, n, names)                                              \
  do {                                                                                     \
    test_checks++;                                                                         \
    if (!ref_check(case_name, f, ud, n, names, 1e-4, 1e-4))                                \
      test_fail(__FILE__, __LINE__, "reference check %s", case_name);                      \
  } while (0)
#endif
