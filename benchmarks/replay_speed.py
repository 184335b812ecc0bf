"""Replay speed: whole-process start-up of `pimsim replay` and engine throughput, on 4096 all-bank row MACs
over 32 channels (8.65 M DRAM commands).

    python benchmarks/replay_speed.py [--rows 4096] [--reference-rows 128] [--repeats 3]

1. Whole process, wall clock (best of --repeats), for the broadcast stream (every channel the same) and
   per-channel streams (each row to one channel in turn, so no two channels share a stream): `pimsim replay`
   and `python -m simulator.dram.replay_cli` (the replay command alone, without the other subcommands'
   modules), each with the ahead-of-time kernel (if built: `python -m simulator.dram.aot`) and with Numba's
   JIT cache (PIMSIM_AOT=0).
2. The phases of one such process, measured inside it: imports, config, trace read, kernel load (the
   ahead-of-time module, or Numba's target start-up plus cache load), the replay itself.
3. In-process throughput (DRAM commands per second of replay) of the fast engine on both streams and of the
   reference engine on a prefix (--reference-rows) of the broadcast stream.
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


def mac_trace(rows: int, channels: int, per_channel: bool = False) -> str:
    """All-bank row MACs broadcast to every channel, or (per_channel) each row to one channel in turn, so
    no two channels see the same stream and the channel-class shortcut cannot help."""
    full = (1 << channels) - 1
    if per_channel:
        return "".join(f"AiM MAC_ABK 64 {1 << (r % channels):#x} {r // channels % 16384}\n"
                       for r in range(rows * channels)) + "AiM EOC\n"
    return "".join(f"AiM MAC_ABK 64 {full:#x} {r % 16384}\n" for r in range(rows)) + "AiM EOC\n"


def phases(trace: str) -> dict:
    """Run in a fresh process: time each phase of a replay."""
    t = [time.perf_counter()]
    from simulator.config import load_arch
    from simulator.dram import fast
    from simulator.dram.isa import read_isr
    from simulator.dram.replay import replay
    t.append(time.perf_counter())
    cfg = load_arch("aim_gddr6")
    t.append(time.perf_counter())
    prog = read_isr(trace, cfg.organisation)
    t.append(time.perf_counter())
    kern = fast.kernel(fast_start=True)
    eng = fast.FastEngine(cfg)
    z = prog.op[:1] * 0 + 8  # one host-side instruction (W_GPR): loads the kernel, simulates nothing
    kern(*eng.kernel_args(z, z * 0, z * 0, z * 0, z * 0, False, None))
    t.append(time.perf_counter())
    res = replay(prog, cfg)
    t.append(time.perf_counter())
    names = ("import", "config", "read", "kernel load", "replay")
    out = {n: t[i + 1] - t[i] for i, n in enumerate(names)}
    out["kernel"] = "numba jit" if hasattr(kern, "py_func") else "ahead-of-time"
    out["commands"] = int(res.counts.sum())
    return out


def _best_wall(cmd: list[str], env: dict, repeats: int) -> float:
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        best = wall if best is None else min(best, wall)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--reference-rows", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--phases", metavar="TRACE", help=argparse.SUPPRESS)  # child mode
    args = ap.parse_args()
    if args.phases:
        print(json.dumps(phases(args.phases)))
        return

    from simulator.dram import aot
    built = aot.load() is not None
    print(f"ahead-of-time kernel: {'built' if built else 'not built (python -m simulator.dram.aot)'}")
    modes = (("ahead-of-time", "1"), ("numba jit", "0")) if built else (("numba jit", "0"),)
    with tempfile.TemporaryDirectory() as tmp:
        traces = {}
        for stream, per_ch in (("broadcast", False), ("per-channel", True)):
            traces[stream] = str(Path(tmp) / f"{stream}.isr")
            Path(traces[stream]).write_text(mac_trace(args.rows, 32, per_ch))
        print(f"\n1. whole process, best of {args.repeats} (s)")
        print(f"{'stream':<12} {'kernel':<14} {'pimsim replay':>14} {'replay_cli alone':>17}")
        pimsim = [str(Path(sys.executable).with_name("pimsim"))]
        if not Path(pimsim[0]).exists():
            pimsim = [sys.executable, "-m", "simulator.cli"]
        for stream, path in traces.items():
            for label, flag in modes:
                env = {**os.environ, "PIMSIM_AOT": flag}
                full = _best_wall([*pimsim, "replay", path], env, args.repeats)
                alone = _best_wall([sys.executable, "-m", "simulator.dram.replay_cli", path], env, args.repeats)
                print(f"{stream:<12} {label:<14} {full:>14.3f} {alone:>17.3f}")
        print("\n2. phases inside one process (s)")
        names = ("import", "config", "read", "kernel load", "replay")
        print(f"{'stream':<12} {'kernel':<14} " + " ".join(f"{n:>11}" for n in names))
        for stream, path in traces.items():
            for label, flag in modes:
                env = {**os.environ, "PIMSIM_AOT": flag}
                p = subprocess.run([sys.executable, __file__, "--phases", path], env=env, check=True,
                                   capture_output=True, text=True)
                ph = json.loads(p.stdout)
                print(f"{stream:<12} {ph['kernel']:<14} " + " ".join(f"{ph[n]:>11.3f}" for n in names))

    print("\n3. in-process throughput (kernel already loaded)")
    from simulator.config import load_arch
    from simulator.dram.fast import run_fast
    from simulator.dram.isa import parse_isr
    from simulator.dram.reference import run_reference
    cfg = load_arch("aim_gddr6")
    run_fast(parse_isr(mac_trace(2, 32), cfg.organisation), cfg)
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
