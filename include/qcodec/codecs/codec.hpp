#pragma once
/// The codec concept, its traits table and the owning encoded matrix.
///
/// A codec `C` is a small value type holding encode options (e.g. a clip rule). It provides
///  - `C::storage`: the codes and parameters of one matrix, with public `rows` and `cols`;
///  - `c.encode(w, name)`: encodes a finite, non-empty FP32 matrix into `encoded_matrix<C>`,
///    or throws qcodec::error naming `name`, the row and the column at fault;
///  - `C::decode_rows(storage, first, last, out)`: writes rows [first, last) as FP32,
///    row-major, (last - first) x cols, to `out` (the fast path; the specification, where a
///    codec has one of its own, is decode_rows_ref: capabilities.hpp);
///  - `C::byte_size(storage)`: every stored byte (codes, scales, LUTs, outliers, indices);
///  - `C::validate(storage, name)`: throws qcodec::error naming `name` unless the storage is
///    consistent (array sizes match the shape, codes and parameters in range, finite scales),
///    so a storage read from a file can be trusted by decode;
///  - `storage.visit_arrays(visitor)` (const and non-const): calls `visitor(array_name, vec)`
///    for each stored array, a std::vector of a trivially copyable element type, in a fixed
///    order; serialization is written once against it. A nested storage prefixes its arrays'
///    names (e.g. "base.codes").
///  - a `codec_traits<C>` specialisation, declared right after the codec, with static
///    constexpr `name`, `bits` (bits per code), `is_linear` (Q(ax + by) = aQ(x) + bQ(y) up to
///    rounding, so integer-domain compute is allowed), `block_size` (elements sharing one
///    scale along a row; 0 = the whole row or tensor) and `bytes_per_block` (0 when
///    block_size is 0).
/// What the op, the integer kernels and the KV cache need beyond this: codecs/capabilities.hpp.

#include <concepts>
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/matrix.hpp"

namespace qcodec::inline QCODEC_ABI {

/// Static facts about a codec; every codec specialises it next to its definition.
template <class Codec>
struct codec_traits {
  static_assert(sizeof(Codec) == 0,
                "qcodec: codec_traits<Codec> is not specialised; declare it next to the codec");
};

template <class Codec>
class encoded_matrix;

template <class C>
concept codec = std::copyable<C> && requires(const C& c, matrix_view w,
                                            const typename C::storage& s, index_t i, float* out) {
  { c.encode(w, std::string_view{}) } -> std::same_as<encoded_matrix<C>>;
  { C::decode_rows(s, i, i, out) } -> std::same_as<void>;
  { C::byte_size(s) } -> std::convertible_to<std::size_t>;
  C::validate(s, std::string_view{});
  { s.rows } -> std::convertible_to<index_t>;
  { s.cols } -> std::convertible_to<index_t>;
  { codec_traits<C>::name } -> std::convertible_to<std::string_view>;
  { codec_traits<C>::bits } -> std::convertible_to<int>;
  { codec_traits<C>::is_linear } -> std::convertible_to<bool>;
  { codec_traits<C>::block_size } -> std::convertible_to<index_t>;
  { codec_traits<C>::bytes_per_block } -> std::convertible_to<index_t>;
};

/// True for codecs whose codes may feed integer-domain arithmetic.
template <class C>
inline constexpr bool is_linear_codec = codec_traits<C>::is_linear;

/// An encoded matrix: owns its codes and parameters, knows its shape and exact byte size.
template <class Codec>
class encoded_matrix {
 public:
  using codec_type = Codec;
  using storage_type = typename Codec::storage;

  /// Takes `storage` after Codec::validate accepts it (throws qcodec::error otherwise), so
  /// decode never reads past an inconsistent storage.
  explicit encoded_matrix(storage_type storage) : storage_(std::move(storage)) {
    Codec::validate(storage_, "encoded_matrix");
  }

  index_t rows() const { return storage_.rows; }
  index_t cols() const { return storage_.cols; }

  /// Every stored byte: codes, scales, zero points, LUTs, outliers and their indices.
  std::size_t byte_size() const { return Codec::byte_size(storage_); }

  /// Bits per weight: 8 * byte_size() / (rows * cols).
  double bpw() const {
    return 8.0 * static_cast<double>(byte_size()) / static_cast<double>(rows() * cols());
  }

  /// Decodes rows [first, last) into `out`, row-major with cols() floats per row.
  void decode_rows(index_t first, index_t last, float* out) const {
    if (first < 0 || first > last || last > rows())
      detail::fail("decode_rows: row range [", first, ", ", last, ") outside 0..", rows());
    Codec::decode_rows(storage_, first, last, out);
  }

  /// Decodes the whole matrix.
  row_matrix decode() const {
    row_matrix out(rows(), cols());
    Codec::decode_rows(storage_, 0, rows(), out.data());
    return out;
  }

  const storage_type& storage() const { return storage_; }

 private:
  storage_type storage_;
};

namespace detail {

/// A compile-time string: lets codec_traits build names such as "int4-g128" as constexpr.
template <std::size_t N>
struct fixed_name {
  char text[N + 1]{};
  std::size_t length = 0;
  constexpr void append(std::string_view part) {
    for (char ch : part) text[length++] = ch;
  }
  constexpr void append_number(long value) {
    char digits[20]{};
    int count = 0;
    do digits[count++] = static_cast<char>('0' + value % 10);
    while ((value /= 10) > 0);
    while (count > 0) text[length++] = digits[--count];
  }
  constexpr operator std::string_view() const { return {text, length}; }
};

}  // namespace detail
}  // namespace qcodec::inline QCODEC_ABI
