#pragma once
/// Version, feature detection and configuration macros of qcodec.
///
/// Every QCODEC_* feature macro is always defined to 0 or 1 and may be set by the user
/// (e.g. -DQCODEC_USE_AVX512=0) before the first qcodec include.

#define QCODEC_VERSION_MAJOR 0
#define QCODEC_VERSION_MINOR 1
#define QCODEC_VERSION_PATCH 0

// SIMD backends (one is chosen per translation unit, see core/simd.hpp).
#ifndef QCODEC_USE_AVX512
#  if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#    define QCODEC_USE_AVX512 1
#  else
#    define QCODEC_USE_AVX512 0
#  endif
#endif

#ifndef QCODEC_USE_AVX2
#  if defined(__AVX2__) && defined(__FMA__)
#    define QCODEC_USE_AVX2 1
#  else
#    define QCODEC_USE_AVX2 0
#  endif
#endif

// Threads: OpenMP when the translation unit is compiled with it.
#ifndef QCODEC_USE_OPENMP
#  if defined(_OPENMP)
#    define QCODEC_USE_OPENMP 1
#  else
#    define QCODEC_USE_OPENMP 0
#  endif
#endif

// CUDA: the device backend exists only in translation units compiled by nvcc.
#if defined(__CUDACC__)
#  define QCODEC_CUDA_COMPILER 1
#  define QCODEC_HOST_DEVICE __host__ __device__
#else
#  define QCODEC_CUDA_COMPILER 0
#  define QCODEC_HOST_DEVICE
#endif

/// Marks the per-element math shared by the scalar, SIMD and CUDA code.
#define QCODEC_HD QCODEC_HOST_DEVICE inline
