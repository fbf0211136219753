#pragma once
/// The AVX-512 target (F, BW, VL, DQ, VNNI, VBMI): 16 FP32 or int32 lanes.

#include <cstdint>

#include "qcodec/config.hpp"
#include "qcodec/core/simd/avx2.hpp"
#include "qcodec/core/simd/backend.hpp"
#include "qcodec/core/simd/regions.hpp"

#if QCODEC_USE_AVX512
#include <immintrin.h>

QCODEC_BEGIN_AVX512
namespace qcodec::inline QCODEC_ABI::targets::avx512 {

/// 16 bytes of codes for 16 consecutive columns starting at even column c; INT4 nibbles are
/// split and interleaved (low nibble = even column) into one byte each.
template <int Bits>
inline __m128i load_16_codes(const std::uint8_t* row, index_t c) {
  if constexpr (Bits == 8) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c));
  } else {
    const __m128i packed = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + c / 2));
    const __m128i low = _mm_and_si128(packed, _mm_set1_epi8(0x0F));
    const __m128i high = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F));
    return _mm_unpacklo_epi8(low, high);
  }
}

struct backend {
  static constexpr index_t width = 16;
  using float_vector = __m512;
  using int_vector = __m512i;

  static float_vector float_zero() { return _mm512_setzero_ps(); }
  static float_vector load(const float* x) { return _mm512_loadu_ps(x); }
  static void store(float* out, float_vector v) { _mm512_storeu_ps(out, v); }
  static float_vector splat(float s) { return _mm512_set1_ps(s); }
  static float_vector add(float_vector a, float_vector b) { return _mm512_add_ps(a, b); }
  static float_vector multiply(float_vector v, float s) { return _mm512_mul_ps(v, _mm512_set1_ps(s)); }
  static float_vector fmadd(float_vector a, float_vector b, float_vector c) { return _mm512_fmadd_ps(a, b, c); }
  /// Halves, then avx2's reduction. Zero-masked extracts: GCC 12's _mm512_reduce_add_ps and
  /// _mm512_castps512_ps256 read an "undefined" register and trip -Wuninitialized.
  static float reduce(float_vector v) {
    const __m512d both = _mm512_castps_pd(v);
    const __m256 low = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, both, 0));
    const __m256 high = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, both, 1));
    return avx2::backend::reduce(_mm256_add_ps(low, high));
  }

  static int_vector int_zero() { return _mm512_setzero_si512(); }
  static int_vector int_splat(int n) { return _mm512_set1_epi32(n); }
  static int_vector int_add(int_vector a, int_vector b) { return _mm512_add_epi32(a, b); }
  static int_vector int_sub(int_vector a, int_vector b) { return _mm512_sub_epi32(a, b); }
  static int_vector int_multiply(int_vector a, int_vector b) { return _mm512_mullo_epi32(a, b); }
  static int_vector load_ints(const std::int32_t* p) { return _mm512_loadu_si512(p); }
  static float_vector to_float(int_vector v) { return _mm512_cvtepi32_ps(v); }
  template <int Bits>
  static int_vector load_codes(const std::uint8_t* row, index_t c) {
    return _mm512_cvtepu8_epi32(load_16_codes<Bits>(row, c));
  }
};
static_assert(simd::backend<backend>);

}  // namespace qcodec::inline QCODEC_ABI::targets::avx512
QCODEC_END_TARGET
#endif
