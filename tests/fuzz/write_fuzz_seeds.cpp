// Writes the fuzz target's seed corpus into <dir>: small valid files with plain F32/F16/BF16
// tensors and encoded tensors of a few codecs (linear, QINS, outlier split).

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
  });
}
