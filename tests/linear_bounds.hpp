#pragma once
// Element-wise error bounds of the linear codec, derived from its step size.
//
// For a block with stored scale s and offset z, the codes span [lo, hi] = [deq(min), deq(max)].
// In range, encoding rounds w/s to the nearest integer: |q - w/s| <= 1/2 + u|w/s| (u = 2^-24,
// the rounding of the division), and decoding rounds q*s once more (<= u|w^|). Hence
//   |w - w^| <= s/2 + 2u|w| + u s/2  <=  s/2 (1 + 2^-23) + 2^-23 |w|.
// Out of range the weight saturates: w^ equals the end of the range on w's side.
#include <catch2/catch.hpp>

#include <qcodec/codecs/linear.hpp>

namespace qcodec::testing {

/// Checks the bound at the elements (r, c) with include(r, c) true.
template <class Codec, class Include>
void check_linear_bounds(matrix_view w, const encoded_matrix<Codec>& encoded, Include include) {
  const auto& s = encoded.storage();
  const row_matrix decoded = encoded.decode();
  index_t violations = 0;
  for (index_t r = 0; r < w.rows(); ++r)
    for (index_t c = 0; c < w.cols(); ++c) {
      if (!include(r, c)) continue;
      const index_t block = s.block_index(r, c / s.group_size());
      const float scale = static_cast<float>(s.scales[static_cast<std::size_t>(block)]);
      const int offset = s.offset(block);
      const float lo = linear_math::dequantize(Codec::min_code, offset, scale);
      const float hi = linear_math::dequantize(Codec::max_code, offset, scale);
      const double x = w(r, c), y = decoded(r, c);
      bool ok;
      if (x > hi) ok = y == hi;
      else if (x < lo) ok = y == lo;
      else ok = std::abs(x - y) <= 0.5 * scale * (1 + 0x1p-23) + 0x1p-23 * std::abs(x);
      if (!ok && violations++ < 5)
        FAIL_CHECK("row " << r << " col " << c << ": w=" << x << " decoded=" << y
                          << " scale=" << scale << " range=[" << lo << ", " << hi << "]");
    }
  CHECK(violations == 0);
}

template <class Codec>
void check_linear_bounds(matrix_view w, const encoded_matrix<Codec>& encoded) {
  check_linear_bounds(w, encoded, [](index_t, index_t) { return true; });
}

}  // namespace qcodec::testing
