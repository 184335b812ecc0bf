"""The work of one token as a dependency graph: PIM tiles (runs of device instructions) and ASIC jobs.

A mapping emits a list of nodes in program order; `deps` are indices of earlier nodes whose results the
node consumes. The system engine (simulator/system/engine.py) schedules them: PIM tiles on the device in
priority order (`shadow` tiles, the K/V writes, only when no other tile is ready), ASIC jobs on the
function units (simulator/asic/units.py). A job with `stream` set consumes that tile's read-outs as they
arrive (its first pass is fed read-out by read-out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.asic.units import Pass
from simulator.system.program import Program


@dataclass(frozen=True, eq=False)
class Readouts:
    """Where a tile's results leave the device: instruction indices of its read-outs and elements each."""

    index: np.ndarray
    elements: np.ndarray
    final: np.ndarray  # bool: the read-out completes its outputs (last fan-in pass)


@dataclass(frozen=True, eq=False)
class PimTile:
    name: str
    op_class: str
    program: Program
    deps: tuple[int, ...] = ()
    shadow: bool = False  # issued only when no other tile is ready; nothing in the token may depend on it
    kind: str = "vmm"  # vmm | kv_write | embedding (the component its time is filed under)
    readouts: Readouts | None = None

    is_pim = True


@dataclass(frozen=True, eq=False)
class AsicJob:
    name: str
    op_class: str
    passes: tuple[Pass, ...]
    deps: tuple[int, ...] = ()
    stream: int = -1  # index of the tile whose read-outs feed the first pass (-1: none)
    stream_suffix: np.ndarray | None = None  # ASIC cycles of issue the first pass needs from read-out i on
    ops: tuple[tuple[str, int], ...] = ()  # element operations (energy)

    is_pim = False
    shadow = False
