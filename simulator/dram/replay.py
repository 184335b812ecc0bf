"""Replay an AiM ISR trace on a device config with either engine (the library entry point)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.dram.fast import needs_reference, run_fast
from simulator.dram.log import ENGINES, ReplayResult
from simulator.dram.program import Program
from simulator.dram.reference import run_reference
from simulator.errors import PimsimError

if TYPE_CHECKING:  # type hints only: importing the schema builds pydantic models
    from simulator.config.schema import ArchConfig



def replay(prog: Program, cfg: ArchConfig, engine: str = "fast", keep_log: bool = False) -> ReplayResult:
    if engine not in ENGINES:
        raise PimsimError(f"--engine: must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "fast" and needs_reference(prog, cfg):
        res = run_reference(prog, cfg, keep_log=keep_log)
        return ReplayResult(res.cycles, res.tck_ns, res.counts, "reference", res.wall_s, res.log,
                            {"note": "conventional requests under FR-FCFS are replayed by the reference engine"})
    run = run_fast if engine == "fast" else run_reference
    return run(prog, cfg, keep_log=keep_log)
