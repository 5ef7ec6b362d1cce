/* cli/cli.h — shared pieces of the command-line tool: the verb signature,
 * the flag parser every verb uses, and error printing. One file per verb
 * (cli/<verb>.c) defines `int cmd_<verb>(int argc, char **argv)`; verbs are
 * declared weak in graft.c, so a verb whose file is absent reports itself as
 * not built rather than failing the link. Exit codes: 0 success, 1 bad input
 * or failed work, 2 usage error. */
#ifndef GRAFT_CLI_H
#define GRAFT_CLI_H
#include <stdbool.h>
#include <stdint.h>

#include "graft/graft.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_HELP = -1 };

typedef enum cli_kind { CLI_INT, CLI_I64, CLI_FLOAT, CLI_STR, CLI_BOOL } cli_kind;

typedef struct cli_opt {
  const char *name; /* "--seed" */
  cli_kind kind;
  void *dst;        /* int*, int64_t*, double*, const char**, bool* */
  const char *help; /* one line; the default is printed from *dst */
} cli_opt;

typedef struct cli_spec {
  const char *verb;    /* "train" */
  const char *usage;   /* "graft train --model M --data D [options]" */
  const char *about;   /* a paragraph printed by --help */
  const cli_opt *opts;
  int n_opts;
  int min_pos, max_pos; /* positional argument counts */
} cli_spec;

/* Parses argv[1..] against spec. Positionals go to pos (up to max_pos).
 * Returns CLI_OK, CLI_HELP (help printed to stdout: exit 0), or CLI_USAGE
 * (message + usage printed to stderr: exit 2). --flag=value and --flag value
 * both work; a bool flag takes no value. */
int cli_parse(const cli_spec *spec, int argc, char **argv, const char **pos, int *n_pos);

/* Prints "graft: error: <msg>" (and gr_last_error() if non-empty) to stderr;
 * returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "graft: error: <what>: <gr_last_error()>" and returns CLI_FAIL. */
int cli_fail_status(const char *what);
/* Same for a file, without repeating the path when the message already
 * starts with "<path>:" (io messages name their file). */
int cli_fail_file(const char *path);

#endif
