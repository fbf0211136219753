#pragma once
/// Linear layers from a safetensors file of encoded tensors, their codec chosen at run time
/// by the name the file records (io/encoded_tensors.hpp, visit_encoded): an engine that reads
/// a quantized model needs no codec type at compile time.

#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "qcodec/codecs/codec_list.hpp"
#include "qcodec/config.hpp"
#include "qcodec/io/encoded_tensors.hpp"
#include "qcodec/io/safetensors.hpp"
#include "qcodec/ops/any_linear.hpp"

namespace qcodec::inline QCODEC_ABI::io {

/// The layer of encoded tensor `name` (read and validated as read_encoded does) with an
/// optional bias (empty, or out_features values), its codec the one the file names among
/// `List` (an unknown name is a qcodec::error). `List` sets what the program compiles: every
/// codec by default; an engine that serves a few lists only those.
template <class List = all_codecs>
any_linear load_linear(const safetensors_file& file, std::string_view name, std::span<const float> bias = {}) {
  std::optional<any_linear> layer;
  visit_encoded<List>(file, name, [&](auto&& weight) { layer.emplace(std::move(weight), bias); });
  return std::move(*layer);
}

/// load_linear with the bias read from the plain tensor `bias_name` (F32, F16 or BF16, rank 1).
template <class List = all_codecs>
any_linear load_linear(const safetensors_file& file, std::string_view name, std::string_view bias_name) {
  const row_matrix bias = file.read_matrix(bias_name);
  if (file.tensor(bias_name).shape.size() != 1)
    qcodec::detail::fail(file.label(), ": bias '", bias_name, "' has rank ", file.tensor(bias_name).shape.size(),
                         ", expected 1");
  return load_linear<List>(file, name, std::span<const float>(bias.data(), static_cast<std::size_t>(bias.size())));
}

}  // namespace qcodec::inline QCODEC_ABI::io
