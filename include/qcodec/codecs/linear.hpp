#pragma once
/// Linear (uniform) INT8/INT4 codec: per-tensor, per-row or per-group scales, symmetric or
/// asymmetric, FP32 or FP16 scales.
///
/// Layout of `storage`:
///  - codes: rows x row_bytes, unsigned codes; INT4 packs two per byte (core/bit_packing.hpp),
///    a row is padded to whole bytes and a padding nibble holds the code of 0;
///  - scales: one per block, (row, group) -> row * groups_per_row + group; per-tensor: one;
///  - zero_points: asymmetric only, one byte per block, same index as scales.
/// Encoding (the specification): each block's clip range comes from the codec's clip_rule,
/// always contains 0 and is shrunk by the rule's fraction; the scale is range / code count,
/// rounded to the scale type, and codes use that rounded scale (linear_math.hpp).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "qcodec/codecs/array_visiting.hpp"
#include "qcodec/codecs/capabilities.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/codecs/linear_math.hpp"
#include "qcodec/codecs/storage_checks.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/bit_packing.hpp"
#include "qcodec/core/clipping.hpp"
#include "qcodec/core/half.hpp"
#include "qcodec/core/simd.hpp"

namespace qcodec::inline QCODEC_ABI {

/// One scale for the whole tensor.
struct per_tensor {};
/// One scale per row (output channel).
struct per_row {};
/// One scale per `Size` consecutive elements of a row; the last group of a row may be shorter.
template <index_t Size>
struct per_group {
  static_assert(Size == 32 || Size == 64 || Size == 128 || Size == 256,
                "qcodec: group size must be 32, 64, 128 or 256");
  static constexpr index_t size = Size;
};

enum class symmetry { symmetric, asymmetric };

template <int Bits, class Granularity = per_row, scale_storage Scale = float,
          symmetry Symmetry = symmetry::symmetric>
class linear {
  static_assert(Bits == 8 || Bits == 4, "qcodec: linear codes are 8 or 4 bits");

 public:
  static constexpr bool symmetric = Symmetry == symmetry::symmetric;
  static constexpr bool grouped = !std::same_as<Granularity, per_tensor> &&
                                  !std::same_as<Granularity, per_row>;
  /// Columns per scale group, 0 for per-row and per-tensor (instantiates per_group's checks).
  static constexpr index_t fixed_group_size = [] {
    if constexpr (grouped) return Granularity::size;
    else return index_t{0};
  }();
  static_assert(fixed_group_size >= 0);
  static constexpr int max_code = (1 << Bits) - 1;
  static constexpr int min_code = symmetric ? 1 : 0;
  static constexpr int symmetric_offset = 1 << (Bits - 1);
  using scale_type = Scale;
  using granularity = Granularity;

  struct storage : detail::array_visiting<storage> {
    index_t rows = 0, cols = 0;
    std::vector<std::uint8_t> codes;
    std::vector<Scale> scales;
    std::vector<std::uint8_t> zero_points;

    /// Columns sharing one scale within a row.
    index_t group_size() const { return grouped ? fixed_group_size : cols; }
    index_t groups_per_row() const { return (cols + group_size() - 1) / group_size(); }
    index_t row_bytes() const { return packed_bytes<Bits>(cols); }
    /// (row, group) -> index into scales and zero_points.
    index_t block_index(index_t row, index_t group) const {
      return linear_math::block_index(row, group, groups_per_row(),
                                      std::same_as<Granularity, per_tensor>);
    }
    int offset(index_t block) const {
      if constexpr (symmetric) return symmetric_offset;
      else return zero_points[static_cast<std::size_t>(block)];
    }
    /// The integer kernels' view (capabilities.hpp, integer_block_view).
    unsigned code(index_t row, index_t col) const { return unpack_code<Bits>(codes.data() + row * row_bytes(), col); }
    float block_scale(index_t row, index_t group) const {
      return static_cast<float>(scales[static_cast<std::size_t>(block_index(row, group))]);
    }
    int block_offset(index_t row, index_t group) const { return offset(block_index(row, group)); }
    index_t block_count() const {
      return std::same_as<Granularity, per_tensor> ? 1 : rows * groups_per_row();
    }

    template <class Self, class Visitor>
    static void visit_arrays_of(Self& self, Visitor& visit) {
      visit("codes", self.codes);
      visit("scales", self.scales);
      if constexpr (!symmetric) visit("zero_points", self.zero_points);
    }
  };

  /// Clipping rule, applied identically to every block.
  clip_rule clip{};

  encoded_matrix<linear> encode(matrix_view w, std::string_view name = "weight") const {
    detail::require_finite_nonempty(w, name);
    storage s;
    s.rows = w.rows();
    s.cols = w.cols();
    const index_t groups = s.groups_per_row();
    const index_t blocks = s.block_count();
    s.codes.assign(static_cast<std::size_t>(s.rows * s.row_bytes()), 0);
    s.scales.resize(static_cast<std::size_t>(blocks));
    if constexpr (!symmetric) s.zero_points.resize(static_cast<std::size_t>(blocks));

    const float limit = detail::tensor_clip_limit(w, clip, name);
    // The tensor's largest (clipped) magnitude, which the FP16 scale rule measures against.
    const float largest = std::same_as<Scale, half> ? std::min(w.cwiseAbs().maxCoeff(), limit) : 0.0f;
    const auto row_span = [&](index_t r, index_t first, index_t count) {
      return std::span<const float>(w.row(r).data() + first, static_cast<std::size_t>(count));
    };
    if constexpr (std::same_as<Granularity, per_tensor>) {
      set_block(s, 0, choose_params([&](auto&& visit) {
        for (index_t r = 0; r < s.rows; ++r) visit(row_span(r, 0, s.cols));
      }, limit, largest, name, 0));
    }
    for (index_t r = 0; r < s.rows; ++r) {
      std::uint8_t* codes = s.codes.data() + r * s.row_bytes();
      for (index_t g = 0; g < groups; ++g) {
        const index_t first = g * s.group_size();
        const auto values = row_span(r, first, std::min(s.group_size(), s.cols - first));
        const index_t block = s.block_index(r, g);
        if constexpr (!std::same_as<Granularity, per_tensor>)
          set_block(s, block, choose_params([&](auto&& visit) { visit(values); }, limit, largest, name, r));
        const params p = block_params(s, block);
        for (std::size_t i = 0; i < values.size(); ++i)
          pack_code<Bits>(codes, first + static_cast<index_t>(i), quantize(values[i], p));
      }
      if (Bits == 4 && s.cols % 2 == 1)
        pack_code<Bits>(codes, s.cols, static_cast<unsigned>(s.offset(s.block_index(r, groups - 1))));
    }
    return encoded_matrix<linear>(std::move(s));
  }

  /// Decodes rows [first, last) with the kernel of the active SIMD target
  /// (codecs/linear_kernels-inl.hpp); bit-exact with decode_rows_ref.
  static void decode_rows(const storage& s, index_t first, index_t last, float* out) {
    simd::dispatch([&](auto target) { linear_decode_rows<linear>(target, s, first, last, out); });
  }

  /// The specification: one element at a time, each with its own block's scale and offset.
  static void decode_rows_ref(const storage& s, index_t first, index_t last, float* out) {
    for (index_t r = first; r < last; ++r, out += s.cols)
      for (index_t c = 0; c < s.cols; ++c) {
        const index_t block = s.block_index(r, c / s.group_size());
        out[c] = linear_math::dequantize(unpack_code<Bits>(s.codes.data() + r * s.row_bytes(), c), s.offset(block),
                                         static_cast<float>(s.scales[static_cast<std::size_t>(block)]));
      }
  }

  /// out[b] = sum_c Ŵ(r, c) x[b][c] for b < NB, decoding row r in registers with the kernel
  /// of `target` (linear_dot_row); with `cached`, reads the decoded row from it instead.
  template <int NB, class Target>
  static void dot_row(Target target, const storage& s, index_t r, const float* const* x, float* out,
                      const float* cached = nullptr) {
    linear_dot_row<linear, NB>(target, s, r, x, out, cached);
  }

  static void validate(const storage& s, std::string_view name) {
    detail::require_shape(name, s.rows, s.cols);
    const auto expect = [&](std::string_view array, std::size_t size, index_t expected) {
      detail::require_array_size(name, array, size, static_cast<std::size_t>(expected), s.rows, s.cols);
    };
    expect("codes", s.codes.size(), s.rows * s.row_bytes());
    expect("scales", s.scales.size(), s.block_count());
    expect("zero_points", s.zero_points.size(), symmetric ? 0 : s.block_count());
    detail::require_scales(name, s.scales);
    for (std::size_t b = 0; b < s.zero_points.size(); ++b)
      if (s.zero_points[b] > max_code)
        detail::fail("tensor '", name, "': zero point ", b, " is ", int{s.zero_points[b]},
                     " (must be <= ", max_code, ")");
    if constexpr (symmetric) require_symmetric_codes(s, name);
    // Every code must decode to a finite value: (code - offset) * scale is largest in
    // magnitude at the end of the code range farther from the offset.
    for (index_t b = 0; b < s.block_count(); ++b) {
      const params p = block_params(s, b);
      if (!std::isfinite(static_cast<float>(max_reach(p.offset)) * p.scale))
        detail::fail("tensor '", name, "': scale ", b, " is ", p.scale, ": (code - ", p.offset,
                     ") * scale overflows to Inf");
    }
  }

  static std::size_t byte_size(const storage& s) {
    return s.codes.size() + s.scales.size() * sizeof(Scale) + s.zero_points.size();
  }

 private:
  struct params {
    float scale = 0;
    int offset = 0;
  };

  /// Throws unless every stored code (padding nibbles, which hold the offset, included) is at
  /// least min_code = 1: code 0 is outside the symmetric range and would decode to
  /// -offset * scale, one step past the reach the scales are checked for.
  static void require_symmetric_codes(const storage& s, std::string_view name) {
    const auto zero_code = [](std::uint8_t byte) -> bool {
      return Bits == 8 ? byte == 0 : ((byte & 0x0F) == 0) | ((byte & 0xF0) == 0);
    };
    // One pass without early exit (vectorized); the position is searched only on failure.
    std::uint8_t any = 0;
    for (std::uint8_t byte : s.codes) any |= static_cast<std::uint8_t>(zero_code(byte));
    if (!any) return;
    const auto i = static_cast<index_t>(std::find_if(s.codes.begin(), s.codes.end(), zero_code) - s.codes.begin());
    const index_t byte = i % s.row_bytes();
    const index_t column = Bits == 8 ? byte : 2 * byte + ((s.codes[static_cast<std::size_t>(i)] & 0x0F) != 0);
    detail::fail("tensor '", name, "': row ", i / s.row_bytes(), ", column ", column,
                 ": code 0 is outside the symmetric code range 1 .. ", max_code);
  }

  /// Largest |code - offset| over the code range: decoded magnitudes are at most this * scale.
  static int max_reach(int offset) { return std::max(max_code - offset, offset - min_code); }

  static params block_params(const storage& s, index_t block) {
    return {static_cast<float>(s.scales[static_cast<std::size_t>(block)]), s.offset(block)};
  }

  static void set_block(storage& s, index_t block, params p) {
    s.scales[static_cast<std::size_t>(block)] = static_cast<Scale>(p.scale);
    if constexpr (!symmetric) s.zero_points[static_cast<std::size_t>(block)] = static_cast<std::uint8_t>(p.offset);
  }

  static unsigned quantize(float w, params p) {
    return linear_math::quantize(w, p.scale, p.offset, min_code, max_code);
  }

  /// The exact scale of the clip range [lo, hi].
  static double range_scale(double lo, double hi) {
    return symmetric ? hi / (symmetric_offset - 1) : (hi - lo) / max_code;
  }

  /// FP16 scales below the normal range (2^-14) lose precision, down to a flush to zero.
  /// Rounding the scale s to s' moves a block's decoded values by at most reach * |s' - s|
  /// (reach = the largest |code - offset|) beyond the quantization error of s itself. The
  /// rule: a subnormal or zero FP16 scale is kept while that move stays within half a step
  /// (s / 2, the rounding error the codes already carry) or within 2^-11 M, M the tensor's
  /// largest magnitude (a block negligible within its tensor, e.g. a row of FP32 denormals;
  /// 2^-11 M is what a normal FP16 scale's rounding costs the tensor's largest block), and
  /// otherwise the tensor is refused (FP32 scales keep it).
  static bool fp16_scale_loses_precision(double scale, float rounded, float largest) {
    if constexpr (!std::same_as<Scale, half>) return false;
    const int reach = symmetric ? symmetric_offset - 1 : max_code;
    const double move = reach * std::abs(static_cast<double>(rounded) - scale);
    return scale > 0 && rounded < 0x1p-14f && move > scale / 2 &&
           move > 0x1p-11 * static_cast<double>(largest);
  }

  /// Scale and offset for the clip range [lo, hi] (lo <= 0 <= hi), the scale rounded to the
  /// scale type and kept small enough that every code decodes to a finite float.
  static params params_for_range(double lo, double hi, float largest, std::string_view name, index_t row) {
    params p;
    double scale = range_scale(lo, hi);
    if (scale > max_finite<Scale>())
      detail::fail("tensor '", name, "': row ", row, ": scale ", scale,
                   " overflows the FP16 scale type (use FP32 scales)");
    p.scale = static_cast<float>(static_cast<Scale>(static_cast<float>(scale)));
    if (fp16_scale_loses_precision(scale, p.scale, largest))
      detail::fail("tensor '", name, "': row ", row, ": scale ", scale,
                   " underflows the FP16 scale type (stored as ", p.scale,
                   ", below the normal range 2^-14, for a block not negligible in the tensor; "
                   "use FP32 scales)");
    if constexpr (symmetric) {
      p.offset = symmetric_offset;
    } else {
      p.offset = p.scale > 0 ? static_cast<int>(std::clamp(std::rint(-lo / p.scale), 0.0,
                                                           static_cast<double>(max_code)))
                             : 0;
    }
    // The largest decoded magnitude is reach * scale; cap the scale at FLT_MAX / reach. The
    // division and the product each round once (<= 2^-24 relative), so the cap overshoots by
    // at most a couple of ULPs: a step or two down makes reach * scale finite.
    const float reach = static_cast<float>(max_reach(p.offset));
    if (!std::isfinite(reach * p.scale)) {
      p.scale = std::numeric_limits<float>::max() / reach;
      while (!std::isfinite(reach * p.scale)) p.scale = std::nextafter(p.scale, 0.0f);
    }
    return p;
  }

  /// Sum of squared reconstruction errors of `values` under `p`: the same per-element values
  /// as dequantize(quantize(w)), as one vectorised expression (only the summation order may
  /// differ, and it serves only to rank clip candidates).
  static float squared_error(std::span<const float> values, params p) {
    // A whole group as a fixed-size array: unrolled, no loop bookkeeping per candidate.
    if constexpr (grouped)
      if (values.size() == static_cast<std::size_t>(fixed_group_size))
        return squared_error(Eigen::Map<const Eigen::Array<float, fixed_group_size, 1>>(values.data()), p);
    return squared_error(Eigen::Map<const Eigen::ArrayXf>(values.data(), static_cast<index_t>(values.size())), p);
  }
  template <class Values>
  static float squared_error(const Values& w, params p) {
    if (!(p.scale > 0)) return w.square().sum();
    const float offset = static_cast<float>(p.offset);
    const auto codes = ((w / p.scale).rint() + offset)
                           .max(static_cast<float>(min_code))
                           .min(static_cast<float>(max_code));
    return (w - (codes - offset) * p.scale).square().sum();
  }

  /// Applies the clip rule to one block, given as a callable that visits the block's
  /// contiguous spans: the rule's magnitude limit first, then the rule's candidate fractions.
  template <class ForEachSpan>
  params choose_params(ForEachSpan for_each_span, float limit, float largest, std::string_view name,
                       index_t row) const {
    float min_value = 0, max_value = 0;
    for_each_span([&](std::span<const float> values) {
      const Eigen::Map<const Eigen::ArrayXf> w(values.data(), static_cast<index_t>(values.size()));
      min_value = std::min(min_value, w.minCoeff());
      max_value = std::max(max_value, w.maxCoeff());
    });
    double lo = std::max<double>(min_value, -limit), hi = std::min<double>(max_value, limit);
    if constexpr (symmetric) {
      hi = std::max(-lo, hi);
      lo = 0;
    }
    const auto fractions = detail::clip_fractions(clip);
    params best = params_for_range(lo, hi, largest, name, row);
    if (fractions.size() == 1 || hi - lo == 0) return best;
    double best_err = std::numeric_limits<double>::infinity();
    for (float fraction : fractions) {
      // A clip whose FP16 scale would lose precision is no candidate (the whole range passed).
      if (fp16_scale_loses_precision(range_scale(lo * fraction, hi * fraction),
                                     static_cast<float>(static_cast<Scale>(static_cast<float>(
                                         range_scale(lo * fraction, hi * fraction)))),
                                     largest))
        continue;
      const params p = params_for_range(lo * fraction, hi * fraction, largest, name, row);
      double err = 0;
      for_each_span([&](std::span<const float> values) { err += squared_error(values, p); });
      if (err < best_err) {
        best_err = err;
        best = p;
      }
    }
    return best;
  }
};

template <int Bits, class Granularity, scale_storage Scale, symmetry Symmetry>
struct codec_traits<linear<Bits, Granularity, Scale, Symmetry>> {
  using codec_type = linear<Bits, Granularity, Scale, Symmetry>;
  static constexpr int bits = Bits;
  static constexpr bool is_linear = true;
  static constexpr index_t block_size = codec_type::fixed_group_size;
  static constexpr index_t bytes_per_block =
      block_size == 0 ? 0
                      : packed_bytes<Bits>(block_size) + index_t{sizeof(Scale)} +
                            (codec_type::symmetric ? 0 : 1);
  static constexpr auto name_text = [] {
    detail::fixed_name<24> n;
    n.append("int");
    n.append_number(Bits);
    if constexpr (std::same_as<Granularity, per_tensor>) n.append("-tensor");
    if constexpr (codec_type::grouped) {
      n.append("-g");
      n.append_number(Granularity::size);
    }
    if constexpr (!codec_type::symmetric) n.append("-asym");
    if constexpr (std::same_as<Scale, half>) n.append("-f16");
    return n;
  }();
  static constexpr std::string_view name = name_text;
  /// Rows encode independently but for one scale per tensor; no array is shared.
  static constexpr bool row_wise = !std::same_as<Granularity, per_tensor>;
  static constexpr std::array<std::string_view, 0> shared_arrays{};
};

static_assert(reference_codec<linear<8>> && fused_dot_codec<linear<8>> && integer_codec<linear<8>> &&
              row_codec<linear<8>>);
static_assert(integer_codec<linear<4, per_group<128>, half, symmetry::asymmetric>>);
static_assert(!row_codec<linear<8, per_tensor>>);

}  // namespace qcodec::inline QCODEC_ABI

#define QCODEC_KERNELS "qcodec/codecs/linear_kernels-inl.hpp"
#include "qcodec/core/simd/foreach_target.hpp"
