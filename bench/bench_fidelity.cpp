// bench_fidelity: the bit-budget ladder (issue 16). Every codec (or those whose name contains a
// --codec substring) on two synthetic families over four LLM shapes, and optionally on a real
// model's encoder linears: bpw (every byte), SNR, max abs error, sign flips and encode speed
// (1 thread), as a markdown table sorted by bpw with the budgets and ggml's figures beside it.
//
//   bench_fidelity [--quick] [--codec SUBSTRING]... [--safetensors FILE]
//
// --quick (or QCODEC_BENCH_QUICK=1 in the environment) uses small shapes for a smoke run.
// Families, seeds fixed: gaussian N(0, 0.02^2); heavy-tailed: Student-t nu = 4 scaled to a
// 0.02 standard deviation, with 0.1% of the input columns (rounded, at least one; chosen by a
// seeded shuffle) multiplied by 20.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <qcodec/codecs/codec_list.hpp>
#include <qcodec/core/fidelity.hpp>
#include <qcodec/io/safetensors.hpp>

#if QCODEC_USE_OPENMP
#  include <omp.h>
#endif

namespace {

using namespace qcodec;

enum class family { gaussian, heavy_tailed };

struct shape {
  index_t rows, cols;
};

/// The family's rows x cols matrix; the seed depends on the family and the shape only.
row_matrix generate(family f, shape s) {
  std::mt19937_64 rng(0x51ED + 1000003 * static_cast<std::uint64_t>(s.rows) + static_cast<std::uint64_t>(s.cols) +
                      (f == family::heavy_tailed ? 0x9E3779B97F4A7C15ull : 0));
  row_matrix w(s.rows, s.cols);
  if (f == family::gaussian) {
    std::normal_distribution<float> normal(0.0f, 0.02f);
    for (index_t i = 0; i < w.size(); ++i) w.data()[i] = normal(rng);
    return w;
  }
  // A t(4) variable has variance nu / (nu - 2) = 2.
  std::student_t_distribution<float> student(4.0f);
  const float to_sigma = 0.02f / std::sqrt(2.0f);
  for (index_t i = 0; i < w.size(); ++i) w.data()[i] = to_sigma * student(rng);
  std::vector<index_t> columns(static_cast<std::size_t>(s.cols));
  std::iota(columns.begin(), columns.end(), index_t{0});
  std::shuffle(columns.begin(), columns.end(), rng);
  const index_t outliers = std::max<index_t>(1, std::llround(0.001 * static_cast<double>(s.cols)));
  for (index_t k = 0; k < outliers; ++k) w.col(columns[static_cast<std::size_t>(k)]) *= 20.0f;
  return w;
}

struct family_result {
  std::vector<double> snr;  // per shape
  double max_abs_err = 0;
  index_t sign_flips = 0;
};

struct codec_result {
  std::string name;
  double bpw = 0;  // the largest over the synthetic shapes
  family_result families[2];
  std::vector<double> model_snr;  // per model tensor
  double model_bpw = 0;
  double encode_bytes = 0, encode_seconds = 0;
};

double mean(const std::vector<double>& v) {
  return v.empty() ? NAN : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct budget {
  double bpw;
  const char* ggml;  // the best ggml type(s) within the budget, issue 16's measurements
  double ggml_gaussian, ggml_heavy, ggml_model;
  double target_gaussian, target_heavy, target_model;
};

// ggml at d99724f, no importance matrix (issue 16): best type within each budget, Gaussian /
// heavy-tailed means over the four shapes, and BERT (all-MiniLM-L6-v2) median per-tensor SNR
// where the issue gives it (NAN where it does not); the targets are those + 0.5 dB.
constexpr budget budgets[] = {
    {3.5, "q3_K (3.44)", 16.43, 15.43, NAN, 16.9, 15.9, 16.8},
    {4.25, "iq4_xs", 22.30, 19.93, NAN, 22.8, 20.4, 22.6},
    {4.5, "q4_K (iq4_nl 22.37 / 20.08)", 22.93, 21.09, 22.7, 23.4, 21.6, 23.2},
    {5.5, "q5_K", 28.85, 26.76, 28.7, 29.4, 27.3, 29.2},
    {6.6, "q6_K (6.56)", 35.01, 31.55, NAN, 35.5, 32.1, 35.3},
    {8.5, "q8_0", 45.44, 40.76, NAN, 45.9, 41.3, 45.7},
};

struct options {
  bool quick = false;
  std::vector<std::string> codec_filters;
  std::string model;
};

bool selected(const options& o, std::string_view name) {
  if (o.codec_filters.empty()) return true;
  for (const std::string& f : o.codec_filters)
    if (name.find(f) != std::string_view::npos) return true;
  return false;
}

/// The model's encoder linear weights: encoder.layer.N.{attention.self.{query,key,value},
/// attention.output.dense, intermediate.dense, output.dense}.weight (optionally prefixed).
std::vector<std::string> model_tensor_names(const io::safetensors_file& file) {
  static const std::regex linear(
      R"((^|\.)encoder\.layer\.[0-9]+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)\.weight$)");
  std::vector<std::string> names;
  for (const io::tensor_info& t : file.tensors())
    if (t.shape.size() == 2 && std::regex_search(t.name, linear)) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  return names;
}

template <class Codec>
fidelity_report run_one(const Codec& codec, const row_matrix& w, codec_result& result, double& bpw) {
  const auto start = std::chrono::steady_clock::now();
  const auto encoded = codec.encode(w);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.encode_bytes += 4.0 * static_cast<double>(w.size());
  result.encode_seconds += seconds;
  bpw = encoded.bpw();
  return measure_fidelity(w, encoded.decode());
}

void print_table(const std::vector<codec_result>& results, bool with_model) {
  std::vector<const codec_result*> sorted;
  for (const codec_result& r : results) sorted.push_back(&r);
  std::stable_sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->bpw < b->bpw; });
  std::printf("| codec | bpw | Gaussian SNR dB | heavy-tailed SNR dB |%s max abs err (G / H) | sign flips (G / H) | encode MB/s |\n",
              with_model ? " BERT median SNR dB |" : "");
  std::printf("|---|---|---|---|%s---|---|---|\n", with_model ? "---|" : "");
  std::size_t next_budget = 0;
  const auto budget_row = [&](const budget& b) {
    std::printf("| **≤ %.2f bpw** — ggml %s: %.2f / %.2f", b.bpw, b.ggml, b.ggml_gaussian, b.ggml_heavy);
    if (!std::isnan(b.ggml_model)) std::printf(", BERT %.1f", b.ggml_model);
    std::printf("; target ≥ %.1f / %.1f (BERT %.1f) | | | |%s | | |\n", b.target_gaussian, b.target_heavy,
                b.target_model, with_model ? " |" : "");
  };
  for (const codec_result* r : sorted) {
    // A budget row closes the rows within it.
    while (next_budget < std::size(budgets) && r->bpw > budgets[next_budget].bpw) budget_row(budgets[next_budget++]);
    std::printf("| %s | %.4f | %.2f | %.2f |", r->name.c_str(), r->bpw, mean(r->families[0].snr),
                mean(r->families[1].snr));
    if (with_model) std::printf(" %.2f |", median(r->model_snr));
    std::printf(" %.3g / %.3g | %td / %td | %.0f |\n", r->families[0].max_abs_err, r->families[1].max_abs_err,
                r->families[0].sign_flips, r->families[1].sign_flips, r->encode_bytes / r->encode_seconds / 1e6);
  }
  while (next_budget < std::size(budgets)) budget_row(budgets[next_budget++]);

  std::printf("\nBest within each budget (bpw on every shape at most the budget):\n\n");
  std::printf("| budget | ggml G / H | target G / H | best qcodec Gaussian | best qcodec heavy-tailed |%s\n",
              with_model ? " best qcodec BERT median |" : "");
  std::printf("|---|---|---|---|---|%s\n", with_model ? "---|" : "");
  for (const budget& b : budgets) {
    const codec_result* best[3] = {};
    const auto score = [&](const codec_result* r, int k) {
      return k < 2 ? mean(r->families[k].snr) : median(r->model_snr);
    };
    for (const codec_result* r : sorted)
      for (int k = 0; k < 3; ++k)
        if (r->bpw <= b.bpw && (k < 2 || r->model_bpw <= b.bpw) && !std::isnan(score(r, k)) &&
            (!best[k] || score(r, k) > score(best[k], k)))
          best[k] = r;
    std::printf("| ≤ %.2f | %.2f / %.2f | %.1f / %.1f |", b.bpw, b.ggml_gaussian, b.ggml_heavy, b.target_gaussian,
                b.target_heavy);
    for (int k = 0; k < (with_model ? 3 : 2); ++k) {
      if (best[k]) std::printf(" %s %.2f |", best[k]->name.c_str(), score(best[k], k));
      else std::printf(" — |");
    }
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (const char* quick = std::getenv("QCODEC_BENCH_QUICK")) o.quick = std::string_view(quick) == "1";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--quick") {
      o.quick = true;
    } else if ((arg == "--codec" || arg == "--safetensors") && i + 1 < argc) {
      if (arg == "--codec") o.codec_filters.emplace_back(argv[++i]);
      else o.model = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: bench_fidelity [--quick] [--codec SUBSTRING]... [--safetensors FILE]\n");
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }
#if QCODEC_USE_OPENMP
  omp_set_num_threads(1);
#endif
  const std::vector<shape> shapes =
      o.quick ? std::vector<shape>{{256, 256}, {96, 200}} : std::vector<shape>{{4096, 4096}, {11008, 4096}, {5632, 2048}, {3072, 768}};

  std::vector<codec_result> results;
  for_each_codec<all_codecs>([&]<class C>(C) {
    if (!selected(o, codec_traits<C>::name)) return;
    results.emplace_back();
    results.back().name = codec_traits<C>::name;
  });
  if (results.empty()) {
    std::fprintf(stderr, "bench_fidelity: no codec name contains the --codec substrings\n");
    return 2;
  }
  const auto for_each_selected = [&](auto&& f) {
    std::size_t k = 0;
    for_each_codec<all_codecs>([&]<class C>(C codec) {
      if (selected(o, codec_traits<C>::name)) f(codec, results[k++]);
    });
  };

  for (const family f : {family::gaussian, family::heavy_tailed}) {
    const int fi = f == family::gaussian ? 0 : 1;
    for (const shape s : shapes) {
      const row_matrix w = generate(f, s);
      std::fprintf(stderr, "%s %tdx%td\n", fi == 0 ? "gaussian" : "heavy-tailed", s.rows, s.cols);
      for_each_selected([&](const auto& codec, codec_result& r) {
        double bpw = 0;
        const fidelity_report report = run_one(codec, w, r, bpw);
        r.bpw = std::max(r.bpw, bpw);
        family_result& fr = r.families[fi];
        fr.snr.push_back(report.snr_db);
        fr.max_abs_err = std::max(fr.max_abs_err, report.max_abs_err);
        fr.sign_flips += report.sign_flips;
      });
    }
  }

  bool with_model = false;
  std::size_t model_tensors = 0;
  if (!o.model.empty()) {
    if (!std::filesystem::exists(o.model)) {
      std::fprintf(stderr, "bench_fidelity: %s not found; the real-model column is skipped\n", o.model.c_str());
    } else {
      const auto file = io::safetensors_file::open(o.model);
      const std::vector<std::string> names = model_tensor_names(file);
      model_tensors = names.size();
      with_model = !names.empty();
      for (const std::string& name : names) {
        const row_matrix w = file.read_matrix(name);
        for_each_selected([&](const auto& codec, codec_result& r) {
          double bpw = 0;
          r.model_snr.push_back(run_one(codec, w, r, bpw).snr_db);
          r.model_bpw = std::max(r.model_bpw, bpw);
        });
      }
    }
  } else {
    std::fprintf(stderr, "bench_fidelity: no --safetensors FILE; the real-model column is skipped\n");
  }

  std::printf("Shapes:");
  for (const shape s : shapes) std::printf(" %tdx%td", s.rows, s.cols);
  std::printf("%s. SNR = -20 log10(||W - Ŵ||_F / ||W||_F), mean over the shapes; bpw counts every byte "
              "(the largest over the shapes); encode MB/s = FP32 input bytes / encode seconds, 1 thread, "
              "over every matrix encoded.\n",
              o.quick ? " (--quick)" : "");
  if (with_model)
    std::printf("Real model: %s, median per-tensor SNR over its %zu encoder linear weights.\n", o.model.c_str(),
                model_tensors);
  std::printf("\n");
  print_table(results, with_model);
  return 0;
}
