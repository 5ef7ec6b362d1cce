/* tests/util/testmodels.h — the small models the PEFT tests wrap (and their
 * torch twins in tests/ref/ref_peft_*.py build the same way), and the
 * reference check of a whole model. */
#ifndef GRAFT_TESTMODELS_H
#define GRAFT_TESTMODELS_H
#include "graft/nn.h"
#include "refdata.h"

/* layers.0 Linear(in, hidden) + ReLU + layers.2 Linear(hidden, out). */
gr_model *test_mlp(uint64_t seed, int64_t in, int64_t hidden, int64_t out);
/* 0 Conv2d(2,4,k3,pad1) + 1 ReLU + 2 Flatten + 3 Linear(100, n_out): 2x5x5 inputs. */
gr_model *test_cnn(uint64_t seed, int64_t n_out);
/* Copies every array of the file named like a parameter of m (same size)
 * into it; returns how many were copied. */
int test_model_load_ref(gr_model *m, const ref_file *f);
/* The model's forward on the file's "x" against "y", then backward from
 * "gy": "dx" and "d<name>" for every parameter (all must be in the file),
 * 1e-4 abs + rel. */
void test_model_ref_check(const char *name, gr_model *m, const ref_file *f);

#endif
