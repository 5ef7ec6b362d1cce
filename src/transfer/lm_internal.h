/* transfer/lm_internal.h — what the language-model files of transfer/
 * share (not a public API). */
#ifndef GRAFT_TRANSFER_LM_INTERNAL_H
#define GRAFT_TRANSFER_LM_INTERNAL_H
#include <stdint.h>

/* -log softmax(row[0..V))[target], computed in double. */
double lm_token_nll(const float *row, int64_t V, int32_t target);

#endif
