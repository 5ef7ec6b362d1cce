/* cli/args.c — the flag parser every verb uses (see cli.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void print_default(FILE *fp, const cli_opt *o) {
  switch (o->kind) {
    case CLI_INT: fprintf(fp, " (default %d)", *(int *)o->dst); break;
    case CLI_I64: fprintf(fp, " (default %lld)", (long long)*(int64_t *)o->dst); break;
    case CLI_FLOAT: fprintf(fp, " (default %g)", *(double *)o->dst); break;
    case CLI_STR:
      if (*(const char **)o->dst) fprintf(fp, " (default %s)", *(const char **)o->dst);
      break;
    case CLI_BOOL: break;
  }
}

static void print_help(FILE *fp, const cli_spec *s) {
  fprintf(fp, "usage: %s\n", s->usage);
  if (s->about) fprintf(fp, "\n%s\n", s->about);
  fprintf(fp, "\noptions:\n");
  for (int i = 0; i < s->n_opts; i++) {
    const cli_opt *o = &s->opts[i];
    const char *arg = o->kind == CLI_BOOL ? "" : o->kind == CLI_STR ? " S" : o->kind == CLI_FLOAT ? " X" : " N";
    fprintf(fp, "  %s%s\n      %s", o->name, arg, o->help);
    print_default(fp, o);
    fputc('\n', fp);
  }
  fprintf(fp, "  --help\n      show this help\n");
}

static int usage_error(const cli_spec *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "graft %s: ", s->verb);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nusage: %s\n(see 'graft %s --help')\n", s->usage, s->verb);
  return CLI_USAGE;
}

static int set_value(const cli_spec *s, const cli_opt *o, const char *v) {
  char *end = NULL;
  errno = 0;
  switch (o->kind) {
    case CLI_INT: {
      long x = strtol(v, &end, 10);
      if (errno || *end || end == v || x < -2147483647L || x > 2147483647L)
        return usage_error(s, "%s wants an integer, got '%s'", o->name, v);
      *(int *)o->dst = (int)x;
      break;
    }
    case CLI_I64: {
      long long x = strtoll(v, &end, 10);
      if (errno || *end || end == v) return usage_error(s, "%s wants an integer, got '%s'", o->name, v);
      *(int64_t *)o->dst = x;
      break;
    }
    case CLI_FLOAT: {
      double x = strtod(v, &end);
      if (errno || *end || end == v || x != x) return usage_error(s, "%s wants a number, got '%s'", o->name, v);
      *(double *)o->dst = x;
      break;
    }
    case CLI_STR: *(const char **)o->dst = v; break;
    case CLI_BOOL: break;
  }
  return CLI_OK;
}

int cli_parse(const cli_spec *s, int argc, char **argv, const char **pos, int *n_pos) {
  int np = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      print_help(stdout, s);
      return CLI_HELP;
    }
    if (a[0] != '-' || a[1] != '-' || a[2] == 0) {
      if (np >= s->max_pos) return usage_error(s, "unexpected argument '%s'", a);
      pos[np++] = a;
      continue;
    }
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    const cli_opt *o = NULL;
    for (int k = 0; k < s->n_opts && !o; k++)
      if (strlen(s->opts[k].name) == len && !strncmp(s->opts[k].name, a, len)) o = &s->opts[k];
    if (!o) return usage_error(s, "unknown option '%.*s'", (int)len, a);
    if (o->kind == CLI_BOOL) {
      if (eq) return usage_error(s, "%s takes no value", o->name);
      *(bool *)o->dst = true;
      continue;
    }
    const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!v) return usage_error(s, "%s needs a value", o->name);
    int rc = set_value(s, o, v);
    if (rc) return rc;
  }
  if (np < s->min_pos) return usage_error(s, "missing argument");
  *n_pos = np;
  return CLI_OK;
}

int cli_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "graft: error: ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return CLI_FAIL;
}

int cli_fail_status(const char *what) {
  const char *m = gr_last_error();
  fprintf(stderr, "graft: error: %s%s%s\n", what, m[0] ? ": " : "", m);
  return CLI_FAIL;
}

int cli_fail_file(const char *path) {
  const char *m = gr_last_error();
  size_t pl = strlen(path);
  if (!strncmp(m, path, pl) && m[pl] == ':') return cli_fail("%s", m);
  return cli_fail("%s: %s", path, m[0] ? m : "failed");
}
