// Decode throughput of each codec against an FP32 copy of the same matrix (the floor any
// decode-into-memory pays), in one binary so ratios come from one run; and encode throughput
// (bytes of FP32 input per second, clipping search included).
#include <benchmark/benchmark.h>

#include <qcodec/qcodec.hpp>

#include "synthetic_weights.hpp"

namespace {

constexpr qcodec::index_t rows = 4096, cols = 4096;

const qcodec::row_matrix& weights() {
  static const qcodec::row_matrix w = qcodec::examples::synthetic_weights(
      rows, cols, qcodec::examples::weight_family::heavy_tailed, 1);
  return w;
}

void BM_fp32_copy(benchmark::State& state) {
  qcodec::row_matrix out(rows, cols);
  for (auto _ : state) {
    out = weights();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * rows * cols * 4);
}
BENCHMARK(BM_fp32_copy)->Name("BM_fp32_copy/4096x4096");

template <class Codec>
void BM_decode(benchmark::State& state) {
  const auto encoded = Codec{}.encode(weights());
  qcodec::row_matrix out(rows, cols);
  for (auto _ : state) {
    encoded.decode_rows(0, rows, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  // Bytes of FP32 produced per second; weight bytes read are byte_size() per iteration.
  state.SetBytesProcessed(state.iterations() * rows * cols * 4);
  state.counters["bpw"] = encoded.bpw();
}

template <class Codec>
void BM_encode(benchmark::State& state) {
  const qcodec::row_matrix& w = weights();  // generated outside the timed loop
  for (auto _ : state) {
    const auto encoded = Codec{}.encode(w);
    benchmark::DoNotOptimize(encoded.storage().codes.data());
  }
  state.SetBytesProcessed(state.iterations() * rows * cols * 4);
}

}  // namespace

#define COMMA ,
#define QCODEC_BENCH_DECODE(codec, label) \
  BENCHMARK_TEMPLATE(BM_decode, codec)->Name("BM_" label "_decode/4096x4096")
QCODEC_BENCH_DECODE(qcodec::linear<8>, "int8");
QCODEC_BENCH_DECODE(qcodec::linear<8 COMMA qcodec::per_group<128>>, "int8-g128");
QCODEC_BENCH_DECODE(qcodec::linear<4 COMMA qcodec::per_group<128>>, "int4-g128");
QCODEC_BENCH_DECODE(qcodec::linear<4 COMMA qcodec::per_group<32>>, "int4-g32");
QCODEC_BENCH_DECODE(qcodec::qins<8>, "qins8");
QCODEC_BENCH_DECODE(qcodec::qins<4>, "qins4");

#define QCODEC_BENCH_ENCODE(codec, label) \
  BENCHMARK_TEMPLATE(BM_encode, codec)->Name("BM_" label "_encode/4096x4096")->Unit(benchmark::kMillisecond)
QCODEC_BENCH_ENCODE(qcodec::linear<8>, "int8");
QCODEC_BENCH_ENCODE(qcodec::linear<8 COMMA qcodec::per_group<128>>, "int8-g128");
QCODEC_BENCH_ENCODE(qcodec::linear<4 COMMA qcodec::per_group<128>>, "int4-g128");
QCODEC_BENCH_ENCODE(qcodec::linear<4 COMMA qcodec::per_group<32>>, "int4-g32");
QCODEC_BENCH_ENCODE(qcodec::qins<8>, "qins8");
QCODEC_BENCH_ENCODE(qcodec::qins<4>, "qins4");

BENCHMARK_MAIN();
