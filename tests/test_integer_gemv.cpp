// The integer-domain GEMV of linear codecs against an FP64 reference from the decoded weights.
// (Its refusal of QINS is the compile-failure test compile_fail/integer_gemv_rejects_qins.cpp.)
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include <qcodec/qcodec.hpp>
#include <qcodec/ops/integer_gemv.hpp>

#include "synthetic_weights.hpp"
#include "quantized_activations.hpp"
#include "targets.hpp"
#include "tested_codecs.hpp"

using namespace qcodec;
using examples::synthetic_weights;
using examples::weight_family;

namespace {

/// Checks y = x * Ŵᵀ against two FP64 references (header of ops/integer_gemv.hpp), with s_c
/// the activation step of column c's block:
///  - exact activations x: |y - x Ŵᵀ| <= (1/2 + 2^-17) sum s_c|ŵ_c| + 2^-22 (sum|x ŵ| + sum s_c|ŵ_c|),
///    the activation rounding plus the FP32 roundings of ŵ and of y (2^-24 each, with the
///    activation error folded into the second sum, and a factor 2 to spare);
///  - the quantized activations x^_c = s_c q_c: the integer part is exact, so only the FP32
///    roundings remain, |y - x^ Ŵᵀ| <= 2^-22 sum|x^ ŵ|.
void check_against_reference(const row_matrix& decoded, index_t block_cols, matrix_view x, matrix_view y) {
  index_t violations = 0;
  for (index_t b = 0; b < x.rows(); ++b) {
    const test::quantized_row q = test::quantized_activations(x.row(b).data(), x.cols(), block_cols);
    for (index_t r = 0; r < decoded.rows(); ++r) {
      double exact = 0, quantized = 0, step_sum = 0, exact_sum = 0, quantized_sum = 0;
      for (index_t c = 0; c < x.cols(); ++c) {
        const auto at = static_cast<std::size_t>(c);
        const double w = decoded(r, c), xc = x(b, c), xq = q.value[at];
        exact += xc * w;
        quantized += xq * w;
        step_sum += q.step[at] * std::abs(w);
        exact_sum += std::abs(xc * w);
        quantized_sum += std::abs(xq * w);
      }
      const double exact_bound = (0.5 + 0x1p-17) * step_sum + 0x1p-22 * (exact_sum + step_sum);
      const bool ok = std::abs(y(b, r) - exact) <= exact_bound &&
                      std::abs(y(b, r) - quantized) <= 0x1p-22 * quantized_sum;
      if (!ok && violations++ < 5)
        FAIL_CHECK("batch " << b << " row " << r << ": y=" << y(b, r) << " exact=" << exact
                            << " (bound " << exact_bound << ") quantized=" << quantized);
    }
  }
  CHECK(violations == 0);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("integer gemv matches the FP64 reference within the activation step",
                        "[integer_gemv]", test::tested_linear_codecs) {
  index_t rows, cols;  // std::tie: clang 14 cannot capture a structured binding
  std::tie(rows, cols) = GENERATE(table<index_t, index_t>({{1, 1}, {7, 33}, {64, 300}, {33, 257}}));
  const index_t batch = GENERATE(1, 3);
  const auto family = GENERATE(weight_family::gaussian, weight_family::heavy_tailed);
  const row_matrix w = synthetic_weights(rows, cols, family, 5 + rows);
  const row_matrix x = synthetic_weights(batch, cols, weight_family::outlier_columns, 9 + cols);
  const auto encoded = TestType{}.encode(w);
  CAPTURE(codec_traits<TestType>::name, rows, cols, batch, examples::family_name(family));
  const row_matrix y = integer_gemv_ref(encoded, x);
  REQUIRE(y.rows() == batch);
  REQUIRE(y.cols() == rows);
  check_against_reference(encoded.decode(), integer_activation_cols<TestType>(encoded.storage()), x, y);
}

namespace {

/// Checks a SIMD integer kernel against the FP64 product of the quantized activations
/// x^_c = s_c q_c and the decoded weight: the integer parts are exact, and the FP32 part has
/// at most blocks + 2 roundings, one block per activation block (ops/integer_kernels-inl.hpp,
/// integer_panel), plus the rounding of each decoded ŵ, so
/// |y - x^ Ŵᵀ| <= (gamma_(blocks + 2) + 2^-24) sum|x^ ŵ|.
void check_kernel(const row_matrix& decoded, index_t block_cols, matrix_view x, matrix_view y) {
  const index_t blocks = (x.cols() + block_cols - 1) / block_cols;
  const double n = static_cast<double>(blocks + 2), u = 0x1p-24;
  const double relative = n * u / (1 - n * u) + u;
  index_t violations = 0;
  for (index_t b = 0; b < x.rows(); ++b) {
    const test::quantized_row q = test::quantized_activations(x.row(b).data(), x.cols(), block_cols);
    for (index_t r = 0; r < decoded.rows(); ++r) {
      double quantized = 0, magnitude = 0;
      for (index_t c = 0; c < x.cols(); ++c) {
        const double term = q.value[static_cast<std::size_t>(c)] * double{decoded(r, c)};
        quantized += term;
        magnitude += std::abs(term);
      }
      if (!(std::abs(y(b, r) - quantized) <= relative * magnitude) && violations++ < 5)
        FAIL_CHECK("batch " << b << " row " << r << ": y=" << y(b, r) << " ref=" << quantized
                            << " bound=" << relative * magnitude);
    }
  }
  CHECK(violations == 0);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("every supported target's integer kernel matches the quantized FP64 reference",
                        "[integer_gemv][simd]", test::tested_linear_codecs) {
  // Ragged shapes: columns not multiples of 4/8/16/64, rows not multiples of a panel (8, 16).
  index_t rows, cols;  // std::tie: clang 14 cannot capture a structured binding
  std::tie(rows, cols) = GENERATE(table<index_t, index_t>(
      {{3, 1}, {5, 63}, {4, 64}, {9, 130}, {6, 300}, {3, 1000}, {2, 4100}, {17, 257}, {33, 70}}));
  const index_t batch = GENERATE(1, 5, 8, 11);
  const row_matrix w = synthetic_weights(rows, cols, weight_family::heavy_tailed, 3 + rows);
  // Unaligned activations: a view one float into a larger buffer.
  const row_matrix buffer = synthetic_weights(batch, cols + 1, weight_family::outlier_columns, 7 + cols);
  const Eigen::Map<const row_matrix, Eigen::Unaligned, Eigen::OuterStride<>> x(
      buffer.data() + 1, batch, cols, Eigen::OuterStride<>(cols + 1));
  const auto encoded = TestType{}.encode(w);
  const row_matrix decoded = encoded.decode();
  const index_t block_cols = integer_activation_cols<TestType>(encoded.storage());
  row_matrix reference(batch, rows);
  integer_gemv_ref(encoded, x, reference);
  test::for_each_target([&](simd::target) {
    CAPTURE(codec_traits<TestType>::name, rows, cols, batch);
    row_matrix y = row_matrix::Constant(batch, rows, std::nanf(""));
    integer_gemv(encoded, x, y);
    check_kernel(decoded, block_cols, x, y);
    check_against_reference(decoded, block_cols, x, y);
  });
}

TEST_CASE("integer_rows writes exactly its rows, also from inside a panel", "[integer_gemv][simd]") {
  const row_matrix w = synthetic_weights(33, 70, weight_family::heavy_tailed, 8);
  const row_matrix x = synthetic_weights(3, 70, weight_family::gaussian, 9);
  const auto encoded = linear<4, per_group<32>>{}.encode(w);
  test::for_each_target([&](simd::target t) {
    row_matrix whole(3, 33);
    integer_gemv(encoded, x, whole);
    const integer_panels<linear<4, per_group<32>>> panels(encoded.storage(), t);
    REQUIRE(panels.target() == t);
    int8_activations a;
    a.quantize(x, panels.block_cols());
    row_matrix y = row_matrix::Constant(3, 33, std::nanf(""));
    integer_rows(panels, a, 3, 20, y);  // starts 3 rows into the first panel of every backend
    for (index_t b = 0; b < 3; ++b)
      for (index_t r = 0; r < 33; ++r) {
        CAPTURE(b, r);
        if (r >= 3 && r < 20) CHECK(y(b, r) == whole(b, r));
        else CHECK(std::isnan(y(b, r)));
      }
  });
}

TEST_CASE("integer gemv sums long rows without int32 overflow", "[integer_gemv]") {
  // A constant positive row under asymmetric INT8 has zero point 0 and codes 255; with
  // activations all 1 (codes 127) one row's dot product is 70000 * 127 * 255 > 2^31.
  const row_matrix w = row_matrix::Constant(2, 70000, 0.5f);
  const row_matrix x = row_matrix::Ones(1, 70000);
  using codec_type = linear<8, per_row, float, symmetry::asymmetric>;
  const auto encoded = codec_type{}.encode(w);
  const row_matrix y = integer_gemv_ref(encoded, x);
  CHECK(y(0, 0) > 0);
  const index_t block_cols = integer_activation_cols<codec_type>(encoded.storage());
  check_against_reference(encoded.decode(), block_cols, x, y);
  test::for_each_target([&](simd::target) {
    row_matrix fast(1, 2);
    integer_gemv(encoded, x, fast);
    check_against_reference(encoded.decode(), block_cols, x, fast);
  });
}

TEST_CASE("integer gemv: a zero activation row gives a zero output row", "[integer_gemv]") {
  const row_matrix w = synthetic_weights(5, 40, weight_family::heavy_tailed, 4);
  row_matrix x = synthetic_weights(2, 40, weight_family::gaussian, 6);
  x.row(1).setZero();
  const row_matrix y = integer_gemv(linear<4, per_group<32>>{}.encode(w), x);
  CHECK((y.row(1).array() == 0.0f).all());
  CHECK((y.row(0).array() != 0.0f).any());
}

TEST_CASE("integer gemv rejects mismatched shapes and non-finite activations", "[integer_gemv][errors]") {
  const auto encoded = linear<8>{}.encode(synthetic_weights(4, 16, weight_family::gaussian, 1));
  CHECK_THROWS_WITH(integer_gemv(encoded, row_matrix::Ones(2, 15)),
                    Catch::Contains("15 columns") && Catch::Contains("16"));
  row_matrix wrong_output(2, 5);
  CHECK_THROWS_WITH(integer_gemv(encoded, row_matrix::Ones(2, 16), wrong_output),
                    Catch::Contains("output is 2 x 5"));
  row_matrix x = row_matrix::Ones(2, 16);
  x(1, 9) = std::numeric_limits<float>::quiet_NaN();
  row_matrix y = row_matrix::Constant(2, 4, 7.0f);
  CHECK_THROWS_WITH(integer_gemv(encoded, x, y),
                    Catch::Contains("activations") && Catch::Contains("row 1, col 9"));
  CHECK((y.array() == 7.0f).all());
}
