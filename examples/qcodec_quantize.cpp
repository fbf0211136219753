// qcodec-quantize: quantizes the weight matrices of a safetensors model file with one codec
// and writes a safetensors file holding the encoded matrices and every other tensor as is.

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
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
               "       qcodec-quantize INDEX OUTPUT_DIR [--shard FILE | --write-index] [options]\n"
               "  INPUT may be a sharded checkpoint: its model.safetensors.index.json, or a\n"
               "  directory holding it (or holding one model.safetensors). Sharded, OUTPUT is a\n"
               "  directory (created if absent): each shard is quantized into the same-named\n"
               "  file there, then OUTPUT/model.safetensors.index.json is written (new weight_map,\n"
               "  metadata total_size); every file atomically, and a failure removes the shards\n"
               "  the run wrote. Other files of the input directory (config.json, tokenizer) are\n"
               "  not copied. --in-place is refused for sharded input.\n"
               "  --shard FILE        quantize only shard FILE (as the index names it) into\n"
               "                      OUTPUT_DIR: one job per shard, on any machine\n"
               "  --write-index       write OUTPUT_DIR's index from its shards (every shard the\n"
               "                      input index names must be there) and quantize nothing\n"
               "  --jobs N            encode N tensors at once (default: the hardware threads,\n"
               "                      at most 4; each holds about 4x its tensor's FP32 bytes);\n"
               "                      the output is the same, byte for byte, for every N\n"
               "  --in-memory         hold every encoded tensor in memory until the end, as\n"
               "                      before streaming (the same bytes; for comparisons). By\n"
               "                      default each tensor goes to an unnamed temporary file in\n"
               "                      OUTPUT's directory as it is encoded, so memory is bounded\n"
               "                      by the tensors in flight, not the model (disk: twice the\n"
               "                      output until the copy into OUTPUT is done)\n"
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
  bool verify = false, quiet = false, in_place = false, in_memory = false, write_index = false;
  std::string shard;
  // Each job holds about four times its tensor's FP32 bytes: 4 by default bounds the memory
  // on a many-core machine too; --jobs asks for more.
  unsigned jobs = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
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
        arg == "--importance" || arg == "--shard" || arg == "--jobs") {
      const auto v = value();
      if (!v) {
        std::fprintf(stderr, "qcodec-quantize: %s needs a value\n", std::string(arg).c_str());
        return std::nullopt;
      }
      if (arg == "--codec") {
        o.codec = canonical_codec_name(*v);
      } else if (arg == "--shard") {
        o.shard = *v;
      } else if (arg == "--jobs") {
        char* end = nullptr;
        const long n = std::strtol(v->c_str(), &end, 10);
        if (v->empty() || *end != '\0' || n < 1 || n > 1024) {
          std::fprintf(stderr, "qcodec-quantize: --jobs needs a whole number from 1 to 1024, not '%s'\n",
                       v->c_str());
          return std::nullopt;
        }
        o.jobs = static_cast<unsigned>(n);
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
    } else if (arg == "--in-memory") {
      o.in_memory = true;
    } else if (arg == "--write-index") {
      o.write_index = true;
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
/// `elsewhere`: the tensors of a sharded checkpoint's other shards, whose entries are skipped.
std::map<std::string, std::vector<float>> read_importance(const options& o, const io::safetensors_file& input,
                                                          const std::set<std::string>& elsewhere) {
  std::map<std::string, std::vector<float>> importance;
  if (o.importance.empty()) return importance;
  const auto file = io::safetensors_file::open(o.importance);
  for (const io::tensor_info& t : file.tensors()) {
    const io::tensor_info* weight = input.find(t.name);
    if (weight == nullptr && elsewhere.count(t.name) != 0) continue;
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
/// Throws, so that the file does not replace OUTPUT, when a tensor differs. Streaming, the
/// pages of each tensor are let go once it is checked.
void verify(const io::safetensors_file& input, const std::filesystem::path& written, const std::string& output,
            const std::map<std::string, double>& reported_rel_err, bool release) {
  const auto file = io::safetensors_file::open(written);
  std::size_t checked = 0, bad = 0;
  for (const io::tensor_info& t : input.tensors()) {
    if (const io::tensor_info* copy = file.find(t.name)) {
      const bool same = copy->dtype == t.dtype && copy->shape == t.shape &&
                        io::equal_mapped(copy->bytes, t.bytes, input.label());
      if (!same) std::printf("verify: kept tensor '%s' differs\n", t.name.c_str()), ++bad;
      if (release) io::release_pages(copy->bytes);
    } else {
      const fidelity_report report = measure_fidelity(input.read_matrix(t.name), io::decode_tensor(file, t.name));
      if (report.rel_err != reported_rel_err.at(t.name))
        std::printf("verify: '%s' decodes from the file with rel_err %.6e, reported %.6e\n",
                    t.name.c_str(), report.rel_err, reported_rel_err.at(t.name)), ++bad;
      if (release)
        for (const std::string& array : io::encoded_tensor(file, t.name).arrays)
          io::release_pages(file.tensor(t.name + "." + array).bytes);
    }
    if (release) io::release_pages(t.bytes);
    ++checked;
  }
  std::printf("verify: %zu tensors checked, %zu bad\n", checked, bad);
  if (bad) detail::fail("verify: ", bad, " tensors differ; ", output, " was not written");
}

/// printf into a std::string.
template <class... Args>
std::string format(const char* pattern, Args... args) {
  const int n = std::snprintf(nullptr, 0, pattern, args...);
  std::string out(static_cast<std::size_t>(std::max(n, 0)), '\0');
  std::snprintf(out.data(), out.size() + 1, pattern, args...);
  return out;
}

/// One tensor's work, done on a worker thread: its report line and a writer holding what it
/// adds to the file (moved into the file's writer in tensor order, so the output does not
/// depend on the number of threads).
struct tensor_job {
  io::safetensors_writer staged;
  std::string line;
  std::exception_ptr error;
  double rel_err = 0;
  bool quantized = false, done = false;
  std::uintmax_t encoded_bytes = 0, weights = 0;
  double seconds = 0;  // reading, encoding and measuring this tensor
};

void process_tensor(const options& o, const io::safetensors_file& input,
                    const std::map<std::string, std::vector<float>>& importance, const io::tensor_info& t,
                    tensor_job& job) {
  if (const auto reason = keep_reason(t, o)) {
    job.staged.add_tensor_view(t.name, t.dtype, t.shape, t.bytes);
    job.line = format("%-48s %-14s %-7s %8.3f %10s %8s  kept (%s)\n", t.name.c_str(),
                      shape_text(t.shape).c_str(), std::string(io::dtype_name(t.dtype)).c_str(),
                      8.0 * static_cast<double>(io::dtype_size(t.dtype)), "-", "-", reason->c_str());
    return;
  }
  job.quantized = true;
  const auto start = std::chrono::steady_clock::now();
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
    job.line = format("%-48s %-14s %-7s %8.3f %10.3e %8.2f%s\n", t.name.c_str(),
                      shape_text(t.shape).c_str(), std::string(io::dtype_name(t.dtype)).c_str(),
                      encoded.bpw(), report.rel_err, report.snr_db, weighted ? "  weighted" : "");
    if (o.max_rel_err) require(report, {.max_rel_err = o.max_rel_err}, t.name);
    io::add_encoded(job.staged, t.name, encoded, encode_options);
    job.rel_err = report.rel_err;
    job.encoded_bytes = encoded.byte_size();
    job.weights = static_cast<std::uintmax_t>(encoded.rows() * encoded.cols());
  });
  job.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Quantizes safetensors file `input_path` into `output_path` (atomically). `expected`, when
/// not empty, names exactly the tensors the file must hold (a shard's part of an index);
/// `elsewhere` the other shards' tensors (for --importance).
void quantize_file(const options& o, const std::filesystem::path& input_path,
                   const std::filesystem::path& output_path, const std::set<std::string>& expected = {},
                   const std::set<std::string>& elsewhere = {}) {
  const auto start = std::chrono::steady_clock::now();
  const std::string output = output_path.string();
  // Refused before any work: OUTPUT must be a regular file or absent (atomic_file.hpp).
  io::require_regular_or_absent(output_path);
  const auto input = io::safetensors_file::open(input_path);
  const auto before = std::filesystem::file_size(input_path);  // OUTPUT may replace INPUT
  if (!io::encoded_tensors(input).empty())
    detail::fail(input_path.string(), ": already holds qcodec-encoded tensors");
  if (!expected.empty()) {
    std::set<std::string> held;
    for (const io::tensor_info& t : input.tensors()) held.insert(t.name);
    if (held != expected)
      detail::fail(input_path.string(), ": holds other tensors than the index maps to it (",
                   held.size(), " held, ", expected.size(), " mapped)");
  }
  const auto importance = read_importance(o, input, elsewhere);
  io::safetensors_writer writer;
  for (const auto& [key, value] : input.metadata()) writer.set_metadata(key, value);
  writer.set_metadata("qcodec.quantized_with", o.codec);
  const bool streaming = !o.in_memory;
  if (streaming)
    writer.stream_through(output_path.parent_path().empty() ? std::filesystem::path(".")
                                                            : output_path.parent_path());

  std::printf("%-48s %-14s %-7s %8s %10s %8s\n", "tensor", "shape", "dtype", "bpw", "rel_err",
              "SNR dB");
  std::size_t quantized = 0, kept = 0;
  std::uintmax_t encoded_bytes = 0, quantized_weights = 0;
  double encode_seconds = 0;
  std::map<std::string, double> reported_rel_err;
  const auto& tensors = input.tensors();
  const std::size_t n = tensors.size();

  // Workers encode tensors in any order, at most o.jobs of them held at once (encoding, or
  // encoded and waiting); this thread takes them in file order, prints, writes, lets go.
  std::vector<tensor_job> jobs(n);
  std::mutex mutex;
  std::condition_variable changed;
  std::size_t next = 0, written = 0;
  bool stop = false;
  const std::size_t window = o.jobs;
  const auto work = [&] {
    for (;;) {
      std::size_t i = 0;
      {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return stop || next >= n || next < written + window; });
        if (stop || next >= n) return;
        i = next++;
      }
      try {
        process_tensor(o, input, importance, tensors[i], jobs[i]);
      } catch (...) {
        jobs[i].error = std::current_exception();
      }
      {
        std::lock_guard lock(mutex);
        jobs[i].done = true;
      }
      changed.notify_all();
    }
  };
  std::vector<std::thread> threads;
  struct joiner {
    std::vector<std::thread>& threads;
    std::mutex& mutex;
    std::condition_variable& changed;
    bool& stop;
    ~joiner() {
      {
        std::lock_guard lock(mutex);
        stop = true;
      }
      changed.notify_all();
      for (std::thread& t : threads) t.join();
    }
  } join_at_exit{threads, mutex, changed, stop};
  for (std::size_t k = 0; k < std::min<std::size_t>(o.jobs, n); ++k) threads.emplace_back(work);

  for (std::size_t i = 0; i < n; ++i) {
    const io::tensor_info& t = tensors[i];
    if (!o.quiet) progress(i, n, t.name);
    {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return jobs[i].done; });
    }
    tensor_job& job = jobs[i];
    std::fputs(job.line.c_str(), stdout);
    if (job.error) std::rethrow_exception(job.error);
    writer.append(std::move(job.staged));
    if (job.quantized) {
      reported_rel_err[t.name] = job.rel_err;
      encoded_bytes += job.encoded_bytes;
      quantized_weights += job.weights;
      encode_seconds += job.seconds;
      ++quantized;
    } else {
      ++kept;
    }
    if (streaming) io::release_pages(t.bytes);
    job = tensor_job{};
    job.done = true;
    {
      std::lock_guard lock(mutex);
      ++written;
    }
    changed.notify_all();
  }
  const auto encoded_at = std::chrono::steady_clock::now();
  if (!o.quiet) progress(n, n, "writing " + output);
  if (o.verify)
    writer.write(output_path, [&](const std::filesystem::path& written_path) {
      verify(input, written_path, output, reported_rel_err, streaming);
    });
  else
    writer.write(output_path);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto after = std::filesystem::file_size(output_path);
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
  // Where the time went: the tensors' own work (summed over the threads), the loop that ran
  // it, and the final header + data copy (+ --verify) into OUTPUT.
  std::printf("time: %.2f s encoding (summed over %u threads), %.2f s until every tensor was %s, "
              "%.2f s writing OUTPUT%s\n",
              encode_seconds, o.jobs,
              std::chrono::duration<double>(encoded_at - start).count(),
              streaming ? "spilled" : "in memory",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - encoded_at).count(),
              o.verify ? " and verifying" : "");
}

constexpr std::string_view index_name = "model.safetensors.index.json";

/// A sharded checkpoint's index: its directory, metadata, weight_map and shard files (sorted).
struct shard_index {
  std::filesystem::path dir;
  nlohmann::json metadata = nlohmann::json::object();
  std::map<std::string, std::string> weight_map;
  std::vector<std::string> shards;
  std::set<std::string> tensors_of(const std::string& shard) const {
    std::set<std::string> out;
    for (const auto& [name, file] : weight_map)
      if (file == shard) out.insert(name);
    return out;
  }
};

/// Reads an index file; throws naming it when it is not one. Shard names must be plain file
/// names (no directory part), so a hostile index cannot reach outside the two directories.
shard_index read_index(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) detail::fail(path.string(), ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    detail::fail(path.string(), ": not JSON: ", e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    detail::fail(path.string(), ": no \"weight_map\" object (not a sharded checkpoint's index)");
  shard_index index;
  index.dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  if (j.contains("metadata")) {
    if (!j["metadata"].is_object()) detail::fail(path.string(), ": \"metadata\" is not an object");
    index.metadata = j["metadata"];
  }
  std::set<std::string> shards;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) detail::fail(path.string(), ": weight_map entry '", name, "' is not a file name");
    const std::string shard = file.get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == ".." ||
        shard == index_name)
      detail::fail(path.string(), ": weight_map entry '", name, "' names '", shard,
                   "', not a file name in the index's directory");
    index.weight_map[name] = shard;
    shards.insert(shard);
  }
  if (shards.empty()) detail::fail(path.string(), ": the weight_map is empty");
  index.shards.assign(shards.begin(), shards.end());
  return index;
}

/// Writes OUTPUT_DIR's index from the output shards of every shard `index` names: the
/// weight_map of their tensors, the input metadata with total_size (the sum of the shards'
/// data bytes) and the codec the shards name. Atomic; throws naming a missing shard.
void write_index(const shard_index& index, const std::filesystem::path& out_dir) {
  nlohmann::json weight_map = nlohmann::json::object();
  std::uint64_t total = 0;
  std::set<std::string> codecs;
  for (const std::string& shard : index.shards) {
    const std::filesystem::path path = out_dir / shard;
    if (!std::filesystem::exists(path))
      detail::fail(path.string(), ": missing; the index is written once every shard is quantized");
    const auto file = io::safetensors_file::open(path);
    const auto codec = file.metadata().find("qcodec.quantized_with");
    if (codec == file.metadata().end()) detail::fail(path.string(), ": not written by qcodec-quantize");
    codecs.insert(codec->second);
    for (const io::tensor_info& t : file.tensors()) {
      if (weight_map.contains(t.name))
        detail::fail(path.string(), ": tensor '", t.name, "' is in ", weight_map[t.name].get<std::string>(), " too");
      weight_map[t.name] = shard;
      total += t.bytes.size();
    }
  }
  nlohmann::json out = {{"metadata", index.metadata}, {"weight_map", weight_map}};
  out["metadata"]["total_size"] = total;
  if (codecs.size() == 1) out["metadata"]["qcodec.quantized_with"] = *codecs.begin();
  const std::string text = out.dump(2) + "\n";
  io::write_file_atomically(out_dir / index_name, [&](io::file_sink& sink) {
    sink.write(std::as_bytes(std::span(text)));
  });
  std::printf("%s: %zu tensors in %zu shards, total_size %ju\n", (out_dir / index_name).c_str(),
              weight_map.size(), index.shards.size(), static_cast<std::uintmax_t>(total));
}

int run_sharded(const options& o, const shard_index& index) {
  if (o.in_place)
    detail::fail("--in-place is refused for a sharded checkpoint: give an OUTPUT directory");
  const std::filesystem::path out_dir = o.output;
  struct ::stat status {};
  bool created = false;
  if (::lstat(out_dir.c_str(), &status) == 0) {
    if (!S_ISDIR(status.st_mode))
      detail::fail(o.output, ": is ", io::detail::file_kind(status.st_mode),
                   "; a sharded checkpoint's OUTPUT must be a directory or absent");
  } else if (errno == ENOENT) {
    std::error_code error;
    if (!std::filesystem::create_directory(out_dir, error) || error)
      detail::fail(o.output, ": cannot create the output directory: ", error.message());
    created = true;
  } else {
    detail::fail(o.output, ": cannot inspect the output path: ", std::strerror(errno));
  }
  const auto remove_created_dir = [&] {
    std::error_code ignored;
    if (created) std::filesystem::remove(out_dir, ignored);  // only if still empty
  };
  std::error_code same_error;
  if (std::filesystem::equivalent(index.dir, out_dir, same_error)) {
    remove_created_dir();
    detail::fail(o.output, ": is the input checkpoint's directory; writing there would replace its shards");
  }
  if (o.write_index) {
    write_index(index, out_dir);
    return 0;
  }
  std::vector<std::string> shards = index.shards;
  if (!o.shard.empty()) {
    if (std::find(shards.begin(), shards.end(), o.shard) == shards.end()) {
      remove_created_dir();
      detail::fail("--shard ", o.shard, ": the index names no such shard");
    }
    shards = {o.shard};
  }
  // Every output path checked before any work (a link or FIFO refused, nothing written).
  try {
    for (const std::string& shard : shards) io::require_regular_or_absent(out_dir / shard);
    if (o.shard.empty()) io::require_regular_or_absent(out_dir / index_name);
  } catch (...) {
    remove_created_dir();
    throw;
  }
  std::vector<std::filesystem::path> done;
  try {
    for (const std::string& shard : shards) {
      std::printf("== %s\n", shard.c_str());
      std::set<std::string> elsewhere;
      for (const auto& [name, file] : index.weight_map)
        if (file != shard) elsewhere.insert(name);
      quantize_file(o, index.dir / shard, out_dir / shard, index.tensors_of(shard), elsewhere);
      done.push_back(out_dir / shard);
    }
    if (o.shard.empty()) write_index(index, out_dir);
  } catch (...) {
    // Each file is atomic; a failed run also takes back the shards it wrote, so that it
    // leaves no partial checkpoint.
    std::error_code ignored;
    for (const auto& path : done) std::filesystem::remove(path, ignored);
    remove_created_dir();
    throw;
  }
  return 0;
}

int run(options o) {
  // INPUT: a safetensors file, an index, or a directory holding an index or model.safetensors.
  std::filesystem::path input = o.input;
  std::error_code error;
  if (std::filesystem::is_directory(input, error)) {
    if (std::filesystem::exists(input / index_name)) {
      input /= index_name;
    } else if (std::filesystem::exists(input / "model.safetensors")) {
      input /= "model.safetensors";
    } else {
      detail::fail(o.input, ": a directory without ", index_name, " or model.safetensors");
    }
  }
  if (input.filename().string().ends_with(".json")) return run_sharded(o, read_index(input));
  if (!o.shard.empty() || o.write_index)
    detail::fail(o.input, ": --shard and --write-index need a sharded checkpoint's index");
  o.input = input.string();
  quantize_file(o, input, o.output);
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
