#pragma once
/// Activation and output element types of the device ops: float, __half, __nv_bfloat16.
/// Conversions round to nearest even, like the host's Eigen::half.

#include <string_view>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <library_types.h>

#include "qcodec/config.hpp"

namespace qcodec::inline QCODEC_ABI::cuda {

/// Conversions and cuBLAS type of a device element type.
template <class T>
struct element {
  static_assert(sizeof(T) == 0, "qcodec::cuda: element types are float, __half and __nv_bfloat16");
};

template <>
struct element<float> {
  static constexpr cudaDataType_t data_type = CUDA_R_32F;
  static constexpr std::string_view name = "f32";
  QCODEC_HD static float to_float(float v) { return v; }
  QCODEC_HD static float from_float(float v) { return v; }
};

template <>
struct element<__half> {
  static constexpr cudaDataType_t data_type = CUDA_R_16F;
  static constexpr std::string_view name = "f16";
  QCODEC_HD static float to_float(__half v) { return __half2float(v); }
  QCODEC_HD static __half from_float(float v) { return __float2half_rn(v); }
};

template <>
struct element<__nv_bfloat16> {
  static constexpr cudaDataType_t data_type = CUDA_R_16BF;
  static constexpr std::string_view name = "bf16";
  QCODEC_HD static float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
  QCODEC_HD static __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
};

/// FP16 stored as its IEEE bits (host Eigen::half and device __half share the layout).
QCODEC_HD float half_bits_to_float(unsigned short bits) {
  __half_raw raw;
  raw.x = bits;
  return __half2float(__half(raw));
}

}  // namespace qcodec::inline QCODEC_ABI::cuda
