#pragma once
/// Lists of every codec variant, as std::tuple types: drive test loops, the demo table and
/// run-time dispatch by name from one place, so a new variant is covered everywhere.

#include <tuple>

#include "qcodec/codecs/grid.hpp"
#include "qcodec/codecs/linear.hpp"
#include "qcodec/codecs/outlier_split.hpp"
#include "qcodec/codecs/qins.hpp"
#include "qcodec/codecs/rotated.hpp"
#include "qcodec/codecs/two_level.hpp"
#include "qcodec/config.hpp"

namespace qcodec::inline QCODEC_ABI {

namespace detail {

template <int Bits, class Granularity>
using linear_scale_and_symmetry_variants =
    std::tuple<linear<Bits, Granularity, float, symmetry::symmetric>,
               linear<Bits, Granularity, half, symmetry::symmetric>,
               linear<Bits, Granularity, float, symmetry::asymmetric>,
               linear<Bits, Granularity, half, symmetry::asymmetric>>;

template <int Bits>
using linear_variants_of_bits = decltype(std::tuple_cat(
    linear_scale_and_symmetry_variants<Bits, per_tensor>{},
    linear_scale_and_symmetry_variants<Bits, per_row>{},
    linear_scale_and_symmetry_variants<Bits, per_group<32>>{},
    linear_scale_and_symmetry_variants<Bits, per_group<64>>{},
    linear_scale_and_symmetry_variants<Bits, per_group<128>>{},
    linear_scale_and_symmetry_variants<Bits, per_group<256>>{}));

}  // namespace detail

/// Every linear variant: INT8 and INT4 x {tensor, row, g32, g64, g128, g256} x
/// {FP32, FP16 scales} x {symmetric, asymmetric}.
using linear_codecs = decltype(std::tuple_cat(detail::linear_variants_of_bits<8>{},
                                              detail::linear_variants_of_bits<4>{}));

/// The QINS (log-inverse) codecs, 8 and 4 bits.
using qins_codecs = std::tuple<qins<8>, qins<4>>;

/// The non-uniform grid codecs. One FP16 scale per block: 4 and 3 bits x blocks of 32, and
/// 4 bits x 64 per tensor, fixed or per-tensor levels. Two-level scales (6-bit sub-scales per
/// block of 16 under an FP16 scale per 256 columns, the ladder's rungs): 3, 4 and 5 bits, 4 and
/// 5 bits with per-tensor levels, 6 bits with 8-bit sub-scales per tensor; two tables per
/// block: 4 bits x 16 (4.5 bpw), 4 bits x 32 under super-blocks of 512 (the 4.25-bpw rung on
/// rows of 512 columns or more) and, with 5-bit sub-scales, under super-blocks of 256 (4.25 bpw
/// down to rows of 256 columns).
/// Their measured SNR and bpw: bench/RESULTS.md.
using grid_codecs =
    std::tuple<grid<4, 32>, grid<3, 32>, grid<4, 32, grid_levels::per_tensor>,
               grid<4, 64, grid_levels::per_tensor>, grid<3, 32, grid_levels::per_tensor>,
               grid<3, 16, grid_levels::fixed, 6>, grid<4, 16, grid_levels::fixed, 6>,
               grid<5, 16, grid_levels::fixed, 6>, grid<4, 16, grid_levels::per_tensor, 6>,
               grid<5, 16, grid_levels::per_tensor, 6>, grid<6, 16, grid_levels::per_tensor, 8>,
               grid<4, 16, grid_levels::fixed, 6, 256, 2>, grid<4, 32, grid_levels::fixed, 6, 512, 2>,
               grid<4, 32, grid_levels::fixed, 5, 256, 2>>;

/// The outlier split over one base per family (the split is a wrapper: its own code is the
/// same for every base): INT8 per-row, INT4 per-group, QINS 8 and 4, whose bases have a CUDA
/// device layout, and the 4.25-bpw grid (on the heavy-tailed Pareto front: bench/RESULTS.md,
/// "outlier split budget").
using device_outlier_codecs = std::tuple<outlier_split<linear<8>>, outlier_split<linear<4, per_group<128>>>,
                                         outlier_split<qins<8>>, outlier_split<qins<4>>>;
using outlier_codecs = decltype(std::tuple_cat(
    device_outlier_codecs{}, std::tuple<outlier_split<grid<4, 32, grid_levels::fixed, 5, 256, 2>>>{}));

/// The two-level-scale ladder: symmetric sub-blocks of 16 with 6-bit sub-scales at every
/// width 2..8, INT6 with 8-bit sub-scales (the 6.6-bpw rung), and asymmetric sub-blocks of 32
/// for widths 3..6 and 8 (their measured SNR and bpw: bench/RESULTS.md).
using two_level_codecs =
    std::tuple<two_level<2, 16>, two_level<3, 16>, two_level<4, 16>, two_level<5, 16>,
               two_level<6, 16>, two_level<6, 16, symmetry::symmetric, 8>, two_level<7, 16>,
               two_level<8, 16>, two_level<3, 32, symmetry::asymmetric>,
               two_level<4, 32, symmetry::asymmetric>, two_level<5, 32, symmetry::asymmetric>,
               two_level<6, 32, symmetry::asymmetric>, two_level<8, 32, symmetry::asymmetric>>;

/// The Hadamard-rotated codecs (64-column blocks) over the ladder's 4- and 3-bit rungs and one
/// one-level INT4 base, whose integer domain the rotation keeps.
using rotated_codecs =
    std::tuple<rotated<two_level<4, 16>>, rotated<grid<4, 16, grid_levels::fixed, 6>>,
               rotated<grid<3, 16, grid_levels::fixed, 6>>, rotated<linear<4, per_group<32>, half>>>;

/// Every codec of the library (linear, QINS, grid, outlier split over each base, two-level,
/// rotated).
using all_codecs = decltype(std::tuple_cat(linear_codecs{}, qins_codecs{}, grid_codecs{}, outlier_codecs{},
                                           two_level_codecs{}, rotated_codecs{}));

/// The codecs with a CUDA device layout (cuda/device_codec.cuh): all but the two-level, grid
/// and rotated ones and the split over a grid.
using device_codecs = decltype(std::tuple_cat(linear_codecs{}, qins_codecs{}, device_outlier_codecs{}));

/// A few codecs spanning every layout (bits, granularity, scale type, symmetry) for tests
/// whose cost grows with the list, such as the linear op's.
using representative_codecs =
    std::tuple<linear<8>, linear<8, per_tensor>, linear<8, per_group<128>, half, symmetry::asymmetric>,
               linear<4, per_group<128>>, linear<4, per_group<32>, float, symmetry::asymmetric>,
               linear<4, per_row, half>, qins<8>, qins<4>, grid<4, 32>, two_level<3, 16>,
               two_level<5, 32, symmetry::asymmetric>>;

/// Calls `f(Codec{})` for every codec type of the tuple `List`, in order.
template <class List, class F>
void for_each_codec(F&& f) {
  [&]<class... Codecs>(std::tuple<Codecs...>*) { (f(Codecs{}), ...); }(static_cast<List*>(nullptr));
}

}  // namespace qcodec::inline QCODEC_ABI
