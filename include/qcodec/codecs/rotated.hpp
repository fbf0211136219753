#pragma once
/// Incoherence processing, calibration-free: each row is rotated along K by a seeded,
/// block-diagonal randomized Hadamard transform R (core/hadamard.hpp) before the base codec
/// encodes it, so a large weight or an outlier input column is spread over its block.
///
/// Stored: the base codec's storage of W Rᵀ (every row rotated), the seed and the signs it
/// generates (validation regenerates them: a wrong seed, or corrupted signs, is refused).
/// decode_rows returns W: the base's decode with the inverse rotation applied to each row.
/// dual_stream_linear never applies that inverse: it rotates the activations once per forward
/// (x Wᵀ = (x Rᵀ)(W Rᵀ)ᵀ; hadamard::rotate of each row with `block` and the stored signs) and
/// runs the base codec's own paths, its integer domain included.
///
/// Unlike every other codec, a zero weight does not stay exactly zero and a small weight may
/// change sign: the base's error is spread over the block by the inverse rotation.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qcodec/config.hpp"
#include "qcodec/codecs/array_visiting.hpp"
#include "qcodec/codecs/capabilities.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/codecs/linear.hpp"
#include "qcodec/codecs/outlier_split.hpp"
#include "qcodec/core/hadamard.hpp"

namespace qcodec::inline QCODEC_ABI {

/// Block: 64 columns by default. Measured on heavy-tailed 256 x 4096 weights (bench/RESULTS.md):
/// int4-2level-g16 gains 3.3 dB at 64, 3.1 at 256, 3.7 at 16, grid4-2level-g16 1.7 at 64 and
/// 1.8 at 32; smaller blocks also cost less per activation (log2 of the block per element).
template <codec Base, index_t Block = 64>
class rotated {
  static_assert(Block >= 2 && Block <= 4096 && (Block & (Block - 1)) == 0,
                "qcodec: the rotation block is a power of two, 2 to 4096 columns");
  static_assert(!is_outlier_split<Base>,
                "qcodec: rotate the split's base instead (the ortho stream is sparse in W's columns)");

 public:
  using base_codec = Base;
  static constexpr index_t block = Block;
  static constexpr std::uint32_t default_seed = 0x9E3779B9u;

  struct storage : detail::array_visiting<storage> {
    index_t rows = 0, cols = 0;
    typename Base::storage base;
    std::vector<std::uint32_t> seed;  // one value
    std::vector<std::uint8_t> signs;  // ceil(cols / 8) bytes, hadamard::signs_for(seed, cols)

    template <class Self, class Visitor>
    static void visit_arrays_of(Self& self, Visitor& visit) {
      self.base.visit_arrays([&](std::string_view array, auto& values) {
        const std::string full = "base." + std::string(array);
        visit(std::string_view(full), values);
      });
      visit("seed", self.seed);
      visit("signs", self.signs);
    }
  };

  /// Encode options of the base codec.
  Base base{};
  /// Seed of the signs (stored with the tensor).
  std::uint32_t seed = default_seed;

  encoded_matrix<rotated> encode(matrix_view w, std::string_view name = "weight") const {
    detail::require_finite_nonempty(w, name);
    storage s;
    s.rows = w.rows();
    s.cols = w.cols();
    s.seed.assign(1, seed);
    s.signs = hadamard::signs_for(seed, s.cols);
    row_matrix turned = w;
    for (index_t r = 0; r < s.rows; ++r) {
      hadamard::rotate(turned.row(r).data(), s.cols, Block, s.signs.data());
      // |R w| <= sqrt(n) max |w|: only weights near FLT_MAX / 64 can overflow.
      if (!turned.row(r).allFinite())
        detail::fail("tensor '", name, "': row ", r, " overflows FP32 when rotated (|w| up to ",
                     w.row(r).cwiseAbs().maxCoeff(), ")");
    }
    s.base = base.encode(turned, name).storage();
    return encoded_matrix<rotated>(std::move(s));
  }

  static void decode_rows(const storage& s, index_t first, index_t last, float* out) {
    Base::decode_rows(s.base, first, last, out);
    for (index_t r = first; r < last; ++r) hadamard::unrotate(out + (r - first) * s.cols, s.cols, Block, s.signs.data());
  }

  static void validate(const storage& s, std::string_view name) {
    if (s.base.rows != s.rows || s.base.cols != s.cols)
      detail::fail("tensor '", name, "': base and rotated shapes differ");
    Base::validate(s.base, name);
    if (s.seed.size() != 1) detail::fail("tensor '", name, "': seed holds ", s.seed.size(), " values, expected 1");
    if (s.signs != hadamard::signs_for(s.seed[0], s.cols))
      detail::fail("tensor '", name, "': signs (", s.signs.size(), " bytes) are not those of seed ", s.seed[0]);
  }

  static std::size_t byte_size(const storage& s) {
    return Base::byte_size(s.base) + s.seed.size() * sizeof(std::uint32_t) + s.signs.size();
  }
};

/// True for rotated codecs, whose op rotates its activations.
template <class C>
inline constexpr bool is_rotated = false;
template <class Base, index_t Block>
inline constexpr bool is_rotated<rotated<Base, Block>> = true;

// is_linear is false: W = Ŵ' R is not an integer grid in W's own columns; the op runs the
// base (linear or not) in the rotated domain.
template <class Base, index_t Block>
struct codec_traits<rotated<Base, Block>> {
  static constexpr int bits = codec_traits<Base>::bits;
  static constexpr bool is_linear = false;
  static constexpr index_t block_size = codec_traits<Base>::block_size;
  static constexpr index_t bytes_per_block = codec_traits<Base>::bytes_per_block;
  static constexpr auto name_text = [] {
    detail::fixed_name<64> n;
    n.append("hadamard");
    n.append_number(Block);
    n.append("+");
    n.append(codec_traits<Base>::name);
    return n;
  }();
  static constexpr std::string_view name = name_text;
};

static_assert(wrapping_codec<rotated<linear<4, per_group<32>>>> && !fused_dot_codec<rotated<linear<4, per_group<32>>>>);

}  // namespace qcodec::inline QCODEC_ABI
