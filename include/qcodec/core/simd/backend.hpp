#pragma once
/// The generic vector operations every SIMD target provides as `targets::<name>::backend`:
/// what kernels are written against (codec kernels beside their codec, op kernels beside
/// their op). Lanes are `width` FP32 values (`float_vector`) or int32 values (`int_vector`).

#include <concepts>
#include <cstdint>

#include "qcodec/config.hpp"
#include "qcodec/core/index.hpp"

namespace qcodec::inline QCODEC_ABI::simd {

template <class B>
concept backend = requires(const float* x, float* out, typename B::float_vector v, float s,
                           typename B::int_vector i, const std::int32_t* ints, const std::uint8_t* row,
                           index_t c, int n) {
  { B::width } -> std::convertible_to<index_t>;
  { B::float_zero() } -> std::same_as<typename B::float_vector>;
  { B::load(x) } -> std::same_as<typename B::float_vector>;
  B::store(out, v);
  { B::splat(s) } -> std::same_as<typename B::float_vector>;
  { B::add(v, v) } -> std::same_as<typename B::float_vector>;
  { B::multiply(v, s) } -> std::same_as<typename B::float_vector>;
  { B::fmadd(v, v, v) } -> std::same_as<typename B::float_vector>;  // a * b + c, one rounding
  { B::reduce(v) } -> std::same_as<float>;                          // the sum of the lanes
  { B::int_zero() } -> std::same_as<typename B::int_vector>;
  { B::int_splat(n) } -> std::same_as<typename B::int_vector>;
  { B::int_add(i, i) } -> std::same_as<typename B::int_vector>;
  { B::int_sub(i, i) } -> std::same_as<typename B::int_vector>;
  { B::int_multiply(i, i) } -> std::same_as<typename B::int_vector>;  // low 32 bits
  { B::load_ints(ints) } -> std::same_as<typename B::int_vector>;
  { B::to_float(i) } -> std::same_as<typename B::float_vector>;       // exact below 2^24
  // Codes c .. c + width - 1 of a packed row (core/bit_packing.hpp) as unsigned lanes;
  // c is even for 4-bit codes.
  { B::template load_codes<8>(row, c) } -> std::same_as<typename B::int_vector>;
  { B::template load_codes<4>(row, c) } -> std::same_as<typename B::int_vector>;
};

}  // namespace qcodec::inline QCODEC_ABI::simd
