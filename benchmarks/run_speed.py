"""Wall time of `pimsim run` over a full generation (context 1 up to the model's limit).

    python benchmarks/run_speed.py [--models gpt2-small,gpt2-xl] [--tokens N]

Prints simulated tokens, simulated time, wall time and simulated DRAM commands per wall second. The first
model's first call includes loading the Numba engine from its cache (or compiling it), reported separately.
"""

from __future__ import annotations

import argparse
import time

from simulator.config import load_arch
from simulator.system.api import load_model_trace, simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="gpt2-small,gpt2-xl")
    ap.add_argument("--tokens", type=int, default=None, help="tokens from context 1 (default: the full context)")
    ap.add_argument("--arch", default="pim_gpt")
    args = ap.parse_args()
    arch = load_arch(args.arch)
    t0 = time.perf_counter()
    simulate(arch, load_model_trace("gpt2-small"), context=1, tokens=1, gpu=None, cpu=None)
    print(f"warm-up (Numba cache load or compile): {time.perf_counter() - t0:.2f} s")
    print(f"{'model':<12} {'tokens':>7} {'sim. time':>12} {'per token':>11} {'wall s':>8} {'DRAM commands':>15} "
          f"{'commands/s':>12}")
    for name in args.models.split(","):
        trace = load_model_trace(name)
        t0 = time.perf_counter()
        o = simulate(arch, trace, context=1, tokens=args.tokens, gpu=None, cpu=None)
        wall = time.perf_counter() - t0
        n = sum(v["total"] for v in o["commands"].values())
        print(f"{name:<12} {o['tokens']:>7} {o['latency_s'] * 1e3:>9.2f} ms {o['per_token_latency_s'] * 1e6:>8.1f} us "
              f"{wall:>8.1f} {n:>15,d} {n / wall:>12,.0f}")


if __name__ == "__main__":
    main()
