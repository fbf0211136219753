// Writes a small synthetic LLM-like model, <dir>/model.safetensors, for the CLI tests: F32,
// F16 and BF16 projections, embeddings, norms, biases, an integer tensor, an odd width; and
// column-importance files for --importance (one good, two bad); and the same model as a
// sharded checkpoint, <dir>/sharded/ (three shards: the embedding alone, layer 0, the rest;
// model.safetensors.index.json; a config.json that qcodec-quantize leaves behind).

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qcodec/io/safetensors.hpp"
#include "synthetic_weights.hpp"
#include "../fixture_main.hpp"

using namespace qcodec;

int main(int argc, char** argv) {
  return fixture_main(argc, argv, "OUTPUT_DIR", [](const std::filesystem::path& dir) {
    using examples::weight_family;
    std::uint64_t seed = 1;
    const auto w = [&](index_t rows, index_t cols) {
      return examples::synthetic_weights(rows, cols, weight_family::heavy_tailed, seed++);
    };
    // A 1-D tensor (norm weights, biases).
    const auto vector = [&](index_t n, bool ones) {
      const row_matrix v = ones ? row_matrix(row_matrix::Ones(1, n)) : w(1, n);
      return std::vector<float>(v.data(), v.data() + n);
    };
    constexpr index_t vocab = 64, hidden = 160, mlp = 330;
    io::safetensors_writer model;
    model.set_metadata("format", "pt");
    model.add_matrix("model.embed_tokens.weight", w(vocab, hidden));
    for (int layer = 0; layer < 2; ++layer) {
      const std::string p = "model.layers." + std::to_string(layer) + ".";
      model.add_array<float>(p + "input_layernorm.weight", vector(hidden, true));
      model.add_matrix(p + "self_attn.q_proj.weight", w(hidden, hidden), io::dtype::f16);
      model.add_array<float>(p + "self_attn.q_proj.bias", vector(hidden, false));
      model.add_matrix(p + "self_attn.o_proj.weight", w(hidden, hidden));
      model.add_matrix(p + "mlp.up_proj.weight", w(mlp, hidden), io::dtype::bf16);
      model.add_matrix(p + "mlp.down_proj.weight", w(hidden, mlp));
    }
    model.add_array<float>("model.norm.weight", vector(hidden, true));
    model.add_matrix("lm_head.weight", w(vocab, hidden));
    const std::vector<std::int64_t> positions = {0, 1, 2, 3, 4, 5, 6, 7};
    model.add_array<std::int64_t>("position_ids", positions);
    model.write(dir / "model.safetensors");

    // The same tensors, byte for byte, in three shards and an index.
    const auto whole = io::safetensors_file::open(dir / "model.safetensors");
    const std::filesystem::path sharded = dir / "sharded";
    std::filesystem::create_directories(sharded);
    const std::string shard_names[3] = {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                        "model-00003-of-00003.safetensors"};
    io::safetensors_writer shards[3];
    nlohmann::json weight_map = nlohmann::json::object();
    std::uint64_t total = 0;
    for (const io::tensor_info& t : whole.tensors()) {
      const int k = t.name == "model.embed_tokens.weight" ? 0 : t.name.starts_with("model.layers.0.") ? 1 : 2;
      shards[k].add_tensor(t.name, t.dtype, t.shape, t.bytes);
      weight_map[t.name] = shard_names[k];
      total += t.bytes.size();
    }
    for (int k = 0; k < 3; ++k) {
      shards[k].set_metadata("format", "pt");
      shards[k].write(sharded / shard_names[k]);
    }
    const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    std::ofstream(sharded / "model.safetensors.index.json") << index.dump(2) << "\n";
    std::ofstream(sharded / "config.json") << "{\"model_type\": \"synthetic\"}\n";

    // Column importances for qcodec-quantize --importance: two weights (every 13th input
    // column 20x heavier), and two bad files (a wrong length, a name matching no weight).
    const auto importance = [](index_t n) {
      std::vector<float> h(static_cast<std::size_t>(n), 1.0f);
      for (std::size_t c = 0; c < h.size(); c += 13) h[c] = 20.0f;
      return h;
    };
    io::safetensors_writer good, short_one, unknown;
    good.add_array<float>("model.layers.0.self_attn.o_proj.weight", importance(hidden));
    good.add_array<float>("model.layers.1.mlp.down_proj.weight", importance(mlp));
    good.write(dir / "importance.safetensors");
    short_one.add_array<float>("model.layers.0.self_attn.o_proj.weight", importance(hidden - 10));
    short_one.write(dir / "importance_short.safetensors");
    unknown.add_array<float>("model.layers.9.mlp.nothing.weight", importance(hidden));
    unknown.write(dir / "importance_unknown.safetensors");
  });
}
