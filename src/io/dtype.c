/* io/dtype.c — safetensors dtypes: names, bit sizes and conversions to and
 * from f32 (f16/bf16 round to nearest even; the F8 formats decoded exactly).
 * Element bytes are little-endian and may be unaligned (read with memcpy). */
#include <math.h>
#include <string.h>

#include "io/st_internal.h"

static const struct {
  const char *name;
  unsigned bits;
} dtypes[GR_DT_COUNT] = {
    [GR_DT_BOOL] = {"BOOL", 8},         [GR_DT_F4] = {"F4", 4},
    [GR_DT_F6_E2M3] = {"F6_E2M3", 6},   [GR_DT_F6_E3M2] = {"F6_E3M2", 6},
    [GR_DT_U8] = {"U8", 8},             [GR_DT_I8] = {"I8", 8},
    [GR_DT_F8_E5M2] = {"F8_E5M2", 8},   [GR_DT_F8_E4M3] = {"F8_E4M3", 8},
    [GR_DT_F8_E8M0] = {"F8_E8M0", 8},   [GR_DT_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [GR_DT_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [GR_DT_I16] = {"I16", 16},          [GR_DT_U16] = {"U16", 16},
    [GR_DT_F16] = {"F16", 16},          [GR_DT_BF16] = {"BF16", 16},
    [GR_DT_I32] = {"I32", 32},          [GR_DT_U32] = {"U32", 32},
    [GR_DT_F32] = {"F32", 32},          [GR_DT_C64] = {"C64", 64},
    [GR_DT_F64] = {"F64", 64},          [GR_DT_I64] = {"I64", 64},
    [GR_DT_U64] = {"U64", 64},
};

const char *gr_dtype_name(gr_dtype dt) { return (unsigned)dt < GR_DT_COUNT ? dtypes[dt].name : "?"; }
unsigned gr_dtype_bits(gr_dtype dt) { return (unsigned)dt < GR_DT_COUNT ? dtypes[dt].bits : 0; }

gr_status gr_dtype_parse(const char *s, size_t len, gr_dtype *out) {
  for (int i = 0; s && i < GR_DT_COUNT; i++)
    if (strlen(dtypes[i].name) == len && !memcmp(dtypes[i].name, s, len)) {
      *out = (gr_dtype)i;
      return GR_OK;
    }
  return st_fail(GR_ST_UNKNOWN_DTYPE, GR_EFORMAT, "unknown dtype '%.*s'", (int)(len > 32 ? 32 : len),
                 s ? s : "");
}

bool gr_dtype_to_f32_supported(gr_dtype dt) {
  return (unsigned)dt < GR_DT_COUNT && dt != GR_DT_F4 && dt != GR_DT_F6_E2M3 && dt != GR_DT_F6_E3M2 &&
         dt != GR_DT_C64;
}

/* ---- half precision ---------------------------------------------------- */
static uint32_t f32_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  return u;
}
static float bits_f32(uint32_t u) {
  float x;
  memcpy(&x, &u, 4);
  return x;
}

float gr_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
  if (exp == 0) return (sign ? -1.0f : 1.0f) * ldexpf((float)man, -24);  /* zero / subnormal */
  return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t gr_f32_to_f16(float x) {
  uint32_t u = f32_bits(x), sign = (u >> 16) & 0x8000, absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((absu >> 13) & 0x3ff)); /* nan, quiet */
  if (absu >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
  if (absu < 0x38800000u) {                                   /* below 2^-14: subnormal half */
    /* value = absu as float; half subnormal unit is 2^-24. Round to nearest even. */
    uint32_t exp = absu >> 23, man = (absu & 0x7fffff) | 0x800000;
    if (exp < 102) return (uint16_t)sign; /* < 2^-25: rounds to zero */
    uint32_t shift = 126 - exp;          /* man * 2^(exp-150) / 2^-24 = man >> (126-exp) */
    uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (uint16_t)(sign | q);
  }
  uint32_t r = absu + 0xfff + ((absu >> 13) & 1); /* round mantissa to 10 bits, ties to even */
  return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

float gr_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t gr_f32_to_bf16(float x) {
  uint32_t u = f32_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* nan, quiet */
  return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

/* ---- 8-bit floats -------------------------------------------------------- */
/* A minifloat with ebits exponent bits, mbits mantissa bits and the bias. */
static float minifloat(unsigned v, unsigned ebits, unsigned mbits, int bias) {
  unsigned sign = (v >> (ebits + mbits)) & 1, e = (v >> mbits) & ((1u << ebits) - 1);
  unsigned m = v & ((1u << mbits) - 1);
  float mag = e ? ldexpf(1.0f + ldexpf((float)m, -(int)mbits), (int)e - bias)
                : ldexpf((float)m, 1 - bias - (int)mbits);
  return sign ? -mag : mag;
}

static float f8_to_f32(gr_dtype dt, uint8_t v) {
  switch (dt) {
    case GR_DT_F8_E5M2: /* IEEE-like: e=31 is inf/nan */
      if ((v & 0x7c) == 0x7c) return (v & 3) ? NAN : ((v & 0x80) ? -INFINITY : INFINITY);
      return minifloat(v, 5, 2, 15);
    case GR_DT_F8_E4M3: /* "fn": no inf, S.1111.111 is nan */
      if ((v & 0x7f) == 0x7f) return NAN;
      return minifloat(v, 4, 3, 7);
    case GR_DT_F8_E4M3FNUZ: /* no inf, no -0: 0x80 is nan */
      if (v == 0x80) return NAN;
      return minifloat(v, 4, 3, 8);
    case GR_DT_F8_E5M2FNUZ:
      if (v == 0x80) return NAN;
      return minifloat(v, 5, 2, 16);
    default: /* F8_E8M0: unsigned power of two, 0xff is nan */
      return v == 0xff ? NAN : ldexpf(1.0f, (int)v - 127);
  }
}

/* ---- bulk conversion ----------------------------------------------------- */
#define LOAD_LOOP(T, EXPR)                          \
  for (int64_t i = 0; i < n; i++) {                 \
    T v;                                            \
    memcpy(&v, s + (size_t)i * sizeof(T), sizeof(T)); \
    dst[i] = (float)(EXPR);                         \
  }                                                 \
  break

gr_status gr_dtype_to_f32(gr_dtype dt, const void *src, float *dst, int64_t n) {
  const uint8_t *s = src;
  if (!gr_dtype_to_f32_supported(dt))
    return st_fail(GR_ST_UNSUPPORTED_DTYPE, GR_EUNSUPPORTED, "no conversion from %s to f32", gr_dtype_name(dt));
  if (n > 0 && (!src || !dst)) return st_fail(GR_ST_BAD_ARG, GR_EARG, "dtype_to_f32: NULL buffer");
  switch (dt) {
    case GR_DT_BOOL: LOAD_LOOP(uint8_t, v != 0);
    case GR_DT_U8: LOAD_LOOP(uint8_t, v);
    case GR_DT_I8: LOAD_LOOP(int8_t, v);
    case GR_DT_I16: LOAD_LOOP(int16_t, v);
    case GR_DT_U16: LOAD_LOOP(uint16_t, v);
    case GR_DT_F16: LOAD_LOOP(uint16_t, gr_f16_to_f32(v));
    case GR_DT_BF16: LOAD_LOOP(uint16_t, gr_bf16_to_f32(v));
    case GR_DT_I32: LOAD_LOOP(int32_t, v);
    case GR_DT_U32: LOAD_LOOP(uint32_t, v);
    case GR_DT_F32: memcpy(dst, s, (size_t)n * 4); break;
    case GR_DT_F64: LOAD_LOOP(double, v);
    case GR_DT_I64: LOAD_LOOP(int64_t, v);
    case GR_DT_U64: LOAD_LOOP(uint64_t, v);
    default: LOAD_LOOP(uint8_t, f8_to_f32(dt, v)); /* the F8 family */
  }
  return GR_OK;
}

gr_status gr_dtype_from_f32(gr_dtype dt, const float *src, void *dst, int64_t n) {
  uint8_t *d = dst;
  if (dt != GR_DT_F32 && dt != GR_DT_F64 && dt != GR_DT_F16 && dt != GR_DT_BF16)
    return st_fail(GR_ST_UNSUPPORTED_DTYPE, GR_EUNSUPPORTED, "no conversion from f32 to %s",
                   gr_dtype_name(dt));
  if (n > 0 && (!src || !dst)) return st_fail(GR_ST_BAD_ARG, GR_EARG, "dtype_from_f32: NULL buffer");
  for (int64_t i = 0; i < n; i++) {
    switch (dt) {
      case GR_DT_F32: memcpy(d + i * 4, src + i, 4); break;
      case GR_DT_F64: {
        double v = src[i];
        memcpy(d + i * 8, &v, 8);
        break;
      }
      case GR_DT_F16: {
        uint16_t h = gr_f32_to_f16(src[i]);
        memcpy(d + i * 2, &h, 2);
        break;
      }
      case GR_DT_BF16: {
        uint16_t h = gr_f32_to_bf16(src[i]);
        memcpy(d + i * 2, &h, 2);
        break;
      }
      default: break; /* excluded above */
    }
  }
  return GR_OK;
}
