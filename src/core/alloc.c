/* core/alloc.c — counted heap allocation and bump arenas.
 * An arena is a list of blocks; allocation bumps a pointer in the newest
 * block and adds a block (at least double the last) when full. Reset
 * rewinds; when more than one block was needed, reset frees them and
 * allocates one block of the total, so the next identical step fits in one
 * block with no further malloc. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/op.h"

#define GR_ALIGN 64

static atomic_uint_fast64_t n_allocs;

void *gr_malloc(size_t bytes) {
  atomic_fetch_add(&n_allocs, 1);
  if (bytes == 0) bytes = 1;
  size_t rounded = (bytes + GR_ALIGN - 1) & ~(size_t)(GR_ALIGN - 1);
  if (rounded < bytes) return NULL;
  return aligned_alloc(GR_ALIGN, rounded);
}

void *gr_calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  void *p = gr_malloc(n * size);
  if (p) memset(p, 0, n * size);
  return p;
}

void gr_free(void *p) { free(p); }
uint64_t gr_alloc_count(void) { return atomic_load(&n_allocs); }

typedef struct block {
  struct block *next; /* older block */
  size_t cap, used;
  unsigned char *mem;
} block;

struct gr_arena {
  block *head;     /* newest */
  size_t total;    /* capacity over all blocks */
  size_t used_all; /* bytes handed out since reset (incl. filled blocks) */
};

static block *block_new(size_t cap) {
  block *b = gr_malloc(sizeof *b);
  if (!b) return NULL;
  b->mem = gr_malloc(cap);
  if (!b->mem) {
    gr_free(b);
    return NULL;
  }
  b->cap = cap;
  b->used = 0;
  b->next = NULL;
  return b;
}

gr_arena *gr_arena_new(size_t initial_bytes) {
  gr_arena *a = gr_malloc(sizeof *a);
  if (!a) {
    gr_error(GR_ENOMEM, "arena: cannot allocate %zu bytes", initial_bytes);
    return NULL;
  }
  if (initial_bytes < 4096) initial_bytes = 4096;
  a->head = block_new(initial_bytes);
  if (!a->head) {
    gr_free(a);
    gr_error(GR_ENOMEM, "arena: cannot allocate %zu bytes", initial_bytes);
    return NULL;
  }
  a->total = initial_bytes;
  a->used_all = 0;
  return a;
}

void gr_arena_free(gr_arena *a) {
  if (!a) return;
  for (block *b = a->head, *n; b; b = n) {
    n = b->next;
    gr_free(b->mem);
    gr_free(b);
  }
  gr_free(a);
}

void *gr_arena_alloc_uninit(gr_arena *a, size_t bytes) {
  size_t need = (bytes + GR_ALIGN - 1) & ~(size_t)(GR_ALIGN - 1);
  if (need < bytes || need > ((size_t)1 << 46)) {
    gr_error(GR_ENOMEM, "arena: absurd allocation of %zu bytes", bytes);
    return NULL;
  }
  block *b = a->head;
  if (b->cap - b->used < need) {
    size_t cap = b->cap * 2;
    if (cap < need) cap = need;
    block *nb = block_new(cap);
    if (!nb) {
      gr_error(GR_ENOMEM, "arena: cannot allocate %zu bytes", cap);
      return NULL;
    }
    nb->next = b;
    a->head = b = nb;
    a->total += cap;
  }
  void *p = b->mem + b->used;
  b->used += need;
  a->used_all += need;
#ifndef NDEBUG
  memset(p, 0xff, need); /* NaN in every float: a kernel that skips an element shows in tests */
#endif
  return p;
}

void *gr_arena_alloc(gr_arena *a, size_t bytes) {
  void *p = gr_arena_alloc_uninit(a, bytes);
  if (p) memset(p, 0, (bytes + GR_ALIGN - 1) & ~(size_t)(GR_ALIGN - 1));
  return p;
}

void gr_arena_reset(gr_arena *a) {
  if (a->head->next) { /* coalesce: one block big enough for everything */
    size_t total = a->total;
    block *nb = block_new(total);
    if (nb) {
      for (block *b = a->head, *n; b; b = n) {
        n = b->next;
        gr_free(b->mem);
        gr_free(b);
      }
      a->head = nb;
    }
  }
  for (block *b = a->head; b; b = b->next) b->used = 0;
  a->used_all = 0;
}

size_t gr_arena_used(const gr_arena *a) { return a->used_all; }
size_t gr_arena_capacity(const gr_arena *a) { return a->total; }
