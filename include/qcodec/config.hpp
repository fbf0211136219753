#pragma once
/// Version, feature detection and configuration macros of qcodec.
///
/// Every QCODEC_* feature macro is always defined to 0 or 1 and may be set by the user
/// (e.g. -DQCODEC_USE_AVX512=0) before the first qcodec include.

#define QCODEC_VERSION_MAJOR 0
#define QCODEC_VERSION_MINOR 1
#define QCODEC_VERSION_PATCH 0

// SIMD targets compiled into every translation unit (core/simd/target.hpp): each target's
// kernels are compiled with that target's instruction set (function attributes), whatever
// the flags of the translation unit, and one is chosen at run time by CPUID. Set a macro to
// 0 to leave a target out (QCODEC_SIMD=none in CMake leaves out all but scalar). nvcc's host
// pass compiles the scalar target only.
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(__CUDACC__)
#  define QCODEC_X86_TARGETS 1
#else
#  define QCODEC_X86_TARGETS 0
#endif
#ifndef QCODEC_USE_AVX2
#  define QCODEC_USE_AVX2 QCODEC_X86_TARGETS
#endif
#ifndef QCODEC_USE_AVX512
#  define QCODEC_USE_AVX512 QCODEC_X86_TARGETS
#endif
#ifndef QCODEC_USE_NEON
#  if defined(__aarch64__) && defined(__ARM_NEON) && !defined(__CUDACC__)
#    define QCODEC_USE_NEON 1
#  else
#    define QCODEC_USE_NEON 0
#  endif
#endif

// The ABI namespace: everything of qcodec whose code depends on the compiler flags lives in
// the inline namespace qcodec::QCODEC_ABI, named after the translation unit's baseline
// instruction set and the targets compiled in. Two translation units built with different
// flags therefore never share a symbol with different bodies (the one-definition rule), and
// passing a qcodec object between them fails at link time instead of running the wrong code.
// qcodec::error stays outside, so an exception is caught whatever flags threw it.
#define QCODEC_ISA_BIT(feature) QCODEC_ISA_##feature
#if defined(__SSE4_2__)
#  define QCODEC_ISA_SSE42 1
#else
#  define QCODEC_ISA_SSE42 0
#endif
#if defined(__AVX__)
#  define QCODEC_ISA_AVX 1
#else
#  define QCODEC_ISA_AVX 0
#endif
#if defined(__AVX2__) && defined(__FMA__)
#  define QCODEC_ISA_AVX2 1
#else
#  define QCODEC_ISA_AVX2 0
#endif
#if defined(__F16C__)
#  define QCODEC_ISA_F16C 1
#else
#  define QCODEC_ISA_F16C 0
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#  define QCODEC_ISA_AVX512 1
#else
#  define QCODEC_ISA_AVX512 0
#endif
#if defined(__AVX512VNNI__) || defined(__AVX512VBMI__) || defined(__AVX512BF16__) || defined(__AVX512FP16__)
#  define QCODEC_ISA_AVX512X 1
#else
#  define QCODEC_ISA_AVX512X 0
#endif
#if defined(__ARM_FEATURE_DOTPROD) || defined(__ARM_FEATURE_SVE) || defined(__ARM_FEATURE_FP16_VECTOR_ARITHMETIC)
#  define QCODEC_ISA_ARMX 1
#else
#  define QCODEC_ISA_ARMX 0
#endif
#define QCODEC_ABI_JOIN(a, b, c, d, e, f, g, h, i, j) abi_v##a##b##c##d##e##f##_t##g##h##i##_##j
#define QCODEC_ABI_NAME(...) QCODEC_ABI_JOIN(__VA_ARGS__)
#ifndef QCODEC_ABI
#  define QCODEC_ABI                                                                              \
    QCODEC_ABI_NAME(QCODEC_ISA_SSE42, QCODEC_ISA_AVX, QCODEC_ISA_AVX2, QCODEC_ISA_F16C,            \
                    QCODEC_ISA_AVX512, QCODEC_ISA_AVX512X, QCODEC_USE_AVX2, QCODEC_USE_AVX512,    \
                    QCODEC_USE_NEON, QCODEC_ISA_ARMX)
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
