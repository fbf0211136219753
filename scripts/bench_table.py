#!/usr/bin/env python3
"""Turns bench_linear's JSON output (with repetitions) into the markdown table of
bench/RESULTS.md: medians per case, % of the read bandwidth measured in the same run at the
same thread count, and the GFLOP/s ratio to Eigen FP32 on the same shape, batch and threads."""
import json
import re
import statistics
import sys
from collections import defaultdict

runs = json.load(open(sys.argv[1]))["benchmarks"]
samples = defaultdict(list)
for run in runs:
    if run.get("run_type") == "aggregate":
        continue
    samples[run["run_name"]].append(run)


def median(name, key):
    return statistics.median(r[key] for r in samples[name])


bandwidth = {}
for name in samples:
    m = re.match(r"BM_read_bandwidth/threads:(\d+)", name)
    if m:
        bandwidth[int(m.group(1))] = median(name, "read_B/s")

rows = []
for name in samples:
    m = re.match(r"BM_(.+)_forward/(\d+x\d+)/(\d+)/threads:(\d+)(.*)", name)
    if not m:
        continue
    codec, shape, batch, threads = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
    rows.append((shape, batch, threads, codec, name, m.group(5)))

shape_order = {"11008x4096": 0, "4096x4096": 1, "2048x5632": 2, "768x3072": 3}
rows.sort(key=lambda r: (shape_order.get(r[0], 9), r[1], r[2], r[3] != "eigen-fp32", r[3]))
print("Read bandwidth (median): " + ", ".join(
    f"{t} thread{'s' if t > 1 else ''}: {bandwidth[t] / 1e9:.1f} GB/s" for t in sorted(bandwidth)))
if "BM_int8_dot_peak/threads:1/real_time" in samples:
    print(f"Integer dot peak (median, 1 thread): "
          f"{median('BM_int8_dot_peak/threads:1/real_time', 'GMAC/s'):.1f} G int8 MAC/s")
print()
print("| shape | batch | thr | codec | ms | GFLOP/s | weight GB/s | % read BW | GFLOP/s vs Eigen |")
print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
for shape, batch, threads, codec, name, suffix in rows:
    ms = median(name, "real_time")
    unit = samples[name][0]["time_unit"]
    ms = ms * {"ms": 1, "us": 1e-3, "ns": 1e-6, "s": 1e3}[unit]
    gflops = median(name, "GFLOP/s")
    weight = median(name, "weight_B/s")
    pct = 100 * weight / bandwidth[threads] if threads in bandwidth else float("nan")
    eigen = f"BM_eigen-fp32_forward/{shape}/{batch}/threads:{threads}{suffix}"
    ratio = ""
    if eigen in samples and codec != "eigen-fp32":
        e = median(eigen, "GFLOP/s")
        ratio = f"{median(name, 'GFLOP/s') / e:.2f}x"
    print(f"| {shape} | {batch} | {threads} | {codec} | {ms:.2f} | {gflops:.1f} | {weight / 1e9:.1f} | {pct:.0f}% | {ratio} |")
