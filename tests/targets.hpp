#pragma once
// Runs a test body once per SIMD target of this build that the CPU supports, through the
// library's own dispatch (simd::scoped_target_limit), so every kernel is checked the way an
// engine calls it.

#include <catch2/catch.hpp>

#include <qcodec/core/simd.hpp>

namespace qcodec::test {

template <class Body>
void for_each_target(Body&& body) {
  for (const simd::target t : simd::supported_targets()) {
    const simd::scoped_target_limit limit(t);
    INFO("SIMD target " << simd::target_name(t));
    REQUIRE(simd::active_target() == t);
    body(t);
  }
}

}  // namespace qcodec::test
