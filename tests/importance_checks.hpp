#pragma once
// The checks every encoder taking column importances passes (two_level, grid): columns that
// matter 1000x more get a smaller weighted error than unweighted encoding gives them, and bad
// importances (negative, infinite, the wrong count) are refused naming the tensor.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <qcodec/qcodec.hpp>

template <class Codec>
void check_column_importance(const qcodec::row_matrix& w) {
  using qcodec::index_t;
  const Codec codec;
  const auto cols = static_cast<std::size_t>(w.cols());
  std::vector<float> important(cols, 1.0f);
  for (std::size_t c = 0; c < cols; c += 7) important[c] = 1000.0f;
  const qcodec::row_matrix dw = codec.encode(w, "w", important).decode(), dp = codec.encode(w, "w").decode();
  double weighted = 0, unweighted = 0;
  for (index_t r = 0; r < w.rows(); ++r)
    for (index_t c = 0; c < w.cols(); ++c) {
      const double h = important[static_cast<std::size_t>(c)];
      weighted += h * std::pow(w(r, c) - dw(r, c), 2);
      unweighted += h * std::pow(w(r, c) - dp(r, c), 2);
    }
  CAPTURE(qcodec::codec_traits<Codec>::name, weighted, unweighted);
  CHECK(weighted < unweighted);
  std::vector<float> bad(cols, 1.0f);
  bad[17] = -1.0f;
  CHECK_THROWS_WITH(codec.encode(w, "w", bad), Catch::Contains("'w'") && Catch::Contains("importance 17"));
  bad[17] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(codec.encode(w, "w", bad), qcodec::error);
  bad[17] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(codec.encode(w, "w", bad), qcodec::error);
  CHECK_THROWS_WITH(codec.encode(w, "w", std::vector<float>(cols - 1, 1.0f)), Catch::Contains(std::to_string(cols - 1)));
}
