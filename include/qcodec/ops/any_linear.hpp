#pragma once
/// A dual-stream linear layer whose codec is a run-time value: what an engine holds when the
/// codec of each tensor comes from a file (io/load_linear.hpp builds one by the codec name a
/// file records). It owns a dual_stream_linear<C> behind one virtual call per forward, with
/// the same forward, alpha and integer-domain API; results are the same bits as the typed op.

#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "qcodec/codecs/capabilities.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/matrix.hpp"
#include "qcodec/ops/dual_stream_linear.hpp"

namespace qcodec::inline QCODEC_ABI {

class any_linear {
 public:
  /// The layer of `weight` (out_features x in_features) and an optional bias, as
  /// dual_stream_linear<C> builds it (integer domain by default for integer codecs).
  template <codec C>
  explicit any_linear(encoded_matrix<C> weight, std::span<const float> bias = {})
      : layer_(std::make_unique<layer_of<C>>(std::move(weight), bias)) {}

  /// The codec's name (codec_traits<C>::name), as files and the CLI spell it.
  std::string_view codec_name() const { return layer_->codec_name(); }
  index_t in_features() const { return layer_->in_features(); }
  index_t out_features() const { return layer_->out_features(); }
  /// Bits per weight of the encoded weight (encoded_matrix<C>::bpw(): every stream).
  double bpw() const { return layer_->bpw(); }

  float alpha() const { return layer_->alpha(); }
  void set_alpha(float alpha) { layer_->set_alpha(alpha); }

  /// Whether the codec has an integer domain (an integer_codec base).
  bool has_integer_domain() const { return layer_->has_integer_domain(); }
  bool integer_domain() const { return layer_->integer_domain(); }
  /// dual_stream_linear::set_integer_domain; enabling it for a codec without one is a
  /// qcodec::error (the typed op refuses it at compile time).
  void set_integer_domain(bool enabled) { layer_->set_integer_domain(enabled); }

  /// dual_stream_linear::forward: y = x · (B + alpha·O)ᵀ + bias.
  void forward(matrix_view x, matrix_ref y) { layer_->forward(x, y); }

 private:
  struct layer {
    virtual ~layer() = default;
    virtual std::string_view codec_name() const = 0;
    virtual index_t in_features() const = 0;
    virtual index_t out_features() const = 0;
    virtual double bpw() const = 0;
    virtual float alpha() const = 0;
    virtual void set_alpha(float alpha) = 0;
    virtual bool has_integer_domain() const = 0;
    virtual bool integer_domain() const = 0;
    virtual void set_integer_domain(bool enabled) = 0;
    virtual void forward(const matrix_view& x, matrix_ref& y) = 0;
  };

  template <codec C>
  struct layer_of final : layer {
    using base_codec = typename dual_stream_linear<C>::base_codec;
    layer_of(encoded_matrix<C> weight, std::span<const float> bias) : bits(weight.bpw()), op(std::move(weight), bias) {}
    std::string_view codec_name() const override { return codec_traits<C>::name; }
    index_t in_features() const override { return op.in_features(); }
    index_t out_features() const override { return op.out_features(); }
    double bpw() const override { return bits; }
    float alpha() const override { return op.alpha(); }
    void set_alpha(float alpha) override { op.set_alpha(alpha); }
    bool has_integer_domain() const override { return integer_codec<base_codec>; }
    bool integer_domain() const override { return op.integer_domain(); }
    void set_integer_domain(bool enabled) override {
      if constexpr (integer_codec<base_codec>) op.set_integer_domain(enabled);
      else if (enabled)
        detail::fail("any_linear: codec '", codec_traits<C>::name,
                     "' has no integer domain (it is decoded to FP32: codecs/capabilities.hpp, integer_codec)");
    }
    void forward(const matrix_view& x, matrix_ref& y) override { op.forward(x, y); }
    double bits;  // encoded_matrix<C>::bpw()
    dual_stream_linear<C> op;
  };

  std::unique_ptr<layer> layer_;
};

}  // namespace qcodec::inline QCODEC_ABI
