// Outlier split W = B + O: fidelity against the base alone, exact outliers, the base's own
// bounds at alpha = 0, storage layout, validation and bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <qcodec/qcodec.hpp>

#include "linear_bounds.hpp"
#include "synthetic_weights.hpp"

using namespace qcodec;
using examples::synthetic_weights;
using examples::weight_family;

namespace {

using split_bases = std::tuple<linear<4, per_group<128>>, linear<8>,
                               linear<4, per_row, half, symmetry::asymmetric>, qins<8>>;

/// Tensor-wide nearest-rank quantile 1 - p of |w|, computed independently of the codec.
float outlier_threshold(const row_matrix& w, double p) {
  std::vector<float> m(w.data(), w.data() + w.size());
  for (float& v : m) v = std::abs(v);
  std::sort(m.begin(), m.end());
  const auto rank = static_cast<std::size_t>(std::ceil((1 - p) * static_cast<double>(m.size())) - 1);
  return m[rank];
}

/// The ortho stream as a dense matrix of its decoded values.
row_matrix densify(const ortho_stream& o) {
  row_matrix dense = row_matrix::Zero(o.rows, o.cols);
  for (index_t r = 0; r < o.rows; ++r) o.for_each_in_row(r, [&](index_t c, float v) { dense(r, c) = v; });
  return dense;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("outlier split beats its base and stores exact outliers", "[outlier_split]",
                        split_bases) {
  const auto [rows, cols] = GENERATE(table<index_t, index_t>({{37, 91}, {128, 128}, {33, 257}}));
  const auto family = GENERATE(weight_family::gaussian, weight_family::heavy_tailed,
                               weight_family::outlier_columns);
  const row_matrix w = synthetic_weights(rows, cols, family, 11 + rows * cols);
  CAPTURE(codec_traits<TestType>::name, rows, cols, examples::family_name(family));
  const outlier_split<TestType> codec;
  const auto split = codec.encode(w);
  const auto& s = split.storage();
  REQUIRE_NOTHROW(outlier_split<TestType>::validate(s, "w"));

  // alpha = 1: strictly better than the base codec alone at the same settings.
  const fidelity_report full = measure_fidelity(w, split.decode());
  const fidelity_report alone = measure_fidelity(w, TestType{}.encode(w).decode());
  CHECK(full.rel_err < alone.rel_err);
  CHECK(full.sign_flips == 0);

  // The outliers are exactly the weights above the threshold, at most p * n of them.
  const float t = outlier_threshold(w, codec.outlier_fraction);
  index_t expected_count = 0;
  for (index_t i = 0; i < w.size(); ++i) expected_count += std::abs(w.data()[i]) > t;
  CHECK(s.ortho.nnz() == expected_count);
  CHECK(static_cast<double>(s.ortho.nnz()) <= codec.outlier_fraction * static_cast<double>(w.size()));

  // Outlier positions to FP16 precision: r = fl(w - b) (2^-24|w - b|), FP16 rounding of r/s
  // (2^-11 relative when normal, 2^-25 s when subnormal; s a power of two, exact), and the
  // final FP32 add b + v s (2^-24 |w^|).
  const encoded_matrix<TestType> base(s.base);
  const row_matrix b = base.decode(), w_hat = split.decode();
  const row_matrix o = densify(s.ortho);
  const float scale = s.ortho.nnz() > 0 ? s.ortho.scale[0] : 1.0f;
  index_t violations = 0;
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) {
      const double x = w(r, c), y = w_hat(r, c), residual = x - b(r, c);
      const bool outlier = std::abs(w(r, c)) > t;
      const double bound = (0x1p-11 + 0x1p-24) * std::abs(residual) + 0x1p-25 * scale + 0x1p-24 * std::abs(y);
      if (outlier ? std::abs(x - y) > bound : (o(r, c) != 0 || y != b(r, c))) ++violations;
    }
  CHECK(violations == 0);

  // alpha = 0, inliers (|w| <= t, where the clamp leaves W unchanged): the base meets the
  // base codec's own element bound against W itself. Linear: the step bound of
  // linear_bounds.hpp. QINS: the level-spacing bound of test_qins.cpp, relative
  // (1 - rho)/(1 + rho) + 2^-21 above the row's smallest level d (row scale min(t, max|w|)),
  // else d/2.
  const auto inlier = [&](index_t r, index_t c) { return std::abs(w(r, c)) <= t; };
  if constexpr (codec_traits<TestType>::is_linear) {
    testing::check_linear_bounds(w, base, inlier);
  } else {
    const double rho = TestType::rho(s.base);
    const double relative_bound = (1 - rho) / (1 + rho) + 0x1p-21;
    index_t inlier_violations = 0;
    for (index_t r = 0; r < rows; ++r) {
      const double smallest = s.base.lut[TestType::max_magnitude] * s.base.scales[static_cast<std::size_t>(r)];
      for (index_t c = 0; c < cols; ++c) {
        if (!inlier(r, c)) continue;
        const double x = w(r, c), error = std::abs(x - b(r, c));
        const bool ok = x == 0                    ? b(r, c) == 0
                        : std::abs(x) >= smallest ? error <= relative_bound * std::abs(x)
                                                  : error <= smallest / 2;
        inlier_violations += !ok;
      }
    }
    CHECK(inlier_violations == 0);
  }
  // alpha = 0, outliers: the base holds the clipped value sign(w) t coded by the base codec,
  // so it keeps the sign and meets that codec's bound against sign(w) t. |b| <= |w| itself is
  // not exact for linear bases: a block's range end may lie above t (an asymmetric zero point
  // rounds by up to s/2, an FP16 scale rounds up by up to 2^-11), so an outlier just above t
  // may decode to that end. QINS puts the row scale, t, on code 1: b = sign(w) t < |w|.
  const row_matrix clamped = w.cwiseMax(-t).cwiseMin(t);
  const auto outlier = [&](index_t r, index_t c) { return !inlier(r, c); };
  if constexpr (codec_traits<TestType>::is_linear) testing::check_linear_bounds(clamped, base, outlier);
  index_t outlier_violations = 0;
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c)
      if (outlier(r, c))
        outlier_violations += std::signbit(b(r, c)) != std::signbit(w(r, c)) ||
                              (!codec_traits<TestType>::is_linear && b(r, c) != clamped(r, c));
  CHECK(outlier_violations == 0);
  CHECK(measure_fidelity(w, b).sign_flips == 0);

  // Heavy tails: the inliers are coded at least as well by the split's base as by the base
  // codec alone (the point of the split, DESIGN part 3). The clamped ranges are never wider:
  // a linear block without an outlier sees the same values and codes them identically; one
  // with an outlier has its range cut from max|w| > t to t, so its step is finer and every
  // inlier still lies inside it; a QINS row with an outlier gets scale t < max|w|, its levels
  // move down onto the inliers. The sum over inliers, not each element, is compared: rounding
  // may favour either grid for a single weight.
  if (family == weight_family::heavy_tailed && s.ortho.nnz() > 0) {
    const row_matrix b_alone = TestType{}.encode(w).decode();
    double split_sq = 0, alone_sq = 0;
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < cols; ++c)
        if (inlier(r, c)) {
          split_sq += std::pow(double{w(r, c)} - b(r, c), 2);
          alone_sq += std::pow(double{w(r, c)} - b_alone(r, c), 2);
        }
    CAPTURE(split_sq, alone_sq);
    CHECK(split_sq <= alone_sq);
  }

  // Bytes: base + CSR (uint32 offsets, uint16 columns here, FP16 values, one FP32 scale).
  const std::size_t ortho_bytes =
      s.ortho.nnz() == 0 ? 0 : 4 * static_cast<std::size_t>(rows + 1) + 4 * s.ortho.nnz() + 4;
  CHECK(split.byte_size() == base.byte_size() + ortho_bytes);
}

TEMPLATE_LIST_TEST_CASE("an all-inlier matrix yields an empty ortho stream", "[outlier_split]",
                        split_bases) {
  row_matrix equal(16, 40);  // every magnitude equal: no weight exceeds the quantile
  for (index_t i = 0; i < equal.size(); ++i) equal.data()[i] = i % 3 ? 0.5f : -0.5f;
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
  row_matrix w = synthetic_weights(1, 256, weight_family::gaussian, 8);
  w(0, 17) = top;
  w(0, 200) = -top;
  const auto split = outlier_split<linear<8>>{}.encode(w);
  const auto& o = split.storage().ortho;
  REQUIRE(o.nnz() == 2);
  CHECK(o.scale[0] == std::ldexp(1.0f, 113));
  const row_matrix decoded = split.decode();
  CHECK(decoded.allFinite());
  for (index_t c : {index_t{17}, index_t{200}}) {
    CHECK(std::abs(static_cast<float>(o.values[c == 17 ? 0 : 1])) == 32752.0f);
    // One FP16 step (16 * scale) from the weight, on the weight's side of zero.
    CHECK(std::abs(decoded(0, c) - w(0, c)) <= std::ldexp(1.0f, 117));
    CHECK(std::signbit(decoded(0, c)) == std::signbit(w(0, c)));
  }
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
