"""Replay speed of both engines on a large AiM ISR trace: 4096 all-bank row MACs over 32 channels.

    python benchmarks/replay_speed.py [--rows 4096] [--reference-rows 128]

Prints DRAM commands per wall second. The fast engine is warmed up first (Numba compile / cache load is
reported separately, never timed with the replay). The reference engine is timed on a prefix of the
same trace (--reference-rows) because it is a readable command-by-command model, not a fast one.
"""

from __future__ import annotations

import argparse
import time

from simulator.config import load_arch
from simulator.dram.fast import run_fast
from simulator.dram.isa import parse_isr
from simulator.dram.reference import run_reference


def mac_trace(rows: int, channels: int, per_channel: bool = False) -> str:
    """All-bank row MACs broadcast to every channel, or (per_channel) each row to one channel in turn, so
    no two channels see the same stream and the channel-class shortcut cannot help."""
    full = (1 << channels) - 1
    if per_channel:
        return "".join(f"AiM MAC_ABK 64 {1 << (r % channels):#x} {r // channels % 16384}\n"
                       for r in range(rows * channels)) + "AiM EOC\n"
    return "".join(f"AiM MAC_ABK 64 {full:#x} {r % 16384}\n" for r in range(rows)) + "AiM EOC\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--reference-rows", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = load_arch("aim_gddr6")
    t0 = time.perf_counter()
    run_fast(parse_isr(mac_trace(2, 32), cfg.organisation), cfg)
    warm = time.perf_counter() - t0
    print(f"fast engine first call (Numba compile or cache load): {warm:.2f} s")
    print(f"{'engine':<10} {'stream':<12} {'rows':>6} {'DRAM commands':>14} {'cycles':>12} {'wall s':>9} "
          f"{'commands/s':>14}")
    for engine, rows, per_ch in (("fast", args.rows, False), ("fast", args.rows, True),
                                 ("reference", args.reference_rows, False)):
        prog = parse_isr(mac_trace(rows, 32, per_ch), cfg.organisation)
        run = run_fast if engine == "fast" else run_reference
        best = None
        for _ in range(args.repeats if engine == "fast" else 1):
            t0 = time.perf_counter()
            res = run(prog, cfg)
            wall = time.perf_counter() - t0
            best = wall if best is None else min(best, wall)
        n = int(res.counts.sum())
        stream = "per-channel" if per_ch else "broadcast"
        print(f"{engine:<10} {stream:<12} {rows:>6} {n:>14,d} {res.cycles:>12,d} {best:>9.4f} {n / best:>14,.0f}")


if __name__ == "__main__":
    main()
