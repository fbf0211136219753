#pragma once
/// Checks shared by the codecs' validate(): a storage read from a file is trusted by decode
/// only after its shape, array sizes and scales pass them.

#include <cmath>
#include <cstddef>
#include <string_view>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/matrix.hpp"

namespace qcodec::inline QCODEC_ABI::detail {

/// Throws unless rows and cols are both positive.
inline void require_shape(std::string_view tensor, index_t rows, index_t cols) {
  if (rows <= 0 || cols <= 0) fail("tensor '", tensor, "': bad shape ", rows, " x ", cols);
}

/// Throws unless the array `array` of a rows x cols tensor holds `expected` elements.
inline void require_array_size(std::string_view tensor, std::string_view array, std::size_t size,
                               std::size_t expected, index_t rows, index_t cols) {
  if (size != expected)
    fail("tensor '", tensor, "': ", array, " holds ", size, " elements, expected ", expected,
         " for ", rows, " x ", cols);
}

/// Throws unless every scale is finite and >= 0 (a zero scale encodes an all-zero block).
template <class Scales>
void require_scales(std::string_view tensor, const Scales& scales) {
  for (std::size_t i = 0; i < scales.size(); ++i) {
    const float scale = static_cast<float>(scales[i]);
    if (!(scale >= 0) || !std::isfinite(scale))
      fail("tensor '", tensor, "': scale ", i, " is ", scale, " (must be finite, >= 0)");
  }
}

/// Throws unless the bits past `used_bits` in the last byte of each of `rows` rows of
/// `row_bytes` bytes are zero, so one matrix has one byte representation (a file round trip
/// is byte-identical).
template <class Bytes>
void require_zero_padding(std::string_view tensor, std::string_view array, const Bytes& bytes, index_t rows,
                          index_t row_bytes, index_t used_bits) {
  const int used = static_cast<int>(used_bits % 8);
  if (used == 0 || row_bytes == 0) return;
  for (index_t r = 0; r < rows; ++r)
    if (bytes[static_cast<std::size_t>((r + 1) * row_bytes - 1)] >> used)
      fail("tensor '", tensor, "': ", array, " of row ", r, " has non-zero padding bits");
}

}  // namespace qcodec::inline QCODEC_ABI::detail
