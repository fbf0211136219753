// Fidelity reports, bounds, bit packing and clipping helpers.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <qcodec/qcodec.hpp>

using namespace qcodec;

TEST_CASE("fidelity report measures known errors", "[fidelity]") {
  row_matrix w(2, 3), w_hat(2, 3);
  w << 1, -2, 0, 3, 4, 0;
  w_hat << 1, 2, 0.5f, 3, 4, 0;  // one sign flip (-2 -> 2), one zero decoded non-zero
  const fidelity_report r = measure_fidelity(w, w_hat);
  CHECK(r.rel_err == Approx(std::sqrt(16.25 / 30.0)));
  CHECK(r.snr_db == Approx(-20 * std::log10(std::sqrt(16.25 / 30.0))));
  CHECK(r.max_abs_err == 4);
  CHECK(r.worst_row == 0);
  CHECK(r.worst_row_rel_err == Approx(std::sqrt(16.25 / 5.0)));
  CHECK(r.sign_flips == 2);
  const fidelity_report exact = measure_fidelity(w, w);
  CHECK(exact.rel_err == 0);
  CHECK(std::isinf(exact.snr_db));
  CHECK(measure_fidelity(row_matrix::Zero(2, 2), row_matrix::Zero(2, 2)).rel_err == 0);
  CHECK_THROWS_AS(measure_fidelity(w, row_matrix(3, 2)), qcodec::error);
}

TEST_CASE("a NaN or Inf in the reconstruction is never reported as a small error", "[fidelity]") {
  row_matrix w(3, 2), w_hat(3, 2);
  w << 1, 2, 3, 4, 5, 6;
  w_hat = w;
  w_hat(1, 0) = std::numeric_limits<float>::quiet_NaN();
  const fidelity_report nan = measure_fidelity(w, w_hat);
  CHECK(std::isnan(nan.rel_err));
  CHECK(std::isnan(nan.snr_db));
  CHECK(std::isnan(nan.max_abs_err));
  CHECK(nan.worst_row == 1);
  // Any bound, even one on sign flips only, refuses it.
  CHECK_THROWS_WITH(require(nan, {.max_sign_flips = 5}, "q"), Catch::Contains("'q'") && Catch::Contains("NaN"));
  CHECK_THROWS_AS(require(nan, {.max_abs_err = 1e9}, "q"), qcodec::error);

  w_hat = w;
  w_hat(2, 1) = std::numeric_limits<float>::infinity();
  const fidelity_report inf = measure_fidelity(w, w_hat);
  CHECK(std::isinf(inf.rel_err));
  CHECK(inf.snr_db == -std::numeric_limits<double>::infinity());
  CHECK(std::isinf(inf.max_abs_err));
  CHECK(inf.worst_row == 2);
  CHECK_THROWS_AS(require(inf, {.max_rel_err = 1e9}, "q"), qcodec::error);
  // A zero W against a non-zero Ŵ: infinitely wrong, not exact.
  CHECK(std::isinf(measure_fidelity(row_matrix::Zero(1, 2), w.topRows(1)).rel_err));
}

TEST_CASE("a missed fidelity bound throws with the tensor's name", "[fidelity]") {
  row_matrix w(1, 2), w_hat(1, 2);
  w << 1, -1;
  w_hat << 1.1f, 1;
  const fidelity_report r = measure_fidelity(w, w_hat);
  CHECK_NOTHROW(require(r, {}, "t"));
  CHECK_THROWS_WITH(require(r, {.max_rel_err = 0.5}, "blk.0.ffn"),
                    Catch::Contains("'blk.0.ffn'") && Catch::Contains("rel_err"));
  CHECK_THROWS_WITH(require(r, {.max_abs_err = 1.0}, "t"), Catch::Contains("max_abs_err"));
  CHECK_THROWS_WITH(require(r, {.max_sign_flips = 0}, "t"), Catch::Contains("sign flips"));
  CHECK_NOTHROW(require(r, {.max_rel_err = 1.5, .max_abs_err = 2.0, .max_sign_flips = 1}, "t"));
}

TEST_CASE("encode_validated enforces the caller's bound", "[fidelity]") {
  const row_matrix w = row_matrix::Random(16, 64);
  const auto ok = encode_validated(linear<8>{}, w, {.max_rel_err = 0.01}, "fine");
  CHECK(ok.report.rel_err < 0.01);
  CHECK(ok.report.rel_err == measure_fidelity(w, ok.encoded.decode()).rel_err);
  CHECK_THROWS_WITH(encode_validated(linear<4, per_tensor>{}, w, {.max_rel_err = 0.01}, "coarse"),
                    Catch::Contains("'coarse'"));
}

TEST_CASE("nibble packing puts even columns low and keeps the neighbour", "[bit_packing]") {
  std::uint8_t row[3] = {0, 0, 0};
  for (index_t i = 0; i < 5; ++i) pack_code<4>(row, i, static_cast<unsigned>(10 + i));
  CHECK(row[0] == (10 | 11 << 4));
  CHECK(row[1] == (12 | 13 << 4));
  CHECK(row[2] == 14);
  for (index_t i = 0; i < 5; ++i) CHECK(unpack_code<4>(row, i) == static_cast<unsigned>(10 + i));
  pack_code<4>(row, 1, 3);
  CHECK(unpack_code<4>(row, 0) == 10);
  CHECK(unpack_code<4>(row, 1) == 3);
  CHECK(packed_bytes<4>(5) == 3);
  CHECK(packed_bytes<8>(5) == 5);
}

TEST_CASE("quantize and dequantize agree on the code range and rounding", "[linear_math]") {
  // Round half to even: 2.5 -> 2, 3.5 -> 4.
  CHECK(linear_math::quantize(2.5f, 1.0f, 8, 1, 15) == 10);
  CHECK(linear_math::quantize(3.5f, 1.0f, 8, 1, 15) == 12);
  CHECK(linear_math::quantize(100.0f, 1.0f, 8, 1, 15) == 15);
  CHECK(linear_math::quantize(-100.0f, 1.0f, 8, 1, 15) == 1);
  CHECK(linear_math::quantize(5.0f, 0.0f, 8, 1, 15) == 8);
  CHECK(linear_math::dequantize(1, 8, 0.5f) == -3.5f);
  CHECK(linear_math::dequantize(15, 8, 0.5f) == 3.5f);
}

TEST_CASE("the mse clip search tries absmax down to 17/32 of it in steps of 1/32", "[clip]") {
  const auto fractions = detail::clip_fractions(clip_rule::mse());
  REQUIRE(fractions.size() == 16);
  for (std::size_t k = 0; k < fractions.size(); ++k) CHECK(fractions[k] == (32.0f - static_cast<float>(k)) / 32.0f);
  const auto absmax = detail::clip_fractions(clip_rule::absmax());
  REQUIRE(absmax.size() == 1);
  CHECK(absmax[0] == 1.0f);
}
