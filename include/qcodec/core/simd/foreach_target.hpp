// Includes the kernel file named by QCODEC_KERNELS once per compiled target, inside
#include "qcodec/config.hpp"

// namespace qcodec::targets::<target> and that target's region (core/simd/regions.hpp), with
// QCODEC_TARGET_ID set to the target's QCODEC_TARGET_ID_* value. No include guard: every
// kernel file comes through here. A kernel file includes nothing (its includer does) and
// refers to its target's vector operations as `backend` and to its target as `tag`.

#ifndef QCODEC_KERNELS
#  error "qcodec: define QCODEC_KERNELS as the kernel file to include per target"
#endif

#define QCODEC_TARGET_ID QCODEC_TARGET_ID_SCALAR
namespace qcodec::inline QCODEC_ABI::targets::scalar {
#include QCODEC_KERNELS
}  // namespace qcodec::inline QCODEC_ABI::targets::scalar
#undef QCODEC_TARGET_ID

#if QCODEC_USE_AVX2
#  define QCODEC_TARGET_ID QCODEC_TARGET_ID_AVX2
QCODEC_BEGIN_AVX2
namespace qcodec::inline QCODEC_ABI::targets::avx2 {
#  include QCODEC_KERNELS
}  // namespace qcodec::inline QCODEC_ABI::targets::avx2
QCODEC_END_TARGET
#  undef QCODEC_TARGET_ID
#endif

#if QCODEC_USE_AVX512
#  define QCODEC_TARGET_ID QCODEC_TARGET_ID_AVX512
QCODEC_BEGIN_AVX512
namespace qcodec::inline QCODEC_ABI::targets::avx512 {
#  include QCODEC_KERNELS
}  // namespace qcodec::inline QCODEC_ABI::targets::avx512
QCODEC_END_TARGET
#  undef QCODEC_TARGET_ID
#endif

#if QCODEC_USE_NEON
#  define QCODEC_TARGET_ID QCODEC_TARGET_ID_NEON
namespace qcodec::inline QCODEC_ABI::targets::neon {
#  include QCODEC_KERNELS
}  // namespace qcodec::inline QCODEC_ABI::targets::neon
#  undef QCODEC_TARGET_ID
#endif

#undef QCODEC_KERNELS
