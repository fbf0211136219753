#!/usr/bin/env bash
# Installs the Debian packages qcodec's build, tests and benchmarks need, if any is missing,
# and any packages named as arguments (the AArch64 cross variant's compiler and qemu-user).
set -euo pipefail
packages=(cmake make g++ libeigen3-dev catch2 libbenchmark-dev nlohmann-json3-dev python3 python3-venv
  clang libclang-rt-14-dev "$@")
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
