#pragma once
/// SIMD targets and run-time dispatch.
///
/// Each target is a namespace qcodec::targets::<name> holding its generic vector operations
/// (`backend`, core/simd/<name>.hpp, the simd_backend concept) and a copy of every kernel,
/// compiled for that target's instruction set whatever the translation unit's flags: the
/// kernel files (`*-inl.hpp`) are included once per target by core/simd/foreach_target.hpp
/// inside a region that gives each function defined there the target's attributes (GCC's
/// `#pragma GCC target`, clang's `#pragma clang attribute`). A kernel is called with its
/// target's `tag` and found by argument-dependent lookup:
///
///     simd::dispatch([&](auto target) { linear_decode_rows<Codec>(target, s, first, last, out); });
///
/// calls the kernel of the best target the CPU supports (CPUID, once), or of a lower one
/// when the environment variable QCODEC_TARGET or simd::set_target_limit caps it (tests
/// run every kernel this way). AVX-512 means F, BW, VL, DQ, VNNI and VBMI together (Ice
/// Lake, Zen 4 and later); a CPU with AVX-512 but without VNNI or VBMI runs the AVX2 kernels.

#include <array>
#include <atomic>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"

namespace qcodec::inline QCODEC_ABI::simd {

enum class target { scalar, avx2, avx512, neon };

constexpr std::string_view target_name(target t) {
  switch (t) {
    case target::avx2: return "avx2";
    case target::avx512: return "avx512";
    case target::neon: return "neon";
    default: return "scalar";
  }
}

/// The targets compiled into this translation unit, lowest first.
inline constexpr auto compiled_targets = std::to_array<target>({
    target::scalar,
#if QCODEC_USE_AVX2
    target::avx2,
#endif
#if QCODEC_USE_AVX512
    target::avx512,
#endif
#if QCODEC_USE_NEON
    target::neon,
#endif
});

/// Whether this CPU (and its operating system) runs code of target `t`.
inline bool cpu_supports(target t) {
  switch (t) {
#if QCODEC_X86_TARGETS
    case target::avx2:
#  if defined(__clang__)  // clang 14's __builtin_cpu_supports lacks "f16c"; every AVX2 CPU has it
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#  else
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#  endif
    case target::avx512:
      return cpu_supports(target::avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni") &&
             __builtin_cpu_supports("avx512vbmi");
#endif
#if defined(__aarch64__)
    case target::neon: return true;  // part of the AArch64 baseline
#endif
    case target::scalar: return true;
    default: return false;
  }
}

/// The compiled targets this CPU supports, lowest first (scalar is always one).
inline std::vector<target> supported_targets() {
  std::vector<target> found;
  for (target t : compiled_targets)
    if (cpu_supports(t)) found.push_back(t);
  return found;
}

namespace detail {

/// Position in the chain of an architecture: scalar < avx2 < avx512, scalar < neon.
constexpr int target_rank(target t) {
  return t == target::avx512 ? 2 : t == target::scalar ? 0 : 1;
}

/// The best supported target of rank at most `limit`'s.
inline target resolve(target limit) {
  target chosen = target::scalar;
  for (target t : supported_targets())
    if (target_rank(t) <= target_rank(limit)) chosen = t;
  return chosen;
}

/// The target named by QCODEC_TARGET, or the last compiled one when it is unset.
inline target limit_from_environment() {
  const char* name = std::getenv("QCODEC_TARGET");
  if (name == nullptr || *name == '\0') return compiled_targets.back();
  for (target t : {target::scalar, target::avx2, target::avx512, target::neon})
    if (target_name(t) == name) return t;
  qcodec::detail::fail("QCODEC_TARGET='", name, "' names no SIMD target (scalar, avx2, avx512, neon)");
}

/// The active target, resolved whenever the limit changes.
inline std::atomic<target>& active() {
  static std::atomic<target> chosen{resolve(limit_from_environment())};
  return chosen;
}

}  // namespace detail

/// The best compiled target the CPU supports, ignoring any limit.
inline target best_target() {
  static const target best = supported_targets().back();
  return best;
}

/// The target dispatch() runs: the best supported one at or below the limit.
inline target active_target() { return detail::active().load(std::memory_order_relaxed); }

/// Caps the targets dispatch() may run, process-wide (QCODEC_TARGET sets the initial cap).
inline void set_target_limit(target t) { detail::active().store(detail::resolve(t), std::memory_order_relaxed); }

/// Sets the limit for its lifetime and restores the previous one (tests, one thread).
class scoped_target_limit {
 public:
  explicit scoped_target_limit(target t) : previous_(detail::active().exchange(detail::resolve(t))) {}
  scoped_target_limit(const scoped_target_limit&) = delete;
  scoped_target_limit& operator=(const scoped_target_limit&) = delete;
  ~scoped_target_limit() { detail::active().store(previous_); }

 private:
  target previous_;
};

}  // namespace qcodec::inline QCODEC_ABI::simd

namespace qcodec::inline QCODEC_ABI::targets {
namespace scalar {
struct tag {
  static constexpr simd::target id = simd::target::scalar;
};
}  // namespace scalar
namespace avx2 {
struct tag {
  static constexpr simd::target id = simd::target::avx2;
};
}  // namespace avx2
namespace avx512 {
struct tag {
  static constexpr simd::target id = simd::target::avx512;
};
}  // namespace avx512
namespace neon {
struct tag {
  static constexpr simd::target id = simd::target::neon;
};
}  // namespace neon
}  // namespace qcodec::inline QCODEC_ABI::targets

namespace qcodec::inline QCODEC_ABI::simd {

/// Returns f(tag) with the tag of target `t`, which must be compiled and supported.
template <class F>
decltype(auto) dispatch(target t, F&& f) {
  switch (t) {
#if QCODEC_USE_AVX512
    case target::avx512: return f(targets::avx512::tag{});
#endif
#if QCODEC_USE_AVX2
    case target::avx2: return f(targets::avx2::tag{});
#endif
#if QCODEC_USE_NEON
    case target::neon: return f(targets::neon::tag{});
#endif
    default: return f(targets::scalar::tag{});
  }
}

/// Returns f(tag) with the tag of the active target.
template <class F>
decltype(auto) dispatch(F&& f) {
  return dispatch(active_target(), static_cast<F&&>(f));
}

}  // namespace qcodec::inline QCODEC_ABI::simd
