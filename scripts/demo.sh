#!/usr/bin/env bash
# Installs what is missing, builds the demo (Release) and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DQCODEC_BUILD_TESTS=OFF -DQCODEC_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/release --target qcodec_demo -j "$(nproc)"
./build/release/examples/qcodec_demo
