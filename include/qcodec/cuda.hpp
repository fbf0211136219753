#pragma once
/// CUDA backend of qcodec: device buffers, decode kernels, the fused decode-GEMV, the
/// decode-then-cuBLAS GEMM and the device dual_stream_linear.
///
/// Only for translation units compiled by nvcc (link qcodec::cuda); host builds include
/// <qcodec/qcodec.hpp> and never see a CUDA header.

#if !defined(__CUDACC__)
#  error "qcodec/cuda.hpp needs a translation unit compiled by nvcc (a .cu file linked to qcodec::cuda); host code includes qcodec/qcodec.hpp"
#endif

#include "qcodec/cuda/error.cuh"
#include "qcodec/cuda/buffer.cuh"
#include "qcodec/cuda/launch_geometry.cuh"
#include "qcodec/cuda/element.cuh"
#include "qcodec/cuda/device_codec.cuh"
#include "qcodec/cuda/kernels.cuh"
#include "qcodec/cuda/dual_stream_linear.cuh"
