"""Benchmark the MAC kernels: GMAC/s of each kernel vs NumPy on GPT-2 GEMV shapes, and compile vs cache-load time.

    python benchmarks/mac_kernels.py [--reps 7] [--quick]

Shapes are written n_in x n_out as in GPT-2's Conv1D weights (768x2304 = the QKV projection of gpt2-small,
3072x768 its FFN down, 1600x6400 / 6400x1600 GPT2-XL's FFN up / down); the kernels take W[n_out, n_in].
Times are medians over --reps calls after one warm-up call (compilation never inside the timed loop).
Baselines: bf16 -> NumPy converts to float32 and calls matmul (BLAS, all its threads) on every call;
int8/int4 -> NumPy widens to int32 and calls matmul. Compile and cache-load times come from fresh
subprocesses sharing a new NUMBA_CACHE_DIR: the first compiles and writes the cache, the second loads it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.kernels import (MacNumerics, QuantSpec, bf16_to_f32, f32_to_bf16, gemv_bf16,  # noqa: E402
                               gemv_int_sums, quantize_activations, quantize_weights)

SHAPES = [(768, 2304), (3072, 768), (1600, 6400), (6400, 1600)]  # (n_in, n_out)


def _median_time(fn, reps: int) -> float:
    fn()  # warm-up (compiles on first use)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def bench_shape(n_in: int, n_out: int, reps: int) -> list[dict]:
    rng = np.random.default_rng(0)
    Wf = rng.standard_normal((n_out, n_in)).astype(np.float32)
    xf = rng.standard_normal(n_in).astype(np.float32)
    W, x = f32_to_bf16(Wf), f32_to_bf16(xf)
    Wz = W.copy()
    Wz[:, : n_in // 2] = 0  # half the bursts all-zero
    macs = n_in * n_out
    rows = []

    t_np = _median_time(lambda: bf16_to_f32(W) @ bf16_to_f32(x), reps)
    cases = [
        ("bf16 tree fp32-acc (default)", lambda: gemv_bf16(W, x, MacNumerics())),
        ("bf16 tree bf16-acc", lambda: gemv_bf16(W, x, MacNumerics(accumulator="bf16"))),
        ("bf16 lane fp32-acc", lambda: gemv_bf16(W, x, MacNumerics(order="lane"))),
        ("bf16 serial fp32-acc", lambda: gemv_bf16(W, x, MacNumerics(order="serial"))),
        ("bf16 tree zero-skip (50% zero)", lambda: gemv_bf16(Wz, x, MacNumerics(zero_skipping=True))),
    ]
    rows.append(dict(kernel="numpy bf16->f32 + matmul", t=t_np, base=t_np))
    for name, fn in cases:
        rows.append(dict(kernel=name, t=_median_time(fn, reps), base=t_np))

    xq, _ = quantize_activations(xf)
    for bits in (8, 4):
        qm = quantize_weights(Wf, QuantSpec(weight_bits=bits, granularity="channel"))
        stored = qm.packed()
        x32 = xq.astype(np.int32)
        t_base = _median_time(lambda: qm.q.astype(np.int32) @ x32, reps)
        rows.append(dict(kernel=f"numpy int{bits} widen + matmul", t=t_base, base=t_base))
        rows.append(dict(kernel=f"int{bits} x int8 -> int32", base=t_base,
                         t=_median_time(lambda: gemv_int_sums(stored, xq, bits, n_in), reps)))
    for r in rows:
        r.update(shape=f"{n_in}x{n_out}", gmacs=macs / r["t"] / 1e9, speedup=r["base"] / r["t"])
    return rows


COMPILE_SCRIPT = """
import time, json, numpy as np
t0 = time.perf_counter()
from simulator.kernels import gemv_bf16, gemv_int_sums, f32_to_bf16, MacNumerics
t1 = time.perf_counter()
W = f32_to_bf16(np.ones((8, 64), np.float32)); x = f32_to_bf16(np.ones(64, np.float32))
gemv_bf16(W, x, MacNumerics())
t2 = time.perf_counter()
gemv_int_sums(np.ones((8, 64), np.int8), np.ones(64, np.int8), 8, 64)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "bf16": t2 - t1, "int": t3 - t2}))
"""


def bench_compile() -> tuple[dict, dict]:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT], env=env, capture_output=True, text=True,
                                 check=True, cwd=ROOT)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs[0], runs[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="first shape only")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    first, second = bench_compile()
    rows = []
    for n_in, n_out in SHAPES[:1] if args.quick else SHAPES:
        rows += bench_shape(n_in, n_out, args.reps)
    if args.json:
        print(json.dumps({"compile": first, "cached": second, "rows": rows}, indent=2))
        return 0
    print(f"{'shape':>10}  {'kernel':<32} {'ms':>8} {'GMAC/s':>7} {'vs NumPy':>8}")
    for r in rows:
        print(f"{r['shape']:>10}  {r['kernel']:<32} {r['t'] * 1e3:8.3f} {r['gmacs']:7.2f} {r['speedup']:7.2f}x")
    print()
    print("first call (compile + write cache) vs cached load, in a fresh process each (seconds):")
    print(f"  {'':<10} {'compile':>8} {'cached':>8}")
    for k in ("bf16", "int"):
        print(f"  {k + ' gemv':<10} {first[k]:8.2f} {second[k]:8.3f}")
    print(f"  (import of simulator.kernels: {first['import']:.2f} s / {second['import']:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
