// Writes the files the Python client check reads: <dir>/client.safetensors (plain F32, F16
// and BF16 tensors and encoded tensors of every codec family: linear, two-level, grid, QINS,
// the outlier split over linear, QINS and grid bases, Hadamard-rotated) and
// <dir>/reference.safetensors (qcodec's FP32 decoding of each encoded tensor, under the same
// names).

#include <filesystem>

#include "qcodec/codecs/codec_list.hpp"
#include "qcodec/io/encoded_tensors.hpp"
#include "synthetic_weights.hpp"
#include "../fixture_main.hpp"

using namespace qcodec;

int main(int argc, char** argv) {
  return fixture_main(argc, argv, "OUTPUT_DIR", [](const std::filesystem::path& dir) {
    using examples::weight_family;
    const auto w = [](index_t rows, index_t cols, std::uint64_t seed) {
      return examples::synthetic_weights(rows, cols, weight_family::heavy_tailed, seed);
    };
    io::safetensors_writer client, reference;
    client.add_matrix("embed.weight", w(8, 16, 1));
    client.add_matrix("norm.weight", row_matrix::Ones(1, 16), io::dtype::f16);
    client.add_matrix("lm_head.weight", w(8, 16, 2), io::dtype::bf16);
    const auto add = [&](const std::string& name, const auto& encoded) {
      io::add_encoded(client, name, encoded);
      reference.add_matrix(name, encoded.decode());
    };
    add("layers.0.q.weight", linear<8>{}.encode(w(24, 40, 3), "q"));
    add("layers.0.t.weight", linear<8, per_tensor>{}.encode(w(6, 10, 4), "t"));
    add("layers.0.up.weight", linear<4, per_group<128>>{}.encode(w(37, 301, 5), "up"));
    add("layers.0.down.weight",
        linear<4, per_group<32>, half, symmetry::asymmetric>{}.encode(w(12, 95, 6), "down"));
    add("layers.0.k.weight", linear<8, per_row, float, symmetry::asymmetric>{}.encode(w(5, 33, 7), "k"));
    // Two-level scales on rows longer than a super-block and no multiple of it (the last
    // super-block takes the tail), and the grid codecs with stored tables.
    add("layers.1.q.weight", two_level<4, 16>{}.encode(w(9, 700, 8), "q"));
    add("layers.1.k.weight", two_level<3, 32, symmetry::asymmetric>{}.encode(w(5, 300, 9), "k"));
    add("layers.1.up.weight", grid<4, 16, grid_levels::per_tensor, 6, 256, 2>{}.encode(w(7, 600, 10), "up"));
    add("layers.1.down.weight", grid<3, 32, grid_levels::per_tensor>{}.encode(w(6, 100, 11), "down"));
    add("layers.1.v.weight", grid<5, 16, grid_levels::per_tensor, 6>{}.encode(w(4, 520, 12), "v"));
    // QINS: 8 bits, and 4 bits on an odd width (a padding nibble per row).
    add("layers.2.q.weight", qins<8>{}.encode(w(9, 70, 13), "q"));
    add("layers.2.k.weight", qins<4>{}.encode(w(6, 45, 14), "k"));
    // The outlier split (default budget 1/256 of the weights) over a linear, a QINS and the
    // grid base (fixed two tables: the check reads them from grid.hpp); an empty ortho stream
    // (4 x 10 weights: no outlier within the budget, every ortho array empty); and rows wider
    // than 65536 columns (uint32 column indices, `columns32`).
    add("layers.3.up.weight", outlier_split<linear<4, per_group<128>>>{}.encode(w(37, 301, 15), "up"));
    add("layers.3.q.weight", outlier_split<qins<8>>{}.encode(w(16, 64, 16), "q"));
    add("layers.3.down.weight",
        outlier_split<grid<4, 32, grid_levels::fixed, 5, 256, 2>>{}.encode(w(6, 600, 17), "down"));
    add("layers.3.k.weight", outlier_split<qins<4>>{}.encode(w(5, 57, 18), "k"));
    add("layers.3.t.weight", outlier_split<linear<8>>{}.encode(w(4, 10, 19), "t"));
    add("layers.3.wide.weight", outlier_split<linear<8>>{}.encode(w(2, 66000, 20), "wide"));
    // Hadamard rotations: rows of 3 x 64 + 8 and of 64 + 8 + 4 + 1 columns (the tail blocks).
    add("layers.4.q.weight", rotated<two_level<4, 16>>{}.encode(w(5, 200, 21), "q"));
    add("layers.4.k.weight", rotated<linear<4, per_group<32>, half>>{}.encode(w(3, 77, 22), "k"));
    client.write(dir / "client.safetensors");
    reference.write(dir / "reference.safetensors");
  });
}
