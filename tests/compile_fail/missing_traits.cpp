// Must not compile: a type without a codec_traits specialisation queried as a codec.
#include <qcodec/codecs/codec.hpp>

struct not_a_codec {};

int main() { return qcodec::codec_traits<not_a_codec>::bits; }
