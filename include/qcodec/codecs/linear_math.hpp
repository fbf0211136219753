#pragma once
/// Per-element math of the linear codec, shared by the scalar, SIMD and CUDA code.
///
/// A code u (unsigned, Bits wide) decodes to (u - offset) * scale. Symmetric codecs use the
/// fixed offset 2^(Bits-1) and codes 1 .. 2^Bits - 1 (q = u - offset in [-qmax, qmax]);
/// asymmetric codecs store an integer zero point per block as the offset and use codes
/// 0 .. 2^Bits - 1. An integer offset makes 0 exactly representable, so a weight never
/// decodes to the opposite sign.

#include <cmath>
#include <cstddef>

#include "qcodec/config.hpp"

namespace qcodec::inline QCODEC_ABI::linear_math {

/// Index of the scale (and zero point) of column group `group` of row `row`: blocks are
/// row-major, `groups_per_row` per row (1 for per-row scales); a per-tensor scale is block 0.
QCODEC_HD std::ptrdiff_t block_index(std::ptrdiff_t row, std::ptrdiff_t group,
                                     std::ptrdiff_t groups_per_row, bool per_tensor) {
  return per_tensor ? 0 : row * groups_per_row + group;
}

/// Decoded value of code `code`.
QCODEC_HD float dequantize(unsigned code, int offset, float scale) {
  return static_cast<float>(static_cast<int>(code) - offset) * scale;
}

/// Code of `w`: round-to-nearest-even (rint) of w / scale, plus the offset, clamped to the code
/// range. A zero scale (an all-zero block) maps every weight to the offset, i.e. to 0.
QCODEC_HD unsigned quantize(float w, float scale, int offset, int min_code, int max_code) {
  if (!(scale > 0)) return static_cast<unsigned>(offset);
  const float q = rintf(w / scale) + static_cast<float>(offset);
  // Comparisons rather than fminf/fmaxf: q is never NaN, and GCC calls libm for those.
  const float low = static_cast<float>(min_code), high = static_cast<float>(max_code);
  return static_cast<unsigned>(q < low ? low : (q > high ? high : q));
}

}  // namespace qcodec::inline QCODEC_ABI::linear_math
