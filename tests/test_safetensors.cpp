// safetensors reading and writing: plain tensors, encoded matrices of every codec, and the
// rejection of each kind of bad file.

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <future>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qcodec/codecs/codec_list.hpp"
#include "qcodec/io/encoded_tensors.hpp"
#include "qcodec/io/interrupt_cleanup.hpp"
#include "qcodec/io/mapped_copy.hpp"
#include "qcodec/io/safetensors.hpp"
#include "synthetic_weights.hpp"
#include "temp_dir.hpp"
#include "tested_codecs.hpp"

namespace fs = std::filesystem;
using namespace qcodec;
using qcodec::io::dtype;

namespace {

/// A fresh directory per test case, removed afterwards.
struct temp_dir : test::temp_dir {
  temp_dir() : test::temp_dir("qcodec_test_safetensors") {}
};

std::vector<char> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A file image: 8-byte length, `header` text, `data`.
std::string image(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const std::uint64_t length = header.size();
  std::memcpy(out.data(), &length, 8);
  return out + header + data;
}

/// One F32 tensor "t" of shape [2] (8 bytes of data), with `entry` overriding its fields.
std::string one_tensor(const nlohmann::json& overrides, const std::string& data = std::string(8, '\0')) {
  nlohmann::json entry = {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}};
  entry.update(overrides);
  return image(nlohmann::json{{"t", entry}}.dump(), data);
}

/// Opens the file image `bytes` written to disk; the error must name `file` and `needle`.
void require_rejected(const temp_dir& dir, const std::string& bytes, const std::string& needle) {
  const fs::path path = dir / "bad.safetensors";
  write_bytes(path, bytes);
  INFO("expected an error containing: " << needle);
  CHECK_THROWS_WITH(io::safetensors_file::open(path),
                    Catch::Contains(path.string()) && Catch::Contains(needle));
  // The in-memory parser agrees with the mapped one.
  const auto* data = reinterpret_cast<const std::byte*>(bytes.data());
  CHECK_THROWS_AS(io::safetensors_file(std::span(data, bytes.size()), "memory"), qcodec::error);
}

template <class Storage>
std::vector<std::vector<std::byte>> array_bytes(const Storage& s) {
  std::vector<std::vector<std::byte>> out;
  s.visit_arrays([&](std::string_view, const auto& values) {
    const auto bytes = std::as_bytes(std::span(values));
    out.emplace_back(bytes.begin(), bytes.end());
  });
  return out;
}

}  // namespace

TEST_CASE("plain F32, F16 and BF16 tensors round-trip") {
  temp_dir dir;
  const row_matrix w = examples::synthetic_weights(5, 7, examples::weight_family::heavy_tailed, 3);
  io::safetensors_writer writer;
  writer.add_matrix("w32", w);
  writer.add_matrix("w16", w, dtype::f16);
  writer.add_matrix("wbf16", w, dtype::bf16);
  const std::vector<float> bias = {1.5f, -2.0f, 0.25f};
  writer.add_array<float>("bias", bias);
  const float scalar = 3.0f;
  writer.add_tensor("scalar", dtype::f32, {}, std::as_bytes(std::span(&scalar, 1)));
  writer.set_metadata("format", "pt");
  const fs::path path = dir / "plain.safetensors";
  writer.write(path);
  CHECK(fs::file_size(path) == writer.file_size());

  const auto file = io::safetensors_file::open(path);
  REQUIRE(file.tensors().size() == 5);
  CHECK(file.metadata().at("format") == "pt");
  CHECK(file.tensor("w16").dtype == dtype::f16);
  CHECK(file.tensor("wbf16").shape == std::vector<std::uint64_t>{5, 7});
  CHECK(file.read_matrix("w32") == w);
  const row_matrix w16 = file.read_matrix("w16"), wbf16 = file.read_matrix("wbf16");
  for (index_t r = 0; r < w.rows(); ++r)
    for (index_t c = 0; c < w.cols(); ++c) {
      CHECK(w16(r, c) == static_cast<float>(static_cast<half>(w(r, c))));
      CHECK(wbf16(r, c) == static_cast<float>(static_cast<Eigen::bfloat16>(w(r, c))));
    }
  const row_matrix b = file.read_matrix("bias");
  CHECK(b.rows() == 1);
  CHECK(b(0, 1) == -2.0f);
  CHECK(file.read_matrix("scalar")(0, 0) == 3.0f);
  // The data section starts 8-byte aligned.
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, read_bytes(path).data(), 8);
  CHECK(header_length % 8 == 0);
}

TEMPLATE_LIST_TEST_CASE("every codec round-trips through a file byte-identically", "[io]", test::tested_codecs) {
  temp_dir dir;
  const row_matrix w = examples::synthetic_weights(9, 301, examples::weight_family::outlier_columns, 11);
  const auto encoded = TestType{}.encode(w, "layer.weight");
  io::safetensors_writer writer;
  io::add_encoded(writer, "layer.weight", encoded);
  writer.add_matrix("norm.weight", row_matrix::Ones(1, 301));
  const fs::path path = dir / "model.safetensors";
  writer.write(path);

  const auto file = io::safetensors_file::open(path);
  const auto loaded = io::read_encoded<TestType>(file, "layer.weight");
  CHECK(loaded.rows() == encoded.rows());
  CHECK(loaded.cols() == encoded.cols());
  CHECK(array_bytes(loaded.storage()) == array_bytes(encoded.storage()));
  CHECK(loaded.decode() == encoded.decode());
  CHECK(io::decode_tensor(file, "layer.weight") == encoded.decode());
  const auto info = io::encoded_tensor(file, "layer.weight");
  CHECK(info.codec == codec_traits<TestType>::name);
  CHECK(info.byte_size == encoded.byte_size());

  // Saving the reloaded matrix reproduces the file byte for byte.
  io::safetensors_writer again;
  io::add_encoded(again, "layer.weight", loaded);
  again.add_matrix("norm.weight", file.read_matrix("norm.weight"));
  again.write(dir / "again.safetensors");
  CHECK(read_bytes(dir / "again.safetensors") == read_bytes(path));
}

TEST_CASE("a file holds many encoded and plain tensors") {
  temp_dir dir;
  const row_matrix a = examples::synthetic_weights(16, 128, examples::weight_family::gaussian, 1);
  const row_matrix b = examples::synthetic_weights(8, 256, examples::weight_family::heavy_tailed, 2);
  const auto ea = linear<8>{}.encode(a, "a");
  const auto eb = linear<4, per_group<128>>{}.encode(b, "b");
  io::safetensors_writer writer;
  io::add_encoded(writer, "layers.0.a", ea);
  writer.add_matrix("embed", a, dtype::bf16);
  io::add_encoded(writer, "layers.0.b", eb);
  writer.write(dir / "m.safetensors");

  const auto file = io::safetensors_file::open(dir / "m.safetensors");
  const auto encoded = io::encoded_tensors(file);
  REQUIRE(encoded.size() == 2);
  CHECK(encoded[0].name == "layers.0.a");
  CHECK(encoded[0].codec == "int8");
  CHECK(encoded[1].codec == "int4-g128");
  CHECK(encoded[1].arrays == std::vector<std::string>{"codes", "scales"});
  CHECK(io::is_encoded_array(encoded, "layers.0.b.scales"));
  CHECK_FALSE(io::is_encoded_array(encoded, "embed"));
  CHECK(file.metadata().at("qcodec.format_version") == "1");
  CHECK(io::decode_tensor(file, "layers.0.a") == ea.decode());
  CHECK(io::decode_tensor(file, "layers.0.b") == eb.decode());
  CHECK_THROWS_WITH(io::read_encoded<linear<8>>(file, "layers.0.b"),
                    Catch::Contains("stored with codec 'int4-g128'"));
  CHECK_THROWS_WITH(io::decode_tensor(file, "embed"), Catch::Contains("no encoded tensor 'embed'"));
}

TEST_CASE("a streaming writer writes the in-memory writer's bytes, holding none of them") {
  const temp_dir dir;
  // Plain tensors (copied, views, matrices in three dtypes), an empty one, encoded tensors
  // added directly and through append(), metadata from both.
  const std::vector<std::int64_t> ids = {7, 8, 9, 10};  // a view's bytes outlive write()
  const auto fill = [&](io::safetensors_writer& w, bool through_append) {
    w.set_metadata("format", "pt");
    const std::vector<float> a = {1.0f, -2.5f, 3.25f};
    w.add_array<float>("a", a);
    w.add_tensor_view("ids", dtype::i64, {4}, std::as_bytes(std::span(ids)));
    w.add_tensor("empty", dtype::f32, {0}, {});
    const row_matrix m = examples::synthetic_weights(33, 70, examples::weight_family::heavy_tailed, 5);
    w.add_matrix("m16", m, dtype::f16);
    w.add_matrix("mbf", m, dtype::bf16);
    io::safetensors_writer staged;
    io::add_encoded(staged, "q", linear<4, per_group<128>>{}.encode(m, "q"));
    if (through_append) {
      w.append(std::move(staged));
    } else {
      io::add_encoded(w, "q", linear<4, per_group<128>>{}.encode(m, "q"));
    }
    w.add_matrix("m32", m);
  };
  io::safetensors_writer in_memory, streaming, appended;
  streaming.stream_through(dir.path);
  appended.stream_through(dir.path);
  CHECK(streaming.streaming());
  CHECK_FALSE(in_memory.streaming());
  fill(in_memory, false);
  fill(streaming, false);
  fill(appended, true);
  CHECK(streaming.file_size() == in_memory.file_size());
  CHECK(streaming.data_bytes() == in_memory.data_bytes());
  CHECK(streaming.tensor_sizes() == in_memory.tensor_sizes());
  in_memory.write(dir.path / "memory.safetensors");
  streaming.write(dir.path / "streaming.safetensors");
  appended.write(dir.path / "appended.safetensors");
  CHECK(read_bytes(dir.path / "streaming.safetensors") == read_bytes(dir.path / "memory.safetensors"));
  CHECK(read_bytes(dir.path / "appended.safetensors") == read_bytes(dir.path / "memory.safetensors"));
  // The spill file is unnamed: the directory holds the three outputs only.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 3);
  // append() refuses a name twice, before moving anything.
  io::safetensors_writer twice;
  twice.add_array<float>("a", std::vector<float>{1.0f});
  io::safetensors_writer other;
  other.add_array<float>("b", std::vector<float>{2.0f});
  other.add_array<float>("a", std::vector<float>{3.0f});
  CHECK_THROWS_WITH(twice.append(std::move(other)), Catch::Contains("'a' added twice"));
  CHECK_FALSE(twice.contains("b"));
}

TEST_CASE("the writer rejects bad tensors before touching the disk") {
  io::safetensors_writer writer;
  writer.add_matrix("w", row_matrix::Zero(2, 2));
  CHECK_THROWS_WITH(writer.add_matrix("w", row_matrix::Zero(2, 2)), Catch::Contains("added twice"));
  CHECK_THROWS_WITH(writer.add_matrix("__metadata__", row_matrix::Zero(1, 1)),
                    Catch::Contains("invalid tensor name"));
  const std::vector<std::byte> three(3);
  CHECK_THROWS_WITH(writer.add_tensor("x", dtype::f32, {1}, three), Catch::Contains("do not match"));
  CHECK_THROWS_WITH(writer.add_matrix("u", row_matrix::Zero(1, 1), dtype::u8),
                    Catch::Contains("F32, F16 or BF16"));
  // 2^32 x 2^32 elements wrap a 64-bit count to 0, which would match 0 bytes.
  CHECK_THROWS_WITH(writer.add_tensor("big", dtype::u8, {std::uint64_t{1} << 32, std::uint64_t{1} << 32}, {}),
                    Catch::Contains("do not match"));
  CHECK_FALSE(writer.contains("big"));

  // An encoded tensor that clashes with a tensor or a description already added adds nothing.
  const row_matrix w = examples::synthetic_weights(4, 64, examples::weight_family::gaussian, 3);
  io::safetensors_writer encoded;
  encoded.add_matrix("w.scales", w);
  const std::size_t size = encoded.file_size();
  CHECK_THROWS_WITH(io::add_encoded(encoded, "w", linear<8>{}.encode(w)),
                    Catch::Contains("tensor 'w.scales' added twice"));
  CHECK_FALSE(encoded.contains("w.codes"));
  io::add_encoded(encoded, "v", outlier_split<linear<8>>{}.encode(w));
  const std::size_t with_v = encoded.file_size();
  CHECK(with_v > size);
  CHECK_THROWS_WITH(io::add_encoded(encoded, "v", linear<8>{}.encode(w)),
                    Catch::Contains("encoded tensor 'v' added twice"));
  CHECK_FALSE(encoded.contains("v.codes"));
  CHECK(encoded.file_size() == with_v);
}

TEST_CASE("writes are atomic: a failure leaves the target and the directory untouched") {
  temp_dir dir;
  const fs::path target = dir / "out.safetensors";
  write_bytes(target, "previous content");
  const std::string payload = "new content";
  CHECK_THROWS_WITH(io::write_file_atomically(target, [&](io::file_sink& sink) {
                      sink.write(std::as_bytes(std::span(payload)));
                      qcodec::detail::fail("producer failed half-way");
                    }),
                    Catch::Contains("producer failed half-way"));
  const auto content = read_bytes(target);
  CHECK(std::string(content.begin(), content.end()) == "previous content");
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);

  io::safetensors_writer writer;
  writer.add_matrix("w", row_matrix::Ones(2, 3));
  CHECK_THROWS_WITH(writer.write(dir / "missing_dir" / "x.safetensors"),
                    Catch::Contains("cannot create a temporary file"));
  CHECK_FALSE(fs::exists(dir / "missing_dir"));

  // A check of the complete temporary file that throws keeps it from replacing the target.
  fs::path checked;
  CHECK_THROWS_WITH(writer.write(target, [&](const fs::path& temp) {
                      checked = temp;
                      CHECK(temp != target);
                      CHECK(io::safetensors_file::open(temp).read_matrix("w") == row_matrix::Ones(2, 3));
                      qcodec::detail::fail("check refused");
                    }),
                    Catch::Contains("check refused"));
  CHECK_FALSE(checked.empty());
  CHECK_FALSE(fs::exists(checked));
  CHECK(read_bytes(target) == content);

  writer.write(target);
  CHECK(io::safetensors_file::open(target).read_matrix("w") == row_matrix::Ones(2, 3));
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);

  // A 250-byte name (NAME_MAX is 255) still gets a temporary file of a valid length.
  const fs::path long_target = dir / (std::string(238, 'n') + ".safetensors");
  writer.write(long_target);
  CHECK(io::safetensors_file::open(long_target).read_matrix("w") == row_matrix::Ones(2, 3));
}

TEST_CASE("an atomic write keeps the target's mode, and a new file gets 0666 less the umask") {
  temp_dir dir;
  const fs::path target = dir / "private.safetensors";
  write_bytes(target, "previous content");
  fs::permissions(target, fs::perms::owner_read | fs::perms::owner_write);
  io::safetensors_writer writer;
  writer.add_matrix("w", row_matrix::Ones(2, 3));
  writer.write(target);
  CHECK(fs::status(target).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(io::safetensors_file::open(target).read_matrix("w") == row_matrix::Ones(2, 3));

  const ::mode_t mask = ::umask(027);  // a umask that 0644 would ignore
  writer.write(dir / "fresh.safetensors");
  ::umask(mask);
  CHECK(fs::status(dir / "fresh.safetensors").permissions() ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
}

TEST_CASE("malformed files are rejected with an error naming the file and the problem") {
  temp_dir dir;
  require_rejected(dir, "", "truncated file");
  require_rejected(dir, "1234", "truncated file");
  require_rejected(dir, image("{}", "").substr(0, 9), "runs past the end of the file");
  {
    std::string huge_length = image("{}", "");
    const std::uint64_t length = ~std::uint64_t{0};
    std::memcpy(huge_length.data(), &length, 8);
    require_rejected(dir, huge_length, "runs past the end of the file");
  }
  require_rejected(dir, image("not json at all", ""), "not a JSON object");
  require_rejected(dir, image("[1, 2]", ""), "not a JSON object");
  require_rejected(dir, image("{\"t\": {\"dtype\": ", ""), "not valid JSON");
  require_rejected(dir, image("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}", ""),
                   "nests deeper");
  require_rejected(dir, image(R"({"__metadata__": {"k": 1}})", ""), "is not a string");
  require_rejected(dir, image(R"({"t": 5})", ""), "tensor 't': entry is not a JSON object");
  require_rejected(dir, one_tensor({{"dtype", "F8_E9M9"}}), "tensor 't': unsupported dtype");
  require_rejected(dir, one_tensor({{"dtype", nullptr}}), "tensor 't': missing or non-string \"dtype\"");
  require_rejected(dir, one_tensor({{"shape", {-2}}}), "tensor 't': shape holds a non-integer or negative");
  require_rejected(dir, one_tensor({{"shape", {3}}}), "tensor 't': shape and dtype need 12 bytes");
  require_rejected(dir, one_tensor({{"dtype", "F16"}}), "tensor 't': shape and dtype need 4 bytes");
  require_rejected(dir, one_tensor({{"shape", {std::uint64_t{1} << 40, std::uint64_t{1} << 40}}}),
                   "tensor 't': declared shape and dtype need more than 2^64 bytes");
  require_rejected(dir, one_tensor({{"shape", {std::uint64_t{1} << 62}}}),
                   "tensor 't': declared shape and dtype need more than 2^64 bytes");
  // Zero elements, so no byte count catches it; read_matrix would cast 2^63 to a negative index_t.
  require_rejected(dir, one_tensor({{"shape", {std::uint64_t{1} << 63, 0}}, {"data_offsets", {0, 0}}}, ""),
                   "tensor 't': shape extent 9223372036854775808 exceeds 2^63 - 1");
  require_rejected(dir, one_tensor({{"data_offsets", {0, 16}}, {"shape", {4}}}),
                   "tensor 't': data_offsets [0, 16) run past the data section (8 bytes)");
  require_rejected(dir, one_tensor({{"data_offsets", {8, 0}}}), "tensor 't': data_offsets begin after");
  require_rejected(dir, one_tensor({{"data_offsets", {0, -8}}}), "not two non-negative integers");
  require_rejected(dir, one_tensor({{"data_offsets", {0}}}), "not two non-negative integers");
  require_rejected(dir, one_tensor(nlohmann::json::object(), std::string(12, '\0')), "4 bytes after the last tensor");
  require_rejected(dir, one_tensor({{"data_offsets", {4, 12}}}, std::string(12, '\0')),
                   "tensor 't': data starts at 4, leaving a gap");
  const auto two = [](int second_begin) {
    nlohmann::json header = {
        {"a", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
        {"b", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {second_begin, second_begin + 8}}}}};
    return image(header.dump(), std::string(16, '\0'));
  };
  require_rejected(dir, two(4), "tensor 'b': data overlaps tensor 'a'");
  require_rejected(dir, two(0), "data overlaps tensor");
  const std::string good = two(8);
  CHECK_NOTHROW(io::safetensors_file(std::as_bytes(std::span(good)), "ok"));
  CHECK_THROWS_WITH(io::safetensors_file::open(dir / "no_such_file"), Catch::Contains("cannot open"));
  CHECK_THROWS_WITH(io::safetensors_file::open(dir.path), Catch::Contains("not a regular file"));
}

TEST_CASE("read_matrix rejects tensors that are not floating-point matrices") {
  io::safetensors_writer writer;
  const std::vector<std::uint8_t> bytes(24);
  writer.add_array<std::uint8_t>("codes", bytes);
  const std::vector<float> cube(6);
  writer.add_tensor("cube", dtype::f32, {1, 2, 3}, std::as_bytes(std::span(cube)));
  temp_dir dir;
  writer.write(dir / "x.safetensors");
  const auto file = io::safetensors_file::open(dir / "x.safetensors");
  CHECK_THROWS_WITH(file.read_matrix("codes"), Catch::Contains("tensor 'codes': dtype U8"));
  CHECK_THROWS_WITH(file.read_matrix("cube"), Catch::Contains("tensor 'cube': rank 3"));
  CHECK_THROWS_WITH(file.read_matrix("nope"), Catch::Contains("no tensor 'nope'"));
}

TEST_CASE("corrupt encoded tensors are rejected with the file and tensor named") {
  temp_dir dir;
  const row_matrix w = examples::synthetic_weights(4, 64, examples::weight_family::gaussian, 5);
  using codec_type = linear<4, per_group<32>, float, symmetry::asymmetric>;
  const auto encoded = codec_type{}.encode(w, "w");
  const fs::path path = dir / "enc.safetensors";

  // Rewrites the file with `edit` applied to the arrays and the description.
  const auto rewrite = [&](auto edit) {
    auto s = encoded.storage();
    nlohmann::json description = {{"codec", "int4-g32-asym"}, {"format_version", 1},
                                  {"shape", {4, 64}}, {"arrays", {"codes", "scales", "zero_points"}}};
    io::safetensors_writer writer;
    edit(s, description, writer);
    s.visit_arrays([&](std::string_view array, const auto& values) {
      using element = typename std::remove_cvref_t<decltype(values)>::value_type;
      if (!writer.contains("w." + std::string(array)))
        writer.add_array<element>("w." + std::string(array), std::span<const element>(values));
    });
    writer.set_metadata("qcodec.tensor.w", description.dump());
    writer.write(path);
    return io::safetensors_file::open(path);
  };
  const auto require_bad = [&](auto edit, const std::string& needle) {
    const auto file = rewrite(edit);
    INFO("expected an error containing: " << needle);
    CHECK_THROWS_WITH(io::read_encoded<codec_type>(file, "w"),
                      Catch::Contains(path.string()) && Catch::Contains("tensor 'w'") &&
                          Catch::Contains(needle));
    CHECK_THROWS_WITH(io::decode_tensor(file, "w"), Catch::Contains(needle));
  };

  const auto file = rewrite([](auto&, auto&, auto&) {});
  CHECK(io::read_encoded<codec_type>(file, "w").decode() == encoded.decode());

  require_bad([](auto&, auto& d, auto&) { d["codec"] = "int5-g7"; }, "codec 'int5-g7'");
  require_bad([](auto&, auto& d, auto&) { d["format_version"] = 2; }, "format version 2");
  require_bad([](auto&, auto& d, auto&) { d.erase("format_version"); }, "no integer \"format_version\"");
  require_bad([](auto&, auto& d, auto&) { d["shape"] = {0, 64}; }, "positive extents");
  require_bad([](auto&, auto& d, auto&) { d["shape"] = {std::uint64_t{1} << 40, 64}; },
              "positive extents");
  require_bad([](auto&, auto& d, auto&) { d["arrays"] = {"codes", "scales", "offsets"}; },
              "no tensor 'w.offsets'");
  require_bad([](auto&, auto& d, auto&) { d["arrays"] = {"codes", "scales"}; },
              "does not match codec 'int4-g32-asym' at array 'zero_points'");
  require_bad([](auto&, auto& d, auto&) { d["arrays"] = {"codes", "scales", "zero_points", "codes"}; },
              "metadata lists 4 arrays");
  require_bad([](auto&, auto& d, auto&) { d["arrays"] = {"scales", "codes", "zero_points"}; },
              "does not match codec");
  // Shape and arrays disagree: validate() reports it.
  require_bad([](auto&, auto& d, auto&) { d["shape"] = {5, 64}; }, "codes holds 128 elements");
  require_bad([](auto& s, auto&, auto&) { s.scales[3] = std::nanf(""); }, "scale 3 is nan");
  require_bad([](auto& s, auto&, auto&) { s.zero_points[1] = 200; }, "zero point 1 is 200");
  require_bad(
      [](auto& s, auto&, io::safetensors_writer& writer) {
        std::vector<half> scales(s.scales.begin(), s.scales.end());
        writer.add_array<half>("w.scales", scales);
      },
      "array 'w.scales' has dtype F16, expected F32");
  require_bad(
      [](auto& s, auto&, io::safetensors_writer& writer) {
        writer.add_tensor("w.codes", dtype::u8, {4, 32}, std::as_bytes(std::span(s.codes)));
      },
      "array 'w.codes' has rank 2");
  {
    io::safetensors_writer writer;
    writer.add_matrix("x", w);
    writer.set_metadata("qcodec.tensor.x", "{not json");
    writer.write(path);
    const auto bad = io::safetensors_file::open(path);
    CHECK_THROWS_WITH(io::encoded_tensors(bad), Catch::Contains("tensor 'x': encoded description is not"));
  }
}

namespace {

/// Names in `dir`, sorted.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

/// lstat's mode of `path` (0 when absent).
::mode_t lstat_mode(const fs::path& path) {
  struct ::stat status {};
  return ::lstat(path.c_str(), &status) == 0 ? status.st_mode : 0;
}

}  // namespace

TEST_CASE("the output must be a regular file or absent: links and special files are refused untouched") {
  temp_dir dir;
  write_bytes(dir / "real.safetensors", "the link's target");
  REQUIRE(::symlink("real.safetensors", (dir / "link.safetensors").c_str()) == 0);
  REQUIRE(::symlink("missing.safetensors", (dir / "dangling.safetensors").c_str()) == 0);
  REQUIRE(::mkfifo((dir / "fifo.safetensors").c_str(), 0644) == 0);
  fs::create_directory(dir / "directory.safetensors");
  const int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  ::sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string socket_path = (dir / "socket.safetensors").string();
  REQUIRE(socket_path.size() < sizeof address.sun_path);
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  REQUIRE(::bind(listener, reinterpret_cast<const ::sockaddr*>(&address), sizeof address) == 0);
  // A character device like /dev/null (1, 3), made only as root (mknod needs CAP_MKNOD).
  const bool device = ::mknod((dir / "null.safetensors").c_str(), S_IFCHR | 0666, ::makedev(1, 3)) == 0;

  struct refusal {
    std::string name, needle;
  };
  std::vector<refusal> refusals = {{"link.safetensors", "is a symbolic link"},
                                   {"dangling.safetensors", "is a symbolic link"},
                                   {"fifo.safetensors", "is a FIFO"},
                                   {"directory.safetensors", "is a directory"},
                                   {"socket.safetensors", "is a socket"}};
  if (device) refusals.push_back({"null.safetensors", "is a character device"});
  const auto before = listing(dir.path);
  io::safetensors_writer writer;
  writer.add_matrix("w", row_matrix::Ones(2, 3));
  for (const refusal& r : refusals) {
    INFO(r.name);
    const ::mode_t mode = lstat_mode(dir / r.name);
    bool produced = false;
    CHECK_THROWS_WITH(io::write_file_atomically(dir / r.name, [&](io::file_sink&) { produced = true; }),
                      Catch::Contains((dir / r.name).string()) && Catch::Contains(r.needle) &&
                          Catch::Contains("must be a regular file or absent"));
    CHECK_FALSE(produced);  // refused before any work
    CHECK_THROWS_WITH(writer.write(dir / r.name), Catch::Contains(r.needle));
    CHECK_THROWS_WITH(io::require_regular_or_absent(dir / r.name), Catch::Contains(r.needle));
    CHECK(lstat_mode(dir / r.name) == mode);
  }
  ::close(listener);
  CHECK(listing(dir.path) == before);
  const auto target = read_bytes(dir / "real.safetensors");
  CHECK(std::string(target.begin(), target.end()) == "the link's target");
  // Absent and regular targets are written.
  CHECK_FALSE(io::require_regular_or_absent(dir / "new.safetensors"));
  writer.write(dir / "new.safetensors");
  writer.write(dir / "real.safetensors");
  CHECK(io::require_regular_or_absent(dir / "real.safetensors"));
  CHECK(io::safetensors_file::open(dir / "real.safetensors").read_matrix("w") == row_matrix::Ones(2, 3));
}

TEST_CASE("a FIFO as input is refused at once, without waiting for a writer") {
  temp_dir dir;
  const fs::path fifo = dir / "fifo.safetensors";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  auto opening = std::async(std::launch::async, [&] {
    try {
      io::safetensors_file::open(fifo);
      return std::string("opened");
    } catch (const qcodec::error& e) {
      return std::string(e.what());
    }
  });
  const bool finished = opening.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  if (!finished) {
    // A blocking open waits for a writer: be one, so the thread ends and the test reports.
    const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (writer >= 0) ::close(writer);
  }
  CHECK(finished);
  const std::string message = opening.get();
  CHECK_THAT(message, Catch::Contains(fifo.string()) && Catch::Contains("not a regular file"));
}

TEST_CASE("the writer is not quadratic in the number of tensors: 200k zero-size tensors") {
  // The ordered-JSON writer took 47 s for 200k tensors on a quiet machine (40k: 1.7 s); the
  // text-built header takes well under a second. 5 s leaves a busy 2-core machine, or a Debug
  // build, a wide margin and still fails the quadratic writer by a factor of about 10.
  temp_dir dir;
  constexpr std::size_t count = 200'000;
  const auto start = std::chrono::steady_clock::now();
  io::safetensors_writer writer;
  for (std::size_t i = 0; i < count; ++i) writer.add_tensor("t" + std::to_string(i), dtype::f32, {0}, {});
  writer.write(dir / "many.safetensors");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 5.0);  // the writing alone; the read below checks the file, untimed
  const auto file = io::safetensors_file::open(dir / "many.safetensors");
  CHECK(file.tensors().size() == count);
  CHECK(file.tensor("t199999").shape == std::vector<std::uint64_t>{0});
}

TEST_CASE("the reader refuses what the reference refuses: duplicate keys and bytes after the JSON") {
  temp_dir dir;
  require_rejected(dir, image(R"({"__metadata__": {"a": "1"}, "__metadata__": {"b": "2"}})", ""),
                   "key '__metadata__' twice");
  require_rejected(dir, image(R"({"__metadata__": {"a": "1", "a": "2"}})", ""), "key 'a' twice");
  const std::string entry = R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";
  require_rejected(dir, image("{\"t\": " + entry + ", \"t\": " + entry + "}", std::string(8, '\0')),
                   "key 't' twice");
  require_rejected(dir, image(std::string("{}\0junk", 7), ""), "NUL byte at offset 2");
  require_rejected(dir, image(std::string("{}\0\0\0\0\0\0", 8), ""), "NUL byte");
  require_rejected(dir, image("{}  junk", ""), "not valid JSON");
  const std::string padded = image("{}      ", "");
  CHECK_NOTHROW(io::safetensors_file(std::as_bytes(std::span(padded)), "padded"));
}

TEST_CASE("BOOL and FP8 tensors are read and written as bytes") {
  temp_dir dir;
  const nlohmann::json header = {
      {"mask", {{"dtype", "BOOL"}, {"shape", {3}}, {"data_offsets", {0, 3}}}},
      {"e4m3", {{"dtype", "F8_E4M3"}, {"shape", {2, 2}}, {"data_offsets", {3, 7}}}},
      {"e5m2", {{"dtype", "F8_E5M2"}, {"shape", {2}}, {"data_offsets", {7, 9}}}},
      {"e8m0", {{"dtype", "F8_E8M0"}, {"shape", {1}}, {"data_offsets", {9, 10}}}}};
  const std::string data = std::string("\x01\x00\x01", 3) + "\x38\xb8\x40\x7e" + "\x3c\xc0" + "\x7f";
  write_bytes(dir / "fp8.safetensors", image(header.dump(), data));
  const auto file = io::safetensors_file::open(dir / "fp8.safetensors");
  REQUIRE(file.tensors().size() == 4);
  CHECK(file.tensor("mask").dtype == dtype::boolean);
  CHECK(file.tensor("e4m3").dtype == dtype::f8_e4m3);
  CHECK(file.tensor("e4m3").shape == std::vector<std::uint64_t>{2, 2});
  CHECK(file.tensor("e5m2").dtype == dtype::f8_e5m2);
  CHECK(file.tensor("e8m0").dtype == dtype::f8_e8m0);
  CHECK(file.tensor("e4m3").element_count() == 4);
  CHECK(std::memcmp(file.tensor("e5m2").bytes.data(), "\x3c\xc0", 2) == 0);
  CHECK_THROWS_WITH(file.read_matrix("e4m3"), Catch::Contains("dtype F8_E4M3 is not F32, F16 or BF16"));
  // Written back byte for byte.
  io::safetensors_writer writer;
  for (const io::tensor_info& t : file.tensors()) writer.add_tensor_view(t.name, t.dtype, t.shape, t.bytes);
  writer.write(dir / "again.safetensors");
  const auto again = io::safetensors_file::open(dir / "again.safetensors");
  for (const io::tensor_info& t : file.tensors()) {
    const io::tensor_info& copy = again.tensor(t.name);
    CHECK(copy.dtype == t.dtype);
    CHECK(copy.shape == t.shape);
    CHECK(std::equal(copy.bytes.begin(), copy.bytes.end(), t.bytes.begin(), t.bytes.end()));
  }
  require_rejected(dir, one_tensor({{"dtype", "F4"}}), "unsupported dtype \"F4\"");
}

TEST_CASE("a file truncated while mapped gives an error, not SIGBUS") {
  temp_dir dir;
  const fs::path path = dir / "shrinking.safetensors";
  const row_matrix w = examples::synthetic_weights(64, 256, examples::weight_family::gaussian, 4);
  io::safetensors_writer writer;
  writer.add_matrix("w", w);
  io::add_encoded(writer, "e", linear<8>{}.encode(w, "e"));
  writer.write(path);
  const auto file = io::safetensors_file::open(path);
  REQUIRE(file.read_matrix("w") == w);
  REQUIRE(::truncate(path.c_str(), 0) == 0);
  // (A macro: a combined Catch matcher holds references to its parts.)
#define SHRANK Catch::Contains(path.string()) && Catch::Contains("the file shrank while it was being read")
  CHECK_THROWS_WITH(file.read_matrix("w"), SHRANK);
  CHECK_THROWS_WITH(io::read_encoded<linear<8>>(file, "e"), SHRANK);
  CHECK_THROWS_WITH(io::decode_tensor(file, "e"), SHRANK);
  const auto& t = file.tensor("w");
  CHECK_THROWS_WITH(io::equal_mapped(t.bytes, t.bytes, file.label()), SHRANK);
  std::vector<std::byte> copy(t.bytes.size());
  CHECK_THROWS_WITH(io::copy_from_mapping(t.bytes, copy.data(), file.label()), SHRANK);
  // Writing the mapped bytes on: write(2) reports the fault as an error, and nothing is written.
  io::safetensors_writer passing_on;
  passing_on.add_tensor_view("w", t.dtype, t.shape, t.bytes);
  CHECK_THROWS_WITH(passing_on.write(dir / "out.safetensors"), Catch::Contains("could not be read"));
  CHECK_FALSE(fs::exists(dir / "out.safetensors"));
  CHECK(listing(dir.path) == std::vector<std::string>{"shrinking.safetensors"});
#undef SHRANK
}

TEST_CASE("the temporary file is unnamed while written: a kill leaves nothing behind") {
  temp_dir dir;
  write_bytes(dir / "out.safetensors", "previous");
  fs::path checked;
  io::write_file_atomically(
      dir / "out.safetensors",
      [&](io::file_sink& sink) {
        const std::string text = "new content";
        sink.write(std::as_bytes(std::span(text)));
        CHECK(listing(dir.path) == std::vector<std::string>{"out.safetensors"});
      },
      [&](const fs::path& temp) {
        checked = temp;
        CHECK(listing(dir.path) == std::vector<std::string>{"out.safetensors"});
        const auto content = read_bytes(temp);
        CHECK(std::string(content.begin(), content.end()) == "new content");
      });
  CHECK_FALSE(checked.empty());
  const auto content = read_bytes(dir / "out.safetensors");
  CHECK(std::string(content.begin(), content.end()) == "new content");

  // A child killed half-way through a write (SIGKILL, then SIGTERM with the cleanup handlers
  // installed) leaves the directory as it was.
  for (const int signal_number : {SIGKILL, SIGTERM}) {
    INFO("signal " << signal_number);
    std::fflush(nullptr);
    const ::pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      io::remove_temporaries_on_interrupt();
      io::write_file_atomically(dir / "out.safetensors", [&](io::file_sink& sink) {
        const std::string text(1 << 20, 'x');
        sink.write(std::as_bytes(std::span(text)));
        ::raise(signal_number);
      });
      ::_exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == signal_number);
    CHECK(listing(dir.path) == std::vector<std::string>{"out.safetensors"});
    CHECK(read_bytes(dir / "out.safetensors") == content);
  }
}

TEST_CASE("SIGTERM removes a registered named temporary file, then ends the process by SIGTERM") {
  // The mechanism behind named temporaries (file systems without O_TMPFILE).
  temp_dir dir;
  const fs::path temp = dir / ".out.safetensors.tmp-test";
  std::fflush(nullptr);
  const ::pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    write_bytes(temp, "partial");
    io::detail::register_temporary(temp.string());
    io::remove_temporaries_on_interrupt();
    ::raise(SIGTERM);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  CHECK_FALSE(fs::exists(temp));
  CHECK(listing(dir.path).empty());
  // An unregistered slot is not removed.
  write_bytes(temp, "kept");
  const int slot = io::detail::register_temporary(temp.string());
  REQUIRE(slot >= 0);
  io::detail::unregister_temporary(slot);
  io::detail::unlink_registered_temporaries();
  CHECK(fs::exists(temp));
}
