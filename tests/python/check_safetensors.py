"""Client check: the reference `safetensors` package opens a file qcodec wrote, lists its
tensors and dtypes, and a numpy decoder written from docs/safetensors_layout.md rebuilds
every encoded tensor (linear, two-level and grid codecs) bit-exactly equal to qcodec's own
decoding. Every codec family is covered: linear, two-level, grid (stored and fixed tables),
QINS, the outlier split over any base and the Hadamard-rotated codecs.

usage: check_safetensors.py CLIENT_FILE REFERENCE_FILE [GRID_HPP]
GRID_HPP (default: the repository's include/qcodec/codecs/grid.hpp) is where the fixed grid
tables are read from, as the layout page tells a reader to.
"""
import json
import os
import re
import sys

import numpy as np
from safetensors import safe_open


# The numpy decoders of docs/safetensors_layout.md, verbatim: each decodes the arrays
# `name + "." + array` of a `rows x cols` matrix encoded with `codec`.
def decode_linear(tensors, name, codec, rows, cols):
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


def unpack(stream_rows, count, width):  # (rows, bytes) U8 -> (rows, count) fields
    bits = np.unpackbits(stream_rows, axis=1, bitorder="little")[:, :count * width]
    fields = bits.reshape(stream_rows.shape[0], count, width).astype(np.int32)
    return (fields << np.arange(width, dtype=np.int32)).sum(axis=-1)

def decode_two_level(tensors, name, codec, rows, cols):
    parts = codec.split("-")  # int<B>, 2level, g<G>, q<Q>, s<S>[, asym]
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

def decode_qins(tensors, name, codec, rows, cols):
    bits = int(codec[4:])  # qins8, qins4
    row_bytes = cols if bits == 8 else (cols + 1) // 2
    codes = tensors[name + ".codes"].reshape(rows, row_bytes)
    if bits == 4:  # low nibble = even column, high nibble = odd column
        codes = np.stack([codes & 0xF, codes >> 4], axis=-1).reshape(rows, -1)[:, :cols]
    lut = tensors[name + ".lut"].astype(np.float32)        # 2^bits signed levels
    scales = tensors[name + ".scales"].astype(np.float32)  # one per row
    return (lut[codes] * scales[:, None]).astype(np.float32)

def add_ortho(decoded, tensors, name):  # the outlier split: B + O
    values = tensors[name + ".ortho.values"]
    if values.size == 0:  # an empty stream stores every ortho array empty
        return decoded
    rows, cols = decoded.shape
    offsets = tensors[name + ".ortho.row_offsets"].astype(np.int64)
    columns = tensors[name + (".ortho.columns16" if cols <= 65536 else ".ortho.columns32")]
    row = np.repeat(np.arange(rows), np.diff(offsets))
    scale = tensors[name + ".ortho.scale"].astype(np.float32)[0]
    out = decoded.copy()
    out[row, columns.astype(np.int64)] += values.astype(np.float32) * scale
    return out

def unrotate(decoded_base, signs, block):  # the inverse rotation, qcodec's float32 order
    rows, cols = decoded_base.shape
    negative = np.unpackbits(signs, bitorder="little")[:cols] == 1
    out = decoded_base.astype(np.float32)
    sizes = [block] * (cols // block)
    n, c = block // 2, block * (cols // block)
    while n >= 1:
        if cols - c >= n:
            sizes.append(n); c += n
        n //= 2
    c = 0
    for n in sizes:
        v, h = out[:, c:c + n], 1
        while h < n:  # butterflies: (v[j], v[j + h]) -> (v[j] + v[j + h], v[j] - v[j + h])
            v = v.reshape(rows, n // (2 * h), 2, h)
            v = np.stack([v[:, :, 0] + v[:, :, 1], v[:, :, 0] - v[:, :, 1]], axis=2)
            h *= 2
        v = v.reshape(rows, n) * np.float32(1.0 / np.sqrt(n))
        out[:, c:c + n] = np.where(negative[c:c + n], -v, v)
        c += n
    return out

def decode_as(tensors, name, codec, rows, cols):
    if codec.startswith("outliers+"):
        base = decode_as(tensors, name + ".base", codec[len("outliers+"):], rows, cols)
        return add_ortho(base, tensors, name)
    if codec.startswith("hadamard"):
        block, base_codec = codec[len("hadamard"):].split("+", 1)
        base = decode_as(tensors, name + ".base", base_codec, rows, cols)
        return unrotate(base, tensors[name + ".signs"], int(block))
    if codec.startswith("qins"):
        return decode_qins(tensors, name, codec, rows, cols)
    if codec.startswith("grid"):
        tables = None if codec.endswith("-lut") else \
            fixed_tables(int(codec[4]), 2 if "-t2" in codec else 1)
        return decode_grid(tensors, name, codec, rows, cols, tables)
    if "-2level-" in codec:
        return decode_two_level(tensors, name, codec, rows, cols)
    return decode_linear(tensors, name, codec, rows, cols)

def decode(tensors, metadata, name):
    d = json.loads(metadata["qcodec.tensor." + name])
    assert d["format_version"] == 1
    return decode_as(tensors, name, d["codec"], *d["shape"])


GRID_HPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include",
                        "qcodec", "codecs", "grid.hpp")

def fixed_tables(bits, tables):
    """The compiled-in grid tables, read from grid.hpp: grid_fixed_levels<B> (one table) or
    grid_fixed_pair<B> (two), F32 values printed to 9 digits."""
    source = open(GRID_HPP).read()
    array = "grid_fixed_levels" if tables == 1 else "grid_fixed_pair"
    body = re.search(array + r"<" + str(bits) + r"> = \{([^}]*)\}", source).group(1)
    levels = np.array([float(v.rstrip("f")) for v in body.replace("\n", " ").split(",") if v.strip()],
                      dtype=np.float32)
    assert levels.size == tables << bits
    return levels


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
                "layers.0.up.weight.codes": "U8",
                "layers.2.q.weight.codes": "U8", "layers.2.q.weight.scales": "F32",
                "layers.2.q.weight.lut": "F32", "layers.3.up.weight.base.codes": "U8",
                "layers.3.up.weight.base.scales": "F32", "layers.3.up.weight.ortho.row_offsets": "U32",
                "layers.3.up.weight.ortho.columns16": "U16", "layers.3.up.weight.ortho.columns32": "U32",
                "layers.3.up.weight.ortho.values": "F16", "layers.3.up.weight.ortho.scale": "F32",
                "layers.3.wide.weight.ortho.columns32": "U32", "layers.4.q.weight.seed": "U32",
                "layers.4.q.weight.signs": "U8"}
    for name, dtype in expected.items():
        if dtypes.get(name) != dtype:
            failures.append(f"{name}: dtype {dtypes.get(name)}, expected {dtype}")
    if metadata.get("qcodec.format_version") != "1":
        failures.append("metadata lacks qcodec.format_version = 1")

    encoded = sorted(k[len("qcodec.tensor."):] for k in metadata if k.startswith("qcodec.tensor."))
    families = {"int8", "int4", "int4-2level", "grid", "qins8", "qins4", "outliers+", "hadamard"}
    seen = set()
    for name in encoded:
        codec = json.loads(metadata["qcodec.tensor." + name])["codec"]
        seen |= {f for f in families if codec.startswith(f) or (f == "int4-2level" and "-2level-" in codec)}
    if seen != families:
        failures.append(f"codec families missing from the file: {sorted(families - seen)}")
    # Non-empty ortho streams of both column widths, and an empty one.
    for name, count in {"layers.3.up.weight.ortho.columns16": ">0", "layers.3.wide.weight.ortho.columns32": ">0",
                        "layers.3.t.weight.ortho.values": "0"}.items():
        size = tensors[name].size if name in tensors else -1
        if (count == "0") != (size == 0) or size < 0:
            failures.append(f"{name}: {size} entries, expected {count}")
    if len(encoded) != 20:
        failures.append(f"expected 20 encoded tensors, found {encoded}")
    with safe_open(reference_path, framework="numpy") as ref:
        for name in encoded:
            ours = decode(tensors, metadata, name)
            theirs = ref.get_tensor(name)
            codec = json.loads(metadata["qcodec.tensor." + name])["codec"]
            same = ours.shape == theirs.shape and ours.dtype == theirs.dtype and \
                np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))
            print(f"  decode {name:28s} {codec:40s} {ours.shape} bit-exact: {same}")
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
    if len(sys.argv) > 3:
        GRID_HPP = sys.argv[3]
    sys.exit(main(sys.argv[1], sys.argv[2]))
