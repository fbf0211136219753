#pragma once
/// Matrix types and input validation shared by every codec and op.

#include <cmath>
#include <cstddef>
#include <string_view>

#include <Eigen/Core>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/index.hpp"

namespace qcodec::inline QCODEC_ABI {

/// Row-major FP32 matrix: a weight is rows x cols = out_features x in_features.
using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Read-only view of a row-major FP32 matrix (a Matrix, a Map of a raw buffer, a row block).
using matrix_view = Eigen::Ref<const row_matrix>;

/// Writable view of a row-major FP32 matrix.
using matrix_ref = Eigen::Ref<row_matrix>;

namespace detail {

/// Rejects an empty matrix and any NaN or Inf, naming the tensor, row and column.
inline void require_finite_nonempty(matrix_view w, std::string_view name) {
  if (w.rows() == 0 || w.cols() == 0)
    fail("tensor '", name, "': empty matrix (", w.rows(), " x ", w.cols(), ")");
  for (index_t r = 0; r < w.rows(); ++r) {
    if (w.row(r).allFinite()) continue;
    for (index_t c = 0; c < w.cols(); ++c)
      if (!std::isfinite(w(r, c)))
        fail("tensor '", name, "': non-finite value ", w(r, c), " at row ", r, ", col ", c);
  }
}

}  // namespace detail
}  // namespace qcodec::inline QCODEC_ABI
