/* data/tokenizer_internal.h — what tokenizer.c and tokenizer_bpe.c share
 * (not a public API). */
#ifndef GRAFT_DATA_TOKENIZER_INTERNAL_H
#define GRAFT_DATA_TOKENIZER_INTERNAL_H
#include "graft/text.h"

/* Sets n_base, vocab, the special ids and piece_len (chars/piece must be set). */
gr_status tok_finish(gr_tokenizer *t, int32_t n_base);
/* One UTF-8 code point of s[0..n) (surrogate escapes for bad bytes); bytes used. */
int tok_utf8_next(const uint8_t *s, size_t n, int32_t *cp);
/* Bytes of cp's UTF-8 form (1 for an escaped raw byte). */
int tok_utf8_len(int32_t cp);
int32_t tok_bpe_piece_len(const gr_tokenizer *t, int32_t id);
/* Applies t's merges to ids[0..n) in place; returns the new length. */
int64_t tok_bpe_merge(const gr_tokenizer *t, int32_t *ids, int64_t n);
/* A bpe tokenizer from n merges (flat pairs; each id < 256 + its index). */
gr_status tok_bpe_from_merges(const int32_t *flat, int32_t n, gr_tokenizer **out);

#endif
