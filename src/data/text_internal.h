/* data/text_internal.h — what the text corpus files share (not a public
 * API): a growing corpus and the readers of each source. */
#ifndef GRAFT_DATA_TEXT_INTERNAL_H
#define GRAFT_DATA_TEXT_INTERNAL_H
#include "graft/text.h"

typedef struct corpus_builder {
  gr_corpus *c;
  int64_t text_cap, docs_cap;
} corpus_builder;

gr_status corpus_begin(corpus_builder *b, const char *source);
/* Appends a document (name truncated to fit). */
gr_status corpus_add(corpus_builder *b, const char *name, const char *text, int64_t len);
/* Starts a document whose text follows with corpus_append / corpus_end_doc. */
gr_status corpus_start_doc(corpus_builder *b, const char *name);
gr_status corpus_append(corpus_builder *b, const char *text, int64_t len);
/* The finished corpus (b is reset). */
gr_corpus *corpus_finish(corpus_builder *b);
void corpus_abort(corpus_builder *b);

/* Every document of a source, text included. */
gr_status text_read_kjv(const char *path, gr_corpus **out);
gr_status text_read_wordnet(const char *dir, const char *pos, int per_doc, gr_corpus **out);
/* ccode: names (paths relative to dir) and sizes of the candidate files;
 * text_read_files then reads the chosen ones. */
typedef struct text_file {
  char *name;
  int64_t size;
} text_file;
typedef struct text_file_list {
  text_file *files;  /* sorted by name */
  int64_t n, cap;
} text_file_list;
gr_status text_list_ccode(const char *dir, text_file_list *out);
void text_file_list_free(text_file_list *l);
gr_status text_read_files(const char *dir, const text_file_list *l, const int64_t *which, int64_t k,
                          gr_corpus **out);

#endif
