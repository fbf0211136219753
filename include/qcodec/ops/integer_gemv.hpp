#pragma once
/// Integer-domain GEMV for linear codecs: y = x * Wᵀ with int8 activations and int32 dot
/// products against the weight codes: integer_gemv runs the SIMD kernel of the active target
/// (ops/integer_kernels-inl.hpp) on weights repacked in panels (ops/integer_panels.hpp);
/// integer_gemv_ref is the specification it is tested against (plain loops, FP64 sums).
///
/// Activations: each row of x is quantized on the fly in blocks along K
/// (integer_activation_cols: activation_block_cols columns, 32 against INT8 weights and 128
/// against INT4, inside each weight group or row), symmetrically, with one FP32 scale per
/// block s_k = max|x_block| / 127 and codes q = rint(x / s_k) in [-127, 127]. A block scale
/// keeps an outlier channel from rounding away the rest of its row: only the columns that
/// share its block lose resolution. For each activation block k of weight row r, inside the
/// weight block (group or row) of scale s_g and offset z_g, the integer dot product
/// acc_k = sum q_c * (code_c - z_g) is exact (int32 sums of at most 2^15 terms,
/// 2^15 * 127 * 255 < 2^31), so
///   y[b, r] = sum_k s_k * s_g * acc_k,
/// summed over the blocks in double and rounded to FP32 once.
///
/// Error against x * Ŵᵀ (Ŵ the decoded weight): the integer part is exact, so the error is
/// the activation rounding, |x_c - s_k q_c| <= s_k (1/2 + 2^-17) for c in block k (the half
/// step, plus the rounding of x / s_k, at most 128 * 2^-24 code units), times |ŵ_c|, summed,
/// plus the FP32 roundings of ŵ_c and of the result (2^-24 each, relative to
/// sum_c |x_c ŵ_c|) in this scalar reference; the SIMD kernel rounds at most activation
/// blocks + 2 times (detail::integer_panel).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "qcodec/codecs/capabilities.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/bit_packing.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/matrix.hpp"
#include "qcodec/core/simd.hpp"
#include "qcodec/ops/integer_panels.hpp"

#if QCODEC_USE_OPENMP
#  include <omp.h>
#endif

namespace qcodec::inline QCODEC_ABI {

/// Largest |activation code|: symmetric int8 without -128, so negation never overflows.
inline constexpr int activation_code_max = 127;

/// Quantizes one block of activations to int8 codes; returns its scale s_k (0 for a zero
/// block).
inline float quantize_activation_block(std::span<const float> x, std::span<std::int8_t> codes) {
  float largest = 0;
  for (float v : x) largest = std::max(largest, std::abs(v));
  const float scale = largest / activation_code_max;
  for (std::size_t c = 0; c < x.size(); ++c) {
    const float q = scale > 0 ? std::rint(x[c] / scale) : 0.0f;
    codes[c] = static_cast<std::int8_t>(std::clamp(q, -float{activation_code_max}, float{activation_code_max}));
  }
  return scale;
}

/// Quantizes one activation row in blocks of `block_cols` columns (the last one ragged):
/// codes in column order, scales[j] the scale of block j.
inline void quantize_activation_row(std::span<const float> x, index_t block_cols, std::span<std::int8_t> codes,
                                    std::span<float> scales) {
  const auto n = static_cast<index_t>(x.size());
  for (index_t j = 0, c0 = 0; c0 < n; ++j, c0 += block_cols) {
    const auto count = static_cast<std::size_t>(std::min(block_cols, n - c0));
    scales[static_cast<std::size_t>(j)] = quantize_activation_block(x.subspan(static_cast<std::size_t>(c0), count),
                                                                    codes.subspan(static_cast<std::size_t>(c0), count));
  }
}

/// Activations quantized for the integer kernel: per row the int8 codes in column order,
/// followed by zeros up to a whole kernel step, and per (row, activation block) the scale s_k
/// and the sum of the codes (exact in int32: at most 2^15 * 127).
class int8_activations {
 public:
  /// Columns past the row that hold code 0 (the longest panel step, integer_panels).
  static constexpr index_t zero_padding = 8;

  /// Quantizes x (finite, non-empty) in blocks of `block_cols` columns. Allocates only
  /// when x grows.
  void quantize(matrix_view x, index_t block_cols) {
    detail::require_finite_nonempty(x, "activations");
    batch_ = x.rows();
    cols_ = x.cols();
    blocks_ = (cols_ + block_cols - 1) / block_cols;
    // Rows one cache line longer than a multiple of 64 bytes: with a stride of a multiple of
    // 4 KiB, the rows a kernel pass reads would share one set of the L1 cache.
    stride_ = (cols_ + zero_padding + 63) / 64 * 64 + 64;
    grow(codes_, static_cast<std::size_t>(batch_ * stride_));
    grow(scales_, static_cast<std::size_t>(batch_ * blocks_));
    grow(sums_, static_cast<std::size_t>(batch_ * blocks_));
#if QCODEC_USE_OPENMP
#  pragma omp parallel for schedule(static) if (batch_ >= 16)
#endif
    for (index_t b = 0; b < batch_; ++b) {
      std::int8_t* q = codes_.data() + b * stride_;
      quantize_activation_row(std::span<const float>(x.row(b).data(), static_cast<std::size_t>(cols_)), block_cols,
                              std::span<std::int8_t>(q, static_cast<std::size_t>(cols_)),
                              std::span<float>(scales_.data() + b * blocks_, static_cast<std::size_t>(blocks_)));
      std::fill(q + cols_, q + cols_ + zero_padding, std::int8_t{0});
      for (index_t j = 0; j < blocks_; ++j) {
        std::int32_t sum = 0;
        for (index_t c = j * block_cols; c < std::min(cols_, (j + 1) * block_cols); ++c) sum += q[c];
        sums_[static_cast<std::size_t>(b * blocks_ + j)] = sum;
      }
    }
  }

  index_t batch() const { return batch_; }
  index_t cols() const { return cols_; }
  const std::int8_t* codes(index_t b) const { return codes_.data() + b * stride_; }
  /// The scale of activation row b in block j.
  float scale(index_t b, index_t j) const { return scales_[static_cast<std::size_t>(b * blocks_ + j)]; }
  /// The sum of the codes of activation row b in block j.
  std::int32_t sum(index_t b, index_t j) const { return sums_[static_cast<std::size_t>(b * blocks_ + j)]; }

 private:
  template <class T>
  static void grow(std::vector<T>& v, std::size_t size) {
    if (v.size() < size) v.resize(size);
  }

  index_t batch_ = 0, cols_ = 0, stride_ = 0, blocks_ = 0;
  std::vector<std::int8_t> codes_;
  std::vector<float> scales_;
  std::vector<std::int32_t> sums_;
};

namespace detail {

inline void check_integer_shapes(index_t rows, index_t cols, const matrix_view& x, const matrix_ref& y) {
  if (x.cols() != cols)
    detail::fail("integer_gemv: activations have ", x.cols(), " columns, the weight has ", cols);
  if (y.rows() != x.rows() || y.cols() != rows)
    detail::fail("integer_gemv: output is ", y.rows(), " x ", y.cols(), ", expected ", x.rows(),
                 " x ", rows);
}

/// The scalar reference for one output: y(b, r) of integer_gemv, codes in column order and
/// x_scales[j] the scale of activation block j of `block_cols` columns (each inside one
/// weight group).
template <integer_block_view Storage>
float integer_dot_ref(const Storage& s, index_t r, const std::int8_t* codes, const float* x_scales,
                      index_t block_cols) {
  double sum = 0;
  for (index_t j = 0, c0 = 0; c0 < s.cols; ++j, c0 += block_cols) {
    const index_t group = c0 / s.group_size();
    const index_t c1 = std::min(s.cols, c0 + block_cols);
    // Exact: an int32 sum of at most 2^15 terms, |q code| <= 127 * 255. Written as
    // sum q code - offset sum q: GCC 12.2 at -O3 with AVX512-VNNI vectorizes the equivalent
    // sum q (code - offset) into vpdpbusd and gets it wrong (correct at -O0, with
    // -fno-tree-vectorize or -mno-avx512vnni, and UBSan-clean: a compiler bug, not UB).
    std::int32_t dot = 0, q_sum = 0;
    for (index_t c = c0; c < c1; ++c) {
      dot += std::int32_t{codes[c]} * static_cast<std::int32_t>(s.code(r, c));
      q_sum += codes[c];
    }
    const std::int64_t acc = dot - std::int64_t{s.block_offset(r, group)} * q_sum;
    sum += static_cast<double>(x_scales[j]) * static_cast<double>(s.block_scale(r, group)) * static_cast<double>(acc);
  }
  return static_cast<float>(sum);
}

}  // namespace detail

/// Writes y(b, r) for weight rows [first, last) and every activation row of `a` (quantized
/// for w.activation_cols()) with the kernel of the panels' target. A panel cut by the range is
/// computed whole and stored in part, so ranges on multiples of panel_rows() waste nothing.
template <class Codec>
void integer_rows(const integer_panels<Codec>& w, const int8_activations& a, index_t first, index_t last,
                  matrix_ref y) {
  simd::dispatch(w.target(), [&](auto target) { integer_panel_rows<Codec>(target, w, a, first, last, y); });
}

/// Writes y = x * Wᵀ (batch x rows) computed in the integer domain; x is batch x cols, finite.
/// The specification: one output at a time, integer parts exact, summed in FP64.
template <codec Codec>
void integer_gemv_ref(const encoded_matrix<Codec>& weight, matrix_view x, matrix_ref y) {
  static_assert(integer_codec<Codec>,
                "qcodec: integer-domain compute needs an integer_codec (codecs/capabilities.hpp): a linear "
                "codec of 4- or 8-bit codes whose storage is an integer_block_view; QINS, the grids and the "
                "two-level codecs are served by the FP32 paths: decode first");
  if constexpr (integer_codec<Codec>) {
    const auto& s = weight.storage();
    detail::check_integer_shapes(s.rows, s.cols, x, y);
    detail::require_finite_nonempty(x, "activations");
    const index_t block_cols = integer_activation_cols<Codec>(s);
    std::vector<std::int8_t> codes(static_cast<std::size_t>(s.cols));
    std::vector<float> scales(static_cast<std::size_t>((s.cols + block_cols - 1) / block_cols));
    for (index_t b = 0; b < x.rows(); ++b) {
      quantize_activation_row(std::span<const float>(x.row(b).data(), static_cast<std::size_t>(s.cols)), block_cols,
                              codes, scales);
      for (index_t r = 0; r < s.rows; ++r)
        y(b, r) = detail::integer_dot_ref(s, r, codes.data(), scales.data(), block_cols);
    }
  }
}

/// Writes y = x * Wᵀ with the integer kernel of the active SIMD target, repacking the weight
/// first (an op keeps the repacked weight: dual_stream_linear::set_integer_domain).
template <codec Codec>
void integer_gemv(const encoded_matrix<Codec>& weight, matrix_view x, matrix_ref y) {
  const auto& s = weight.storage();
  detail::check_integer_shapes(s.rows, s.cols, x, y);
  const integer_panels<Codec> w(s);
  int8_activations a;
  a.quantize(x, w.activation_cols());
  integer_rows(w, a, 0, s.rows, y);
}

/// Returns y = x * Wᵀ (batch x rows) computed in the integer domain by integer_gemv.
template <codec Codec>
row_matrix integer_gemv(const encoded_matrix<Codec>& weight, matrix_view x) {
  row_matrix y(x.rows(), weight.rows());
  integer_gemv(weight, x, y);
  return y;
}

/// Returns the specification's y = x * Wᵀ (integer_gemv_ref).
template <codec Codec>
row_matrix integer_gemv_ref(const encoded_matrix<Codec>& weight, matrix_view x) {
  row_matrix y(x.rows(), weight.rows());
  integer_gemv_ref(weight, x, y);
  return y;
}

}  // namespace qcodec::inline QCODEC_ABI

#define QCODEC_KERNELS "qcodec/ops/integer_kernels-inl.hpp"
#include "qcodec/core/simd/foreach_target.hpp"
