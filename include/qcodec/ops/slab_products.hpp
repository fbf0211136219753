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
#include <vector>

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

/// Output rows whose sums the sparse product carries together (independent FMA chains).
inline constexpr index_t ortho_group_rows = 8;

/// The ortho stream O (codecs/ortho_stream.hpp) laid out for the sparse product: its rows in
/// groups of ortho_group_rows (the last group's rows past `rows` are empty), a group's entries
/// interleaved (entry k of each of its rows, then k + 1) and every row padded to the group's
/// longest with entries of value 0 at the row's last column (column 0 for an empty row), so
/// the group's chains advance together without a branch. A padding entry adds 0 · x(b, c):
/// for finite activations it leaves every sum's value unchanged (a sum of -0 may become +0).
template <class Column>
struct ortho_groups {
  using column_type = Column;
  index_t rows = 0;
  std::vector<std::size_t> offsets{0};  // groups + 1: group g's entries are [offsets[g], offsets[g + 1])
  std::vector<Column> columns;
  std::vector<float> values;

  ortho_groups() = default;
  /// From the stream's CSR arrays: row r's entries are [row_offsets[r], row_offsets[r + 1]),
  /// their columns increasing, `values` decoded.
  ortho_groups(index_t rows, const std::uint32_t* row_offsets, const Column* row_columns, const float* row_values)
      : rows(rows) {
    constexpr index_t g_rows = ortho_group_rows;
    for (index_t r0 = 0; r0 < rows; r0 += g_rows) {
      const index_t held = std::min(g_rows, rows - r0);
      std::uint32_t longest = 0;
      for (index_t i = 0; i < held; ++i) longest = std::max(longest, row_offsets[r0 + i + 1] - row_offsets[r0 + i]);
      for (std::uint32_t k = 0; k < longest; ++k)
        for (index_t i = 0; i < g_rows; ++i) {
          const std::uint32_t first = i < held ? row_offsets[r0 + i] : 0, end = i < held ? row_offsets[r0 + i + 1] : 0;
          const bool entry = first + k < end;
          columns.push_back(entry ? row_columns[first + k] : first < end ? row_columns[end - 1] : Column{0});
          values.push_back(entry ? row_values[first + k] : 0.0f);
        }
      offsets.push_back(columns.size());
    }
  }
  index_t groups() const { return static_cast<index_t>(offsets.size()) - 1; }
};

/// The sparse product of the ortho stream O on the output rows of groups [first, last) of
/// `groups`: y(b, r) = fma(alpha, sum, y(b, r)) + bias[r] (the bias where there is one), each
/// (b, r) sum over row r's entries in increasing column order, sum = fma(value_e, x(b, c_e),
/// sum) from 0 (ortho_stream::dot_row). At batch 1 `x` is the activation row itself; above,
/// the slabs. The activations must be finite (ortho_groups: the padding).
template <class Column>
struct ortho_product {
  const ortho_groups<Column>* groups;
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
