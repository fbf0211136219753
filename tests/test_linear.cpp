// Round trips, derived error bounds, layouts and edge cases of every linear codec variant.
#include <catch2/catch.hpp>

#include <cfloat>
#include <cmath>
#include <limits>
#include <tuple>

#include <qcodec/qcodec.hpp>

#include "linear_bounds.hpp"
#include "synthetic_weights.hpp"
#include "tested_codecs.hpp"

using namespace qcodec;
using examples::synthetic_weights;
using examples::weight_family;

namespace {

/// Bytes of the layout computed independently of the codec: codes, scales, zero points.
template <class Codec>
std::size_t expected_bytes(index_t rows, index_t cols) {
  using traits = codec_traits<Codec>;
  const index_t code_bytes = rows * (traits::bits == 8 ? cols : (cols + 1) / 2);
  index_t blocks = 1;
  if constexpr (traits::block_size > 0) blocks = rows * ((cols + traits::block_size - 1) / traits::block_size);
  else if constexpr (std::same_as<typename Codec::granularity, per_row>) blocks = rows;
  const index_t per_block = index_t{sizeof(typename Codec::scale_type)} + (Codec::symmetric ? 0 : 1);
  return static_cast<std::size_t>(code_bytes + blocks * per_block);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("linear round trip meets the step bound on any shape", "[linear]",
                        test::tested_linear_codecs) {
  index_t rows, cols;  // std::tie: clang 14 cannot capture a structured binding
  std::tie(rows, cols) = GENERATE(table<index_t, index_t>(
      {{1, 1}, {1, 77}, {77, 1}, {32, 32}, {128, 128}, {33, 257}, {5, 300}}));
  const auto family = GENERATE(weight_family::gaussian, weight_family::heavy_tailed,
                               weight_family::outlier_columns);
  const auto clip = GENERATE(clip_rule::absmax(), clip_rule::mse(), clip_rule::at_quantile(0.99));
  const row_matrix w = synthetic_weights(rows, cols, family, 7 + rows * cols);
  TestType codec;
  codec.clip = clip;
  const auto encoded = codec.encode(w);
  CAPTURE(codec_traits<TestType>::name, rows, cols, examples::family_name(family));
  REQUIRE(encoded.rows() == rows);
  REQUIRE(encoded.cols() == cols);
  CHECK(encoded.byte_size() == expected_bytes<TestType>(rows, cols));
  CHECK(encoded.bpw() == Approx(8.0 * expected_bytes<TestType>(rows, cols) / (rows * cols)));
  testing::check_linear_bounds(w, encoded);
  const fidelity_report report = measure_fidelity(w, encoded.decode());
  CHECK(report.sign_flips == 0);
}

TEMPLATE_LIST_TEST_CASE("linear edge rows encode without NaN, Inf or sign flips", "[linear]",
                        test::tested_linear_codecs) {
  row_matrix w(5, 70);
  for (index_t c = 0; c < w.cols(); ++c) {
    w(0, c) = 0.0f;                                        // zero row
    w(1, c) = 0.37f;                                       // constant row
    w(2, c) = (c % 2 ? -1.0f : 1.0f) * 1e-40f * (c + 1);   // denormals
    w(3, c) = -0.25f;                                      // negative constant
    w(4, c) = (c % 3 ? 1.0f : -1.0f) * 1e-3f * (c + 1);     // ordinary
  }
  const auto encoded = TestType{}.encode(w);
  const row_matrix decoded = encoded.decode();
  CHECK(decoded.allFinite());
  CHECK((decoded.row(0).array() == 0.0f).all());
  CHECK(measure_fidelity(w, decoded).sign_flips == 0);
  testing::check_linear_bounds(w, encoded);
}

TEMPLATE_LIST_TEST_CASE("linear huge magnitudes: FP32 scales decode finitely, FP16 scales refuse",
                        "[linear]", test::tested_linear_codecs) {
  row_matrix w(2, 40);
  for (index_t c = 0; c < w.cols(); ++c) {
    w(0, c) = (c % 2 ? -FLT_MAX : FLT_MAX) * (c == 0 ? 1.0f : 0.5f);
    w(1, c) = 3e38f * (c % 3 ? -1.0f : 1.0f) / (c + 1);
  }
  if constexpr (std::same_as<typename TestType::scale_type, float>) {
    const auto encoded = TestType{}.encode(w);
    const row_matrix decoded = encoded.decode();
    CHECK(decoded.allFinite());
    CHECK(measure_fidelity(w, decoded).sign_flips == 0);
    testing::check_linear_bounds(w, encoded);
  } else {
    CHECK_THROWS_WITH(TestType{}.encode(w, "huge"), Catch::Contains("'huge'") &&
                                                        Catch::Contains("FP16"));
  }
}

TEMPLATE_LIST_TEST_CASE("mse clipping never does worse than absmax", "[linear][clip]",
                        test::tested_linear_codecs) {
  const auto family = GENERATE(weight_family::gaussian, weight_family::heavy_tailed,
                               weight_family::outlier_columns);
  const row_matrix w = synthetic_weights(64, 320, family, 11);
  TestType absmax, mse;
  absmax.clip = clip_rule::absmax();
  mse.clip = clip_rule::mse();
  const double absmax_err = measure_fidelity(w, absmax.encode(w).decode()).rel_err;
  const double mse_err = measure_fidelity(w, mse.encode(w).decode()).rel_err;
  CHECK(mse_err <= absmax_err * (1 + 1e-9));
}

TEMPLATE_LIST_TEST_CASE("quantile clipping limits every block by one tensor-wide threshold",
                        "[linear][clip]", test::tested_linear_codecs) {
  const row_matrix w = synthetic_weights(64, 256, weight_family::heavy_tailed, 5);
  std::vector<float> magnitudes(w.data(), w.data() + w.size());
  for (float& m : magnitudes) m = std::abs(m);
  std::sort(magnitudes.begin(), magnitudes.end());
  const float threshold = magnitudes[static_cast<std::size_t>(std::ceil(0.99 * magnitudes.size())) - 1];
  TestType codec;
  codec.clip = clip_rule::at_quantile(0.99);
  const auto encoded = codec.encode(w);
  // The end codes decode to the clip, up to the rounding of the stored scale and, for an
  // asymmetric codec, the rounding of the zero point to an integer (at most half a step).
  const double scale_rounding = std::same_as<typename TestType::scale_type, half> ? 0x1p-11 : 0x1p-23;
  float largest_scale = 0;
  for (auto scale : encoded.storage().scales) largest_scale = std::max(largest_scale, static_cast<float>(scale));
  const double zero_point_shift = TestType::symmetric ? 0.0 : 0.5 * largest_scale;
  CHECK(encoded.decode().cwiseAbs().maxCoeff() <=
        threshold * (1 + 2 * scale_rounding) + zero_point_shift);
  codec.clip = clip_rule::at_quantile(1.5);
  CHECK_THROWS_WITH(codec.encode(w, "q"), Catch::Contains("quantile"));
}

TEMPLATE_TEST_CASE("linear RMS error is step/sqrt(12) on Gaussian weights", "[linear][rms]",
                   (linear<8, per_row>), (linear<4, per_row>), (linear<4, per_group<128>>),
                   (linear<8, per_group<32>, float, symmetry::asymmetric>),
                   (linear<4, per_group<64>, half, symmetry::asymmetric>)) {
  // Weights spread over many steps make the rounding error u = (w - w^)/s uniform on
  // [-1/2, 1/2]: E[u^2] = 1/12 and Var[u^2] = 1/80 - 1/144 = 1/180. The mean of N samples is
  // checked within 6 standard deviations; a block's extreme elements (which decode exactly
  // under absmax clipping) are left out.
  const row_matrix w = synthetic_weights(256, 1024, weight_family::gaussian, 2024);
  TestType codec;
  codec.clip = clip_rule::absmax();
  const auto encoded = codec.encode(w);
  const auto& s = encoded.storage();
  const row_matrix decoded = encoded.decode();
  double sum = 0;
  index_t count = 0;
  for (index_t r = 0; r < w.rows(); ++r)
    for (index_t g = 0; g < s.groups_per_row(); ++g) {
      const index_t first = g * s.group_size(), size = std::min(s.group_size(), w.cols() - first);
      const auto block = w.row(r).segment(first, size);
      const double scale = static_cast<float>(s.scales[static_cast<std::size_t>(s.block_index(r, g))]);
      for (index_t c = first; c < first + size; ++c) {
        if (w(r, c) == block.maxCoeff() || w(r, c) == block.minCoeff()) continue;
        const double u = (w(r, c) - decoded(r, c)) / scale;
        sum += u * u;
        ++count;
      }
    }
  const double mean = sum / count;
  CHECK(std::abs(mean - 1.0 / 12) <= 6 * std::sqrt(1.0 / 180 / count));
}

TEST_CASE("linear round trip on LLM layer shapes", "[linear][llm]") {
  index_t rows, cols;  // std::tie: clang 14 cannot capture a structured binding
  std::tie(rows, cols) = GENERATE(table<index_t, index_t>({{768, 3072}, {2048, 5632}}));
  const auto family = GENERATE(weight_family::gaussian, weight_family::heavy_tailed);
  const row_matrix w = synthetic_weights(rows, cols, family, 99);
  const auto int8 = linear<8>{}.encode(w);
  const auto int4 = linear<4, per_group<128>>{}.encode(w);
  testing::check_linear_bounds(w, int8);
  testing::check_linear_bounds(w, int4);
  const fidelity_report r8 = measure_fidelity(w, int8.decode());
  const fidelity_report r4 = measure_fidelity(w, int4.decode());
  CHECK(r8.sign_flips == 0);
  CHECK(r4.sign_flips == 0);
  CHECK(r4.rel_err > r8.rel_err);
}

TEST_CASE("codec traits name every variant", "[linear][traits]") {
  CHECK(codec_traits<linear<8>>::name == "int8");
  CHECK(codec_traits<linear<4, per_group<128>>>::name == "int4-g128");
  CHECK(codec_traits<linear<8, per_tensor>>::name == "int8-tensor");
  CHECK(codec_traits<linear<4, per_group<32>, half, symmetry::asymmetric>>::name ==
        "int4-g32-asym-f16");
  CHECK(codec_traits<linear<4, per_group<128>>>::block_size == 128);
  CHECK(codec_traits<linear<4, per_group<128>>>::bytes_per_block == 64 + 4);
  CHECK(codec_traits<linear<8, per_group<32>, half, symmetry::asymmetric>>::bytes_per_block ==
        32 + 2 + 1);
  CHECK(codec_traits<linear<8>>::block_size == 0);
  STATIC_REQUIRE(is_linear_codec<linear<4>>);
  STATIC_REQUIRE(std::tuple_size_v<linear_codecs> == 48);
}

TEMPLATE_LIST_TEST_CASE("linear validate accepts encodings and rejects inconsistent storage",
                        "[linear][errors]", test::tested_linear_codecs) {
  const auto encoded = TestType{}.encode(synthetic_weights(6, 45, weight_family::gaussian, 8));
  CHECK_NOTHROW(TestType::validate(encoded.storage(), "ok"));
  auto truncated = encoded.storage();
  truncated.codes.pop_back();
  CHECK_THROWS_WITH(TestType::validate(truncated, "t"), Catch::Contains("'t'") && Catch::Contains("codes"));
  auto bad_scale = encoded.storage();
  bad_scale.scales[0] = static_cast<typename TestType::scale_type>(-1.0f);
  CHECK_THROWS_WITH(TestType::validate(bad_scale, "t"), Catch::Contains("scale"));
  auto bad_shape = encoded.storage();
  bad_shape.cols += 3;
  CHECK_THROWS_AS(TestType::validate(bad_shape, "t"), qcodec::error);
  if constexpr (TestType::symmetric) {
    // Code 0 lies outside 1 .. max_code (it would decode one step past the checked reach),
    // in a column and in the padding nibble of an odd-length INT4 row alike.
    constexpr int bits = codec_traits<TestType>::bits;
    for (index_t c : {index_t{37}, index_t{bits == 4 ? 45 : 44}}) {
      auto zero_code = encoded.storage();
      pack_code<bits>(zero_code.codes.data() + 4 * zero_code.row_bytes(), c, 0);
      CHECK_THROWS_WITH(TestType::validate(zero_code, "t"),
                        Catch::Contains("'t': row 4, column " + std::to_string(c) + ": code 0"));
    }
  } else {
    auto bad_zero = encoded.storage();
    bad_zero.zero_points[0] = 255;
    if (TestType::max_code < 255) CHECK_THROWS_WITH(TestType::validate(bad_zero, "t"), Catch::Contains("zero point"));
  }
  std::vector<std::string> names;
  encoded.storage().visit_arrays([&](std::string_view name, const auto&) { names.emplace_back(name); });
  CHECK(names.size() == (TestType::symmetric ? 2u : 3u));
  CHECK(names.front() == "codes");
}
