// Sweep of the outlier split's budget (issue 17): for each base and weight family, the SNR at
// alpha = 1 and alpha = 0, the base codec alone, bpw, dB per added bit; and every plain codec
// (linear, QINS, two-level, grid, rotated) for the Pareto comparison. Weights:
// tests/split_test_weights.hpp, fixed seeds.
#include <cstdio>
#include <string>

#include <qcodec/qcodec.hpp>

#include "../tests/split_test_weights.hpp"

using namespace qcodec;

int main(int argc, char** argv) {
  const index_t rows = argc > 2 ? std::stol(argv[1]) : 512, cols = argc > 2 ? std::stol(argv[2]) : 4096;
  const double budgets[] = {1.0 / 1024, 1.0 / 512, 1.0 / 256, 1.0 / 128, 1.0 / 64};
  for (auto family : {testing::split_family::gaussian, testing::split_family::heavy_tailed}) {
    const row_matrix w = testing::split_weights(rows, cols, family, 42);
    std::printf("\n== %s %tdx%td\n| base | p | bpw | alpha=1 dB | alpha=0 dB | base alone dB | dB/added bit |\n",
                testing::split_family_name(family), rows, cols);
    for_each_codec<outlier_codecs>([&]<class S>(S) {
      using B = typename S::base_codec;
      const auto alone = B{}.encode(w);
      const double alone_db = measure_fidelity(w, alone.decode()).snr_db;
      for (double p : budgets) {
        S codec;
        codec.outlier_fraction = p;
        const auto split = codec.encode(w);
        const encoded_matrix<B> base(split.storage().base);
        const double a1 = measure_fidelity(w, split.decode()).snr_db;
        const double a0 = measure_fidelity(w, base.decode()).snr_db;
        std::printf("| %s | 1/%.0f | %.4f | %.2f | %.2f | %.2f | %.2f |\n", std::string(codec_traits<S>::name).c_str(),
                    1 / p, split.bpw(), a1, a0, alone_db, (a1 - alone_db) / (split.bpw() - alone.bpw()));
      }
    });
    std::printf("| plain codec | bpw | dB |\n");
    const auto plain = [&]<class C>(C) {
      const auto e = C{}.encode(w);
      std::printf("| %s | %.4f | %.2f |\n", std::string(codec_traits<C>::name).c_str(), e.bpw(),
                  measure_fidelity(w, e.decode()).snr_db);
    };
    for_each_codec<linear_codecs>(plain);
    for_each_codec<qins_codecs>(plain);
    for_each_codec<two_level_codecs>(plain);
    for_each_codec<grid_codecs>(plain);
    for_each_codec<rotated_codecs>(plain);
  }
}
