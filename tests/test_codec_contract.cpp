// The contract every codec keeps, checked for each type of all_codecs: a new codec added to
// the list is tested here without writing a test.
#include <catch2/catch.hpp>

#include <limits>

#include <qcodec/qcodec.hpp>

#include "synthetic_weights.hpp"

using namespace qcodec;
using examples::synthetic_weights;
using examples::weight_family;

TEMPLATE_LIST_TEST_CASE("codecs reject bad input by name, row and column, input untouched",
                        "[contract][errors]", all_codecs) {
  row_matrix w = synthetic_weights(6, 20, weight_family::gaussian, 1);
  const auto bad = GENERATE(std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity());
  w(3, 17) = bad;
  const row_matrix before = w;
  CHECK_THROWS_WITH(TestType{}.encode(w, "layer0.q"),
                    Catch::Contains("'layer0.q'") && Catch::Contains("row 3, col 17"));
  CHECK(w.topRows(3) == before.topRows(3));
  const bool unchanged = std::isnan(bad) ? std::isnan(w(3, 17)) : w(3, 17) == bad;
  CHECK(unchanged);
  CHECK_THROWS_WITH(TestType{}.encode(row_matrix(0, 8), "empty"),
                    Catch::Contains("'empty'") && Catch::Contains("empty matrix"));
  CHECK_THROWS_AS(TestType{}.encode(row_matrix(4, 0)), qcodec::error);
}

TEMPLATE_LIST_TEST_CASE("codecs decode by row range exactly as whole, and validate their output",
                        "[contract]", all_codecs) {
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
                        "[contract]", all_codecs) {
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
  CHECK(measure_fidelity(w, decoded).sign_flips == 0);
}
