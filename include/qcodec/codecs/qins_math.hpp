#pragma once
/// Per-element math of the QINS codec, shared by the scalar, SIMD and CUDA code.
///
/// A Bits-wide code is a sign bit (the top bit) above a (Bits-1)-bit magnitude code m in
/// 0 .. max_magnitude = 2^(Bits-1) - 1. m = 0 is exact zero; m >= 1 has the normalised
/// magnitude rho^(m-1) = 2^-((m-1) * step_octaves): m = 1 is the row's largest magnitude and
/// larger codes are geometrically smaller. The signed LUT holds lut[m] = rho^(m-1),
/// lut[0] = 0 and lut[sign_bit | m] = -lut[m]; a code decodes to lut[code] * row_scale.
///
/// Rounding rule (encode): a weight goes to the code whose decoded value is nearest in value
/// (least squared error), comparing against the decoded values themselves (lut[m] * scale, the
/// same float products decode computes), not against log|w|; below the smallest level it goes
/// to 0 or the smallest level, whichever is nearer; a tie goes to the larger magnitude. The
/// code's sign bit is the weight's sign, and 0 always gets code 0, so no sign ever flips.

#include <cmath>

#include "qcodec/config.hpp"

namespace qcodec::inline QCODEC_ABI::qins_math {

/// Normalised magnitude rho^(m-1) = 2^-((m-1) * step_octaves) of magnitude code m >= 1.
QCODEC_HD float level(int m, double step_octaves) {
  return static_cast<float>(exp2(-static_cast<double>(m - 1) * step_octaves));
}

/// Fills the 2^bits-entry signed LUT: lut[0] = 0, lut[m] = level(m), lut[sign | m] = -lut[m].
QCODEC_HD void build_lut(float* lut, int bits, double step_octaves) {
  const int sign = 1 << (bits - 1);
  lut[0] = 0.0f;
  for (int m = 1; m < sign; ++m) lut[m] = level(m, step_octaves);
  for (int m = 0; m < sign; ++m) lut[sign | m] = -lut[m];
}

/// Decoded value of `code`: one table lookup times the row scale.
QCODEC_HD float decode(unsigned code, const float* lut, float scale) { return lut[code] * scale; }

/// First guess for the magnitude code of a weight with log2(scale / |w|) = `log2_ratio` >= 0:
/// floor(1 + log2_ratio / step), the largest m whose exact level is >= |w|, clamped to the
/// code range. Float rounding can put it a step off; nearest_magnitude_code corrects that.
QCODEC_HD int magnitude_code_guess(float log2_ratio, float inverse_step, int max_magnitude) {
  const float position = 1.0f + log2_ratio * inverse_step;
  const float top = static_cast<float>(max_magnitude);
  return static_cast<int>(position > 1.0f ? (position < top ? position : top) : 1.0f);
}

/// Magnitude code (0 .. max_magnitude) nearest in value to `magnitude` > 0, given the row's
/// decoded magnitudes `levels` (levels[0] = 0, levels[1..max_magnitude] non-increasing) and a
/// guess. The guess is moved until levels[m] >= magnitude > levels[m+1] (levels[max+1] taken
/// as 0), then the nearer of the two wins (ties: the larger, levels[m]). The differences are
/// taken in double, where they are exact whenever the comparison is close.
QCODEC_HD unsigned nearest_magnitude_code(float magnitude, const float* levels, int max_magnitude,
                                          int guess) {
  int m = guess;
  while (m > 1 && levels[m] < magnitude) --m;
  while (m < max_magnitude && levels[m + 1] >= magnitude) ++m;
  // Branch-free choice (the comparison is a coin flip for the branch predictor); index m + 1
  // is read only when it exists.
  const int has_lower = m < max_magnitude;
  const double upper = levels[m];
  const double lower = has_lower ? levels[m + has_lower] : 0.0;
  const double x = magnitude;
  const int take_lower = upper - x > x - lower;
  return static_cast<unsigned>((m + take_lower) * (1 - (take_lower & (1 - has_lower))));
}

/// Full code of weight `w` in a row with decoded magnitudes `levels` and scale 2^log2_scale:
/// the weight's sign bit over the nearest magnitude code; a zero (of either sign) gets code 0.
QCODEC_HD unsigned encode(float w, const float* levels, int max_magnitude, float log2_scale,
                          float inverse_step) {
  const float magnitude = fabsf(w);
  if (!(magnitude > 0.0f)) return 0u;
  const int guess = magnitude_code_guess(log2_scale - log2f(magnitude), inverse_step, max_magnitude);
  const unsigned m = nearest_magnitude_code(magnitude, levels, max_magnitude, guess);
  const unsigned sign = w < 0.0f && m != 0 ? static_cast<unsigned>(max_magnitude + 1) : 0u;
  return sign | m;
}

}  // namespace qcodec::inline QCODEC_ABI::qins_math
