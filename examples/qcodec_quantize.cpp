// qcodec-quantize: quantizes the weight matrices of a safetensors model file with one codec
// and writes a safetensors file holding the encoded matrices and every other tensor as is.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <qcodec/codecs/codec_list.hpp>
#include <qcodec/core/fidelity.hpp>
#include <qcodec/io/encoded_tensors.hpp>
#include <qcodec/io/interrupt_cleanup.hpp>
#include <qcodec/io/mapped_copy.hpp>

#include "shape_text.hpp"

namespace {

using namespace qcodec;
using examples::shape_text;

/// Weights that stay in floating point unless --no-default-skips: embeddings and the output
/// head (their rows are looked up or feed the logits directly, where errors show most),
/// normalisation weights and biases (tiny, and sensitive). Tensors of rank other than 2 and
/// non-float tensors are always kept.
constexpr std::string_view default_skips[] = {"embed", "wte", "wpe", "lm_head", "norm", "ln_",
                                              "\\.bias$"};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: qcodec-quantize INPUT.safetensors OUTPUT.safetensors [options]\n"
               "       qcodec-quantize MODEL.safetensors --in-place [options]\n"
               "  --codec NAME        codec (default int8), e.g. int8, int4-g128, qins8,\n"
               "                      outliers+int4-g128 (also spelt int4-g128+outliers);\n"
               "                      --codec=NAME works too; --list-codecs prints them all.\n"
               "                      Per-tensor-scale codecs (int8-tensor, int4-tensor, ...) get\n"
               "                      a warning: one scale per matrix collapses real models\n"
               "                      (all-MiniLM-L6-v2 with int4-tensor: embedding cosine 0.54);\n"
               "                      use a per-row or per-group codec (int8, int4-g128)\n"
               "  --outlier-fraction P  (outliers+ codecs) budget of the FP16 ortho stream: at most\n"
               "                      P of the weights keep their residual W - B (the largest),\n"
               "                      32 bits each; default 1/256 = 0.00390625 (+0.13 bpw).\n"
               "                      The base B encodes every weight, so alpha = 0 is the base\n"
               "                      codec alone. Use the split for heavy-tailed weights or\n"
               "                      outlier input features (measured there: outliers+grid4-\n"
               "                      2level-g32-q5-s256-t2, 4.38 bpw, and outliers+qins8 beat\n"
               "                      every plain codec of equal or fewer bits by 1.0 and 1.1 dB);\n"
               "                      on Gaussian weights a plain codec of the same bits is as\n"
               "                      good or better\n"
               "  --importance FILE   (two-level and grid codecs) column importances: a safetensors\n"
               "                      file of 1-D F32/F16/BF16 tensors, each named as the weight it\n"
               "                      weights, one value >= 0 per input column (e.g. the mean\n"
               "                      squared activation of that input); the encoder minimises the\n"
               "                      weighted squared error. Weights without one: unweighted\n"
               "  --skip REGEX        also keep tensors whose name matches REGEX (repeatable)\n"
               "  --no-default-skips  quantize embeddings, lm_head, norms and biases too\n"
               "  --max-rel-err X     fail, writing nothing, if a tensor's rel_err exceeds X\n"
               "  --verify            read the written file back, decode and compare with the\n"
               "                      input before it replaces OUTPUT (a mismatch writes nothing)\n"
               "  --in-place          allow OUTPUT to be INPUT (or give INPUT alone): the model is\n"
               "                      replaced, still atomically (a temporary file renamed over\n"
               "                      it once complete), so a failure leaves it intact; without\n"
               "                      --in-place OUTPUT == INPUT is refused\n"
               "  --quiet             no progress bar (shown only on a terminal)\n"
               "  --list-codecs       print the codec names and exit\n"
               "The summary gives the file bytes before and after and the bpw of the quantized\n"
               "tensors (their encoded bytes * 8 / their weights).\n");
}

/// The library's name of a codec given on the command line ("X+outliers" = "outliers+X").
std::string canonical_codec_name(std::string name) {
  constexpr std::string_view suffix = "+outliers";
  if (name.size() > suffix.size() && name.ends_with(suffix))
    name = std::string("outliers+").append(name, 0, name.size() - suffix.size());
  return name;
}

bool known_codec(std::string_view name) {
  bool found = false;
  for_each_codec<all_codecs>([&]<class C>(C) { found = found || codec_traits<C>::name == name; });
  return found;
}

struct options {
  std::string input, output, codec = "int8", importance;
  std::vector<std::regex> skips;
  std::optional<double> max_rel_err;
  std::optional<double> outlier_fraction;
  bool verify = false, quiet = false, in_place = false;
};

/// True for the codecs with one scale for the whole matrix (`-tensor` in the name).
bool per_tensor_scale(std::string_view codec) { return codec.find("-tensor") != std::string_view::npos; }

std::optional<options> parse_arguments(int argc, char** argv) {
  options o;
  bool default_skips_on = true;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    // --option=value is --option value.
    std::optional<std::string> inline_value;
    if (arg.starts_with("--") && arg.find('=') != std::string_view::npos) {
      inline_value = std::string(arg.substr(arg.find('=') + 1));
      arg = arg.substr(0, arg.find('='));
    }
    const auto value = [&]() -> std::optional<std::string> {
      if (inline_value) return inline_value;
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    if (arg == "--codec" || arg == "--skip" || arg == "--max-rel-err" || arg == "--outlier-fraction" ||
        arg == "--importance") {
      const auto v = value();
      if (!v) {
        std::fprintf(stderr, "qcodec-quantize: %s needs a value\n", std::string(arg).c_str());
        return std::nullopt;
      }
      if (arg == "--codec") {
        o.codec = canonical_codec_name(*v);
      } else if (arg == "--importance") {
        o.importance = *v;
      } else if (arg == "--max-rel-err") {
        char* end = nullptr;
        const double bound = std::strtod(v->c_str(), &end);
        if (v->empty() || *end != '\0' || !(bound >= 0) || !std::isfinite(bound)) {
          std::fprintf(stderr, "qcodec-quantize: --max-rel-err needs a finite number >= 0, not '%s'\n",
                       v->c_str());
          return std::nullopt;
        }
        o.max_rel_err = bound;
      } else if (arg == "--outlier-fraction") {
        char* end = nullptr;
        const double p = std::strtod(v->c_str(), &end);
        if (v->empty() || *end != '\0' || !(p >= 0 && p < 1)) {
          std::fprintf(stderr, "qcodec-quantize: --outlier-fraction needs a number in [0, 1), not '%s'\n",
                       v->c_str());
          return std::nullopt;
        }
        o.outlier_fraction = p;
      } else {
        try {
          o.skips.emplace_back(*v);
        } catch (const std::regex_error&) {
          std::fprintf(stderr, "qcodec-quantize: bad --skip pattern '%s'\n", v->c_str());
          return std::nullopt;
        }
      }
    } else if (inline_value) {
      std::fprintf(stderr, "qcodec-quantize: option '%s' takes no value\n", std::string(arg).c_str());
      return std::nullopt;
    } else if (arg == "--no-default-skips") {
      default_skips_on = false;
    } else if (arg == "--verify") {
      o.verify = true;
    } else if (arg == "--quiet") {
      o.quiet = true;
    } else if (arg == "--in-place") {
      o.in_place = true;
    } else if (arg.starts_with("-")) {
      std::fprintf(stderr, "qcodec-quantize: unknown option '%s'\n", argv[i]);
      return std::nullopt;
    } else {
      positional.emplace_back(arg);
    }
  }
  if (o.in_place && positional.size() == 1) positional.push_back(positional[0]);
  if (positional.size() != 2) {
    std::fprintf(stderr, "qcodec-quantize: expected INPUT and OUTPUT files\n");
    return std::nullopt;
  }
  if (!known_codec(o.codec)) {
    std::fprintf(stderr, "qcodec-quantize: unknown codec '%s' (--list-codecs prints them)\n",
                 o.codec.c_str());
    return std::nullopt;
  }
  if (o.outlier_fraction && !o.codec.starts_with("outliers+")) {
    std::fprintf(stderr, "qcodec-quantize: --outlier-fraction applies to outliers+ codecs, not '%s'\n",
                 o.codec.c_str());
    return std::nullopt;
  }
  if (!o.importance.empty()) {
    bool takes = false;
    for_each_codec<all_codecs>([&]<class C>(C) { takes = takes || (codec_traits<C>::name == o.codec && takes_column_importance<C>); });
    if (!takes) {
      std::fprintf(stderr, "qcodec-quantize: codec '%s' does not take column importances (--importance: the two-level and grid codecs do)\n",
                   o.codec.c_str());
      return std::nullopt;
    }
  }
  o.input = positional[0];
  o.output = positional[1];
  // The same file by any name (a link, ./x): writing OUTPUT would replace the FP32 model,
  // which only --in-place allows.
  std::error_code same_error;
  if (!o.in_place && (o.input == o.output || std::filesystem::equivalent(o.input, o.output, same_error))) {
    std::fprintf(stderr, "qcodec-quantize: OUTPUT '%s' is INPUT: writing it would replace the model; choose another OUTPUT, or give --in-place\n",
                 o.output.c_str());
    return std::nullopt;
  }
  if (default_skips_on)
    for (std::string_view pattern : default_skips) o.skips.emplace_back(std::string(pattern));
  return o;
}

/// Why a tensor stays as it is, or nothing when it is quantized.
std::optional<std::string> keep_reason(const io::tensor_info& t, const options& o) {
  if (t.dtype != io::dtype::f32 && t.dtype != io::dtype::f16 && t.dtype != io::dtype::bf16)
    return "dtype " + std::string(io::dtype_name(t.dtype));
  if (t.shape.size() != 2) return "rank " + std::to_string(t.shape.size());
  if (t.shape[0] == 0 || t.shape[1] == 0) return "empty";
  for (const std::regex& pattern : o.skips)
    if (std::regex_search(t.name, pattern)) return "skip pattern";
  return std::nullopt;
}

/// The column importances of --importance, by weight name: every entry a 1-D float tensor
/// naming a weight that is quantized, one value per column of it (their range is checked by
/// the codec). Throws, naming the entry, otherwise.
std::map<std::string, std::vector<float>> read_importance(const options& o, const io::safetensors_file& input) {
  std::map<std::string, std::vector<float>> importance;
  if (o.importance.empty()) return importance;
  const auto file = io::safetensors_file::open(o.importance);
  for (const io::tensor_info& t : file.tensors()) {
    const io::tensor_info* weight = input.find(t.name);
    if (weight == nullptr || keep_reason(*weight, o))
      detail::fail(o.importance, ": '", t.name, "' names no quantized tensor of ", o.input);
    if (t.shape.size() != 1)
      detail::fail(o.importance, ": '", t.name, "' has rank ", t.shape.size(), ", expected 1 (one value per column)");
    const row_matrix values = file.read_matrix(t.name);
    importance[t.name].assign(values.data(), values.data() + values.size());
  }
  return importance;
}

/// The progress bar, redrawn in place with \r: on a terminal only (a log keeps no frames).
void progress(std::size_t done, std::size_t total, std::string_view name) {
  static const bool terminal = isatty(fileno(stderr)) == 1;
  if (!terminal) return;
  constexpr int width = 30;
  const int filled = total ? static_cast<int>(width * done / total) : width;
  std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu %-40.40s", filled, "##############################",
               width - filled, "", done, total, std::string(name).c_str());
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

/// Reads the written file back: every encoded tensor passes validation and decodes to exactly
/// what was reported (the same rel_err to the last bit), every kept tensor is byte-identical.
/// Throws, so that the file does not replace OUTPUT, when a tensor differs.
void verify(const io::safetensors_file& input, const std::filesystem::path& written, const std::string& output,
            const std::map<std::string, double>& reported_rel_err) {
  const auto file = io::safetensors_file::open(written);
  std::size_t checked = 0, bad = 0;
  for (const io::tensor_info& t : input.tensors()) {
    if (const io::tensor_info* copy = file.find(t.name)) {
      const bool same = copy->dtype == t.dtype && copy->shape == t.shape &&
                        io::equal_mapped(copy->bytes, t.bytes, input.label());
      if (!same) std::printf("verify: kept tensor '%s' differs\n", t.name.c_str()), ++bad;
    } else {
      const fidelity_report report = measure_fidelity(input.read_matrix(t.name), io::decode_tensor(file, t.name));
      if (report.rel_err != reported_rel_err.at(t.name))
        std::printf("verify: '%s' decodes from the file with rel_err %.6e, reported %.6e\n",
                    t.name.c_str(), report.rel_err, reported_rel_err.at(t.name)), ++bad;
    }
    ++checked;
  }
  std::printf("verify: %zu tensors checked, %zu bad\n", checked, bad);
  if (bad) detail::fail("verify: ", bad, " tensors differ; ", output, " was not written");
}

int run(const options& o) {
  const auto start = std::chrono::steady_clock::now();
  // Refused before any work: OUTPUT must be a regular file or absent (atomic_file.hpp).
  io::require_regular_or_absent(o.output);
  const auto input = io::safetensors_file::open(o.input);
  const auto before = std::filesystem::file_size(o.input);  // OUTPUT may replace INPUT
  if (!io::encoded_tensors(input).empty())
    detail::fail(o.input, ": already holds qcodec-encoded tensors");
  const auto importance = read_importance(o, input);
  io::safetensors_writer writer;
  for (const auto& [key, value] : input.metadata()) writer.set_metadata(key, value);
  writer.set_metadata("qcodec.quantized_with", o.codec);

  std::printf("%-48s %-14s %-7s %8s %10s %8s\n", "tensor", "shape", "dtype", "bpw", "rel_err",
              "SNR dB");
  std::size_t quantized = 0, kept = 0;
  std::uintmax_t encoded_bytes = 0, quantized_weights = 0;
  std::map<std::string, double> reported_rel_err;
  const auto& tensors = input.tensors();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const io::tensor_info& t = tensors[i];
    if (!o.quiet) progress(i, tensors.size(), t.name);
    if (const auto reason = keep_reason(t, o)) {
      writer.add_tensor_view(t.name, t.dtype, t.shape, t.bytes);
      std::printf("%-48s %-14s %-7s %8.3f %10s %8s  kept (%s)\n", t.name.c_str(),
                  shape_text(t.shape).c_str(), std::string(io::dtype_name(t.dtype)).c_str(),
                  8.0 * static_cast<double>(io::dtype_size(t.dtype)), "-", "-", reason->c_str());
      ++kept;
      continue;
    }
    const row_matrix w = input.read_matrix(t.name);
    for_each_codec<all_codecs>([&]<class C>(C codec) {
      if (codec_traits<C>::name != o.codec) return;
      nlohmann::ordered_json encode_options;
      if constexpr (is_outlier_split<C>) {
        if (o.outlier_fraction) codec.outlier_fraction = *o.outlier_fraction;
        encode_options["outlier_fraction"] = codec.outlier_fraction;
      }
      const auto weights = importance.find(t.name);
      const bool weighted = weights != importance.end();
      const auto encoded = [&] {
        if constexpr (takes_column_importance<C>)
          if (weighted) return codec.encode(w, t.name, weights->second);
        return codec.encode(w, t.name);
      }();
      if (weighted) encode_options["column_importance"] = true;
      const fidelity_report report = measure_fidelity(w, encoded.decode());
      std::printf("%-48s %-14s %-7s %8.3f %10.3e %8.2f%s\n", t.name.c_str(),
                  shape_text(t.shape).c_str(), std::string(io::dtype_name(t.dtype)).c_str(),
                  encoded.bpw(), report.rel_err, report.snr_db, weighted ? "  weighted" : "");
      if (o.max_rel_err) require(report, {.max_rel_err = o.max_rel_err}, t.name);
      io::add_encoded(writer, t.name, encoded, encode_options);
      reported_rel_err[t.name] = report.rel_err;
      encoded_bytes += encoded.byte_size();
      quantized_weights += static_cast<std::uintmax_t>(encoded.rows() * encoded.cols());
    });
    ++quantized;
  }
  if (!o.quiet) progress(tensors.size(), tensors.size(), "writing " + o.output);
  if (o.verify)
    writer.write(o.output, [&](const std::filesystem::path& written) {
      verify(input, written, o.output, reported_rel_err);
    });
  else
    writer.write(o.output);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto after = std::filesystem::file_size(o.output);
  std::printf("\n%zu tensors quantized with %s, %zu kept; %ju -> %ju bytes (ratio %.2fx) in %.2f s\n",
              quantized, o.codec.c_str(), kept, static_cast<std::uintmax_t>(before),
              static_cast<std::uintmax_t>(after),
              static_cast<double>(before) / static_cast<double>(after), seconds);
  // bpw of the quantized tensors alone: every encoded byte (codes, scales, LUTs, outliers)
  // over their weights; the kept tensors and the header are in the file bytes above.
  if (quantized_weights > 0)
    std::printf("quantized tensors: %.3f bpw (%ju encoded bytes for %ju weights)\n",
                8.0 * static_cast<double>(encoded_bytes) / static_cast<double>(quantized_weights),
                encoded_bytes, quantized_weights);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    }
    if (arg == "--list-codecs") {
      for_each_codec<all_codecs>([]<class C>(C) {
        std::printf("%s\n", std::string(codec_traits<C>::name).c_str());
      });
      return 0;
    }
  }
  const auto o = parse_arguments(argc, argv);
  if (!o) {
    usage(stderr);
    return 2;
  }
  if (per_tensor_scale(o->codec))
    std::fprintf(stderr,
                 "qcodec-quantize: warning: '%s' has one scale per tensor: per-tensor scales collapse real\n"
                 "  models (embedding cosine 0.54 measured on all-MiniLM-L6-v2 with int4-tensor); use a\n"
                 "  per-row or per-group codec instead (int8, int8-g128, int4-g128, int4-g32, ...)\n",
                 o->codec.c_str());
  try {
    io::remove_temporaries_on_interrupt();
    return run(*o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\n%s\n", e.what());
    return 1;
  }
}
