/* report/sysinfo.c — wall clock, resident memory and CPU model: what the
 * tables and reports say about the machine and the cost of a run. Linux
 * /proc first, POSIX fallbacks where they exist. Not for timing inside
 * kernels (use perf). */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "graft/report.h"

double gr_wall_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Value in bytes of a "Key:   1234 kB" line of /proc/self/status; -1 if absent. */
static int64_t proc_status_kib_field(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  size_t klen = strlen(key);
  int64_t bytes = -1;
  while (fgets(line, sizeof line, f)) {
    long long kib;
    if (!strncmp(line, key, klen) && line[klen] == ':' && sscanf(line + klen + 1, "%lld", &kib) == 1) {
      bytes = (int64_t)kib * 1024;
      break;
    }
  }
  fclose(f);
  return bytes;
}

int64_t gr_peak_rss_bytes(void) {
  int64_t b = proc_status_kib_field("VmHWM");
  if (b >= 0) return b;
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return (int64_t)ru.ru_maxrss * 1024; /* Linux and BSD report KiB */
}

int64_t gr_current_rss_bytes(void) { return proc_status_kib_field("VmRSS"); }

gr_status gr_peak_rss_reset(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return gr_error(GR_EUNSUPPORTED, "peak rss reset: cannot open /proc/self/clear_refs");
  int ok = fputs("5", f) >= 0;
  ok &= fclose(f) == 0;
  if (!ok) return gr_error(GR_EUNSUPPORTED, "peak rss reset: /proc/self/clear_refs refused the reset");
  return GR_OK;
}

void gr_cpu_model(char *buf, size_t n) {
  if (!buf || n == 0) return;
  snprintf(buf, n, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    /* x86: "model name"; some ARM kernels: "Model" or "Hardware". */
    if (strncmp(line, "model name", 10) && strncmp(line, "Model", 5) && strncmp(line, "Hardware", 8)) continue;
    char *colon = strchr(line, ':');
    if (!colon) continue;
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    v[strcspn(v, "\r\n")] = 0;
    if (*v) {
      snprintf(buf, n, "%s", v);
      break;
    }
  }
  fclose(f);
}
