#pragma once
/// One linear layer of a model file, y = x·Wᵀ + b: a qcodec layer (io::load_linear, the codec
/// the file records) when W is an encoded tensor, an FP32 Eigen product when W is a plain one.

#include <optional>
#include <span>
#include <string>
#include <utility>

#include <qcodec/io/load_linear.hpp>
#include <qcodec/io/safetensors.hpp>

namespace qcodec::examples::bert {

class model_linear {
 public:
  /// The layer `prefix`.weight / `prefix`.bias of `file`; an encoded weight's codec must be
  /// one of `List`.
  template <class List>
  static model_linear load(const io::safetensors_file& file, const std::string& prefix) {
    const std::string weight = prefix + ".weight", bias = prefix + ".bias";
    model_linear layer;
    if (file.metadata().contains(std::string(io::encoded_metadata_prefix) + weight)) {
      layer.encoded_.emplace(io::load_linear<List>(file, weight, std::string_view(bias)));
      layer.in_ = layer.encoded_->in_features();
      layer.out_ = layer.encoded_->out_features();
      return layer;
    }
    layer.weight_ = file.read_matrix(weight);
    layer.bias_ = file.read_matrix(bias);
    layer.in_ = layer.weight_.cols();
    layer.out_ = layer.weight_.rows();
    if (layer.bias_.size() != layer.out_)
      qcodec::detail::fail(file.label(), ": bias '", bias, "' holds ", layer.bias_.size(), " values, expected ",
                           layer.out_);
    return layer;
  }

  index_t in_features() const { return in_; }
  index_t out_features() const { return out_; }
  /// Bits per weight: the codec's (every stream counted) or 32 for a plain FP32 weight.
  double bpw() const { return encoded_ ? encoded_->bpw() : 32.0; }
  std::string codec_name() const { return encoded_ ? std::string(encoded_->codec_name()) : std::string("fp32"); }

  bool integer_domain() const { return encoded_ && encoded_->integer_domain(); }
  /// The integer domain of integer codecs (the op's default); false runs their FP32 paths.
  /// A no-op for plain weights and codecs without one.
  void set_integer_domain(bool enabled) {
    if (encoded_ && encoded_->has_integer_domain()) encoded_->set_integer_domain(enabled);
  }

  /// y (tokens x out_features) = x (tokens x in_features) · Wᵀ + b.
  void forward(matrix_view x, matrix_ref y) {
    if (encoded_) {
      encoded_->forward(x, y);
      return;
    }
    y.noalias() = x * weight_.transpose();
    y.rowwise() += bias_.row(0);
  }

 private:
  model_linear() = default;
  std::optional<any_linear> encoded_;
  row_matrix weight_, bias_;  // plain path: out x in, 1 x out
  index_t in_ = 0, out_ = 0;
};

}  // namespace qcodec::examples::bert
