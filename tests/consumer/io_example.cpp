// The consumer's use of the io headers: an encoded tensor written to a safetensors file and
// read back, decoding to what was written.
#include <cstdio>
#include <filesystem>

#include <qcodec/codecs/linear.hpp>
#include <qcodec/io/encoded_tensors.hpp>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  const qcodec::row_matrix w = qcodec::row_matrix::Random(4, 64);
  using codec = qcodec::linear<4, qcodec::per_group<32>>;
  const auto encoded = codec{}.encode(w, "w");
  qcodec::io::safetensors_writer writer;
  qcodec::io::add_encoded(writer, "w", encoded);
  writer.write(argv[1]);
  const auto file = qcodec::io::safetensors_file::open(argv[1]);
  const qcodec::row_matrix back = qcodec::io::read_encoded<codec>(file, "w").decode();
  std::printf("io example: %s holds %zu tensors\n", argv[1], file.tensors().size());
  return back == encoded.decode() ? 0 : 1;
}
