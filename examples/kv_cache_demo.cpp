// A synthetic attention step over a quantized value cache: the memory the cache saves and the
// error it adds to the attention output, for INT8 and QINS values (keys stay FP16).

#include <cmath>
#include <cstdio>
#include <random>

#include <qcodec/core/fidelity.hpp>
#include <qcodec/kv/kv_cache.hpp>

#include "synthetic_weights.hpp"

using namespace qcodec;

namespace {

/// softmax(q K^T / sqrt(d)) V for one query.
row_matrix attend(const row_matrix& query, const row_matrix& keys, const row_matrix& values) {
  row_matrix scores = (query * keys.transpose()) / std::sqrt(static_cast<float>(keys.cols()));
  scores = (scores.array() - scores.maxCoeff()).exp().matrix();
  scores /= scores.sum();
  return scores * values;
}

template <class Codec>
void run(const char* label, const row_matrix& query, const row_matrix& keys, const row_matrix& values) {
  value_cache<Codec> cache(values.cols(), values.rows());
  for (index_t t = 0; t < values.rows(); ++t)
    cache.append({values.row(t).data(), static_cast<std::size_t>(values.cols())});
  const row_matrix decoded = cache.read(0, cache.size());
  const auto value_error = measure_fidelity(values, decoded);
  const auto output_error = measure_fidelity(attend(query, keys, values), attend(query, keys, decoded));
  const double fp32_bytes = 4.0 * static_cast<double>(values.size());
  std::printf("%-8s %10zu bytes (%.2fx smaller than FP32, %.2fx than FP16)  values rel_err %.2e"
              "  attention output rel_err %.2e (SNR %.1f dB)\n",
              label, cache.byte_size(), fp32_bytes / static_cast<double>(cache.byte_size()),
              fp32_bytes / 2 / static_cast<double>(cache.byte_size()), value_error.rel_err,
              output_error.rel_err, output_error.snr_db);
}

}  // namespace

int main() {
  constexpr index_t head_dim = 128, tokens = 2048;
  const auto family = examples::weight_family::heavy_tailed;
  // Keys rounded to FP16, as an engine keeps them.
  const row_matrix keys =
      examples::synthetic_weights(tokens, head_dim, family, 1).cast<half>().cast<float>() * 50.0f;
  const row_matrix values = examples::synthetic_weights(tokens, head_dim, family, 2) * 50.0f;
  const row_matrix query = examples::synthetic_weights(1, head_dim, family, 3) * 50.0f;
  std::printf("attention step: one query over %td cached tokens, head_dim %td, FP32 values %td bytes\n",
              tokens, head_dim, static_cast<index_t>(4 * values.size()));
  run<linear<8>>("int8", query, keys, values);
  run<qins<8>>("qins8", query, keys, values);
  run<linear<4>>("int4", query, keys, values);
  return 0;
}
