"""Drive the device one program at a time, the way the PIM-GPT system runs tiles: each program (a tile, or a
host DELAY for an idle gap) is one `FastEngine.run` call. Used by the memo test and benchmark to replay the
programs a system run issued (`SystemEngine.run(..., record=True)`) with the memo on and off."""

from __future__ import annotations

import numpy as np


def run_programs(dev, programs) -> list[int]:
    """Run `programs` (simulator/dram/program.py `Program`) on `dev` in order; returns each one's end cycle (the
    cycle in which the instruction after it may reach the channels)."""
    a = dev.state.arrays
    ends = []
    for p in programs:
        xa = np.zeros(len(p.op), np.int64)
        dev.run(p.op, p.opsize, p.mask, p.bank, p.row, x_after=xa)
        ends.append(int(a["scal"][0]))
    return ends
