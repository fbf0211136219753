// CUDA backend: host tests of the upload layout and launch math (run everywhere), device
// tests of decode and forward (skipped with a warning when no CUDA device is present).
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <qcodec/codecs/codec_list.hpp>
#include <qcodec/cuda.hpp>

#include "synthetic_weights.hpp"

using namespace qcodec;
using examples::synthetic_weights;
using examples::weight_family;

namespace {

/// True when a device is present; otherwise reports the skip visibly, with CUDA's reason.
bool have_device() {
  std::string why;
  if (cuda::device_count(&why) > 0) return true;
  WARN("no usable CUDA device (" << why << "): skipped");
  return false;
}

/// Ragged shapes: columns that are not multiples of a chunk, a group or two.
constexpr std::pair<index_t, index_t> ragged_shapes[] = {{1, 1}, {3, 31}, {33, 257}, {5, 300}, {64, 128}, {17, 1000}};

/// Host decode of `encoded` run through the device view over the host upload layout.
template <class Codec>
row_matrix decode_through_view(const encoded_matrix<Codec>& encoded) {
  using layout = cuda::device_codec<Codec>;
  const auto host = layout::prepare(encoded.storage(), "w");
  const auto view = host.base_view();
  const cuda::csr_view ortho = host.ortho_view();
  row_matrix out(encoded.rows(), encoded.cols());
  for (index_t r = 0; r < view.rows; ++r)
    for (index_t chunk = 0; chunk < view.chunks_per_row(); ++chunk) {
      float values[layout::chunk_cols];
      cuda::decode_chunk(view, r, chunk, values);
      cuda::add_ortho(ortho, 1.0f, r, chunk * layout::chunk_cols, values);
      for (index_t j = 0; j < layout::chunk_cols && chunk * layout::chunk_cols + j < view.cols; ++j)
        out(r, chunk * layout::chunk_cols + j) = values[j];
    }
  return out;
}

bool bitwise_equal(const row_matrix& a, const row_matrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

/// Host value of a device element, for references.
template <class T>
float host_round(float v) {
  return cuda::element<T>::to_float(cuda::element<T>::from_float(v));
}

/// NaN: outputs are poisoned with it before a run, so an unwritten element fails the check.
template <class T>
T poison() {
  return cuda::element<T>::from_float(std::numeric_limits<float>::quiet_NaN());
}

/// Calls f(T*) for the element types a device test covers: FP16 for every codec; FP32 and
/// BF16 as well for one codec per family (the kernels are the same template for every codec,
/// and each instantiation costs nvcc time in CI).
template <class Codec, class F>
void for_each_element_type(F&& f) {
  f(static_cast<__half*>(nullptr));
  if constexpr (std::same_as<Codec, linear<8>> || std::same_as<Codec, linear<4, per_group<128>>> ||
                std::same_as<Codec, qins<4>> || std::same_as<Codec, outlier_split<linear<4, per_group<128>>>>) {
    f(static_cast<float*>(nullptr));
    f(static_cast<__nv_bfloat16*>(nullptr));
  }
}

/// Relative error bound of forward() for element type T (norm-wise, against FP64): the
/// operands and the output are rounded to T once each (unit roundoff u), FP32 accumulation
/// adds far less; 4u covers the three roundings with margin, independent of the shape.
template <class T>
constexpr double forward_bound() {
  if constexpr (std::same_as<T, float>) return 1e-5;
  else if constexpr (std::same_as<T, __half>) return 4 * 0x1p-11;
  else return 4 * 0x1p-8;
}

}  // namespace

// ---------------------------------------------------------------- host tests (no device) --

TEST_CASE("cuda launch geometry and workspace sizing", "[cuda][host]") {
  CHECK(cuda::chunk_cols<8> == 16);
  CHECK(cuda::chunk_cols<4> == 32);
  CHECK(cuda::padded_row_bytes(1) == 16);
  CHECK(cuda::padded_row_bytes(16) == 16);
  CHECK(cuda::padded_row_bytes(17) == 32);
  CHECK(cuda::gemv_blocks(1) == 1);
  CHECK(cuda::gemv_blocks(8) == 1);
  CHECK(cuda::gemv_blocks(9) == 2);
  CHECK(cuda::gemv_blocks(11008) == 1376);
  CHECK(cuda::gemv_batch_bucket(0) == 0);
  CHECK(cuda::gemv_batch_bucket(1) == 1);
  CHECK(cuda::gemv_batch_bucket(3) == 4);
  CHECK(cuda::gemv_batch_bucket(4) == 4);
  CHECK(cuda::gemv_batch_bucket(5) == 8);
  CHECK(cuda::gemv_batch_bucket(8) == 8);
  CHECK(cuda::gemv_batch_bucket(9) == 0);
  CHECK(cuda::elementwise_blocks(0) == 1);
  CHECK(cuda::elementwise_blocks(257) == 2);
  // Whole weight when it fits, else multiples of 64 rows, else 0.
  CHECK(cuda::gemm_tile_bytes(100, 50, 2, 0) == 10240);  // regions in whole 256-byte units
  CHECK(cuda::gemm_tile_rows(100, 50, 2, 0, 10240) == 100);
  CHECK(cuda::gemm_tile_rows(1000, 50, 2, 0, 999 * 50 * 2) == 960);
  CHECK(cuda::gemm_tile_rows(1000, 50, 2, 0, 63 * 50 * 2) == 0);
  // With FP32 results: 64 rows x 100 of them (25600 bytes) before the decoded rows.
  CHECK(cuda::gemm_tile_rows(1000, 50, 2, 100, 64 * 50 * 2 + 25600) == 64);
  CHECK(cuda::gemm_tile_rows(1000, 50, 2, 100, 64 * 50 * 2 + 25599) == 0);
  CHECK(cuda::gemm_workspace_bytes(64, 100, 2, 0) == cuda::cublas_workspace_bytes + 12800);
  CHECK(cuda::gemm_workspace_bytes(1, 1, 2, 0) == cuda::cublas_workspace_bytes + 256);
  CHECK(cuda::gemm_workspace_bytes(1, 1, 2, 3) == cuda::cublas_workspace_bytes + 512);
  // Every tile size the workspace admits fits in it, with and without FP32 results.
  for (index_t rows : {1, 63, 64, 65, 4096, 11008})
    for (index_t cols : {1, 7, 4096})
      for (index_t fp32_batch : {0, 17, 256}) {
        const std::size_t bytes = cuda::gemm_workspace_bytes(64, cols, 2, fp32_batch);
        const index_t tile = cuda::gemm_tile_rows(rows, cols, 2, fp32_batch, bytes - cuda::cublas_workspace_bytes);
        CHECK(tile >= std::min<index_t>(rows, 64));
        CHECK(cuda::gemm_tile_bytes(tile, cols, 2, fp32_batch) <= bytes - cuda::cublas_workspace_bytes);
      }
}

TEST_CASE("cuda upload layout pads rows to whole chunks", "[cuda][host]") {
  const std::vector<std::uint8_t> codes{1, 2, 3, 4, 5, 6};
  const auto padded = cuda::detail::pad_rows(codes, 2, 3, 16);
  REQUIRE(padded.size() == 32);
  CHECK(padded[0] == 1);
  CHECK(padded[2] == 3);
  CHECK(padded[3] == 0);
  CHECK(padded[16] == 4);
  CHECK(padded[18] == 6);
  CHECK(padded[31] == 0);
}

TEST_CASE("cuda element conversions match the host's FP16 rounding", "[cuda][host]") {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 100.0f);
  for (int i = 0; i < 10000; ++i) {
    const float v = i < 5 ? std::array{0.0f, -0.0f, 65504.0f, 1e-8f, 70000.0f}[i] : dist(rng);
    const float device_rounded = host_round<__half>(v);
    const float host_rounded = static_cast<float>(qcodec::half(v));
    CHECK(std::bit_cast<std::uint32_t>(device_rounded) == std::bit_cast<std::uint32_t>(host_rounded));
    CHECK(cuda::half_bits_to_float(std::bit_cast<std::uint16_t>(qcodec::half(v))) == host_rounded);
  }
}

TEST_CASE("cuda errors become qcodec::error with the CUDA error string", "[cuda][host]") {
  CHECK_NOTHROW(cuda::check(cudaSuccess, "nothing"));
  CHECK_THROWS_WITH(cuda::check(cudaErrorInvalidValue, "cudaMemcpy"),
                    Catch::Contains("cudaMemcpy") && Catch::Contains("cudaErrorInvalidValue"));
  CHECK_THROWS_AS(cuda::check(CUBLAS_STATUS_INVALID_VALUE, "cublasGemmEx"), qcodec::error);
  CHECK_THROWS_WITH(cuda::check(CUBLAS_STATUS_NOT_INITIALIZED, "cublasGemmEx"),
                    Catch::Contains("cublasGemmEx") && Catch::Contains("CUBLAS_STATUS_NOT_INITIALIZED"));
}

TEST_CASE("cuda ortho upload keeps every entry and rejects a corrupt stream", "[cuda][host]") {
  using split = outlier_split<linear<4, per_group<128>>>;
  const auto encoded = split{}.encode(synthetic_weights(40, 300, weight_family::outlier_columns, 9));
  const auto& o = encoded.storage().ortho;
  REQUIRE(o.nnz() > 0);
  const auto host = cuda::host_ortho::prepare(o, "w");
  const cuda::csr_view view = host.view();
  for (index_t r = 0; r < o.rows; ++r) {
    std::vector<std::pair<index_t, float>> expected, got;
    o.for_each_in_row(r, [&](index_t c, float v) { expected.emplace_back(c, v); });
    for (std::uint32_t e = view.row_ptr[r]; e < view.row_ptr[r + 1]; ++e)
      got.emplace_back(view.col_index[e], view.value(e));
    CHECK(got == expected);
  }
  auto corrupt = o;
  corrupt.row_offsets.back() += 1;
  CHECK_THROWS_WITH(cuda::host_ortho::prepare(corrupt, "layer7"), Catch::Contains("layer7"));
  CHECK(cuda::host_ortho::prepare(ortho_stream{40, 300}, "w").view().empty());
}

TEMPLATE_LIST_TEST_CASE("cuda chunk decode over the upload layout equals the host decode, bit for bit",
                        "[cuda][host]", device_codecs) {
  for (const auto& [rows, cols] : ragged_shapes) {
    const row_matrix w = synthetic_weights(rows, cols, weight_family::heavy_tailed, 11 + rows * cols);
    const auto encoded = TestType{}.encode(w);
    CAPTURE(codec_traits<TestType>::name, rows, cols);
    CHECK(bitwise_equal(decode_through_view(encoded), encoded.decode()));
  }
}

TEST_CASE("cuda device layout rejects inconsistent storage", "[cuda][host]") {
  auto storage = linear<4, per_group<32>>{}.encode(synthetic_weights(3, 70, weight_family::gaussian, 1)).storage();
  storage.scales.pop_back();
  using layout = cuda::device_codec<linear<4, per_group<32>>>;
  CHECK_THROWS_WITH(layout::prepare(storage, "layer0"), Catch::Contains("layer0") && Catch::Contains("scales"));
}

// -------------------------------------------------------------- device tests (need a GPU) --

TEMPLATE_LIST_TEST_CASE("cuda decode equals the host decode bit for bit", "[cuda][device]", device_codecs) {
  if (!have_device()) return;
  for (const auto& [rows, cols] : ragged_shapes) {
    const row_matrix w = synthetic_weights(rows, cols, weight_family::outlier_columns, 3 + rows + cols);
    const auto encoded = TestType{}.encode(w);
    const row_matrix expected = encoded.decode();
    CAPTURE(codec_traits<TestType>::name, rows, cols);
    const cuda::dual_stream_linear<TestType> op(encoded);
    const auto check_type = [&]<class T>(T*) {
      // A leading dimension that breaks 16-byte alignment (element stores), and an aligned
      // one wider than the row (vector stores, element stores for a ragged last chunk).
      for (const index_t ld : {cols + 3, (cols + 15) / 16 * 16 + 16}) {
        const std::size_t count = static_cast<std::size_t>(rows * ld);
        std::vector<T> out(count, poison<T>());
        cuda::device_buffer<T> buffer{std::span<const T>(out)};
        op.decode(buffer.data(), ld, nullptr);
        cuda::check(cudaDeviceSynchronize(), "decode");
        buffer.download(out);
        index_t mismatches = 0, overwritten = 0;
        for (index_t r = 0; r < rows; ++r) {
          for (index_t c = 0; c < cols; ++c) {
            const float got = cuda::element<T>::to_float(out[static_cast<std::size_t>(r * ld + c)]);
            const float want = host_round<T>(expected(r, c));
            if (std::bit_cast<std::uint32_t>(got) != std::bit_cast<std::uint32_t>(want) && mismatches++ < 3)
              FAIL_CHECK(cuda::element<T>::name << " ld " << ld << " row " << r << " col " << c << ": " << got
                                                << " != " << want);
          }
          for (index_t c = cols; c < ld; ++c)  // past the row: still the poison
            overwritten += !std::isnan(cuda::element<T>::to_float(out[static_cast<std::size_t>(r * ld + c)]));
        }
        CHECK(mismatches == 0);
        CHECK(overwritten == 0);
      }
    };
    check_type(static_cast<float*>(nullptr));  // FP32: the decode itself, for every codec
    for_each_element_type<TestType>(check_type);
  }
}

// The representative codecs that have a device layout (the two-level ones have none yet).
using forward_codecs = decltype(std::tuple_cat(
    std::tuple<linear<8>, linear<8, per_tensor>, linear<8, per_group<128>, qcodec::half, symmetry::asymmetric>,
               linear<4, per_group<128>>, linear<4, per_group<32>, float, symmetry::asymmetric>,
               linear<4, per_row, qcodec::half>, qins<8>, qins<4>>{},
    device_outlier_codecs{}));

TEMPLATE_LIST_TEST_CASE("cuda dual_stream_linear matches an FP64 reference", "[cuda][device]", forward_codecs) {
  if (!have_device()) return;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  cuda::workspace ws;
  for (const auto& [rows, cols] : {std::pair<index_t, index_t>{33, 257}, {100, 64}, {7, 1000}, {200, 129}}) {
    const row_matrix w = synthetic_weights(rows, cols, weight_family::outlier_columns, 17 + rows);
    const auto encoded = TestType{}.encode(w);
    // B and O on the host: O is the split's ortho stream, B the rest of the decode.
    row_matrix ortho_dense = row_matrix::Zero(rows, cols), base;
    if constexpr (requires { encoded.storage().ortho; }) {
      encoded.storage().ortho.add_rows(0, rows, ortho_dense.data());
      base = encoded_matrix<typename TestType::base_codec>(encoded.storage().base).decode();
    } else {
      base = encoded.decode();
    }
    std::vector<float> bias(static_cast<std::size_t>(rows));
    for (float& b : bias) b = normal(rng);
    for (const bool with_bias : {false, true}) {
      cuda::dual_stream_linear<TestType> op(encoded, with_bias ? std::span<const float>(bias) : std::span<const float>{});
      for (const float alpha : {0.0f, 1.0f}) {
        op.set_alpha(alpha);
        for (const index_t batch : {1, 3, 8, 9, 256}) {
          const auto check_type = [&]<class T>(T*) {
            CAPTURE(codec_traits<TestType>::name, rows, cols, with_bias, alpha, batch, cuda::element<T>::name);
            std::vector<T> x(static_cast<std::size_t>(batch * cols));
            for (T& v : x) v = cuda::element<T>::from_float(normal(rng));
            // FP64 reference on the inputs as the device sees them (already rounded to T).
            Eigen::MatrixXd xd(batch, cols), wd = (base.cast<double>() + alpha * ortho_dense.cast<double>());
            for (index_t b = 0; b < batch; ++b)
              for (index_t c = 0; c < cols; ++c) xd(b, c) = cuda::element<T>::to_float(x[static_cast<std::size_t>(b * cols + c)]);
            Eigen::MatrixXd ref = xd * wd.transpose();
            if (with_bias)
              for (index_t b = 0; b < batch; ++b)
                for (index_t r = 0; r < rows; ++r) ref(b, r) += bias[static_cast<std::size_t>(r)];

            ws.reserve(op.template workspace_bytes<T>(batch));
            const cuda::device_buffer<T> x_device{std::span<const T>(x)};
            std::vector<T> y(static_cast<std::size_t>(batch * rows), poison<T>());
            cuda::device_buffer<T> y_device{std::span<const T>(y)};
            cudaStream_t stream;
            cuda::check(cudaStreamCreate(&stream), "cudaStreamCreate");
            op.forward(x_device.data(), batch, y_device.data(), ws, stream);
            cuda::check(cudaStreamSynchronize(stream), "forward");
            cuda::check(cudaStreamDestroy(stream), "cudaStreamDestroy");
            y_device.download(y);
            double err = 0, norm = 0;
            bool finite = true;
            for (index_t b = 0; b < batch; ++b)
              for (index_t r = 0; r < rows; ++r) {
                const double got = cuda::element<T>::to_float(y[static_cast<std::size_t>(b * rows + r)]);
                finite = finite && std::isfinite(got);
                err += (got - ref(b, r)) * (got - ref(b, r));
                norm += ref(b, r) * ref(b, r);
              }
            REQUIRE(finite);
            CHECK(std::sqrt(err / norm) <= forward_bound<T>());
          };
          for_each_element_type<TestType>(check_type);
        }
      }
    }
  }
}

TEST_CASE("cuda forward rejects a workspace that is too small", "[cuda][device]") {
  if (!have_device()) return;
  const auto encoded = linear<8>{}.encode(synthetic_weights(300, 64, weight_family::gaussian, 2));
  const cuda::dual_stream_linear<linear<8>> op(encoded);
  cuda::workspace ws;
  cuda::device_buffer<__half> x(64 * 32), y(300 * 32);
  CHECK_THROWS_WITH(op.forward(x.data(), 32, y.data(), ws, nullptr), Catch::Contains("workspace"));
  CHECK_THROWS_AS(op.forward(x.data(), 0, y.data(), ws, nullptr), qcodec::error);
  ws.reserve(op.workspace_bytes<__half>(32, 64));
  CHECK_NOTHROW(op.forward(x.data(), 32, y.data(), ws, nullptr));
  cuda::check(cudaDeviceSynchronize(), "forward");
}

TEST_CASE("cuda forward rounds each output once, bias included, on every path and tiling", "[cuda][device]") {
  if (!have_device()) return;
  // Biases near 1024 dominate the outputs: rounding the bias to T before adding it (a second
  // rounding) moves outputs by up to a whole unit in the last place, twice the bound below.
  constexpr index_t rows = 200, cols = 64;
  const auto encoded = linear<8>{}.encode(synthetic_weights(rows, cols, weight_family::gaussian, 4));
  const row_matrix w = encoded.decode();
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> near_1024(1024.0f, 1070.0f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> bias(static_cast<std::size_t>(rows));
  for (float& b : bias) b = near_1024(rng);
  const cuda::dual_stream_linear<linear<8>> op(encoded, bias);
  const auto check_type = [&]<class T>(T*, double unit_roundoff) {
    for (const index_t batch : {3, 40}) {
      // Whole weight in one tile, and 64-row tiles (the last one ragged).
      for (const index_t max_tile_rows : {index_t{0}, index_t{64}}) {
        CAPTURE(cuda::element<T>::name, batch, max_tile_rows);
        std::vector<T> x(static_cast<std::size_t>(batch * cols));
        for (T& v : x) v = cuda::element<T>::from_float(normal(rng));
        cuda::workspace ws(op.template workspace_bytes<T>(batch, max_tile_rows));
        const cuda::device_buffer<T> x_device{std::span<const T>(x)};
        std::vector<T> y(static_cast<std::size_t>(batch * rows), poison<T>());
        cuda::device_buffer<T> y_device{std::span<const T>(y)};
        op.forward(x_device.data(), batch, y_device.data(), ws, nullptr);
        cuda::check(cudaDeviceSynchronize(), "forward");
        y_device.download(y);
        index_t violations = 0;
        for (index_t b = 0; b < batch; ++b)
          for (index_t r = 0; r < rows; ++r) {
            const double b_r = bias[static_cast<std::size_t>(r)];
            double ref = b_r, products = 0;
            for (index_t c = 0; c < cols; ++c) {
              const double term = double{cuda::element<T>::to_float(x[static_cast<std::size_t>(b * cols + c)])} * w(r, c);
              ref += term;
              products += std::abs(term);
            }
            // One rounding to T (u |ref|) of an FP32 sum of cols + 1 terms (gamma_(cols+1) sum |terms|)
            // whose weights the GEMM path rounds to T (u sum |x w|, far below u |bias| here).
            const double bound = unit_roundoff * (std::abs(ref) + products) +
                                 (cols + 1) * 0x1p-24 * (products + std::abs(b_r)) * 1.01;
            const double got = cuda::element<T>::to_float(y[static_cast<std::size_t>(b * rows + r)]);
            if (!(std::abs(got - ref) <= bound) && violations++ < 3)
              FAIL_CHECK("row " << r << " batch row " << b << ": " << got << " vs " << ref << ", bound " << bound);
          }
        CHECK(violations == 0);
      }
    }
  };
  check_type(static_cast<__half*>(nullptr), 0x1p-11);
  check_type(static_cast<__nv_bfloat16*>(nullptr), 0x1p-8);
}
