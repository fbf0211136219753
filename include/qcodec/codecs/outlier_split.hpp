#pragma once
/// Mixed-precision outlier split: W = B + O, a base codec for the bulk plus a sparse FP16
/// ortho stream at the outlier positions.
///
/// Encoding (the specification), with n = rows * cols and p = outlier_fraction:
///  - t is the tensor-wide nearest-rank quantile 1 - p of |w|; the outliers are the weights with
///    |w| > t (at most p * n of them; none when p * n < 1 or when no weight exceeds t);
///  - the base encodes W clamped to [-t, t] (sign kept), so its range is set by the bulk, with
///    its own clip rule applied to every block: one rule for the whole tensor;
///  - the ortho stream stores, at the outlier positions only, the residual W - B (B the
///    decoded base), in FP16 times one power-of-two scale (ortho_stream.hpp).
/// decode_rows is B + O. With alpha = 0 (the op) the base alone is W clipped at t and then
/// encoded by the base codec: it meets the base codec's own bounds.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "qcodec/codecs/array_visiting.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/codecs/linear.hpp"
#include "qcodec/codecs/ortho_stream.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/clipping.hpp"

namespace qcodec::inline QCODEC_ABI {

template <codec Base>
class outlier_split {
 public:
  using base_codec = Base;

  struct storage : detail::array_visiting<storage> {
    index_t rows = 0, cols = 0;
    typename Base::storage base;
    ortho_stream ortho;

    template <class Self, class Visitor>
    static void visit_arrays_of(Self& self, Visitor& visit) {
      self.base.visit_arrays([&](std::string_view array, auto& values) {
        const std::string full = "base." + std::string(array);
        visit(std::string_view(full), values);
      });
      self.ortho.visit_arrays(visit);
    }
  };

  /// Encode options of the base codec (e.g. its clip rule).
  Base base{};
  /// Fraction of weights at most stored as outliers (32 bits each). 1/128: on heavy-tailed
  /// (Student-t3) INT4-g128 weights, doubling p up to 1/128 cuts rel_err by more per added bit
  /// than halving the group size does, and beyond it by less (sweep in bench/RESULTS.md).
  double outlier_fraction = 1.0 / 128;

  encoded_matrix<outlier_split> encode(matrix_view w, std::string_view name = "weight") const {
    detail::require_finite_nonempty(w, name);
    if (!(outlier_fraction >= 0 && outlier_fraction < 1))
      detail::fail("tensor '", name, "': outlier fraction ", outlier_fraction, " is not in [0, 1)");
    const float t = detail::tensor_clip_limit(w, clip_rule::at_quantile(1 - outlier_fraction), name);
    const row_matrix clamped = w.cwiseMax(-t).cwiseMin(t);

    storage s;
    s.rows = w.rows();
    s.cols = w.cols();
    encoded_matrix<Base> encoded_base = base.encode(clamped, name);
    s.base = encoded_base.storage();

    index_t count = 0;
    for (index_t r = 0; r < s.rows; ++r)
      count += (w.row(r).array().abs() > t).count();
    if (count > static_cast<index_t>(std::numeric_limits<std::uint32_t>::max()))
      detail::fail("tensor '", name, "': ", count, " outliers exceed the 2^32 index range");
    ortho_stream& o = s.ortho;
    o.rows = s.rows;
    o.cols = s.cols;
    if (count > 0) {
      const bool narrow = ortho_stream::narrow_columns(s.cols);
      std::vector<float> residuals;
      residuals.reserve(static_cast<std::size_t>(count));
      o.row_offsets.reserve(static_cast<std::size_t>(s.rows) + 1);
      if (narrow) o.columns16.reserve(static_cast<std::size_t>(count));
      else o.columns32.reserve(static_cast<std::size_t>(count));
      std::vector<float> decoded(static_cast<std::size_t>(s.cols));
      o.row_offsets.push_back(0);
      for (index_t r = 0; r < s.rows; ++r) {
        Base::decode_rows(s.base, r, r + 1, decoded.data());
        for (index_t c = 0; c < s.cols; ++c) {
          if (!(std::abs(w(r, c)) > t)) continue;
          residuals.push_back(w(r, c) - decoded[static_cast<std::size_t>(c)]);
          if (narrow) o.columns16.push_back(static_cast<std::uint16_t>(c));
          else o.columns32.push_back(static_cast<std::uint32_t>(c));
        }
        o.row_offsets.push_back(static_cast<std::uint32_t>(residuals.size()));
      }
      float max_magnitude = 0;
      for (float v : residuals) max_magnitude = std::max(max_magnitude, std::abs(v));
      const float scale = detail::ortho_scale_for(max_magnitude);
      o.scale.assign(1, scale);
      o.values.reserve(residuals.size());
      for (float v : residuals) o.values.push_back(detail::ortho_value(v, scale));
    }
    return encoded_matrix<outlier_split>(std::move(s));
  }

  static void decode_rows(const storage& s, index_t first, index_t last, float* out) {
    Base::decode_rows(s.base, first, last, out);
    s.ortho.add_rows(first, last, out);
  }

  static void validate(const storage& s, std::string_view name) {
    if (s.base.rows != s.rows || s.base.cols != s.cols || s.ortho.rows != s.rows ||
        s.ortho.cols != s.cols)
      detail::fail("tensor '", name, "': base, ortho and split shapes differ");
    Base::validate(s.base, name);
    s.ortho.validate(name);
  }

  static std::size_t byte_size(const storage& s) {
    return Base::byte_size(s.base) + s.ortho.byte_size();
  }
};

/// True for outlier_split codecs, whose op carries an ortho stream.
template <class C>
inline constexpr bool is_outlier_split = false;
template <class Base>
inline constexpr bool is_outlier_split<outlier_split<Base>> = true;

// is_linear is false: B + O is not one integer grid (the ortho values are FP16), so the sum
// cannot feed integer-domain arithmetic; the base alone keeps its own traits.
template <class Base>
struct codec_traits<outlier_split<Base>> {
  static constexpr int bits = codec_traits<Base>::bits;
  static constexpr bool is_linear = false;
  /// Block layout of the base stream; the ortho stream has no blocks (counted in byte_size).
  static constexpr index_t block_size = codec_traits<Base>::block_size;
  static constexpr index_t bytes_per_block = codec_traits<Base>::bytes_per_block;
  static constexpr auto name_text = [] {
    detail::fixed_name<48> n;
    n.append("outliers+");
    n.append(codec_traits<Base>::name);
    return n;
  }();
  static constexpr std::string_view name = name_text;
};

static_assert(codec<outlier_split<linear<4, per_group<128>>>>);
static_assert(codec<outlier_split<linear<8, per_row, half, symmetry::asymmetric>>>);

}  // namespace qcodec::inline QCODEC_ABI
