#pragma once
/// Element types of safetensors tensors: names, byte sizes and the C++ type of each.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string_view>
#include <type_traits>

#include <Eigen/Core>

#include "qcodec/config.hpp"
#include "qcodec/core/half.hpp"

namespace qcodec::inline QCODEC_ABI::io {

static_assert(std::endian::native == std::endian::little,
              "qcodec: safetensors data is little-endian; big-endian hosts are not supported");

/// A safetensors dtype: every whole-byte type of the format. qcodec reads and writes them all
/// as bytes; only F32, F16 and BF16 convert to floats (read_matrix) and are quantized. BOOL is
/// one byte per element; F8_E5M2, F8_E4M3 and F8_E8M0 are the 8-bit float formats. The
/// format's sub-byte types (F4, F6_E2M3, F6_E3M2) are not read.
enum class dtype { u8, i8, u16, i16, f16, bf16, u32, i32, f32, u64, i64, f64, boolean, f8_e5m2, f8_e4m3, f8_e8m0 };

/// Number of dtypes.
inline constexpr int dtype_count = static_cast<int>(dtype::f8_e8m0) + 1;

/// The dtype's name in a safetensors header ("U8", "F16", "BF16", ...).
constexpr std::string_view dtype_name(dtype type) {
  constexpr std::string_view names[] = {"U8",  "I8",  "U16", "I16",  "F16",     "BF16",
                                        "U32", "I32", "F32", "U64",  "I64",     "F64",
                                        "BOOL", "F8_E5M2", "F8_E4M3", "F8_E8M0"};
  static_assert(std::size(names) == dtype_count);
  return names[static_cast<int>(type)];
}

/// Bytes per element of the dtype.
constexpr std::size_t dtype_size(dtype type) {
  constexpr std::size_t sizes[] = {1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8, 1, 1, 1, 1};
  static_assert(std::size(sizes) == dtype_count);
  return sizes[static_cast<int>(type)];
}

/// The dtype named `name` in a header, or nothing for a name qcodec does not read.
constexpr std::optional<dtype> parse_dtype(std::string_view name) {
  for (int i = 0; i < dtype_count; ++i)
    if (dtype_name(static_cast<dtype>(i)) == name) return static_cast<dtype>(i);
  return std::nullopt;
}

/// The dtype storing elements of type T (an array element of a codec's storage).
template <class T>
constexpr dtype dtype_of() {
  if constexpr (std::is_same_v<T, std::uint8_t>) return dtype::u8;
  else if constexpr (std::is_same_v<T, std::int8_t>) return dtype::i8;
  else if constexpr (std::is_same_v<T, std::uint16_t>) return dtype::u16;
  else if constexpr (std::is_same_v<T, std::int16_t>) return dtype::i16;
  else if constexpr (std::is_same_v<T, half>) return dtype::f16;
  else if constexpr (std::is_same_v<T, Eigen::bfloat16>) return dtype::bf16;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return dtype::u32;
  else if constexpr (std::is_same_v<T, std::int32_t>) return dtype::i32;
  else if constexpr (std::is_same_v<T, float>) return dtype::f32;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return dtype::u64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return dtype::i64;
  else if constexpr (std::is_same_v<T, double>) return dtype::f64;
  else static_assert(sizeof(T) == 0, "qcodec: no safetensors dtype for this array element type");
}

template <class T>
concept has_dtype = requires { dtype_of<T>(); } && std::is_trivially_copyable_v<T>;

}  // namespace qcodec::inline QCODEC_ABI::io
