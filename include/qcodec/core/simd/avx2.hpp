#pragma once
/// The AVX2 target (with FMA and F16C): 8 FP32 or int32 lanes.

#include <cstdint>

#include "qcodec/config.hpp"
#include "qcodec/core/simd/backend.hpp"
#include "qcodec/core/simd/regions.hpp"

#if QCODEC_USE_AVX2
#include <immintrin.h>

QCODEC_BEGIN_AVX2
namespace qcodec::inline QCODEC_ABI::targets::avx2 {

/// 8 codes starting at even column c, one per byte in the low 8 bytes (INT4: low nibble =
/// even column).
template <int Bits>
inline __m128i load_8_codes(const std::uint8_t* row, index_t c) {
  if constexpr (Bits == 8) {
    return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + c));
  } else {
    std::uint32_t word;
    __builtin_memcpy(&word, row + c / 2, sizeof word);
    const __m128i packed = _mm_cvtsi32_si128(static_cast<int>(word));
    const __m128i low = _mm_and_si128(packed, _mm_set1_epi8(0x0F));
    const __m128i high = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F));
    return _mm_unpacklo_epi8(low, high);
  }
}

struct backend {
  static constexpr index_t width = 8;
  using float_vector = __m256;
  using int_vector = __m256i;

  static float_vector float_zero() { return _mm256_setzero_ps(); }
  static float_vector load(const float* x) { return _mm256_loadu_ps(x); }
  static void store(float* out, float_vector v) { _mm256_storeu_ps(out, v); }
  static float_vector splat(float s) { return _mm256_set1_ps(s); }
  static float_vector add(float_vector a, float_vector b) { return _mm256_add_ps(a, b); }
  static float_vector multiply(float_vector v, float s) { return _mm256_mul_ps(v, _mm256_set1_ps(s)); }
  static float_vector fmadd(float_vector a, float_vector b, float_vector c) { return _mm256_fmadd_ps(a, b, c); }
  static float reduce(float_vector v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
  }

  static int_vector int_zero() { return _mm256_setzero_si256(); }
  static int_vector int_splat(int n) { return _mm256_set1_epi32(n); }
  static int_vector int_add(int_vector a, int_vector b) { return _mm256_add_epi32(a, b); }
  static int_vector int_sub(int_vector a, int_vector b) { return _mm256_sub_epi32(a, b); }
  static int_vector int_multiply(int_vector a, int_vector b) { return _mm256_mullo_epi32(a, b); }
  static int_vector load_ints(const std::int32_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static float_vector to_float(int_vector v) { return _mm256_cvtepi32_ps(v); }
  template <int Bits>
  static int_vector load_codes(const std::uint8_t* row, index_t c) {
    return _mm256_cvtepu8_epi32(load_8_codes<Bits>(row, c));
  }
};
static_assert(simd::backend<backend>);

}  // namespace qcodec::inline QCODEC_ABI::targets::avx2
QCODEC_END_TARGET
#endif
