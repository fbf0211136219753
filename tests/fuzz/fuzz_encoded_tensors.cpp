// libFuzzer target of the encoded-tensor path and the writer. Each encoded tensor of a parsed
// file is read with the codec its metadata names (looked up among all_codecs) and decoded;
// then the whole file is written again (the tensors that read through io::add_encoded, every
// other tensor and metadata entry as it was) and read back. The re-read file must hold the
// same tensors byte for byte and the same metadata, and its encoded tensors must decode to
// the same floats bit for bit. A qcodec::error while reading the input is an expected
// outcome, and so is a tensor named "" (the reader accepts it, the writer refuses it by
// design: no round trip); a refused write, a failed check or any other exception aborts.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include "qcodec/codecs/codec_list.hpp"
#include "qcodec/io/encoded_tensors.hpp"

namespace {

using namespace qcodec;

[[noreturn]] void bug(const std::string& what) {
  std::fprintf(stderr, "fuzz_encoded_tensors: %s\n", what.c_str());
  std::abort();
}

bool same_bits(const row_matrix& a, const row_matrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

struct decoded_tensor {
  io::encoded_tensor_info info;
  row_matrix values;
};

// The encoded tensors of `file` that read and validate, each added to `writer` with
// io::add_encoded; their arrays go into `claimed`. A tensor whose arrays another one already
// claimed (names such as "w.base" + ".codes" and "w" + ".base.codes") is left to be copied.
std::vector<decoded_tensor> add_encoded_tensors(const io::safetensors_file& file, io::safetensors_writer& writer,
                                                std::set<std::string>& claimed) {
  std::vector<decoded_tensor> decoded;
  for (const auto& [key, value] : file.metadata()) {
    if (!key.starts_with(io::encoded_metadata_prefix)) continue;
    const std::string name = key.substr(io::encoded_metadata_prefix.size());
    try {
      const io::encoded_tensor_info info = io::encoded_tensor(file, name);
      io::visit_encoded(file, name, [&](const auto& m) {
        for (const std::string& array : info.arrays)
          if (claimed.contains(name + "." + array)) return;
        decoded_tensor d{info, {}};
        try {
          d.values = m.decode();
          io::add_encoded(writer, name, m);
        } catch (const error& e) {
          bug("tensor '" + name + "' validated, then: " + e.what());
        }
        for (const std::string& array : info.arrays) claimed.insert(name + "." + array);
        decoded.push_back(std::move(d));
      });
    } catch (const error&) {
    }
  }
  return decoded;
}

void check_reread(const io::safetensors_file& original, const io::safetensors_file& reread,
                  const std::vector<decoded_tensor>& decoded) {
  if (reread.tensors().size() != original.tensors().size()) bug("the re-read file has another tensor count");
  for (const io::tensor_info& t : original.tensors()) {
    const io::tensor_info* r = reread.find(t.name);
    if (r == nullptr || r->dtype != t.dtype || r->shape != t.shape || !same_bytes(r->bytes, t.bytes))
      bug("tensor '" + t.name + "' differs after the round trip");
  }
  std::set<std::string> described;
  for (const decoded_tensor& d : decoded) described.insert(std::string(io::encoded_metadata_prefix) + d.info.name);
  for (const auto& [key, value] : original.metadata()) {
    const auto it = reread.metadata().find(key);
    if (it == reread.metadata().end()) bug("metadata '" + key + "' lost");
    const bool rewritten = described.contains(key) || (key == "qcodec.format_version" && !decoded.empty());
    if (!rewritten && it->second != value) bug("metadata '" + key + "' changed");
  }
  const bool version_added = !decoded.empty() && !original.metadata().contains("qcodec.format_version");
  if (reread.metadata().size() != original.metadata().size() + (version_added ? 1 : 0))
    bug("the re-read file has another metadata count");
  for (const decoded_tensor& d : decoded) {
    try {
      const io::encoded_tensor_info info = io::encoded_tensor(reread, d.info.name);
      if (info.codec != d.info.codec || info.rows != d.info.rows || info.cols != d.info.cols ||
          info.arrays != d.info.arrays)
        bug("the description of '" + d.info.name + "' changed");
      io::visit_encoded(reread, d.info.name, [&](const auto& m) {
        if (!same_bits(m.decode(), d.values)) bug("tensor '" + d.info.name + "' decodes differently");
      });
    } catch (const error& e) {
      bug(std::string("re-reading: ") + e.what());
    }
  }
}

const std::filesystem::path& scratch_path() {
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("qcodec_fuzz_encoded_" + std::to_string(::getpid()) + ".safetensors");
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::optional<io::safetensors_file> file;
  try {
    file.emplace(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz");
  } catch (const error&) {
    return 0;
  }
  // The writer refuses an empty tensor name, which the reader accepts: no round trip then.
  for (const io::tensor_info& t : file->tensors())
    if (t.name.empty()) return 0;
  io::safetensors_writer writer;
  std::set<std::string> claimed;
  const std::vector<decoded_tensor> decoded = add_encoded_tensors(*file, writer, claimed);
  const std::filesystem::path& path = scratch_path();
  try {
    for (const io::tensor_info& t : file->tensors())
      if (!claimed.contains(t.name)) writer.add_tensor(t.name, t.dtype, t.shape, t.bytes);
    for (const auto& [key, value] : file->metadata())
      if (!writer.has_metadata(key)) writer.set_metadata(key, value);
    writer.write(path);
    const io::safetensors_file reread = io::safetensors_file::open(path);
    check_reread(*file, reread, decoded);
  } catch (const error& e) {
    bug(std::string("writing or re-reading a valid file: ") + e.what());
  }
  std::filesystem::remove(path);
  return 0;
}
