/* data/text_readers.c — the readers behind the text data specs of
 * graft/text.h: KJV (the `bible` program's dump, one document per book),
 * C headers under a directory (one document per file), WordNet glosses
 * (per_doc synsets per document). Each says which package to install when
 * its files are missing. Splitting and selection are in text_corpus.c. */
#include <ctype.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/text_internal.h"
#include "graft/tensor.h"

#define KJV_PROGRAM "/usr/bin/bible"
#define KJV_DATA "/usr/lib/bible.data"
#define KJV_RANGE "gen1:1-rev22:21"
#define CCODE_MAX_FILE (256 << 10)
#define CCODE_MAX_FILES 200000

/* ---- KJV --------------------------------------------------------------------- */
/* "1Sa3:10 text" -> book "1Sa", text; false if the line is not a verse. */
static bool kjv_verse(char *line, char *book, size_t nb, char **text) {
  size_t i = 0;
  if (isdigit((unsigned char)line[i])) i++;
  while (isalpha((unsigned char)line[i])) i++;
  size_t book_end = i;
  if (book_end == 0 || !isdigit((unsigned char)line[i])) return false;
  while (isdigit((unsigned char)line[i])) i++;
  if (line[i++] != ':' || !isdigit((unsigned char)line[i])) return false;
  while (isdigit((unsigned char)line[i])) i++;
  if (line[i] != ' ') return false;
  snprintf(book, nb, "%.*s", (int)book_end, line);
  *text = line + i + 1;
  return true;
}

static gr_status kjv_parse(FILE *fp, const char *what, gr_corpus **out) {
  corpus_builder b;
  gr_status st = corpus_begin(&b, "kjv");
  char line[8192], book[32], cur[32] = "";
  int64_t lineno = 0, verses = 0;
  while (!st && fgets(line, sizeof line, fp)) {
    lineno++;
    size_t n = strlen(line);
    if (n == sizeof line - 1 && line[n - 1] != '\n') st = gr_error(GR_EFORMAT, "%s: line %lld is too long", what, (long long)lineno);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    char *text;
    if (st || n == 0) continue;
    if (!kjv_verse(line, book, sizeof book, &text)) {
      st = gr_error(GR_EFORMAT, "%s: line %lld is not a verse ('Book1:1 text')", what, (long long)lineno);
      break;
    }
    if (strcmp(book, cur)) st = corpus_start_doc(&b, book), snprintf(cur, sizeof cur, "%s", book);
    if (!st) st = corpus_append(&b, text, (int64_t)strlen(text));
    if (!st) st = corpus_append(&b, "\n", 1);
    verses++;
  }
  if (!st && verses == 0) st = gr_error(GR_EARG, "%s: empty corpus (no verse)", what);
  if (st) return corpus_abort(&b), st;
  *out = corpus_finish(&b);
  return GR_OK;
}

gr_status text_read_kjv(const char *path, gr_corpus **out) {
  if (path && path[0]) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return gr_error(GR_ENOTFOUND, "%s: cannot open (write it with: bible -f '" KJV_RANGE "' > FILE)", path);
    gr_status st = kjv_parse(fp, path, out);
    fclose(fp);
    return st;
  }
  if (access(KJV_PROGRAM, X_OK) || access(KJV_DATA, R_OK))
    return gr_error(GR_ENOTFOUND, "kjv: %s or %s is missing: install the Debian packages " GR_KJV_PACKAGES
                    " (or pass kjv:path=FILE)", KJV_PROGRAM, KJV_DATA);
  FILE *fp = popen(KJV_PROGRAM " -f '" KJV_RANGE "' 2>/dev/null", "r");
  if (!fp) return gr_error(GR_EIO, "kjv: cannot run %s", KJV_PROGRAM);
  gr_status st = kjv_parse(fp, "kjv (bible -f)", out);
  int rc = pclose(fp);
  if (!st && rc != 0) {
    gr_corpus_free(*out), *out = NULL;
    st = gr_error(GR_EIO, "kjv: %s exited with status %d", KJV_PROGRAM, rc);
  }
  return st;
}

/* ---- WordNet ------------------------------------------------------------------- */
/* One data.<pos> line -> "lemma, lemma: gloss\n" appended to b; false for
 * the license header lines (they start with two spaces). */
static gr_status wordnet_line(corpus_builder *b, char *line, const char *what, int64_t lineno) {
  char *bar = strstr(line, " | ");
  int words = 0, used = 0;
  /* offset lex_filenum ss_type w_cnt(hex) [word lex_id]... */
  if (!bar || sscanf(line, "%*s %*s %*s %x%n", (unsigned *)&words, &used) != 1 || words <= 0)
    return gr_error(GR_EFORMAT, "%s: line %lld is not a synset", what, (long long)lineno);
  char *p = line + used, word[256];
  for (int w = 0; w < words; w++) {
    int adv = 0;
    if (sscanf(p, " %255s %*s%n", word, &adv) != 1 || adv == 0 || p + adv > bar)
      return gr_error(GR_EFORMAT, "%s: line %lld: synset word %d is malformed", what, (long long)lineno, w);
    p += adv;
    for (char *c = word; *c; c++) if (*c == '_') *c = ' ';
    char *paren = strchr(word, '('); /* adjective markers: "big(a)" */
    if (paren) *paren = 0;
    gr_status st = corpus_append(b, w ? ", " : "", w ? 2 : 0);
    if (!st) st = corpus_append(b, word, (int64_t)strlen(word));
    if (st) return st;
  }
  char *gloss = bar + 3;
  size_t n = strlen(gloss);
  while (n && (gloss[n - 1] == '\n' || gloss[n - 1] == ' ' || gloss[n - 1] == '\r')) n--;
  gr_status st = corpus_append(b, ": ", 2);
  if (!st) st = corpus_append(b, gloss, (int64_t)n);
  return st ? st : corpus_append(b, "\n", 1);
}

static gr_status wordnet_file(corpus_builder *b, const char *dir, const char *pos, int per_doc) {
  char path[1024];
  snprintf(path, sizeof path, "%s/data.%s", dir, pos);
  FILE *fp = fopen(path, "rb");
  if (!fp) return gr_error(GR_ENOTFOUND, "%s: cannot open: install the Debian package wordnet-base", path);
  char *line = gr_malloc(1 << 16);
  int64_t lineno = 0, synsets = 0;
  gr_status st = line ? GR_OK : gr_error(GR_ENOMEM, "wordnet: out of memory");
  while (!st && fgets(line, 1 << 16, fp)) {
    lineno++;
    if (line[0] == ' ' || line[0] == '\n') continue; /* license header */
    if (synsets % per_doc == 0) {
      char name[64];
      snprintf(name, sizeof name, "%s:%06lld", pos, (long long)(synsets / per_doc));
      st = corpus_start_doc(b, name);
    }
    if (!st) st = wordnet_line(b, line, path, lineno);
    synsets++;
  }
  gr_free(line);
  fclose(fp);
  return st;
}

gr_status text_read_wordnet(const char *dir, const char *pos, int per_doc, gr_corpus **out) {
  static const char *const all[] = {"noun", "verb", "adj", "adv"};
  bool every = !strcmp(pos, "all");
  corpus_builder b;
  gr_status st = corpus_begin(&b, "wordnet");
  for (int i = 0; !st && i < 4; i++)
    if (every || !strcmp(pos, all[i])) st = wordnet_file(&b, dir, all[i], per_doc);
  if (st) return corpus_abort(&b), st;
  *out = corpus_finish(&b);
  if ((*out)->len == 0) {
    gr_corpus_free(*out), *out = NULL;
    return gr_error(GR_EARG, "wordnet: empty corpus in %s", dir);
  }
  return GR_OK;
}

/* ---- C headers ------------------------------------------------------------------- */
static text_file_list *walk_list; /* nftw has no user pointer; the walk is single-threaded */
static size_t walk_prefix;
static gr_status walk_status;

static int walk_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
  size_t n = strlen(path);
  if (type != FTW_F || n < 2 || strcmp(path + n - 2, ".h") || sb->st_size <= 0 || sb->st_size > CCODE_MAX_FILE) return 0;
  text_file_list *l = walk_list;
  if (l->n >= CCODE_MAX_FILES) return walk_status = gr_error(GR_ENOMEM, "ccode: more than %d files", CCODE_MAX_FILES), 1;
  if (l->n == l->cap) {
    int64_t cap = l->cap ? 2 * l->cap : 1024;
    text_file *nf = realloc(l->files, (size_t)cap * sizeof *nf);
    if (!nf) return walk_status = gr_error(GR_ENOMEM, "ccode: out of memory"), 1;
    l->files = nf, l->cap = cap;
  }
  const char *rel = path + walk_prefix;
  while (*rel == '/') rel++;
  if (!(l->files[l->n].name = strdup(rel))) return walk_status = gr_error(GR_ENOMEM, "ccode: out of memory"), 1;
  l->files[l->n++].size = (int64_t)sb->st_size;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(((const text_file *)a)->name, ((const text_file *)b)->name);
}

gr_status text_list_ccode(const char *dir, text_file_list *out) {
  memset(out, 0, sizeof *out);
  struct stat sb;
  if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
    return gr_error(GR_ENOTFOUND, "ccode: %s is not a directory (C headers: install libc6-dev)", dir);
  walk_list = out, walk_prefix = strlen(dir), walk_status = GR_OK;
  int rc = nftw(dir, walk_entry, 32, FTW_PHYS);
  if (rc && !walk_status) walk_status = gr_error(GR_EIO, "ccode: walking %s failed", dir);
  if (!walk_status && out->n == 0) walk_status = gr_error(GR_EARG, "ccode: empty corpus: no *.h file under %s", dir);
  if (walk_status) return text_file_list_free(out), walk_status;
  qsort(out->files, (size_t)out->n, sizeof *out->files, cmp_names); /* independent of directory order */
  return GR_OK;
}

void text_file_list_free(text_file_list *l) {
  for (int64_t i = 0; i < l->n; i++) free(l->files[i].name);
  free(l->files);
  memset(l, 0, sizeof *l);
}

gr_status text_read_files(const char *dir, const text_file_list *l, const int64_t *which, int64_t k, gr_corpus **out) {
  corpus_builder b;
  gr_status st = corpus_begin(&b, "ccode");
  char path[2048];
  for (int64_t i = 0; !st && i < k; i++) {
    const char *name = l->files[which[i]].name;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
      st = gr_error(GR_EIO, "%s: cannot open", path);
      break;
    }
    st = corpus_start_doc(&b, name);
    char buf[65536];
    size_t got;
    while (!st && (got = fread(buf, 1, sizeof buf, fp)) > 0) st = corpus_append(&b, buf, (int64_t)got);
    if (!st && ferror(fp)) st = gr_error(GR_EIO, "%s: read error", path);
    fclose(fp);
  }
  if (st) return corpus_abort(&b), st;
  *out = corpus_finish(&b);
  return GR_OK;
}
