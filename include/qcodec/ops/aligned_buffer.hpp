#pragma once
/// A reusable workspace aligned to a cache line.

#include <cstddef>
#include <cstdint>
#include <memory>

#include "qcodec/config.hpp"

namespace qcodec::inline QCODEC_ABI::detail {

/// Owns `size()` values of T starting on a 64-byte boundary; reserve reallocates only to grow
/// and leaves new contents uninitialised.
template <class T>
class aligned_array {
 public:
  static constexpr std::size_t alignment_bytes = 64;

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }

  void reserve(std::size_t count) {
    if (count <= size_) return;
    constexpr std::size_t padding = (alignment_bytes + sizeof(T) - 1) / sizeof(T);
    raw_ = std::make_unique_for_overwrite<T[]>(count + padding);
    const auto address = reinterpret_cast<std::uintptr_t>(raw_.get());
    const std::uintptr_t mask = alignment_bytes - 1;
    data_ = reinterpret_cast<T*>((address + mask) & ~mask);
    size_ = count;
  }

 private:
  std::unique_ptr<T[]> raw_;
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

using aligned_buffer = aligned_array<float>;

}  // namespace qcodec::inline QCODEC_ABI::detail
