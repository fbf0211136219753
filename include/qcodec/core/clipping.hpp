#pragma once
/// Clipping rules shared by all codecs. A rule is applied identically to every scale block of
/// a tensor (one rule per tensor, never a per-row mix of statistics), and a clip range always
/// contains zero, so clipping shrinks magnitudes but never flips a sign.

#include <algorithm>
#include <array>
#include <cmath>
#include <span>
#include <vector>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/matrix.hpp"

namespace qcodec::inline QCODEC_ABI {

enum class clip_method {
  /// Clips at each block's largest magnitude: nothing is clipped, the step is widest.
  absmax,
  /// Clips every block at one threshold, the tensor-wide quantile of |w|: trades the few tails
  /// above it (saturated, sign kept) for a finer step below it.
  quantile,
  /// Tries clips from the block's absmax down to 17/32 of it and keeps the one with the least
  /// squared reconstruction error, the quantity fidelity reports; it includes absmax, so it
  /// never does worse than absmax.
  mse,
};

/// A clipping rule. The default is `mse`: it minimises the error the caller measures.
struct clip_rule {
  clip_method method = clip_method::mse;
  /// Quantile of |w| over the whole tensor, for `clip_method::quantile`, in (0, 1].
  double quantile = 0.999;

  static clip_rule absmax() { return {clip_method::absmax}; }
  static clip_rule mse() { return {clip_method::mse}; }
  static clip_rule at_quantile(double q) { return {clip_method::quantile, q}; }
};

namespace detail {

/// Fractions of a block's range tried by the mse rule: 1, 31/32, ..., 17/32. The step 1/32 is
/// finer than the widest quantization step tried (INT4: 1/7 of the range), and below 1/2 the
/// clipped tails cost more than any step refinement gains for the weights we measured.
inline constexpr auto mse_clip_fractions = [] {
  std::array<float, 16> fractions{};
  for (int k = 0; k < 16; ++k) fractions[k] = 1.0f - static_cast<float>(k) / 32.0f;
  return fractions;
}();

/// Fractions of the range the rule tries (after the quantile limit, for `quantile`).
inline std::span<const float> clip_fractions(const clip_rule& rule) {
  static constexpr std::array<float, 1> whole{1.0f};
  if (rule.method == clip_method::mse) return mse_clip_fractions;
  return whole;
}

/// Magnitude limit the rule puts on every block of `w`: the tensor-wide quantile of |w| for
/// `quantile` (nearest-rank), +inf otherwise.
inline float tensor_clip_limit(matrix_view w, const clip_rule& rule, std::string_view name) {
  if (rule.method != clip_method::quantile) return std::numeric_limits<float>::infinity();
  if (!(rule.quantile > 0 && rule.quantile <= 1))
    fail("tensor '", name, "': clip quantile ", rule.quantile, " is not in (0, 1]");
  std::vector<float> magnitudes;
  magnitudes.reserve(static_cast<std::size_t>(w.size()));
  for (index_t r = 0; r < w.rows(); ++r)
    for (index_t c = 0; c < w.cols(); ++c) magnitudes.push_back(std::abs(w(r, c)));
  const auto rank = static_cast<std::size_t>(
      std::ceil(rule.quantile * static_cast<double>(magnitudes.size())) - 1);
  const auto nth = magnitudes.begin() + static_cast<std::ptrdiff_t>(rank);
  std::nth_element(magnitudes.begin(), nth, magnitudes.end());
  return *nth;
}

}  // namespace detail
}  // namespace qcodec::inline QCODEC_ABI
