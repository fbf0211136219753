#pragma once
/// The ortho stream of the outlier split: a sparse rows x cols matrix of FP16 residuals in CSR.
///
/// Layout (all arrays empty when the stream holds no entry, so an empty stream costs 0 bytes):
///  - row_offsets: rows + 1 entries; the entries of row r are [row_offsets[r], row_offsets[r+1]);
///  - columns16 or columns32: the column of each entry, strictly increasing within a row; the
///    narrowest type that holds cols - 1 is used (uint16 when cols <= 65536), the other is empty;
///  - values: FP16 mantissas; entry e decodes to float(values[e]) * scale[0];
///  - scale: one power of two chosen so that the largest |residual| / scale lands in
///    [2^14, 2^15): every residual keeps FP16's 11-bit precision whatever its magnitude (no FP16
///    overflow on a huge-magnitude row), and multiplying by a power of two is exact in FP32.
///    Rounding to FP16 can carry a quotient up to 2^15; where 2^15 * scale would overflow FP32
///    (residuals of at least 2^128 (1 - 2^-12)) the value is the FP16 one step toward zero instead, so
///    every entry decodes to a finite float.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "qcodec/codecs/storage_checks.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/half.hpp"
#include "qcodec/core/matrix.hpp"

namespace qcodec::inline QCODEC_ABI {

struct ortho_stream {
  index_t rows = 0, cols = 0;
  std::vector<std::uint32_t> row_offsets;
  std::vector<std::uint16_t> columns16;
  std::vector<std::uint32_t> columns32;
  std::vector<half> values;
  std::vector<float> scale;

  /// Number of stored entries.
  index_t nnz() const { return static_cast<index_t>(values.size()); }

  /// True when column indices are stored as uint16.
  static bool narrow_columns(index_t cols) { return cols <= 65536; }

  /// Every stored byte.
  std::size_t byte_size() const {
    return row_offsets.size() * sizeof(std::uint32_t) + columns16.size() * sizeof(std::uint16_t) +
           columns32.size() * sizeof(std::uint32_t) + values.size() * sizeof(half) +
           scale.size() * sizeof(float);
  }

  /// Calls f(column, value) for each entry of row r, in increasing column order.
  template <class F>
  void for_each_in_row(index_t r, F&& f) const {
    if (values.empty()) return;
    const float s = scale[0];
    for_each_entry(r, [&](std::size_t e) { return static_cast<float>(values[e]) * s; }, f);
  }

  /// Every entry's value, float(values[e]) * scale[0], in entry order.
  std::vector<float> decoded_values() const {
    std::vector<float> decoded(values.size());
    for (std::size_t e = 0; e < values.size(); ++e) decoded[e] = static_cast<float>(values[e]) * scale[0];
    return decoded;
  }

  /// Adds rows [first, last) of the stream to `out` (row-major, cols floats per row).
  void add_rows(index_t first, index_t last, float* out) const {
    for (index_t r = first; r < last; ++r, out += cols)
      for_each_in_row(r, [&](index_t c, float v) { out[c] += v; });
  }

  /// Sum over the entries of row r of value * x[column]: an FP32 FMA chain in column order,
  /// sum = fma(value, x[column], sum) from 0 (the op's sparse product, ops/slab_products.hpp).
  float dot_row(index_t r, const float* x) const {
    float sum = 0;
    for_each_in_row(r, [&](index_t c, float v) { sum = std::fma(v, x[c], sum); });
    return sum;
  }

  /// Throws qcodec::error naming `name` unless the arrays form a valid stream of rows x cols.
  void validate(std::string_view name) const {
    detail::require_shape(name, rows, cols);
    const std::size_t n = values.size();
    const bool narrow = narrow_columns(cols);
    if (n == 0) {
      if (!row_offsets.empty() || !columns16.empty() || !columns32.empty() || !scale.empty())
        detail::fail("tensor '", name, "': an empty stream must store no arrays");
      return;
    }
    detail::require_array_size(name, "row_offsets", row_offsets.size(),
                               static_cast<std::size_t>(rows) + 1, rows, cols);
    const std::size_t used = narrow ? columns16.size() : columns32.size();
    const std::size_t unused = narrow ? columns32.size() : columns16.size();
    if (used != n || unused != 0)
      detail::fail("tensor '", name, "': column index arrays do not match ", n, " values (uint",
                   narrow ? 16 : 32, " expected for ", cols, " columns)");
    if (scale.size() != 1 || !(scale[0] > 0) || !std::isfinite(scale[0]) ||
        std::ldexp(1.0f, std::ilogb(scale[0])) != scale[0])
      detail::fail("tensor '", name, "': scale must be one finite power of two");
    if (row_offsets.front() != 0 || row_offsets.back() != n)
      detail::fail("tensor '", name, "': row_offsets must run from 0 to ", n);
    // Every offset in [previous, n] before any column is read: no entry index past the arrays.
    for (index_t r = 0; r < rows; ++r) {
      const std::size_t first = row_offsets[static_cast<std::size_t>(r)];
      const std::size_t last = row_offsets[static_cast<std::size_t>(r) + 1];
      if (last < first || last > n)
        detail::fail("tensor '", name, "': row_offsets[", r + 1, "] = ", last,
                     " is not in [", first, ", ", n, "]");
    }
    for (index_t r = 0; r < rows; ++r) {
      const std::size_t first = row_offsets[static_cast<std::size_t>(r)];
      const std::size_t last = row_offsets[static_cast<std::size_t>(r) + 1];
      const auto column = [&](std::size_t e) -> index_t {
        return narrow ? static_cast<index_t>(columns16[e]) : static_cast<index_t>(columns32[e]);
      };
      for (std::size_t e = first; e < last; ++e) {
        const index_t c = column(e), previous = e == first ? -1 : column(e - 1);
        if (c >= cols || c <= previous)
          detail::fail("tensor '", name, "': row ", r, ": column ", c,
                       " out of range or not increasing");
      }
    }
    for (std::size_t e = 0; e < n; ++e)
      if (!std::isfinite(static_cast<float>(values[e]) * scale[0]))
        detail::fail("tensor '", name, "': value ", e, " times the scale is not finite");
  }

  template <class Visitor>
  void visit_arrays(Visitor&& visit, std::string_view prefix = "ortho.") {
    visit_arrays_of(*this, visit, prefix);
  }
  template <class Visitor>
  void visit_arrays(Visitor&& visit, std::string_view prefix = "ortho.") const {
    visit_arrays_of(*this, visit, prefix);
  }

 private:
  /// Calls f(column of e, value(e)) for each entry e of row r, in increasing column order.
  template <class Value, class F>
  void for_each_entry(index_t r, Value&& value, F&& f) const {
    const std::size_t first = row_offsets[static_cast<std::size_t>(r)];
    const std::size_t last = row_offsets[static_cast<std::size_t>(r) + 1];
    if (narrow_columns(cols)) {
      for (std::size_t e = first; e < last; ++e) f(static_cast<index_t>(columns16[e]), value(e));
    } else {
      for (std::size_t e = first; e < last; ++e) f(static_cast<index_t>(columns32[e]), value(e));
    }
  }

  template <class Self, class Visitor>
  static void visit_arrays_of(Self& self, Visitor& visit, std::string_view prefix) {
    const auto named = [&](std::string_view array, auto& values) {
      const std::string full = std::string(prefix) + std::string(array);
      visit(std::string_view(full), values);
    };
    named("row_offsets", self.row_offsets);
    named("columns16", self.columns16);
    named("columns32", self.columns32);
    named("values", self.values);
    named("scale", self.scale);
  }
};

namespace detail {

/// Power of two that puts `max_magnitude` in [2^14, 2^15) (1 for zero), kept a normal float.
inline float ortho_scale_for(float max_magnitude) {
  if (!(max_magnitude > 0)) return 1.0f;
  const int exponent = std::ilogb(max_magnitude) - 14;
  return std::ldexp(1.0f, std::max(exponent, std::numeric_limits<float>::min_exponent - 1));
}

/// The stored FP16 value of `residual` under power-of-two `scale`: the nearest FP16 to
/// residual / scale, or the next one toward zero when that one times scale overflows FP32.
inline half ortho_value(float residual, float scale) {
  const half nearest(residual / scale);
  if (std::isfinite(static_cast<float>(nearest) * scale)) return nearest;
  // One step toward zero: the bit pattern of a finite non-zero FP16, minus one.
  return std::bit_cast<half>(static_cast<std::uint16_t>(std::bit_cast<std::uint16_t>(nearest) - 1));
}

}  // namespace detail
}  // namespace qcodec::inline QCODEC_ABI
