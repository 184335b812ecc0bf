"""The fast engine's kernel alone, on the programs of a system run: what `pimsim run` spends in the device.

    python benchmarks/tile_kernel.py [--model gpt2-small] [--tokens 100] [--repeats 6]

Records the programs (tiles and host DELAYs) the system engine issues for a generation from context 1, then
replays them one `FastEngine.tile_runner` call each, as the system engine does, on a fresh device per repeat.
Prints the best CPU time over the repeats (the kernel only: recording, mapping and SimPy are outside the
timed loop) and the device's final cycle, which must not change between versions of the kernel. To compare
two versions, run this script from each checkout in turn, several times, and compare the medians.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from simulator.asic import asic_config_from_arch
from simulator.config import load_arch
from simulator.dram.fast import FastEngine
from simulator.mapping.pim_gpt import PimGptMapping
from simulator.system.api import load_model_trace
from simulator.system.engine import SystemEngine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gpt2-small")
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--arch", default="pim_gpt")
    args = ap.parse_args()
    arch = load_arch(args.arch)
    mapping = PimGptMapping(arch, load_model_trace(args.model), asic=asic_config_from_arch(arch))
    system = SystemEngine(arch, mapping)
    system.run(list(range(1, args.tokens + 1)), record=True)
    progs = [tuple(np.ascontiguousarray(a, np.int64) for a in (p.op, p.opsize, p.mask, p.bank, p.row))
             for p in system.issued]
    best, x = None, None
    for _ in range(args.repeats):
        dev = FastEngine(arch)
        run_tile = dev.tile_runner()
        t0 = time.process_time()
        for p in progs:
            run_tile(*p)
        cpu = time.process_time() - t0
        best = cpu if best is None else min(best, cpu)
        x = dev.state.x
    print(f"{'model':<12} {'tokens':>7} {'programs':>9} {'final cycle':>13} {'kernel CPU s':>13}")
    print(f"{args.model:<12} {args.tokens:>7} {len(progs):>9} {x:>13,d} {best:>13.4f}")


if __name__ == "__main__":
    main()
