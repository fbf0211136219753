#pragma once
/// Mixed-precision outlier split: W = B + O, a base codec for all weights plus a sparse FP16
/// ortho stream holding the largest residuals.
///
/// Encoding (the specification), with n = rows * cols and m = floor(outlier_fraction * n):
///  - the base encodes W itself, every weight, with its own options (its clip rule): B alone
///    (alpha = 0 in the op) is exactly the base codec alone on W;
///  - rule: the ortho stream stores the residuals r = W - B of largest magnitude, at most m of
///    them: those with |r| > t, t the (m+1)-th largest |r| (ties at t and zero residuals are
///    never stored, so a matrix the base codes exactly, or with equal residual magnitudes,
///    gives an empty stream), in FP16 times one power-of-two scale (ortho_stream.hpp).
/// decode_rows is B + O.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "qcodec/codecs/array_visiting.hpp"
#include "qcodec/codecs/capabilities.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/codecs/linear.hpp"
#include "qcodec/codecs/ortho_stream.hpp"
#include "qcodec/config.hpp"

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
  /// Budget of the ortho stream: at most this fraction of the weights get their residual
  /// stored (32 bits each plus 32 per row). Default 1/256 (+0.13 bpw): on heavy-tailed weights
  /// with outlier columns it buys the most dB per added bit among the budgets measured and
  /// beyond it the dB per bit falls (sweep in bench/RESULTS.md, "Outlier split budget").
  double outlier_fraction = 1.0 / 256;

  encoded_matrix<outlier_split> encode(matrix_view w, std::string_view name = "weight") const {
    detail::require_finite_nonempty(w, name);
    if (!(outlier_fraction >= 0 && outlier_fraction < 1))
      detail::fail("tensor '", name, "': outlier fraction ", outlier_fraction, " is not in [0, 1)");
    storage s;
    s.rows = w.rows();
    s.cols = w.cols();
    s.base = base.encode(w, name).storage();
    ortho_stream& o = s.ortho;
    o.rows = s.rows;
    o.cols = s.cols;
    const auto n = static_cast<std::size_t>(w.size());
    const auto budget = static_cast<std::size_t>(std::floor(outlier_fraction * static_cast<double>(n)));
    if (budget == 0) return encoded_matrix<outlier_split>(std::move(s));
    if (budget > std::numeric_limits<std::uint32_t>::max())
      detail::fail("tensor '", name, "': ", budget, " outliers exceed the 2^32 index range");

    // Pass 1: |W - B| of every weight; t is the (budget + 1)-th largest (budget < n as p < 1).
    std::vector<float> decoded(static_cast<std::size_t>(s.cols));
    std::vector<float> magnitudes(n);
    for (index_t r = 0; r < s.rows; ++r) {
      Base::decode_rows(s.base, r, r + 1, decoded.data());
      for (index_t c = 0; c < s.cols; ++c)
        magnitudes[static_cast<std::size_t>(r * s.cols + c)] = std::abs(w(r, c) - decoded[static_cast<std::size_t>(c)]);
    }
    const auto nth = magnitudes.begin() + static_cast<std::ptrdiff_t>(budget);
    std::nth_element(magnitudes.begin(), nth, magnitudes.end(), std::greater<float>());
    const float t = *nth;
    magnitudes = {};

    // Pass 2: the residuals above t, row by row.
    const bool narrow = ortho_stream::narrow_columns(s.cols);
    std::vector<float> residuals;
    o.row_offsets.push_back(0);
    for (index_t r = 0; r < s.rows; ++r) {
      Base::decode_rows(s.base, r, r + 1, decoded.data());
      for (index_t c = 0; c < s.cols; ++c) {
        const float residual = w(r, c) - decoded[static_cast<std::size_t>(c)];
        if (!(std::abs(residual) > t)) continue;
        residuals.push_back(residual);
        if (narrow) o.columns16.push_back(static_cast<std::uint16_t>(c));
        else o.columns32.push_back(static_cast<std::uint32_t>(c));
      }
      o.row_offsets.push_back(static_cast<std::uint32_t>(residuals.size()));
    }
    if (residuals.empty()) {
      o.row_offsets.clear();
      return encoded_matrix<outlier_split>(std::move(s));
    }
    float max_magnitude = 0;
    for (float v : residuals) max_magnitude = std::max(max_magnitude, std::abs(v));
    const float scale = detail::ortho_scale_for(max_magnitude);
    o.scale.assign(1, scale);
    o.values.reserve(residuals.size());
    for (float v : residuals) o.values.push_back(detail::ortho_value(v, scale));
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

static_assert(wrapping_codec<outlier_split<linear<4, per_group<128>>>>);
static_assert(codec<outlier_split<linear<8, per_row, half, symmetry::asymmetric>>>);

}  // namespace qcodec::inline QCODEC_ABI
