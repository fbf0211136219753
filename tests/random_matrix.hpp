#pragma once
// Standard-normal test matrices from a seeded generator.

#include <random>

#include <qcodec/core/matrix.hpp>

namespace qcodec::test {

/// rows x cols values drawn from N(0, 1) by std::mt19937(seed), row-major order.
inline row_matrix random_normal(index_t rows, index_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  row_matrix m(rows, cols);
  for (index_t i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

}  // namespace qcodec::test
