// Writes the fuzz targets' seed corpus into <dir>: small valid files with plain F32/F16/BF16
// tensors and encoded tensors of each family (INT8, INT4 per group, QINS, outlier split,
// two-level, grid with one and two levels of scales, rotated).

#include <filesystem>
#include <string>

#include "qcodec/codecs/codec_list.hpp"
#include "qcodec/io/encoded_tensors.hpp"
#include "synthetic_weights.hpp"
#include "../fixture_main.hpp"

using namespace qcodec;

int main(int argc, char** argv) {
  return fixture_main(argc, argv, "CORPUS_DIR", [](const std::filesystem::path& dir) {
    const row_matrix w = examples::synthetic_weights(3, 40, examples::weight_family::heavy_tailed, 9);
    int index = 0;
    const auto seed = [&](auto&& fill) {
      io::safetensors_writer writer;
      fill(writer);
      writer.write(dir / ("seed_" + std::to_string(index++) + ".safetensors"));
    };
    seed([&](io::safetensors_writer& s) {
      s.add_matrix("a", w);
      s.add_matrix("b", w.topRows(1), io::dtype::f16);
      s.add_matrix("c", w.leftCols(5), io::dtype::bf16);
      s.set_metadata("format", "pt");
    });
    seed([&](io::safetensors_writer& s) { io::add_encoded(s, "w", linear<8>{}.encode(w, "w")); });
    seed([&](io::safetensors_writer& s) {
      io::add_encoded(s, "w", linear<4, per_group<32>, half, symmetry::asymmetric>{}.encode(w, "w"));
      s.add_matrix("bias", w.topRows(1));
    });
    seed([&](io::safetensors_writer& s) { io::add_encoded(s, "w", qins<8>{}.encode(w, "w")); });
    seed([&](io::safetensors_writer& s) {
      io::add_encoded(s, "w", outlier_split<linear<4, per_group<128>>>{}.encode(w, "w"));
    });
    seed([&](io::safetensors_writer& s) { io::add_encoded(s, "w", linear<4, per_group<128>>{}.encode(w, "w")); });
    seed([&](io::safetensors_writer& s) { io::add_encoded(s, "w", two_level<4, 16>{}.encode(w, "w")); });
    seed([&](io::safetensors_writer& s) { io::add_encoded(s, "w", grid<4, 32>{}.encode(w, "w")); });
    seed([&](io::safetensors_writer& s) {
      io::add_encoded(s, "w", grid<4, 16, grid_levels::fixed, 6>{}.encode(w, "w"));
    });
    seed([&](io::safetensors_writer& s) {
      io::add_encoded(s, "w", rotated<linear<4, per_group<32>, half>>{}.encode(w, "w"));
    });
    // Two encoded tensors beside a plain one: the round trip keeps them apart.
    seed([&](io::safetensors_writer& s) {
      io::add_encoded(s, "q", qins<4>{}.encode(w.topRows(2), "q"));
      io::add_encoded(s, "k", two_level<3, 32, symmetry::asymmetric>{}.encode(w.bottomRows(2), "k"));
      s.add_matrix("norm", w.topRows(1), io::dtype::f16);
    });
  });
}
