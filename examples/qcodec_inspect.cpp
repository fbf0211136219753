// qcodec-inspect: prints what a safetensors file holds: its encoded (quantized) tensors with
// codec, shape, bytes and bpw, its plain tensors and its metadata. --verify also decodes
// every encoded tensor (which validates its arrays first).

#include <cstdio>
#include <exception>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>

#include <qcodec/codecs/codec_list.hpp>
#include <qcodec/io/encoded_tensors.hpp>

#include "shape_text.hpp"

namespace {

using namespace qcodec;
using examples::shape_text;

int inspect(const std::string& path, bool verify) {
  const auto file = io::safetensors_file::open(path);
  const auto encoded = io::encoded_tensors(file);
  std::printf("%s: %ju bytes, %zu tensors in the file, %zu encoded\n", path.c_str(),
              static_cast<std::uintmax_t>(std::filesystem::file_size(path)), file.tensors().size(),
              encoded.size());
  for (const auto& [key, value] : file.metadata())
    if (!key.starts_with(io::encoded_metadata_prefix))
      std::printf("metadata %s = %s\n", key.c_str(), value.c_str());

  std::size_t encoded_bytes = 0, plain_bytes = 0;
  if (!encoded.empty())
    std::printf("\n%-48s %-24s %-14s %12s %8s\n", "encoded tensor", "codec", "shape", "bytes", "bpw");
  for (const io::encoded_tensor_info& info : encoded) {
    const double bpw = 8.0 * static_cast<double>(info.byte_size) /
                       (static_cast<double>(info.rows) * static_cast<double>(info.cols));
    std::printf("%-48s %-24s %-14s %12zu %8.3f", info.name.c_str(), info.codec.c_str(),
                shape_text({static_cast<std::uint64_t>(info.rows), static_cast<std::uint64_t>(info.cols)}).c_str(),
                info.byte_size, bpw);
    std::string arrays;
    for (const std::string& array : info.arrays) {
      const io::tensor_info& t = file.tensor(info.name + "." + array);
      arrays += " " + array + ":" + std::string(io::dtype_name(t.dtype)) + shape_text(t.shape);
    }
    std::printf("  %s\n", arrays.c_str());
    if (verify) {
      const row_matrix w = io::decode_tensor(file, info.name);
      if (!w.allFinite()) detail::fail(path, ": tensor '", info.name, "' decodes to non-finite values");
    }
    encoded_bytes += info.byte_size;
  }
  // A set of the encoded arrays' names: one lookup per plain tensor, not a scan of them all.
  std::set<std::string, std::less<>> encoded_arrays;
  for (const io::encoded_tensor_info& info : encoded)
    for (const std::string& array : info.arrays) encoded_arrays.insert(info.name + "." + array);
  bool header = false;
  for (const io::tensor_info& t : file.tensors()) {
    if (encoded_arrays.contains(t.name)) continue;
    if (!header) std::printf("\n%-48s %-7s %-14s %12s\n", "plain tensor", "dtype", "shape", "bytes");
    header = true;
    std::printf("%-48s %-7s %-14s %12zu\n", t.name.c_str(), std::string(io::dtype_name(t.dtype)).c_str(),
                shape_text(t.shape).c_str(), t.bytes.size());
    plain_bytes += t.bytes.size();
  }
  std::printf("\ntotal: %zu bytes encoded, %zu bytes plain%s\n", encoded_bytes, plain_bytes,
              verify ? "; every encoded tensor validated and decoded" : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  bool verify = false, bad = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--verify") verify = true;
    else if (arg.starts_with("-") || !path.empty()) bad = true;
    else path = arg;
  }
  if (bad || path.empty()) {
    std::fprintf(stderr, "usage: qcodec-inspect FILE.safetensors [--verify]\n");
    return 2;
  }
  try {
    return inspect(path, verify);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
