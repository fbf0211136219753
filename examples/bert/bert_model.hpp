#pragma once
/// A BERT encoder with sentence-transformers' mean pooling (all-MiniLM-L6-v2 and its kin):
/// word + position + token-type embeddings, LayerNorm, N post-LayerNorm layers of multi-head
/// self-attention and an erf-GELU feed-forward, mean over the attention mask, L2 normalised.
/// Every linear layer is a model_linear (qcodec layer or FP32); attention, LayerNorm and the
/// activations run in FP32 with Eigen.
///
/// A forward packs the tokens of all its sentences into one matrix (tokens x hidden), so each
/// linear runs once per forward on every token; attention runs per (sentence, head) on that
/// sentence's rows only, its keys restricted to the sentence's mask. No padding is computed
/// unless a sentence carries some (mask 0).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include <qcodec/codecs/codec_list.hpp>
#include <qcodec/io/safetensors.hpp>

#include "model_linear.hpp"
#include "wordpiece_tokenizer.hpp"

namespace qcodec::examples::bert {

/// The codecs this engine compiles a layer for (a model file's encoded tensors must use one):
/// the ladder the demo runs. An engine serving other codecs passes its own list to load().
using served_codecs =
    std::tuple<linear<8>, linear<8, per_group<32>, half>, two_level<8, 32, symmetry::asymmetric>,
               outlier_split<linear<8>>, linear<4, per_group<128>>, linear<4, per_group<32>, half>,
               grid<4, 16, grid_levels::fixed, 6, 256, 2>, rotated<grid<4, 16, grid_levels::fixed, 6>>,
               grid<4, 32, grid_levels::fixed, 5, 256, 2>, outlier_split<grid<4, 32, grid_levels::fixed, 5, 256, 2>>,
               grid<3, 16, grid_levels::fixed, 6>, rotated<grid<3, 16, grid_levels::fixed, 6>>>;

/// What the weights do not say: the head count and LayerNorm's epsilon (config.json).
struct bert_options {
  int heads = 12;
  float layer_norm_eps = 1e-12f;
};

class bert_model {
 public:
  template <class List = served_codecs>
  static bert_model load(const io::safetensors_file& file, bert_options options = {}) {
    bert_model m;
    m.options_ = options;
    m.word_ = file.read_matrix("embeddings.word_embeddings.weight");
    m.position_ = file.read_matrix("embeddings.position_embeddings.weight");
    m.token_type_ = file.read_matrix("embeddings.token_type_embeddings.weight");
    m.embedding_norm_ = read_norm(file, "embeddings.LayerNorm");
    const index_t hidden = m.word_.cols();
    if (hidden % options.heads != 0)
      qcodec::detail::fail(file.label(), ": hidden size ", hidden, " is not a multiple of ", options.heads, " heads");
    for (int i = 0;; ++i) {
      const std::string p = "encoder.layer." + std::to_string(i) + ".";
      if (!has_weight(file, p + "attention.self.query.weight")) break;
      m.layers_.push_back(layer{model_linear::load<List>(file, p + "attention.self.query"),
                                model_linear::load<List>(file, p + "attention.self.key"),
                                model_linear::load<List>(file, p + "attention.self.value"),
                                model_linear::load<List>(file, p + "attention.output.dense"),
                                read_norm(file, p + "attention.output.LayerNorm"),
                                model_linear::load<List>(file, p + "intermediate.dense"),
                                model_linear::load<List>(file, p + "output.dense"),
                                read_norm(file, p + "output.LayerNorm")});
    }
    if (m.layers_.empty()) qcodec::detail::fail(file.label(), ": no encoder.layer.0");
    for (layer& l : m.layers_)
      for (const model_linear* lin : {&l.query, &l.key, &l.value, &l.attention_out})
        if (lin->in_features() != hidden || lin->out_features() != hidden)
          qcodec::detail::fail(file.label(), ": an attention projection is not ", hidden, " x ", hidden);
    return m;
  }

  index_t hidden_size() const { return word_.cols(); }
  int layer_count() const { return static_cast<int>(layers_.size()); }
  index_t max_positions() const { return position_.rows(); }

  /// The linear layers, in file order per layer (query, key, value, attention output, FFN in, out).
  std::vector<const model_linear*> linears() const {
    std::vector<const model_linear*> out;
    for (const layer& l : layers_)
      for (const model_linear* lin : {&l.query, &l.key, &l.value, &l.attention_out, &l.ffn_in, &l.ffn_out})
        out.push_back(lin);
    return out;
  }

  /// Bits per weight over every linear weight (each layer's bpw weighted by its weights).
  double linear_bpw() const {
    double bits = 0, weights = 0;
    for (const model_linear* lin : linears()) {
      const double n = static_cast<double>(lin->in_features()) * static_cast<double>(lin->out_features());
      bits += lin->bpw() * n;
      weights += n;
    }
    return bits / weights;
  }

  void set_integer_domain(bool enabled) {
    for (layer& l : layers_)
      for (model_linear* lin : {&l.query, &l.key, &l.value, &l.attention_out, &l.ffn_in, &l.ffn_out})
        lin->set_integer_domain(enabled);
  }

  /// The last hidden state of every token of every sentence, packed (sentence after sentence).
  row_matrix hidden_states(const std::vector<token_sequence>& batch) {
    std::vector<index_t> offsets{0};
    for (const token_sequence& s : batch) {
      check_sequence(s);
      offsets.push_back(offsets.back() + static_cast<index_t>(s.size()));
    }
    const index_t tokens = offsets.back(), hidden = hidden_size();
    row_matrix h(tokens, hidden);
    for (std::size_t b = 0; b < batch.size(); ++b)
      for (std::size_t t = 0; t < batch[b].size(); ++t)
        h.row(offsets[b] + static_cast<index_t>(t)) = word_.row(batch[b].ids[t]) + position_.row(static_cast<index_t>(t)) +
                                                      token_type_.row(batch[b].type_ids[t]);
    layer_norm(h, embedding_norm_);

    row_matrix q(tokens, hidden), k(tokens, hidden), v(tokens, hidden), context(tokens, hidden), projected(tokens, hidden);
    row_matrix intermediate(tokens, layers_.front().ffn_in.out_features());
    for (layer& l : layers_) {
      l.query.forward(h, q);
      l.key.forward(h, k);
      l.value.forward(h, v);
      attention(batch, offsets, q, k, v, context);
      l.attention_out.forward(context, projected);
      h += projected;
      layer_norm(h, l.attention_norm);
      l.ffn_in.forward(h, intermediate);
      gelu(intermediate);
      l.ffn_out.forward(intermediate, projected);
      h += projected;
      layer_norm(h, l.output_norm);
    }
    return h;
  }

  /// Sentence embeddings (one row each): the mean of the hidden states over the attention
  /// mask, divided by its L2 norm (sentence-transformers' Pooling + Normalize).
  row_matrix embed(const std::vector<token_sequence>& batch) {
    const row_matrix h = hidden_states(batch);
    row_matrix out = row_matrix::Zero(static_cast<index_t>(batch.size()), hidden_size());
    index_t offset = 0;
    for (std::size_t b = 0; b < batch.size(); ++b) {
      float count = 0;
      for (std::size_t t = 0; t < batch[b].size(); ++t)
        if (batch[b].mask[t]) {
          out.row(static_cast<index_t>(b)) += h.row(offset + static_cast<index_t>(t));
          count += 1;
        }
      out.row(static_cast<index_t>(b)) /= std::max(count, 1e-9f);  // torch.clamp(min=1e-9)
      out.row(static_cast<index_t>(b)) /= std::max(out.row(static_cast<index_t>(b)).norm(), 1e-12f);  // F.normalize
      offset += static_cast<index_t>(batch[b].size());
    }
    return out;
  }

 private:
  struct norm {
    Eigen::RowVectorXf gamma, beta;
  };
  struct layer {
    model_linear query, key, value, attention_out;
    norm attention_norm;
    model_linear ffn_in, ffn_out;
    norm output_norm;
  };

  static bool has_weight(const io::safetensors_file& file, const std::string& name) {
    return file.find(name) != nullptr || file.metadata().contains(std::string(io::encoded_metadata_prefix) + name);
  }

  static norm read_norm(const io::safetensors_file& file, const std::string& prefix) {
    return norm{file.read_matrix(prefix + ".weight").row(0), file.read_matrix(prefix + ".bias").row(0)};
  }

  void check_sequence(const token_sequence& s) const {
    if (s.ids.empty() || s.type_ids.size() != s.size() || s.mask.size() != s.size())
      qcodec::detail::fail("bert_model: a sequence needs as many type ids and mask values as ids, at least one");
    if (std::find(s.mask.begin(), s.mask.end(), 1) == s.mask.end())
      qcodec::detail::fail("bert_model: a sequence needs at least one token of mask 1");
    if (static_cast<index_t>(s.size()) > position_.rows())
      qcodec::detail::fail("bert_model: ", s.size(), " tokens, the model has ", position_.rows(), " positions");
    for (std::size_t t = 0; t < s.size(); ++t)
      if (s.ids[t] < 0 || s.ids[t] >= word_.rows() || s.type_ids[t] < 0 || s.type_ids[t] >= token_type_.rows())
        qcodec::detail::fail("bert_model: token ", t, " has id ", s.ids[t], " / type ", s.type_ids[t],
                             ", out of the vocabulary");
  }

  /// x <- gamma ⊙ (x - mean) / sqrt(var + eps) + beta per row, var the biased variance.
  void layer_norm(row_matrix& x, const norm& n) const {
    const float eps = options_.layer_norm_eps;
    const auto rows = static_cast<long>(x.rows());
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; ++r) {
      auto row = x.row(r);
      const float mean = row.mean();
      row.array() -= mean;
      const float variance = row.squaredNorm() / static_cast<float>(row.size());
      row = (row.array() * (1.0f / std::sqrt(variance + eps)) * n.gamma.array() + n.beta.array()).matrix();
    }
  }

  /// The exact GELU: x · Φ(x) = x/2 · (1 + erf(x / √2)).
  static void gelu(row_matrix& x) {
    const auto rows = static_cast<long>(x.rows());
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; ++r)
      for (index_t c = 0; c < x.cols(); ++c) {
        const float v = x(r, c);
        x(r, c) = 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
      }
  }

  /// context = softmax(Q Kᵀ / √d + mask) V per sentence and head; a masked key (mask 0)
  /// gets weight 0.
  void attention(const std::vector<token_sequence>& batch, const std::vector<index_t>& offsets, const row_matrix& q,
                 const row_matrix& k, const row_matrix& v, row_matrix& context) const {
    const index_t head_dim = hidden_size() / options_.heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    const long tasks = static_cast<long>(batch.size()) * options_.heads;
#pragma omp parallel
    {
      row_matrix scores;
#pragma omp for schedule(dynamic)
      for (long task = 0; task < tasks; ++task) {
        const auto b = static_cast<std::size_t>(task / options_.heads);
        const index_t col = (task % options_.heads) * head_dim, first = offsets[b];
        const auto n = static_cast<index_t>(batch[b].size());
        scores.noalias() = q.block(first, col, n, head_dim) * k.block(first, col, n, head_dim).transpose();
        scores *= scale;
        for (index_t j = 0; j < n; ++j)
          if (!batch[b].mask[static_cast<std::size_t>(j)]) scores.col(j).setConstant(-std::numeric_limits<float>::infinity());
        for (index_t i = 0; i < n; ++i) {
          auto row = scores.row(i);
          row = (row.array() - row.maxCoeff()).exp().matrix();
          row /= row.sum();
        }
        context.block(first, col, n, head_dim).noalias() = scores * v.block(first, col, n, head_dim);
      }
    }
  }

  bert_options options_;
  row_matrix word_, position_, token_type_;
  norm embedding_norm_;
  std::vector<layer> layers_;
};

}  // namespace qcodec::examples::bert
