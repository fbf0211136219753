#pragma once
/// The sparse product of dual_stream_linear: y(b, r) <- fma(alpha, (x · Oᵀ)(b, r), y(b, r)) + bias[r]
/// for the rows [first, last) of a tile, O the ortho stream (codecs/ortho_stream.hpp).
///
/// Specification, the same bits on every target: each (b, r) sum runs over row r's entries in
/// increasing column order, sum = fma(value_e, x(b, c_e), sum) from 0 (ortho_stream::dot_row),
/// then y(b, r) = fma(alpha, sum, y(b, r)), plus bias[r] where there is a bias. The kernels
/// (ops/ortho_kernels-inl.hpp, one per SIMD target) only choose which sums advance together:
/// activation rows in the lanes of a vector, and four output rows as independent chains.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "qcodec/config.hpp"
#include "qcodec/core/index.hpp"
#include "qcodec/core/simd.hpp"

namespace qcodec::inline QCODEC_ABI {

/// Activation rows one pass of the kernel serves at batch > 1: the widest target's vector.
inline constexpr index_t ortho_chunk_rows = 16;

/// What the kernels read and write. Activations `x`: at batch 1 the activation row itself;
/// at batch > 1 xᵀ in slabs of ortho_chunk_rows activation rows, x(b, c) at
/// x[(b / 16) * cols * 16 + c * 16 + b % 16], the last slab padded with finite values (whole
/// vectors are read, the padding's lanes discarded).
template <class Column>
struct ortho_product {
  const std::uint32_t* row_offsets;  // rows + 1: the entries of row r are [row_offsets[r], row_offsets[r + 1])
  const Column* columns;             // each entry's column, increasing within a row
  const float* values;               // each entry's decoded value
  const float* x;
  index_t cols;
  index_t batch;
  float alpha;
  const float* bias;  // out_features values, or nullptr
  float* y;           // y(b, r) = y[b * y_stride + r]
  index_t y_stride;
};

}  // namespace qcodec::inline QCODEC_ABI

#define QCODEC_KERNELS "qcodec/ops/ortho_kernels-inl.hpp"
#include "qcodec/core/simd/foreach_target.hpp"
