"""Client check: the reference `safetensors` package opens a file qcodec wrote, lists its
tensors and dtypes, and a numpy decoder written from docs/safetensors_layout.md rebuilds
every encoded tensor bit-exactly equal to qcodec's own decoding.

usage: check_safetensors.py CLIENT_FILE REFERENCE_FILE
"""
import json
import sys

import numpy as np
from safetensors import safe_open


def decode_linear(tensors, metadata, name):
    """The numpy decoder of docs/safetensors_layout.md, verbatim."""
    d = json.loads(metadata["qcodec.tensor." + name])
    assert d["format_version"] == 1
    rows, cols = d["shape"]
    codec = d["codec"]
    bits = 4 if codec.startswith("int4") else 8
    row_bytes = cols if bits == 8 else (cols + 1) // 2
    codes = tensors[name + ".codes"].reshape(rows, row_bytes)
    if bits == 4:  # low nibble = even column, high nibble = odd column
        codes = np.stack([codes & 0xF, codes >> 4], axis=-1).reshape(rows, -1)[:, :cols]
    group = cols
    if "-g" in codec:
        group = int(codec.split("-g")[1].split("-")[0])
    groups = (cols + group - 1) // group
    block = np.arange(cols) // group + (np.arange(rows)[:, None] * groups)
    if "-tensor" in codec:
        block = np.zeros((rows, cols), dtype=np.int64)
    scales = tensors[name + ".scales"].astype(np.float32)[block]
    offset = tensors[name + ".zero_points"].astype(np.int32)[block] if "-asym" in codec \
        else 1 << (bits - 1)
    return (codes.astype(np.int32) - offset).astype(np.float32) * scales


def main(client_path, reference_path):
    failures = []
    with safe_open(client_path, framework="numpy") as f:
        metadata = f.metadata()
        names = list(f.keys())
        dtypes = {name: f.get_slice(name).get_dtype() for name in names}
        # numpy has no bfloat16: BF16 tensors are listed, not loaded.
        tensors = {name: f.get_tensor(name) for name in names if dtypes[name] != "BF16"}
    print(f"{client_path}: {len(names)} tensors")
    for name in names:
        print(f"  {name:32s} {dtypes[name]:5s} {f_shape(tensors, name)}")

    expected = {"embed.weight": "F32", "norm.weight": "F16", "lm_head.weight": "BF16",
                "layers.0.q.weight.codes": "U8", "layers.0.q.weight.scales": "F32",
                "layers.0.down.weight.scales": "F16", "layers.0.down.weight.zero_points": "U8",
                "layers.0.up.weight.codes": "U8"}
    for name, dtype in expected.items():
        if dtypes.get(name) != dtype:
            failures.append(f"{name}: dtype {dtypes.get(name)}, expected {dtype}")
    if metadata.get("qcodec.format_version") != "1":
        failures.append("metadata lacks qcodec.format_version = 1")

    encoded = sorted(k[len("qcodec.tensor."):] for k in metadata if k.startswith("qcodec.tensor."))
    if len(encoded) != 5:
        failures.append(f"expected 5 encoded tensors, found {encoded}")
    with safe_open(reference_path, framework="numpy") as ref:
        for name in encoded:
            ours = decode_linear(tensors, metadata, name)
            theirs = ref.get_tensor(name)
            codec = json.loads(metadata["qcodec.tensor." + name])["codec"]
            same = ours.shape == theirs.shape and ours.dtype == theirs.dtype and \
                np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))
            print(f"  decode {name:28s} {codec:16s} {ours.shape} bit-exact: {same}")
            if not same:
                failures.append(f"{name}: numpy decoding differs from qcodec's")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("client check passed")
    return 0


def f_shape(tensors, name):
    return tuple(tensors[name].shape) if name in tensors else "(not loaded)"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
