#pragma once
/// Device layouts of the codecs and of the sparse ortho stream.
///
/// `device_codec<Codec>` provides, for every codec of the library:
///  - `arrays<Array>`: its arrays in upload layout held by `Array` (host_array, device_buffer)
///    and its shape, every member listed once in `members`, with `base_view()` and
///    `ortho_view()`; `host_arrays` and `device_arrays` are its two instances, the device one
///    made from the host one member by member (device_copy);
///  - `host_arrays prepare(storage, name)`: validates the storage (qcodec::error naming
///    `name`) and lays it out for upload, on the host (tested there);
///  - `view`: passed to kernels by value; `load(row, chunk)` makes one 16-byte load of codes
///    and returns them with the parameters they share, whose `[j]` decodes column j of the
///    chunk's `chunk_cols` with the codec's own QCODEC_HD math (linear_math, qins_math);
///    `decode_chunk(view, row, chunk, out)` decodes all of them; `gemv_decodes_in_pieces`
///    tells the batch-1 GEMV to decode a few columns at a time instead. The same view reads
///    host memory, so the host tests run the device decode path element by element.
/// Codes are uploaded with each row padded to whole 16-byte chunks (padded_row_bytes);
/// decoded values past `cols` in a row's last chunk are the padding's and are ignored.

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include <vector_types.h>

#include "qcodec/codecs/linear.hpp"
#include "qcodec/codecs/outlier_split.hpp"
#include "qcodec/codecs/qins.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/bit_packing.hpp"
#include "qcodec/cuda/buffer.cuh"
#include "qcodec/cuda/element.cuh"
#include "qcodec/cuda/launch_geometry.cuh"

namespace qcodec::inline QCODEC_ABI::cuda {

/// Device layout of a codec; specialised below for each codec family.
template <class Codec>
struct device_codec {
  static_assert(sizeof(Codec) == 0,
                "qcodec::cuda: device_codec<Codec> is not specialised; add a device layout for this codec");
};

/// The ortho stream O as kernels see it (device or host memory); `row_ptr == nullptr` means
/// no ortho stream. Entry e of row r is at column col_index[e], value values[e] * scale
/// (FP16 bits times a power of two: exact in FP32), columns increasing within a row.
struct csr_view {
  const std::uint32_t* row_ptr = nullptr;
  const std::uint32_t* col_index = nullptr;
  const std::uint16_t* values = nullptr;
  float scale = 0.0f;
  QCODEC_HD bool empty() const { return row_ptr == nullptr; }
  QCODEC_HD float value(std::uint32_t e) const { return half_bits_to_float(values[e]) * scale; }
};

/// out[j] += alpha * O[row, first + j] for j < Count: a binary search for the row's first entry
/// at or after `first`, then a walk. The unrolled compare keeps `out` in registers.
template <int Count>
QCODEC_HD void add_ortho(const csr_view& o, float alpha, index_t row, index_t first, float (&out)[Count]) {
  if (o.empty()) return;
  std::uint32_t lo = o.row_ptr[row];
  const std::uint32_t end = o.row_ptr[row + 1];
  std::uint32_t hi = end;
  while (lo < hi) {
    const std::uint32_t mid = lo + (hi - lo) / 2;
    if (static_cast<index_t>(o.col_index[mid]) < first) lo = mid + 1;
    else hi = mid;
  }
  for (std::uint32_t e = lo; e < end && static_cast<index_t>(o.col_index[e]) < first + Count; ++e) {
    const index_t j = static_cast<index_t>(o.col_index[e]) - first;
    const float add = alpha * o.value(e);
QCODEC_CUDA_UNROLL
    for (int k = 0; k < Count; ++k)
      if (k == j) out[k] += add;
  }
}

namespace detail {

/// The 16 bytes at `p` (16-byte aligned): one vector load on the device.
QCODEC_HD void load_chunk(const std::uint8_t* p, std::uint8_t (&bytes)[chunk_bytes]) {
#if defined(__CUDA_ARCH__)
  const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
  std::memcpy(bytes, &v, sizeof v);
#else
  std::memcpy(bytes, p, chunk_bytes);
#endif
}

/// Scales travel in their stored bits: float as is, FP16 as its IEEE bits.
template <class Scale>
using scale_bits_t = std::conditional_t<std::same_as<Scale, float>, float, std::uint16_t>;

QCODEC_HD float scale_value(float s) { return s; }
QCODEC_HD float scale_value(std::uint16_t bits) { return half_bits_to_float(bits); }

template <class Scale>
std::vector<scale_bits_t<Scale>> scale_bits(const std::vector<Scale>& scales) {
  std::vector<scale_bits_t<Scale>> bits(scales.size());
  for (std::size_t b = 0; b < scales.size(); ++b) bits[b] = std::bit_cast<scale_bits_t<Scale>>(scales[b]);
  return bits;
}

/// Codes rows x row_bytes re-laid with `pitch` bytes per row; padding bytes are 0.
inline std::vector<std::uint8_t> pad_rows(std::span<const std::uint8_t> codes, index_t rows,
                                          index_t row_bytes, index_t pitch) {
  std::vector<std::uint8_t> padded(static_cast<std::size_t>(rows * pitch), 0);
  for (index_t r = 0; r < rows; ++r)
    std::memcpy(padded.data() + r * pitch, codes.data() + r * row_bytes, static_cast<std::size_t>(row_bytes));
  return padded;
}

/// One member of a device_copy: an array uploaded, a shape field or scale copied.
template <class T>
void copy_member(device_buffer<T>& device, const std::vector<T>& host) {
  device = device_buffer<T>(std::span<const T>(host));
}
template <class T>
  requires std::is_arithmetic_v<T>
void copy_member(T& device, const T& host) {
  device = host;
}

template <class T>
std::size_t member_bytes(const device_buffer<T>& a) {
  return a.bytes();
}
template <class T>
  requires std::is_arithmetic_v<T>
std::size_t member_bytes(const T&) {
  return 0;
}

}  // namespace detail

/// Arrays on the host, in upload layout.
template <class T>
using host_array = std::vector<T>;

/// The device copy of a codec's host arrays: the same `Arrays` over device buffers, each member
/// uploaded or copied (Arrays<Array>::members lists them).
template <template <template <class> class> class Arrays>
struct device_copy : Arrays<device_buffer> {
  explicit device_copy(const Arrays<host_array>& host) {
    Arrays<device_buffer>::members([](auto& device, const auto& h) { detail::copy_member(device, h); },
                                   static_cast<Arrays<device_buffer>&>(*this), host);
  }
  /// Device bytes one pass over the weight reads (codes with row padding, parameters).
  std::size_t bytes() const {
    std::size_t total = 0;
    Arrays<device_buffer>::members([&](const auto& member) { total += detail::member_bytes(member); },
                                   static_cast<const Arrays<device_buffer>&>(*this));
    return total;
  }
};

/// out[j] = column chunk * chunk_cols + j of row `row`, for every column of the chunk.
template <class View>
QCODEC_HD void decode_chunk(const View& w, index_t row, index_t chunk, float (&out)[View::chunk_cols]) {
  const auto codes = w.load(row, chunk);
QCODEC_CUDA_UNROLL
  for (int j = 0; j < View::chunk_cols; ++j) out[j] = codes[j];
}

template <int Bits, class Granularity, scale_storage Scale, symmetry Symmetry>
struct device_codec<linear<Bits, Granularity, Scale, Symmetry>> {
  using codec_type = linear<Bits, Granularity, Scale, Symmetry>;
  using scale_bits = detail::scale_bits_t<Scale>;
  static constexpr index_t chunk_cols = cuda::chunk_cols<Bits>;
  static constexpr index_t group_size = codec_traits<codec_type>::block_size;  // 0: row or tensor
  static_assert(group_size % chunk_cols == 0, "a chunk of codes never straddles two groups");

  /// Read-only arrays in upload layout (host or device memory).
  struct view {
    static constexpr index_t chunk_cols = device_codec::chunk_cols;
    const std::uint8_t* codes = nullptr;        // rows x pitch
    const scale_bits* scales = nullptr;         // one per block
    const std::uint8_t* zero_points = nullptr;  // asymmetric only
    index_t rows = 0, cols = 0, pitch = 0, groups_per_row = 1;

    QCODEC_HD index_t chunks_per_row() const { return ceil_div(cols, chunk_cols); }

    /// INT4 at batch 1: the whole chunk's 32 values took 82 registers and a quarter occupancy
    /// on an H100; in pieces the GEMV took 16-25% less time on 11008 and 14336 rows. INT8 and
    /// QINS gained nothing or lost (bench/history/cuda-first-runs.md, "INT4 GEMV at batch 1
    /// decodes in pieces").
    static constexpr bool gemv_decodes_in_pieces = Bits == 4;

    /// The 16 code bytes of one chunk and the scale and offset of their block.
    struct chunk_codes {
      std::uint8_t bytes[chunk_bytes];
      float scale;
      int offset;
      QCODEC_HD float operator[](int j) const {
        return linear_math::dequantize(unpack_code<Bits>(bytes, j), offset, scale);
      }
    };

    QCODEC_HD chunk_codes load(index_t row, index_t chunk) const {
      chunk_codes c;
      detail::load_chunk(codes + row * pitch + chunk * chunk_bytes, c.bytes);
      index_t group = 0;  // a chunk never straddles two groups
      if constexpr (group_size > 0) group = chunk * chunk_cols / group_size;
      const index_t block = linear_math::block_index(row, group, groups_per_row,
                                                     std::same_as<Granularity, per_tensor>);
      c.scale = detail::scale_value(scales[block]);
      c.offset = codec_type::symmetric_offset;
      if constexpr (!codec_type::symmetric) c.offset = zero_points[block];
      return c;
    }
  };

  template <template <class> class Array>
  struct arrays {
    index_t rows = 0, cols = 0, pitch = 0, groups_per_row = 1;
    Array<std::uint8_t> codes;
    Array<scale_bits> scales;
    Array<std::uint8_t> zero_points;
    template <class F, class... A>
    static void members(F&& f, A&... a) {
      f(a.rows...), f(a.cols...), f(a.pitch...), f(a.groups_per_row...);
      f(a.codes...), f(a.scales...), f(a.zero_points...);
    }
    view base_view() const {
      return {codes.data(), scales.data(), zero_points.empty() ? nullptr : zero_points.data(),
              rows, cols, pitch, groups_per_row};
    }
    csr_view ortho_view() const { return {}; }
  };
  using host_arrays = arrays<host_array>;
  using device_arrays = device_copy<arrays>;

  static host_arrays prepare(const typename codec_type::storage& s, std::string_view name) {
    codec_type::validate(s, name);
    const index_t pitch = padded_row_bytes(s.row_bytes());
    return {s.rows, s.cols, pitch, s.groups_per_row(), detail::pad_rows(s.codes, s.rows, s.row_bytes(), pitch),
            detail::scale_bits(s.scales), s.zero_points};
  }
};

template <int Bits>
struct device_codec<qins<Bits>> {
  using codec_type = qins<Bits>;
  static constexpr index_t chunk_cols = cuda::chunk_cols<Bits>;

  /// Read-only arrays in upload layout (host or device memory).
  struct view {
    static constexpr index_t chunk_cols = device_codec::chunk_cols;
    const std::uint8_t* codes = nullptr;  // rows x pitch
    const float* scales = nullptr;        // one per row
    const float* lut = nullptr;           // 2^Bits signed levels
    index_t rows = 0, cols = 0, pitch = 0;

    QCODEC_HD index_t chunks_per_row() const { return ceil_div(cols, chunk_cols); }

    static constexpr bool gemv_decodes_in_pieces = false;  // see the linear view

    /// The 16 code bytes of one chunk, their row's scale and the tensor's LUT.
    struct chunk_codes {
      std::uint8_t bytes[chunk_bytes];
      float scale;
      const float* lut;
      QCODEC_HD float operator[](int j) const { return qins_math::decode(unpack_code<Bits>(bytes, j), lut, scale); }
    };

    QCODEC_HD chunk_codes load(index_t row, index_t chunk) const {
      chunk_codes c;
      detail::load_chunk(codes + row * pitch + chunk * chunk_bytes, c.bytes);
      c.scale = scales[row];
      c.lut = lut;
      return c;
    }
  };

  template <template <class> class Array>
  struct arrays {
    index_t rows = 0, cols = 0, pitch = 0;
    Array<std::uint8_t> codes;
    Array<float> scales, lut;
    template <class F, class... A>
    static void members(F&& f, A&... a) {
      f(a.rows...), f(a.cols...), f(a.pitch...), f(a.codes...), f(a.scales...), f(a.lut...);
    }
    view base_view() const { return {codes.data(), scales.data(), lut.data(), rows, cols, pitch}; }
    csr_view ortho_view() const { return {}; }
  };
  using host_arrays = arrays<host_array>;
  using device_arrays = device_copy<arrays>;

  static host_arrays prepare(const typename codec_type::storage& s, std::string_view name) {
    codec_type::validate(s, name);
    const index_t pitch = padded_row_bytes(s.row_bytes());
    return {s.rows, s.cols, pitch, detail::pad_rows(s.codes, s.rows, s.row_bytes(), pitch), s.scales, s.lut};
  }
};

/// The ortho stream in upload layout: columns widened to 32 bits, FP16 values as bits.
template <template <class> class Array>
struct ortho_arrays {
  Array<std::uint32_t> row_ptr, col_index;
  Array<std::uint16_t> values;
  float scale = 0.0f;
  template <class F, class... A>
  static void members(F&& f, A&... a) {
    f(a.row_ptr...), f(a.col_index...), f(a.values...), f(a.scale...);
  }
  csr_view view() const {
    if (row_ptr.empty()) return {};
    return {row_ptr.data(), col_index.data(), values.data(), scale};
  }
};

struct host_ortho : ortho_arrays<host_array> {
  /// Validates `o` (qcodec::error naming `name`) and converts it; an empty stream stays empty.
  static host_ortho prepare(const ortho_stream& o, std::string_view name) {
    o.validate(name);
    host_ortho h;
    if (o.nnz() == 0) return h;
    h.row_ptr = o.row_offsets;
    if (ortho_stream::narrow_columns(o.cols)) h.col_index.assign(o.columns16.begin(), o.columns16.end());
    else h.col_index = o.columns32;
    h.values.resize(o.values.size());
    for (std::size_t e = 0; e < o.values.size(); ++e) h.values[e] = std::bit_cast<std::uint16_t>(o.values[e]);
    h.scale = o.scale[0];
    return h;
  }
};

template <class Base>
struct device_codec<outlier_split<Base>> {
  using codec_type = outlier_split<Base>;
  using base_layout = device_codec<Base>;
  using view = typename base_layout::view;
  static constexpr index_t chunk_cols = base_layout::chunk_cols;

  template <template <class> class Array>
  struct arrays {
    typename base_layout::template arrays<Array> base;
    ortho_arrays<Array> ortho;
    template <class F, class... A>
    static void members(F&& f, A&... a) {
      base_layout::template arrays<Array>::members(f, a.base...);
      ortho_arrays<Array>::members(f, a.ortho...);
    }
    view base_view() const { return base.base_view(); }
    csr_view ortho_view() const { return ortho.view(); }
  };
  using host_arrays = arrays<host_array>;
  using device_arrays = device_copy<arrays>;

  static host_arrays prepare(const typename codec_type::storage& s, std::string_view name) {
    codec_type::validate(s, name);
    return {base_layout::prepare(s.base, name), host_ortho::prepare(s.ortho, name)};
  }
};

}  // namespace qcodec::inline QCODEC_ABI::cuda
