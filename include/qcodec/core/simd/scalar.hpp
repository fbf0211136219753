#pragma once
/// The scalar target: one lane, plain C++; complete on its own, and what every other target
/// is tested against.

#include <cmath>
#include <cstdint>

#include "qcodec/config.hpp"
#include "qcodec/core/bit_packing.hpp"
#include "qcodec/core/simd/backend.hpp"

namespace qcodec::inline QCODEC_ABI::targets::scalar {

struct backend {
  static constexpr index_t width = 1;
  using float_vector = float;
  using int_vector = std::int32_t;

  static float_vector float_zero() { return 0; }
  static float_vector load(const float* x) { return *x; }
  static void store(float* out, float_vector v) { *out = v; }
  static float_vector splat(float s) { return s; }
  static float_vector add(float_vector a, float_vector b) { return a + b; }
  static float_vector multiply(float_vector v, float s) { return v * s; }
  static float_vector fmadd(float_vector a, float_vector b, float_vector c) { return a * b + c; }
  static float reduce(float_vector v) { return v; }

  static int_vector int_zero() { return 0; }
  static int_vector int_splat(int n) { return n; }
  static int_vector int_add(int_vector a, int_vector b) { return a + b; }
  static int_vector int_sub(int_vector a, int_vector b) { return a - b; }
  static int_vector int_multiply(int_vector a, int_vector b) {
    return static_cast<int_vector>(static_cast<std::uint32_t>(a) * static_cast<std::uint32_t>(b));
  }
  static int_vector load_ints(const std::int32_t* p) { return *p; }
  static float_vector to_float(int_vector v) { return static_cast<float>(v); }
  template <int Bits>
  static int_vector load_codes(const std::uint8_t* row, index_t c) {
    return static_cast<int_vector>(unpack_code<Bits>(row, c));
  }
};
static_assert(simd::backend<backend>);

}  // namespace qcodec::inline QCODEC_ABI::targets::scalar
