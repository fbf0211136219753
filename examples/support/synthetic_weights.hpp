#pragma once
/// LLM-like synthetic weight matrices for the demo, tests and benchmarks.

#include <cstdint>
#include <random>
#include <string_view>

#include <qcodec/core/matrix.hpp>

namespace qcodec::examples {

enum class weight_family {
  /// N(0, 0.02^2): an idealised freshly trained projection.
  gaussian,
  /// Student-t with 3 degrees of freedom, scaled to 0.02: heavy tails, as trained MLP rows.
  heavy_tailed,
  /// N(0, 0.02^2) with every 64th input column scaled by 20: LLM.int8()-style outlier features.
  outlier_columns,
};

inline std::string_view family_name(weight_family family) {
  switch (family) {
    case weight_family::gaussian: return "gaussian";
    case weight_family::heavy_tailed: return "student-t3";
    case weight_family::outlier_columns: return "outlier-cols";
  }
  return "?";
}

/// A rows x cols weight matrix of the family, reproducible from `seed`.
inline row_matrix synthetic_weights(index_t rows, index_t cols, weight_family family,
                                    std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::student_t_distribution<float> student(3.0f);
  row_matrix w(rows, cols);
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) {
      switch (family) {
        case weight_family::gaussian: w(r, c) = normal(rng); break;
        // A t(3) variable has variance 3; scale it to a 0.02 standard deviation.
        case weight_family::heavy_tailed: w(r, c) = 0.02f / 1.7320508f * student(rng); break;
        case weight_family::outlier_columns:
          w(r, c) = normal(rng) * (c % 64 == 7 ? 20.0f : 1.0f);
          break;
      }
    }
  return w;
}

}  // namespace qcodec::examples
