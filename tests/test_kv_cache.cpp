// The quantized value cache: append, read, capacity, overflow, and fidelity per codec.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "qcodec/core/fidelity.hpp"
#include "qcodec/kv/kv_cache.hpp"
#include "synthetic_weights.hpp"

using namespace qcodec;

namespace {

std::span<const float> token(const row_matrix& values, index_t t) {
  return {values.row(t).data(), static_cast<std::size_t>(values.cols())};
}

}  // namespace

TEMPLATE_TEST_CASE("a value cache appends tokens and reads back ranges", "[kv]", linear<8>,
                   (linear<8, per_row, half, symmetry::asymmetric>), linear<4>, qins<8>, qins<4>) {
  constexpr index_t head_dim = 128, tokens = 40;
  const row_matrix values = examples::synthetic_weights(tokens, head_dim,
                                                        examples::weight_family::heavy_tailed, 17);
  value_cache<TestType> cache(head_dim, 64);
  CHECK(cache.size() == 0);
  CHECK(cache.capacity() == 64);
  for (index_t t = 0; t < tokens; ++t) cache.append(token(values, t));
  REQUIRE(cache.size() == tokens);

  const row_matrix all = cache.read(0, tokens);
  // A range is the same rows as the whole; a token reads the same whatever came after it.
  CHECK(cache.read(10, 25) == all.middleRows(10, 15));
  CHECK(cache.read(7, 7).rows() == 0);
  const fidelity_report report = measure_fidelity(values, all);
  CHECK(report.sign_flips == 0);
  CHECK(report.rel_err < (codec_traits<TestType>::bits == 8 ? 0.03 : 0.3));
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
  // After clear() the cache starts afresh (QINS chooses its span from the new first token).
  cache.append(token(values, 0));
  CHECK(cache.read(0, 1) == all.topRows(1));
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
