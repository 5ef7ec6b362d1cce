/* fuzz_safetensors.c — libFuzzer target for the safetensors parser
 * (gr_st_parse on arbitrary bytes, the counterpart of the reference crate's
 * fuzz_target_1). A valid parse is exercised further: every tensor is looked
 * up by name, its data range checked against the input and (when small)
 * converted to f32, every metadata pair looked up, so ASan sees any read
 * past the buffer. Built by tests/fuzz/CMakeLists.txt (`make fuzz`). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graft/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gr_st_file *f = NULL;
  if (gr_st_parse(data, size, "fuzz", &f) != GR_OK) {
    if (f || gr_st_last_err() == GR_ST_OK) abort(); /* failure must be reported, with no file */
    return 0;
  }
  float tmp[256];
  for (size_t i = 0; i < gr_st_count(f); i++) {
    const gr_st_tensor *t = gr_st_at(f, i);
    const uint8_t *d = t->data;
    if (d < data || d + t->nbytes > data + size || t->nbytes > size) abort();
    if (gr_st_find(f, t->name) != t) abort();
    if (t->numel <= 256 && gr_dtype_to_f32_supported(t->dtype) && gr_st_read_f32(t, tmp, 256) != GR_OK) abort();
  }
  for (size_t i = 0; i < gr_st_metadata_count(f); i++) {
    const char *k, *v;
    gr_st_metadata_at(f, i, &k, &v);
    if (gr_st_metadata_get(f, k) != v) abort();
  }
  gr_st_close(f);
  return 0;
}
