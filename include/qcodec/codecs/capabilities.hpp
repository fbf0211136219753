#pragma once
/// What each part of qcodec needs of a codec, in layers over `codec` (codec.hpp: encode,
/// decode_rows, validate, byte_size, the traits table). Each codec static_asserts the layers
/// it provides beside its definition; a part instantiated with a codec that lacks one stops at
/// a static_assert that names it.
///  - reference_codec: decode_rows_ref, the plain-loop specification every SIMD, NEON and CUDA
///    decode is tested bit-exactly against;
///  - fused_dot_codec: dot_row<NB>(target, storage, row, x, out, cached), the decode-dot of
///    dual_stream_linear's fused path (NB activation rows, 1..4, on every target's tag);
///    reorders_activations adds order_activations(target, cols, in, out), the order its
///    dot_row reads activations in;
///  - integer_codec: a linear codec of 4- or 8-bit codes whose storage is an
///    integer_block_view, what the integer kernels read (ops/integer_panels.hpp);
///  - wrapping_codec: a codec over a base codec (`base_codec`, its storage's `base`): the op
///    runs the base stream and adds what the wrapper adds (outlier_split's ortho stream,
///    rotated's activation transform);
///  - row_codec: rows encoded independently, so value_cache (kv/kv_cache.hpp) appends a token
///    by appending its arrays: codec_traits<C>::row_wise, with the arrays every row shares
///    (kept once, e.g. QINS's LUT) named in codec_traits<C>::shared_arrays.

#include <concepts>
#include <string_view>

#include "qcodec/codecs/codec.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/index.hpp"
#include "qcodec/core/simd/target.hpp"

namespace qcodec::inline QCODEC_ABI {

template <class C>
concept reference_codec = codec<C> && requires(const typename C::storage& s, index_t i, float* out) {
  { C::decode_rows_ref(s, i, i, out) } -> std::same_as<void>;
};

template <class C>
concept fused_dot_codec = codec<C> && requires(const typename C::storage& s, index_t r, const float* const* x,
                                               float* out, const float* cached) {
  { C::template dot_row<1>(targets::scalar::tag{}, s, r, x, out, cached) } -> std::same_as<void>;
  { C::template dot_row<4>(targets::scalar::tag{}, s, r, x, out, cached) } -> std::same_as<void>;
};

template <class C>
concept reorders_activations = fused_dot_codec<C> && requires(index_t cols, const float* in, float* out) {
  C::order_activations(targets::scalar::tag{}, cols, in, out);
};

/// Column c of row r decodes to block_scale(r, g) * (code(r, c) - block_offset(r, g)) with
/// g = c / group_size(); group_size() is cols for one scale per row or tensor.
template <class S>
concept integer_block_view = requires(const S& s, index_t i) {
  { s.rows } -> std::convertible_to<index_t>;
  { s.cols } -> std::convertible_to<index_t>;
  { s.group_size() } -> std::convertible_to<index_t>;
  { s.code(i, i) } -> std::convertible_to<unsigned>;
  { s.block_scale(i, i) } -> std::convertible_to<float>;
  { s.block_offset(i, i) } -> std::convertible_to<int>;
};

template <class C>
concept integer_codec = codec<C> && codec_traits<C>::is_linear &&
                        (codec_traits<C>::bits == 4 || codec_traits<C>::bits == 8) &&
                        integer_block_view<typename C::storage>;

template <class C>
concept wrapping_codec = codec<C> && requires(const typename C::storage& s) {
  requires codec<typename C::base_codec>;
  { s.base } -> std::convertible_to<const typename C::base_codec::storage&>;
};

template <class C>
concept row_codec = codec<C> && requires {
  requires codec_traits<C>::row_wise;
  { codec_traits<C>::shared_arrays[0] } -> std::convertible_to<std::string_view>;
};

namespace detail {

template <class Codec>
struct base_stream {
  using type = Codec;
};
template <wrapping_codec Codec>
struct base_stream<Codec> {
  using type = typename Codec::base_codec;
};

}  // namespace detail

/// The codec of a codec's dense stream: its base codec, or the codec itself.
template <class Codec>
using base_stream_t = typename detail::base_stream<Codec>::type;

}  // namespace qcodec::inline QCODEC_ABI
