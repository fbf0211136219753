#pragma once
// A codec of the base concept alone (FP32 values kept as they are): no reference decode, no
// decode-dot, no integer view, not row-wise. The capability tests check that every layer of
// codecs/capabilities.hpp refuses it.
#include <cstring>
#include <string_view>
#include <vector>

#include <qcodec/codecs/codec.hpp>

namespace qcodec::test {

struct plain_codec {
  struct storage {
    index_t rows = 0, cols = 0;
    std::vector<float> values;
  };
  encoded_matrix<plain_codec> encode(matrix_view w, std::string_view = "weight") const {
    storage s{w.rows(), w.cols(), std::vector<float>(static_cast<std::size_t>(w.size()))};
    for (index_t r = 0; r < w.rows(); ++r)
      for (index_t c = 0; c < w.cols(); ++c) s.values[static_cast<std::size_t>(r * w.cols() + c)] = w(r, c);
    return encoded_matrix<plain_codec>(std::move(s));
  }
  static void decode_rows(const storage& s, index_t first, index_t last, float* out) {
    std::memcpy(out, s.values.data() + first * s.cols, static_cast<std::size_t>((last - first) * s.cols) * sizeof(float));
  }
  static std::size_t byte_size(const storage& s) { return s.values.size() * sizeof(float); }
  static void validate(const storage& s, std::string_view name) {
    if (s.values.size() != static_cast<std::size_t>(s.rows * s.cols)) detail::fail("tensor '", name, "': wrong size");
  }
};

}  // namespace qcodec::test

template <>
struct qcodec::codec_traits<qcodec::test::plain_codec> {
  static constexpr std::string_view name = "plain";
  static constexpr int bits = 32;
  static constexpr bool is_linear = false;
  static constexpr index_t block_size = 0;
  static constexpr index_t bytes_per_block = 0;
};
static_assert(qcodec::codec<qcodec::test::plain_codec>);
