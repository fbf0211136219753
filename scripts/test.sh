#!/usr/bin/env bash
# Installs what is missing, builds and runs the whole test suite.
# Variant from the environment: QCODEC_SIMD=dispatch|native|avx2|avx512|none (default dispatch:
# every SIMD target compiled, the tests run each one the CPU supports),
# QCODEC_SANITIZE=1 for AddressSanitizer + UndefinedBehaviorSanitizer,
# QCODEC_ARCH=aarch64 for the NEON target: a cross build (Debian's g++-aarch64-linux-gnu) whose
# tests run under qemu-user, by default the kernel tests only (every codec family and the
# integer path against their references on every target, the linear family as its covering
# list of tests/tested_codecs.hpp: test_codec_contract, test_integer_gemv; and the slab kernels: test_slab_products),
# QCODEC_TEST_TARGETS="test_a test_b" to build and run only those test executables.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${QCODEC_ARCH:-native}
simd=${QCODEC_SIMD:-dispatch}
sanitize=${QCODEC_SANITIZE:-0}
build=build/test-$simd
# -O2, not Release's -O3: what most engines ship, at 60% of the compile time (test_codec_contract
# 176 s against 300 s on one core); the benchmarks' figures come from a Release build (-O3).
args=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" -DQCODEC_SIMD="$simd")
if [[ $arch == aarch64 ]]; then
  bash scripts/install_deps.sh g++-aarch64-linux-gnu qemu-user
  build=build/test-aarch64
  QCODEC_TEST_TARGETS=${QCODEC_TEST_TARGETS:-test_codec_contract test_integer_gemv test_slab_products}
elif [[ $sanitize == 1 ]]; then
  bash scripts/install_deps.sh libomp-14-dev
else
  bash scripts/install_deps.sh
fi
if [[ $sanitize == 1 ]]; then
  build=$build-sanitize
  # clang: two thirds of g++'s compile time under the sanitizers (test_codec_contract 186 s
  # against 281 s); the other variants build with g++, so both compilers build every test.
  export CXX=${CXX:-clang++}
  # -g1: line tables for the reports at two thirds of the compile time of -g.
  flags="-O1 -g1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
  # CMAKE_BUILD_TYPE left empty: Debug would add -g. The per-codec tests run over a list that
  # covers every code path (tests/tested_codecs.hpp); the default variant runs every codec.
  args=(-DCMAKE_BUILD_TYPE= -DQCODEC_SIMD="$simd" "-DCMAKE_CXX_FLAGS=$flags" -DQCODEC_TEST_CODECS=covering
    -DQCODEC_BUILD_DEMOS=OFF)
fi
# The NEON kernels' tests run over the covering codec list too (tests/tested_codecs.hpp).
[[ $arch == aarch64 ]] && args+=(-DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake -DQCODEC_TEST_CODECS=covering)
# Variants other than the default skip what the default already proves (benchmarks build,
# every header compiles on its own, the Python client check and the fuzz run, the CUDA backend:
# nvcc does not take the sanitizer flags of CMAKE_CXX_FLAGS).
if [[ $simd != dispatch || $sanitize == 1 || $arch == aarch64 ]]; then
  args+=(-DQCODEC_BUILD_BENCHMARKS=OFF -DQCODEC_HEADER_CHECK=OFF -DQCODEC_CLIENT_CHECKS=OFF -DQCODEC_CUDA=OFF)
fi
echo "== qcodec tests: arch=$arch SIMD=$simd sanitize=$sanitize ($build)"
cmake -S . -B "$build" "${args[@]}" >/dev/null
targets=${QCODEC_TEST_TARGETS:-}
if [[ -n $targets ]]; then
  # shellcheck disable=SC2086
  cmake --build "$build" -j "$(nproc)" --target $targets
  ctest --test-dir "$build" -j "$(nproc)" --output-on-failure --no-tests=error -R "^(${targets// /|}):"
else
  cmake --build "$build" -j "$(nproc)"
  ctest --test-dir "$build" -j "$(nproc)" --output-on-failure --no-tests=error
fi
