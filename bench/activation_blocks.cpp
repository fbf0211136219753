// The integer path's activation block, measured (bench/RESULTS.md, "Integer path: activation
// blocks"): the SNR of y = x^ Ŵᵀ against x Ŵᵀ (the activation rounding alone) and against
// x Wᵀ (with the weight codec's error), in FP64, for activations quantized as
// ops/integer_gemv.hpp states (one scale per block of B columns) at B = 32 .. 256 and one
// scale per row. The integer kernel computes x^ Ŵᵀ up to FP32 roundings (2^-24 relative), so
// these are its figures. Activations: N(0, 1) with n channels scaled by m (LLM activations
// carry such channels, 20-100x the rest), the same channels in every row.
//   activation_blocks [rows cols batch]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <vector>

#include <qcodec/qcodec.hpp>
#include <qcodec/ops/integer_gemv.hpp>

#include "synthetic_weights.hpp"

namespace {

using qcodec::index_t;
using qcodec::row_matrix;

row_matrix activations(index_t batch, index_t cols, int channels, float scale, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  row_matrix x(batch, cols);
  for (index_t i = 0; i < x.size(); ++i) x.data()[i] = normal(rng);
  std::uniform_int_distribution<index_t> column(0, cols - 1);
  for (int n = 0; n < channels; ++n) x.col(column(rng)) *= scale;
  return x;
}

/// x quantized in blocks of `block` columns (ops/integer_gemv.hpp), dequantized.
row_matrix blocked(const row_matrix& x, index_t block) {
  row_matrix out(x.rows(), x.cols());
  std::vector<std::int8_t> codes(static_cast<std::size_t>(x.cols()));
  std::vector<float> scales(static_cast<std::size_t>((x.cols() + block - 1) / block));
  for (index_t b = 0; b < x.rows(); ++b) {
    qcodec::quantize_activation_row(std::span<const float>(x.row(b).data(), static_cast<std::size_t>(x.cols())),
                                    block, codes, scales);
    for (index_t c = 0; c < x.cols(); ++c)
      out(b, c) = scales[static_cast<std::size_t>(c / block)] * codes[static_cast<std::size_t>(c)];
  }
  return out;
}

double snr_db(const Eigen::MatrixXd& reference, const Eigen::MatrixXd& y) {
  return 10 * std::log10(reference.squaredNorm() / (y - reference).squaredNorm());
}

template <class Codec>
void report(const char* name, const row_matrix& w, index_t batch) {
  const auto decoded = Codec{}.encode(w).decode();
  const Eigen::MatrixXd wd = decoded.template cast<double>(), w_exact = w.cast<double>();
  struct family { int channels; float scale; };
  for (const family f : {family{0, 1}, family{4, 20}, family{16, 20}, family{4, 100}, family{16, 100}}) {
    const row_matrix x = activations(batch, w.cols(), f.channels, f.scale, 7);
    const Eigen::MatrixXd xd = x.cast<double>();
    const Eigen::MatrixXd exact = xd * wd.transpose(), full = xd * w_exact.transpose();
    std::printf("| %s | %d x %.0f |", name, f.channels, f.scale);
    for (const index_t block : {index_t{32}, index_t{64}, index_t{128}, index_t{256}, w.cols()}) {
      const Eigen::MatrixXd y = blocked(x, block).cast<double>() * wd.transpose();
      std::printf(" %.1f / %.1f |", snr_db(exact, y), snr_db(full, y));
    }
    std::printf(" %.1f |\n", snr_db(full, exact));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const index_t rows = argc > 1 ? std::atol(argv[1]) : 2048, cols = argc > 2 ? std::atol(argv[2]) : 4096;
  const index_t batch = argc > 3 ? std::atol(argv[3]) : 16;
  const row_matrix w = qcodec::examples::synthetic_weights(rows, cols, qcodec::examples::weight_family::gaussian, 1);
  std::printf("%ld x %ld Gaussian weights, batch %ld; SNR in dB of x^ Ŵᵀ against x Ŵᵀ / against x Wᵀ, per activation "
              "block B; last column: x Ŵᵀ against x Wᵀ (the weight codec alone)\n\n",
              static_cast<long>(rows), static_cast<long>(cols), static_cast<long>(batch));
  std::printf("| weights | outlier channels | B = 32 | 64 | 128 | 256 | per row | FP32 activations |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  report<qcodec::linear<8>>("int8", w, batch);
  report<qcodec::linear<4, qcodec::per_group<128>>>("int4-g128", w, batch);
}
