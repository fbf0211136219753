#pragma once
/// Two 4-bit codes per byte: column 2k in the low nibble, column 2k+1 in the high nibble.

#include <cstdint>

#include "qcodec/config.hpp"
#include "qcodec/core/index.hpp"

namespace qcodec::inline QCODEC_ABI {

/// Bytes holding `count` codes of `Bits` bits; a row is padded to whole bytes.
template <int Bits>
constexpr index_t packed_bytes(index_t count) {
  static_assert(Bits == 4 || Bits == 8, "qcodec packs 4-bit or 8-bit codes");
  return Bits == 8 ? count : (count + 1) / 2;
}

/// Reads code `i` (unsigned, 0 .. 2^Bits-1) of a packed row.
template <int Bits>
QCODEC_HD unsigned unpack_code(const std::uint8_t* row, index_t i) {
  if constexpr (Bits == 8) {
    return row[i];
  } else {
    return (row[i >> 1] >> ((i & 1) * 4)) & 0xFu;
  }
}

/// Writes code `i` of a packed row; the other nibble of the byte is kept.
template <int Bits>
inline void pack_code(std::uint8_t* row, index_t i, unsigned code) {
  if constexpr (Bits == 8) {
    row[i] = static_cast<std::uint8_t>(code);
  } else {
    const int shift = static_cast<int>(i & 1) * 4;
    std::uint8_t& byte = row[i >> 1];
    byte = static_cast<std::uint8_t>((byte & ~(0xFu << shift)) | ((code & 0xFu) << shift));
  }
}

}  // namespace qcodec::inline QCODEC_ABI
