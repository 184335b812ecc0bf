"""Sweeps: a spec of many runs, run in fresh processes (locally or on Dask), kept in a resumable result store.

    from simulator.sweep import run_sweep
    summary = run_sweep("arch_configs/sweeps/channels_banks_sweep.yaml", "out/cb", workers=2)

Modules, one job each: `spec` (the YAML spec, validated), `points` (spec -> keyed run requests), `isolate`
(one point in a fresh process), `runner` (local pool), `dask_backend` (Dask cluster), `store` (SQLite
ledger + CSV/Parquet table), `cli_commands` (`pimsim sweep`, `pimsim plot`). See docs/sweeps.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SweepSpec", "SweepSummary", "dry_run", "load_spec", "run_sweep"]


def __getattr__(name: str) -> Any:  # lazy: `pimsim --help` should not import the runner
    if name in ("run_sweep", "dry_run", "SweepSummary"):
        from simulator.sweep import runner

        return getattr(runner, name)
    if name in ("SweepSpec", "load_spec"):
        from simulator.sweep import spec

        return getattr(spec, name)
    raise AttributeError(name)
