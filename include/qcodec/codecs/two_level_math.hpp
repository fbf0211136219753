#pragma once
/// Per-element math of the two-level-scale codec (codecs/two_level.hpp), shared by its fast
/// decode, its reference decode and its encoder.
///
/// A sub-block's step is the FP16 super-block scale d times the sub-block's integer scale
/// code m (one FP32 rounding); an element decodes to step * level (one more rounding), where
/// the level is an integer: code - 2^(Bits-1) (symmetric) or code - zero point (asymmetric).
/// Integer levels make 0 exact and keep every decoded weight on the side of zero it came from.

#include "qcodec/config.hpp"

namespace qcodec::inline QCODEC_ABI::two_level_math {

/// Step of a sub-block: super-block scale times integer sub-block scale.
QCODEC_HD float sub_block_step(float super_scale, int sub_scale) {
  return super_scale * static_cast<float>(sub_scale);
}

/// Decoded value of integer level `level` in a sub-block of step `step`.
QCODEC_HD float dequantize(float step, int level) { return step * static_cast<float>(level); }

/// Offset-binary field of `width` bits as a signed integer: raw - 2^(width-1).
QCODEC_HD int offset_binary(unsigned raw, int width) {
  return static_cast<int>(raw) - (1 << (width - 1));
}

}  // namespace qcodec::inline QCODEC_ABI::two_level_math
