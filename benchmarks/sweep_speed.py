"""Sweep throughput: the eight PIM-GPT models x a 16-point channel/bank grid x contexts 128 and 1024.

    python benchmarks/sweep_speed.py                  # 256 points, with 1 and then 2 local workers
    python benchmarks/sweep_speed.py --workers 2 --tokens 2 --keep out/bench

Each run starts from an empty result directory (nothing reused), so the wall time covers every point:
spec expansion, one fresh process per point, the simulation, and the commit + CSV rewrite after each point.
Points that cannot run (a model that does not fit in 4 channels of few banks) fail fast and are counted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from simulator.sweep.runner import run_sweep
from simulator.sweep.spec import validate_spec
from simulator.trace.zoo import PIM_GPT_MODELS

CHANNELS = [4, 8, 16, 32]
BANK_GROUPS = [1, 2, 4, 8]  # x 4 banks per group = 4, 8, 16, 32 banks per channel


def spec(tokens: int, contexts: list[int]) -> dict:
    return {
        "name": "sweep_speed",
        "arch": "pim_gpt",
        "models": list(PIM_GPT_MODELS),
        "run": {"tokens": tokens},
        "axes": [
            {"key": "organisation.channels", "values": CHANNELS},
            {"name": "banks_per_channel", "labels": [4 * g for g in BANK_GROUPS],
             "values": [{"organisation.bank_groups": g, "energy.dram.banks.value": 4 * g} for g in BANK_GROUPS]},
            {"key": "context", "values": contexts},
        ],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, action="append", help="worker counts to time (default: 1 and 2)")
    ap.add_argument("--tokens", type=int, default=1, help="tokens generated per point (default 1: GPT-2's "
                                                         "context limit is 1024)")
    ap.add_argument("--contexts", type=int, nargs="+", default=[128, 1024])
    ap.add_argument("--keep", type=Path, default=None, help="keep the result directories under this folder")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    sweep = validate_spec(spec(args.tokens, args.contexts), "benchmarks/sweep_speed.py")
    rows = []
    with tempfile.TemporaryDirectory(prefix="pimsim-sweep-bench-") as tmp:
        base = args.keep or Path(tmp)
        for workers in args.workers or [1, 2]:
            out = base / f"workers{workers}"
            if (out / "sweep.sqlite").exists():
                print(f"{out} holds results already; choose an empty --keep folder", file=sys.stderr)
                return 2
            t0 = time.perf_counter()
            s = run_sweep(sweep, out, workers=workers, progress=args.progress)
            wall = time.perf_counter() - t0
            rows.append((workers, s.points, s.ok, s.failed, wall))
            print(f"workers={workers}: {s.points} points in {wall:.1f} s", file=sys.stderr)
    print(f"sweep speed: {len(PIM_GPT_MODELS)} models x {len(CHANNELS)} channel counts x {len(BANK_GROUPS)} bank "
          f"counts x contexts {args.contexts}, {args.tokens} token(s) per point")
    print(f"{'workers':>7} {'points':>6} {'ok':>4} {'failed':>6} {'wall s':>8} {'points/s':>8} {'s/point':>8}")
    for workers, n, ok, failed, wall in rows:
        print(f"{workers:7d} {n:6d} {ok:4d} {failed:6d} {wall:8.1f} {n / wall:8.2f} {wall / n:8.2f}")
    if len(rows) > 1:
        print(f"speedup with {rows[-1][0]} workers over {rows[0][0]}: {rows[0][4] / rows[-1][4]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
