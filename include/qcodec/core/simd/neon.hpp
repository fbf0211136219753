#pragma once
/// The NEON target (AArch64 Advanced SIMD, part of the baseline): 4 FP32 or int32 lanes.

#include <cstdint>

#include "qcodec/config.hpp"
#include "qcodec/core/bit_packing.hpp"
#include "qcodec/core/simd/backend.hpp"

#if QCODEC_USE_NEON
#include <arm_neon.h>

namespace qcodec::inline QCODEC_ABI::targets::neon {

struct backend {
  static constexpr index_t width = 4;
  using float_vector = float32x4_t;
  using int_vector = int32x4_t;

  static float_vector float_zero() { return vdupq_n_f32(0.0f); }
  static float_vector load(const float* x) { return vld1q_f32(x); }
  static void store(float* out, float_vector v) { vst1q_f32(out, v); }
  static float_vector splat(float s) { return vdupq_n_f32(s); }
  static float_vector add(float_vector a, float_vector b) { return vaddq_f32(a, b); }
  static float_vector multiply(float_vector v, float s) { return vmulq_n_f32(v, s); }
  static float_vector fmadd(float_vector a, float_vector b, float_vector c) { return vfmaq_f32(c, a, b); }
  static float reduce(float_vector v) { return vaddvq_f32(v); }

  static int_vector int_zero() { return vdupq_n_s32(0); }
  static int_vector int_splat(int n) { return vdupq_n_s32(n); }
  static int_vector int_add(int_vector a, int_vector b) { return vaddq_s32(a, b); }
  static int_vector int_sub(int_vector a, int_vector b) { return vsubq_s32(a, b); }
  static int_vector int_multiply(int_vector a, int_vector b) { return vmulq_s32(a, b); }
  static int_vector load_ints(const std::int32_t* p) { return vld1q_s32(p); }
  static float_vector to_float(int_vector v) { return vcvtq_f32_s32(v); }
  template <int Bits>
  static int_vector load_codes(const std::uint8_t* row, index_t c) {
    std::uint32_t word = 0;
    if constexpr (Bits == 8) {
      __builtin_memcpy(&word, row + c, 4);
    } else {
      std::uint16_t pair;
      __builtin_memcpy(&pair, row + c / 2, 2);
      // nibbles k of the two bytes -> bytes k (low nibble = even column)
      word = (pair & 0x000Fu) | (pair & 0x00F0u) << 4 | (pair & 0x0F00u) << 8 | (pair & 0xF000u) << 12;
    }
    const uint8x8_t bytes = vreinterpret_u8_u32(vdup_n_u32(word));
    return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(bytes))));
  }
};
static_assert(simd::backend<backend>);

}  // namespace qcodec::inline QCODEC_ABI::targets::neon
#endif
