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
#include <type_traits>
#include <utility>
#include <vector>

#include "qcodec/codecs/codec.hpp"
#include "qcodec/core/bit_packing.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/matrix.hpp"
#include "qcodec/core/simd.hpp"

#if QCODEC_USE_OPENMP
#  include <omp.h>
#endif

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

/// Columns of one fold block of the SIMD integer kernel for this storage: the group size when
/// it is a multiple of simd::int_chunk, 2048 for per-row and per-tensor scales (short enough
/// that every int32 lane stays below 2^24 and converts to float exactly), 0 when the kernel
/// does not apply (32-column groups), in which case the scalar reference loop runs instead.
template <class Storage>
index_t integer_block_cols(const Storage& s) {
  const index_t group = s.group_size();
  if (group == s.cols) return 2048;
  return group % simd::int_chunk == 0 ? group : 0;
}

/// The multiplier int8_activations::quantize applies to the lane sums for `Codec` and `Backend`.
template <class Codec, class Backend>
constexpr int integer_sum_multiplier() {
  if constexpr (Codec::symmetric)
    return Codec::symmetric_offset - Backend::template code_bias<codec_traits<Codec>::bits>;
  else
    return 1;
}

/// Activations quantized for the integer kernels (header above): per row the int8 codes
/// (for INT4, each full 64-column chunk in simd::int4_chunk_order; the ragged tail in column
/// order) and the scale s_x, and per (row, fold block) the lane sums of the codes.
template <class Backend>
class int8_activations {
 public:
  using int_vector = typename Backend::int_vector;

  /// Quantizes x for the SIMD kernel on weight `s` of `Codec`. Allocates only when x grows.
  template <class Codec>
  void quantize_for(const typename Codec::storage& s, matrix_view x) {
    quantize<codec_traits<Codec>::bits>(x, integer_block_cols(s), integer_sum_multiplier<Codec, Backend>());
  }

  /// Quantizes x in the reference layout: codes in column order, no lane sums.
  template <class Codec>
  void quantize_reference(matrix_view x) {
    quantize<codec_traits<Codec>::bits>(x, 0, 1);
  }

 private:
  /// Quantizes x for a weight of `Bits` with fold blocks of `block_cols` (0: the reference
  /// layout); the lane sums are stored times `sum_multiplier` (a symmetric codec's
  /// offset - code_bias, else 1).
  template <int Bits>
  void quantize(matrix_view x, index_t block_cols, int sum_multiplier) {
    detail::require_finite_nonempty(x, "activations");
    batch_ = x.rows();
    cols_ = x.cols();
    block_cols_ = block_cols;
    full_cols_ = block_cols == 0 ? 0 : cols_ / simd::int_chunk * simd::int_chunk;
    blocks_ = block_cols == 0 ? 0 : (full_cols_ + block_cols - 1) / block_cols;
    // Rows one chunk longer than a multiple of 64 bytes: with a stride of a multiple of 4 KiB,
    // the int_batch rows a kernel step reads would share one set of the L1 cache.
    stride_ = (cols_ + simd::int_chunk - 1) / simd::int_chunk * simd::int_chunk + simd::int_chunk;
    grow(codes_, static_cast<std::size_t>(batch_ * stride_));
    grow(scales_, static_cast<std::size_t>(batch_));
    grow(sums_, static_cast<std::size_t>(batch_ * blocks_));
#if QCODEC_USE_OPENMP
#  pragma omp parallel for schedule(static) if (batch_ >= 16)
#endif
    for (index_t b = 0; b < batch_; ++b) {
      std::int8_t* q = codes_.data() + b * stride_;
      scales_[static_cast<std::size_t>(b)] = quantize_activation_row(
          std::span<const float>(x.row(b).data(), static_cast<std::size_t>(cols_)),
          std::span<std::int8_t>(q, static_cast<std::size_t>(cols_)));
      if constexpr (Bits == 4) {
        std::int8_t chunk[simd::int_chunk];
        for (index_t c = 0; c < full_cols_; c += simd::int_chunk) {
          for (index_t j = 0; j < simd::int_chunk; ++j) chunk[simd::int4_chunk_order<4>(j)] = q[c + j];
          std::copy(chunk, chunk + simd::int_chunk, q + c);
        }
      }
      for (index_t j = 0; j < blocks_; ++j) {
        int_vector sum = Backend::int_zero();
        for (index_t c = j * block_cols; c < std::min(full_cols_, (j + 1) * block_cols); c += simd::int_chunk)
          sum = Backend::lane_sums(sum, q + c);
        sums_[static_cast<std::size_t>(b * blocks_ + j)].value =
            sum_multiplier == 1 ? sum : Backend::scale_lanes(sum, sum_multiplier);
      }
    }
  }

 public:
  index_t batch() const { return batch_; }
  index_t cols() const { return cols_; }
  /// Columns covered by whole chunks; the rest is the scalar tail.
  index_t full_cols() const { return full_cols_; }
  index_t block_cols() const { return block_cols_; }
  index_t blocks() const { return blocks_; }
  const std::int8_t* codes(index_t b) const { return codes_.data() + b * stride_; }
  float scale(index_t b) const { return scales_[static_cast<std::size_t>(b)]; }
  /// Lane sums of the codes of activation row b in fold block j.
  int_vector sums(index_t b, index_t j) const { return sums_[static_cast<std::size_t>(b * blocks_ + j)].value; }

 private:
  template <class T>
  static void grow(std::vector<T>& v, std::size_t size) {
    if (v.size() < size) v.resize(size);
  }

  index_t batch_ = 0, cols_ = 0, stride_ = 0, full_cols_ = 0, block_cols_ = 0, blocks_ = 0;
  std::vector<std::int8_t> codes_;
  std::vector<float> scales_;
  struct lanes {  // wrapped: vector-type attributes are dropped in template arguments
    int_vector value;
  };
  std::vector<lanes> sums_;
};

namespace detail {

inline void check_integer_shapes(index_t rows, index_t cols, const matrix_view& x, const matrix_ref& y) {
  if (x.cols() != cols)
    detail::fail("integer_gemv: activations have ", x.cols(), " columns, the weight has ", cols);
  if (y.rows() != x.rows() || y.cols() != rows)
    detail::fail("integer_gemv: output is ", y.rows(), " x ", y.cols(), ", expected ", x.rows(),
                 " x ", rows);
}

/// Integer dot products of weight rows [first, first + R) with activation rows
/// [b0, b0 + NB), written to y(b, r). Per fold block j and lane: acc = sum (code - bias) q,
/// exact in int32; acc - (offset - bias) * lane_sum(q) = sum (code - offset) q is the lane's
/// exact share of the block's integer dot product, converted to float (exact below 2^24,
/// which the SIMD lanes of a 2048-column block stay under; one rounding otherwise) and
/// accumulated as total += lane * s_block in FP32. The tail columns (< 64) are summed exactly in int32
/// and added as float(tail) * s_block. y = s_x * (sum of the lanes + tail).
/// Rounding: at most blocks + 7 FP32 roundings on any path (the conversion, one FMA per
/// block, log2(lanes) <= 4 in the reduction, the tail add and the s_x product), each
/// relative to a partial sum bounded by sum |x^ w^| / s_x, where x^ = s_x q.
template <class Backend, class Codec, int NB, int R>
void integer_rows(const typename Codec::storage& s, const int8_activations<Backend>& a,
                  index_t b0, index_t first, matrix_ref y) {
  constexpr int bits = codec_traits<Codec>::bits;
  constexpr int bias = Backend::template code_bias<bits>;
  // Symmetric codecs: the sums already hold (offset - bias) * sums (integer_sum_multiplier).
  constexpr bool premultiplied = Codec::symmetric;
  const index_t group = s.group_size(), block_cols = a.block_cols(), full = a.full_cols();
  const std::int8_t* q[NB];
  for (int i = 0; i < NB; ++i) q[i] = a.codes(b0 + i);
  const std::uint8_t* rows[R];
  for (int k = 0; k < R; ++k) rows[k] = s.codes.data() + (first + k) * s.row_bytes();
  // Codes read once (the whole batch in this pass) by a pass serving several activation rows:
  // each cache line takes long to consume, and the hardware prefetcher alone falls behind
  // (batch 8: +25 %). At batch 1 it keeps up, and larger batches re-read the tile from L2;
  // there the hint only costs (bench/RESULTS.md).
  const bool streaming = NB > 1 && a.batch() == NB;
  typename Backend::float_vector total[R][NB];
  for (int k = 0; k < R; ++k)
    for (int i = 0; i < NB; ++i) total[k][i] = Backend::float_zero();
  for (index_t j = 0; j < a.blocks(); ++j) {
    const index_t c0 = j * block_cols, c1 = std::min(full, c0 + block_cols);
    typename Backend::int_vector acc[R][NB];
    for (int k = 0; k < R; ++k)
      for (int i = 0; i < NB; ++i) acc[k][i] = Backend::int_zero();
    for (index_t c = c0; c < c1; c += simd::int_chunk) {
      for (int k = 0; k < R; ++k) {
        if (streaming) simd::prefetch_ahead(rows[k] + packed_bytes<bits>(c));
        const auto codes = Backend::template load_code_chunk<bits>(rows[k], c);
        for (int i = 0; i < NB; ++i) acc[k][i] = Backend::template dot<bits>(acc[k][i], codes, q[i] + c);
      }
    }
    for (int k = 0; k < R; ++k) {
      const index_t block = s.block_index(first + k, c0 / group);
      const float scale = static_cast<float>(s.scales[static_cast<std::size_t>(block)]);
      const int m = s.offset(block) - bias;
      for (int i = 0; i < NB; ++i) {
        const auto sums = a.sums(b0 + i, j);
        total[k][i] = Backend::fold(total[k][i], acc[k][i], premultiplied ? sums : Backend::scale_lanes(sums, m), scale);
      }
    }
  }
  for (int k = 0; k < R; ++k) {
    const index_t r = first + k;
    float tail[NB] = {};
    if (full < s.cols) {
      const index_t block = s.block_index(r, full / group);  // the tail lies in one group
      const int offset = s.offset(block);
      const float scale = static_cast<float>(s.scales[static_cast<std::size_t>(block)]);
      for (int i = 0; i < NB; ++i) {
        std::int32_t dot = 0, q_sum = 0;  // the u8 x s8 form: see integer_dot_ref
        for (index_t c = full; c < s.cols; ++c) {
          dot += std::int32_t{q[i][c]} * static_cast<std::int32_t>(unpack_code<bits>(rows[k], c));
          q_sum += q[i][c];
        }
        tail[i] = static_cast<float>(dot - offset * q_sum) * scale;
      }
    }
    for (int i = 0; i < NB; ++i)
      y(b0 + i, r) = a.scale(b0 + i) * (Backend::reduce(total[k][i]) + tail[i]);
  }
}

/// Rows [first, last) against activation rows [b0, b0 + NB), one row at a time (pairs of
/// rows against NB / 2 activation rows measured no faster on the development machine).
template <class Backend, class Codec, int NB>
void integer_rows(const typename Codec::storage& s, const int8_activations<Backend>& a,
                  index_t b0, index_t first, index_t last, matrix_ref y) {
  for (index_t r = first; r < last; ++r) integer_rows<Backend, Codec, NB, 1>(s, a, b0, r, y);
}

/// The scalar reference for one output: y(b, r) of integer_gemv, codes in column order.
template <class Storage, int Bits>
float integer_dot_ref(const Storage& s, index_t r, const std::int8_t* codes, float x_scale) {
  constexpr index_t chunk = index_t{1} << 15;
  const std::uint8_t* row = s.codes.data() + r * s.row_bytes();
  double sum = 0;
  for (index_t c0 = 0; c0 < s.cols; c0 += s.group_size()) {
    const index_t block = s.block_index(r, c0 / s.group_size());
    const int offset = s.offset(block);
    const index_t c1 = std::min(s.cols, c0 + s.group_size());
    // Exact: int32 partial sums of at most 2^15 terms, |q code| <= 127 * 255. Written as
    // sum q code - offset sum q: GCC 12.2 at -O3 with AVX512-VNNI vectorizes the equivalent
    // sum q (code - offset) into vpdpbusd and gets it wrong (correct at -O0, with
    // -fno-tree-vectorize or -mno-avx512vnni, and UBSan-clean: a compiler bug, not UB).
    std::int64_t acc = 0;
    for (index_t p0 = c0; p0 < c1; p0 += chunk) {
      std::int32_t dot = 0, q_sum = 0;
      for (index_t c = p0; c < std::min(c1, p0 + chunk); ++c) {
        dot += std::int32_t{codes[c]} * static_cast<std::int32_t>(unpack_code<Bits>(row, c));
        q_sum += codes[c];
      }
      acc += dot - std::int64_t{offset} * q_sum;
    }
    sum += static_cast<double>(static_cast<float>(s.scales[static_cast<std::size_t>(block)])) *
           static_cast<double>(acc);
  }
  return static_cast<float>(static_cast<double>(x_scale) * sum);
}

}  // namespace detail

/// Writes y(b, r) for weight rows [first, last) and every activation row of `a` with the
/// integer kernel of `Backend` (the scalar reference loop for 32-column groups).
template <class Backend, codec Codec>
void integer_rows(const encoded_matrix<Codec>& weight, const int8_activations<Backend>& a,
                  index_t first, index_t last, matrix_ref y) {
  static_assert(is_linear_codec<Codec>,
                "qcodec: integer-domain compute needs a linear codec; QINS is a codec at rest: "
                "decode first");
  if constexpr (is_linear_codec<Codec>) {
    const auto& s = weight.storage();
    constexpr int bits = codec_traits<Codec>::bits;
    if (a.block_cols() == 0) {
      for (index_t b = 0; b < a.batch(); ++b)
        for (index_t r = first; r < last; ++r)
          y(b, r) = detail::integer_dot_ref<std::remove_cvref_t<decltype(s)>, bits>(s, r, a.codes(b), a.scale(b));
      return;
    }
    constexpr int nb = Backend::int_batch;
    index_t b0 = 0;
    for (; b0 + nb <= a.batch(); b0 += nb) detail::integer_rows<Backend, Codec, nb>(s, a, b0, first, last, y);
    // The last partial batch block, one instantiation per remaining count.
    [&]<int... N>(std::integer_sequence<int, N...>) {
      ((a.batch() - b0 == N + 1 ? detail::integer_rows<Backend, Codec, N + 1>(s, a, b0, first, last, y)
                                : void()), ...);
    }(std::make_integer_sequence<int, nb - 1>{});
  }
}

namespace detail {

/// y = x * Wᵀ with the activations of `Backend`, quantized in its kernel layout or, for the
/// scalar reference, in column order.
template <class Backend, bool Reference, codec Codec>
void integer_gemv(const encoded_matrix<Codec>& weight, matrix_view x, matrix_ref y) {
  static_assert(is_linear_codec<Codec>,
                "qcodec: integer-domain compute needs a linear codec; QINS is a codec at rest: "
                "decode first");
  if constexpr (is_linear_codec<Codec>) {
    const auto& s = weight.storage();
    check_integer_shapes(s.rows, s.cols, x, y);
    int8_activations<Backend> a;
    if constexpr (Reference) a.template quantize_reference<Codec>(x);
    else a.template quantize_for<Codec>(s, x);
    integer_rows(weight, a, 0, s.rows, y);
  }
}

}  // namespace detail

/// Writes y = x * Wᵀ (batch x rows) computed in the integer domain; x is batch x cols, finite.
/// The scalar reference: one output at a time, integer parts exact, summed in FP64.
template <codec Codec>
void integer_gemv(const encoded_matrix<Codec>& weight, matrix_view x, matrix_ref y) {
  detail::integer_gemv<simd::scalar, true>(weight, x, y);
}

/// Writes y = x * Wᵀ with the SIMD integer kernel of `Backend` (the op's integer path).
template <class Backend, codec Codec>
void integer_gemv_with(const encoded_matrix<Codec>& weight, matrix_view x, matrix_ref y) {
  detail::integer_gemv<Backend, false>(weight, x, y);
}

/// Returns y = x * Wᵀ (batch x rows) computed in the integer domain.
template <codec Codec>
row_matrix integer_gemv(const encoded_matrix<Codec>& weight, matrix_view x) {
  row_matrix y(x.rows(), weight.rows());
  integer_gemv(weight, x, y);
  return y;
}

}  // namespace qcodec
