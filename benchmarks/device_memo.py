"""The device memo (simulator/dram/memo.py) on whole generations, one `FastEngine.run` call per PIM stage
(the way the PIM-GPT system runs tiles), memo on vs off in the same process, with identical results checked.

    python benchmarks/device_memo.py [--model gpt2-xl] [--tokens N]

Prints, for each setting, the device wall time (stage programs are built once, before timing), the calls,
the memo's hits and misses, the final cycle, and the speed ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from simulator.asic.config import asic_config_from_arch
from simulator.config import load_arch
from simulator.dram.fast import FastEngine
from simulator.dram.tile_driver import run_programs
from simulator.system.api import load_model_trace
from simulator.system.engine import SystemEngine
from simulator.mapping.pim_gpt import PimGptMapping


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gpt2-xl")
    ap.add_argument("--tokens", type=int, default=None, help="tokens from context 1 (default: the full context)")
    ap.add_argument("--arch", default="pim_gpt")
    args = ap.parse_args()
    arch = load_arch(args.arch)
    trace = load_model_trace(args.model)
    pm = PimGptMapping(arch, trace, mapping="pim-gpt", asic=asic_config_from_arch(arch))
    se = SystemEngine(arch, pm)
    n = args.tokens or trace.model.context_limit
    t0 = time.perf_counter()
    se.run(list(range(1, n + 1)), record=True)  # the programs the PIM controller issued (tiles, idle DELAYs)
    programs = se.issued
    print(f"{args.model}: {n} tokens, {len(programs):,d} device programs "
          f"(system run in {time.perf_counter() - t0:.1f} s, not timed below)")
    FastEngine(arch).run(*(np.zeros(1, np.int64),) * 5)  # load the kernel
    print(f"{'memo':<6} {'wall s':>8} {'calls':>9} {'hits':>9} {'misses':>8} {'final cycle':>14}")
    result = {}
    for memo in (False, True):
        dev = FastEngine(arch, memo=memo)
        t0 = time.perf_counter()
        ends = run_programs(dev, programs)
        wall = time.perf_counter() - t0
        result[memo] = (wall, ends, dev.state.channel_counts(), dev.state.bank_open_cycles(dev.state.x))
        h, m = (dev.memo.hits, dev.memo.misses) if dev.memo else (0, 0)
        calls = len(programs)
        print(f"{'on' if memo else 'off':<6} {wall:>8.2f} {calls:>9,d} {h:>9,d} {m:>8,d} {dev.state.x:>14,d}")
    (w_off, e_off, c_off, o_off), (w_on, e_on, c_on, o_on) = result[False], result[True]
    same = e_off == e_on and np.array_equal(c_off, c_on) and o_off == o_on
    print(f"identical stage end cycles, counts and open-bank cycles: {same}; memo speed-up {w_off / w_on:.2f}x")


if __name__ == "__main__":
    main()
