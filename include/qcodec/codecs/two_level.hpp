#pragma once
/// Linear codec with two-level scales, any code width 2..8 (K-quant-like, measured sizes).
///
/// Each row is cut into sub-blocks of SubBlock columns (the last may be shorter; nothing else
/// changes for ragged rows) and into floor(cols / SuperBlock) super-blocks of SuperBlock
/// columns (at least one), the last also taking the row's tail shorter than SuperBlock
/// (two_level_scales.hpp).
/// A sub-block has an integer scale m of ScaleBits bits under its super-block's FP16 scale d:
/// step = d * m, and element c decodes to step * level (two_level_math.hpp):
///  - symmetric: level = code - 2^(Bits-1), all 2^Bits levels -2^(Bits-1) .. 2^(Bits-1) - 1;
///    m is signed (offset binary, -2^(ScaleBits-1) .. 2^(ScaleBits-1) - 1), so a sub-block puts
///    its longer side (-2^(Bits-1)) on whichever sign its largest magnitude has;
///  - asymmetric: level = code - z with an integer zero point z (0 .. 2^Bits - 1, Bits wide)
///    per sub-block, m unsigned (0 .. 2^ScaleBits - 1). An integer z keeps 0 exact (no sign
///    flips), unlike a free minimum.
///
/// Layout of `storage` (every stream: core/bit_stream.hpp, little-endian, each row starting on
/// a byte boundary, padding bits zero):
///  - codes: rows x bit_stream_bytes(cols, Bits); column c is field c of its row;
///  - sub_scales: rows x bit_stream_bytes(sub_blocks_per_row, ScaleBits); sub-block j is field j;
///  - zero_points (asymmetric only): rows x bit_stream_bytes(sub_blocks_per_row, Bits);
///  - super_scales: FP16, rows x super_blocks_per_row, (row, k) at row * super_blocks_per_row + k;
///    column c is in super-block min(c / SuperBlock, super_blocks_per_row - 1).
///
/// Encoding (the one rule, the least squared error throughout): each sub-block takes, among
/// the steps that map its largest magnitude to level (reach + delta) for each delta of
/// step_candidates (both signs' reach for symmetric codes), each refitted once by least squares
/// to its rounded levels, the step with the least (importance-weighted) squared error after
/// rounding; the super-block scale is the one mapping the largest of these steps to the top
/// sub-scale code (rounded up to FP16), or, where that gives the super-block less squared
/// error, the one of 10 candidates 1-10% below it whose rounded sub-scales miss the steps by
/// the least sum of squares (two_level_scales.hpp), and each sub-block keeps whichever of the
/// two sub-scale codes
/// around its step gives the smaller squared error, its levels rounded under that exact step.
/// Its arithmetic is fixed (each x - step * level rounded once by FMA, the sums in 8 lanes
/// reduced by halves: two_level_encoder-inl.hpp), so every SIMD target and compiler flag
/// encodes to the same bytes.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "qcodec/config.hpp"
#include "qcodec/codecs/array_visiting.hpp"
#include "qcodec/codecs/capabilities.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/codecs/column_importance.hpp"
#include "qcodec/codecs/linear.hpp"
#include "qcodec/codecs/storage_checks.hpp"
#include "qcodec/codecs/two_level_math.hpp"
#include "qcodec/codecs/two_level_scales.hpp"
#include "qcodec/core/bit_stream.hpp"
#include "qcodec/core/half.hpp"
#include "qcodec/core/simd.hpp"

namespace qcodec::inline QCODEC_ABI {

template <int Bits, index_t SubBlock, symmetry Symmetry = symmetry::symmetric, int ScaleBits = 6,
          index_t SuperBlock = 256>
class two_level {
  static_assert(Bits >= 2 && Bits <= 8, "qcodec: two-level codes are 2 to 8 bits");
  static_assert(ScaleBits >= 2 && ScaleBits <= 8, "qcodec: sub-block scales are 2 to 8 bits");
  static_assert(SubBlock >= 8 && SubBlock <= 256 && SubBlock % 8 == 0,
                "qcodec: a sub-block is a multiple of 8 columns (so it starts on a byte), at most 256");
  static_assert(SuperBlock >= SubBlock && SuperBlock % SubBlock == 0,
                "qcodec: a super-block is a whole number of sub-blocks");

 public:
  static constexpr bool symmetric = Symmetry == symmetry::symmetric;
  static constexpr int bits = Bits, scale_bits = ScaleBits;
  static constexpr index_t sub_block = SubBlock, super_block = SuperBlock;
  static constexpr index_t subs_per_super = SuperBlock / SubBlock;
  static constexpr int code_max = (1 << Bits) - 1;
  /// Symmetric levels are code - level_offset.
  static constexpr int level_offset = 1 << (Bits - 1);
  /// Sub-scale codes: [sub_scale_min, sub_scale_max]; the super-block scale maps the largest
  /// sub-block step to sub_scale_max.
  static constexpr int sub_scale_min = symmetric ? -(1 << (ScaleBits - 1)) : 0;
  static constexpr int sub_scale_max = symmetric ? (1 << (ScaleBits - 1)) - 1 : (1 << ScaleBits) - 1;

  /// Offsets delta of the candidate steps, in levels: step = largest magnitude / (reach +
  /// delta). Negative deltas widen the step past the largest magnitude (rounding then reaches
  /// it from below), positive ones clip it; each is refitted by least squares, so the set need
  /// only bracket the optimum: 81 deltas from -1 to 3 gained < 0.05 dB over these four (INT3 to
  /// INT6, Gaussian and heavy-tailed 2048 x 2048) at a tenth of the encode speed.
  static constexpr float step_candidates[] = {-0.5f, 0.0f, 0.5f, 1.0f};

  struct storage : detail::array_visiting<storage> {
    index_t rows = 0, cols = 0;
    std::vector<std::uint8_t> codes;
    std::vector<std::uint8_t> sub_scales;
    std::vector<std::uint8_t> zero_points;
    std::vector<half> super_scales;

    index_t sub_blocks_per_row() const { return (cols + SubBlock - 1) / SubBlock; }
    index_t super_blocks_per_row() const { return detail::super_blocks_in_row(cols, SuperBlock); }
    index_t code_row_bytes() const { return bit_stream_bytes(cols, Bits); }
    index_t sub_scale_row_bytes() const { return bit_stream_bytes(sub_blocks_per_row(), ScaleBits); }
    index_t zero_point_row_bytes() const { return symmetric ? 0 : bit_stream_bytes(sub_blocks_per_row(), Bits); }

    /// Step of sub-block j of row r (two_level_math::sub_block_step).
    float step(index_t r, index_t j) const {
      const float d = static_cast<float>(super_scales[static_cast<std::size_t>(
          r * super_blocks_per_row() + detail::super_block_of(j * SubBlock, cols, SuperBlock))]);
      const unsigned raw = read_bits(sub_scales.data() + r * sub_scale_row_bytes(), j, ScaleBits);
      return two_level_math::sub_block_step(d, sub_scale_of(raw));
    }
    /// Level of code 0 negated: levels are code - offset(r, j).
    int offset(index_t r, index_t j) const {
      if constexpr (symmetric) return level_offset;
      else return static_cast<int>(read_bits(zero_points.data() + r * zero_point_row_bytes(), j, Bits));
    }

    template <class Self, class Visitor>
    static void visit_arrays_of(Self& self, Visitor& visit) {
      visit("codes", self.codes);
      visit("sub_scales", self.sub_scales);
      if constexpr (!symmetric) visit("zero_points", self.zero_points);
      visit("super_scales", self.super_scales);
    }
  };

  /// Integer sub-scale of a stored field.
  static constexpr int sub_scale_of(unsigned raw) {
    if constexpr (symmetric) return static_cast<int>(raw) - (1 << (ScaleBits - 1));
    else return static_cast<int>(raw);
  }

  encoded_matrix<two_level> encode(matrix_view w, std::string_view name = "weight") const {
    return encode(w, name, {});
  }

  /// Encodes with the squared error of column c weighted by column_importance[c]
  /// (column_importance.hpp; empty = unweighted).
  encoded_matrix<two_level> encode(matrix_view w, std::string_view name,
                                   std::span<const float> column_importance) const {
    detail::require_finite_nonempty(w, name);
    detail::require_column_importance(name, column_importance, w.cols());
    storage s;
    s.rows = w.rows();
    s.cols = w.cols();
    s.codes.assign(static_cast<std::size_t>(s.rows * s.code_row_bytes()), 0);
    s.sub_scales.assign(static_cast<std::size_t>(s.rows * s.sub_scale_row_bytes()), 0);
    s.zero_points.assign(static_cast<std::size_t>(s.rows * s.zero_point_row_bytes()), 0);
    s.super_scales.resize(static_cast<std::size_t>(s.rows * s.super_blocks_per_row()));

    simd::dispatch([&](auto target) { two_level_encode_rows<two_level>(target, w, column_importance, name, s); });
    return encoded_matrix<two_level>(std::move(s));
  }

  /// Decodes rows [first, last): a whole sub-block at a time, 8 codes per Bits-byte word, in
  /// plain loops; bit-exact with decode_rows_ref.
  static void decode_rows(const storage& s, index_t first, index_t last, float* out) {
    for (index_t r = first; r < last; ++r, out += s.cols) {
      const std::uint8_t* codes = s.codes.data() + r * s.code_row_bytes();
      for (index_t j = 0; j < s.sub_blocks_per_row(); ++j) {
        const index_t c0 = j * SubBlock, n = std::min(SubBlock, s.cols - c0);
        decode_sub_block(codes, c0, n, s.step(r, j), s.offset(r, j), out + c0);
      }
    }
  }

  /// The reference decode, one element at a time from the layout: the specification.
  static void decode_rows_ref(const storage& s, index_t first, index_t last, float* out) {
    for (index_t r = first; r < last; ++r)
      for (index_t c = 0; c < s.cols; ++c) {
        const index_t j = c / SubBlock, k = detail::super_block_of(c, s.cols, SuperBlock);
        const float d = static_cast<float>(s.super_scales[static_cast<std::size_t>(r * s.super_blocks_per_row() + k)]);
        const unsigned m = read_bits(s.sub_scales.data() + r * s.sub_scale_row_bytes(), j, ScaleBits);
        const unsigned code = read_bits(s.codes.data() + r * s.code_row_bytes(), c, Bits);
        const int zero = symmetric ? level_offset
                                   : static_cast<int>(read_bits(s.zero_points.data() + r * s.zero_point_row_bytes(), j, Bits));
        const float step = two_level_math::sub_block_step(d, symmetric ? two_level_math::offset_binary(m, ScaleBits)
                                                                       : static_cast<int>(m));
        *out++ = two_level_math::dequantize(step, static_cast<int>(code) - zero);
      }
  }

  /// out[b] = sum_c Ŵ(r, c) x[b][c] for b < NB: row r decoded a sub-block at a time (or read
  /// from `cached`, the decoded weight, giving the same values) and accumulated with explicit
  /// FMAs into 8 lanes per activation row (column c into lane c % 8), the lanes then summed
  /// pairwise: the same bits with or without the cache, on every target (plain C++: the
  /// target is unused).
  template <int NB, class Target>
  static void dot_row(Target, const storage& s, index_t r, const float* const* x, float* out,
                      const float* cached = nullptr) {
    constexpr int lanes = 8;
    float acc[NB][lanes] = {};
    alignas(64) float decoded[SubBlock];
    const std::uint8_t* codes = s.codes.data() + r * s.code_row_bytes();
    for (index_t j = 0; j < s.sub_blocks_per_row(); ++j) {
      const index_t c0 = j * SubBlock, n = std::min(SubBlock, s.cols - c0);
      const float* values = decoded;
      if (cached) values = cached + r * s.cols + c0;
      else decode_sub_block(codes, c0, n, s.step(r, j), s.offset(r, j), decoded);
      for (int b = 0; b < NB; ++b) {
        const float* xb = x[b] + c0;
        if (n == SubBlock) {
          for (index_t i = 0; i < SubBlock; i += lanes)
            for (int l = 0; l < lanes; ++l) acc[b][l] = std::fma(values[i + l], xb[i + l], acc[b][l]);
        } else {
          for (index_t i = 0; i < n; ++i) acc[b][i % lanes] = std::fma(values[i], xb[i], acc[b][i % lanes]);
        }
      }
    }
    for (int b = 0; b < NB; ++b) {
      float* a = acc[b];
      out[b] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    }
  }

  static void validate(const storage& s, std::string_view name) {
    detail::require_shape(name, s.rows, s.cols);
    const auto expect = [&](std::string_view array, std::size_t size, index_t expected) {
      detail::require_array_size(name, array, size, static_cast<std::size_t>(expected), s.rows, s.cols);
    };
    expect("codes", s.codes.size(), s.rows * s.code_row_bytes());
    expect("sub_scales", s.sub_scales.size(), s.rows * s.sub_scale_row_bytes());
    expect("zero_points", s.zero_points.size(), s.rows * s.zero_point_row_bytes());
    expect("super_scales", s.super_scales.size(), s.rows * s.super_blocks_per_row());
    // Every field value is a valid code, sub-scale or zero point, and |level| <= 2^Bits,
    // |m| <= 2^ScaleBits with d <= 65504 keep every decoded value below 2^(8+8+16): finite.
    // What remains are the super-block scales and the padding bits past each row's fields.
    detail::require_scales(name, s.super_scales);
    detail::require_zero_padding(name, "codes", s.codes, s.rows, s.code_row_bytes(), s.cols * Bits);
    detail::require_zero_padding(name, "sub_scales", s.sub_scales, s.rows, s.sub_scale_row_bytes(),
                         s.sub_blocks_per_row() * ScaleBits);
    if constexpr (!symmetric)
      detail::require_zero_padding(name, "zero_points", s.zero_points, s.rows, s.zero_point_row_bytes(),
                           s.sub_blocks_per_row() * Bits);
  }

  static std::size_t byte_size(const storage& s) {
    return s.codes.size() + s.sub_scales.size() + s.zero_points.size() + s.super_scales.size() * sizeof(half);
  }

 private:
  /// Decodes n (<= SubBlock) codes from column c0 (a multiple of 8, so a byte boundary) of a
  /// code row: whole words of 8 codes (Bits bytes) by shifts, then any ragged tail per code.
  static void decode_sub_block(const std::uint8_t* codes, index_t c0, index_t n, float step,
                               int offset, float* out) {
    constexpr std::uint64_t mask = (std::uint64_t{1} << Bits) - 1;
    const std::uint8_t* word = codes + c0 / 8 * Bits;
    index_t i = 0;
    for (; i + 8 <= n; i += 8, word += Bits) {
      std::uint64_t v = 0;
      for (int b = 0; b < Bits; ++b) v |= std::uint64_t{word[b]} << (8 * b);
      for (int k = 0; k < 8; ++k)
        out[i + k] = two_level_math::dequantize(step, static_cast<int>((v >> (k * Bits)) & mask) - offset);
    }
    for (; i < n; ++i)
      out[i] = two_level_math::dequantize(step, static_cast<int>(read_bits(codes, c0 + i, Bits)) - offset);
  }
};

template <int Bits, index_t SubBlock, symmetry Symmetry, int ScaleBits, index_t SuperBlock>
struct codec_traits<two_level<Bits, SubBlock, Symmetry, ScaleBits, SuperBlock>> {
  using codec_type = two_level<Bits, SubBlock, Symmetry, ScaleBits, SuperBlock>;
  static constexpr int bits = Bits;
  static constexpr bool is_linear = true;
  /// The super-block: the elements sharing one FP16 scale (the smallest unit of whole bytes).
  static constexpr index_t block_size = SuperBlock;
  static constexpr index_t bytes_per_block =
      SuperBlock * Bits / 8 + (SuperBlock / SubBlock) * (ScaleBits + (codec_type::symmetric ? 0 : Bits)) / 8 + 2;
  static constexpr auto name_text = [] {
    detail::fixed_name<32> n;
    n.append("int");
    n.append_number(Bits);
    n.append("-2level-g");
    n.append_number(SubBlock);
    n.append("-q");
    n.append_number(ScaleBits);
    n.append("-s");
    n.append_number(SuperBlock);
    if constexpr (!codec_type::symmetric) n.append("-asym");
    return n;
  }();
  static constexpr std::string_view name = name_text;
};

/// Two-level codecs are linear, but the integer-domain kernels read one-level layouts only.
static_assert(reference_codec<two_level<4, 16>> && fused_dot_codec<two_level<4, 16>> && !integer_codec<two_level<4, 16>>);
static_assert(codec<two_level<3, 32, symmetry::asymmetric>>);

}  // namespace qcodec::inline QCODEC_ABI

#define QCODEC_KERNELS "qcodec/codecs/two_level_encoder-inl.hpp"
#include "qcodec/core/simd/foreach_target.hpp"
