#pragma once
/// Reading and writing safetensors files (https://github.com/huggingface/safetensors).
///
/// Opt-in: this header needs nlohmann/json (Debian nlohmann-json3-dev), which the rest of
/// qcodec does not. Layout (docs/safetensors_layout.md): an unsigned little-endian 64-bit
/// header length N, N bytes of a UTF-8 JSON object, then the data section. Each header entry
/// other than "__metadata__" is {"dtype", "shape", "data_offsets": [begin, end]} with offsets
/// relative to the data section. The reader enforces the format's invariants before any
/// tensor is touched: the header lies inside the file, every tensor's byte count equals
/// shape product x dtype size, and the tensors tile the data section exactly (no overlap,
/// no gap, no trailing bytes), so no later access can leave the file. As the reference
/// implementation does, it refuses a header with a key twice in one object (a second
/// "__metadata__" or tensor entry) and bytes after the JSON other than whitespace (a NUL
/// byte, which a JSON parser may take for the end of its input, is refused anywhere).
/// Reads from a mapped file go through mapped_copy.hpp, so a file truncated while it is
/// read gives a qcodec::error, not SIGBUS; the spans of tensor_info::bytes point into the
/// mapping, and a caller reading them directly should do the same.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/half.hpp"
#include "qcodec/core/matrix.hpp"
#include "qcodec/io/atomic_file.hpp"
#include "qcodec/io/dtype.hpp"
#include "qcodec/io/mapped_copy.hpp"
#include "qcodec/io/mapped_file.hpp"

namespace qcodec::inline QCODEC_ABI::io {

/// Largest header the reader accepts (the reference implementation's limit).
inline constexpr std::uint64_t max_header_bytes = 100u << 20;
/// Deepest JSON nesting the reader accepts; a valid header needs 3.
inline constexpr int max_header_depth = 16;

namespace detail {

/// Rejects JSON nesting deeper than max_header_depth before a JSON parser sees the text.
inline void check_json_depth(std::string_view text, std::string_view label) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      if (++depth > max_header_depth)
        qcodec::detail::fail(label, ": JSON nests deeper than ", max_header_depth, " levels");
    } else if (ch == '}' || ch == ']') {
      --depth;
    }
  }
}

/// Bytes of a tensor of `shape` and elements of `element_bytes`, or nothing when the product
/// overflows 64 bits at any point (even when a later extent is 0).
inline std::optional<std::uint64_t> tensor_bytes(std::span<const std::uint64_t> shape, std::size_t element_bytes) {
  std::uint64_t count = 1;
  for (std::uint64_t extent : shape) {
    if (extent != 0 && count > std::numeric_limits<std::uint64_t>::max() / extent) return std::nullopt;
    count *= extent;
  }
  if (count > std::numeric_limits<std::uint64_t>::max() / element_bytes) return std::nullopt;
  return count * element_bytes;
}

/// The first key that appears twice in one JSON object of `text`, if any (nlohmann keeps the
/// last silently). A SAX pass of its own, linear in the text: a DOM parser callback would
/// rescan the enclosing object at every object's end, quadratic in the number of tensors.
inline std::optional<std::string> duplicate_json_key(const std::string& text) {
  struct duplicate_finder {
    std::vector<std::unordered_set<std::string>> keys;
    std::optional<std::string> duplicate;
    bool null() { return true; }
    bool boolean(bool) { return true; }
    bool number_integer(nlohmann::json::number_integer_t) { return true; }
    bool number_unsigned(nlohmann::json::number_unsigned_t) { return true; }
    bool number_float(nlohmann::json::number_float_t, const std::string&) { return true; }
    bool string(std::string&) { return true; }
    bool binary(nlohmann::json::binary_t&) { return true; }
    bool start_object(std::size_t) { keys.emplace_back(); return true; }
    bool end_object() { keys.pop_back(); return true; }
    bool start_array(std::size_t) { return true; }
    bool end_array() { return true; }
    bool key(std::string& key) {
      if (!keys.back().insert(key).second) duplicate = key;
      return !duplicate;  // stop at the first
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
  } finder;
  nlohmann::json::sax_parse(text, &finder);
  return finder.duplicate;
}

}  // namespace detail

/// One tensor of a safetensors file.
struct tensor_info {
  std::string name;
  io::dtype dtype = dtype::u8;
  std::vector<std::uint64_t> shape;
  std::span<const std::byte> bytes;  ///< the tensor's data, inside the file

  /// Number of elements (product of the shape; 1 for a scalar).
  std::uint64_t element_count() const { return bytes.size() / dtype_size(dtype); }
};

/// A parsed safetensors file: its tensors (in data order) and its metadata.
class safetensors_file {
 public:
  /// Memory-maps and parses `path`; throws qcodec::error naming the file and the problem.
  static safetensors_file open(const std::filesystem::path& path) {
    mapped_file mapping(path);
    const auto bytes = mapping.bytes();
    safetensors_file file(bytes, path.string());
    file.mapping_ = std::move(mapping);
    return file;
  }

  /// Parses a file image in memory; `bytes` must outlive the result. `label` names it in errors.
  safetensors_file(std::span<const std::byte> bytes, std::string label)
      : label_(std::move(label)) {
    parse(bytes);
  }

  /// The file name (or label) used in error messages.
  const std::string& label() const { return label_; }
  /// Every tensor, in the order of its data.
  const std::vector<tensor_info>& tensors() const { return tensors_; }
  /// The "__metadata__" string map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// The tensor named `name`, or nullptr.
  const tensor_info* find(std::string_view name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }

  /// The tensor named `name`; throws qcodec::error when it is missing.
  const tensor_info& tensor(std::string_view name) const {
    if (const tensor_info* t = find(name)) return *t;
    qcodec::detail::fail(label_, ": no tensor '", name, "'");
  }

  /// Reads an F32, F16 or BF16 tensor of rank 0, 1 (one row) or 2 as an FP32 matrix.
  row_matrix read_matrix(std::string_view name) const {
    const tensor_info& t = tensor(name);
    if (t.dtype != dtype::f32 && t.dtype != dtype::f16 && t.dtype != dtype::bf16)
      qcodec::detail::fail(label_, ": tensor '", name, "': dtype ", dtype_name(t.dtype),
                   " is not F32, F16 or BF16");
    if (t.shape.size() > 2)
      qcodec::detail::fail(label_, ": tensor '", name, "': rank ", t.shape.size(),
                   " is not a matrix (rank 0, 1 or 2)");
    const auto rows = static_cast<index_t>(t.shape.size() == 2 ? t.shape[0] : 1);
    const auto cols = static_cast<index_t>(t.shape.empty() ? 1 : t.shape.back());
    row_matrix out(rows, cols);
    float* next = out.data();
    for_each_mapped_chunk(t.bytes, label_, [&](std::span<const std::byte> chunk) {
      convert_to_float(t.dtype, chunk, next);
      next += chunk.size() / dtype_size(t.dtype);
    });
    return out;
  }

  /// Converts `bytes` of F32/F16/BF16 elements to floats at `out`.
  static void convert_to_float(io::dtype type, std::span<const std::byte> bytes, float* out) {
    const std::size_t count = bytes.size() / dtype_size(type);
    const std::byte* in = bytes.data();
    for (std::size_t i = 0; i < count; ++i) {
      if (type == dtype::f32) {
        std::memcpy(out + i, in + 4 * i, 4);
      } else {
        std::uint16_t bits;
        std::memcpy(&bits, in + 2 * i, 2);
        if (type == dtype::f16) {
          out[i] = static_cast<float>(Eigen::numext::bit_cast<half>(bits));
        } else {  // BF16: the upper half of an FP32
          const std::uint32_t wide = std::uint32_t{bits} << 16;
          std::memcpy(out + i, &wide, 4);
        }
      }
    }
  }

 private:
  [[noreturn]] void fail_tensor(std::string_view name, std::string_view problem) const {
    qcodec::detail::fail(label_, ": tensor '", name, "': ", problem);
  }

  void parse(std::span<const std::byte> bytes) {
    if (bytes.size() < 8)
      qcodec::detail::fail(label_, ": truncated file (", bytes.size(),
                   " bytes, the 8-byte header length is missing)");
    std::uint64_t header_bytes = 0;
    copy_from_mapping(bytes.first(8), reinterpret_cast<std::byte*>(&header_bytes), label_);
    if (header_bytes > bytes.size() - 8)
      qcodec::detail::fail(label_, ": header length ", header_bytes, " runs past the end of the file (",
                   bytes.size(), " bytes)");
    if (header_bytes > max_header_bytes)
      qcodec::detail::fail(label_, ": header length ", header_bytes, " exceeds the limit of ",
                   max_header_bytes, " bytes");
    std::string text(static_cast<std::size_t>(header_bytes), '\0');
    copy_from_mapping(bytes.subspan(8, text.size()), reinterpret_cast<std::byte*>(text.data()), label_);
    if (text.empty() || text.front() != '{')
      qcodec::detail::fail(label_, ": header is not a JSON object (it must start with '{')");
    if (const auto nul = text.find('\0'); nul != std::string::npos)
      qcodec::detail::fail(label_, ": header holds a NUL byte at offset ", nul,
                           " (only whitespace may pad the JSON)");
    detail::check_json_depth(text, label_);
    const nlohmann::json header = nlohmann::json::parse(text, nullptr, false);
    if (header.is_discarded() || !header.is_object())
      qcodec::detail::fail(label_, ": header is not valid JSON");
    if (const auto duplicate = detail::duplicate_json_key(text)) qcodec::detail::fail(label_, ": header holds the key '", *duplicate, "' twice in one object");
    const std::span<const std::byte> data = bytes.subspan(8 + static_cast<std::size_t>(header_bytes));

    struct placed {
      std::uint64_t begin, end;
      std::size_t index;
    };
    std::vector<placed> placement;
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object()) qcodec::detail::fail(label_, ": __metadata__ is not a JSON object");
        for (const auto& [key, value] : entry.items()) {
          if (!value.is_string())
            qcodec::detail::fail(label_, ": __metadata__ value of '", key, "' is not a string");
          metadata_.emplace(key, value.get<std::string>());
        }
        continue;
      }
      if (!entry.is_object()) fail_tensor(name, "entry is not a JSON object");
      const auto dtype_it = entry.find("dtype");
      const auto shape_it = entry.find("shape");
      const auto offsets_it = entry.find("data_offsets");
      if (dtype_it == entry.end() || !dtype_it->is_string())
        fail_tensor(name, "missing or non-string \"dtype\"");
      if (shape_it == entry.end() || !shape_it->is_array())
        fail_tensor(name, "missing or non-array \"shape\"");
      if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
          !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned())
        fail_tensor(name, "\"data_offsets\" is not two non-negative integers");
      tensor_info t;
      t.name = name;
      const auto type = parse_dtype(dtype_it->get<std::string>());
      if (!type) fail_tensor(name, "unsupported dtype \"" + dtype_it->get<std::string>() + "\"");
      t.dtype = *type;
      for (const auto& extent : *shape_it) {
        if (!extent.is_number_unsigned()) fail_tensor(name, "shape holds a non-integer or negative extent");
        const auto value = extent.get<std::uint64_t>();
        // Every extent must fit index_t, even in a zero-element tensor such as [2^63, 0].
        if (value > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()))
          fail_tensor(name, "shape extent " + std::to_string(value) + " exceeds 2^63 - 1");
        t.shape.push_back(value);
      }
      // Refusing overflow: a declared size can never exceed the file anyway.
      const auto bytes = detail::tensor_bytes(t.shape, dtype_size(t.dtype));
      if (!bytes) fail_tensor(name, "declared shape and dtype need more than 2^64 bytes");
      const auto begin = (*offsets_it)[0].get<std::uint64_t>();
      const auto end = (*offsets_it)[1].get<std::uint64_t>();
      if (begin > end) fail_tensor(name, "data_offsets begin after they end");
      if (end > data.size())
        fail_tensor(name, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                              ") run past the data section (" + std::to_string(data.size()) +
                              " bytes)");
      if (*bytes != end - begin)
        fail_tensor(name, "shape and dtype need " + std::to_string(*bytes) +
                              " bytes but data_offsets hold " + std::to_string(end - begin));
      t.bytes = data.subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin));
      placement.push_back({begin, end, tensors_.size()});
      tensors_.push_back(std::move(t));
    }
    // The tensors must tile the data section: sorted by offset, each starts where the
    // previous one ended, and the last ends at the end of the file.
    std::sort(placement.begin(), placement.end(), [](const placed& a, const placed& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t cursor = 0;
    std::string previous;
    for (const placed& p : placement) {
      const std::string& name = tensors_[p.index].name;
      if (p.begin < cursor) fail_tensor(name, "data overlaps tensor '" + previous + "'");
      if (p.begin > cursor)
        fail_tensor(name, "data starts at " + std::to_string(p.begin) + ", leaving a gap after " +
                              std::to_string(cursor));
      cursor = p.end;
      previous = name;
    }
    if (cursor != data.size())
      qcodec::detail::fail(label_, ": ", data.size() - cursor, " bytes after the last tensor's data");
    std::vector<tensor_info> ordered;
    ordered.reserve(tensors_.size());
    for (const placed& p : placement) ordered.push_back(std::move(tensors_[p.index]));
    tensors_ = std::move(ordered);
    for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  }

  mapped_file mapping_;
  std::string label_;
  std::vector<tensor_info> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

/// Collects tensors and metadata, then writes a safetensors file atomically.
class safetensors_writer {
 public:
  /// Adds a tensor whose bytes the writer copies.
  void add_tensor(std::string name, io::dtype type, std::vector<std::uint64_t> shape,
                  std::span<const std::byte> bytes) {
    entry& e = add_entry(std::move(name), type, std::move(shape), bytes.size());
    if (spill_) {
      e.is_borrowed = true;  // written to the spill file straight from `bytes`
      e.borrowed = bytes;
    } else {
      e.owned.assign(bytes.begin(), bytes.end());
    }
    spill(e);
  }

  /// Adds a tensor whose bytes stay with the caller (e.g. in a mapped input file) and must
  /// stay valid until write() returns.
  void add_tensor_view(std::string name, io::dtype type, std::vector<std::uint64_t> shape,
                       std::span<const std::byte> bytes) {
    entry& e = add_entry(std::move(name), type, std::move(shape), bytes.size());
    e.borrowed = bytes;
    e.is_borrowed = true;
    spill(e);
  }

  /// Adds a 1-D tensor holding `values`.
  template <has_dtype T>
  void add_array(std::string name, std::span<const T> values) {
    add_tensor(std::move(name), dtype_of<T>(), {values.size()}, std::as_bytes(values));
  }

  /// Adds an FP32 matrix as a rows x cols tensor of F32, F16 or BF16 (rounded to nearest even).
  void add_matrix(std::string name, matrix_view w, io::dtype type = dtype::f32) {
    const std::size_t count = static_cast<std::size_t>(w.rows() * w.cols());
    if (type != dtype::f32 && type != dtype::f16 && type != dtype::bf16)
      qcodec::detail::fail("tensor '", name, "': a matrix is stored as F32, F16 or BF16, not ",
                   dtype_name(type));
    entry& e = add_entry(std::move(name), type,
                         {static_cast<std::uint64_t>(w.rows()), static_cast<std::uint64_t>(w.cols())},
                         count * dtype_size(type));
    e.owned.resize(count * dtype_size(type));
    for (index_t r = 0; r < w.rows(); ++r)
      for (index_t c = 0; c < w.cols(); ++c) {
        std::byte* out = e.owned.data() + static_cast<std::size_t>(r * w.cols() + c) * dtype_size(type);
        const float value = w(r, c);
        if (type == dtype::f32) {
          std::memcpy(out, &value, 4);
        } else if (type == dtype::f16) {
          const auto bits = Eigen::numext::bit_cast<std::uint16_t>(static_cast<half>(value));
          std::memcpy(out, &bits, 2);
        } else {
          const auto bits = Eigen::numext::bit_cast<std::uint16_t>(static_cast<Eigen::bfloat16>(value));
          std::memcpy(out, &bits, 2);
        }
      }
    spill(e);
  }

  /// Streaming: from now on every tensor's bytes are appended to an unnamed temporary file in
  /// `directory` (open_unnamed_temporary; give the output's directory, so that write() can
  /// copy them with copy_file_range on the same file system) as it is added, and only its
  /// header entry stays in memory; a view's bytes are copied there too, so the caller may
  /// release them at once (release_pages). write() then writes the header and copies the
  /// data: the file is byte for byte what the in-memory writer gives, and the memory held is
  /// that of the largest tensor added, not the file. Tensors added before the call stay in
  /// memory. The spill file takes as much disk space as the data until the writer is gone.
  void stream_through(const std::filesystem::path& directory) {
    if (!spill_) spill_ = std::make_shared<spill_file>(open_unnamed_temporary(directory));
  }

  /// True once stream_through() was called.
  bool streaming() const { return spill_ != nullptr; }

  /// Moves every tensor and metadata entry of `other` (an in-memory writer, e.g. one tensor's
  /// arrays encoded on another thread) to the end of this one, in its order; a streaming
  /// writer spills them. Throws, before anything is moved, on a name this writer holds, a
  /// metadata key both set to different values, or a streaming `other`.
  void append(safetensors_writer&& other) {
    if (other.spill_) qcodec::detail::fail("safetensors_writer::append: the writer appended is streaming");
    for (const entry& e : other.entries_)
      if (contains(e.name)) qcodec::detail::fail("safetensors_writer: tensor '", e.name, "' added twice");
    for (const auto& [key, value] : other.metadata_)
      if (const auto it = metadata_.find(key); it != metadata_.end() && it->second != value)
        qcodec::detail::fail("safetensors_writer: metadata '", key, "' set twice to different values");
    for (entry& e : other.entries_) {
      names_.insert(e.name);
      entries_.push_back(std::move(e));
      spill(entries_.back());
    }
    for (auto& [key, value] : other.metadata_) metadata_[key] = std::move(value);
    other.entries_.clear();
    other.names_.clear();
    other.metadata_.clear();
  }

  /// The tensors added so far: name and data bytes, in file order.
  std::vector<std::pair<std::string, std::uint64_t>> tensor_sizes() const {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    out.reserve(entries_.size());
    for (const entry& e : entries_) out.emplace_back(e.name, e.size());
    return out;
  }

  /// Bytes of the data section (every tensor's bytes; a sharded index's total_size).
  std::uint64_t data_bytes() const { return data_size(); }

  /// Sets a "__metadata__" entry.
  void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

  /// True when a tensor named `name` was added.
  bool contains(std::string_view name) const { return names_.find(name) != names_.end(); }

  /// True when the metadata entry `key` was set.
  bool has_metadata(const std::string& key) const { return metadata_.find(key) != metadata_.end(); }

  /// Bytes write() will produce.
  std::size_t file_size() const { return 8 + header_text().size() + data_size(); }

  /// Writes the file atomically (temporary file, fsync, rename): on failure `path` is untouched.
  /// `check(temporary_path)` may read the complete file before it replaces `path`, and throw to
  /// keep it from doing so (write_file_atomically).
  template <class Check = accept_file>
  void write(const std::filesystem::path& path, Check&& check = {}) const {
    const std::string header = header_text();
    write_file_atomically(path, [&](file_sink& sink) {
      const std::uint64_t length = header.size();
      sink.write(std::as_bytes(std::span(&length, 1)));
      sink.write(std::as_bytes(std::span(header)));
      for (std::size_t i = 0; i < entries_.size();) {
        const entry& e = entries_[i];
        if (!e.is_spilled) {
          sink.write(e.bytes());
          ++i;
          continue;
        }
        // One copy for each run of tensors that lie one after another in the spill file.
        std::uint64_t end = e.spill_offset + e.spill_size;
        std::size_t j = i + 1;
        for (; j < entries_.size() && entries_[j].is_spilled && entries_[j].spill_offset == end; ++j)
          end += entries_[j].spill_size;
        sink.copy_from(spill_->fd, e.spill_offset, end - e.spill_offset);
        i = j;
      }
    }, std::forward<Check>(check));
  }

 private:
  struct entry {
    std::string name;
    io::dtype type;
    std::vector<std::uint64_t> shape;
    std::vector<std::byte> owned;
    std::span<const std::byte> borrowed;
    bool is_borrowed = false;
    bool is_spilled = false;
    std::uint64_t spill_offset = 0, spill_size = 0;
    std::span<const std::byte> bytes() const { return is_borrowed ? borrowed : std::span(owned); }
    std::uint64_t size() const { return is_spilled ? spill_size : bytes().size(); }
  };

  /// The unnamed temporary file of a streaming writer (shared by copies of the writer, which
  /// only append to it).
  struct spill_file {
    explicit spill_file(int descriptor) : fd(descriptor) {}
    spill_file(const spill_file&) = delete;
    spill_file& operator=(const spill_file&) = delete;
    ~spill_file() { ::close(fd); }
    int fd;
    std::uint64_t size = 0;
  };

  /// A streaming writer appends `e`'s bytes to the spill file and lets them go.
  void spill(entry& e) {
    if (!spill_ || e.is_spilled) return;
    const std::span<const std::byte> bytes = e.bytes();
    file_sink sink(spill_->fd, "safetensors_writer: the temporary data file");
    sink.write(bytes);
    e.spill_offset = spill_->size;
    e.spill_size = bytes.size();
    spill_->size += bytes.size();
    e.is_spilled = true;
    e.is_borrowed = false;
    e.borrowed = {};
    std::vector<std::byte>().swap(e.owned);
  }

  entry& add_entry(std::string name, io::dtype type, std::vector<std::uint64_t> shape,
                   std::size_t byte_count) {
    if (name.empty() || name == "__metadata__")
      qcodec::detail::fail("safetensors_writer: invalid tensor name '", name, "'");
    if (contains(name)) qcodec::detail::fail("safetensors_writer: tensor '", name, "' added twice");
    const auto bytes = detail::tensor_bytes(shape, dtype_size(type));
    if (!bytes || *bytes != byte_count)
      qcodec::detail::fail("tensor '", name, "': ", byte_count, " bytes do not match its shape and dtype ",
                   dtype_name(type));
    names_.insert(name);
    entries_.push_back({std::move(name), type, std::move(shape), {}, {}, false});
    return entries_.back();
  }

  std::size_t data_size() const {
    std::size_t total = 0;
    for (const entry& e : entries_) total += e.size();
    return total;
  }

  /// The JSON header, padded with spaces so the data section starts 8-byte aligned. Built as
  /// text, one entry after another (names are unique, add_entry checks): linear in the number
  /// of tensors, where inserting into an ordered JSON object searches it for every key.
  std::string header_text() const {
    std::string text = "{";
    if (!metadata_.empty()) text += "\"__metadata__\":" + nlohmann::json(metadata_).dump();
    std::uint64_t offset = 0;
    for (const entry& e : entries_) {
      const std::uint64_t size = e.size();
      if (text.size() > 1) text += ',';
      text += nlohmann::json(e.name).dump();
      text += ":{\"dtype\":\"";
      text += dtype_name(e.type);
      text += "\",\"shape\":[";
      for (std::size_t i = 0; i < e.shape.size(); ++i) {
        if (i > 0) text += ',';
        text += std::to_string(e.shape[i]);
      }
      text += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + size) + "]}";
      offset += size;
    }
    text += '}';
    text.append((8 - text.size() % 8) % 8, ' ');
    return text;
  }

  std::vector<entry> entries_;
  std::set<std::string, std::less<>> names_;
  std::map<std::string, std::string> metadata_;
  std::shared_ptr<spill_file> spill_;
};

}  // namespace qcodec::inline QCODEC_ABI::io
