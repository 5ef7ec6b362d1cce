/* graft/text.h — text for language models: tokenizers, corpora split by
 * document, text data specs, and the training objectives that turn a token
 * stream into (ids, targets) batches. The training loop, evaluation and
 * GPT model directories are in graft/lm.h; the model in graft/gpt.h.
 *
 * Tokenizers (one struct, three kinds; ids [0,n_base) are text, the special
 * ids follow: eos ("<|endoftext|>"), sep ("<sep>"), eom ("<eom>"), then
 * mask[0..GR_TOK_MASKS) ("<mask_1>".."<mask_8>")):
 *  - byte: the 256 byte values; every input encodes.
 *  - char: the code points seen in the text it was built from, sorted. Input
 *    is decoded as UTF-8; a byte that is not part of a valid UTF-8 sequence
 *    is the code point 0xDC00+byte (Python's "surrogateescape"), so decode
 *    gives back the exact bytes. A code point outside the vocabulary is
 *    GR_EARG naming it and its byte offset (no silent <unk>).
 *  - bpe: byte-level BPE; base = 256 bytes, merge i makes id 256+i from the
 *    pair (a,b). Trained greedily on the most frequent adjacent pair (ties:
 *    the smallest pair value a*vocab+b), merges never cross a newline;
 *    encoding applies merges in the order learned (lowest rank first).
 * Text never encodes to a special id: "<sep>" in the input is five
 * characters. Decoding writes specials as their names.
 *
 * Corpora (gr_corpus): the concatenated text of documents, each with a name
 * and byte range. Sources (all local, from Debian packages):
 *  - kjv: King James Bible, one document per book (66), one verse per line.
 *    Read from `bible -f 'gen1:1-rev22:21'` (packages bible-kjv
 *    bible-kjv-text) or from path=FILE holding that output.
 *  - ccode: C headers (*.h) under dir (default /usr/include), one document
 *    per file; files over 256 KiB are skipped (generated tables).
 *  - wordnet: WordNet 3.0 glosses (package wordnet-base), one line per
 *    synset "lemma, lemma: gloss"; a document is per_doc consecutive
 *    synsets of one data.<pos> file.
 * Splits are by document: documents are ordered by a hash of (name,
 * splitseed); the first ones go to test until test holds >= test% of the
 * bytes, the next to val likewise, the rest to train. A document is in
 * exactly one split, and the assignment of a name does not depend on which
 * other documents exist only through the byte totals.
 *
 * Text data specs, like the image ones of graft/data.h:
 *   kjv                          train split of the KJV
 *   kjv:split=val,max=200K       first 200 KiB (document order) of the val split
 *   ccode:dir=/usr/include,max=4M,val=5%,test=5%,splitseed=0
 *   wordnet:pos=noun,per_doc=100
 * max=N[K|M] caps the loaded split's bytes (whole documents, at least one);
 * an empty result is GR_EARG ("empty corpus"). */
#ifndef GRAFT_TEXT_H
#define GRAFT_TEXT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/rng.h"
#include "graft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tokenizers ------------------------------------------------------------ */
#define GR_TOK_MASKS 8
#define GR_TOK_SPECIALS (3 + GR_TOK_MASKS)

typedef enum gr_tok_kind { GR_TOK_BYTE = 0, GR_TOK_CHAR = 1, GR_TOK_BPE = 2 } gr_tok_kind;

typedef struct gr_tokenizer {
  gr_tok_kind kind;
  int32_t n_base;                /* text ids [0, n_base) */
  int32_t vocab;                 /* n_base + GR_TOK_SPECIALS */
  int32_t eos, sep, eom;
  int32_t mask[GR_TOK_MASKS];
  int32_t *chars;                /* char: code point of each text id, ascending */
  int32_t (*merges)[2];          /* bpe: n_base - 256 pairs */
  uint8_t **piece;               /* bpe: bytes of each text id */
  int32_t *piece_len;            /* bytes of the text each id stands for (specials: 0) */
} gr_tokenizer;

gr_status gr_tokenizer_byte(gr_tokenizer **out);
/* A char vocabulary of every code point in text[0..n) (n > 0). */
gr_status gr_tokenizer_char_build(const char *text, size_t n, gr_tokenizer **out);
/* Byte-level BPE with n_merges merges (0..65536) learned on text[0..n). */
gr_status gr_tokenizer_bpe_train(const char *text, size_t n, int n_merges, gr_tokenizer **out);
/* "byte", "char" or "bpe:N" (N merges); char and bpe learn from text. */
gr_status gr_tokenizer_from_name(const char *name, const char *text, size_t n, gr_tokenizer **out);
void gr_tokenizer_free(gr_tokenizer *t);

/* ids: gr_malloc'd array of *n_ids (may be 0 for n == 0); caller frees. */
gr_status gr_tokenizer_encode(const gr_tokenizer *t, const char *text, size_t n, int32_t **ids, int64_t *n_ids);
/* text: gr_malloc'd, NUL-terminated, *len bytes. Ids outside the vocab: GR_EARG. */
gr_status gr_tokenizer_decode(const gr_tokenizer *t, const int32_t *ids, int64_t n, char **text, size_t *len);
/* "<|endoftext|>", "<sep>", "<eom>", "<mask_N>", or NULL for a text id. */
const char *gr_tokenizer_special_name(const gr_tokenizer *t, int32_t id);
/* JSON text (gr_malloc'd) holding everything needed to rebuild t:
 * {"type":"byte"|"char"|"bpe","chars":[cp,...],"merges":[[a,b],...],
 *  "specials":["<|endoftext|>",...]}; and its reader (validating every field). */
gr_status gr_tokenizer_to_json(const gr_tokenizer *t, char **json);
gr_status gr_tokenizer_from_json(const char *json, size_t n, gr_tokenizer **out);

/* ---- corpora ------------------------------------------------------------------ */
typedef struct gr_text_doc {
  char name[96];
  int64_t off, len;              /* bytes of corpus->text */
} gr_text_doc;

typedef struct gr_corpus {
  char source[16];
  char *text;                    /* all documents, in order */
  int64_t len;
  gr_text_doc *docs;
  int64_t n_docs;
} gr_corpus;

void gr_corpus_free(gr_corpus *c);

#define GR_KJV_PACKAGES "bible-kjv bible-kjv-text"
#define GR_WORDNET_DIR "/usr/share/wordnet"
#define GR_CCODE_DIR "/usr/include"

typedef enum gr_text_split { GR_SPLIT_TRAIN = 0, GR_SPLIT_VAL = 1, GR_SPLIT_TEST = 2 } gr_text_split;

typedef struct gr_text_spec {
  char source[16];               /* kjv | ccode | wordnet */
  char path[512];                /* kjv: dump file ("" = run bible); ccode/wordnet: dir ("" = default) */
  gr_text_split split;
  double val_frac, test_frac;    /* default 0.05 each */
  uint64_t split_seed;
  int64_t max_bytes;             /* 0 = no cap */
  char pos[8];                   /* wordnet: noun|verb|adj|adv|all */
  int per_doc;                   /* wordnet synsets per document (default 100) */
} gr_text_spec;

/* GR_EARG naming the bad field. */
gr_status gr_text_spec_parse(const char *spec, gr_text_spec *out);
/* Loads the split of spec (split >= 0 overrides spec->split). GR_ENOTFOUND
 * naming the missing file and the package that installs it. */
gr_status gr_text_load(const gr_text_spec *spec, int split, gr_corpus **out);
/* The split of each of n documents (names, byte sizes) as described above. */
gr_status gr_text_assign_splits(const char *const *names, const int64_t *sizes, int64_t n, double val_frac,
                                double test_frac, uint64_t seed, gr_text_split *out);

/* ---- token streams and objectives --------------------------------------------- */
/* Every document encoded and followed by eos. bytes: text bytes covered. */
typedef struct gr_token_stream {
  int32_t *ids;
  int64_t n;
  int64_t bytes;
} gr_token_stream;
gr_status gr_corpus_tokenize(const gr_corpus *c, const gr_tokenizer *t, gr_token_stream *out);
void gr_token_stream_free(gr_token_stream *s);

typedef enum gr_lm_objective {
  GR_LM_CAUSAL = 0,
  GR_LM_PREFIX = 1,
  GR_LM_INFILL = 2,
  GR_LM_MIX = 3,
  GR_LM_FIM = 4,
  GR_LM_FIM_SPM = 5,
  GR_LM_OBJECTIVES = 6 /* count */
} gr_lm_objective;
/* "causal" | "prefix" | "infill" | "mix" | "fim" | "fim-spm". */
gr_status gr_lm_objective_parse(const char *name, gr_lm_objective *out);
const char *gr_lm_objective_name(gr_lm_objective o);

typedef struct gr_infill_cfg {
  float rate;          /* fraction of source tokens in spans (default 0.15) */
  float mean_len;      /* mean span length in tokens (default 8: chars/bytes) */
  float mix_infill;    /* mix, fim: probability a sequence is span-corrupted / FIM (default 0.5) */
} gr_infill_cfg;
gr_infill_cfg gr_infill_default(void);

/* Span corruption in decoder-only form (CodeGen2): spans (start, len)
 * sorted, disjoint, inside src[0..L), k in 1..GR_TOK_MASKS, become
 *   a <mask_1> b <mask_2> c ... <eos> <sep> <mask_1> s_1 <eom> <mask_2> s_2 <eom>
 * written to seq (capacity cap); *n_seq = L + 3k + 2. */
gr_status gr_lm_format_infill(const gr_tokenizer *t, const int32_t *src, int64_t L, const int64_t *starts,
                              const int64_t *lens, int k, int32_t *seq, int64_t cap, int64_t *n_seq);
/* Random spans for a source of L tokens: k = clamp(round(L rate / mean_len),
 * 1, GR_TOK_MASKS) spans totalling round(L rate) (>= k) tokens, lengths a
 * random composition, gaps between spans >= 1. L >= 2k+1 needed. */
gr_status gr_lm_plan_spans(gr_rng *r, int64_t L, const gr_infill_cfg *cfg, int64_t *starts, int64_t *lens, int *k);
/* Fill in the middle in SPM order (suffix, prefix, middle; Bavarian et al.
 * 2022 sec. 5): the middle src[start, start+len) of src[0..L) becomes
 *   <mask_1> suffix <sep> prefix middle <eom>
 * (*n_seq = L + 3): the middle directly continues the prefix. */
gr_status gr_lm_format_spm(const gr_tokenizer *t, const int32_t *src, int64_t L, int64_t start, int64_t len, int32_t *seq,
                           int64_t cap, int64_t *n_seq);

/* The rows gr_lm_make_batch builds (deterministic given their choices):
 * window: ids = s[o..o+T), targets = s[o+1..o+T+1), targets of t < p-1
 * set to -1; infill: gr_lm_format_infill of the spans, then ids = seq[0..T),
 * targets = seq[1..T] where they exist, eos / -1 after the sequence. */
#define GR_LM_MAX_INFILL 4096
gr_status gr_lm_window_row(const gr_token_stream *s, int64_t o, int64_t T, int64_t prefix_len, int32_t *ids,
                           int32_t *targets);
gr_status gr_lm_infill_row(const gr_tokenizer *t, const int32_t *src, int64_t L, const int64_t *starts,
                           const int64_t *lens, int k, int64_t T, int32_t *ids, int32_t *targets);

/* One training batch of B sequences of T tokens from s:
 *  causal: ids = s[o..o+T), targets = s[o+1..o+T+1) at a random o.
 *  prefix: the same window; one prefix length p in [1,T-1] for the batch
 *          (*prefix_len, attention bidirectional over it); targets of the
 *          positions t < p-1 are -1 (no loss inside the prefix: they would
 *          see their own target).
 *  infill: a window cut at the first eos (one document), span-corrupted,
 *          targets = next token; padding after the formatted sequence is
 *          eos with target -1.
 *  mix:    each sequence infill with probability cfg->mix_infill, else causal.
 *  fim:    fill in the middle (Bavarian et al. 2022, PSM order in the
 *          sentinel form of the infill evaluation) with probability
 *          cfg->mix_infill, else causal: a window of one document (<= T-4
 *          tokens) cut at two distinct uniform points into prefix, middle
 *          (>= 1 token), suffix, formatted as gr_lm_format_infill with the
 *          one span: prefix <mask_1> suffix <eos> <sep> <mask_1> middle <eom>;
 *          loss on every next token (FIM's joint loss).
 *  fim-spm: the same with the SPM layout of gr_lm_format_spm.
 * GR_EARG when the stream is shorter than T+1 tokens. */
gr_status gr_lm_make_batch(gr_lm_objective obj, const gr_token_stream *s, const gr_tokenizer *t,
                           const gr_infill_cfg *cfg, int64_t B, int64_t T, gr_rng *r, int32_t *ids,
                           int32_t *targets, int64_t *prefix_len);

#ifdef __cplusplus
}
#endif
#endif
