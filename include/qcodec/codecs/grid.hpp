#pragma once
/// Non-uniform grid codec: per block of BlockSize elements along a row, one signed scale
/// times a table of 2^Bits levels (3 to 6 bits) designed by Lloyd-Max. QINS is the log-spaced
/// member of this family; this one places its levels where the block-normalised weights are.
/// A codec at rest only (not linear: codec_traits<grid<...>>::is_linear is false).
///
/// A block's scale is either one FP16 value (ScaleBits = 0) or two-level (ScaleBits > 0): a
/// signed integer sub-scale m of ScaleBits bits (offset binary, -2^(ScaleBits-1) ..
/// 2^(ScaleBits-1) - 1) times the FP16 scale d >= 0 of its super-block, scale = d * m in float
/// (exact: 11 by at most 8 significant bits). A row has floor(cols / SuperBlock) super-blocks
/// of SuperBlock columns (at least one), the last also taking the row's tail shorter than
/// SuperBlock (two_level_scales.hpp).
///
/// Layout of `storage`:
///  - codes: rows x row_bytes, densely packed (grid_math.hpp): row_bytes = ceil(cols * Bits / 8),
///    padding bits zero;
///  - scales (one-level): one FP16 per block, (row, block) -> row * blocks_per_row + block,
///    signed; the last block of a row may be shorter;
///  - sub_scales (two-level): rows x ceil(blocks_per_row * ScaleBits / 8) bytes, block b of a row
///    is field b of its little-endian bit stream (core/bit_stream.hpp), padding bits zero;
///  - super_scales (two-level): FP16 >= 0, rows x super_blocks_per_row, (row, k) at
///    row * super_blocks_per_row + k; column c is in super-block min(c / SuperBlock,
///    super_blocks_per_row - 1);
///  - tables (two tables only): rows x ceil(blocks_per_row / 8) bytes, block b's table is bit b
///    of its row's bit stream, padding bits zero;
///  - levels (grid_levels::per_tensor only): the tensor's Tables x 2^Bits FP32 levels, table
///    after table. The fixed variant stores none: its levels are `fixed_tables`, compiled in.
/// A level table is strictly increasing, holds 0 exactly once and ends at l_{L-1} = 1, with
/// l_0 >= -1; a code k decodes to levels[k] * scale.
///
/// Encoding (the specification):
///  - codes: each weight takes the code whose decoded value (levels[k] * scale as a float,
///    as decode computes it) is nearest in value, ties to the smaller decoded value. 0 is a
///    level, so no weight ever decodes to the opposite sign;
///  - scale rule: with m+ = max(0, max w) and m- = max(0, -min w) over the block, the covering
///    scales s+ = max(m+, m- / |l_0|) and s- = -max(m-, m+ / |l_0|) (the smallest positive and
///    negative scales whose grid spans the block) are rounded to FP16 away from zero, capped
///    at 65504 in magnitude; the candidates are f * s+ and f * s- for f in scale_fractions
///    (rounded to nearest but for f = 1) and, for each, the least-squares scale sum(w q) /
///    sum(q^2) of its codes (q their levels); the block's scale is the candidate whose codes
///    give the least squared error as decoded. With column importances h (encode's optional
///    input) every squared error and least-squares sum here and below is weighted by h. The
///    covering candidates bound it: the block's RMS error is at most (largest level gap) *
///    min(|s+|, |s-|) / 2, up to rounding;
///  - two-level scales: each block's real scale is chosen by the same rule without rounding to
///    FP16, the super-block scale maps the largest of their magnitudes to 2^(ScaleBits-1) - 1
///    (rounded up to FP16), and each block keeps the floor or ceiling of its real scale / d,
///    whichever gives the smaller squared error with codes chosen under the exact d * m
///    (two_level_scales.hpp);
///  - two tables (Tables = 2, two-level scales only): each block takes the table whose scale
///    rule gives the smaller squared error (the first of equals), then its scale and codes as
///    above under that table;
///  - levels: Lloyd-Max on the block-scaled model, `iterations` rounds of (choose every sampled
///    block's scale and codes by the rules above; move each level except 0 to the least-squares
///    value sum(s w) / sum(s^2) over the weights coded with it), then the table is mirrored if
///    |l_0| > l_{L-1} and divided by its last level. Sampled are all blocks of the tensor when
///    it has at most 2^16 elements, else of floor(2^16 / cols) (at least 1) evenly spaced rows.
///    The fixed tables are this design run on N(0, 1) weights (design_sample_rows x
///    design_sample_cols, std::mt19937_64 seeded with design_seed, std::normal_distribution)
///    with 32-element blocks from uniform_levels(), fixed_design_iterations rounds
///    (tests/test_grid.cpp recomputes them); the per-tensor tables run it on the tensor itself
///    from the fixed table, per_tensor_iterations rounds. With two tables every sampled block
///    first takes its table by the rule above and each table moves over its own blocks; the
///    fixed pair starts from design_start() (the one-table design and its levels l moved to
///    sign(l) |l|^1.25) with the codec's own blocks and real scales. A second table per block
///    gained +0.3 dB on Gaussian and +0.1 to +0.6 dB on heavy-tailed weights for 1/32 bit.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "qcodec/config.hpp"
#include "qcodec/codecs/array_visiting.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/codecs/column_importance.hpp"
#include "qcodec/codecs/grid_math.hpp"
#include "qcodec/codecs/storage_checks.hpp"
#include "qcodec/codecs/two_level_scales.hpp"
#include "qcodec/core/bit_stream.hpp"
#include "qcodec/core/half.hpp"

namespace qcodec::inline QCODEC_ABI {

/// Where a grid codec's level table comes from.
enum class grid_levels {
  /// Designed once offline (the file comment of grid.hpp) and compiled in: no stored table.
  fixed,
  /// Designed per tensor by Lloyd-Max on its own weights and stored (2^Bits FP32 values).
  per_tensor,
};

namespace detail {

/// The compiled-in level tables (grid.hpp's design on N(0, 1) weights, 32-element blocks).
template <int Bits>
inline constexpr std::array<float, (1 << Bits)> grid_fixed_levels{};
template <>
inline constexpr std::array<float, 16> grid_fixed_levels<4> = {
    -0.815925717f, -0.634082973f, -0.492204726f, -0.374908805f, -0.272942781f, -0.17890349f,
    -0.0886541158f, 0.0f, 0.0851045772f, 0.173642978f, 0.266233832f, 0.365377009f,
    0.472677797f, 0.599294782f, 0.764054835f, 1.0f};
template <>
inline constexpr std::array<float, 8> grid_fixed_levels<3> = {
    -0.726659536f, -0.430151433f, -0.203820437f, 0.0f, 0.190011233f, 0.396977127f, 0.6515885f, 1.0f};
template <>
inline constexpr std::array<float, 32> grid_fixed_levels<5> = {
    -0.872739196f, -0.766273558f, -0.67908442f, -0.603643119f, -0.540520728f, -0.486039877f,
    -0.435891539f, -0.386408687f, -0.338343799f, -0.288631439f, -0.239670381f, -0.19116962f,
    -0.142059654f, -0.093499884f, -0.0452562198f, 0.0f, 0.0504642911f, 0.0980477631f, 0.146068394f,
    0.19376561f, 0.241473258f, 0.289594352f, 0.336825311f, 0.384171098f, 0.434114724f, 0.48341015f,
    0.535495639f, 0.590761542f, 0.653385103f, 0.727119744f, 0.830897152f, 1.0f};
template <>
inline constexpr std::array<float, 64> grid_fixed_levels<6> = {
    -0.956032932f, -0.90850389f, -0.86608851f, -0.826716721f, -0.792979419f, -0.759872377f,
    -0.727713645f, -0.69865948f, -0.669016123f, -0.639746964f, -0.611227095f, -0.582906544f,
    -0.553525567f, -0.523702085f, -0.49356851f, -0.46196413f, -0.432855129f, -0.403503239f,
    -0.374376088f, -0.345934749f, -0.316167951f, -0.288052261f, -0.259358168f, -0.2306052f,
    -0.200581402f, -0.17071867f, -0.138707772f, -0.107575729f, -0.078539148f, -0.0503556281f,
    -0.0237108115f, 0.0f, 0.0312238708f, 0.0624938719f, 0.0908370167f, 0.119369514f, 0.147548616f,
    0.17380324f, 0.202231139f, 0.231496975f, 0.26053375f, 0.288309634f, 0.315494448f, 0.344239652f,
    0.372899026f, 0.402414054f, 0.432763994f, 0.462390095f, 0.491071373f, 0.519313037f,
    0.547908187f, 0.577102542f, 0.604200304f, 0.632192254f, 0.659096658f, 0.688405037f,
    0.718455791f, 0.750357628f, 0.781290829f, 0.812520862f, 0.846091151f, 0.887767673f,
    0.940636992f, 1.0f};

/// The compiled-in pairs of level tables of the two-table variants (their design: grid.hpp's
/// file comment), the two tables one after the other.
template <int Bits>
inline constexpr std::array<float, 2 * (1 << Bits)> grid_fixed_pair{};
template <>
inline constexpr std::array<float, 32> grid_fixed_pair<4> = {
    -0.83038342f, -0.64939034f, -0.506591737f, -0.388359487f, -0.284537643f, -0.188506529f,
    -0.0922285169f, 0.0f, 0.0909345597f, 0.182891965f, 0.277099103f, 0.383301347f, 0.496409327f,
    0.620998025f, 0.779392481f, 1.0f, -0.729308724f, -0.564516127f, -0.429863274f, -0.325447679f,
    -0.229792535f, -0.144228101f, -0.070350334f, 0.0f, 0.0665742829f, 0.140560359f, 0.222381696f,
    0.307435423f, 0.404259026f, 0.521827281f, 0.697531939f, 1.0f};
template <>
inline constexpr std::array<float, 16> grid_fixed_pair<3> = {
    -0.873155475f, -0.513066053f, -0.244836345f, 0.0f, 0.185302854f, 0.396815985f, 0.655822575f,
    1.0f, -0.620136499f, -0.369256854f, -0.169579104f, 0.0f, 0.189052328f, 0.387097001f,
    0.630993247f, 1.0f};

/// Table t of tables stored one after the other, L levels each.
template <int L, std::size_t N>
constexpr std::array<float, L> grid_table(const std::array<float, N>& tables, int t) {
  std::array<float, L> table{};
  for (int k = 0; k < L; ++k) table[static_cast<std::size_t>(k)] = tables[static_cast<std::size_t>(t * L + k)];
  return table;
}

}  // namespace detail

template <int Bits, index_t BlockSize = 32, grid_levels Levels = grid_levels::fixed, int ScaleBits = 0,
          index_t SuperBlock = 256, int Tables = 1>
class grid {
  static_assert(Bits >= 3 && Bits <= 6, "qcodec: grid codes are 3 to 6 bits");
  static_assert(BlockSize == 16 || BlockSize == 32 || BlockSize == 64,
                "qcodec: grid block size must be 16, 32 or 64");
  static_assert(ScaleBits == 0 || (ScaleBits >= 4 && ScaleBits <= 8),
                "qcodec: grid sub-scales are 4 to 8 bits (0: one FP16 scale per block)");
  static_assert(ScaleBits == 0 || (SuperBlock >= BlockSize && SuperBlock % BlockSize == 0),
                "qcodec: a super-block is a whole number of blocks");
  static_assert(Tables == 1 || (Tables == 2 && ScaleBits > 0 && Bits <= 4),
                "qcodec: a second level table needs two-level scales (and a compiled-in pair: 3 or 4 bits)");

 public:
  static constexpr int level_count = 1 << Bits;
  static constexpr index_t block_size = BlockSize;
  static constexpr bool stores_levels = Levels == grid_levels::per_tensor;
  static constexpr bool two_level_scales = ScaleBits > 0;
  static constexpr int scale_bits = ScaleBits;
  static constexpr index_t super_block = two_level_scales ? SuperBlock : 0;
  static constexpr index_t blocks_per_super = two_level_scales ? SuperBlock / BlockSize : 0;
  /// Sub-scale codes of two-level scales: [sub_scale_min, sub_scale_max].
  static constexpr int sub_scale_min = two_level_scales ? -(1 << (ScaleBits - 1)) : 0;
  static constexpr int sub_scale_max = two_level_scales ? (1 << (ScaleBits - 1)) - 1 : 0;
  using level_table = std::array<float, level_count>;
  /// Number of level tables; with two, each block chooses one (a stored bit).
  static constexpr int table_count = Tables;
  /// The tables one after the other: table t is entries [t * level_count, (t + 1) * level_count).
  /// For one table, a level_table.
  using table_set = std::array<float, Tables * level_count>;

  /// The compiled-in table of the fixed variant, and the start of the per-tensor design.
  static constexpr table_set fixed_tables = [] {
    if constexpr (Tables == 1) return detail::grid_fixed_levels<Bits>;
    else return detail::grid_fixed_pair<Bits>;
  }();
  /// The first fixed table (the only one for one table).
  static constexpr level_table fixed_levels = detail::grid_table<level_count>(fixed_tables, 0);

  /// Where the design of the fixed tables starts: uniform_levels() for one table; for two, the
  /// one-table design and that table with each level l moved to sign(l) |l|^1.25 (denser near 0).
  static table_set design_start() {
    if constexpr (Tables == 1) {
      return uniform_levels();
    } else {
      table_set start{};
      const auto& single = detail::grid_fixed_levels<Bits>;
      for (int k = 0; k < level_count; ++k) {
        const float l = single[static_cast<std::size_t>(k)];
        start[static_cast<std::size_t>(k)] = l;
        start[static_cast<std::size_t>(level_count + k)] = std::copysign(std::pow(std::abs(l), 1.25f), l);
      }
      return start;
    }
  }
  /// Fractions f of the scale rule: 1 covers the block, smaller ones clip its largest weights
  /// (the least-squares step then moves each candidate where its codes want it). Spaced 0.05
  /// for 3 and 4 bits (more, down to 0.8 or above 1, moved the SNR by <= 0.15 dB at half the
  /// speed), 0.03 for 5 and 6 bits, whose optimum clips less (+0.06 dB at 6 bits, measured on
  /// Gaussian 256 x 4096).
  static constexpr auto scale_fractions = [] {
    if constexpr (Bits <= 4) return std::array<float, 4>{1.0f, 0.95f, 0.9f, 0.85f};
    else return std::array<float, 5>{1.0f, 0.97f, 0.94f, 0.91f, 0.88f};
  }();
  static constexpr int per_tensor_iterations = 6;
  static constexpr int fixed_design_iterations = 40;
  static constexpr index_t design_sample_rows = 64, design_sample_cols = 1024;
  static constexpr std::uint64_t design_seed = 20261202;
  /// Largest magnitude the codec takes: the largest finite FP16, the largest scale.
  static constexpr float max_magnitude = 65504.0f;

  struct storage : detail::array_visiting<storage> {
    index_t rows = 0, cols = 0;
    std::vector<std::uint8_t> codes;
    std::vector<half> scales;              // one-level only
    std::vector<std::uint8_t> sub_scales;  // two-level only
    std::vector<half> super_scales;        // two-level only
    std::vector<std::uint8_t> table_bits;  // two tables only
    std::vector<float> levels;             // per_tensor only: Tables * level_count values

    index_t row_bytes() const { return grid_math::packed_bytes(Bits, cols); }
    index_t blocks_per_row() const { return (cols + BlockSize - 1) / BlockSize; }
    index_t sub_scale_row_bytes() const { return two_level_scales ? bit_stream_bytes(blocks_per_row(), ScaleBits) : 0; }
    index_t super_blocks_per_row() const { return two_level_scales ? detail::super_blocks_in_row(cols, SuperBlock) : 0; }
    index_t table_row_bytes() const { return Tables > 1 ? bit_stream_bytes(blocks_per_row(), 1) : 0; }

    /// The level table block b of row r decodes with.
    int table(index_t r, index_t b) const {
      if constexpr (Tables > 1) return static_cast<int>(read_bits(table_bits.data() + r * table_row_bytes(), b, 1));
      else return 0;
    }

    /// Sub-scale code m of block b of row r (two-level only).
    int sub_scale(index_t r, index_t b) const {
      return static_cast<int>(read_bits(sub_scales.data() + r * sub_scale_row_bytes(), b, ScaleBits)) + sub_scale_min;
    }
    /// The signed scale of block b of row r, as decode uses it.
    float block_scale(index_t r, index_t b) const {
      if constexpr (two_level_scales) {
        const float d = static_cast<float>(
            super_scales[static_cast<std::size_t>(r * super_blocks_per_row() + detail::super_block_of(b * BlockSize, cols, SuperBlock))]);
        return d * static_cast<float>(sub_scale(r, b));
      } else {
        return static_cast<float>(scales[static_cast<std::size_t>(r * blocks_per_row() + b)]);
      }
    }

    template <class Self, class Visitor>
    static void visit_arrays_of(Self& self, Visitor& visit) {
      visit("codes", self.codes);
      if constexpr (two_level_scales) {
        visit("sub_scales", self.sub_scales);
        visit("super_scales", self.super_scales);
        if constexpr (Tables > 1) visit("tables", self.table_bits);
      } else {
        visit("scales", self.scales);
      }
      if constexpr (stores_levels) visit("levels", self.levels);
    }
  };

  /// The table l_k = (k - (L/2 - 1)) / (L/2): uniform, 0 at k = L/2 - 1, ending at 1.
  static constexpr level_table uniform_levels() {
    level_table l{};
    for (int k = 0; k < level_count; ++k)
      l[static_cast<std::size_t>(k)] = static_cast<float>(k - (level_count / 2 - 1)) / (level_count / 2);
    return l;
  }

  /// The levels a storage decodes with (every table, one after the other).
  static const float* levels_of(const storage& s) {
    if constexpr (stores_levels) return s.levels.data();
    else return fixed_tables.data();
  }
  /// The levels of block b of row r.
  static const float* block_levels(const storage& s, index_t r, index_t b) {
    return levels_of(s) + s.table(r, b) * level_count;
  }
  /// Table t of a set.
  static constexpr level_table table_at(const table_set& tables, int t) { return detail::grid_table<level_count>(tables, t); }

  encoded_matrix<grid> encode(matrix_view w, std::string_view name = "weight") const { return encode(w, name, {}); }

  /// Encodes with the squared error of column c weighted by column_importance[c]
  /// (column_importance.hpp; empty = unweighted) in every choice of scale, table and
  /// sub-scale, and in the per-tensor design of the levels.
  encoded_matrix<grid> encode(matrix_view w, std::string_view name, std::span<const float> column_importance) const {
    detail::require_finite_nonempty(w, name);
    require_fp16_range(w, name);
    detail::require_column_importance(name, column_importance, w.cols());
    const std::vector<float> h = normalised_importance(column_importance, w.cols());
    if constexpr (stores_levels) return encode_rows(w, h, design_levels(w, fixed_tables, per_tensor_iterations, name, h), name);
    else return encode_rows(w, h, fixed_tables, name);
  }

  /// Encodes `w` with given level tables (validated), stored with the codes: for rows joining
  /// an encoded tensor, or tables designed elsewhere. Per-tensor variant only.
  encoded_matrix<grid> encode_with_levels(matrix_view w, const table_set& levels,
                                          std::string_view name = "weight") const
    requires(stores_levels)
  {
    detail::require_finite_nonempty(w, name);
    require_fp16_range(w, name);
    for (int t = 0; t < Tables; ++t) validate_levels(levels.data() + t * level_count, name);
    return encode_rows(w, normalised_importance({}, w.cols()), levels, name);
  }

  /// Lloyd-Max design of the level tables on `w` from `start` (the file comment's rule), its
  /// sums weighted by the column importances (as encode takes them); throws as encode does on
  /// input it refuses. Falls back to the last valid tables if rounding ever broke a table's
  /// invariants.
  static table_set design_levels(matrix_view w, const table_set& start, int iterations,
                                 std::string_view name = "weight", std::span<const float> column_importance = {}) {
    detail::require_finite_nonempty(w, name);
    require_fp16_range(w, name);
    detail::require_column_importance(name, column_importance, w.cols());
    const std::vector<float> importance = normalised_importance(column_importance, w.cols());
    const index_t rows = w.rows(), cols = w.cols();
    const index_t sampled_rows =
        rows * cols <= design_sample_limit ? rows : std::clamp<index_t>(design_sample_limit / cols, 1, rows);
    const index_t blocks = (cols + BlockSize - 1) / BlockSize;
    table_set tables = start;
    for (int iteration = 0; iteration < iterations; ++iteration) {
      std::array<double, Tables * level_count> weighted_sum{}, scale_squares{};
      for (index_t i = 0; i < sampled_rows; ++i) {
        const index_t r = (2 * i + 1) * rows / (2 * sampled_rows);
        for (index_t b = 0; b < blocks; ++b) {
          block_values values, h;
          const index_t n = load_block(w, importance, r, b, values, h);
          const auto [t, fit] = best_table(values, h, tables);
          if (fit.scale == 0) continue;
          const level_table levels = table_at(tables, t);
          std::uint8_t codes[BlockSize * Bits / 8 + 1] = {};
          write_codes(values, n, fit.scale, levels, zero_code(levels.data()), codes, 0);
          for (index_t c = 0; c < n; ++c) {
            const auto k = static_cast<std::size_t>(t * level_count) + grid_math::unpack_code<Bits>(codes, c);
            weighted_sum[k] += static_cast<double>(fit.scale) * values[c] * h[c];
            scale_squares[k] += static_cast<double>(fit.scale) * fit.scale * h[c];
          }
        }
      }
      table_set next_tables = tables;
      for (int t = 0; t < Tables; ++t) {
        const level_table levels = table_at(tables, t);
        const int zero = zero_code(levels.data());
        std::array<double, level_count> next;
        for (int k = 0; k < level_count; ++k) {
          const auto i = static_cast<std::size_t>(t * level_count + k);
          next[static_cast<std::size_t>(k)] =
              k != zero && scale_squares[i] > 0 ? weighted_sum[i] / scale_squares[i] : levels[static_cast<std::size_t>(k)];
        }
        std::sort(next.begin(), next.end());
        if (-next.front() > next.back()) {
          std::reverse(next.begin(), next.end());
          for (double& l : next) l = -l;
        }
        const double top = next.back();
        level_table candidate;
        for (int k = 0; k < level_count; ++k)
          candidate[static_cast<std::size_t>(k)] = static_cast<float>(next[static_cast<std::size_t>(k)] / top);
        candidate.back() = 1.0f;
        if (!levels_valid(candidate.data())) return tables;
        std::copy(candidate.begin(), candidate.end(), next_tables.begin() + t * level_count);
      }
      tables = next_tables;
    }
    return tables;
  }

  /// Decodes rows [first, last); bit-exact with decode_rows_ref.
  static void decode_rows(const storage& s, index_t first, index_t last, float* out) {
    const index_t blocks = s.blocks_per_row();
    for (index_t r = first; r < last; ++r, out += s.cols) {
      const std::uint8_t* row = s.codes.data() + r * s.row_bytes();
      index_t c = 0;
      if constexpr (Bits == 4) {
        // Two codes per byte; blocks start on even columns.
        for (index_t b = 0; b < blocks; ++b) {
          const float scale = s.block_scale(r, b);
          const float* levels = block_levels(s, r, b);
          const index_t end = std::min(s.cols, c + BlockSize);
          for (; c + 2 <= end; c += 2) {
            const unsigned byte = row[c >> 1];
            out[c] = levels[byte & 0xFu] * scale;
            out[c + 1] = levels[byte >> 4] * scale;
          }
          if (c < end) out[c] = levels[row[c >> 1] & 0xFu] * scale, ++c;
        }
      } else {
        // Eight codes per Bits bytes; blocks start on multiples of 8 columns.
        constexpr std::uint64_t mask = (std::uint64_t{1} << Bits) - 1;
        for (index_t b = 0; b < blocks; ++b) {
          const float scale = s.block_scale(r, b);
          const float* levels = block_levels(s, r, b);
          const index_t end = std::min(s.cols, c + BlockSize);
          for (; c + 8 <= end; c += 8) {
            const std::uint8_t* p = row + c / 8 * Bits;
            std::uint64_t bits = 0;
            for (int k = 0; k < Bits; ++k) bits |= std::uint64_t{p[k]} << (8 * k);
            for (int j = 0; j < 8; ++j) out[c + j] = levels[(bits >> (Bits * j)) & mask] * scale;
          }
          for (; c < end; ++c) out[c] = grid_math::decode(grid_math::unpack_code<Bits>(row, c), levels, scale);
        }
      }
    }
  }

  /// The reference decode, the specification: every code read bit by bit from the layout of
  /// grid_math.hpp, times its block's scale.
  static void decode_rows_ref(const storage& s, index_t first, index_t last, float* out) {
    // Field i (`width` bits) of row r of a stream of `row_bytes` bytes per row, bit by bit.
    const auto field = [](const std::vector<std::uint8_t>& stream, index_t row_bytes, index_t r, index_t i, int width) {
      unsigned value = 0;
      for (int bit = 0; bit < width; ++bit) {
        const index_t position = r * row_bytes * 8 + i * width + bit;
        value |= ((stream[static_cast<std::size_t>(position / 8)] >> (position % 8)) & 1u) << bit;
      }
      return value;
    };
    for (index_t r = first; r < last; ++r, out += s.cols) {
      for (index_t c = 0; c < s.cols; ++c) {
        const unsigned code = field(s.codes, s.row_bytes(), r, c, Bits);
        const index_t b = c / BlockSize;
        float scale;
        if constexpr (two_level_scales) {
          const unsigned raw = field(s.sub_scales, s.sub_scale_row_bytes(), r, b, ScaleBits);
          const float d = static_cast<float>(
              s.super_scales[static_cast<std::size_t>(r * s.super_blocks_per_row() + detail::super_block_of(c, s.cols, SuperBlock))]);
          scale = d * static_cast<float>(static_cast<int>(raw) - (1 << (ScaleBits - 1)));
        } else {
          scale = static_cast<float>(s.scales[static_cast<std::size_t>(r * s.blocks_per_row() + b)]);
        }
        const unsigned table = Tables > 1 ? field(s.table_bits, s.table_row_bytes(), r, b, 1) : 0;
        out[c] = levels_of(s)[table * level_count + code] * scale;
      }
    }
  }

  /// out[b] = sum_c Ŵ(r, c) x[b][c] for b < NB (the fused path of dual_stream_linear), as plain
  /// loops: each Ŵ(r, c) decoded exactly as decode_rows (or read from `cached`, the decoded
  /// weight: the same bits), accumulated in column order by FMA, K roundings per output.
  /// Plain C++ on every target (the target is unused).
  template <int NB, class Target>
  static void dot_row(Target, const storage& s, index_t r, const float* const* x, float* out,
                      const float* cached = nullptr) {
    float row_values[BlockSize];
    float acc[NB] = {};
    for (index_t c0 = 0; c0 < s.cols; c0 += BlockSize) {
      const index_t n = std::min(BlockSize, s.cols - c0);
      const float* values = row_values;
      if (cached != nullptr) values = cached + r * s.cols + c0;
      else decode_block(s, r, c0 / BlockSize, n, row_values);
      for (index_t c = 0; c < n; ++c)
        for (int b = 0; b < NB; ++b) acc[b] = std::fma(values[c], x[b][c0 + c], acc[b]);
    }
    for (int b = 0; b < NB; ++b) out[b] = acc[b];
  }

  static void validate(const storage& s, std::string_view name) {
    detail::require_shape(name, s.rows, s.cols);
    const auto expect = [&](std::string_view array, std::size_t size, index_t expected) {
      detail::require_array_size(name, array, size, static_cast<std::size_t>(expected), s.rows, s.cols);
    };
    expect("codes", s.codes.size(), s.rows * s.row_bytes());
    expect("scales", s.scales.size(), two_level_scales ? 0 : s.rows * s.blocks_per_row());
    expect("sub_scales", s.sub_scales.size(), s.rows * s.sub_scale_row_bytes());
    expect("super_scales", s.super_scales.size(), s.rows * s.super_blocks_per_row());
    expect("tables", s.table_bits.size(), s.rows * s.table_row_bytes());
    expect("levels", s.levels.size(), stores_levels ? Tables * level_count : 0);
    for (std::size_t i = 0; i < s.scales.size(); ++i)
      if (!std::isfinite(static_cast<float>(s.scales[i])))
        detail::fail("tensor '", name, "': scale ", i, " is ", static_cast<float>(s.scales[i]),
                     " (must be finite)");
    // Two-level: every sub-scale field is a valid code, and |l| <= 1, |m| <= 2^(ScaleBits-1),
    // d <= 65504 keep every decoded value finite; what remains are d and the padding bits.
    if constexpr (two_level_scales) {
      detail::require_scales(name, s.super_scales);
      detail::require_zero_padding(name, "sub_scales", s.sub_scales, s.rows, s.sub_scale_row_bytes(),
                                   s.blocks_per_row() * ScaleBits);
    }
    if constexpr (Tables > 1)
      detail::require_zero_padding(name, "tables", s.table_bits, s.rows, s.table_row_bytes(), s.blocks_per_row());
    if constexpr (stores_levels)
      for (int t = 0; t < Tables; ++t) validate_levels(s.levels.data() + t * level_count, name);
    detail::require_zero_padding(name, "codes", s.codes, s.rows, s.row_bytes(), s.cols * Bits);
  }

  /// Throws qcodec::error naming `name` unless `levels` (level_count values) is a level table:
  /// finite, strictly increasing, holding 0, last level 1 and first >= -1 (so every decoded
  /// value is at most |scale|: finite).
  static void validate_levels(const float* levels, std::string_view name) {
    for (int k = 0; k < level_count; ++k)
      if (!std::isfinite(levels[k]) || (k > 0 && !(levels[k] > levels[k - 1])))
        detail::fail("tensor '", name, "': levels[", k, "] = ", levels[k],
                     ": levels must be finite and strictly increasing");
    if (levels[level_count - 1] != 1.0f)
      detail::fail("tensor '", name, "': the last level is ", levels[level_count - 1], ", must be 1");
    if (!(levels[0] >= -1.0f))
      detail::fail("tensor '", name, "': the first level is ", levels[0], ", must be >= -1");
    if (zero_code(levels) < 0) detail::fail("tensor '", name, "': the levels do not hold 0");
  }

  static std::size_t byte_size(const storage& s) {
    return s.codes.size() + (s.scales.size() + s.super_scales.size()) * sizeof(half) + s.sub_scales.size() +
           s.table_bits.size() + s.levels.size() * sizeof(float);
  }

  /// The code of level 0 (-1 if the table has none).
  static int zero_code(const float* levels) {
    for (int k = 0; k < level_count; ++k)
      if (levels[k] == 0.0f) return k;
    return -1;
  }

 private:
  static constexpr index_t design_sample_limit = index_t{1} << 16;
  /// Evaluation lanes: independent partial sums the compiler keeps in one vector register.
  static constexpr index_t lanes = 8;
  static_assert(BlockSize % lanes == 0);

  /// One block's weights, padded with zeros to BlockSize (a zero codes to level 0 exactly
  /// and adds nothing to any sum).
  using block_values = float[BlockSize];

  /// `importance`: one weight per column, normalised (normalised_importance).
  static encoded_matrix<grid> encode_rows(matrix_view w, const std::vector<float>& importance, const table_set& tables,
                                          std::string_view name) {
    storage s;
    s.rows = w.rows();
    s.cols = w.cols();
    s.codes.assign(static_cast<std::size_t>(s.rows * s.row_bytes()), 0);
    if constexpr (stores_levels) s.levels.assign(tables.begin(), tables.end());
    if constexpr (two_level_scales) {
      encode_two_level_scales(w, importance, tables, name, s);
    } else {
      const level_table& levels = tables;  // one table
      const int zero = zero_code(levels.data());
      s.scales.resize(static_cast<std::size_t>(s.rows * s.blocks_per_row()));
      for (index_t r = 0; r < s.rows; ++r) {
        std::uint8_t* codes = s.codes.data() + r * s.row_bytes();
        for (index_t b = 0; b < s.blocks_per_row(); ++b) {
          block_values values, h;
          const index_t n = load_block(w, importance, r, b, values, h);
          const half scale = half(choose_scale(values, h, levels).scale);  // an FP16 value already
          s.scales[static_cast<std::size_t>(r * s.blocks_per_row() + b)] = scale;
          write_codes(values, n, static_cast<float>(scale), levels, zero, codes, b * BlockSize);
        }
      }
    }
    return encoded_matrix<grid>(std::move(s));
  }

  /// Scales, tables and codes of the two-level rule (file comment), a super-block at a time.
  static void encode_two_level_scales(matrix_view w, const std::vector<float>& importance, const table_set& tables,
                                      std::string_view name, storage& s) {
    const index_t blocks = s.blocks_per_row(), supers = s.super_blocks_per_row();
    s.sub_scales.assign(static_cast<std::size_t>(s.rows * s.sub_scale_row_bytes()), 0);
    s.super_scales.resize(static_cast<std::size_t>(s.rows * supers));
    s.table_bits.assign(static_cast<std::size_t>(s.rows * s.table_row_bytes()), 0);
    level_table table[Tables];
    int zero[Tables];
    for (int t = 0; t < Tables; ++t) {
      table[t] = table_at(tables, t);
      zero[t] = zero_code(table[t].data());
    }
    // The last super-block of a row holds fewer than 2 * blocks_per_super blocks.
    block_values values[2 * blocks_per_super], h[2 * blocks_per_super];
    float real[2 * blocks_per_super];
    int chosen[2 * blocks_per_super];
    for (index_t r = 0; r < s.rows; ++r) {
      std::uint8_t* codes = s.codes.data() + r * s.row_bytes();
      std::uint8_t* sub_scales = s.sub_scales.data() + r * s.sub_scale_row_bytes();
      for (index_t k = 0; k < supers; ++k) {
        const detail::block_range range = detail::blocks_of_super_block(k, supers, blocks, blocks_per_super);
        const index_t b0 = range.first, b1 = range.last;
        float largest = 0;
        for (index_t b = b0; b < b1; ++b) {
          load_block(w, importance, r, b, values[b - b0], h[b - b0]);
          const auto [t, fit] = best_table(values[b - b0], h[b - b0], tables);
          chosen[b - b0] = t;
          real[b - b0] = fit.scale;
          largest = std::max(largest, std::abs(fit.scale));
        }
        // |w| <= 65504 bounds every real scale by 65504 / |l_0|: d never overflows.
        const float d = detail::super_scale_covering(largest, sub_scale_max, 1.0f, name, r);
        s.super_scales[static_cast<std::size_t>(r * supers + k)] = half(d);
        for (index_t b = b0; b < b1; ++b) {
          const block_values& x = values[b - b0];
          const int t = chosen[b - b0];
          const int m = detail::nearer_sub_scale(real[b - b0], d, sub_scale_min, sub_scale_max, [&](int code) {
            return evaluate(x, h[b - b0], d * static_cast<float>(code), table[t]).squared_error;
          });
          write_bits(sub_scales, b, ScaleBits, static_cast<unsigned>(m - sub_scale_min));
          if constexpr (Tables > 1) write_bits(s.table_bits.data() + r * s.table_row_bytes(), b, 1, static_cast<unsigned>(t));
          const index_t n = std::min(BlockSize, s.cols - b * BlockSize);
          write_codes(x, n, d * static_cast<float>(m), table[t], zero[t], codes, b * BlockSize);
        }
      }
    }
  }

  static bool levels_valid(const float* levels) {
    for (int k = 1; k < level_count; ++k)
      if (!(levels[k] > levels[k - 1]) || !std::isfinite(levels[k])) return false;
    return levels[level_count - 1] == 1.0f && levels[0] >= -1.0f && zero_code(levels) >= 0;
  }

  static void require_fp16_range(matrix_view w, std::string_view name) {
    for (index_t r = 0; r < w.rows(); ++r) {
      if (w.row(r).cwiseAbs().maxCoeff() <= max_magnitude) continue;
      for (index_t c = 0; c < w.cols(); ++c)
        if (!(std::abs(w(r, c)) <= max_magnitude))
          detail::fail("tensor '", name, "': value ", w(r, c), " at row ", r, ", col ", c,
                       " exceeds the FP16 scale range of the grid codec (|w| <= ", max_magnitude, ")");
    }
  }

  /// Loads block b of row r and its columns' importances (0 past the row's end); returns the
  /// block's length.
  static index_t load_block(matrix_view w, const std::vector<float>& importance, index_t r, index_t b,
                            block_values& values, block_values& h) {
    const index_t first = b * BlockSize, n = std::min(BlockSize, w.cols() - first);
    for (index_t c = 0; c < BlockSize; ++c) {
      values[c] = c < n ? w(r, first + c) : 0.0f;
      h[c] = c < n ? importance[static_cast<std::size_t>(first + c)] : 0.0f;
    }
    return n;
  }

  /// The importances divided by their largest (all 1 when empty or all zero), so that no
  /// weighted error sum overflows; dividing every weight by one factor changes no choice.
  static std::vector<float> normalised_importance(std::span<const float> importance, index_t cols) {
    const float heaviest = importance.empty() ? 0.0f : *std::max_element(importance.begin(), importance.end());
    if (!(heaviest > 0)) return std::vector<float>(static_cast<std::size_t>(cols), 1.0f);
    std::vector<float> h(importance.begin(), importance.end());
    for (float& v : h) v /= heaviest;
    return h;
  }

  static void decode_block(const storage& s, index_t r, index_t b, index_t n, float* out) {
    const float* levels = block_levels(s, r, b);
    const std::uint8_t* row = s.codes.data() + r * s.row_bytes();
    const float scale = s.block_scale(r, b);
    for (index_t c = 0; c < n; ++c)
      out[c] = grid_math::decode(grid_math::unpack_code<Bits>(row, b * BlockSize + c), levels, scale);
  }

  /// The levels in the order of their decoded values under `scale` (reversed for a negative
  /// scale), the decoded values and the midpoints between neighbours.
  struct sorted_grid {
    float level[level_count];
    float value[level_count];
    float midpoint[level_count - 1];
    sorted_grid(const level_table& levels, float scale) {
      for (int j = 0; j < level_count; ++j) {
        level[j] = levels[static_cast<std::size_t>(scale < 0 ? level_count - 1 - j : j)];
        value[j] = level[j] * scale;
      }
      for (int j = 0; j + 1 < level_count; ++j) midpoint[j] = 0.5f * (value[j] + value[j + 1]);
    }
  };

  struct block_fit {
    double squared_error = 0, weighted_sum = 0, level_squares = 0;
  };

  /// Squared error of a block under `scale` with each weight coded by the midpoints (the
  /// value-nearest code but for ties within rounding of a midpoint), and the sums of the
  /// least-squares scale, every term weighted by its importance h (1 leaves it exact).
  /// Branch-free per lane, so the compiler vectorises it.
  static block_fit evaluate(const block_values& w, const block_values& h, float scale, const level_table& levels) {
    const sorted_grid g(levels, scale);
    float error[lanes] = {}, weighted[lanes] = {}, squares[lanes] = {};
    for (index_t i = 0; i < BlockSize; i += lanes)
      for (index_t k = 0; k < lanes; ++k) {
        const float x = w[i + k];
        float q = g.level[0];
        for (int j = 0; j + 1 < level_count; ++j) q = x > g.midpoint[j] ? g.level[j + 1] : q;
        const float e = x - q * scale, hk = h[i + k];
        error[k] += (hk * e) * e;
        weighted[k] += (hk * x) * q;
        squares[k] += (hk * q) * q;
      }
    block_fit fit;
    for (index_t k = 0; k < lanes; ++k) {
      fit.squared_error += error[k];
      fit.weighted_sum += weighted[k];
      fit.level_squares += squares[k];
    }
    return fit;
  }

  struct scale_fit {
    float scale = 0;
    double squared_error = 0;
  };

  /// The table (the first of equals) and scale with the least squared error by the scale rule.
  static std::pair<int, scale_fit> best_table(const block_values& w, const block_values& h, const table_set& tables) {
    std::pair<int, scale_fit> best{0, choose_scale(w, h, table_at(tables, 0))};
    for (int t = 1; t < Tables; ++t) {
      const scale_fit fit = choose_scale(w, h, table_at(tables, t));
      if (fit.squared_error < best.second.squared_error) best = {t, fit};
    }
    return best;
  }

  /// The scale rule of the file comment: candidates rounded to FP16 for one-level scales, as
  /// real numbers (float) for two-level ones, whose quantization follows.
  static scale_fit choose_scale(const block_values& w, const block_values& h, const level_table& levels) {
    float positive = 0, negative = 0;  // m+ and m-
    for (index_t c = 0; c < BlockSize; ++c) {
      positive = std::max(positive, w[c]);
      negative = std::max(negative, -w[c]);
    }
    if (positive == 0 && negative == 0) return {};
    const auto representable = [](float scale) {
      if constexpr (two_level_scales) return scale;
      else return static_cast<float>(half(scale));
    };
    float best = 0.0f;
    double best_error = std::numeric_limits<double>::infinity();
    const auto consider = [&](float scale) {
      if (!std::isfinite(scale)) return block_fit{};
      const block_fit fit = evaluate(w, h, scale, levels);
      if (fit.squared_error < best_error) {
        best_error = fit.squared_error;
        best = scale;
      }
      return fit;
    };
    const auto consider_refined = [&](float scale) {
      const block_fit fit = consider(scale);
      if (fit.level_squares > 0) consider(representable(static_cast<float>(fit.weighted_sum / fit.level_squares)));
    };
    const float shorter_end = -levels.front();  // |l_0| <= l_{L-1} = 1
    for (const float cover : {std::max(positive, negative / shorter_end), -std::max(negative, positive / shorter_end)}) {
      const float covering = two_level_scales ? cover : static_cast<float>(cover_scale(cover));
      consider_refined(covering);
      for (const float fraction : scale_fractions)
        if (fraction != 1.0f) consider_refined(representable(covering * fraction));
    }
    return {best, best_error};
  }

  /// `scale` rounded to FP16 away from zero (FP16 bits are sign-magnitude), capped at the
  /// largest finite FP16 in magnitude.
  static half cover_scale(float scale) {
    const float capped = std::clamp(scale, -max_magnitude, max_magnitude);
    half rounded = half(capped);
    if (std::abs(static_cast<float>(rounded)) < std::abs(capped))
      rounded = Eigen::numext::bit_cast<half>(static_cast<std::uint16_t>(Eigen::numext::bit_cast<std::uint16_t>(rounded) + 1));
    return rounded;
  }

  /// Packs the value-nearest codes of the block's first n weights under `scale`, starting at
  /// column `first` of the row `codes` (whose bits there are zero). A zero scale codes 0.
  static void write_codes(const block_values& w, index_t n, float scale, const level_table& levels,
                          int zero, std::uint8_t* codes, index_t first) {
    if (scale == 0) {
      for (index_t c = 0; c < n; ++c) grid_math::pack_code_into_zeros<Bits>(codes, first + c, static_cast<unsigned>(zero));
      return;
    }
    const sorted_grid g(levels, scale);
    for (index_t c = 0; c < n; ++c) {
      const float x = w[c];
      int j = 0;
      for (int m = 0; m + 1 < level_count; ++m) j += x > g.midpoint[m];
      // The midpoints are rounded: settle on the nearest decoded value in double (exact).
      const auto distance = [&](int k) { return std::abs(static_cast<double>(x) - g.value[k]); };
      while (j > 0 && distance(j - 1) <= distance(j)) --j;
      while (j + 1 < level_count && distance(j + 1) < distance(j)) ++j;
      const int code = scale < 0 ? level_count - 1 - j : j;
      grid_math::pack_code_into_zeros<Bits>(codes, first + c, static_cast<unsigned>(code));
    }
  }
};

template <int Bits, index_t BlockSize, grid_levels Levels, int ScaleBits, index_t SuperBlock, int Tables>
struct codec_traits<grid<Bits, BlockSize, Levels, ScaleBits, SuperBlock, Tables>> {
  static constexpr int bits = Bits;
  static constexpr bool is_linear = false;
  /// The elements sharing one FP16 scale: the block, or the super-block of two-level scales.
  static constexpr index_t block_size = ScaleBits > 0 ? SuperBlock : BlockSize;
  static constexpr index_t bytes_per_block =
      ScaleBits > 0 ? SuperBlock * Bits / 8 + SuperBlock / BlockSize * (ScaleBits + Tables - 1) / 8 + index_t{sizeof(half)}
                    : BlockSize * Bits / 8 + index_t{sizeof(half)};
  static constexpr auto name_text = [] {
    detail::fixed_name<32> n;
    n.append("grid");
    n.append_number(Bits);
    if constexpr (ScaleBits > 0) n.append("-2level");
    n.append("-g");
    n.append_number(BlockSize);
    if constexpr (ScaleBits > 0) {
      n.append("-q");
      n.append_number(ScaleBits);
      n.append("-s");
      n.append_number(SuperBlock);
    }
    if constexpr (Tables > 1) n.append("-t2");
    if constexpr (Levels == grid_levels::per_tensor) n.append("-lut");
    return n;
  }();
  static constexpr std::string_view name = name_text;
};

static_assert(codec<grid<4>>);
static_assert(codec<grid<3, 64, grid_levels::per_tensor>>);
static_assert(codec<grid<4, 16, grid_levels::fixed, 6>>);

}  // namespace qcodec::inline QCODEC_ABI
