/* Opening a 2 GiB safetensors file reads only its header: the file is made
 * sparse (header written, data a hole, so it costs no disk), gr_st_open is
 * timed, and mincore() on the data region shows that no data page entered
 * the page cache; touching one tensor then does bring its pages in (so the
 * check can fail). The time is printed (docs/RESULTS.md records it). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "graft/safetensors.h"
#include "testutil.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Pages of [off, off+len) of the file that are in the page cache. */
static size_t resident_pages(int fd, uint64_t off, uint64_t len) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  uint64_t start = off / page * page, n = (off + len - start + page - 1) / page;
  void *m = mmap(NULL, n * page, PROT_READ, MAP_SHARED, fd, (off_t)start);
  if (m == MAP_FAILED) return (size_t)-1;
  unsigned char *vec = malloc(n);
  size_t res = 0;
  if (!mincore(m, n * page, vec))
    for (uint64_t i = 0; i < n; i++) res += vec[i] & 1;
  else res = (size_t)-1;
  free(vec);
  munmap(m, n * page);
  return res;
}

int main(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/sparse_%d.safetensors", test_tmpdir(), (int)getpid());
  /* 2 GiB in 8 F32 tensors of 64 Mi elements, plus a small one */
  enum { N = 9 };
  char names[N][32];
  gr_st_entry e[N];
  static const int64_t big[1] = {64 << 20}, small[1] = {1024};
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "model.layers.%d.weight", i);
    e[i] = (gr_st_entry){names[i], GR_DT_F32, 1, i < 8 ? big : small};
  }
  uint8_t *header;
  size_t hlen;
  CHECK_OK(gr_st_header_bytes(e, N, &(gr_st_kv){"format", "pt"}, 1, &header, &hlen));
  uint64_t data = 8ull * (64 << 20) * 4 + 1024 * 4, total = hlen + data;
  int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
  CHECK(fd >= 0 && pwrite(fd, header, hlen, 0) == (ssize_t)hlen && ftruncate(fd, (off_t)total) == 0);
  gr_free(header);
  struct stat sb;
  fstat(fd, &sb);
  double t0 = now_ms();
  gr_st_file *f = NULL;
  CHECK_OK(gr_st_open(path, &f));
  double t1 = now_ms();
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  uint64_t skip = 2 * page; /* the header's own pages may hold the first data bytes */
  size_t before = resident_pages(fd, hlen + skip, data - skip);
  printf("sparse file: %.2f GiB (%lld KiB on disk), header %zu bytes; gr_st_open took %.3f ms; "
         "resident data pages after open: %zu\n",
         total / 1073741824.0, (long long)sb.st_blocks / 2, hlen, t1 - t0, before);
  CHECK(f && gr_st_count(f) == N && gr_st_file_len(f) == total);
  CHECK_MSG(before == 0, "open touched %zu data pages", before);
  /* touch the last (small) tensor: its pages must now be resident */
  const gr_st_tensor *t = f ? gr_st_find(f, "model.layers.8.weight") : NULL;
  float buf[1024];
  CHECK(t && gr_st_read_f32(t, buf, 1024) == GR_OK && buf[0] == 0.0f && buf[1023] == 0.0f);
  size_t after = t ? resident_pages(fd, t->file_offset, t->nbytes) : 0;
  CHECK_MSG(after > 0, "reading a tensor did not show in mincore: the check above would be meaningless");
  gr_st_close(f);
  close(fd);
  unlink(path);
  return test_summary();
}
