// libFuzzer target of the safetensors reader: any byte string must either parse or give a
// qcodec::error; every tensor of a parsed file must read (or be refused with a
// qcodec::error) without an out-of-bounds access, and every encoded tensor must validate and
// decode or be refused likewise. Any other exception or a sanitizer report is a bug.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "qcodec/codecs/codec_list.hpp"
#include "qcodec/io/encoded_tensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace qcodec;
  try {
    const io::safetensors_file file(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz");
    for (const io::tensor_info& t : file.tensors()) {
      try {
        const row_matrix m = file.read_matrix(t.name);
        volatile float sink = m.size() > 0 ? m(m.rows() - 1, m.cols() - 1) : 0.0f;
        (void)sink;
      } catch (const qcodec::error&) {
      }
    }
    std::vector<io::encoded_tensor_info> encoded;
    try {
      encoded = io::encoded_tensors(file);
    } catch (const qcodec::error&) {
    }
    for (const io::encoded_tensor_info& info : encoded) {
      try {
        const row_matrix m = io::decode_tensor(file, info.name);
        volatile float sink = m(m.rows() - 1, m.cols() - 1);
        (void)sink;
      } catch (const qcodec::error&) {
      }
    }
  } catch (const qcodec::error&) {
  }
  return 0;
}
