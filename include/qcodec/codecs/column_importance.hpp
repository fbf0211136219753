#pragma once
/// Importance weights of the input columns (optional input of the encoders that take them,
/// two_level.hpp and grid.hpp): one finite weight >= 0 per column, e.g. the mean squared
/// activation of that input channel; the encoder then minimises the squared error of column c
/// weighted by weight c. Empty means unweighted.

#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/index.hpp"
#include "qcodec/core/matrix.hpp"

namespace qcodec::inline QCODEC_ABI {

/// A codec whose encode takes column importances: encode(w, name, importance).
template <class C>
concept takes_column_importance = requires(const C& codec, matrix_view w, std::string_view name,
                                           std::span<const float> importance) { codec.encode(w, name, importance); };

}  // namespace qcodec::inline QCODEC_ABI

namespace qcodec::inline QCODEC_ABI::detail {

/// Throws, naming the tensor, unless `importance` is empty or holds `cols` finite values >= 0.
inline void require_column_importance(std::string_view name, std::span<const float> importance, index_t cols) {
  if (importance.empty()) return;
  if (static_cast<index_t>(importance.size()) != cols)
    fail("tensor '", name, "': ", importance.size(), " column importances for ", cols, " columns");
  for (std::size_t c = 0; c < importance.size(); ++c)
    if (!(importance[c] >= 0) || !std::isfinite(importance[c]))
      fail("tensor '", name, "': column importance ", c, " is ", importance[c], " (must be finite, >= 0)");
}

}  // namespace qcodec::inline QCODEC_ABI::detail
