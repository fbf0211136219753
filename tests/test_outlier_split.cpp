// Outlier split W = B + O: the base alone against the base codec alone over all weights
// (alpha = 0), the largest residuals stored to FP16 precision, storage layout, validation and
// bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <functional>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include <qcodec/qcodec.hpp>

#include "linear_bounds.hpp"
#include "split_test_weights.hpp"
#include "synthetic_weights.hpp"
#include "tested_codecs.hpp"

using namespace qcodec;
using examples::synthetic_weights;
using examples::weight_family;

namespace {

using split_bases = std::tuple<linear<4, per_group<128>>, linear<8>,
                               linear<4, per_row, half, symmetry::asymmetric>, qins<8>>;

/// The ortho stream as a dense matrix of its decoded values.
row_matrix densify(const ortho_stream& o) {
  row_matrix dense = row_matrix::Zero(o.rows, o.cols);
  for (index_t r = 0; r < o.rows; ++r) o.for_each_in_row(r, [&](index_t c, float v) { dense(r, c) = v; });
  return dense;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("alpha = 0: the base alone meets the base codec alone on W over all weights",
                        "[outlier_split][alpha0]", test::tested_outlier_codecs) {
  using base_type = typename TestType::base_codec;
  const auto family = GENERATE(testing::split_family::gaussian, testing::split_family::heavy_tailed);
  const row_matrix w = testing::split_weights(256, 512, family, 1700 + static_cast<int>(family));
  CAPTURE(codec_traits<TestType>::name, testing::split_family_name(family));
  const auto split = TestType{}.encode(w);
  const encoded_matrix<base_type> base(split.storage().base);
  const fidelity_report alpha0 = measure_fidelity(w, base.decode());
  const fidelity_report alone = measure_fidelity(w, base_type{}.encode(w).decode());
  const fidelity_report alpha1 = measure_fidelity(w, split.decode());
  CAPTURE(alpha0.snr_db, alone.snr_db, alpha1.snr_db);
  // Over every weight, within 0.1 dB of the base codec alone (DESIGN, "the base stands alone").
  CHECK(alpha0.snr_db >= alone.snr_db - 0.1);
  CHECK(alpha1.rel_err < alpha0.rel_err);
  CHECK(alpha0.sign_flips == 0);
  CHECK(alpha1.sign_flips == 0);
}

TEMPLATE_LIST_TEST_CASE("outlier split stores exactly the largest residuals", "[outlier_split]",
                        split_bases) {
  index_t rows, cols;  // std::tie: clang 14 cannot capture a structured binding
  std::tie(rows, cols) = GENERATE(table<index_t, index_t>({{37, 91}, {128, 128}, {33, 257}}));
  const auto family = GENERATE(weight_family::gaussian, weight_family::heavy_tailed,
                               weight_family::outlier_columns);
  const row_matrix w = synthetic_weights(rows, cols, family, 11 + rows * cols);
  CAPTURE(codec_traits<TestType>::name, rows, cols, examples::family_name(family));
  const outlier_split<TestType> codec;
  const auto split = codec.encode(w);
  const auto& s = split.storage();
  REQUIRE_NOTHROW(outlier_split<TestType>::validate(s, "w"));

  // The base is the base codec on W itself: the same decoded values.
  const encoded_matrix<TestType> base(s.base);
  const row_matrix b = base.decode(), w_hat = split.decode();
  CHECK(b == TestType{}.encode(w).decode());

  // The selected positions are |w - b| > t, t the (m+1)-th largest |w - b| (independently
  // computed here), at most m = floor(p n) of them.
  const auto m = static_cast<std::size_t>(std::floor(codec.outlier_fraction * static_cast<double>(w.size())));
  std::vector<float> magnitudes;
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) magnitudes.push_back(std::abs(w(r, c) - b(r, c)));
  std::sort(magnitudes.begin(), magnitudes.end(), std::greater<float>());
  const float t = magnitudes[m];
  index_t expected_count = 0;
  for (float v : magnitudes) expected_count += v > t;
  CHECK(s.ortho.nnz() == expected_count);
  CHECK(static_cast<std::size_t>(s.ortho.nnz()) <= m);

  // Stored positions to FP16 precision: r = fl(w - b) (2^-24|w - b|), FP16 rounding of r/s
  // (2^-11 relative when normal, 2^-25 s when subnormal; s a power of two, exact), and the
  // final FP32 add b + v s (2^-24 |w^|). Elsewhere the decode is the base's, exactly.
  const row_matrix o = densify(s.ortho);
  const float scale = s.ortho.nnz() > 0 ? s.ortho.scale[0] : 1.0f;
  index_t violations = 0;
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) {
      const double x = w(r, c), y = w_hat(r, c), residual = x - b(r, c);
      const bool stored = std::abs(w(r, c) - b(r, c)) > t;
      const double bound = (0x1p-11 + 0x1p-24) * std::abs(residual) + 0x1p-25 * scale + 0x1p-24 * std::abs(y);
      if (stored ? std::abs(x - y) > bound : (o(r, c) != 0 || y != b(r, c))) ++violations;
    }
  CHECK(violations == 0);
  CHECK(measure_fidelity(w, w_hat).sign_flips == 0);
  CHECK(measure_fidelity(w, b).sign_flips == 0);

  // Bytes: base + CSR (uint32 offsets, uint16 columns here, FP16 values, one FP32 scale).
  const std::size_t ortho_bytes =
      s.ortho.nnz() == 0 ? 0 : 4 * static_cast<std::size_t>(rows + 1) + 4 * s.ortho.nnz() + 4;
  CHECK(split.byte_size() == base.byte_size() + ortho_bytes);
}

TEMPLATE_LIST_TEST_CASE("an all-inlier matrix yields an empty ortho stream", "[outlier_split]",
                        split_bases) {
  // Uniform weights: every residual has the same magnitude, none exceeds the (m+1)-th largest.
  const row_matrix equal = row_matrix::Constant(16, 40, 0.5f);
  const row_matrix tiny = synthetic_weights(8, 8, weight_family::heavy_tailed, 5);  // p * n < 1
  for (const row_matrix* w : std::array<const row_matrix*, 2>{&equal, &tiny}) {
    const auto split = outlier_split<TestType>{}.encode(*w);
    const auto plain = TestType{}.encode(*w);
    CHECK(split.storage().ortho.nnz() == 0);
    CHECK(split.storage().ortho.byte_size() == 0);
    CHECK(split.byte_size() == plain.byte_size());
    CHECK(split.decode() == plain.decode());
  }
}

TEST_CASE("outlier split uses uint32 columns past 65536 columns and survives huge rows",
          "[outlier_split]") {
  row_matrix w = synthetic_weights(2, 70001, weight_family::heavy_tailed, 3);
  w.row(1).array() *= 1e30f;  // residuals far beyond FP16's range
  const auto split = outlier_split<linear<8>>{}.encode(w);
  const auto& o = split.storage().ortho;
  CHECK(o.columns16.empty());
  CHECK(o.columns32.size() == static_cast<std::size_t>(o.nnz()));
  CHECK(o.nnz() > 0);
  const row_matrix decoded = split.decode();
  CHECK(decoded.allFinite());
  const fidelity_report report = measure_fidelity(w, decoded);
  CHECK(report.sign_flips == 0);
  CHECK(report.rel_err < measure_fidelity(w, linear<8>{}.encode(w).decode()).rel_err);
}

TEST_CASE("outlier split keeps residuals at the top of the FP32 range finite", "[outlier_split]") {
  // |residual| = FLT_MAX: scale 2^113 puts it at 2^15 - 2^-9, which FP16 rounds to 2^15, and
  // 2^15 * 2^113 = 2^128 overflows. The stored value must be the FP16 below, 2^15 - 16.
  constexpr float top = std::numeric_limits<float>::max();
  const float scale = detail::ortho_scale_for(top);
  CHECK(scale == std::ldexp(1.0f, 113));
  for (float residual : {top, -top}) {
    const float value = static_cast<float>(detail::ortho_value(residual, scale));
    CHECK(std::abs(value) == 32752.0f);
    CHECK(std::signbit(value) == std::signbit(residual));
    CHECK(std::isfinite(value * scale));
  }
  // Through encode: a row holding FLT_MAX and -FLT_MAX / 3 (a residual near a third of the
  // row's step, about 4.5e35) decodes finite, without sign flips.
  row_matrix w = synthetic_weights(1, 4096, weight_family::gaussian, 8);
  w(0, 17) = top;
  w(0, 200) = -top / 3;
  const auto split = outlier_split<linear<8>>{}.encode(w);
  CHECK(split.storage().ortho.nnz() > 0);
  const row_matrix decoded = split.decode();
  CHECK(decoded.allFinite());
  CHECK(measure_fidelity(w, decoded).sign_flips == 0);
}

TEST_CASE("outlier split names, traits and arrays", "[outlier_split]") {
  using codec_type = outlier_split<linear<4, per_group<128>>>;
  STATIC_REQUIRE(codec_traits<codec_type>::name == std::string_view("outliers+int4-g128"));
  STATIC_REQUIRE_FALSE(codec_traits<codec_type>::is_linear);
  STATIC_REQUIRE(codec_traits<codec_type>::bits == 4);
  const auto split = codec_type{}.encode(synthetic_weights(9, 300, weight_family::heavy_tailed, 2));
  std::vector<std::string> names;
  split.storage().visit_arrays([&](std::string_view name, const auto&) { names.emplace_back(name); });
  CHECK(names == std::vector<std::string>{"base.codes", "base.scales", "ortho.row_offsets",
                                          "ortho.columns16", "ortho.columns32", "ortho.values",
                                          "ortho.scale"});
}

TEST_CASE("outlier split rejects bad input and corrupted storage", "[outlier_split]") {
  using codec_type = outlier_split<linear<4, per_group<32>>>;
  row_matrix w = synthetic_weights(12, 100, weight_family::outlier_columns, 4);
  const auto good = codec_type{}.encode(w);
  REQUIRE(good.storage().ortho.nnz() > 1);
  CHECK_NOTHROW(codec_type::validate(good.storage(), "w"));

  row_matrix bad = w;
  bad(3, 4) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(codec_type{}.encode(bad), qcodec::error);
  CHECK_THROWS_AS(codec_type{}.encode(row_matrix(0, 5)), qcodec::error);
  for (double p : {-0.1, 1.0, std::numeric_limits<double>::quiet_NaN()}) {
    codec_type codec;
    codec.outlier_fraction = p;
    CHECK_THROWS_AS(codec.encode(w), qcodec::error);
  }

  using storage = codec_type::storage;
  const auto corrupt = [&](auto&& edit) {
    storage s = good.storage();
    edit(s);
    CHECK_THROWS_AS(codec_type::validate(s, "w"), qcodec::error);
  };
  corrupt([](storage& s) { s.ortho.row_offsets.pop_back(); });
  corrupt([](storage& s) { s.ortho.row_offsets.back() += 1; });
  corrupt([](storage& s) { s.ortho.row_offsets[1] = s.ortho.row_offsets.back() + 1; });
  corrupt([](storage& s) { s.ortho.row_offsets[1] = s.ortho.nnz() + 5; });
  corrupt([](storage& s) { s.ortho.columns16[0] = 100; });
  corrupt([](storage& s) {
    s.ortho.columns32.assign(s.ortho.columns16.begin(), s.ortho.columns16.end());
    s.ortho.columns16.clear();
  });
  corrupt([](storage& s) { s.ortho.values.pop_back(); });
  corrupt([](storage& s) { s.ortho.values[0] = half(std::numeric_limits<float>::infinity()); });
  corrupt([](storage& s) { s.ortho.scale[0] *= 1.5f; });
  // Finite parts whose product is not: value 2 times scale 2^127 decodes to Inf.
  corrupt([](storage& s) {
    s.ortho.values[0] = half(2.0f);
    s.ortho.scale[0] = std::ldexp(1.0f, 127);
  });
  corrupt([](storage& s) { s.ortho.scale.clear(); });
  corrupt([](storage& s) { s.base.scales.pop_back(); });
  corrupt([](storage& s) { s.ortho.cols = 99; });
  {
    // rows = 2, n = 2, row_offsets = [0, n + 5, n]: front and back are right, but row 0 would
    // read columns [0, n + 5), past the n stored entries, unless every offset is checked
    // against n before any column is read (the message names the offset, not a column).
    ortho_stream o;
    o.rows = 2;
    o.cols = 100;
    o.values = {half(1.0f), half(2.0f)};
    o.columns16 = {3, 7};
    o.scale = {1.0f};
    o.row_offsets = {0, 2, 2};
    CHECK_NOTHROW(o.validate("o"));
    o.row_offsets = {0, 2 + 5, 2};
    CHECK_THROWS_WITH(o.validate("o"), Catch::Contains("row_offsets[1] = 7 is not in [0, 2]"));
  }
  corrupt([](storage& s) {
    // Two entries of one row swapped: columns no longer increasing.
    for (index_t r = 0; r < s.rows; ++r) {
      const auto first = s.ortho.row_offsets[static_cast<std::size_t>(r)];
      if (s.ortho.row_offsets[static_cast<std::size_t>(r) + 1] - first >= 2) {
        std::swap(s.ortho.columns16[first], s.ortho.columns16[first + 1]);
        return;
      }
    }
    s.ortho.columns16.clear();
  });
}
