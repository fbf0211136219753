// CUDA benchmarks: the device dual_stream_linear (fused decode-GEMV for batch <= 8,
// decode-then-cuBLAS above) against cuBLAS FP16 on the same shapes, in one binary.
// CUDA events around each call, median of many runs after warm-up; weights rotate over
// enough copies to exceed the L2 cache, so times are DRAM times. Effective weight bandwidth
// = device bytes of one weight copy / time; "% copy" relates it to the device-to-device
// cudaMemcpy bandwidth measured here (bytes read + written per second).
//
// Usage: bench_cuda [runs]   (default 200 timed runs per case after 20 warm-up runs)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <qcodec/codecs/codec_list.hpp>
#include <qcodec/cuda.hpp>

using namespace qcodec;

namespace {

constexpr int warmup_runs = 20;
constexpr std::size_t rotation_bytes = std::size_t{512} << 20;  // well above an H100/H200 L2 (50-60 MB)

/// Median time in milliseconds of `runs` calls of `call(i)`, each timed with CUDA events.
template <class Call>
double median_ms(int runs, Call&& call) {
  cudaEvent_t start, stop;
  cuda::check(cudaEventCreate(&start), "cudaEventCreate");
  cuda::check(cudaEventCreate(&stop), "cudaEventCreate");
  for (int i = 0; i < warmup_runs; ++i) call(i);
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    cuda::check(cudaEventRecord(start), "cudaEventRecord");
    call(i);
    cuda::check(cudaEventRecord(stop), "cudaEventRecord");
    cuda::check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    cuda::check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  cuda::check(cudaEventDestroy(start), "cudaEventDestroy");
  cuda::check(cudaEventDestroy(stop), "cudaEventDestroy");
  std::nth_element(times.begin(), times.begin() + runs / 2, times.end());
  return times[static_cast<std::size_t>(runs / 2)];
}

/// Device-to-device copy bandwidth (bytes read + bytes written per second) of a 1 GiB copy.
double copy_bandwidth(int runs) {
  const std::size_t bytes = std::size_t{1} << 30;
  cuda::device_buffer<std::byte> a(bytes), b(bytes);
  cuda::check(cudaMemset(a.data(), 1, bytes), "cudaMemset");
  const double ms = median_ms(std::max(runs / 10, 5), [&](int) {
    cuda::check(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
  });
  return 2.0 * static_cast<double>(bytes) / (ms * 1e-3);
}

struct shape {
  index_t rows, cols;
};

void print_row(const char* what, shape s, index_t batch, double ms, double weight_bytes, double copy_bw,
               double baseline_ms) {
  const double bandwidth = weight_bytes / (ms * 1e-3);
  std::printf("%-22s %6td x %-6td %5td %10.2f %9.1f %7.1f%% %8.2fx\n", what, s.rows, s.cols, batch, ms * 1e3,
              bandwidth / 1e9, 100.0 * bandwidth / copy_bw, baseline_ms / ms);
}

/// cuBLAS FP16 GEMV/GEMM (cublasGemmEx, FP32 accumulation) on rotating FP16 weight copies.
double bench_cublas(shape s, index_t batch, const std::vector<__half>& w, cublasHandle_t handle,
                    const __half* x, __half* y, int runs) {
  const std::size_t bytes = w.size() * sizeof(__half);
  const std::size_t copies = std::max<std::size_t>(1, (rotation_bytes + bytes - 1) / bytes);
  std::vector<cuda::device_buffer<__half>> weights;
  for (std::size_t i = 0; i < copies; ++i) weights.emplace_back(std::span<const __half>(w));
  const float one = 1.0f, zero = 0.0f;
  return median_ms(runs, [&](int i) {
    cuda::check(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(s.rows), static_cast<int>(batch),
                             static_cast<int>(s.cols), &one, weights[static_cast<std::size_t>(i) % copies].data(),
                             CUDA_R_16F, static_cast<int>(s.cols), x, CUDA_R_16F, static_cast<int>(s.cols), &zero, y,
                             CUDA_R_16F, static_cast<int>(s.rows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                "cublasGemmEx");
  });
}

template <class Codec>
void bench_codec(shape s, const row_matrix& w, std::span<const index_t> batches, const std::vector<double>& baseline,
                 const __half* x, __half* y, double copy_bw, int runs) {
  Codec codec;
  if constexpr (requires { codec.clip; }) codec.clip = clip_rule::absmax();  // encode speed; fidelity is not timed
  const auto encoded = codec.encode(w);
  const cuda::dual_stream_linear<Codec> first(encoded);
  const std::size_t bytes = first.device_bytes();
  const std::size_t copies = std::max<std::size_t>(1, (rotation_bytes + bytes - 1) / bytes);
  std::vector<cuda::dual_stream_linear<Codec>> ops;
  for (std::size_t i = 0; i < copies; ++i) ops.emplace_back(encoded);
  cuda::workspace ws;
  const std::string name = std::string(codec_traits<Codec>::name);
  for (std::size_t b = 0; b < batches.size(); ++b) {
    ws.reserve(first.template workspace_bytes<__half>(batches[b]));
    const double ms = median_ms(runs, [&](int i) {
      ops[static_cast<std::size_t>(i) % copies].forward(x, batches[b], y, ws, nullptr);
    });
    cuda::check(cudaGetLastError(), name);
    print_row(name.c_str(), s, batches[b], ms, static_cast<double>(bytes), copy_bw, baseline[b]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (std::string why; cuda::device_count(&why) == 0) {
    std::printf("bench_cuda: no usable CUDA device (%s): CUDA benchmarks skipped\n", why.c_str());
    return 0;
  }
  const int runs = argc > 1 ? std::max(5, std::atoi(argv[1])) : 200;
  try {
    cudaDeviceProp prop{};
    cuda::check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    int driver = 0;
    cuda::check(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
    const double copy_bw = copy_bandwidth(runs);
    std::printf("device: %s (sm_%d%d, %d SMs, L2 %d MB), driver %d, runtime %d\n", prop.name, prop.major, prop.minor,
                prop.multiProcessorCount, prop.l2CacheSize >> 20, driver, CUDART_VERSION);
    std::printf("measured D2D copy bandwidth: %.1f GB/s (read + write); median of %d runs after %d warm-up\n\n",
                copy_bw / 1e9, runs, warmup_runs);
    std::printf("%-22s %15s %5s %10s %9s %8s %9s\n", "case", "rows x cols", "batch", "time us", "GB/s", "% copy",
                "vs f16");

    const shape shapes[] = {{4096, 4096}, {11008, 4096}, {14336, 4096}};
    const index_t batches[] = {1, 4, 8, 9, 64, 256};
    const index_t max_batch = 256;
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<__half> x_host(static_cast<std::size_t>(max_batch * 14336));
    for (__half& v : x_host) v = __float2half(normal(rng));
    const cuda::device_buffer<__half> x{std::span<const __half>(x_host)};
    cuda::device_buffer<__half> y(static_cast<std::size_t>(max_batch * 14336));
    cublasHandle_t handle;
    cuda::check(cublasCreate(&handle), "cublasCreate");

    for (const shape s : shapes) {
      row_matrix w(s.rows, s.cols);
      for (index_t i = 0; i < w.size(); ++i) w.data()[i] = 0.02f * normal(rng);
      std::vector<__half> w16(static_cast<std::size_t>(w.size()));
      for (std::size_t i = 0; i < w16.size(); ++i) w16[i] = __float2half(w.data()[i]);
      std::vector<double> baseline;
      for (const index_t batch : batches) {
        baseline.push_back(bench_cublas(s, batch, w16, handle, x.data(), y.data(), runs));
        print_row("cublas-f16", s, batch, baseline.back(), static_cast<double>(w16.size() * sizeof(__half)), copy_bw,
                  baseline.back());
      }
      bench_codec<linear<8>>(s, w, batches, baseline, x.data(), y.data(), copy_bw, runs);
      bench_codec<linear<4, per_group<128>>>(s, w, batches, baseline, x.data(), y.data(), copy_bw, runs);
      bench_codec<qins<8>>(s, w, batches, baseline, x.data(), y.data(), copy_bw, runs);
      bench_codec<outlier_split<linear<4, per_group<128>>>>(s, w, batches, baseline, x.data(), y.data(), copy_bw, runs);
      std::printf("\n");
    }
    cuda::check(cublasDestroy(handle), "cublasDestroy");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
