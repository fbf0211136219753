#pragma once
/// Checked CUDA and cuBLAS calls: every failure becomes a qcodec::error naming the call and
/// carrying the CUDA error string.

#include <string>
#include <string_view>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"

namespace qcodec::inline QCODEC_ABI::cuda {

/// Throws qcodec::error naming `what` unless `status` is cudaSuccess.
inline void check(cudaError_t status, std::string_view what) {
  if (status != cudaSuccess)
    qcodec::detail::fail("CUDA: ", what, " failed: ", cudaGetErrorName(status), ": ",
                 cudaGetErrorString(status));
}

/// Throws qcodec::error naming `what` unless `status` is CUBLAS_STATUS_SUCCESS.
inline void check(cublasStatus_t status, std::string_view what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    qcodec::detail::fail("cuBLAS: ", what, " failed: ", cublasGetStatusName(status), ": ",
                 cublasGetStatusString(status));
}

/// Checks the launch of kernel `name` (bad configuration, missing device code); kernels
/// run asynchronously, so faults during execution surface at the next checked call.
inline void check_launch(std::string_view name) { check(cudaGetLastError(), name); }

/// Number of usable CUDA devices; 0 when there is no device or no driver (a CUDA failure here
/// is an answer, not an error).
/// `why_none`, when given, receives the reason for 0 (the CUDA error name and text), so that
/// a skip can tell a machine without a GPU from one whose driver is too old.
inline int device_count(std::string* why_none = nullptr) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    count = 0;
  }
  if (count == 0 && why_none)
    *why_none = status == cudaSuccess ? std::string("no device")
                                      : std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
  return count;
}

}  // namespace qcodec::inline QCODEC_ABI::cuda
