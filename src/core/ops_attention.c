/* core/ops_attention.c — causal softmax for self-attention scores.
 * scores [...,T,S]: query row i sits at key position S-T+i and sees keys
 * 0..S-T+i; later keys get probability 0. With T == S this is the usual
 * lower-triangular mask; T < S is incremental decoding with a KV cache.
 * It is the prefix-LM softmax with an empty prefix (ops_prefix_softmax.c),
 * so both masks share one kernel, one backward and one set of checks. */
#include "core/op.h"

gr_tensor *gr_causal_softmax(gr_ctx *c, gr_tensor *scores) { return gr_prefix_softmax(c, scores, 0); }
