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
///    give the least squared error sum (x - q s)^2. Its arithmetic is fixed (each x - q s
///    rounded once by FMA, the sums in 16 lanes reduced by halves: grid_encoder-inl.hpp), so
///    every SIMD target and compiler flag encodes to the same bytes. With column importances
///    h (encode's optional input) every squared error and least-squares sum here and below is
///    weighted by h. The covering candidates bound it: the block's RMS error is at most
///    (largest level gap) * min(|s+|, |s-|) / 2, up to rounding;
///  - two-level scales: each block's real scale is chosen by the same rule without rounding to
///    FP16, the super-block scale d maps the largest of their magnitudes to 2^(ScaleBits-1) - 1
///    (rounded up to FP16) or is, where that gives the super-block less squared error, the one
///    of 10 candidates 1-10% below it whose rounded sub-scales miss the real scales by the
///    least sum of squares, and each block keeps the floor or ceiling of its real scale / d,
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
#include <cstring>
#include <limits>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "qcodec/config.hpp"
#include "qcodec/codecs/array_visiting.hpp"
#include "qcodec/codecs/capabilities.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/codecs/column_importance.hpp"
#include "qcodec/codecs/grid_math.hpp"
#include "qcodec/codecs/storage_checks.hpp"
#include "qcodec/codecs/two_level_scales.hpp"
#include "qcodec/core/bit_stream.hpp"
#include "qcodec/core/half.hpp"
#include "qcodec/core/simd.hpp"

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
    -0.815921783f, -0.634081364f, -0.492210656f, -0.374919623f, -0.27294609f, -0.17890577f,
    -0.0886723474f, 0.0f, 0.0851095766f, 0.173675328f, 0.266281128f, 0.365513772f, 0.472783506f,
    0.599332511f, 0.764054596f, 1.0f};
template <>
inline constexpr std::array<float, 8> grid_fixed_levels<3> = {
    -0.726659536f, -0.430151433f, -0.203820437f, 0.0f, 0.190011233f, 0.396977127f, 0.6515885f, 1.0f};
template <>
inline constexpr std::array<float, 32> grid_fixed_levels<5> = {
    -0.872735918f, -0.76601851f, -0.678799987f, -0.603357255f, -0.540455699f, -0.486079603f,
    -0.436144233f, -0.386640608f, -0.338649541f, -0.288790137f, -0.239749074f, -0.191169009f,
    -0.141939849f, -0.0935070068f, -0.0453425944f, 0.0f, 0.0503511243f, 0.0979559496f, 0.145966113f,
    0.193635568f, 0.241252959f, 0.288862765f, 0.33588624f, 0.383324504f, 0.433499902f, 0.48299697f,
    0.535286009f, 0.590759993f, 0.653763473f, 0.727060139f, 0.830974102f, 1.0f};
template <>
inline constexpr std::array<float, 64> grid_fixed_levels<6> = {
    -0.955793858f, -0.909822762f, -0.86669749f, -0.827786863f, -0.794074655f, -0.760727763f,
    -0.728619158f, -0.699518204f, -0.669618487f, -0.640104473f, -0.611545086f, -0.583080053f,
    -0.553527713f, -0.523847103f, -0.494062394f, -0.462590933f, -0.433352441f, -0.403998524f,
    -0.374869943f, -0.34633711f, -0.316384166f, -0.288296551f, -0.259451717f, -0.230695158f,
    -0.200718582f, -0.170948893f, -0.139052734f, -0.107954465f, -0.0786952078f, -0.050468374f,
    -0.0237863176f, 0.0f, 0.03117612f, 0.0626359656f, 0.0911505073f, 0.119554557f, 0.147691607f,
    0.174057454f, 0.202523172f, 0.23176828f, 0.260718912f, 0.288534075f, 0.315834552f, 0.344711244f,
    0.373617887f, 0.403066605f, 0.433320373f, 0.462798655f, 0.491079479f, 0.519391179f,
    0.548158944f, 0.577543139f, 0.604433298f, 0.631826162f, 0.659046769f, 0.6887936f, 0.718020856f,
    0.750017226f, 0.781414628f, 0.812837303f, 0.846906722f, 0.888551474f, 0.9403705f, 1.0f};

/// The compiled-in pairs of level tables of the two-table variants (their design: grid.hpp's
/// file comment), the two tables one after the other.
template <int Bits>
inline constexpr std::array<float, 2 * (1 << Bits)> grid_fixed_pair{};
template <>
inline constexpr std::array<float, 32> grid_fixed_pair<4> = {
    -0.830593765f, -0.649013817f, -0.506375194f, -0.388401031f, -0.284645796f, -0.188539028f,
    -0.0922117457f, 0.0f, 0.0910592228f, 0.183005303f, 0.277249217f, 0.383332491f, 0.496550351f,
    0.621357083f, 0.779520631f, 1.0f, -0.729209244f, -0.564795911f, -0.430208594f, -0.325835139f,
    -0.229801849f, -0.143980667f, -0.0701355934f, 0.0f, 0.0667184144f, 0.140850469f, 0.222389922f,
    0.307476342f, 0.404369324f, 0.521895468f, 0.697759867f, 1.0f};
template <>
inline constexpr std::array<float, 16> grid_fixed_pair<3> = {
    -0.873155475f, -0.513066053f, -0.244836345f, 0.0f, 0.185302839f, 0.396815985f, 0.655822575f,
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
    table_set tables = start;
    for (int iteration = 0; iteration < iterations; ++iteration) {
      std::array<double, Tables * level_count> weighted_sum{}, scale_squares{};
      simd::dispatch([&](auto target) {
        grid_design_sums<grid>(target, w, importance, tables, sampled_rows, weighted_sum.data(), scale_squares.data());
      });
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

  /// `importance`: one weight per column, normalised (normalised_importance).
  static encoded_matrix<grid> encode_rows(matrix_view w, const std::vector<float>& importance, const table_set& tables,
                                          std::string_view name) {
    storage s;
    s.rows = w.rows();
    s.cols = w.cols();
    s.codes.assign(static_cast<std::size_t>(s.rows * s.row_bytes()), 0);
    if constexpr (stores_levels) s.levels.assign(tables.begin(), tables.end());
    if constexpr (two_level_scales) {
      s.sub_scales.assign(static_cast<std::size_t>(s.rows * s.sub_scale_row_bytes()), 0);
      s.super_scales.resize(static_cast<std::size_t>(s.rows * s.super_blocks_per_row()));
      s.table_bits.assign(static_cast<std::size_t>(s.rows * s.table_row_bytes()), 0);
    } else {
      s.scales.resize(static_cast<std::size_t>(s.rows * s.blocks_per_row()));
    }
    simd::dispatch([&](auto target) { grid_encode_rows<grid>(target, w, importance, tables, name, s); });
    return encoded_matrix<grid>(std::move(s));
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

static_assert(reference_codec<grid<4>> && fused_dot_codec<grid<4>> && !integer_codec<grid<4>>);
static_assert(codec<grid<3, 64, grid_levels::per_tensor>>);
static_assert(codec<grid<4, 16, grid_levels::fixed, 6>>);

}  // namespace qcodec::inline QCODEC_ABI

#define QCODEC_KERNELS "qcodec/codecs/grid_encoder-inl.hpp"
#include "qcodec/core/simd/foreach_target.hpp"
