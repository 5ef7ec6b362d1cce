/* Crash safety of the writer: a child process rewrites a safetensors file
 * slowly (tensor by tensor, through the streaming writer) and is killed with
 * SIGKILL at a random moment; in every one of 30 trials the target must be
 * intact and loadable and hold one complete version (the old one, or the new
 * one if the child got to finish), never a mix or a torn file. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graft/safetensors.h"
#include "testutil.h"

enum { N_TENSORS = 32, NUMEL = 16384, TRIALS = 30 };

static char target[512];

/* Writes version v: every element of every tensor is v, metadata version=v.
 * After each tensor one byte goes to progress_fd (when >= 0). */
static gr_status write_version(int v, int progress_fd) {
  static const int64_t shape[1] = {NUMEL};
  char names[N_TENSORS][16], ver[16];
  gr_st_entry e[N_TENSORS];
  for (int i = 0; i < N_TENSORS; i++) {
    snprintf(names[i], sizeof names[i], "t%02d", i);
    e[i] = (gr_st_entry){names[i], GR_DT_F32, 1, shape};
  }
  snprintf(ver, sizeof ver, "%d", v);
  gr_st_kv meta = {"version", ver};
  static float buf[NUMEL];
  for (int k = 0; k < NUMEL; k++) buf[k] = (float)v;
  gr_st_writer *w;
  gr_status st = gr_st_writer_begin(target, e, N_TENSORS, &meta, 1, &w);
  for (int i = 0; i < N_TENSORS && !st; i++) {
    st = gr_st_writer_write_f32(w, names[i], buf, NUMEL);
    if (progress_fd >= 0 && write(progress_fd, "x", 1) != 1) st = GR_EIO;
  }
  if (st) {
    gr_st_writer_abort(w);
    return st;
  }
  return gr_st_writer_finish(w);
}

/* The file's version, or -1 if it is not one complete, consistent version. */
static int check_version(void) {
  gr_st_file *f = NULL;
  if (gr_st_open(target, &f)) return -1;
  const char *ver = gr_st_metadata_get(f, "version");
  int v = ver ? atoi(ver) : -1;
  static float buf[NUMEL];
  bool ok = gr_st_count(f) == N_TENSORS;
  for (size_t i = 0; ok && i < gr_st_count(f); i++) {
    ok = gr_st_read_f32(gr_st_at(f, i), buf, NUMEL) == GR_OK;
    for (int k = 0; ok && k < NUMEL; k++) ok = buf[k] == (float)v;
  }
  gr_st_close(f);
  return ok ? v : -1;
}

static int remove_temp_files(const char *dir, const char *base) {
  DIR *d = opendir(dir);
  int n = 0;
  char prefix[300], path[1200];
  snprintf(prefix, sizeof prefix, ".%s.tmp.", base);
  for (struct dirent *e; d && (e = readdir(d));)
    if (!strncmp(e->d_name, prefix, strlen(prefix))) {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      n += unlink(path) == 0;
    }
  if (d) closedir(d);
  return n;
}

int main(void) {
  char base[64];
  snprintf(base, sizeof base, "crash_%d.safetensors", (int)getpid());
  snprintf(target, sizeof target, "%s/%s", test_tmpdir(), base);
  CHECK_OK(write_version(0, -1));
  CHECK(check_version() == 0);
  gr_rng r;
  gr_rng_seed(&r, 11);
  int killed = 0, finished = 0, current = 0;
  for (int trial = 1; trial <= TRIALS; trial++) {
    /* kill after a random number of tensors (N_TENSORS+ means after the
     * child is done) plus a random 0-2 ms, so every phase gets hit: before
     * the temp file, mid-data, during fsync/rename, after */
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      _exit(write_version(trial, fds[1]) == GR_OK ? 0 : 3);
    }
    close(fds[1]);
    int wait_for = (int)gr_rng_below(&r, N_TENSORS + 4);
    char c;
    for (int k = 0; k < wait_for && read(fds[0], &c, 1) == 1; k++) {
    }
    useconds_t delay = (useconds_t)gr_rng_below(&r, 2000);
    usleep(delay);
    kill(pid, SIGKILL);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    bool was_killed = WIFSIGNALED(status);
    killed += was_killed;
    finished += !was_killed && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    int v = check_version();
    CHECK_MSG(v == current || v == trial, /* old, or new if the rename happened */
              "trial %d (kill %u us after tensor %d, %s): file holds version %d, expected %d or %d", trial, (unsigned)delay, wait_for,
              was_killed ? "killed" : "finished", v, current, trial);
    if (v >= 0) current = v;
  }
  int temps = remove_temp_files(test_tmpdir(), base);
  printf("%d trials: %d killed mid-run, %d finished; target always one complete version; %d stray temp files removed\n",
         TRIALS, killed, finished, temps);
  CHECK_MSG(killed >= 20, "only %d of %d trials were killed before finishing: test would be vacuous", killed, TRIALS);
  unlink(target);
  return test_summary();
}
