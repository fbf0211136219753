// The contract every codec keeps, checked for each type of test::tested_codecs (all_codecs, or
// its covering list): a new codec added to all_codecs is tested here without writing a test.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <qcodec/qcodec.hpp>

#include "plain_codec.hpp"
#include "synthetic_weights.hpp"
#include "targets.hpp"
#include "tested_codecs.hpp"

using namespace qcodec;
using examples::synthetic_weights;
using examples::weight_family;

TEMPLATE_LIST_TEST_CASE("codecs reject bad input by name, row and column, input untouched",
                        "[contract][errors]", test::tested_codecs) {
  row_matrix w = synthetic_weights(6, 20, weight_family::gaussian, 1);
  const auto bad = GENERATE(std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity());
  w(3, 17) = bad;
  const row_matrix before = w;
  CHECK_THROWS_WITH(TestType{}.encode(w, "layer0.q"),
                    Catch::Contains("'layer0.q'") && Catch::Contains("row 3, col 17"));
  // Every bit of the input, the NaN included (an encoder must not clean its input in place).
  CHECK(std::memcmp(w.data(), before.data(), sizeof(float) * static_cast<std::size_t>(w.size())) == 0);
  CHECK_THROWS_WITH(TestType{}.encode(row_matrix(0, 8), "empty"),
                    Catch::Contains("'empty'") && Catch::Contains("empty matrix"));
  CHECK_THROWS_AS(TestType{}.encode(row_matrix(4, 0)), qcodec::error);
}

TEMPLATE_LIST_TEST_CASE("codecs decode by row range exactly as whole, and validate their output",
                        "[contract]", test::tested_codecs) {
  const row_matrix w = synthetic_weights(9, 67, weight_family::heavy_tailed, 3);
  const auto encoded = TestType{}.encode(w);
  CHECK_NOTHROW(TestType::validate(encoded.storage(), "ok"));
  CHECK(encoded.bpw() == 8.0 * static_cast<double>(encoded.byte_size()) / (9 * 67));
  const row_matrix whole = encoded.decode();
  row_matrix part(4, 67);
  encoded.decode_rows(3, 7, part.data());
  CHECK(part == whole.middleRows(3, 4));
  CHECK_THROWS_AS(encoded.decode_rows(5, 10, part.data()), qcodec::error);
  CHECK_THROWS_AS(encoded.decode_rows(-1, 2, part.data()), qcodec::error);
}

TEMPLATE_LIST_TEST_CASE("codecs keep zero rows exact and never flip a sign on edge rows",
                        "[contract]", test::tested_codecs) {
  row_matrix w(4, 70);
  for (index_t c = 0; c < w.cols(); ++c) {
    w(0, c) = 0.0f;                                       // zero row
    w(1, c) = 0.37f;                                      // constant row
    w(2, c) = (c % 2 ? -1.0f : 1.0f) * 1e-40f * (c + 1);  // denormals
    w(3, c) = (c % 3 ? 1.0f : -1.0f) * 1e-3f * (c + 1);   // ordinary
  }
  const row_matrix decoded = TestType{}.encode(w).decode();
  CHECK(decoded.allFinite());
  CHECK((decoded.row(0).array() == 0.0f).all());
  // A rotated codec spreads the base's error over each block: small weights may change sign
  // (codecs/rotated.hpp); a zero row still rotates to zeros and decodes exactly.
  if constexpr (!is_rotated<TestType>) CHECK(measure_fidelity(w, decoded).sign_flips == 0);
}

TEMPLATE_LIST_TEST_CASE("an encoded_matrix built from corrupted storage throws", "[contract][errors]",
                        test::tested_codecs) {
  const auto encoded = TestType{}.encode(synthetic_weights(9, 67, weight_family::heavy_tailed, 3));
  CHECK_NOTHROW(encoded_matrix<TestType>(encoded.storage()));
  // The first array of every codec holds the codes (a nested storage: "base.codes"); one byte
  // short, a decode of the last row would read past it.
  auto truncated = encoded.storage();
  bool first = true;
  truncated.visit_arrays([&](std::string_view, auto& values) {
    if (first) values.pop_back();
    first = false;
  });
  CHECK_THROWS_AS(encoded_matrix<TestType>(std::move(truncated)), qcodec::error);
  auto misshapen = encoded.storage();
  misshapen.rows += 1;
  CHECK_THROWS_AS(encoded_matrix<TestType>(std::move(misshapen)), qcodec::error);
}

TEST_CASE("linear validate rejects a finite scale whose codes decode to Inf", "[contract][linear]") {
  const row_matrix w = synthetic_weights(3, 16, weight_family::gaussian, 9);
  auto s = linear<8>{}.encode(w).storage();
  s.scales[1] = FLT_MAX;  // finite, but code 255 decodes to (255 - 128) * FLT_MAX = Inf
  CHECK_THROWS_WITH(linear<8>::validate(s, "w"), Catch::Contains("'w'") && Catch::Contains("scale 1"));

  // Asymmetric: the reach max(15 - z, z) sets the limit. FLT_MAX / 10 overflows with z = 0
  // (15 * FLT_MAX / 10) and not with z = 7 (8 * FLT_MAX / 10), which then decodes finitely.
  using asym = linear<4, per_row, float, symmetry::asymmetric>;
  auto a = asym{}.encode(w).storage();
  a.scales[0] = FLT_MAX / 10;
  a.zero_points[0] = 0;
  CHECK_THROWS_AS(asym::validate(a, "w"), qcodec::error);
  a.zero_points[0] = 7;
  CHECK_NOTHROW(asym::validate(a, "w"));
  CHECK(encoded_matrix<asym>(a).decode().allFinite());
}

TEST_CASE("linear encode caps a huge scale at the largest one that decodes finitely",
          "[contract][linear]") {
  // Range [-FLT_MAX, FLT_MAX] asymmetric INT4: scale 2 FLT_MAX / 15, zero point rint(7.5) = 8,
  // reach max(15 - 8, 8) = 8, and 8 * 2/15 FLT_MAX overflows: the encoder must cap the scale
  // at the largest float s with 8 s finite (a direct bound, not ~5 * 10^5 one-ULP steps).
  using asym = linear<4, per_row, float, symmetry::asymmetric>;
  row_matrix w(1, 4);
  w << -FLT_MAX, FLT_MAX, 1.0f, -2.0f;
  const auto encoded = asym{}.encode(w);
  const float scale = encoded.storage().scales[0];
  const int zero = encoded.storage().zero_points[0];
  const int reach = std::max(asym::max_code - zero, zero - asym::min_code);
  CHECK(std::isfinite(static_cast<float>(reach) * scale));
  CHECK_FALSE(std::isfinite(static_cast<float>(reach) * std::nextafter(scale, FLT_MAX)));
  CHECK(encoded.decode().allFinite());
  CHECK(measure_fidelity(w, encoded.decode()).sign_flips == 0);
}

TEMPLATE_LIST_TEST_CASE("every supported SIMD target decodes bit-exactly like the reference",
                        "[contract][simd]", test::tested_codecs) {
  if constexpr (reference_codec<TestType>) {  // the wrappers reuse their base's
    // Ragged widths (not multiples of 8, 16, 32 or 64), an output pointer off by one float,
    // and exact zeros beside both signs so every code class appears.
    const auto cols = GENERATE(as<index_t>{}, 1, 7, 15, 17, 33, 63, 100, 129, 257, 515);
    row_matrix w = synthetic_weights(5, cols, weight_family::heavy_tailed, 41 + cols);
    for (index_t c = 0; c < cols; c += 5) w(1, c) = 0;
    const auto encoded = TestType{}.encode(w);
    std::vector<float> reference(static_cast<std::size_t>(5 * cols));
    TestType::decode_rows_ref(encoded.storage(), 0, 5, reference.data());
    test::for_each_target([&](simd::target) {
      std::vector<float> buffer(reference.size() + 1, -1.0f);
      encoded.decode_rows(0, 5, buffer.data() + 1);
      CAPTURE(cols);
      CHECK(std::memcmp(buffer.data() + 1, reference.data(), reference.size() * sizeof(float)) == 0);
      CHECK(buffer[0] == -1.0f);
    });
  }
}

TEMPLATE_LIST_TEST_CASE("every supported SIMD target's decode-dot meets the K + 2 rounding bound",
                        "[contract][simd]", test::tested_codecs) {
  if constexpr (fused_dot_codec<TestType>) {
    // Ragged widths around the 64-column QINS8 step, activation rows one float off alignment.
    const auto cols = GENERATE(as<index_t>{}, 1, 15, 17, 63, 64, 65, 129, 257, 515);
    constexpr index_t rows = 4;
    const row_matrix w = synthetic_weights(rows, cols, weight_family::heavy_tailed, 5 + cols);
    const auto encoded = TestType{}.encode(w);
    const Eigen::MatrixXd decoded = encoded.decode().template cast<double>();
    const row_matrix x = synthetic_weights(3, cols, weight_family::gaussian, 77 + cols);
    // Each output is scale * (a K-term sum) or a K-term sum of rounded products Ŵ x: at most
    // K + 2 roundings, so |out - ref| <= gamma_{K+2} sum |Ŵ| |x| (Higham, eq. 3.5).
    const double n = static_cast<double>(cols + 2), gamma = n * 0x1p-24 / (1 - n * 0x1p-24);
    test::for_each_target([&](simd::target t) { simd::dispatch(t, [&](auto target) {
      std::vector<float> buffer(static_cast<std::size_t>(3 * cols + 1));
      const float* x_rows[3];
      for (index_t b = 0; b < 3; ++b) {
        float* row = buffer.data() + 1 + b * cols;
        if constexpr (reorders_activations<TestType>)
          TestType::order_activations(target, cols, x.row(b).data(), row);
        else
          std::copy_n(x.row(b).data(), cols, row);
        x_rows[b] = row;
      }
      const auto check_rows = [&]<int NB>() {
        for (index_t r = 0; r < rows; ++r) {
          float out[NB];
          TestType::template dot_row<NB>(target, encoded.storage(), r, x_rows, out);
          for (int b = 0; b < NB; ++b) {
            const Eigen::VectorXd xb = x.row(b).transpose().template cast<double>();
            const double ref = decoded.row(r).dot(xb);
            const double bound = gamma * decoded.row(r).cwiseAbs().dot(xb.cwiseAbs());
            CAPTURE(cols, NB, r, b, out[b], ref);
            CHECK(std::abs(out[b] - ref) <= bound);
          }
        }
      };
      check_rows.template operator()<1>();  // one FMA chain per vector of a step
      check_rows.template operator()<3>();  // two chains per activation row
    }); });
  }
}

TEST_CASE("the capability layers refuse a codec of the base concept alone", "[contract][capabilities]") {
  using plain = test::plain_codec;
  STATIC_REQUIRE(codec<plain>);
  STATIC_REQUIRE_FALSE(reference_codec<plain>);
  STATIC_REQUIRE_FALSE(fused_dot_codec<plain>);
  STATIC_REQUIRE_FALSE(reorders_activations<plain>);
  STATIC_REQUIRE_FALSE(integer_codec<plain>);
  STATIC_REQUIRE_FALSE(wrapping_codec<plain>);
  STATIC_REQUIRE_FALSE(row_codec<plain>);
  STATIC_REQUIRE(std::is_same_v<base_stream_t<plain>, plain>);
}

TEMPLATE_LIST_TEST_CASE("every codec has a specification and a dense stream the op can run",
                        "[contract][capabilities]", test::tested_codecs) {
  // A wrapper's specification is its base's; the op runs every codec's base stream fused.
  STATIC_REQUIRE((reference_codec<TestType> || wrapping_codec<TestType>));
  STATIC_REQUIRE(reference_codec<base_stream_t<TestType>>);
  STATIC_REQUIRE(fused_dot_codec<base_stream_t<TestType>>);
  // Integer views are for one-level linear layouts (linear<>, the one codec with a granularity).
  STATIC_REQUIRE(integer_codec<TestType> == requires { typename TestType::granularity; });
}
