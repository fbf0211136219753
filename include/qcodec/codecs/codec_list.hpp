#pragma once
/// Lists of every codec variant, as std::tuple types: drive test loops, the demo table and
/// run-time dispatch by name from one place, so a new variant is covered everywhere.

#include <tuple>

#include "qcodec/codecs/linear.hpp"
#include "qcodec/codecs/outlier_split.hpp"
#include "qcodec/codecs/qins.hpp"
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

/// The outlier split over one base per family: INT8 per-row, INT4 per-group, QINS 8 and 4
/// (the split is a wrapper: its own code is the same for every base).
using outlier_codecs =
    std::tuple<outlier_split<linear<8>>, outlier_split<linear<4, per_group<128>>>,
               outlier_split<qins<8>>, outlier_split<qins<4>>>;

/// Every codec of the library (linear, QINS, outlier split over each base).
using all_codecs = decltype(std::tuple_cat(linear_codecs{}, qins_codecs{}, outlier_codecs{}));

/// A few codecs spanning every layout (bits, granularity, scale type, symmetry) for tests
/// whose cost grows with the list, such as the linear op's.
using representative_codecs =
    std::tuple<linear<8>, linear<8, per_tensor>, linear<8, per_group<128>, half, symmetry::asymmetric>,
               linear<4, per_group<128>>, linear<4, per_group<32>, float, symmetry::asymmetric>,
               linear<4, per_row, half>, qins<8>, qins<4>>;

/// Calls `f(Codec{})` for every codec type of the tuple `List`, in order.
template <class List, class F>
void for_each_codec(F&& f) {
  [&]<class... Codecs>(std::tuple<Codecs...>*) { (f(Codecs{}), ...); }(static_cast<List*>(nullptr));
}

}  // namespace qcodec::inline QCODEC_ABI
