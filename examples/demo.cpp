// Encodes an LLM-like weight set with every codec and prints the fidelity and speed of each.
#include <chrono>
#include <cstdio>
#include <string>

#include <qcodec/qcodec.hpp>

#include "synthetic_weights.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

/// Prints one table row; speeds are left blank (0) for rows that encode nothing of their own.
void print_line(const std::string& name, double bpw, const qcodec::fidelity_report& r,
                double encode_mb_s, double decode_mb_s) {
  std::printf("%-26s %6.3f %10.3e %8.2f %11.3e %6td", name.c_str(), bpw, r.rel_err, r.snr_db,
              r.max_abs_err, r.sign_flips);
  if (encode_mb_s > 0) std::printf(" %10.0f %10.0f\n", encode_mb_s, decode_mb_s);
  else std::printf(" %10s %10s\n", "-", "-");
}

template <class Codec>
void print_row(const Codec& codec, const qcodec::row_matrix& w) {
  const double megabytes = static_cast<double>(w.size()) * sizeof(float) / 1e6;
  auto start = clock_type::now();
  const auto encoded = codec.encode(w, "demo");
  const double encode_s = seconds_since(start);
  qcodec::row_matrix decoded = qcodec::row_matrix::Zero(w.rows(), w.cols());  // pages touched
  start = clock_type::now();
  encoded.decode_rows(0, w.rows(), decoded.data());
  const double decode_s = seconds_since(start);
  const qcodec::fidelity_report r = qcodec::measure_fidelity(w, decoded);
  const std::string name(qcodec::codec_traits<Codec>::name);
  print_line(name + (qcodec::is_outlier_split<Codec> ? " a=1" : ""), encoded.bpw(), r,
             megabytes / encode_s, megabytes / decode_s);
  if constexpr (qcodec::is_outlier_split<Codec>) {
    // alpha = 0: the base stream alone (its bytes only), as the op runs it; it is part of the
    // encoding above, so it has no speeds of its own.
    const qcodec::encoded_matrix<typename Codec::base_codec> base(encoded.storage().base);
    print_line(name + " a=0", base.bpw(), qcodec::measure_fidelity(w, base.decode()), 0, 0);
  }
}

}  // namespace

int main() {
  using qcodec::examples::weight_family;
  constexpr qcodec::index_t rows = 512, cols = 4096;
  std::printf("qcodec %d.%d.%d demo: %td x %td weights per family; speeds in MB/s of FP32\n",
              QCODEC_VERSION_MAJOR, QCODEC_VERSION_MINOR, QCODEC_VERSION_PATCH, rows, cols);
  for (weight_family family : {weight_family::gaussian, weight_family::heavy_tailed,
                               weight_family::outlier_columns}) {
    const qcodec::row_matrix w = qcodec::examples::synthetic_weights(rows, cols, family, 42);
    std::printf("\n== %s\n%-26s %6s %10s %8s %11s %6s %10s %10s\n",
                std::string(qcodec::examples::family_name(family)).c_str(), "codec", "bpw",
                "rel_err", "SNR dB", "max_abs_err", "flips", "encode", "decode");
    const auto print = [&](auto codec) { print_row(codec, w); };
    qcodec::for_each_codec<qcodec::linear_codecs>(print);
    qcodec::for_each_codec<qcodec::qins_codecs>(print);
    qcodec::for_each_codec<qcodec::outlier_codecs>(print);
  }
}
