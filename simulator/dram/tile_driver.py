"""Drive the device one PIM stage at a time, the way the PIM-GPT system runs tiles: each stage's program is
one `FastEngine.run` call, and an ASIC stage in between is a host delay (the device's next-arrival cycle
moves on, exactly as a DELAY instruction would move it). Used by the memo test and benchmark to exercise
many small calls from the same few programs."""

from __future__ import annotations

import numpy as np


def run_stages(dev, stages, delay_cycles) -> list[int]:
    """Run `stages` (objects with .program or None, and .asic_cycles) on `dev`; returns each stage's end
    cycle (the cycle in which the instruction after it may reach the channels)."""
    a = dev.state.arrays
    ends = []
    for s in stages:
        if s.program is None:
            a["scal"][0] += max(1, delay_cycles(s.asic_cycles))  # Op.DELAY semantics (simulator/dram/fast.py)
        else:
            p = s.program
            xa = np.zeros(len(p.op), np.int64)
            dev.run(p.op, p.opsize, p.mask, p.bank, p.row, x_after=xa)
        ends.append(int(a["scal"][0]))
    return ends
