#pragma once
/// A linear codec's weight repacked at load time for the integer kernel of one SIMD target
/// (ops/integer_kernels-inl.hpp): rows in panels of that target's width, one int32 lane per row, so
/// that one vector of codes meets 4 activation codes broadcast to every lane and each lane
/// accumulates its own row; nothing is reduced across lanes, and the activations of a pass
/// are read once per panel instead of once per row.
///
/// Layout: panel p, step t, lane l, byte j at ((p * steps + t) * panel_rows + l) * 4 + j holds
/// row p * panel_rows + l's code of column 4t + j (INT8), or of columns 8t + j (low nibble)
/// and 8t + 4 + j (high nibble) (INT4). Columns past the row and rows past the matrix hold
/// code 0 with scale 0 and offset 0 (the activations past the row are 0 as well). Per
/// (panel, weight block) the lanes' scales (FP32) and offsets minus the target's code bias.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "qcodec/codecs/capabilities.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/simd.hpp"
#include "qcodec/ops/aligned_buffer.hpp"

namespace qcodec::inline QCODEC_ABI {

/// Columns per activation scale (ops/integer_gemv.hpp) against weights of `Bits`-bit codes:
/// 32 for INT8, whose own error is small enough that the activations' shows (3–5 dB of output
/// SNR over blocks of 128 with outlier channels), 128 for INT4, where blocks of 32 gain at
/// most 0.2 dB and cost 15–35% of the time (bench/RESULTS.md, "Integer path: activation
/// blocks").
template <int Bits>
inline constexpr index_t activation_block_cols = Bits == 8 ? 32 : 128;

/// Columns of one weight block of the integer kernel: the group (the row for per-row and
/// per-tensor scales).
template <integer_block_view Storage>
index_t integer_block_cols(const Storage& s) {
  return s.group_size();
}

/// Columns of one activation block of Codec's weight `s`: activation_block_cols when weight
/// blocks are made of them (per-row scales, or groups of a multiple of it), else the group.
/// A block's int32 sum is exact for blocks of up to 2^15 columns (2^15 * 127 * 255 < 2^31).
template <class Codec>
index_t integer_activation_cols(const typename Codec::storage& s) {
  constexpr index_t block = activation_block_cols<codec_traits<Codec>::bits>;
  const index_t group = s.group_size();
  return group == s.cols || group % block == 0 ? block : group;
}

/// The panel layout of one target: the target, rows per panel (its lane count) and the code
/// bias its quad product subtracts (ops/integer_kernels-inl.hpp).
struct integer_layout {
  simd::target target;
  index_t panel_rows;
  int code_bias;
};

template <class Codec>
class integer_panels {
  static_assert(integer_codec<Codec>,
                "qcodec: integer-domain compute needs an integer_codec (codecs/capabilities.hpp): a linear "
                "codec of 4- or 8-bit codes whose storage is an integer_block_view; QINS, the grids and the "
                "two-level codecs are served by the FP32 paths: decode first");

 public:
  static constexpr int bits = codec_traits<Codec>::bits;
  /// Columns of one step of a row (4 bytes).
  static constexpr index_t step_cols = bits == 8 ? 4 : 8;

  /// Repacks `s` for the kernel of target `t` (compiled and supported; by default the
  /// active one).
  explicit integer_panels(const typename Codec::storage& s, simd::target t = simd::active_target())
      : layout_(simd::dispatch(t, [](auto target) { return integer_layout_of(target, bits); })),
        steps_((s.cols + step_cols - 1) / step_cols),
        block_cols_(integer_block_cols(s)),
        activation_cols_(integer_activation_cols<Codec>(s)),
        blocks_((s.cols + block_cols_ - 1) / block_cols_) {
    const index_t panel_rows = layout_.panel_rows, step_bytes = 4 * panel_rows;
    const index_t panels = (s.rows + panel_rows - 1) / panel_rows;
    codes_.reserve(static_cast<std::size_t>(panels * steps_ * step_bytes));
    scales_.assign(static_cast<std::size_t>(panels * blocks_ * panel_rows), 0.0f);
    offsets_.assign(scales_.size(), 0);
    const int bias = layout_.code_bias;
    for (index_t p = 0; p < panels; ++p)
      for (index_t l = 0; l < panel_rows; ++l) {
        const index_t r = p * panel_rows + l;
        const bool row = r < s.rows;
        const auto code = [&](index_t c) { return row && c < s.cols ? s.code(r, c) : 0u; };
        for (index_t t = 0; t < steps_; ++t)
          for (index_t j = 0; j < 4; ++j)
            codes_.data()[((p * steps_ + t) * panel_rows + l) * 4 + j] = static_cast<std::uint8_t>(
                bits == 8 ? code(4 * t + j) : code(8 * t + j) | code(8 * t + 4 + j) << 4);
        if (!row) continue;
        for (index_t b = 0; b < blocks_; ++b) {
          const auto at = static_cast<std::size_t>((p * blocks_ + b) * panel_rows + l);
          scales_[at] = s.block_scale(r, b);
          offsets_[at] = s.block_offset(r, b) - bias;
        }
      }
  }

  simd::target target() const { return layout_.target; }
  index_t panel_rows() const { return layout_.panel_rows; }
  index_t steps() const { return steps_; }
  /// Columns of a weight block (one scale and offset per lane) and their count per row.
  index_t block_cols() const { return block_cols_; }
  index_t blocks() const { return blocks_; }
  /// Columns of an activation block (int8_activations::quantize's block_cols).
  index_t activation_cols() const { return activation_cols_; }
  /// The steps of panel p, steps() * 4 * panel_rows() bytes.
  const std::uint8_t* codes(index_t p) const { return codes_.data() + p * steps_ * 4 * layout_.panel_rows; }
  /// The panel_rows() scales and offsets (minus the code bias) of panel p in weight block b.
  const float* scales(index_t p, index_t b) const { return scales_.data() + (p * blocks_ + b) * layout_.panel_rows; }
  const std::int32_t* offsets(index_t p, index_t b) const {
    return offsets_.data() + (p * blocks_ + b) * layout_.panel_rows;
  }

 private:
  integer_layout layout_;
  index_t steps_, block_cols_, activation_cols_, blocks_;
  detail::aligned_array<std::uint8_t> codes_;
  std::vector<float> scales_;
  std::vector<std::int32_t> offsets_;
};

}  // namespace qcodec::inline QCODEC_ABI
