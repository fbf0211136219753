#pragma once
// Activations as the integer path quantizes them (ops/integer_gemv.hpp), written out here
// from that header's statement rather than through the library, for the tests' FP64
// references: in blocks of block_cols columns, s_j = max|x_block| / 127 and q = rint(x / s_j);
// per column the dequantized value s_j q_c and the step s_j of its block.
#include <algorithm>
#include <cmath>
#include <vector>

#include <qcodec/core/matrix.hpp>

namespace qcodec::test {

struct quantized_row {
  std::vector<double> value, step;
};

inline quantized_row quantized_activations(const float* x, index_t cols, index_t block_cols) {
  quantized_row q;
  for (index_t c0 = 0; c0 < cols; c0 += block_cols) {
    const index_t c1 = std::min(cols, c0 + block_cols);
    float largest = 0;
    for (index_t c = c0; c < c1; ++c) largest = std::max(largest, std::abs(x[c]));
    const float step = largest / 127;
    for (index_t c = c0; c < c1; ++c) {
      q.step.push_back(step);
      q.value.push_back(step > 0 ? double{step} * std::rint(x[c] / step) : 0.0);
    }
  }
  return q;
}

}  // namespace qcodec::test
