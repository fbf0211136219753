#pragma once
// The two weight families the outlier split is measured on (issue 17), reproducible from a seed.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include <qcodec/core/matrix.hpp>

namespace qcodec::testing {

enum class split_family {
  /// N(0, 0.02^2).
  gaussian,
  /// Student-t, nu = 4, scaled to a 0.02 standard deviation, with 0.1% of the input columns
  /// (at least one, chosen by the seed) scaled by 20: heavy tails plus outlier features.
  heavy_tailed,
};

inline const char* split_family_name(split_family f) {
  return f == split_family::gaussian ? "gaussian" : "t4+cols20";
}

inline row_matrix split_weights(index_t rows, index_t cols, split_family family, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  row_matrix w(rows, cols);
  if (family == split_family::gaussian) {
    std::normal_distribution<float> normal(0.0f, 0.02f);
    for (index_t i = 0; i < w.size(); ++i) w.data()[i] = normal(rng);
    return w;
  }
  // A t(4) variable has variance 4 / (4 - 2) = 2.
  std::student_t_distribution<float> student(4.0f);
  for (index_t i = 0; i < w.size(); ++i) w.data()[i] = 0.02f / std::sqrt(2.0f) * student(rng);
  std::vector<index_t> columns(static_cast<std::size_t>(cols));
  std::iota(columns.begin(), columns.end(), index_t{0});
  std::shuffle(columns.begin(), columns.end(), rng);
  const auto outliers = std::max<index_t>(1, static_cast<index_t>(std::lround(0.001 * static_cast<double>(cols))));
  for (index_t k = 0; k < outliers; ++k) w.col(columns[static_cast<std::size_t>(k)]) *= 20.0f;
  return w;
}

}  // namespace qcodec::testing
