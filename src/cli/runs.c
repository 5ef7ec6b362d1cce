/* cli/runs.c — shared by the training verbs: output directories, progress
 * hooks and the transfer grid of `graft demo` / `graft study` (see runs.h). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/runs.h"
#include "graft/dist.h"

static int mkdir_p(const char *dir) {
  char buf[1024];
  if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return -1;
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, 0777) && errno != EEXIST) return -1;
      *p = '/';
    }
  return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

static bool dir_nonempty(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return false;
  struct dirent *e;
  bool any = false;
  while (!any && (e = readdir(d))) any = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  closedir(d);
  return any;
}

void runs_print_dist(int64_t steps) {
  if (gr_dist_size() == 1) return;
  int64_t n = steps > 0 ? steps : 1;
  printf("data-parallel: %d ranks, %llu bytes per step through rank 0's collectives, %.3f ms per step in them "
         "(run averages, initial broadcast included)\n",
         gr_dist_size(), (unsigned long long)(gr_dist_bytes_sent() / (uint64_t)n), 1e3 * gr_dist_comm_seconds() / (double)n);
}

int runs_prepare_outdir(const char *dir, bool force) {
  if (!dir || !dir[0]) return cli_fail("--out DIR is required");
  if (gr_dist_rank() != 0) return CLI_OK; /* data-parallel runs: rank 0 owns the output */
  struct stat st;
  if (!stat(dir, &st)) {
    if (!S_ISDIR(st.st_mode)) return cli_fail("--out %s exists and is not a directory", dir);
    if (dir_nonempty(dir) && !force)
      return cli_fail("output directory %s already exists and is not empty (use --force to overwrite)", dir);
  }
  if (mkdir_p(dir)) return cli_fail("cannot create output directory %s: %s", dir, strerror(errno));
  return CLI_OK;
}

const char *runs_path(char *buf, size_t n, const char *dir, const char *name) {
  snprintf(buf, n, "%s/%s", dir, name);
  return buf;
}

/* ---- progress and curves ------------------------------------------------------- */
static void mon_step(void *ud, int64_t step, int64_t total, double loss) {
  runs_monitor *mon = ud;
  mon->loss_sum += loss, mon->loss_n++;
  if (step % mon->every == 0 || step == total) {
    if (mon->n_curve < (int)(sizeof mon->curve / sizeof mon->curve[0]))
      mon->curve[mon->n_curve++] = (gr_curve_point){step, mon->loss_sum / (double)mon->loss_n, NAN};
    mon->loss_sum = 0, mon->loss_n = 0;
  }
  if (mon->bar) {
    char st[48];
    snprintf(st, sizeof st, "loss %.4f", loss);
    gr_progress_update(mon->bar, step, st);
  }
}

static void mon_eval(void *ud, int64_t step, double train_loss, const gr_eval_result *ev) {
  runs_monitor *mon = ud;
  for (int i = mon->n_curve - 1; i >= 0; i--)
    if (mon->curve[i].step == step) {
      mon->curve[i].acc = ev->accuracy;
      return;
    }
  if (mon->n_curve < (int)(sizeof mon->curve / sizeof mon->curve[0]))
    mon->curve[mon->n_curve++] = (gr_curve_point){step, train_loss, ev->accuracy};
}

void runs_monitor_start(runs_monitor *mon, const char *label, int64_t total_steps, bool quiet) {
  memset(mon, 0, sizeof *mon);
  mon->every = total_steps / 100 > 0 ? total_steps / 100 : 1;
  mon->bar = quiet ? NULL : gr_progress_new(stderr, label, total_steps, GR_PROGRESS_AUTO);
}

void runs_monitor_finish(runs_monitor *mon, const char *status) {
  gr_progress_finish(mon->bar, status);
  mon->bar = NULL;
}

gr_train_hooks runs_monitor_hooks(runs_monitor *mon) { return (gr_train_hooks){mon, mon_step, mon_eval}; }

/* ---- lists ------------------------------------------------------------------- */
int runs_parse_list(const char *s, const char **items, int max, char *storage, size_t storage_n) {
  if (!s || snprintf(storage, storage_n, "%s", s) >= (int)storage_n) return -1;
  int n = 0;
  char *save = NULL;
  for (char *t = strtok_r(storage, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (n >= max) return -1;
    items[n++] = t;
  }
  return n;
}

int runs_parse_doubles(const char *s, double *v, int max) {
  int n = 0;
  const char *p = s;
  while (p && *p) {
    char *end;
    double x = strtod(p, &end);
    if (end == p || n >= max) return -1;
    if (*end == '%') x /= 100, end++;
    v[n++] = x;
    if (*end == ',') end++;
    else if (*end) return -1;
    p = end;
  }
  return n;
}
