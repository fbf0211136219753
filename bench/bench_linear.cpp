// Forward of the dual-stream linear op (decode + GEMV/GEMM) for several codecs against Eigen's
// FP32 GEMV/GEMM on the same shapes, in one binary so ratios come from one run. Also the
// crossover cases: the fused decode-GEMV and the tiled decode-then-GEMM forced at small
// batches, which set dual_stream_linear::default_gemv_max_batch.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>
#include <utility>

#include <qcodec/qcodec.hpp>

#include "synthetic_weights.hpp"

namespace {

using qcodec::index_t;
using qcodec::row_matrix;

struct shape {
  index_t rows, cols;
  std::string label() const { return std::to_string(rows) + "x" + std::to_string(cols); }
};

const row_matrix& weights(shape s) {
  static std::map<std::pair<index_t, index_t>, row_matrix> cache;
  auto [it, inserted] = cache.try_emplace({s.rows, s.cols});
  if (inserted)
    it->second = qcodec::examples::synthetic_weights(s.rows, s.cols,
                                                     qcodec::examples::weight_family::heavy_tailed, 1);
  return it->second;
}

row_matrix activations(index_t batch, index_t cols) {
  return row_matrix::Random(batch, cols);
}

void set_counters(benchmark::State& state, shape s, index_t batch, double weight_bytes) {
  const double flops = 2.0 * static_cast<double>(s.rows * s.cols * batch);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_B/s"] = benchmark::Counter(weight_bytes, benchmark::Counter::kIsIterationInvariantRate);
}

void eigen_forward(benchmark::State& state, shape s, index_t batch) {
  const row_matrix& w = weights(s);
  const row_matrix x = activations(batch, s.cols);
  row_matrix y(batch, s.rows);
  for (auto _ : state) {
    if (batch == 1) y.row(0).noalias() = w * x.row(0).transpose();  // Eigen GEMV
    else y.noalias() = x * w.transpose();                           // Eigen GEMM
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(state, s, batch, 4.0 * static_cast<double>(w.size()));
}

template <class Codec>
qcodec::dual_stream_linear<Codec>& op_for(shape s) {
  static std::map<std::pair<index_t, index_t>, std::unique_ptr<qcodec::dual_stream_linear<Codec>>> ops;
  auto& op = ops[{s.rows, s.cols}];
  if (!op) op = std::make_unique<qcodec::dual_stream_linear<Codec>>(Codec{}.encode(weights(s)));
  return *op;
}

template <class Codec>
void codec_forward(benchmark::State& state, shape s, index_t batch, index_t gemv_max_batch) {
  auto& op = op_for<Codec>(s);
  op.set_gemv_max_batch(gemv_max_batch);
  const row_matrix x = activations(batch, s.cols);
  row_matrix y(batch, s.rows);
  for (auto _ : state) {
    op.forward(x, y);
    benchmark::DoNotOptimize(y.data());
  }
  op.set_gemv_max_batch(op.default_gemv_max_batch);
  set_counters(state, s, batch,
               static_cast<double>(op.base().byte_size() + op.ortho().byte_size()));
  state.counters["bpw"] = 8.0 * static_cast<double>(op.base().byte_size() + op.ortho().byte_size()) /
                          static_cast<double>(s.rows * s.cols);
}

constexpr shape shapes[] = {{4096, 4096}, {11008, 4096}, {2048, 5632}, {768, 3072}};
constexpr index_t batches[] = {1, 8, 64, 256};

template <class Codec>
void register_codec(const std::string& label) {
  for (shape s : shapes)
    for (index_t batch : batches)
      benchmark::RegisterBenchmark(
          ("BM_" + label + "_forward/" + s.label() + "/" + std::to_string(batch)).c_str(),
          [=](benchmark::State& state) {
            codec_forward<Codec>(state, s, batch, qcodec::dual_stream_linear<Codec>::default_gemv_max_batch);
          })->Unit(benchmark::kMillisecond)->UseRealTime();
}

template <class Codec>
void register_crossover(const std::string& label, shape s) {
  for (index_t batch : {1, 2, 4, 8, 16})
    for (bool fused : {true, false})
      benchmark::RegisterBenchmark(
          ("BM_" + label + "_crossover/" + s.label() + "/" + std::to_string(batch) +
           (fused ? "/gemv" : "/gemm")).c_str(),
          [=](benchmark::State& state) { codec_forward<Codec>(state, s, batch, fused ? batch : 0); })
          ->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qcodec;
  for (shape s : shapes)
    for (index_t batch : batches)
      benchmark::RegisterBenchmark(
          ("BM_eigen-fp32_forward/" + s.label() + "/" + std::to_string(batch)).c_str(),
          [=](benchmark::State& state) { eigen_forward(state, s, batch); })
          ->Unit(benchmark::kMillisecond)->UseRealTime();
  register_codec<linear<8>>("int8");
  register_codec<linear<8, per_group<128>>>("int8-g128");
  register_codec<linear<4, per_group<128>>>("int4-g128");
  register_codec<qins<8>>("qins8");
  register_codec<outlier_split<linear<4, per_group<128>>>>("outliers+int4-g128");
  register_crossover<linear<4, per_group<128>>>("int4-g128", {4096, 4096});
  register_crossover<linear<8>>("int8", {4096, 4096});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
