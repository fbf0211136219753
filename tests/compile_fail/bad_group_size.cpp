// Must not compile: a group size other than 32, 64, 128 or 256.
#include <qcodec/codecs/linear.hpp>

int main() { return static_cast<int>(qcodec::linear<4, qcodec::per_group<100>>::max_code); }
