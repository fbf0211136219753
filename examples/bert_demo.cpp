// qcodec_bert: the reference BERT engine (examples/bert/) on a sentence-transformers model,
// FP32 against quantized files: bpw of the linear layers, embedding cosine to FP32 (mean,
// min), Spearman of the pairwise similarities against FP32, sentences/s at 1 and 2 threads.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#if defined(_OPENMP)
#  include <omp.h>
#endif

#include "bert/bert_model.hpp"
#include "bert/embedding_agreement.hpp"
#include "bert/sentence_set.hpp"
#include "bert/wordpiece_tokenizer.hpp"

namespace {

namespace bert = qcodec::examples::bert;
using clock_type = std::chrono::steady_clock;

void usage() {
  std::fprintf(stderr,
               "usage: qcodec_bert VOCAB FP32_MODEL [QUANTIZED_MODEL ...] [options]\n"
               "  VOCAB            the model's vocab.txt\n"
               "  FP32_MODEL       the model's safetensors file (the reference)\n"
               "  QUANTIZED_MODEL  the same model written by qcodec-quantize\n"
               "  --heads N        attention heads (default 12, all-MiniLM-L6-v2)\n"
               "  --seconds S      time spent per speed figure (default 1.5)\n"
               "  --batch N        sentences per forward (default: all of them)\n"
               "  --fp32-paths     also time integer codecs on their FP32 paths\n"
               "  --dump FILE      write the sentences, token ids and FP32 embeddings as JSON\n");
}

void set_threads(int threads) {
#if defined(_OPENMP)
  omp_set_num_threads(threads);
#else
  (void)threads;
#endif
}

/// Embeds `sentences` in forwards of `batch` sentences.
qcodec::row_matrix embed_all(bert::bert_model& model, const std::vector<bert::token_sequence>& sentences,
                             std::size_t batch) {
  qcodec::row_matrix out(static_cast<qcodec::index_t>(sentences.size()), model.hidden_size());
  for (std::size_t first = 0; first < sentences.size(); first += batch) {
    const std::vector<bert::token_sequence> part(
        sentences.begin() + static_cast<std::ptrdiff_t>(first),
        sentences.begin() + static_cast<std::ptrdiff_t>(std::min(sentences.size(), first + batch)));
    out.middleRows(static_cast<qcodec::index_t>(first), static_cast<qcodec::index_t>(part.size())) = model.embed(part);
  }
  return out;
}

/// Sentences per second: repeated passes over the set for at least `seconds`, after one warm-up.
double sentences_per_second(bert::bert_model& model, const std::vector<bert::token_sequence>& sentences,
                            std::size_t batch, int threads, double seconds) {
  set_threads(threads);
  embed_all(model, sentences, batch);
  const auto start = clock_type::now();
  double elapsed = 0;
  std::size_t passes = 0;
  do {
    embed_all(model, sentences, batch);
    ++passes;
    elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  } while (elapsed < seconds);
  return static_cast<double>(passes * sentences.size()) / elapsed;
}

/// The distinct codecs of the model's linear layers, joined by '+'.
std::string codec_label(const bert::bert_model& model) {
  std::set<std::string> names;
  for (const auto* lin : model.linears()) names.insert(lin->codec_name());
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : "+") + n;
  return out;
}

void dump(const std::filesystem::path& path, const std::vector<std::string>& sentences,
          const std::vector<bert::token_sequence>& tokens, const qcodec::row_matrix& embeddings) {
  nlohmann::json j;
  j["sentences"] = sentences;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    j["ids"].push_back(tokens[i].ids);
    std::vector<double> e(embeddings.row(static_cast<qcodec::index_t>(i)).begin(),
                          embeddings.row(static_cast<qcodec::index_t>(i)).end());
    j["embeddings"].push_back(e);
  }
  std::ofstream(path) << j.dump() << "\n";
}

}  // namespace

int main(int argc, char** argv) try {
  std::vector<std::string> files;
  bert::bert_options options;
  double seconds = 1.5;
  std::size_t batch = 0;
  bool fp32_paths = false;
  std::string dump_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--heads") options.heads = std::stoi(value());
    else if (arg == "--seconds") seconds = std::stod(value());
    else if (arg == "--batch") batch = std::stoul(value());
    else if (arg == "--fp32-paths") fp32_paths = true;
    else if (arg == "--dump") dump_path = value();
    else if (arg.starts_with("--")) {
      usage();
      return 2;
    } else files.push_back(arg);
  }
  if (files.size() < 2) {
    usage();
    return 2;
  }

  const auto tokenizer = bert::wordpiece_tokenizer::from_vocab_file(files[0]);
  const std::vector<std::string> sentences = bert::demo_sentences();
  std::vector<bert::token_sequence> tokens;
  std::size_t token_count = 0;
  for (const std::string& s : sentences) {
    tokens.push_back(tokenizer.encode(s));
    token_count += tokens.back().size();
  }
  if (batch == 0) batch = sentences.size();

  std::printf("qcodec_bert: %zu sentences (%zu tokens), %zu per forward; cosine and Spearman against FP32\n\n",
              sentences.size(), token_count, batch);
  std::printf("%-44s %7s %11s %11s %9s %10s %10s\n", "linear layers", "bpw", "cos mean", "cos min", "Spearman",
              "sent/s 1t", "sent/s 2t");
  qcodec::row_matrix reference;
  for (std::size_t f = 1; f < files.size(); ++f) {
    const auto file = qcodec::io::safetensors_file::open(files[f]);
    auto model = bert::bert_model::load(file, options);
    const std::string label = codec_label(model);
    const auto run = [&](const std::string& name) {
      set_threads(1);  // the embeddings do not depend on the thread count
      const qcodec::row_matrix embeddings = embed_all(model, tokens, batch);
      if (reference.size() == 0) {
        reference = embeddings;
        if (!dump_path.empty()) dump(dump_path, sentences, tokens, embeddings);
      }
      const bert::embedding_agreement a = bert::agreement(embeddings, reference);
      const double one = sentences_per_second(model, tokens, batch, 1, seconds);
      const double two = sentences_per_second(model, tokens, batch, 2, seconds);
      std::printf("%-44s %7.3f %11.6f %11.6f %9.5f %10.1f %10.1f\n", name.c_str(), model.linear_bpw(), a.cosine_mean,
                  a.cosine_min, a.spearman, one, two);
      std::fflush(stdout);
    };
    run(label);
    bool has_integer = false;
    for (const auto* lin : model.linears()) has_integer = has_integer || lin->integer_domain();
    if (fp32_paths && has_integer) {
      model.set_integer_domain(false);
      run(label + " (FP32 paths)");
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "qcodec_bert: %s\n", e.what());
  return 1;
}
