#pragma once
/// Target regions: every function defined between QCODEC_BEGIN_<TARGET> and QCODEC_END_TARGET
/// (templates and lambdas included) is compiled for that target's instruction set, on top of
/// the translation unit's own flags. Intrinsics of any target are declared by <immintrin.h>
/// in every translation unit (GCC and clang), so the regions need no -m flags.

#if defined(__clang__)
#  define QCODEC_BEGIN_AVX2 \
    _Pragma("clang attribute push(__attribute__((target(\"avx2,fma,f16c\"))), apply_to = function)")
#  define QCODEC_BEGIN_AVX512 \
    _Pragma("clang attribute push(__attribute__((target(\"avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi\"))), apply_to = function)")
#  define QCODEC_END_TARGET _Pragma("clang attribute pop")
#elif defined(__GNUC__)
#  define QCODEC_BEGIN_AVX2 _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,f16c\")")
#  define QCODEC_BEGIN_AVX512 \
    _Pragma("GCC push_options")  \
        _Pragma("GCC target(\"avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi\")")
#  define QCODEC_END_TARGET _Pragma("GCC pop_options")
#endif

/// Values of QCODEC_TARGET_ID inside a kernel file (core/simd/foreach_target.hpp), for the
/// few sections written per target.
#define QCODEC_TARGET_ID_SCALAR 0
#define QCODEC_TARGET_ID_AVX2 1
#define QCODEC_TARGET_ID_AVX512 2
#define QCODEC_TARGET_ID_NEON 3
