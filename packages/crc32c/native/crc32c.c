/*
 * CRC32C (Castagnoli, reflected, as iSCSI, ext4 and Kafka record batches use it) for Node.
 *
 * Large inputs are folded 256 bytes at a time with AVX-512 carry-less multiplication: four
 * 512-bit accumulators, each holding four 128-bit lanes, are multiplied forward by the distance to
 * the next block and combined with it. What remains (one 128-bit value and a tail under 256 bytes)
 * goes through the SSE4.2 crc32 instruction. The result equals the table-driven definition; the
 * package's tests compare it with @node-rs/crc32 for every length up to a few KiB.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

/* The Castagnoli polynomial without its x^32 term, normal bit order. */
#define POLY_LOW 0x1EDC6F41u

/* a * b mod P, normal bit order (bit d is the coefficient of x^d). */
static uint32_t multiply(uint32_t a, uint32_t b) {
  uint64_t product = 0;
  for (int i = 0; i < 32; i++)
    if ((b >> i) & 1) product ^= (uint64_t)a << i;
  for (int i = 63; i >= 32; i--)
    if ((product >> i) & 1) product ^= ((uint64_t)POLY_LOW << (i - 32)) ^ (1ull << i);
  return (uint32_t)product;
}

/* x^e mod P. */
static uint32_t x_to_the(uint64_t e) {
  uint32_t result = 1, square = 2;
  for (; e != 0; e >>= 1, square = multiply(square, square))
    if (e & 1) result = multiply(result, square);
  return result;
}

/*
 * A 128-bit lane is its lower quadword (the earlier bytes, the higher powers) times x^64 plus its
 * upper quadword. Moving it forward by n bits multiplies the lower one by x^(n+64) and the upper
 * one by x^n; a reflected carry-less product comes out one power short, hence the - 1.
 */
typedef struct {
  uint64_t lower, upper;
} fold_constants;

static uint64_t reflected(uint32_t poly) {
  uint64_t r = 0;
  for (int d = 0; d < 32; d++)
    if ((poly >> d) & 1) r |= 1ull << (63 - d);
  return r;
}

static fold_constants fold_by(uint64_t bits) {
  fold_constants k = {reflected(x_to_the(bits + 64 - 1)), reflected(x_to_the(bits - 1))};
  return k;
}

static fold_constants BY_2048, BY_512, BY_384, BY_256, BY_128;
static int wide = 0;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void initialise(void) {
  BY_2048 = fold_by(2048);
  BY_512 = fold_by(512);
  BY_384 = fold_by(384);
  BY_256 = fold_by(256);
  BY_128 = fold_by(128);
#ifdef HAVE_X86
  unsigned a, b, c, d;
  int sse42 = __get_cpuid(1, &a, &b, &c, &d) && ((c >> 20) & 1) && ((c >> 1) & 1);
  int leaf7 = __get_cpuid_count(7, 0, &a, &b, &c, &d);
  /* AVX-512 F and VL, VPCLMULQDQ, and the OS saving the ZMM state (XCR0 bits 1, 2, 5-7). */
  int avx512 = leaf7 && ((b >> 16) & 1) && ((b >> 31) & 1) && ((c >> 10) & 1);
  if (sse42 && avx512 && __get_cpuid(1, &a, &b, &c, &d) && ((c >> 27) & 1)) {
    uint32_t xcr0_low, xcr0_high;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    wide = (xcr0_low & 0xe6) == 0xe6;
  }
#endif
}

#ifdef HAVE_X86
__attribute__((target("sse4.2"))) static uint32_t crc_bytewise(uint32_t c, const uint8_t *p,
                                                                  size_t n) {
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    memcpy(&word, p, 8);
    c = (uint32_t)_mm_crc32_u64(c, word);
  }
  for (; n > 0; p++, n--) c = _mm_crc32_u8(c, *p);
  return c;
}

#define WIDE_TARGET __attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2")))

WIDE_TARGET static __m128i fold_lane(__m128i lane, fold_constants k) {
  __m128i kk = _mm_set_epi64x((long long)k.upper, (long long)k.lower);
  return _mm_xor_si128(_mm_clmulepi64_si128(lane, kk, 0x00), _mm_clmulepi64_si128(lane, kk, 0x11));
}

WIDE_TARGET static __m512i fold_block(__m512i block, __m512i k, __m512i next) {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(block, k, 0x00),
                                   _mm512_clmulepi64_epi128(block, k, 0x11), next, 0x96);
}

WIDE_TARGET static __m512i broadcast(fold_constants k) {
  return _mm512_broadcast_i32x4(_mm_set_epi64x((long long)k.upper, (long long)k.lower));
}

WIDE_TARGET static uint32_t crc_folded(uint32_t c, const uint8_t *p, size_t n) {
  if (n < 512) return crc_bytewise(c, p, n);
  __m512i by_2048 = broadcast(BY_2048), by_512 = broadcast(BY_512);
  __m512i a0 = _mm512_loadu_si512(p), a1 = _mm512_loadu_si512(p + 64);
  __m512i a2 = _mm512_loadu_si512(p + 128), a3 = _mm512_loadu_si512(p + 192);
  /* The running checksum enters as the first 32 bits of the message. */
  a0 = _mm512_xor_si512(a0, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)c)));
  for (p += 256, n -= 256; n >= 256; p += 256, n -= 256) {
    a0 = fold_block(a0, by_2048, _mm512_loadu_si512(p));
    a1 = fold_block(a1, by_2048, _mm512_loadu_si512(p + 64));
    a2 = fold_block(a2, by_2048, _mm512_loadu_si512(p + 128));
    a3 = fold_block(a3, by_2048, _mm512_loadu_si512(p + 192));
  }
  a1 = fold_block(a0, by_512, a1);
  a2 = fold_block(a1, by_512, a2);
  a3 = fold_block(a2, by_512, a3);
  __m128i x = _mm_xor_si128(
      _mm_xor_si128(fold_lane(_mm512_extracti32x4_epi32(a3, 0), BY_384),
                    fold_lane(_mm512_extracti32x4_epi32(a3, 1), BY_256)),
      _mm_xor_si128(fold_lane(_mm512_extracti32x4_epi32(a3, 2), BY_128),
                    _mm512_extracti32x4_epi32(a3, 3)));
  /* The folded 16 bytes and the tail, from a zero register: the checksum is already in them. */
  uint32_t r = (uint32_t)_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x));
  r = (uint32_t)_mm_crc32_u64(r, (uint64_t)_mm_extract_epi64(x, 1));
  return crc_bytewise(r, p, n);
}
#endif

static napi_value checksum(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  bool is_typed = false;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is_typed) != napi_ok || !is_typed) {
    napi_throw_type_error(env, NULL, "crc32c: data must be a Uint8Array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "crc32c: data must be a Uint8Array");
    return NULL;
  }
  uint32_t initial = 0;
  napi_valuetype initial_type = napi_undefined;
  if (argc > 1 && napi_typeof(env, argv[1], &initial_type) != napi_ok) return NULL;
  if (initial_type != napi_undefined && napi_get_value_uint32(env, argv[1], &initial) != napi_ok) {
    napi_throw_type_error(env, NULL, "crc32c: initial must be a number");
    return NULL;
  }
  uint32_t c = ~initial;
#ifdef HAVE_X86
  c = crc_folded(c, (const uint8_t *)data, length);
#endif
  napi_value result;
  napi_create_uint32(env, ~c, &result);
  return result;
}

NAPI_MODULE_INIT() {
  pthread_once(&once, initialise);
  napi_value value;
  if (wide) {
    napi_create_function(env, "crc32c", NAPI_AUTO_LENGTH, checksum, NULL, &value);
    napi_set_named_property(env, exports, "crc32c", value);
  }
  napi_get_boolean(env, wide, &value);
  napi_set_named_property(env, exports, "wide", value);
  return exports;
}
