#pragma once
// The codec lists the per-codec tests run over. By default every codec of the library
// (all_codecs, linear_codecs). Built with QCODEC_TEST_COVERING_CODECS=1 (CMake
// -DQCODEC_TEST_CODECS=covering: the sanitizer and AArch64 variants of scripts/test.sh),
// the 48 linear variants shrink to 12 that still hold every bit width with every
// granularity, and each bit width with each of the four scale-type x symmetry pairs: the
// variants share every line of code but their template arguments, so those variants see each
// code path at a quarter of the compile time. The splits keep one base per family with a
// device layout; every other family is kept whole.

#include <tuple>
#include <type_traits>

#include <qcodec/codecs/codec_list.hpp>

#ifndef QCODEC_TEST_COVERING_CODECS
#define QCODEC_TEST_COVERING_CODECS 0
#endif

namespace qcodec::test {

#if QCODEC_TEST_COVERING_CODECS
using tested_linear_codecs = std::tuple<
    linear<8, per_tensor, half>, linear<8>, linear<8, per_group<32>, float, symmetry::asymmetric>,
    linear<8, per_group<64>, half, symmetry::asymmetric>, linear<8, per_group<128>>,
    linear<8, per_group<256>, half>, linear<4, per_tensor, float, symmetry::asymmetric>,
    linear<4, per_row, half, symmetry::asymmetric>, linear<4, per_group<32>>,
    linear<4, per_group<64>, half>, linear<4, per_group<128>, float, symmetry::asymmetric>,
    linear<4, per_group<256>, half, symmetry::asymmetric>>;
/// The split over the grid repeats the split's code (the same for every base) and the grid's
/// encoder (tested in grid_codecs) at the compile time of a whole grid: the covering variants
/// keep the splits over the bases with a device layout.
using tested_outlier_codecs = device_outlier_codecs;
#else
using tested_linear_codecs = linear_codecs;
using tested_outlier_codecs = outlier_codecs;
#endif

/// all_codecs with the linear and split families as tested_linear_codecs and
/// tested_outlier_codecs (the same lists by default).
using tested_codecs = decltype(std::tuple_cat(tested_linear_codecs{}, qins_codecs{}, grid_codecs{},
                                              tested_outlier_codecs{}, two_level_codecs{}, rotated_codecs{}));
static_assert(QCODEC_TEST_COVERING_CODECS || std::is_same_v<tested_codecs, all_codecs>,
              "tests/tested_codecs.hpp: all_codecs gained a family the tests do not list");

}  // namespace qcodec::test
