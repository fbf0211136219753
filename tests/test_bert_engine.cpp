// The reference BERT engine (examples/bert/): its WordPiece tokenizer on a small vocabulary,
// and its forward on a tiny random BERT written at test time, against an FP64 implementation
// written out plainly here (reference_bert), within the engine's FP32 rounding as that FP64
// run propagates it; with INT8 linears, against the same FP64 model of the codec's weights and
// of the integer path's activation rounding.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <numbers>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <qcodec/qcodec.hpp>
#include <qcodec/io/encoded_tensors.hpp>

#include "bert/bert_model.hpp"
#include "bert/wordpiece_tokenizer.hpp"
#include "temp_dir.hpp"

using namespace qcodec;
namespace bert = qcodec::examples::bert;

namespace {

const std::vector<std::string> vocabulary = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".",     ",",     "!",      "?",     "'",     "the",
    "a",     "cat",   "dog",   "sat",   "on",     "mat",   "run",   "##ning", "##s",   "play",  "##ed",
    "un",    "##believ", "##able", "cafe", "naive", "hello", "world", "is",   "was",   "big",   "small",
    "red",   "blue",  "car",   "house", "tree",  "book",  "read",  "##er",   "word",  "piece", "##piece",
    "x",     "##x",   "b",     "s",     "d",     "-"};

bert::wordpiece_tokenizer tokenizer() { return bert::wordpiece_tokenizer(vocabulary); }

std::vector<std::string> words_of(const bert::token_sequence& s) {
  std::vector<std::string> out;
  for (int id : s.ids) out.push_back(vocabulary.at(static_cast<std::size_t>(id)));
  return out;
}

using strings = std::vector<std::string>;

}  // namespace

TEST_CASE("the tokenizer splits punctuation and wraps the words in [CLS] ... [SEP]", "[bert][tokenizer]") {
  const auto t = tokenizer();
  CHECK(words_of(t.encode("Hello, world!")) == strings{"[CLS]", "hello", ",", "world", "!", "[SEP]"});
  CHECK(words_of(t.encode("the cat's mat.")) == strings{"[CLS]", "the", "cat", "'", "s", "mat", ".", "[SEP]"});
  CHECK(t.basic_tokens("a-b") == strings{"a", "-", "b"});
  CHECK(t.basic_tokens("  a\t\nb  ") == strings{"a", "b"});
  const auto s = t.encode("the dog");
  CHECK(s.type_ids == std::vector<int>{0, 0, 0, 0});
  CHECK(s.mask == std::vector<std::uint8_t>{1, 1, 1, 1});
}

TEST_CASE("the tokenizer lower-cases and strips accents", "[bert][tokenizer]") {
  const auto t = tokenizer();
  CHECK(words_of(t.encode("THE Cat")) == strings{"[CLS]", "the", "cat", "[SEP]"});
  // U+00E9 (precomposed é), U+00CF (Ï, upper case) and e + U+0301 (combining acute accent).
  CHECK(t.basic_tokens("Caf\u00e9 NA\u00cfVE") == strings{"cafe", "naive"});
  CHECK(t.basic_tokens("cafe\u0301") == strings{"cafe"});
  CHECK(words_of(t.encode("Caf\u00e9")) == strings{"[CLS]", "cafe", "[SEP]"});
}

TEST_CASE("the tokenizer takes the longest wordpieces first and marks continuations with ##", "[bert][tokenizer]") {
  const auto t = tokenizer();
  CHECK(words_of(t.encode("running dogs played")) ==
        strings{"[CLS]", "run", "##ning", "dog", "##s", "play", "##ed", "[SEP]"});
  CHECK(words_of(t.encode("unbelievable")) == strings{"[CLS]", "un", "##believ", "##able", "[SEP]"});
  // "wordpiece": "word" + "##piece", not "word" + "##p..." (there is no shorter path needed).
  CHECK(words_of(t.encode("wordpiece")) == strings{"[CLS]", "word", "##piece", "[SEP]"});
  // "xx": "x" then "##x"; "x" alone never as a continuation.
  CHECK(words_of(t.encode("xx")) == strings{"[CLS]", "x", "##x", "[SEP]"});
}

TEST_CASE("a word the wordpieces cannot cover becomes one [UNK]", "[bert][tokenizer]") {
  const auto t = tokenizer();
  CHECK(words_of(t.encode("zebra")) == strings{"[CLS]", "[UNK]", "[SEP]"});
  // "cat" matches, "##z" does not: the whole word is [UNK], not "cat" + [UNK].
  CHECK(words_of(t.encode("catz dog")) == strings{"[CLS]", "[UNK]", "dog", "[SEP]"});
  CHECK(words_of(t.encode(std::string(101, 'x'))) == strings{"[CLS]", "[UNK]", "[SEP]"});
}

TEST_CASE("the tokenizer truncates to the maximum length, keeping [SEP]", "[bert][tokenizer]") {
  const auto t = tokenizer();
  CHECK(words_of(t.encode("the big red car was on the mat", 5)) == strings{"[CLS]", "the", "big", "red", "[SEP]"});
  // Truncation may cut a word's wordpieces.
  CHECK(words_of(t.encode("unbelievable", 4)) == strings{"[CLS]", "un", "##believ", "[SEP]"});
  CHECK(words_of(t.encode("the cat", 2)) == strings{"[CLS]", "[SEP]"});
  CHECK(t.encode("the cat sat", 5).size() == 5);
  CHECK_THROWS(t.encode("the", 1));
}

namespace {

// The tiny model: hidden 32, 2 heads of 16, 2 layers, FFN 64, 16 positions.
constexpr int hidden = 32, heads = 2, layers = 2, intermediate = 64, positions = 16;
constexpr double u = 0x1p-24;  // FP32 unit roundoff

const char* const linear_names[] = {"attention.self.query", "attention.self.key", "attention.self.value",
                                    "attention.output.dense", "intermediate.dense", "output.dense"};

/// Weights drawn so attention is far from uniform (query/key rows of norm ~2) and every
/// activation is O(1): a dropped mask or scale, or another GELU, moves the output by O(0.1).
std::map<std::string, row_matrix> tiny_bert_weights(unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const auto random = [&](index_t rows, index_t cols, float scale, float offset = 0.0f) {
    row_matrix m(rows, cols);
    for (index_t i = 0; i < m.size(); ++i) m.data()[i] = offset + scale * normal(rng);
    return m;
  };
  std::map<std::string, row_matrix> w;
  w["embeddings.word_embeddings.weight"] = random(static_cast<index_t>(vocabulary.size()), hidden, 1.0f);
  w["embeddings.position_embeddings.weight"] = random(positions, hidden, 0.5f);
  w["embeddings.token_type_embeddings.weight"] = random(2, hidden, 0.5f);
  w["embeddings.LayerNorm.weight"] = random(1, hidden, 0.1f, 1.0f);
  w["embeddings.LayerNorm.bias"] = random(1, hidden, 0.1f);
  for (int l = 0; l < layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    for (const char* name : linear_names) {
      const std::string n = name;
      const index_t out = n == "intermediate.dense" ? intermediate : hidden;
      const index_t in = n == "output.dense" ? intermediate : hidden;
      const float scale = (n == "attention.self.query" || n == "attention.self.key" ? 1.5f : 1.0f) /
                          std::sqrt(static_cast<float>(in));
      w[p + n + ".weight"] = random(out, in, scale);
      w[p + n + ".bias"] = random(1, out, 0.1f);
    }
    for (const char* norm : {"attention.output.LayerNorm", "output.LayerNorm"}) {
      w[p + norm + ".weight"] = random(1, hidden, 0.1f, 1.0f);
      w[p + norm + ".bias"] = random(1, hidden, 0.1f);
    }
  }
  return w;
}

bool is_linear_weight(const std::string& name) {
  return name.starts_with("encoder.") && name.ends_with(".weight") && name.find("LayerNorm") == std::string::npos;
}

/// Writes the model; the linear weights encoded with `codec` when given, else plain FP32.
template <class Codec = linear<8>>
void write_model(const std::map<std::string, row_matrix>& w, const std::filesystem::path& path,
                 std::optional<Codec> codec = std::nullopt) {
  io::safetensors_writer writer;
  for (const auto& [name, m] : w) {
    if (codec && is_linear_weight(name)) io::add_encoded(writer, name, codec->encode(m, name));
    else if (m.rows() == 1 && !name.ends_with("embeddings.weight"))
      writer.add_array(name, std::span<const float>(m.data(), static_cast<std::size_t>(m.size())));
    else writer.add_matrix(name, m);
  }
  writer.write(path);
}

using dmatrix = Eigen::MatrixXd;

/// A value computed in FP64 and the standard deviation of the engine's FP32 value around it.
struct tracked {
  dmatrix v, sd;
};

/// Allowed deviation, in standard deviations of the error model below (a Gaussian exceeds 6
/// with probability 2e-9 per element).
constexpr double lambda = 6;

/// How the engine computes one linear layer: FP32 (Eigen) on W, or the integer domain on a
/// decoded INT8 weight with activations quantized in blocks of `block` columns.
struct linear_model {
  std::optional<dmatrix> decoded;
  index_t block = 0;
};

/// The FP64 BERT forward of one sentence, with the error of the engine's FP32 forward
/// propagated to first order under the probabilistic rounding model (Higham and Mary, SIAM J.
/// Sci. Comput. 2019): each rounding is an independent error of at most u relative, so an FP32
/// sum of n terms of magnitudes a_i is off by a standard deviation of at most u sqrt(n) sum a_i,
/// and independent errors add in quadrature through a linear layer. Errors that share a source
/// (a residual and the branch computed from it, the tokens pooled together, the terms of
/// LayerNorm and softmax) add linearly. exp and erf are taken within 2 ulp (Eigen's float exp,
/// glibc's erff: 1 ulp); the FP64 run's own rounding (2^-53) is neglected. An INT8 linear is
/// modelled exactly (decoded weights, activations rounded as the integer path rounds them);
/// an activation whose x / s_k lies within the FP32 error of a rounding tie may get the
/// neighbouring code in the engine, which this model does not cover.
class reference_bert {
 public:
  reference_bert(const std::map<std::string, row_matrix>& w, std::map<std::string, linear_model> linears = {})
      : linears_(std::move(linears)) {
    for (const auto& [name, m] : w) w_[name] = m.cast<double>();
  }

  /// The L2-normalised mean-pooled embedding of the unpadded `ids`, and its error's deviation.
  tracked embed(const std::vector<int>& ids) const {
    const auto n = static_cast<index_t>(ids.size());
    tracked h{dmatrix(n, hidden), dmatrix(n, hidden)};
    for (index_t t = 0; t < n; ++t) {
      const Eigen::RowVectorXd a = w("embeddings.word_embeddings.weight").row(ids[static_cast<std::size_t>(t)]);
      const Eigen::RowVectorXd p = w("embeddings.position_embeddings.weight").row(t);
      const Eigen::RowVectorXd y = w("embeddings.token_type_embeddings.weight").row(0);
      h.v.row(t) = a + p + y;
      h.sd.row(t) = u * std::sqrt(2.0) * (a.cwiseAbs() + p.cwiseAbs() + y.cwiseAbs());
    }
    h = layer_norm(h, "embeddings.LayerNorm");
    for (int l = 0; l < layers; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      const tracked q = linear(h, p + linear_names[0]), k = linear(h, p + linear_names[1]),
                    v = linear(h, p + linear_names[2]);
      h = layer_norm(add(h, linear(attention(q, k, v), p + linear_names[3])), p + "attention.output.LayerNorm");
      h = layer_norm(add(h, linear(gelu(linear(h, p + linear_names[4])), p + linear_names[5])), p + "output.LayerNorm");
    }
    // Mean over the tokens, then divided by its norm: δe = (δm - e (e·δm)) / |m|.
    const Eigen::RowVectorXd m = h.v.colwise().mean();
    const Eigen::RowVectorXd dm =
        h.sd.colwise().mean() + u * std::sqrt(static_cast<double>(n + 1)) * h.v.cwiseAbs().colwise().mean();
    const double norm = m.norm();
    const Eigen::RowVectorXd e = m / norm;
    const double along = std::sqrt(e.cwiseAbs2().dot(dm.cwiseAbs2()));
    return {e, (dm + e.cwiseAbs() * along) / norm + u * std::sqrt(hidden + 3.0) * e.cwiseAbs()};
  }

 private:
  const dmatrix& w(const std::string& name) const { return w_.at(name); }

  static dmatrix rounding(int n, const dmatrix& magnitudes) { return u * std::sqrt(static_cast<double>(n)) * magnitudes; }

  static tracked add(const tracked& a, const tracked& c) {
    const dmatrix sum = a.v + c.v;
    return {sum, a.sd + c.sd + u * sum.cwiseAbs()};
  }

  tracked linear(const tracked& x, const std::string& name) const {
    const dmatrix& weight = w(name + ".weight");
    const Eigen::RowVectorXd bias = w(name + ".bias").row(0);
    tracked y{x.v * weight.transpose(), dmatrix()};
    y.v.rowwise() += bias;
    const auto k = static_cast<int>(weight.cols());
    const auto it = linears_.find(name + ".weight");
    if (it == linears_.end() || !it->second.decoded) {
      dmatrix magnitudes = x.v.cwiseAbs() * weight.cwiseAbs().transpose();
      magnitudes.rowwise() += bias.cwiseAbs();
      y.sd = (x.sd.cwiseAbs2() * weight.cwiseAbs2().transpose()).cwiseSqrt() + rounding(k + 1, magnitudes);
      return y;
    }
    // The integer domain (ops/integer_gemv.hpp), computed exactly: x quantized per block of
    // `block` columns, s_k = max|x_block| / 127, q = rint(x / s_k), times the decoded Ŵ; the
    // engine's FP32 roundings as above, with (blocks + 2) roundings of the sum.
    const dmatrix& decoded = *it->second.decoded;
    const index_t block = it->second.block;
    dmatrix quantized = x.v;
    for (index_t r = 0; r < x.v.rows(); ++r)
      for (index_t c0 = 0; c0 < x.v.cols(); c0 += block) {
        auto segment = quantized.row(r).segment(c0, block);
        const double step = segment.cwiseAbs().maxCoeff() / 127;
        if (step > 0) segment = ((segment / step).array().round() * step).matrix();
      }
    y.v = quantized * decoded.transpose();
    y.v.rowwise() += bias;
    const auto blocks = static_cast<int>(x.v.cols() / block);
    dmatrix magnitudes = x.v.cwiseAbs() * decoded.cwiseAbs().transpose();
    magnitudes.rowwise() += bias.cwiseAbs();
    y.sd = (x.sd.cwiseAbs2() * decoded.cwiseAbs2().transpose()).cwiseSqrt() + rounding(blocks + 3, magnitudes);
    return y;
  }

  /// y = g ⊙ ĉ + β, ĉ = c / σ: δy_i = g_i / σ (δc_i - ĉ_i (ĉ · δc) / n), δc = δx - mean(δx).
  tracked layer_norm(const tracked& x, const std::string& name) const {
    const Eigen::RowVectorXd g = w(name + ".weight").row(0), beta = w(name + ".bias").row(0);
    const double eps = 1e-12;
    const index_t n = x.v.cols();
    const auto dn = static_cast<double>(n);
    tracked y{dmatrix(x.v.rows(), n), dmatrix(x.v.rows(), n)};
    for (index_t r = 0; r < x.v.rows(); ++r) {
      const Eigen::RowVectorXd c = x.v.row(r).array() - x.v.row(r).mean();
      const double sigma = std::sqrt(c.squaredNorm() / dn + eps);
      const Eigen::RowVectorXd normalized = c / sigma;
      // Centering: the input's error, that of its mean, the FP32 mean and subtraction.
      const Eigen::RowVectorXd dc = (x.sd.row(r).array() + x.sd.row(r).norm() / dn).matrix() +
                                    rounding(static_cast<int>(n), dmatrix::Constant(1, n, x.v.row(r).cwiseAbs().mean())) +
                                    u * c.cwiseAbs();
      // The projection ĉ · δc / n, plus the FP32 variance, sqrt and reciprocal (relative).
      const double projected =
          std::sqrt(normalized.cwiseAbs2().dot(dc.cwiseAbs2())) / dn + u * std::sqrt(dn + 3);
      y.v.row(r) = normalized.cwiseProduct(g) + beta;
      y.sd.row(r) = g.cwiseAbs().cwiseProduct(dc / sigma + normalized.cwiseAbs() * projected) +
                    rounding(5, normalized.cwiseProduct(g).cwiseAbs() + beta.cwiseAbs());
    }
    return y;
  }

  static tracked gelu(const tracked& x) {
    tracked y{x.v, x.sd};
    for (index_t i = 0; i < x.v.size(); ++i) {
      const double v = x.v.data()[i];
      const double cdf = 0.5 * (1 + std::erf(v / std::sqrt(2.0)));
      const double pdf = std::exp(-0.5 * v * v) / std::sqrt(2 * std::numbers::pi);
      y.v.data()[i] = v * cdf;
      // d/dx x Φ(x) = Φ(x) + x φ(x); rounding: 3u |y| + 1.75u |x| (erf within 2u absolute).
      y.sd.data()[i] = std::abs(cdf + v * pdf) * x.sd.data()[i] + 3 * u * std::abs(v * cdf) + 1.75 * u * std::abs(v);
    }
    return y;
  }

  static tracked attention(const tracked& q, const tracked& k, const tracked& v) {
    const index_t n = q.v.rows(), d = hidden / heads;
    const double scale = 1 / std::sqrt(static_cast<double>(d));
    tracked out{dmatrix(n, hidden), dmatrix(n, hidden)};
    for (int h = 0; h < heads; ++h) {
      const index_t c = h * d;
      const dmatrix qv = q.v.middleCols(c, d), qs = q.sd.middleCols(c, d), kv = k.v.middleCols(c, d),
                    ks = k.sd.middleCols(c, d), vv = v.v.middleCols(c, d), vs = v.sd.middleCols(c, d);
      const dmatrix s = scale * qv * kv.transpose();
      const dmatrix ds = scale * (qs.cwiseAbs2() * kv.cwiseAbs2().transpose() + qv.cwiseAbs2() * ks.cwiseAbs2().transpose())
                                     .cwiseSqrt() +
                         rounding(static_cast<int>(d) + 2, scale * qv.cwiseAbs() * kv.cwiseAbs().transpose());
      dmatrix p(n, n), dp(n, n);
      for (index_t i = 0; i < n; ++i) {
        const double m = s.row(i).maxCoeff();
        const Eigen::RowVectorXd e = (s.row(i).array() - m).exp();
        p.row(i) = e / e.sum();
        // δp_i = p_i (δs_i - Σ_j p_j δs_j); rounding of s - max, exp (4u), the sum, the division.
        const double spread = (s.row(i).array() - m).abs().maxCoeff();
        const double mean_shift = std::sqrt(p.row(i).cwiseAbs2().dot(ds.row(i).cwiseAbs2()));
        dp.row(i) = p.row(i).cwiseProduct(
            (ds.row(i).array() + mean_shift + 2 * u * spread + u * std::sqrt(static_cast<double>(n) + 10) + 4 * u).matrix());
      }
      out.v.middleCols(c, d) = p * vv;
      out.sd.middleCols(c, d) = (dp.cwiseAbs2() * vv.cwiseAbs2() + p.cwiseAbs2() * vs.cwiseAbs2()).cwiseSqrt() +
                                rounding(static_cast<int>(n), p * vv.cwiseAbs());
    }
    return out;
  }

  std::map<std::string, dmatrix> w_;
  std::map<std::string, linear_model> linears_;
};

bert::token_sequence sequence(const std::vector<int>& ids) {
  return {ids, std::vector<int>(ids.size(), 0), std::vector<std::uint8_t>(ids.size(), 1)};
}

const std::vector<std::vector<int>> test_sentences = {
    {2, 10, 12, 14, 15, 10, 16, 5, 3}, {2, 28, 6, 29, 7, 3}, {2, 17, 18, 13, 19, 20, 21, 31, 33, 35, 36, 37, 3}, {2, 3}};

}  // namespace

TEST_CASE("the FP32 forward matches an FP64 BERT within the propagated FP32 rounding", "[bert][engine]") {
  test::temp_dir dir("qcodec_test_bert_engine");
  const auto w = tiny_bert_weights(7);
  write_model(w, dir / "tiny.safetensors");
  const auto file = io::safetensors_file::open(dir / "tiny.safetensors");
  auto model = bert::bert_model::load(file, {heads, 1e-12f});
  CHECK(model.layer_count() == layers);
  CHECK(model.linear_bpw() == 32.0);
  const reference_bert reference(w);

  std::vector<bert::token_sequence> batch;
  for (const auto& ids : test_sentences) batch.push_back(sequence(ids));
  // The last sentence again, with two padding tokens (mask 0) that must change nothing.
  bert::token_sequence padded = sequence(test_sentences[2]);
  for (int i = 0; i < 2; ++i) {
    padded.ids.push_back(0);
    padded.type_ids.push_back(0);
    padded.mask.push_back(0);
  }
  batch.push_back(padded);
  const row_matrix embeddings = model.embed(batch);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const tracked expected = reference.embed(i < test_sentences.size() ? test_sentences[i] : test_sentences[2]);
    const Eigen::RowVectorXd error = (embeddings.row(static_cast<index_t>(i)).cast<double>() - expected.v).cwiseAbs();
    CAPTURE(i, error.maxCoeff(), lambda * expected.sd.maxCoeff());
    CHECK((error.array() <= lambda * expected.sd.array()).all());
    // The bound stays below what a modelling mistake moves: a dropped mask or 1/sqrt(d), the
    // unbiased variance in LayerNorm, padding pooled all fail here; tanh GELU fails the INT8 case
    // below, not this one.
    CHECK(lambda * expected.sd.maxCoeff() < 1e-2);
  }
  // One sentence alone gives what it gives in the batch (its attention sees only itself).
  const row_matrix alone = model.embed({batch[1]});
  const tracked expected = reference.embed(test_sentences[1]);
  CHECK(((alone.row(0).cast<double>() - expected.v).cwiseAbs().array() <= lambda * expected.sd.array()).all());
}

TEST_CASE("INT8 linears give the cosine to FP32 that the codec's own error gives, within FP32 rounding", "[bert][engine]") {
  test::temp_dir dir("qcodec_test_bert_engine");
  const auto w = tiny_bert_weights(11);
  write_model(w, dir / "tiny.int8.safetensors", std::optional<linear<8>>(linear<8>{}));
  const auto file = io::safetensors_file::open(dir / "tiny.int8.safetensors");
  auto model = bert::bert_model::load(file, {heads, 1e-12f});
  CHECK(model.linear_bpw() > 8.0);
  CHECK(model.linear_bpw() < 9.5);
  for (const auto* lin : model.linears()) CHECK(lin->codec_name() == "int8");

  std::map<std::string, linear_model> linears;
  for (const auto& [name, m] : w)
    if (is_linear_weight(name)) linears[name] = {linear<8>{}.encode(m, name).decode().cast<double>(), 32};
  const reference_bert fp64(w), int8_model(w, linears);
  std::vector<bert::token_sequence> batch;
  for (const auto& ids : test_sentences) batch.push_back(sequence(ids));
  const row_matrix embeddings = model.embed(batch);
  for (std::size_t i = 0; i < test_sentences.size(); ++i) {
    // The codec's own cosine (the FP64 model of its weights and activation rounding) less what
    // the engine's FP32 rounding may move it: for unit vectors |cos(a, r) - cos(b, r)| <= |a - b|.
    const Eigen::RowVectorXd reference = fp64.embed(test_sentences[i]).v;
    const tracked modelled = int8_model.embed(test_sentences[i]);
    const Eigen::RowVectorXd e = embeddings.row(static_cast<index_t>(i)).cast<double>();
    const double cosine = e.dot(reference) / (e.norm() * reference.norm());
    const double codec_cosine = modelled.v.row(0).dot(reference);
    const double cosine_bound = codec_cosine - lambda * modelled.sd.norm();
    CAPTURE(i, cosine, codec_cosine, cosine_bound);
    CHECK(((e - modelled.v.row(0)).cwiseAbs().array() <= lambda * modelled.sd.array()).all());
    CHECK(cosine >= cosine_bound);
    CHECK(cosine < 1.0);  // the INT8 path did run: it moves the embedding
  }
}

TEST_CASE("the engine refuses malformed sequences by name", "[bert][engine]") {
  test::temp_dir dir("qcodec_test_bert_engine");
  write_model(tiny_bert_weights(3), dir / "tiny.safetensors");
  const auto file = io::safetensors_file::open(dir / "tiny.safetensors");
  auto model = bert::bert_model::load(file, {heads, 1e-12f});
  CHECK_THROWS_WITH(model.embed({sequence({2, 99, 3})}), Catch::Contains("out of the vocabulary"));
  CHECK_THROWS_WITH(model.embed({sequence(std::vector<int>(positions + 1, 10))}), Catch::Contains("positions"));
  bert::token_sequence all_padding = sequence({2, 3});
  all_padding.mask = {0, 0};
  CHECK_THROWS_WITH(model.embed({all_padding}), Catch::Contains("mask 1"));
  CHECK_THROWS_WITH(bert::bert_model::load(file, {5, 1e-12f}), Catch::Contains("not a multiple of 5 heads"));
}
