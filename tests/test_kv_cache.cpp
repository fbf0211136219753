// The quantized value cache: append, read, capacity, overflow, and fidelity per codec.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "qcodec/core/fidelity.hpp"
#include "qcodec/kv/kv_cache.hpp"
#include "linear_bounds.hpp"
#include "synthetic_weights.hpp"

using namespace qcodec;

namespace {

std::span<const float> token(const row_matrix& values, index_t t) {
  return {values.row(t).data(), static_cast<std::size_t>(values.cols())};
}

/// Checks every cached token against its codec's derived element bound.
/// Linear per row or per group: a token is encoded alone (its own scale and clip), so it must equal the
/// encoding of that token by itself, which meets the step bound derived in linear_bounds.hpp
/// (|w - w^| <= s/2 (1 + 2^-23) + 2^-23 |w| in range, saturation at the range's ends).
/// QINS: every token is coded with the LUT of the first token holding a non-zero value, scaled
/// by its own max |v|; the nearer of two adjacent levels a > a rho is taken, so (derived in
/// test_qins.cpp, with 2^-21 for the FP32 rounding of the levels) |v - v^| <=
/// ((1 - rho)/(1 + rho) + 2^-21) |v| when |v| is at least the smallest level d, else <= d/2.
template <class Codec>
void check_token_bounds(const row_matrix& values, const row_matrix& cached) {
  if constexpr (codec_traits<Codec>::is_linear) {
    for (index_t t = 0; t < values.rows(); ++t) {
      const auto alone = Codec{}.encode(values.middleRows(t, 1), "t");
      CHECK(cached.row(t) == alone.decode().row(0));
      testing::check_linear_bounds(values.middleRows(t, 1), alone);
    }
  } else {
    index_t first = 0;
    while (first < values.rows() && (values.row(first).array() == 0).all()) ++first;
    REQUIRE(first < values.rows());
    const auto lut_source = Codec{}.encode(values.middleRows(first, 1), "first").storage();
    // Each token is coded against exactly the shared levels.
    for (index_t t = 0; t < values.rows(); ++t)
      CHECK(cached.row(t) == Codec{}.encode_with_lut_of(values.middleRows(t, 1), lut_source, "t").decode().row(0));
    const double rho = Codec::rho(lut_source);
    const double relative_bound = (1 - rho) / (1 + rho) + 0x1p-21;
    index_t violations = 0;
    for (index_t t = 0; t < values.rows(); ++t) {
      const float scale = values.row(t).cwiseAbs().maxCoeff();
      const double smallest = lut_source.lut[Codec::max_magnitude] * scale;
      for (index_t c = 0; c < values.cols(); ++c) {
        const double x = values(t, c), y = cached(t, c), error = std::abs(x - y);
        const bool ok = x == 0                    ? y == 0
                        : std::abs(x) >= smallest ? error <= relative_bound * std::abs(x)
                                                  : error <= smallest / 2;
        if (!ok && violations++ < 5)
          FAIL_CHECK("token " << t << " col " << c << ": v=" << x << " decoded=" << y
                              << " relative bound=" << relative_bound);
      }
    }
    CHECK(violations == 0);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("a value cache appends tokens and reads back ranges", "[kv]", linear<8>,
                   (linear<8, per_row, half, symmetry::asymmetric>), linear<4>, (linear<4, per_group<32>>),
                   qins<8>, qins<4>) {
  constexpr index_t head_dim = 128, tokens = 40;
  const row_matrix values = examples::synthetic_weights(tokens, head_dim,
                                                        examples::weight_family::heavy_tailed, 17);
  value_cache<TestType> cache(head_dim, 64);
  CHECK(cache.size() == 0);
  CHECK(cache.capacity() == 64);
  CHECK(cache.read(0, 0).rows() == 0);  // an empty cache has no QINS LUT yet
  for (index_t t = 0; t < tokens; ++t) cache.append(token(values, t));
  REQUIRE(cache.size() == tokens);

  const row_matrix all = cache.read(0, tokens);
  // A range is the same rows as the whole; a token reads the same whatever came after it.
  CHECK(cache.read(10, 25) == all.middleRows(10, 15));
  CHECK(cache.read(7, 7).rows() == 0);
  const fidelity_report report = measure_fidelity(values, all);
  CHECK(report.sign_flips == 0);
  check_token_bounds<TestType>(values, all);
  // Fewer bytes than FP32 (and than FP16).
  CHECK(cache.byte_size() < static_cast<std::size_t>(tokens * head_dim * 2));

  if constexpr (std::is_same_v<TestType, linear<8>>) {
    // INT8 per-row: each token is exactly the per-row encoding of that token alone.
    for (index_t t : {index_t{0}, index_t{13}, tokens - 1})
      CHECK(cache.read(t, t + 1) == linear<8>{}.encode(values.middleRows(t, 1), "t").decode());
    CHECK(cache.byte_size() == static_cast<std::size_t>(tokens * (head_dim + 4)));
  }
  cache.clear();
  CHECK(cache.size() == 0);
  CHECK(cache.read(0, 0).rows() == 0);
  // After clear() the cache starts afresh (QINS chooses its span from the new first token).
  cache.append(token(values, 0));
  CHECK(cache.read(0, 1) == all.topRows(1));
}

TEMPLATE_TEST_CASE("a value cache whose first tokens are all zero keeps later tokens exact to bound",
                   "[kv]", linear<8>, (linear<8, per_row, half, symmetry::asymmetric>), linear<4>,
                   (linear<4, per_group<32>>), qins<8>, qins<4>) {
  // An all-zero token has no magnitude to choose a QINS span from (every span fits it): the
  // shared LUT must come from the first token with a non-zero value.
  constexpr index_t head_dim = 64, tokens = 12;
  row_matrix values = examples::synthetic_weights(tokens, head_dim,
                                                  examples::weight_family::heavy_tailed, 23);
  values.topRows(2).setZero();
  value_cache<TestType> cache(head_dim, tokens);
  for (index_t t = 0; t < tokens; ++t) cache.append(token(values, t));
  const row_matrix all = cache.read(0, tokens);
  CHECK((all.topRows(2).array() == 0).all());
  // Token 2 sets the LUT: it reads back exactly as that token encoded alone.
  CHECK(cache.read(2, 3) == TestType{}.encode(values.middleRows(2, 1), "t").decode());
  check_token_bounds<TestType>(values, all);
  CHECK(measure_fidelity(values, all).sign_flips == 0);
}

TEST_CASE("a value cache refuses overflow, bad rows and bad ranges, and stays unchanged") {
  value_cache<linear<8>> cache(4, 2);
  const std::vector<float> row = {0.5f, -1.0f, 0.25f, 2.0f};
  cache.append(row);
  cache.append(row);
  CHECK_THROWS_WITH(cache.append(row), Catch::Contains("full (capacity 2 tokens)"));
  CHECK(cache.size() == 2);
  CHECK(cache.read(0, 2).row(1) == cache.read(0, 1).row(0));

  value_cache<qins<8>> q(4, 8);
  const std::vector<float> short_row = {1.0f, 2.0f};
  CHECK_THROWS_WITH(q.append(short_row), Catch::Contains("token has 2 values, head_dim is 4"));
  const std::vector<float> nan_row = {1.0f, std::numeric_limits<float>::quiet_NaN(), 0, 0};
  CHECK_THROWS_WITH(q.append(nan_row), Catch::Contains("value cache token 0"));
  CHECK(q.size() == 0);
  q.append(row);
  CHECK_THROWS_WITH(q.read(0, 2), Catch::Contains("token range [0, 2) outside 0..1"));
  CHECK_THROWS_WITH(q.read(-1, 0), Catch::Contains("outside"));
  CHECK_THROWS_WITH(value_cache<linear<8>>(0, 4), Catch::Contains("must be > 0"));
  CHECK_THROWS_WITH(value_cache<linear<8>>(4, 0), Catch::Contains("must be > 0"));
}
