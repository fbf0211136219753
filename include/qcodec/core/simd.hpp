#pragma once
/// Every SIMD target of this translation unit and the run-time dispatch between them
/// (core/simd/target.hpp). Kernel files include this before they are expanded per target.

#include "qcodec/core/simd/avx2.hpp"
#include "qcodec/core/simd/avx512.hpp"
#include "qcodec/core/simd/neon.hpp"
#include "qcodec/core/simd/prefetch.hpp"
#include "qcodec/core/simd/regions.hpp"
#include "qcodec/core/simd/scalar.hpp"
#include "qcodec/core/simd/target.hpp"
