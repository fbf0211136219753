#pragma once
#include <string>

struct odr_report {
  std::string abi;     // the unit's qcodec ABI namespace
  std::string target;  // the SIMD target its decode ran
  bool bit_exact;      // its decode equals its reference
};

odr_report odr_baseline();
odr_report odr_avx2();
odr_report odr_scalar();
