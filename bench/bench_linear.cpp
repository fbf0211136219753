// Forward of the dual-stream linear op (decode + GEMV/GEMM) for several codecs against Eigen's
// FP32 GEMV/GEMM on the same shapes, and a memory read-bandwidth probe, in one binary so ratios
// and "% of read bandwidth" come from one run. Cases are BM_<codec>_forward/<shape>/<batch>/
// threads:<n>, the op's default path (the integer domain for integer codecs); "<codec>/fp32" is
// an integer codec on the FP32 paths (set_integer_domain(false)). Each case cycles over enough
// copies of its weights (>= 96 MB in all) that every call reads them from DRAM, never from the
// 32 MB last-level cache. Also the crossover cases: the fused decode-GEMV and the tiled
// decode-then-GEMM forced at small batches, which set dual_stream_linear::default_gemv_max_batch,
// and BM_int8_dot_peak, the integer kernels' compute ceiling per thread.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#if QCODEC_USE_OPENMP
#  include <omp.h>
#endif

#include <qcodec/qcodec.hpp>

#include "synthetic_weights.hpp"

#define QCODEC_KERNELS "int8_dot_peak-inl.hpp"
#include <qcodec/core/simd/foreach_target.hpp>

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

/// Bytes of weights a case cycles over, so that each call streams them from DRAM.
constexpr double rotation_bytes = 96e6;

std::size_t copies_for(double bytes) {
  return static_cast<std::size_t>(std::max(1.0, std::ceil(rotation_bytes / bytes)));
}

void set_threads(int threads) {
#if QCODEC_USE_OPENMP
  omp_set_num_threads(threads);
#endif
  Eigen::setNbThreads(threads);
}

void eigen_forward(benchmark::State& state, shape s, index_t batch, int threads) {
  set_threads(threads);
  static std::pair<index_t, index_t> held{};
  static std::vector<row_matrix> copies;
  if (held != std::pair{s.rows, s.cols}) {
    copies.assign(copies_for(4.0 * static_cast<double>(s.rows * s.cols)), weights(s));
    held = {s.rows, s.cols};
  }
  const row_matrix x = activations(batch, s.cols);
  row_matrix y(batch, s.rows);
  std::size_t next = 0;
  for (auto _ : state) {
    const row_matrix& w = copies[next++ % copies.size()];
    if (batch == 1) y.row(0).noalias() = w * x.row(0).transpose();  // Eigen GEMV
    else y.noalias() = x * w.transpose();                           // Eigen GEMM
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(state, s, batch, 4.0 * static_cast<double>(s.rows * s.cols));
}

/// Copies of the op for one shape (the last one asked for; others are released).
template <class Codec>
std::vector<std::unique_ptr<qcodec::dual_stream_linear<Codec>>>& ops_for(shape s) {
  static std::pair<index_t, index_t> held{};
  static std::vector<std::unique_ptr<qcodec::dual_stream_linear<Codec>>> ops;
  if (held != std::pair{s.rows, s.cols}) {
    ops.clear();
    const auto encoded = Codec{}.encode(weights(s));
    auto first = std::make_unique<qcodec::dual_stream_linear<Codec>>(encoded);
    const double bytes = static_cast<double>(first->base().byte_size() + first->ortho().byte_size());
    ops.push_back(std::move(first));
    while (ops.size() < copies_for(bytes))
      ops.push_back(std::make_unique<qcodec::dual_stream_linear<Codec>>(encoded));
    held = {s.rows, s.cols};
  }
  return ops;
}

/// The op's path: its default, or the FP32 paths for an integer codec.
enum class op_path { default_path, fp32 };

template <class Codec>
void codec_forward(benchmark::State& state, shape s, index_t batch, index_t gemv_max_batch,
                   int threads, op_path path) {
  set_threads(threads);
  auto& ops = ops_for<Codec>(s);
  for (auto& op : ops) {
    op->set_gemv_max_batch(gemv_max_batch);
    if constexpr (qcodec::integer_codec<typename qcodec::dual_stream_linear<Codec>::base_codec>)
      op->set_integer_domain(path == op_path::default_path);
  }
  const row_matrix x = activations(batch, s.cols);
  row_matrix y(batch, s.rows);
  std::size_t next = 0;
  for (auto _ : state) {
    ops[next++ % ops.size()]->forward(x, y);
    benchmark::DoNotOptimize(y.data());
  }
  const auto& op = *ops.front();
  set_counters(state, s, batch,
               static_cast<double>(op.base().byte_size() + op.ortho().byte_size()));
  state.counters["bpw"] = 8.0 * static_cast<double>(op.base().byte_size() + op.ortho().byte_size()) /
                          static_cast<double>(s.rows * s.cols);
}

/// Memory read bandwidth: the sum of a 512 MB buffer (16x the last-level cache), each
/// thread summing a contiguous slice with 4 independent vector accumulators.
void read_bandwidth(benchmark::State& state, int threads) {
  set_threads(threads);
  static std::vector<float> buffer(index_t{128} << 20, 1.0f);
  const index_t n = static_cast<index_t>(buffer.size());
  for (auto _ : state) {
    float total = 0;
#if QCODEC_USE_OPENMP
#  pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : total)
#endif
    for (int t = 0; t < threads; ++t) {
      const index_t first = n * t / threads, last = n * (t + 1) / threads;
      total += Eigen::Map<const Eigen::ArrayXf>(buffer.data() + first, last - first).sum();
    }
    benchmark::DoNotOptimize(total);
  }
  state.counters["read_B/s"] = benchmark::Counter(4.0 * static_cast<double>(n),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

/// The ceiling of every integer kernel on one thread: the backend's inner step (dot_quad:
/// 4 int8 MACs per lane, vpdpbusd with VNNI) on registers and an L1-resident activation quad,
/// 12 independent accumulators, nothing else. Batch b at a fraction f of read bandwidth B
/// needs b * f * B MACs/s from INT8 codes (one MAC per weight byte and activation row),
/// 2 b f B from INT4.
void int8_dot_peak(benchmark::State& state) {
  constexpr int chains = 12, steps = 4096;
  index_t lanes = 0;
  for (auto _ : state)
    lanes = qcodec::simd::dispatch([](auto target) { return int8_dot_peak_run(target, steps); });
  state.SetLabel(std::string(qcodec::simd::target_name(qcodec::simd::active_target())));
  state.counters["GMAC/s"] = benchmark::Counter(1e-9 * chains * steps * 4 * static_cast<double>(lanes),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

constexpr shape shapes[] = {{11008, 4096}, {4096, 4096}, {2048, 5632}, {768, 3072}};
constexpr index_t batches[] = {1, 8, 64, 256};
constexpr int thread_counts[] = {1, 2};

std::string case_name(const std::string& label, shape s, index_t batch, int threads) {
  return "BM_" + label + "_forward/" + s.label() + "/" + std::to_string(batch) + "/threads:" +
         std::to_string(threads);
}

template <class Codec>
void register_codec(const std::string& label, op_path path = op_path::default_path) {
  for (shape s : shapes)
    for (index_t batch : batches)
      for (int threads : thread_counts)
        benchmark::RegisterBenchmark(
            case_name(label + (path == op_path::fp32 ? "/fp32" : ""), s, batch, threads).c_str(),
            [=](benchmark::State& state) {
              codec_forward<Codec>(state, s, batch,
                                   qcodec::dual_stream_linear<Codec>::default_gemv_max_batch,
                                   threads, path);
            })->Unit(benchmark::kMillisecond)->UseRealTime();
}

template <class Codec>
void register_crossover(const std::string& label, shape s) {
  for (index_t batch : {1, 2, 4, 8, 16})
    for (bool fused : {true, false})
      benchmark::RegisterBenchmark(
          ("BM_" + label + "_crossover/" + s.label() + "/" + std::to_string(batch) +
           (fused ? "/gemv" : "/gemm")).c_str(),
          [=](benchmark::State& state) { codec_forward<Codec>(state, s, batch, fused ? batch : 0, 1, op_path::fp32); })
          ->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qcodec;
  for (int threads : thread_counts)
    benchmark::RegisterBenchmark(("BM_read_bandwidth/threads:" + std::to_string(threads)).c_str(),
                                 [=](benchmark::State& state) { read_bandwidth(state, threads); })
        ->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("BM_int8_dot_peak/threads:1", int8_dot_peak)->UseRealTime();
  for (shape s : shapes)
    for (index_t batch : batches)
      for (int threads : thread_counts)
        benchmark::RegisterBenchmark(case_name("eigen-fp32", s, batch, threads).c_str(),
                                     [=](benchmark::State& state) { eigen_forward(state, s, batch, threads); })
            ->Unit(benchmark::kMillisecond)->UseRealTime();
  register_codec<linear<8>>("int8");
  register_codec<linear<8, per_group<128>>>("int8-g128");
  register_codec<linear<4, per_group<128>>>("int4-g128");
  register_codec<linear<8>>("int8", op_path::fp32);
  register_codec<linear<8, per_group<128>>>("int8-g128", op_path::fp32);
  register_codec<linear<4, per_group<128>>>("int4-g128", op_path::fp32);
  register_codec<qins<8>>("qins8");
  // The split beside its base (issue 17: within 10% of the base's path).
  register_codec<outlier_split<linear<4, per_group<128>>>>("outliers+int4-g128");
  register_codec<outlier_split<linear<8>>>("outliers+int8");
  register_codec<outlier_split<linear<4, per_group<128>>>>("outliers+int4-g128", op_path::fp32);
  // The ladder's codecs (FP32 paths) and the rotation beside its base (the op's activation
  // transform is the only difference).
  register_codec<two_level<4, 16>>("int4-2level-g16");
  register_codec<grid<4, 16, grid_levels::fixed, 6>>("grid4-2level-g16");
  register_codec<rotated<two_level<4, 16>>>("hadamard64+int4-2level-g16");
  register_codec<linear<4, per_group<32>, half>>("int4-g32-f16");
  register_codec<rotated<linear<4, per_group<32>, half>>>("hadamard64+int4-g32-f16");
  register_crossover<linear<4, per_group<128>>>("int4-g128", {4096, 4096});
  register_crossover<linear<8>>("int8", {4096, 4096});
  register_crossover<qins<8>>("qins8", {4096, 4096});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
