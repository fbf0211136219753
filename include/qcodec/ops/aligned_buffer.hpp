#pragma once
/// A reusable FP32 workspace aligned to a cache line.

#include <cstddef>
#include <cstdint>
#include <memory>

namespace qcodec::detail {

/// Owns `size()` floats starting on a 64-byte boundary; resize reallocates only to grow.
class aligned_buffer {
 public:
  static constexpr std::size_t alignment_floats = 16;

  float* data() { return data_; }
  std::size_t size() const { return size_; }

  void reserve(std::size_t count) {
    if (count <= size_) return;
    raw_ = std::make_unique_for_overwrite<float[]>(count + alignment_floats);
    const auto address = reinterpret_cast<std::uintptr_t>(raw_.get());
    const std::uintptr_t mask = alignment_floats * sizeof(float) - 1;
    data_ = reinterpret_cast<float*>((address + mask) & ~mask);
    size_ = count;
  }

 private:
  std::unique_ptr<float[]> raw_;
  float* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace qcodec::detail
