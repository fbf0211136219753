#pragma once
/// Quantizing block scales under a super-block scale, shared by every codec with two-level
/// scales (two_level.hpp, grid.hpp): a block's scale is the FP16 super-block scale d times an
/// integer sub-scale m in [m_min, m_max], and the encoder quantizes each block's real scale
/// by these two rules.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/half.hpp"
#include "qcodec/core/index.hpp"

namespace qcodec::inline QCODEC_ABI::detail {

/// Super-blocks of a row of `cols` columns: floor(cols / S) of S columns (at least one), the
/// last also taking the row's tail shorter than S. So no super-block scale covers fewer than S
/// columns of a row longer than S, and a row's scales stay its own (a tensor splits by rows).
constexpr index_t super_blocks_in_row(index_t cols, index_t super_block) {
  return std::max<index_t>(1, cols / super_block);
}

/// Blocks [first, last) of super-block k of a row of `blocks` blocks in `supers` super-blocks
/// (super_blocks_in_row) of `per_super` blocks each: the last runs to the row's end.
struct block_range {
  index_t first, last;
};
constexpr block_range blocks_of_super_block(index_t k, index_t supers, index_t blocks, index_t per_super) {
  return {k * per_super, k + 1 == supers ? blocks : (k + 1) * per_super};
}

/// The super-block holding column c of a row of `cols` columns.
constexpr index_t super_block_of(index_t c, index_t cols, index_t super_block) {
  return std::min(c / super_block, super_blocks_in_row(cols, super_block) - 1);
}

/// The FP16 super-block scale mapping the largest block scale magnitude `largest` to
/// `sub_scale_max`, rounded up (so no sub-scale overflows its code); 0 for an all-zero
/// super-block. Throws, naming the tensor and row, when it overflows FP16.
inline float super_scale_covering(float largest, int sub_scale_max, float largest_level,
                                  std::string_view name, index_t row) {
  const float ideal = largest / static_cast<float>(sub_scale_max);
  half d = static_cast<half>(ideal);
  if (static_cast<float>(d) < ideal)
    d = std::bit_cast<half>(static_cast<std::uint16_t>(std::bit_cast<std::uint16_t>(d) + 1));
  if (!std::isfinite(static_cast<float>(d)))
    fail("tensor '", name, "': row ", row, ": super-block scale ", ideal,
         " overflows FP16 (weights beyond about ", 65504.0f * static_cast<float>(sub_scale_max) * largest_level, ")");
  return static_cast<float>(d);
}

/// Candidate super-block scales: d0 (super_scale_covering's) times 1 - k / 100, k = 0..10.
inline constexpr int super_scale_candidates = 11;

/// The candidate super-block scale (each rounded to FP16) whose sub-scales
/// clamp(round(scale / d), m_min, m_max) miss the blocks' scales by the least sum of squares
/// (scale - d m)^2, the first of equals: a cheap proposal, which choose_super_scale checks
/// against d0 by the blocks' real errors. 0 stays 0.
inline float super_scale_by_least_squares(const float* scales, index_t blocks, float d0, int m_min, int m_max) {
  if (!(d0 > 0)) return d0;
  float best = d0;
  double best_error = std::numeric_limits<double>::infinity();
  for (int k = 0; k < super_scale_candidates; ++k) {
    const float d = static_cast<float>(static_cast<half>(d0 * (1.0f - 0.01f * static_cast<float>(k))));
    if (!(d > 0)) break;
    double error = 0;
    for (index_t b = 0; b < blocks; ++b) {
      const float m = std::clamp(std::nearbyint(scales[b] / d), static_cast<float>(m_min), static_cast<float>(m_max));
      const double miss = static_cast<double>(scales[b]) - static_cast<double>(d) * m;
      error += miss * miss;
    }
    if (error < best_error) {
      best_error = error;
      best = d;
    }
  }
  return best;
}

struct sub_scale_choice {
  int code;
  double error;  // error(code), or NaN where the choice needed no evaluation
};

/// The sub-scale of a block whose real scale is `scale` under super-block scale d: floor or
/// ceil of scale / d (clamped to [m_min, m_max]), whichever `error(m)` (the block's squared
/// error coded under the exact scale d * m) finds smaller, ties to the larger magnitude; 0 when
/// d = 0. No weight's error under a step of d or -d exceeds its error under step 0 (each
/// rounds to 0 or nearer), so the tie rule never zeroes a block that is not all zeros.
template <class Error>
sub_scale_choice nearer_sub_scale(float scale, float d, int m_min, int m_max, Error&& error) {
  constexpr double unevaluated = std::numeric_limits<double>::quiet_NaN();
  if (!(d > 0)) return {0, unevaluated};
  const float t = scale / d;
  const auto clamp_code = [&](float v) {
    return static_cast<int>(std::clamp(v, static_cast<float>(m_min), static_cast<float>(m_max)));
  };
  const int down = clamp_code(std::floor(t)), up = clamp_code(std::ceil(t));
  if (down == up) return {down, unevaluated};
  const int larger = std::abs(up) >= std::abs(down) ? up : down, smaller = larger == up ? down : up;
  const double e_larger = error(larger), e_smaller = error(smaller);
  return e_larger <= e_smaller ? sub_scale_choice{larger, e_larger} : sub_scale_choice{smaller, e_smaller};
}

/// The super-block scale and its blocks' sub-scales m[b] (nearer_sub_scale): the covering d0,
/// or the least-squares proposal d1 when its blocks' total squared error is smaller (d0 on
/// ties). error(b, d, code) is block b's squared error coded under the exact scale d * code.
/// A d1 below d0 clips the largest block scales to d1 * m_max where that buys the other blocks
/// nearer sub-scales: measured +0.07 dB median on the all-MiniLM-L6-v2 weights with 5-bit
/// sub-scales; the check keeps d0 where clipping costs more (8-bit codes, whose clipped
/// weights lose whole steps: the proposal alone cost int8 two-level codecs 0.3 dB).
template <class Error>
float choose_super_scale(const float* scales, index_t blocks, float d0, int m_min, int m_max, int* m, Error&& error) {
  const float d1 = super_scale_by_least_squares(scales, blocks, d0, m_min, m_max);
  const auto sub_scales = [&](float d, int* codes, bool total) {
    double sum = 0;
    for (index_t b = 0; b < blocks; ++b) {
      const sub_scale_choice c = nearer_sub_scale(scales[b], d, m_min, m_max, [&](int code) { return error(b, d, code); });
      codes[b] = c.code;
      if (total) sum += std::isnan(c.error) ? error(b, d, c.code) : c.error;
    }
    return sum;
  };
  if (d1 == d0) {
    sub_scales(d0, m, false);
    return d0;
  }
  std::vector<int> m1(static_cast<std::size_t>(blocks));
  const double e0 = sub_scales(d0, m, true), e1 = sub_scales(d1, m1.data(), true);
  if (!(e1 < e0)) return d0;
  std::copy(m1.begin(), m1.end(), m);
  return d1;
}

}  // namespace qcodec::inline QCODEC_ABI::detail
