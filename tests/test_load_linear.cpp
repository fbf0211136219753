// Run-time codecs: layers loaded from a file by the codec name it records (io/load_linear.hpp)
// compute the same bits as the typed op, with the same alpha and integer-domain controls.
#include <catch2/catch.hpp>

#include <cmath>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include <qcodec/qcodec.hpp>
#include <qcodec/io/load_linear.hpp>

#include "synthetic_weights.hpp"
#include "temp_dir.hpp"

using namespace qcodec;
using examples::synthetic_weights;
using examples::weight_family;

namespace {

// Every layout family: linear per-row / per-group / per-tensor, QINS, a grid, a two-level
// codec, outlier splits over integer and non-integer bases, a rotation over an integer base.
using loaded_codecs =
    std::tuple<linear<8>, linear<4, per_group<32>, half, symmetry::asymmetric>, linear<8, per_tensor>, qins<8>,
               grid<4, 16, grid_levels::fixed, 6>, two_level<3, 16>, outlier_split<linear<4, per_group<128>>>,
               outlier_split<qins<8>>, rotated<linear<4, per_group<32>, half>>>;

constexpr index_t rows = 37, cols = 200;

}  // namespace

TEMPLATE_LIST_TEST_CASE("a layer loaded by its codec name computes the typed op's bits", "[io][op]", loaded_codecs) {
  test::temp_dir dir("qcodec_test_load_linear");
  const row_matrix w = synthetic_weights(rows, cols, weight_family::outlier_columns, 3);
  const auto encoded = TestType{}.encode(w, "layer.weight");
  std::vector<float> bias(rows);
  for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * static_cast<float>(i) - 0.2f;
  io::safetensors_writer writer;
  io::add_encoded(writer, "layer.weight", encoded);
  writer.add_array("layer.bias", std::span<const float>(bias));
  writer.write(dir / "m.safetensors");
  const auto file = io::safetensors_file::open(dir / "m.safetensors");

  any_linear layer = io::load_linear<loaded_codecs>(file, "layer.weight", std::string_view("layer.bias"));
  dual_stream_linear<TestType> typed(encoded, bias);
  using base = typename dual_stream_linear<TestType>::base_codec;
  CAPTURE(codec_traits<TestType>::name);
  CHECK(layer.codec_name() == codec_traits<TestType>::name);
  CHECK(layer.out_features() == rows);
  CHECK(layer.in_features() == cols);
  CHECK(layer.bpw() == encoded.bpw());
  CHECK(layer.has_integer_domain() == integer_codec<base>);
  CHECK(layer.integer_domain() == typed.integer_domain());

  const auto same_bits = [&](index_t batch) {
    const row_matrix x = synthetic_weights(batch, cols, weight_family::gaussian, 10 + static_cast<unsigned>(batch));
    row_matrix y(batch, rows), y_typed(batch, rows);
    layer.forward(x, y);
    typed.forward(x, y_typed);
    CAPTURE(batch, layer.integer_domain(), layer.alpha());
    CHECK(y == y_typed);
  };
  for (index_t batch : {1, 9}) same_bits(batch);
  layer.set_alpha(0.5f);
  typed.set_alpha(0.5f);
  CHECK(layer.alpha() == 0.5f);
  same_bits(3);
  if constexpr (integer_codec<base>) {
    layer.set_integer_domain(false);
    typed.set_integer_domain(false);
    CHECK_FALSE(layer.integer_domain());
    for (index_t batch : {1, 9}) same_bits(batch);
  } else {
    CHECK_THROWS_WITH(layer.set_integer_domain(true),
                      Catch::Contains(std::string(codec_traits<TestType>::name)) && Catch::Contains("no integer domain"));
    CHECK_NOTHROW(layer.set_integer_domain(false));
    CHECK_FALSE(layer.integer_domain());
  }
  // Errors are the typed op's: a mismatched x leaves y as it was.
  row_matrix y = row_matrix::Constant(2, rows, 7.0f);
  CHECK_THROWS_AS(layer.forward(row_matrix::Ones(2, cols - 1), y), qcodec::error);
  CHECK((y.array() == 7.0f).all());
}

TEST_CASE("load_linear refuses unknown codecs, bad biases and missing tensors by name", "[io][errors]") {
  test::temp_dir dir("qcodec_test_load_linear");
  const row_matrix w = synthetic_weights(rows, cols, weight_family::gaussian, 4);
  io::safetensors_writer writer;
  io::add_encoded(writer, "q.weight", qins<4>{}.encode(w));
  io::add_encoded(writer, "l.weight", linear<8>{}.encode(w));
  const std::vector<float> short_bias(rows - 1, 1.0f);
  writer.add_array("short.bias", std::span<const float>(short_bias));
  writer.add_matrix("square.bias", row_matrix::Ones(rows, rows));
  writer.write(dir / "m.safetensors");
  const auto file = io::safetensors_file::open(dir / "m.safetensors");

  // qins4 is not in the list the program compiled.
  CHECK_THROWS_WITH(io::load_linear<loaded_codecs>(file, "q.weight"),
                    Catch::Contains("q.weight") && Catch::Contains("unknown codec 'qins4'"));
  CHECK_THROWS_WITH(io::load_linear<loaded_codecs>(file, "absent.weight"), Catch::Contains("no encoded tensor 'absent.weight'"));
  CHECK_THROWS_WITH(io::load_linear<loaded_codecs>(file, "l.weight", std::string_view("short.bias")),
                    Catch::Contains("bias holds 36 values, expected 37"));
  CHECK_THROWS_WITH(io::load_linear<loaded_codecs>(file, "l.weight", std::string_view("square.bias")),
                    Catch::Contains("square.bias") && Catch::Contains("rank 2"));
  CHECK_THROWS_WITH(io::load_linear<loaded_codecs>(file, "l.weight", std::string_view("absent.bias")),
                    Catch::Contains("no tensor 'absent.bias'"));
  // A list that holds it (the default, all_codecs, compiles a layer of every codec: minutes).
  CHECK(io::load_linear<std::tuple<linear<8>, qins<4>>>(file, "q.weight").codec_name() == "qins4");
}
