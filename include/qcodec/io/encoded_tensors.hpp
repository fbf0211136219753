#pragma once
/// Encoded matrices of any codec in safetensors files (layout: docs/safetensors_layout.md).
///
/// An encoded tensor `name` is stored as one 1-D tensor per array of its storage, named
/// "<name>.<array>" in visit_arrays order, with the array's element dtype, plus the metadata
/// entry "qcodec.tensor.<name>": a JSON object (as a string) with "codec"
/// (codec_traits<C>::name), "format_version", "shape" [rows, cols], "arrays" (names in
/// order) and the informative "bits", "block_size", "is_linear". Reading checks every array's
/// presence, dtype and rank, then C::validate, so decode can trust what it reads.
/// The reader gives a fresh storage its shape before filling its arrays: `set_shape(rows,
/// cols)` when the storage defines it, else `rows` and `cols`, and likewise for the nested
/// storages `base` and `ortho` (the outlier split's), which share the outer shape.

#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "qcodec/codecs/codec.hpp"
#include "qcodec/codecs/codec_list.hpp"
#include "qcodec/config.hpp"
#include "qcodec/io/mapped_copy.hpp"
#include "qcodec/io/safetensors.hpp"

namespace qcodec::inline QCODEC_ABI::io {

/// Version of the encoded-tensor layout written by this library; readers reject others.
inline constexpr int encoded_format_version = 1;
/// Metadata key prefix of an encoded tensor's description.
inline constexpr std::string_view encoded_metadata_prefix = "qcodec.tensor.";

/// The description of one encoded tensor, from a file's metadata.
struct encoded_tensor_info {
  std::string name;
  std::string codec;
  index_t rows = 0, cols = 0;
  std::vector<std::string> arrays;
  /// Bytes of all its arrays.
  std::size_t byte_size = 0;
};

/// Adds `m` to `writer` as tensor `name` (its arrays and its metadata description; a non-empty
/// `encode_options` object, e.g. {"outlier_fraction": p}, is recorded in the description as
/// "encode_options", informative only). Throws, leaving the writer as it was, when the writer
/// already holds the description or an array.
template <codec C>
void add_encoded(safetensors_writer& writer, const std::string& name, const encoded_matrix<C>& m,
                 const nlohmann::ordered_json& encode_options = {}) {
  const std::string key = std::string(encoded_metadata_prefix) + name;
  if (writer.has_metadata(key)) qcodec::detail::fail("add_encoded: encoded tensor '", name, "' added twice");
  m.storage().visit_arrays([&](std::string_view array, const auto&) {
    if (writer.contains(name + "." + std::string(array)))
      qcodec::detail::fail("add_encoded: tensor '", name, ".", array, "' added twice");
  });
  nlohmann::json arrays = nlohmann::json::array();
  m.storage().visit_arrays([&](std::string_view array, const auto& values) {
    using element = typename std::remove_cvref_t<decltype(values)>::value_type;
    writer.add_array<element>(name + "." + std::string(array), std::span<const element>(values));
    arrays.push_back(array);
  });
  nlohmann::ordered_json description = {
      {"codec", codec_traits<C>::name},
      {"format_version", encoded_format_version},
      {"shape", {m.rows(), m.cols()}},
      {"arrays", arrays},
      {"bits", codec_traits<C>::bits},
      {"block_size", codec_traits<C>::block_size},
      {"is_linear", codec_traits<C>::is_linear}};
  if (encode_options.is_object() && !encode_options.empty()) description["encode_options"] = encode_options;
  writer.set_metadata(key, description.dump());
  writer.set_metadata("qcodec.format_version", std::to_string(encoded_format_version));
}

namespace detail {

/// Gives a storage (and its nested `base` and `ortho` storages) the shape rows x cols.
template <class Storage>
void assign_shape(Storage& s, index_t rows, index_t cols) {
  if constexpr (requires { s.set_shape(rows, cols); }) {
    s.set_shape(rows, cols);
  } else {
    s.rows = rows;
    s.cols = cols;
    if constexpr (requires { s.base.rows; }) assign_shape(s.base, rows, cols);
    if constexpr (requires { s.ortho.rows; }) assign_shape(s.ortho, rows, cols);
  }
}

inline encoded_tensor_info parse_encoded_description(const safetensors_file& file,
                                                     const std::string& name,
                                                     const std::string& text) {
  const auto bad = [&](std::string_view problem) {
    qcodec::detail::fail(file.label(), ": tensor '", name, "': encoded description ", problem);
  };
  check_json_depth(text, file.label() + ": tensor '" + name + "'");
  const nlohmann::json d = nlohmann::json::parse(text, nullptr, false);
  if (d.is_discarded() || !d.is_object()) bad("is not a JSON object");
  const auto version = d.find("format_version");
  if (version == d.end() || !version->is_number_integer()) bad("has no integer \"format_version\"");
  if (version->get<std::int64_t>() != encoded_format_version)
    bad("has format version " + version->dump() + "; this reader knows version " +
        std::to_string(encoded_format_version));
  const auto codec = d.find("codec");
  if (codec == d.end() || !codec->is_string()) bad("has no string \"codec\"");
  const auto shape = d.find("shape");
  // Each extent below 2^31, so that rows * cols * bytes per code cannot overflow index_t.
  constexpr std::uint64_t max_extent = std::uint64_t{1} << 31;
  if (shape == d.end() || !shape->is_array() || shape->size() != 2 || !(*shape)[0].is_number_unsigned() ||
      !(*shape)[1].is_number_unsigned() || (*shape)[0].get<std::uint64_t>() == 0 ||
      (*shape)[1].get<std::uint64_t>() == 0 || (*shape)[0].get<std::uint64_t>() >= max_extent ||
      (*shape)[1].get<std::uint64_t>() >= max_extent)
    bad("has no \"shape\" [rows, cols] of positive extents below 2^31");
  const auto arrays = d.find("arrays");
  if (arrays == d.end() || !arrays->is_array()) bad("has no \"arrays\" list");
  encoded_tensor_info info;
  info.name = name;
  info.codec = codec->get<std::string>();
  info.rows = static_cast<index_t>((*shape)[0].get<std::uint64_t>());
  info.cols = static_cast<index_t>((*shape)[1].get<std::uint64_t>());
  for (const auto& array : *arrays) {
    if (!array.is_string()) bad("lists a non-string array name");
    info.arrays.push_back(array.get<std::string>());
    const tensor_info* t = file.find(name + "." + info.arrays.back());
    if (t == nullptr) bad("lists array '" + info.arrays.back() + "' but the file has no tensor '" +
                          name + "." + info.arrays.back() + "'");
    info.byte_size += t->bytes.size();
  }
  return info;
}

}  // namespace detail

/// The description of encoded tensor `name`; throws qcodec::error if absent or malformed.
inline encoded_tensor_info encoded_tensor(const safetensors_file& file, std::string_view name) {
  const auto it = file.metadata().find(std::string(encoded_metadata_prefix) + std::string(name));
  if (it == file.metadata().end())
    qcodec::detail::fail(file.label(), ": no encoded tensor '", name, "'");
  return detail::parse_encoded_description(file, std::string(name), it->second);
}

/// Every encoded tensor of the file, in metadata (name) order.
inline std::vector<encoded_tensor_info> encoded_tensors(const safetensors_file& file) {
  std::vector<encoded_tensor_info> out;
  for (const auto& [key, value] : file.metadata())
    if (key.starts_with(encoded_metadata_prefix))
      out.push_back(detail::parse_encoded_description(
          file, key.substr(encoded_metadata_prefix.size()), value));
  return out;
}

/// True when the plain tensor `tensor_name` is one array of an encoded tensor.
inline bool is_encoded_array(const std::vector<encoded_tensor_info>& encoded,
                             std::string_view tensor_name) {
  for (const encoded_tensor_info& info : encoded)
    for (const std::string& array : info.arrays)
      if (tensor_name.size() == info.name.size() + 1 + array.size() &&
          tensor_name.starts_with(info.name) && tensor_name[info.name.size()] == '.' &&
          tensor_name.ends_with(array))
        return true;
  return false;
}

/// Reads encoded tensor `info` as codec C: the codec must match, every array must be present
/// with its dtype and rank 1, and C::validate must accept the storage.
template <codec C>
encoded_matrix<C> read_encoded(const safetensors_file& file, const encoded_tensor_info& info) {
  const auto fail = [&](auto&&... parts) {
    qcodec::detail::fail(file.label(), ": tensor '", info.name, "': ", parts...);
  };
  if (info.codec != codec_traits<C>::name)
    fail("stored with codec '", info.codec, "', read as '", codec_traits<C>::name, "'");
  typename C::storage s;
  detail::assign_shape(s, info.rows, info.cols);
  std::size_t visited = 0;
  s.visit_arrays([&](std::string_view array, auto& values) {
    using element = typename std::remove_cvref_t<decltype(values)>::value_type;
    if (visited >= info.arrays.size() || info.arrays[visited] != array)
      fail("the metadata's array list does not match codec '", codec_traits<C>::name, "' at array '",
           array, "'");
    ++visited;
    const std::string full = info.name + "." + std::string(array);
    const tensor_info& t = file.tensor(full);
    if (t.dtype != dtype_of<element>())
      fail("array '", full, "' has dtype ", dtype_name(t.dtype), ", expected ",
           dtype_name(dtype_of<element>()));
    if (t.shape.size() != 1) fail("array '", full, "' has rank ", t.shape.size(), ", expected 1");
    values.resize(static_cast<std::size_t>(t.element_count()));
    copy_from_mapping(t.bytes, reinterpret_cast<std::byte*>(values.data()), file.label());
  });
  if (visited != info.arrays.size())
    fail("the metadata lists ", info.arrays.size(), " arrays, codec '", codec_traits<C>::name,
         "' stores ", visited);
  try {
    C::validate(s, info.name);
  } catch (const error& e) {
    std::string_view message = e.what();
    if (message.starts_with("qcodec: ")) message.remove_prefix(8);
    qcodec::detail::fail(file.label(), ": ", message);
  }
  return encoded_matrix<C>(std::move(s));
}

/// Reads encoded tensor `name` as codec C (see the overload above).
template <codec C>
encoded_matrix<C> read_encoded(const safetensors_file& file, std::string_view name) {
  return read_encoded<C>(file, encoded_tensor(file, name));
}

/// Reads encoded tensor `name` with the codec its metadata names, chosen among `List`, and
/// calls `f(encoded_matrix<C>&&)`; an unknown codec name is a qcodec::error.
template <class List = all_codecs, class F>
void visit_encoded(const safetensors_file& file, std::string_view name, F&& f) {
  const encoded_tensor_info info = encoded_tensor(file, name);
  bool found = false;
  for_each_codec<List>([&]<class C>(C) {
    if (found || codec_traits<C>::name != info.codec) return;
    found = true;
    f(read_encoded<C>(file, info));
  });
  if (!found)
    qcodec::detail::fail(file.label(), ": tensor '", name, "': unknown codec '", info.codec, "'");
}

/// Decodes encoded tensor `name` to FP32, whatever its codec among `List`.
template <class List = all_codecs>
row_matrix decode_tensor(const safetensors_file& file, std::string_view name) {
  row_matrix out;
  visit_encoded<List>(file, name, [&](const auto& m) { out = m.decode(); });
  return out;
}

}  // namespace qcodec::inline QCODEC_ABI::io
