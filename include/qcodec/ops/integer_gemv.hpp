#pragma once
/// Opt-in integer-domain GEMV for linear codecs: y = x * Wᵀ with int8 activations and int32
/// dot products against the weight codes, the scalar reference (SIMD paths are tested
/// against it).
///
/// Activations: each row of x is quantized on the fly, symmetrically, with one FP32 scale
/// s_x = max|x_row| / 127 and codes q = rint(x / s_x) in [-127, 127] (per activation row,
/// not per weight group: one scale keeps the reference simple, and the error bound below
/// holds for any weight granularity). For each weight block (row r, group g) with scale s_g
/// and offset z_g the integer dot product acc = sum q_c * (code_c - z_g) is exact: int32
/// partial sums of at most 2^15 terms (2^15 * 127 * 255 < 2^31) added in int64, so
///   y[b, r] = s_x * sum_g s_g * acc_g,
/// summed over the groups in double and rounded to FP32 once.
///
/// Error against x * Ŵᵀ (Ŵ the decoded weight): the integer part is exact, so the error is
/// the activation rounding, |x_c - s_x q_c| <= s_x (1/2 + 2^-17) (the half step, plus the
/// rounding of x / s_x, at most 128 * 2^-24 code units), times sum_c |ŵ_c|, plus the FP32
/// roundings of ŵ_c and of the result (2^-24 each, relative to sum_c |x_c ŵ_c|).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "qcodec/codecs/codec.hpp"
#include "qcodec/core/bit_packing.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/matrix.hpp"

namespace qcodec {

/// Largest |activation code|: symmetric int8 without -128, so negation never overflows.
inline constexpr int activation_code_max = 127;

/// Quantizes one activation row to int8 codes; returns the scale s_x (0 for a zero row).
inline float quantize_activation_row(std::span<const float> x, std::span<std::int8_t> codes) {
  float largest = 0;
  for (float v : x) largest = std::max(largest, std::abs(v));
  const float scale = largest / activation_code_max;
  for (std::size_t c = 0; c < x.size(); ++c) {
    const float q = scale > 0 ? std::rint(x[c] / scale) : 0.0f;
    codes[c] = static_cast<std::int8_t>(std::clamp(q, -float{activation_code_max}, float{activation_code_max}));
  }
  return scale;
}

/// Writes y = x * Wᵀ (batch x rows) computed in the integer domain; x is batch x cols, finite.
template <codec Codec>
void integer_gemv(const encoded_matrix<Codec>& weight, matrix_view x, matrix_ref y) {
  static_assert(is_linear_codec<Codec>,
                "qcodec: integer-domain compute needs a linear codec; QINS is a codec at rest: "
                "decode first");
  if constexpr (is_linear_codec<Codec>) {
    const auto& s = weight.storage();
    if (x.cols() != s.cols)
      detail::fail("integer_gemv: activations have ", x.cols(), " columns, the weight has ", s.cols);
    if (y.rows() != x.rows() || y.cols() != s.rows)
      detail::fail("integer_gemv: output is ", y.rows(), " x ", y.cols(), ", expected ", x.rows(),
                   " x ", s.rows);
    detail::require_finite_nonempty(x, "activations");
    constexpr int bits = codec_traits<Codec>::bits;
    constexpr index_t chunk = index_t{1} << 15;
    std::vector<std::int8_t> codes(static_cast<std::size_t>(s.cols));
    for (index_t b = 0; b < x.rows(); ++b) {
      const float x_scale = quantize_activation_row(
          std::span<const float>(x.row(b).data(), static_cast<std::size_t>(s.cols)), codes);
      for (index_t r = 0; r < s.rows; ++r) {
        const std::uint8_t* row = s.codes.data() + r * s.row_bytes();
        double sum = 0;
        for (index_t c0 = 0; c0 < s.cols; c0 += s.group_size()) {
          const index_t block = s.block_index(r, c0 / s.group_size());
          const int offset = s.offset(block);
          const index_t c1 = std::min(s.cols, c0 + s.group_size());
          // sum q (code - offset) = sum q code - offset * sum q, the form a u8 x s8 dot-product
          // instruction computes (GCC 12.2 -O3 with AVX512-VNNI gave wrong sums for the first).
          std::int64_t acc = 0;
          for (index_t p0 = c0; p0 < c1; p0 += chunk) {
            std::int32_t dot = 0, code_sum = 0;
            for (index_t c = p0; c < std::min(c1, p0 + chunk); ++c) {
              const std::int32_t q = codes[static_cast<std::size_t>(c)];
              dot += q * static_cast<std::int32_t>(unpack_code<bits>(row, c));
              code_sum += q;
            }
            acc += dot - std::int64_t{offset} * code_sum;
          }
          sum += static_cast<double>(static_cast<float>(s.scales[static_cast<std::size_t>(block)])) *
                 static_cast<double>(acc);
        }
        y(b, r) = static_cast<float>(static_cast<double>(x_scale) * sum);
      }
    }
  }
}

/// Returns y = x * Wᵀ (batch x rows) computed in the integer domain.
template <codec Codec>
row_matrix integer_gemv(const encoded_matrix<Codec>& weight, matrix_view x) {
  static_assert(is_linear_codec<Codec>,
                "qcodec: integer-domain compute needs a linear codec; QINS is a codec at rest: "
                "decode first");
  row_matrix y(x.rows(), weight.rows());
  if constexpr (is_linear_codec<Codec>) integer_gemv(weight, x, y);
  return y;
}

}  // namespace qcodec
