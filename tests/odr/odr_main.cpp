// Links three translation units built with different flags: the x86-64 baseline with every
// target (dispatched), AVX2 flags with AVX-512 left out, and scalar only. Each must run the
// kernels it asked for, in its own ABI namespace; the dispatched one the best the CPU has.
#include <cpuid.h>

#include <cstdio>
#include <string>

#include "odr_report.hpp"

namespace {
int failures = 0;
/// F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports does not know "f16c".
bool has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
void expect(bool ok, const char* what, const std::string& detail) {
  std::printf("%s %s: %s\n", ok ? "ok  " : "FAIL", what, detail.c_str());
  failures += !ok;
}
}  // namespace

int main() {
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi");
  const std::string best = avx512 ? "avx512" : avx2 ? "avx2" : "scalar";

  const odr_report baseline = odr_baseline();
  expect(baseline.target == best, "baseline unit dispatches to the best target", baseline.target + " (CPU best " + best + ")");
  expect(baseline.bit_exact, "baseline unit decodes like its reference", baseline.abi);

  const odr_report scalar = odr_scalar();
  expect(scalar.target == "scalar", "scalar-only unit runs scalar", scalar.target);
  expect(scalar.bit_exact, "scalar-only unit decodes like its reference", scalar.abi);
  expect(scalar.abi != baseline.abi, "scalar-only and baseline units have distinct ABI namespaces", scalar.abi + " vs " + baseline.abi);

  if (avx2) {  // the unit's own code needs AVX2: call it only where the CPU has it
    const odr_report unit = odr_avx2();
    expect(unit.target == "avx2", "AVX2 unit (AVX-512 left out) runs avx2", unit.target);
    expect(unit.bit_exact, "AVX2 unit decodes like its reference", unit.abi);
    expect(unit.abi != baseline.abi && unit.abi != scalar.abi, "AVX2 unit has its own ABI namespace", unit.abi);
  } else {
    std::printf("skip AVX2 unit: this CPU has no AVX2\n");
  }
  return failures == 0 ? 0 : 1;
}
