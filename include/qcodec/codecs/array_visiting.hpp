#pragma once
/// The const and non-const `visit_arrays(visitor)` every codec storage offers (codec.hpp),
/// written once: a storage derives from array_visiting<itself> and defines the static
/// `visit_arrays_of(self, visitor)` template, which visits self's arrays in its fixed order.

#include "qcodec/config.hpp"

namespace qcodec::inline QCODEC_ABI::detail {

template <class Storage>
struct array_visiting {
  template <class Visitor>
  void visit_arrays(Visitor&& visit) {
    Storage::visit_arrays_of(static_cast<Storage&>(*this), visit);
  }
  template <class Visitor>
  void visit_arrays(Visitor&& visit) const {
    Storage::visit_arrays_of(static_cast<const Storage&>(*this), visit);
  }
};

}  // namespace qcodec::inline QCODEC_ABI::detail
