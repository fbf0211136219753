#pragma once
// The check that an encoder's arithmetic is fixed (explicit FMAs, fixed lane sums): every
// supported SIMD target encodes the same matrix, with and without column importances, to the
// same bytes. Shared by the encoders compiled per target (grid, two_level).

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <qcodec/qcodec.hpp>

#include "synthetic_weights.hpp"
#include "targets.hpp"

namespace qcodec::test {

/// Every array of a storage, concatenated.
std::string bytes_of(const auto& storage) {
  std::string out;
  storage.visit_arrays([&](std::string_view, const auto& values) {
    out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(values[0]));
  });
  return out;
}

template <class Codec>
void check_same_bytes_on_every_target(index_t cols) {
  const row_matrix w = examples::synthetic_weights(6, cols, examples::weight_family::outlier_columns, 7 + cols);
  std::vector<float> importance(static_cast<std::size_t>(cols));
  for (index_t c = 0; c < cols; ++c) importance[static_cast<std::size_t>(c)] = 0.1f + static_cast<float>((c * 37) % 19);
  std::string unweighted, weighted;
  for_each_target([&](simd::target t) {
    const std::string plain = bytes_of(Codec{}.encode(w).storage());
    const std::string with_importance = bytes_of(Codec{}.encode(w, "w", importance).storage());
    if (t == simd::target::scalar) {
      unweighted = plain;
      weighted = with_importance;
    }
    CAPTURE(codec_traits<Codec>::name, cols);
    CHECK(plain == unweighted);
    CHECK(with_importance == weighted);
  });
}

}  // namespace qcodec::test
