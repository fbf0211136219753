#pragma once
/// SIMD backends as policy structs with the same members; `simd::native` is the one dispatch
/// point, chosen from config.hpp. Loops are written once, templated on the backend, and finish
/// ragged tails with the scalar backend, which is complete on its own and is the reference.
///
/// Members of a backend:
///  - `width`: elements per step;
///  - `dequantize_linear<Bits>(row, c, offset, scale, out)`: out[i] = (code(c + i) - offset) *
///    scale for i < width, codes read from a packed row at column c (c even when Bits == 4);
///    bit-exact with linear_math::dequantize (integer subtract, exact int->float, one multiply);
///    `dequantize_linear_vector` returns the same values in a register (`float_vector`);
///  - `load(x)`, `store(out, v)`, `add(a, b)`, `fmadd(a, b, c)` and `reduce(v)`: float vectors;
///  - `qins_table<Bits>` built from a tensor's signed LUT; `qins_levels<Bits>(table, row, c)`:
///    lut[code(c + i)] for i < width (c even when Bits == 4), the signed levels the decode
///    multiplies by the row scale (`multiply(v, scale)`; qins_math::decode); `qins_step<Bits>`
///    columns (a multiple of width) at once by `qins_levels_step(table, row, c, out)` into
///    out[0 .. qins_step / width), in column order. The vector backends look up |lut| of the
///    magnitude code in registers (permutes) and set the sign bit from the code's, which is
///    exact because lut[sign | m] = -lut[m]. `qins_levels_step<Bits, false>` may leave the
///    step's levels in another order, cheaper to produce: position p (element p % width of
///    out[p / width]) holds column c + `qins_dot_column<Bits>(p)`. Dot products read their
///    activations in that order.
///
/// Integer members (the int8-activation path of ops/integer_gemv.hpp). They work on weights
/// repacked in panels of `panel_rows` rows, one int32 lane per row (integer_panels): a step
/// of a panel holds 4 bytes per row, the row's codes of 4 consecutive columns (INT8) or of 8
/// columns as nibbles, columns k and k + 4 in the low and high nibble of byte k (INT4). A
/// "quad" is 4 columns of every row of the panel.
///  - `int_batch`: activation rows a kernel pass serves at once (bounded by the registers);
///  - `code_bias<Bits>`: the constant b the backend subtracts from every code inside `dot_quad`;
///  - `load_quad<Bits>(step, part)`: the codes of quad `part` of a step (INT8: 0; INT4: 0 for
///    the low nibbles, 1 for the high ones);
///  - `dot_quad<Bits>(acc, codes, q)`: per lane acc + sum_j (code_j - b) * q[j] over the 4
///    activation codes q[0 .. 3], exact in int32;
///  - `int_add(a, b)`, `load_ints(p)`: int32 lanes;
///  - `fold(total, acc, offsets, q_sum, scales)`: per lane total + float(acc - offset * q_sum) *
///    scale, with offset = the block's offset - b (the lane's share of the block's integer dot
///    product, exact in int32, converted once and added with one FMA).
/// Saturation: AVX2 and AVX-512 without VNNI multiply with vpmaddubsw (u8 x s8, pairs summed
/// with int16 saturation). INT4 codes (<= 15) stay far below it (2 * 15 * 127); INT8 codes
/// (<= 255) would not (2 * 255 * 127 > 32767), so those backends recentre INT8 codes to
/// s8 = code - 128 (b = 128) and multiply |s8| by q with s8's sign: 2 * 128 * 127 < 32767.

#include <array>
#include <cstdint>
#include <tuple>

#include "qcodec/codecs/linear_math.hpp"
#include "qcodec/codecs/qins_math.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/bit_packing.hpp"

#if QCODEC_USE_AVX2 || QCODEC_USE_AVX512
#include <immintrin.h>
#endif

namespace qcodec::simd {

/// How long a loop streaming codes from DRAM spends on each cache line, which sets how it
/// prefetches (bench/RESULTS.md). Without hints, loops that spend long on each line leave the
/// hardware prefetcher behind and wait on DRAM.
///  - fast (a few cycles per line: integer passes of fewer than 4 dot_quads per step, e.g.
///    one activation row): into L1, 2 KiB ahead;
///  - slow (10 or more cycles per line: the QINS8 decode-dot, integer passes of 4 or more
///    dot_quads per step): into L2, 8 KiB ahead. There the L1 hint 2 KiB ahead measured 10%
///    (QINS8 batch 1) to 40% (INT8 batch 8) slower; the L2 hint cost the fast loops 15-25%.
enum class pace { fast, slow };

/// Hints the cache line a Pace-dependent distance past `p` (a hint: never faults).
template <pace Pace>
inline void prefetch_ahead(const void* p) {
  constexpr index_t distance = Pace == pace::fast ? 2048 : 8192;
  constexpr int locality = Pace == pace::fast ? 3 : 2;  // prefetcht0 : prefetcht1
  // Integer arithmetic: the address may lie past the end of the array.
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(p) + distance), 0, locality);
}

struct scalar {
  static constexpr index_t width = 1;

  template <int Bits>
  static void dequantize_linear(const std::uint8_t* row, index_t c, int offset, float scale,
                                float* out) {
    out[0] = linear_math::dequantize(unpack_code<Bits>(row, c), offset, scale);
  }
  template <int Bits>
  static float dequantize_linear_vector(const std::uint8_t* row, index_t c, int offset, float scale) {
    return linear_math::dequantize(unpack_code<Bits>(row, c), offset, scale);
  }
  static float load(const float* x) { return *x; }
  static void store(float* out, float v) { *out = v; }
  static float multiply(float v, float s) { return v * s; }
  static float add(float a, float b) { return a + b; }
  static float fmadd(float a, float b, float c) { return a * b + c; }
  static float reduce(float v) { return v; }

  template <int Bits>
  struct qins_table {
    explicit qins_table(const float* lut) : lut(lut) {}
    const float* lut;
  };
  template <int Bits>
  static float qins_levels(const qins_table<Bits>& table, const std::uint8_t* row, index_t c) {
    return table.lut[unpack_code<Bits>(row, c)];
  }
  template <int Bits>
  static constexpr index_t qins_step = 2;
  template <int Bits>
  static constexpr index_t qins_dot_column(index_t p) { return p; }
  template <int Bits, bool ColumnOrder = true>
  static void qins_levels_step(const qins_table<Bits>& table, const std::uint8_t* row, index_t c, float* out) {
    for (index_t i = 0; i < qins_step<Bits>; ++i) out[i] = qins_levels(table, row, c + i);
  }

  static constexpr index_t panel_rows = 1;
  static constexpr int int_batch = 8;
  using int_vector = std::int32_t;
  using float_vector = float;
  using code_quad = std::array<std::uint8_t, 4>;
  template <int Bits>
  static constexpr int code_bias = 0;

  static int_vector int_zero() { return 0; }
  static float_vector float_zero() { return 0; }
  template <int Bits>
  static code_quad load_quad(const std::uint8_t* step, int part) {
    code_quad codes;
    for (std::size_t j = 0; j < 4; ++j)
      codes[j] = static_cast<std::uint8_t>(Bits == 8 ? step[j] : (step[j] >> (4 * part)) & 0x0F);
    return codes;
  }
  template <int Bits>
  static int_vector dot_quad(int_vector acc, const code_quad& codes, const std::int8_t* q) {
    for (std::size_t j = 0; j < 4; ++j) acc += std::int32_t{codes[j]} * q[j];
    return acc;
  }
  static int_vector int_add(int_vector a, int_vector b) { return a + b; }
  static int_vector load_ints(const std::int32_t* p) { return *p; }
  static float_vector fold(float_vector total, int_vector acc, int_vector offsets, std::int32_t q_sum,
                           float_vector scales) {
    return total + static_cast<float>(acc - offsets * q_sum) * scales;
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

/// The 4 activation codes at q in every int32 lane.
inline std::int32_t quad_word(const std::int8_t* q) {
  std::int32_t word;
  __builtin_memcpy(&word, q, sizeof word);
  return word;
}

/// Lane sums of u8 x s8 products through vpmaddubsw: safe for codes <= 128 (see the header).
inline __m256i maddubs_lanes(__m256i acc, __m256i codes, __m256i q) {
  const __m256i pairs = _mm256_maddubs_epi16(codes, q);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

}  // namespace detail

struct avx2 {
  static constexpr index_t width = 8;

  template <int Bits>
  static void dequantize_linear(const std::uint8_t* row, index_t c, int offset, float scale,
                                float* out) {
    _mm256_storeu_ps(out, dequantize_linear_vector<Bits>(row, c, offset, scale));
  }
  template <int Bits>
  static __m256 dequantize_linear_vector(const std::uint8_t* row, index_t c, int offset, float scale) {
    const __m256i codes = _mm256_cvtepu8_epi32(detail::load_8_codes<Bits>(row, c));
    const __m256i centred = _mm256_sub_epi32(codes, _mm256_set1_epi32(offset));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(centred), _mm256_set1_ps(scale));
  }
  static __m256 load(const float* x) { return _mm256_loadu_ps(x); }
  static void store(float* out, __m256 v) { _mm256_storeu_ps(out, v); }
  static __m256 multiply(__m256 v, float s) { return _mm256_mul_ps(v, _mm256_set1_ps(s)); }
  static __m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
  static __m256 fmadd(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }

  /// QINS4: the 8 magnitudes in one register; QINS8: the LUT itself (read by vgatherdps).
  template <int Bits>
  struct qins_table {
    explicit qins_table(const float* lut) : lut(lut), low(_mm256_loadu_ps(lut)) {}
    const float* lut;
    __m256 low;
  };
  template <int Bits>
  static __m256 qins_levels(const qins_table<Bits>& table, const std::uint8_t* row, index_t c) {
    const __m256i codes = _mm256_cvtepu8_epi32(detail::load_8_codes<Bits>(row, c));
    constexpr int sign_shift = 32 - Bits;  // the code's sign bit to bit 31
    const __m256i magnitude = _mm256_and_si256(codes, _mm256_set1_epi32((1 << (Bits - 1)) - 1));
    const __m256 level = Bits == 4 ? _mm256_permutevar8x32_ps(table.low, magnitude)
                                   : _mm256_i32gather_ps(table.lut, magnitude, 4);
    const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(codes, sign_shift), _mm256_set1_epi32(INT32_MIN));
    return _mm256_xor_ps(level, _mm256_castsi256_ps(sign));
  }
  template <int Bits>
  static constexpr index_t qins_step = 2 * width;
  template <int Bits>
  static constexpr index_t qins_dot_column(index_t p) { return p; }
  template <int Bits, bool ColumnOrder = true>
  static void qins_levels_step(const qins_table<Bits>& table, const std::uint8_t* row, index_t c, __m256* out) {
    for (index_t i = 0; i < 2; ++i) out[i] = qins_levels(table, row, c + i * width);
  }

  static constexpr index_t panel_rows = 8;
  static constexpr int int_batch = 4;
  using int_vector = __m256i;
  using float_vector = __m256;
  using code_quad = __m256i;
  template <int Bits>
  static constexpr int code_bias = Bits == 8 ? 128 : 0;

  static int_vector int_zero() { return _mm256_setzero_si256(); }
  static float_vector float_zero() { return _mm256_setzero_ps(); }
  template <int Bits>
  static code_quad load_quad(const std::uint8_t* step, int part) {
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(step));
    if constexpr (Bits == 8)  // code ^ 0x80 is the s8 value code - 128
      return _mm256_xor_si256(bytes, _mm256_set1_epi8(static_cast<char>(0x80)));
    else
      return _mm256_and_si256(part == 0 ? bytes : _mm256_srli_epi16(bytes, 4), _mm256_set1_epi8(0x0F));
  }
  template <int Bits>
  static int_vector dot_quad(int_vector acc, code_quad codes, const std::int8_t* q) {
    const __m256i qv = _mm256_set1_epi32(detail::quad_word(q));
    if constexpr (Bits == 8)  // |code - 128| times q with the sign of code - 128
      return detail::maddubs_lanes(acc, _mm256_abs_epi8(codes), _mm256_sign_epi8(qv, codes));
    else
      return detail::maddubs_lanes(acc, codes, qv);
  }
  static int_vector int_add(int_vector a, int_vector b) { return _mm256_add_epi32(a, b); }
  static int_vector load_ints(const std::int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static float_vector fold(float_vector total, int_vector acc, int_vector offsets, std::int32_t q_sum,
                           float_vector scales) {
    const __m256i centred = _mm256_sub_epi32(acc, _mm256_mullo_epi32(offsets, _mm256_set1_epi32(q_sum)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(centred), scales, total);
  }
  static float reduce(float_vector total) {
    __m128 v = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_movehdup_ps(v));
    return _mm_cvtss_f32(v);
  }
};
#endif

#if QCODEC_USE_AVX512
struct avx512 {
  static constexpr index_t width = 16;

  template <int Bits>
  static void dequantize_linear(const std::uint8_t* row, index_t c, int offset, float scale,
                                float* out) {
    _mm512_storeu_ps(out, dequantize_linear_vector<Bits>(row, c, offset, scale));
  }
  template <int Bits>
  static __m512 dequantize_linear_vector(const std::uint8_t* row, index_t c, int offset, float scale) {
    const __m512i codes = _mm512_cvtepu8_epi32(detail::load_16_codes<Bits>(row, c));
    const __m512i centred = _mm512_sub_epi32(codes, _mm512_set1_epi32(offset));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(centred), _mm512_set1_ps(scale));
  }
  static __m512 load(const float* x) { return _mm512_loadu_ps(x); }
  static void store(float* out, __m512 v) { _mm512_storeu_ps(out, v); }
  static __m512 multiply(__m512 v, float s) { return _mm512_mul_ps(v, _mm512_set1_ps(s)); }
  static __m512 add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
  static __m512 fmadd(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }

#if defined(__AVX512VBMI__)
  static constexpr bool vbmi = true;
#else
  static constexpr bool vbmi = false;
#endif
  /// QINS8 with VBMI: qins_levels_step looks up 64 magnitudes at once, one byte of the FP32
  /// value per vpermi2b (a 7-bit index into 128 bytes, the code's sign bit ignored).
  template <int Bits>
  static constexpr bool byte_planes = Bits == 8 && vbmi;

  /// The magnitudes lut[0 .. 2^(Bits-1) - 1] in registers: 8 (QINS4) or 128 (QINS8) floats;
  /// with byte_planes also plane[k][h] = byte k of lut[64 h .. 64 h + 63].
  template <int Bits>
  struct qins_table {
    explicit qins_table(const float* lut) {
      for (int i = 0; i < parts; ++i)
        part[i] = Bits == 4 ? _mm512_castps256_ps512(_mm256_loadu_ps(lut)) : _mm512_loadu_ps(lut + 16 * i);
      if constexpr (byte_planes<Bits>) {
        alignas(64) static constexpr std::array<std::uint8_t, 64> first_bytes = [] {
          std::array<std::uint8_t, 64> t{};  // byte 0 of float p mod 32 of a 32-float pair
          for (int p = 0; p < 64; ++p) t[p] = static_cast<std::uint8_t>(4 * (p % 32));
          return t;
        }();
        for (int k = 0; k < 4; ++k) {
          const __m512i pick = _mm512_add_epi8(_mm512_load_si512(first_bytes.data()), _mm512_set1_epi8(static_cast<char>(k)));
          for (int h = 0; h < 2; ++h) {
            const auto bytes_of = [&](int i) {
              return _mm512_permutex2var_epi8(_mm512_castps_si512(part[4 * h + i]), pick,
                                              _mm512_castps_si512(part[4 * h + i + 1]));
            };
            plane[k][h] = _mm512_mask_blend_epi8(0xFFFFFFFF00000000, bytes_of(0), bytes_of(2));
          }
        }
      }
    }
    static constexpr int parts = Bits == 4 ? 1 : 8;
    __m512 part[parts];
    __m512i plane[4][2];  // set only with byte_planes<Bits>
  };
  template <int Bits>
  static __m512 qins_levels(const qins_table<Bits>& table, const std::uint8_t* row, index_t c) {
    const __m512i codes = _mm512_cvtepu8_epi32(detail::load_16_codes<Bits>(row, c));
    __m512 level;
    if constexpr (Bits == 4) {
      level = _mm512_permutexvar_ps(_mm512_and_si512(codes, _mm512_set1_epi32(7)), table.part[0]);
    } else {
      // Bits 0-4 of the magnitude pick within 32 entries (vpermt2ps), bits 5 and 6 pick the
      // 32-entry quarter.
      __m512 quarter[4];
      for (int i = 0; i < 4; ++i)
        quarter[i] = _mm512_permutex2var_ps(table.part[2 * i], codes, table.part[2 * i + 1]);
      const __mmask16 bit5 = _mm512_test_epi32_mask(codes, _mm512_set1_epi32(32));
      const __mmask16 bit6 = _mm512_test_epi32_mask(codes, _mm512_set1_epi32(64));
      level = _mm512_mask_blend_ps(bit6, _mm512_mask_blend_ps(bit5, quarter[0], quarter[1]),
                                   _mm512_mask_blend_ps(bit5, quarter[2], quarter[3]));
    }
    const __m512i sign = _mm512_and_si512(_mm512_slli_epi32(codes, 32 - Bits), _mm512_set1_epi32(INT32_MIN));
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(level), sign));
  }
  template <int Bits>
  static constexpr index_t qins_step = byte_planes<Bits> ? 4 * width : 2 * width;
  /// With byte_planes, the byte->dword unpacks of qins_levels_step leave, in 128-bit lane L of
  /// out[v], the bytes at positions 16 L + 4 v + i (i < 4) of the code vector: position
  /// 16 v + 4 L + i holds column 16 L + 4 v + i (a 4x4 transpose of 4-byte groups, its own
  /// inverse).
  template <int Bits>
  static constexpr index_t qins_dot_column(index_t p) {
    return byte_planes<Bits> ? 16 * (p / 4 % 4) + 4 * (p / 16) + p % 4 : p;
  }
  template <int Bits, bool ColumnOrder = true>
  static void qins_levels_step(const qins_table<Bits>& table, const std::uint8_t* row, index_t c, __m512* out) {
    if constexpr (byte_planes<Bits>) {
      // In column order the codes are transposed first, so that out[v] holds columns
      // 16 v .. 16 v + 15 in order.
      alignas(64) static constexpr std::array<std::uint8_t, 64> transpose = [] {
        std::array<std::uint8_t, 64> t{};
        for (int p = 0; p < 64; ++p) t[p] = static_cast<std::uint8_t>(qins_dot_column<Bits>(p));
        return t;
      }();
      __m512i codes = _mm512_loadu_si512(row + c);
      if constexpr (ColumnOrder) codes = _mm512_permutexvar_epi8(_mm512_load_si512(transpose.data()), codes);
      __m512i byte[4];
      for (int k = 0; k < 4; ++k)
        byte[k] = _mm512_permutex2var_epi8(table.plane[k][0], codes, table.plane[k][1]);
      // The sign: the code's bit 7 into bit 7 of the top byte (byte[3] ^ (codes & 0x80)).
      byte[3] = _mm512_ternarylogic_epi32(byte[3], codes, _mm512_set1_epi8(static_cast<char>(0x80)), 0x78);
      const __m512i low01 = _mm512_unpacklo_epi8(byte[0], byte[1]), high01 = _mm512_unpackhi_epi8(byte[0], byte[1]);
      const __m512i low23 = _mm512_unpacklo_epi8(byte[2], byte[3]), high23 = _mm512_unpackhi_epi8(byte[2], byte[3]);
      out[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(low01, low23));
      out[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(low01, low23));
      out[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(high01, high23));
      out[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(high01, high23));
    } else {
      for (index_t i = 0; i < 2; ++i) out[i] = qins_levels(table, row, c + i * width);
    }
  }

#if defined(__AVX512VNNI__)
  static constexpr bool vnni = true;
#else
  static constexpr bool vnni = false;
#endif
  static constexpr index_t panel_rows = 16;
  static constexpr int int_batch = 8;
  using int_vector = __m512i;
  using float_vector = __m512;
  using code_quad = __m512i;
  template <int Bits>
  static constexpr int code_bias = Bits == 8 && !vnni ? 128 : 0;

  static int_vector int_zero() { return _mm512_setzero_si512(); }
  static float_vector float_zero() { return _mm512_setzero_ps(); }
  template <int Bits>
  static code_quad load_quad(const std::uint8_t* step, int part) {
    const __m512i bytes = _mm512_loadu_si512(step);
    if constexpr (Bits == 4)
      return _mm512_and_si512(part == 0 ? bytes : _mm512_srli_epi16(bytes, 4), _mm512_set1_epi8(0x0F));
    else if constexpr (code_bias<Bits> == 128)
      return _mm512_xor_si512(bytes, _mm512_set1_epi8(static_cast<char>(0x80)));
    else
      return bytes;
  }
  template <int Bits>
  static int_vector dot_quad(int_vector acc, code_quad codes, const std::int8_t* q) {
#if defined(__AVX512VNNI__) && defined(__GNUC__)
    // u8 x s8, four products per int32 lane, q broadcast from memory. As asm: GCC 12 copies
    // the accumulator of the intrinsic to a fresh register and back on every call.
    __asm__("vpdpbusd %2%{1to16%}, %1, %0"
            : "+v"(acc)
            : "v"(codes), "m"(*reinterpret_cast<const std::int32_t*>(q)));
    return acc;
#else
    const __m512i qv = _mm512_set1_epi32(detail::quad_word(q));
#  if defined(__AVX512VNNI__)
    return _mm512_dpbusd_epi32(acc, codes, qv);
#  else
    __m512i u = codes, s = qv;
    if constexpr (Bits == 8) {  // |code - 128| times q with the sign of code - 128
      u = _mm512_abs_epi8(codes);
      s = _mm512_mask_sub_epi8(qv, _mm512_movepi8_mask(codes), _mm512_setzero_si512(), qv);
    }
    const __m512i pairs = _mm512_maddubs_epi16(u, s);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)));
#  endif
#endif
  }
  static int_vector int_add(int_vector a, int_vector b) { return _mm512_add_epi32(a, b); }
  static int_vector load_ints(const std::int32_t* p) { return _mm512_loadu_si512(p); }
  static float_vector fold(float_vector total, int_vector acc, int_vector offsets, std::int32_t q_sum,
                           float_vector scales) {
    const __m512i centred = _mm512_sub_epi32(acc, _mm512_mullo_epi32(offsets, _mm512_set1_epi32(q_sum)));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(centred), scales, total);
  }
  /// Halves, then avx2's reduction. Zero-masked extracts: GCC 12's _mm512_reduce_add_ps and
  /// _mm512_castps512_ps256 read an "undefined" register and trip -Wuninitialized.
  static float reduce(float_vector total) {
    const __m512d both = _mm512_castps_pd(total);
    const __m256 low = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, both, 0));
    const __m256 high = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, both, 1));
    return avx2::reduce(_mm256_add_ps(low, high));
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
