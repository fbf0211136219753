#pragma once
/// Per-element math of the non-uniform grid codec, shared by the scalar and any faster code.
///
/// A code k (Bits wide, 0 .. 2^Bits - 1) indexes a table of 2^Bits normalised levels
/// l_0 < l_1 < ... < l_{L-1} = 1 that holds 0 exactly once; it decodes to l_k * scale, with
/// the block's signed scale converted to float first.
///
/// Dense bit layout of a row: code c occupies bits [c * Bits, (c + 1) * Bits) of the row read
/// as one little-endian bit string (bit i is bit i % 8 of byte i / 8), low bit first. For
/// 4 bits that is column 2k in the low nibble of byte k; for 3 bits eight codes fill three
/// bytes and a code may straddle two bytes. A row is padded to whole bytes with zero bits.

#include <cstdint>

#include "qcodec/config.hpp"
#include "qcodec/core/matrix.hpp"

namespace qcodec::inline QCODEC_ABI::grid_math {

/// Bytes holding `count` codes of `bits` bits, padded to a whole byte.
constexpr index_t packed_bytes(int bits, index_t count) { return (count * bits + 7) / 8; }

/// Reads code `i` of a densely packed row.
template <int Bits>
QCODEC_HD unsigned unpack_code(const std::uint8_t* row, index_t i) {
  const index_t bit = i * Bits;
  const unsigned shift = static_cast<unsigned>(bit & 7);
  unsigned value = row[bit >> 3] >> shift;
  if (shift + Bits > 8) value |= static_cast<unsigned>(row[(bit >> 3) + 1]) << (8 - shift);
  return value & ((1u << Bits) - 1);
}

/// Writes code `i` into a row whose bits for code i are still zero.
template <int Bits>
inline void pack_code_into_zeros(std::uint8_t* row, index_t i, unsigned code) {
  const index_t bit = i * Bits;
  const unsigned shift = static_cast<unsigned>(bit & 7);
  row[bit >> 3] = static_cast<std::uint8_t>(row[bit >> 3] | (code << shift));
  if (shift + Bits > 8)
    row[(bit >> 3) + 1] = static_cast<std::uint8_t>(row[(bit >> 3) + 1] | (code >> (8 - shift)));
}

/// Decoded value of `code`: one table lookup times the block scale.
QCODEC_HD float decode(unsigned code, const float* levels, float scale) { return levels[code] * scale; }

}  // namespace qcodec::inline QCODEC_ABI::grid_math
