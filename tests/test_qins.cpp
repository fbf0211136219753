// Round trips, derived error bounds, the span rule, edge cases and storage checks of the QINS
// codecs, and the linearity property that separates them from the linear codecs.
#include <catch2/catch.hpp>

#include <bit>
#include <cfloat>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include <qcodec/qcodec.hpp>

#include "linear_bounds.hpp"
#include "synthetic_weights.hpp"

using namespace qcodec;
using examples::synthetic_weights;
using examples::weight_family;

namespace {

/// Bytes of the layout computed independently of the codec: codes, row scales, the LUT.
template <class Codec>
std::size_t expected_bytes(index_t rows, index_t cols) {
  constexpr int bits = codec_traits<Codec>::bits;
  const index_t code_bytes = rows * (bits == 8 ? cols : (cols + 1) / 2);
  return static_cast<std::size_t>(code_bytes + 4 * rows + 4 * (index_t{1} << bits));
}

/// Checks the rounding rule of qins_math.hpp against a scan of every code: each weight's error
/// is the least over all codes (ties: the larger magnitude), and its sign is kept.
template <class Codec>
void check_value_nearest(matrix_view w, const encoded_matrix<Codec>& encoded) {
  const auto& s = encoded.storage();
  const row_matrix decoded = encoded.decode();
  index_t violations = 0;
  for (index_t r = 0; r < w.rows(); ++r)
    for (index_t c = 0; c < w.cols(); ++c) {
      const double x = w(r, c), y = decoded(r, c);
      double best = std::numeric_limits<double>::infinity(), best_magnitude = 0;
      for (int code = 0; code < Codec::lut_size; ++code) {
        const double v = qins_math::decode(static_cast<unsigned>(code), s.lut.data(),
                                           s.scales[static_cast<std::size_t>(r)]);
        const double e = std::abs(x - v);
        if (e < best || (e == best && std::abs(v) > best_magnitude)) {
          best = e;
          best_magnitude = std::abs(v);
        }
      }
      const bool ok = std::abs(x - y) == best && std::abs(y) == best_magnitude &&
                      (y == 0 || std::signbit(x) == std::signbit(y));
      if (!ok && violations++ < 5)
        FAIL_CHECK("row " << r << " col " << c << ": w=" << x << " decoded=" << y
                          << " nearest error=" << best);
    }
  CHECK(violations == 0);
}

/// Squared reconstruction error, summed in FP64.
double squared_error(matrix_view w, matrix_view decoded) {
  return (w.cast<double>() - decoded.cast<double>()).squaredNorm();
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("qins round trip meets the level-spacing bound on any shape", "[qins]",
                        qins_codecs) {
  index_t rows, cols;  // std::tie: clang 14 cannot capture a structured binding
  std::tie(rows, cols) = GENERATE(table<index_t, index_t>(
      {{1, 1}, {1, 77}, {77, 1}, {32, 32}, {128, 128}, {33, 257}, {5, 300}}));
  const auto family = GENERATE(weight_family::gaussian, weight_family::heavy_tailed,
                               weight_family::outlier_columns);
  row_matrix w = synthetic_weights(rows, cols, family, 7 + rows * cols);
  for (index_t i = 5; i < w.size(); i += 11) w.data()[i] = 0.0f;  // exact zeros
  const auto encoded = TestType{}.encode(w);
  const auto& s = encoded.storage();
  CAPTURE(codec_traits<TestType>::name, rows, cols, examples::family_name(family));
  REQUIRE(encoded.rows() == rows);
  REQUIRE(encoded.cols() == cols);
  CHECK(encoded.byte_size() == expected_bytes<TestType>(rows, cols));
  CHECK(encoded.bpw() == Approx(8.0 * expected_bytes<TestType>(rows, cols) / (rows * cols)));
  CHECK_NOTHROW(TestType::validate(s, "round trip"));
  check_value_nearest(w, encoded);

  // Bound: between adjacent levels a > a*rho the nearer one is taken, so the worst weight is
  // the midpoint a(1 + rho)/2 with error a(1 - rho)/2: relative error (1 - rho)/(1 + rho).
  // For w between the levels, the error is w - a*rho below the midpoint and a - w above it,
  // relative 1 - a*rho/w (growing in w) and a/w - 1 (falling), so the midpoint is the worst.
  // The stored levels are fl(fl(rho^(m-1)) * scale), each within e = 2^-23 of the exact value;
  // with a' = a(1 + e1), b' = a rho (1 + e2) the worst ratio (a' - b')/(a' + b') is at most
  // ((1 - rho)/(1 + rho) + e)/(1 - e) < (1 - rho)/(1 + rho) + 2^-21.
  // Weights below the smallest level d go to 0 or d, whichever is nearer: error <= d/2.
  const double rho = TestType::rho(s);
  const double relative_bound = (1 - rho) / (1 + rho) + 0x1p-21;
  const row_matrix decoded = encoded.decode();
  index_t violations = 0;
  for (index_t r = 0; r < rows; ++r) {
    const float scale = s.scales[static_cast<std::size_t>(r)];
    const double smallest = s.lut[TestType::max_magnitude] * scale;
    index_t largest = 0;
    for (index_t c = 0; c < cols; ++c) {
      const double x = w(r, c), y = decoded(r, c), error = std::abs(x - y);
      if (std::abs(x) > std::abs(w(r, largest))) largest = c;
      const bool ok = x == 0                  ? y == 0
                      : std::abs(x) >= smallest ? error <= relative_bound * std::abs(x)
                                                : error <= smallest / 2;
      if (!ok && violations++ < 5)
        FAIL_CHECK("row " << r << " col " << c << ": w=" << x << " decoded=" << y
                          << " relative bound=" << relative_bound);
    }
    // The largest weight of a row is the row scale; code 1 decodes to lut[1] * scale = scale.
    CHECK(decoded(r, largest) == w(r, largest));
  }
  CHECK(violations == 0);
  CHECK(measure_fidelity(w, decoded).sign_flips == 0);
}

TEMPLATE_LIST_TEST_CASE("qins span minimises the squared error over the search grid", "[qins]",
                        qins_codecs) {
  // 128 x 128 is below the 2^16-element sample limit, so the search measures the whole
  // tensor's error; it keeps the best span it evaluates and evaluates every grid point, so
  // none may do better. Slack: the two FP64 sums of 2^14 terms differ by at most 2^14 * 2^-53
  // relative each.
  const auto family = GENERATE(weight_family::gaussian, weight_family::heavy_tailed,
                               weight_family::outlier_columns);
  const row_matrix w = synthetic_weights(128, 128, family, 31);
  const auto chosen = TestType{}.encode(w);
  const double chosen_error = squared_error(w, chosen.decode());
  const double span = TestType::span_octaves(chosen.storage());
  CAPTURE(codec_traits<TestType>::name, examples::family_name(family), span);
  CHECK(span >= TestType::min_span_octaves * (1 - 1e-6));
  CHECK(span <= TestType::max_span_octaves * (1 + 1e-6));
  for (int j = 0; j <= 24; ++j) {
    const double grid_span = std::exp2(j / 4.0);
    const double grid_error = squared_error(w, TestType{}.encode_with_span(w, grid_span).decode());
    CAPTURE(grid_span);
    CHECK(chosen_error <= grid_error * (1 + 0x1p-37));
  }
}

TEMPLATE_LIST_TEST_CASE("qins edge rows encode without NaN, Inf or sign flips", "[qins]",
                        qins_codecs) {
  row_matrix w(7, 70);
  for (index_t c = 0; c < w.cols(); ++c) {
    w(0, c) = 0.0f;                                          // zero row
    w(1, c) = 0.37f;                                         // constant row
    w(2, c) = (c % 2 ? -1.0f : 1.0f) * 1e-40f * (c + 1);     // denormals
    w(3, c) = -0.25f;                                        // negative constant
    w(4, c) = (c % 3 ? 1.0f : -1.0f) * 1e-3f * (c + 1);       // ordinary
    w(5, c) = (c % 2 ? -FLT_MAX : FLT_MAX) * (c == 0 ? 1.0f : 1.0f / (c + 1));  // huge
    w(6, c) = c == 3 ? -0.0f : std::ldexp(1.0f, -static_cast<int>(c));  // 70 octaves, one -0
  }
  const auto encoded = TestType{}.encode(w);
  const row_matrix decoded = encoded.decode();
  CHECK(decoded.allFinite());
  CHECK((decoded.row(0).array() == 0.0f).all());
  CHECK((decoded.row(1).array() == 0.37f).all());
  CHECK((decoded.row(3).array() == -0.25f).all());
  CHECK(decoded(6, 3) == 0.0f);
  CHECK(measure_fidelity(w, decoded).sign_flips == 0);
  check_value_nearest(w, encoded);
}

TEMPLATE_LIST_TEST_CASE("qins rejects a span outside its range by name", "[qins][errors]",
                        qins_codecs) {
  const row_matrix good = synthetic_weights(6, 20, weight_family::gaussian, 1);
  for (double span : {0.0, -1.0, 65.0, std::numeric_limits<double>::quiet_NaN()})
    CHECK_THROWS_WITH(TestType{}.encode_with_span(good, span, "s"),
                      Catch::Contains("'s'") && Catch::Contains("span"));
  // In range, but so small that the smallest level rounds to 1: refused by the caller's name,
  // not left to the storage validation.
  CHECK_THROWS_WITH(TestType{}.encode_with_span(good, 1e-9, "s"),
                    Catch::Contains("'s'") && Catch::Contains("too small"));
}

TEMPLATE_LIST_TEST_CASE("qins encodes rows with a shared LUT, nearest to its levels",
                        "[qins]", qins_codecs) {
  const auto shared = TestType{}.encode(synthetic_weights(3, 64, weight_family::gaussian, 4)).storage();
  const row_matrix w = synthetic_weights(5, 77, weight_family::heavy_tailed, 5);
  const auto encoded = TestType{}.encode_with_lut_of(w, shared, "w");
  const auto& lut = encoded.storage().lut;
  CHECK(std::equal(lut.begin(), lut.end(), shared.lut.begin(), shared.lut.end(),
                   [](float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b); }));
  check_value_nearest(w, encoded);
  auto bad = shared;
  bad.lut[4] *= 1.01f;
  CHECK_THROWS_WITH(TestType{}.encode_with_lut_of(w, bad, "w"),
                    Catch::Contains("'w'") && Catch::Contains("lut[4]"));
}

TEMPLATE_LIST_TEST_CASE("qins validate accepts encodings and rejects inconsistent storage",
                        "[qins][errors]", qins_codecs) {
  const auto encoded = TestType{}.encode(synthetic_weights(6, 45, weight_family::heavy_tailed, 8));
  const auto& good = encoded.storage();
  CHECK_NOTHROW(TestType::validate(good, "ok"));
  const auto rejects = [&](auto corrupt, const char* what) {
    auto s = good;
    corrupt(s);
    CHECK_THROWS_WITH(TestType::validate(s, "t"), Catch::Contains("'t'") && Catch::Contains(what));
  };
  rejects([](auto& s) { s.codes.pop_back(); }, "codes");
  rejects([](auto& s) { s.scales.push_back(1.0f); }, "scales");
  rejects([](auto& s) { s.scales[2] = -1.0f; }, "scale 2 is");
  rejects([](auto& s) { s.scales[1] = std::numeric_limits<float>::infinity(); }, "scale 1 is");
  rejects([](auto& s) { s.lut.pop_back(); }, "lut");
  rejects([](auto& s) { s.lut[0] = 1e-3f; }, "lut[0]");
  rejects([](auto& s) { s.lut[1] = 0.5f; }, "lut[1]");
  rejects([](auto& s) { s.lut[3] = std::nextafter(s.lut[3], 2.0f) * (1 + 0x1p-21f); }, "lut[3]");
  rejects([](auto& s) { s.lut[TestType::sign_bit + 2] = s.lut[2]; }, "must be -lut[2]");
  // +0.0 equals -0.0, but the vector backends decode code sign | 0 as -0.0.
  rejects([](auto& s) { s.lut[TestType::sign_bit] = 0.0f; }, "must be -lut[0]");
  rejects([](auto& s) {
    for (int m = 2; m <= TestType::max_magnitude; ++m) s.lut[m] = 1.0f;
  }, "span");
  auto bad_shape = good;
  bad_shape.cols += 3;
  CHECK_THROWS_AS(TestType::validate(bad_shape, "t"), qcodec::error);
  std::vector<std::string> names;
  good.visit_arrays([&](std::string_view name, const auto&) { names.emplace_back(name); });
  CHECK(names == std::vector<std::string>{"codes", "scales", "lut"});
}

TEST_CASE("qins traits and codec lists", "[qins][traits]") {
  CHECK(codec_traits<qins<8>>::name == "qins8");
  CHECK(codec_traits<qins<4>>::name == "qins4");
  CHECK(codec_traits<qins<4>>::bits == 4);
  CHECK(codec_traits<qins<8>>::block_size == 0);
  STATIC_REQUIRE(!is_linear_codec<qins<8>>);
  STATIC_REQUIRE(!is_linear_codec<qins<4>>);
  STATIC_REQUIRE(std::tuple_size_v<qins_codecs> == 2);
  STATIC_REQUIRE(std::tuple_size_v<all_codecs> >= std::tuple_size_v<linear_codecs> + 2);
}

namespace {

/// The integer an integer-domain kernel would multiply: code - offset for a linear codec, the
/// signed magnitude code for QINS.
template <class Codec>
row_matrix signed_codes(const encoded_matrix<Codec>& encoded) {
  const auto& s = encoded.storage();
  constexpr int bits = codec_traits<Codec>::bits;
  row_matrix q(s.rows, s.cols);
  for (index_t r = 0; r < s.rows; ++r)
    for (index_t c = 0; c < s.cols; ++c) {
      const int code = static_cast<int>(unpack_code<bits>(s.codes.data() + r * s.row_bytes(), c));
      if constexpr (is_linear_codec<Codec>) {
        q(r, c) = static_cast<float>(code - s.offset(s.block_index(r, c / s.group_size())));
      } else {
        const int m = code & Codec::max_magnitude;
        q(r, c) = static_cast<float>(code & Codec::sign_bit ? -m : m);
      }
    }
  return q;
}

/// Rows scaled into [-0.99, 0.99] with every 32nd column pinned to 1: every row's and every
/// group's largest magnitude is exactly 1 in x, in y and in any convex mix, so all three
/// share their scales.
row_matrix unit_rows(std::uint64_t seed) {
  row_matrix w = synthetic_weights(64, 256, weight_family::gaussian, seed);
  for (index_t r = 0; r < w.rows(); ++r) {
    w.row(r) *= 0.99f / w.row(r).cwiseAbs().maxCoeff();
    for (index_t c = 0; c < w.cols(); c += 32) w(r, c) = 1.0f;
  }
  return w;
}

}  // namespace

TEMPLATE_TEST_CASE("linearity: integer codes add for linear codecs, not for QINS",
                   "[qins][linearity]", (linear<8, per_row>), (linear<4, per_row>),
                   (linear<8, per_group<32>>), qins<8>, qins<4>) {
  // Integer-domain compute relies on Q(a x + b y) = a Q(x) + b Q(y) for the integer codes Q
  // (in values any codec with a bounded error satisfies this up to that error). x, y and
  // a x + b y share every scale (unit_rows, absmax clipping), so for a linear codec
  // Q(v) = rint(v / s) and each of the three roundings is off by at most 1/2 (plus 2^-24
  // * 127 for the divisions and the FP32 mix): |Q(ax + by) - a Q(x) - b Q(y)| <= (1 + a + b)/2
  // = 1 for a + b = 1. QINS codes are logarithms of magnitudes with a sign, so the mix of two
  // codes is not the code of the mix: the same bound fails for most weights.
  constexpr float a = 0.75f, b = 0.25f;
  const row_matrix x = unit_rows(1), y = unit_rows(2);
  const row_matrix mix = a * x + b * y;
  row_matrix deviation;
  if constexpr (is_linear_codec<TestType>) {
    TestType codec;
    codec.clip = clip_rule::absmax();
    deviation = signed_codes(codec.encode(mix)) - a * signed_codes(codec.encode(x)) -
                b * signed_codes(codec.encode(y));
  } else {
    const double span = TestType::span_octaves(TestType{}.encode(x).storage());
    const TestType codec;
    deviation = signed_codes(codec.encode_with_span(mix, span)) -
                a * signed_codes(codec.encode_with_span(x, span)) -
                b * signed_codes(codec.encode_with_span(y, span));
  }
  const double bound = 1 + 0x1p-16;
  const double violating = (deviation.array().abs() > bound).cast<double>().mean();
  CAPTURE(codec_traits<TestType>::name, deviation.cwiseAbs().maxCoeff(), violating);
  if constexpr (is_linear_codec<TestType>) {
    CHECK(violating == 0);
  } else {
    CHECK(violating > 0.5);
  }
}
