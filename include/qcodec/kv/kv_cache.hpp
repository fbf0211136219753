#pragma once
/// A quantized cache of attention values that grows one token at a time.
///
/// Each appended token (head_dim values) is encoded as one row with its own parameters: its
/// own scales (and zero points) for INT8/INT4 per-row or per-group codecs; its own scale for
/// QINS, whose LUT is shared by the cache: the LUT of the first token with a non-zero value
/// (the MSE-minimising span of qins::encode) is kept, and every later token is coded against its
/// very levels (qins::encode_with_lut_of), so one LUT decodes every row. Tokens before it are
/// all zero, stored as code 0, exact under any LUT. Values are decoded to FP32 before any
/// arithmetic (QINS is a codec at rest). Keys are not encoded here: they may stay FP16 (`half`).

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "qcodec/codecs/capabilities.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/codecs/linear.hpp"
#include "qcodec/codecs/qins.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/matrix.hpp"

namespace qcodec::inline QCODEC_ABI {

/// A cache of up to `capacity` tokens of `head_dim` values, each encoded with `Codec`
/// (a row_codec: linear<8> = INT8 per-row, qins<8> = QINS per-row, their 4-bit, asymmetric or
/// per-group variants).
template <class Codec = linear<8>>
class value_cache {
  static_assert(row_codec<Codec>,
                "qcodec: value_cache needs a row_codec (codecs/capabilities.hpp), whose rows encode "
                "independently: linear<B> per row or per group, or qins<B>");

 public:
  /// An empty cache; throws qcodec::error unless head_dim > 0 and capacity > 0.
  value_cache(index_t head_dim, index_t capacity, Codec codec = {})
      : codec_(std::move(codec)), head_dim_(head_dim), capacity_(capacity) {
    if (head_dim <= 0 || capacity <= 0)
      detail::fail("value_cache: head_dim ", head_dim, " and capacity ", capacity, " must be > 0");
    storage_.cols = head_dim;
  }

  index_t head_dim() const { return head_dim_; }
  /// Tokens held.
  index_t size() const { return storage_.rows; }
  /// Tokens the cache can hold.
  index_t capacity() const { return capacity_; }

  /// Encodes one token's values and appends it; throws qcodec::error (cache unchanged) when
  /// the cache is full, the row has the wrong length or holds NaN/Inf.
  void append(std::span<const float> values) {
    if (size() >= capacity_)
      detail::fail("value_cache: full (capacity ", capacity_, " tokens), cannot append token ", size());
    if (static_cast<index_t>(values.size()) != head_dim_)
      detail::fail("value_cache: token has ", values.size(), " values, head_dim is ", head_dim_);
    const Eigen::Map<const row_matrix> row(values.data(), 1, head_dim_);
    const std::string name = "value cache token " + std::to_string(size());
    const auto encoded = encode_row(row, name);
    if (size() == 0) reserve(encoded.storage());
    // Per-token arrays grow by one row; the shared LUT is stored once.
    storage_.visit_arrays([&](std::string_view array, auto& cached) {
      encoded.storage().visit_arrays([&](std::string_view row_array, const auto& row_values) {
        if constexpr (std::is_same_v<std::remove_cvref_t<decltype(cached)>,
                                     std::remove_cvref_t<decltype(row_values)>>) {
          if (array != row_array) return;
          if (shared(array)) {
            if (!lut_fixed_) cached = row_values;
          } else {
            cached.insert(cached.end(), row_values.begin(), row_values.end());
          }
        }
      });
    });
    ++storage_.rows;
    lut_fixed_ = lut_fixed_ || std::any_of(values.begin(), values.end(), [](float v) { return v != 0; });
  }

  /// Decodes tokens [first, last) into `out`, (last - first) x head_dim floats, row-major.
  void read(index_t first, index_t last, float* out) const {
    if (first < 0 || first > last || last > size())
      detail::fail("value_cache: token range [", first, ", ", last, ") outside 0..", size());
    Codec::decode_rows(storage_, first, last, out);
  }

  /// Decodes tokens [first, last) as a (last - first) x head_dim matrix.
  row_matrix read(index_t first, index_t last) const {
    row_matrix out(last > first ? last - first : 0, head_dim_);
    read(first, last, out.data());
    return out;
  }

  /// Bytes stored for the tokens held (codes, per-token parameters, shared LUT).
  std::size_t byte_size() const { return Codec::byte_size(storage_); }

  /// Drops every token (the shared LUT too); capacity is kept.
  void clear() {
    storage_.visit_arrays([](std::string_view, auto& values) { values.clear(); });
    storage_.rows = 0;
    lut_fixed_ = false;
  }

 private:
  encoded_matrix<Codec> encode_row(const Eigen::Map<const row_matrix>& row, std::string_view name) const {
    if constexpr (requires { codec_.encode_with_lut_of(row, storage_, name); }) {
      if (lut_fixed_) return codec_.encode_with_lut_of(row, storage_, name);
    }
    return codec_.encode(row, name);
  }

  void reserve(const typename Codec::storage& first) {
    storage_.visit_arrays([&](std::string_view array, auto& cached) {
      first.visit_arrays([&](std::string_view row_array, const auto& row_values) {
        if (array == row_array && !shared(array))
          cached.reserve(row_values.size() * static_cast<std::size_t>(capacity_));
      });
    });
  }

  /// An array stored once for every token (codec_traits<Codec>::shared_arrays).
  static bool shared(std::string_view array) {
    return std::ranges::find(codec_traits<Codec>::shared_arrays, array) != codec_traits<Codec>::shared_arrays.end();
  }

  Codec codec_;
  index_t head_dim_, capacity_;
  typename Codec::storage storage_;
  /// True once a token with a non-zero value set the shared LUT (QINS); until then each
  /// all-zero token's LUT is replaced by the next token's.
  bool lut_fixed_ = false;
};

}  // namespace qcodec::inline QCODEC_ABI
