"""Client check: the reference `safetensors` package opens a file qcodec wrote, lists its
tensors and dtypes, and a numpy decoder written from docs/safetensors_layout.md rebuilds
every encoded tensor (linear, two-level and grid codecs) bit-exactly equal to qcodec's own
decoding.

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


# The numpy decoders of docs/safetensors_layout.md's two-level and grid sections, verbatim.
def unpack(stream_rows, count, width):  # (rows, bytes) U8 -> (rows, count) fields
    bits = np.unpackbits(stream_rows, axis=1, bitorder="little")[:, :count * width]
    fields = bits.reshape(stream_rows.shape[0], count, width).astype(np.int32)
    return (fields << np.arange(width, dtype=np.int32)).sum(axis=-1)

def decode_two_level(tensors, metadata, name):
    d = json.loads(metadata["qcodec.tensor." + name])
    rows, cols = d["shape"]
    parts = d["codec"].split("-")  # int<B>, 2level, g<G>, q<Q>, s<S>[, asym]
    b, g, q, s = int(parts[0][3:]), int(parts[2][1:]), int(parts[3][1:]), int(parts[4][1:])
    asym = parts[-1] == "asym"
    nsub, nsup = -(-cols // g), max(1, cols // s)
    codes = unpack(tensors[name + ".codes"].reshape(rows, -1), cols, b)
    m = unpack(tensors[name + ".sub_scales"].reshape(rows, -1), nsub, q)
    if not asym:
        m = m - (1 << (q - 1))
    col = np.arange(cols)
    sup = tensors[name + ".super_scales"].reshape(rows, nsup).astype(np.float32)
    step = (sup[:, np.minimum(col // s, nsup - 1)] * m[:, col // g].astype(np.float32)).astype(np.float32)
    if asym:
        offset = unpack(tensors[name + ".zero_points"].reshape(rows, -1), nsub, b)[:, col // g]
    else:
        offset = 1 << (b - 1)
    return (step * (codes - offset).astype(np.float32)).astype(np.float32)

def unpack_fields(raw, count, bits):
    bitstring = np.unpackbits(raw, axis=1, bitorder="little")[:, : count * bits]
    return (bitstring.reshape(raw.shape[0], count, bits).astype(np.int64) << np.arange(bits)).sum(axis=2)

def decode_grid(tensors, name, codec, rows, cols, fixed_tables=None):
    bits = int(codec[4]); group = int(codec.split("-g")[1].split("-")[0])
    tables = 2 if "-t2" in codec else 1
    blocks = (cols + group - 1) // group
    codes = unpack_fields(tensors[name + ".codes"].reshape(rows, -1), cols, bits)
    levels = tensors[name + ".levels"] if codec.endswith("-lut") else np.float32(fixed_tables)
    levels = levels.astype(np.float32).reshape(tables, 1 << bits)
    col = np.arange(cols)[None, :]
    block = col // group
    if "-2level-" in codec:
        q = int(codec.split("-q")[1].split("-")[0]); s = int(codec.split("-s")[1].split("-")[0])
        m = unpack_fields(tensors[name + ".sub_scales"].reshape(rows, -1), blocks, q) - (1 << (q - 1))
        supers = tensors[name + ".super_scales"].astype(np.float32).reshape(rows, -1)
        super_block = np.minimum(col // s, supers.shape[1] - 1)
        scales = (supers[np.arange(rows)[:, None], super_block] * m[:, block[0]].astype(np.float32)).astype(np.float32)
    else:
        scales = tensors[name + ".scales"].astype(np.float32)[np.arange(rows)[:, None] * blocks + block]
    table = np.zeros((rows, cols), dtype=np.int64)
    if tables == 2:
        table = unpack_fields(tensors[name + ".tables"].reshape(rows, -1), blocks, 1)[:, block[0]]
    return (levels[table, codes] * scales).astype(np.float32)

def decode(tensors, metadata, name):
    d = json.loads(metadata["qcodec.tensor." + name])
    codec = d["codec"]
    if codec.startswith("grid"):
        return decode_grid(tensors, name, codec, *d["shape"])
    if "-2level-" in codec:
        return decode_two_level(tensors, metadata, name)
    return decode_linear(tensors, metadata, name)


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
    if len(encoded) != 10:
        failures.append(f"expected 10 encoded tensors, found {encoded}")
    with safe_open(reference_path, framework="numpy") as ref:
        for name in encoded:
            ours = decode(tensors, metadata, name)
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
