#pragma once
/// Software prefetch for loops that stream codes from DRAM.

#include <cstdint>

#include "qcodec/config.hpp"
#include "qcodec/core/index.hpp"

namespace qcodec::inline QCODEC_ABI::simd {

/// How long a loop streaming codes from DRAM spends on each cache line, which sets how it
/// prefetches (bench/history/cpu-linear-op-passes.md, "Prefetch by stream pace"). Without
/// hints, loops that spend long on each line leave the hardware prefetcher behind and wait on
/// DRAM.
///  - fast (a few cycles per line: integer passes of fewer than 4 dot_quads per step, e.g.
///    one activation row): into L1, 2 KiB ahead;
///  - slow (10 or more cycles per line: the QINS8 decode-dot, integer passes of 4 or more
///    dot_quads per step): into L2, 8 KiB ahead. There the L1 hint 2 KiB ahead measured 10%
///    (QINS8 batch 1) to 40% (INT8 batch 8) slower; the L2 hint cost the fast loops 15-25%.
enum class pace { fast, slow };

/// Hints the cache line a Pace-dependent distance past `p` (a hint: never faults).
template <pace Pace>
inline void prefetch_ahead(const void* p) {
  constexpr index_t distance = Pace == pace::fast ? 2048 : 8192;
  constexpr int locality = Pace == pace::fast ? 3 : 2;  // prefetcht0 : prefetcht1
  // Integer arithmetic: the address may lie past the end of the array.
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(p) + distance), 0, locality);
}

}  // namespace qcodec::inline QCODEC_ABI::simd
