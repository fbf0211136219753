#pragma once
/// SIMD backends as policy structs with the same members; `simd::native` is the one dispatch
/// point, chosen from config.hpp. Loops are written once, templated on the backend, and finish
/// ragged tails with the scalar backend, which is complete on its own and is the reference.
///
/// Members of a backend:
///  - `width`: elements per step;
///  - `dequantize_linear<Bits>(row, c, offset, scale, out)`: out[i] = (code(c + i) - offset) *
///    scale for i < width, codes read from a packed row at column c (c even when Bits == 4);
///    bit-exact with linear_math::dequantize (integer subtract, exact int->float, one multiply).

#include <cstdint>
#include <tuple>

#include "qcodec/codecs/linear_math.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/bit_packing.hpp"

#if QCODEC_USE_AVX2 || QCODEC_USE_AVX512
#include <immintrin.h>
#endif

namespace qcodec::simd {

struct scalar {
  static constexpr index_t width = 1;

  template <int Bits>
  static void dequantize_linear(const std::uint8_t* row, index_t c, int offset, float scale,
                                float* out) {
    out[0] = linear_math::dequantize(unpack_code<Bits>(row, c), offset, scale);
  }
};

#if QCODEC_USE_AVX2 || QCODEC_USE_AVX512
namespace detail {

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

/// 8 codes starting at even column c, one per byte in the low 8 bytes.
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

}  // namespace detail

struct avx2 {
  static constexpr index_t width = 8;

  template <int Bits>
  static void dequantize_linear(const std::uint8_t* row, index_t c, int offset, float scale,
                                float* out) {
    const __m256i codes = _mm256_cvtepu8_epi32(detail::load_8_codes<Bits>(row, c));
    const __m256i centred = _mm256_sub_epi32(codes, _mm256_set1_epi32(offset));
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_cvtepi32_ps(centred), _mm256_set1_ps(scale)));
  }
};
#endif

#if QCODEC_USE_AVX512
struct avx512 {
  static constexpr index_t width = 16;

  template <int Bits>
  static void dequantize_linear(const std::uint8_t* row, index_t c, int offset, float scale,
                                float* out) {
    const __m512i codes = _mm512_cvtepu8_epi32(detail::load_16_codes<Bits>(row, c));
    const __m512i centred = _mm512_sub_epi32(codes, _mm512_set1_epi32(offset));
    _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(centred), _mm512_set1_ps(scale)));
  }
};
using native = avx512;
#elif QCODEC_USE_AVX2
using native = avx2;
#else
using native = scalar;
#endif

/// Every backend compiled into this translation unit, for tests that check each one.
#if QCODEC_USE_AVX512
using compiled_backends = std::tuple<scalar, avx2, avx512>;
#elif QCODEC_USE_AVX2
using compiled_backends = std::tuple<scalar, avx2>;
#else
using compiled_backends = std::tuple<scalar>;
#endif

}  // namespace qcodec::simd
