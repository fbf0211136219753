#pragma once
/// Randomized block-diagonal Hadamard rotation along a row (incoherence processing).
///
/// A row of `cols` values is cut into blocks: whole blocks of `block` columns (a power of two),
/// then the remaining t < block columns into blocks of the powers of two of t's binary
/// expansion, largest first (t = 13: 8, 4, 1). On a block of n values at columns [o, o + n)
/// the rotation is R = H_n D / sqrt(n): D = diag(signs[o .. o + n)) with signs +-1, H_n the
/// Sylvester Hadamard matrix (H_n[i][j] = (-1)^popcount(i & j)). R is orthogonal, so
/// x . w = (R x) . (R w) for every pair of rows, and the inverse is R^T = D H_n / sqrt(n).
///
/// Signs come from a seed: column c's sign is bit c % 32 of the (c / 32)-th output of
/// std::mt19937 seeded with it (the standard fixes its sequence), bit 1 = -1; stored packed,
/// column c in bit c % 8 of byte c / 8.
///
/// Arithmetic (FP32): the fast transform's log2(n) butterfly stages, then one multiply by
/// 1/sqrt(n) as a float. Each output is a depth-log2(n) tree of additions of the n inputs, so
/// it is within gamma_{log2(n) + 1} * sum |inputs| / sqrt(n) of the exact rotation (Higham,
/// eq. 4.4, plus the multiply).

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "qcodec/config.hpp"
#include "qcodec/core/index.hpp"

namespace qcodec::inline QCODEC_ABI::hadamard {

/// Calls f(first, n) for every block of a row of `cols` columns, in column order.
template <class F>
void for_each_block(index_t cols, index_t block, F&& f) {
  index_t c = 0;
  for (; c + block <= cols; c += block) f(c, block);
  for (index_t n = block / 2; n >= 1; n /= 2)
    if (cols - c >= n) {
      f(c, n);
      c += n;
    }
}

/// The packed signs of `cols` columns for `seed` (the file comment's rule).
inline std::vector<std::uint8_t> signs_for(std::uint32_t seed, index_t cols) {
  std::vector<std::uint8_t> signs(static_cast<std::size_t>((cols + 7) / 8), 0);
  std::mt19937 generator(seed);
  std::uint32_t word = 0;
  for (index_t c = 0; c < cols; ++c) {
    if (c % 32 == 0) word = static_cast<std::uint32_t>(generator());
    if ((word >> (c % 32)) & 1u) signs[static_cast<std::size_t>(c / 8)] |= static_cast<std::uint8_t>(1u << (c % 8));
  }
  return signs;
}

inline bool negative(const std::uint8_t* signs, index_t c) { return (signs[c / 8] >> (c % 8)) & 1u; }

/// In place: v = H_n v (unnormalised), n a power of two.
inline void butterflies(float* v, index_t n) {
  for (index_t h = 1; h < n; h *= 2)
    for (index_t i = 0; i < n; i += 2 * h)
      for (index_t j = i; j < i + h; ++j) {
        const float a = v[j], b = v[j + h];
        v[j] = a + b;
        v[j + h] = a - b;
      }
}

/// 1/sqrt(n) as a float (exact for n a power of 4).
inline float normaliser(index_t n) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(n))); }

/// In place on one row: v = R v (forward rotation).
inline void rotate(float* v, index_t cols, index_t block, const std::uint8_t* signs) {
  for_each_block(cols, block, [&](index_t first, index_t n) {
    float* b = v + first;
    for (index_t i = 0; i < n; ++i)
      if (negative(signs, first + i)) b[i] = -b[i];
    butterflies(b, n);
    const float s = normaliser(n);
    for (index_t i = 0; i < n; ++i) b[i] *= s;
  });
}

/// In place on one row: v = R^T v (the inverse rotation).
inline void unrotate(float* v, index_t cols, index_t block, const std::uint8_t* signs) {
  for_each_block(cols, block, [&](index_t first, index_t n) {
    float* b = v + first;
    butterflies(b, n);
    const float s = normaliser(n);
    for (index_t i = 0; i < n; ++i) b[i] = negative(signs, first + i) ? -(b[i] * s) : b[i] * s;
  });
}

}  // namespace qcodec::inline QCODEC_ABI::hadamard
