#pragma once
/// The FP32 products of dual_stream_linear whose SIMD lanes are activation rows, over
/// activations transposed in slabs (to_slabs): the dense product of a decoded weight tile
/// (the decode-then-GEMM path) and the sparse product of the ortho stream. Each output is one
/// FMA chain in a stated order, so the bits are the same on every target (scalar, AVX2,
/// AVX-512, NEON: ops/slab_kernels-inl.hpp) and for any tiling or thread count.
///
/// Slabs: slab j holds activation rows slab_rows·j .. slab_rows·j + slab_rows - 1, column c's
/// values contiguous, x(b, c) = slabs[(b / slab_rows) · cols · slab_rows + c · slab_rows +
/// b % slab_rows]; the last slab's rows past the batch are zero. A kernel pass serves one
/// slab: one vector load per column (the widest target's vector is slab_rows floats), the
/// weight broadcast.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "qcodec/config.hpp"
#include "qcodec/core/index.hpp"
#include "qcodec/core/matrix.hpp"
#include "qcodec/core/simd.hpp"
#include "qcodec/ops/aligned_buffer.hpp"

namespace qcodec::inline QCODEC_ABI {

/// Activation rows of one slab: the widest target's vector.
inline constexpr index_t slab_rows = 16;

/// Writes x (batch x cols) into `slabs` in the slab layout above.
inline void to_slabs(const matrix_view& x, detail::aligned_buffer& slabs) {
  const index_t batch = x.rows(), cols = x.cols();
  const index_t count = (batch + slab_rows - 1) / slab_rows;
  slabs.reserve(static_cast<std::size_t>(count * cols * slab_rows));
  for (index_t j = 0; j < count; ++j) {
    float* slab = slabs.data() + j * cols * slab_rows;
    const index_t rows = std::min(slab_rows, batch - j * slab_rows);
    for (index_t c = 0; c < cols; ++c) {
      for (index_t i = 0; i < rows; ++i) slab[c * slab_rows + i] = x(j * slab_rows + i, c);
      for (index_t i = rows; i < slab_rows; ++i) slab[c * slab_rows + i] = 0;
    }
  }
}

/// The dense product of a weight tile: y(b, first + i) = sum_k w[i · cols + k] · x(b, k) for
/// i < rows and every activation row b, each sum one FMA chain in increasing k from 0,
/// sum = fma(w, x, sum). Its error is the FP32 dot product's: at most cols · 2^-24 (first
/// order) of sum_k |w x| per output.
struct tile_product {
  const float* slabs;  // x in slabs (to_slabs)
  index_t cols, batch;
  const float* w;  // the decoded tile, row-major rows x cols
  index_t rows;
  float* y;  // y(b, r) = y[b * y_stride + r]
  index_t y_stride, first;
  float* partial;  // workspace of rows · slab_rows floats (the sums between column blocks)
};

/// The sparse product of the ortho stream O (codecs/ortho_stream.hpp) on output rows
/// [first, last): y(b, r) = fma(alpha, sum, y(b, r)) + bias[r] (the bias where there is one),
/// each (b, r) sum over row r's entries in increasing column order, sum = fma(value_e,
/// x(b, c_e), sum) from 0 (ortho_stream::dot_row). At batch 1 `x` is the activation row itself;
/// above, the slabs.
template <class Column>
struct ortho_product {
  const std::uint32_t* row_offsets;  // rows + 1: the entries of row r are [row_offsets[r], row_offsets[r + 1])
  const Column* columns;             // each entry's column, increasing within a row
  const float* values;               // each entry's decoded value
  const float* x;
  index_t cols, batch;
  float alpha;
  const float* bias;  // out_features values, or nullptr
  float* y;           // y(b, r) = y[b * y_stride + r]
  index_t y_stride;
};

}  // namespace qcodec::inline QCODEC_ABI

#define QCODEC_KERNELS "qcodec/ops/slab_kernels-inl.hpp"
#include "qcodec/core/simd/foreach_target.hpp"
