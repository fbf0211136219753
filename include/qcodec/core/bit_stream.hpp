#pragma once
/// Dense little-endian bit streams of fixed-width fields (1 to 8 bits).
///
/// Field i of width W occupies stream bits [i*W, i*W + W); stream bit p is bit (p % 8) of byte
/// p / 8, and a field's low bit comes first. A field therefore straddles at most two bytes.
/// For W = 4 this is core/bit_packing.hpp's nibble layout, for W = 8 one field per byte.

#include <cstdint>

#include "qcodec/config.hpp"
#include "qcodec/core/matrix.hpp"

namespace qcodec::inline QCODEC_ABI {

/// Bytes holding `count` fields of `width` bits (a stream ends on a whole byte).
constexpr index_t bit_stream_bytes(index_t count, int width) { return (count * width + 7) / 8; }

/// Field i of width `width` (1..8) of `stream`.
QCODEC_HD unsigned read_bits(const std::uint8_t* stream, index_t i, int width) {
  const index_t bit = i * width;
  const index_t byte = bit >> 3;
  const int shift = static_cast<int>(bit & 7);
  unsigned value = stream[byte];
  if (shift + width > 8) value |= static_cast<unsigned>(stream[byte + 1]) << 8;
  return (value >> shift) & ((1u << width) - 1u);
}

/// Writes field i of width `width` (1..8); the stream's other bits are kept.
inline void write_bits(std::uint8_t* stream, index_t i, int width, unsigned value) {
  const index_t bit = i * width;
  const index_t byte = bit >> 3;
  const int shift = static_cast<int>(bit & 7);
  const unsigned mask = (1u << width) - 1u;
  const unsigned placed = (value & mask) << shift, kept = ~(mask << shift);
  stream[byte] = static_cast<std::uint8_t>((stream[byte] & kept) | placed);
  if (shift + width > 8)
    stream[byte + 1] = static_cast<std::uint8_t>((stream[byte + 1] & (kept >> 8)) | (placed >> 8));
}

}  // namespace qcodec::inline QCODEC_ABI
