"""Library entry points of `pimsim run`: load a model, choose contexts, simulate and assemble the result object
(statistics: result.py, energy: energy_report.py, baselines: baseline_report.py, sweep points: sweep_point.py)."""

from __future__ import annotations

import time

import numpy as np

from simulator.asic.config import asic_config_from_arch
from simulator.config import config_hash
from simulator.config.schema import ArchConfig
from simulator.errors import PimsimError
from simulator.mapping.pim_gpt import MAPPINGS, PimGptMapping
from simulator.system.baseline_report import add_baselines
from simulator.system.energy_report import add_energy
from simulator.system.engine import SystemEngine
from simulator.system.result import SCHEMA_VERSION, run_result
from simulator.system.sweep_point import run_point


def load_model_trace(model: str | None = None, trace: str | None = None):
    from simulator.trace import MODEL_ZOO, derive_trace, load_trace

    if trace:
        return load_trace(trace)
    if not model:
        raise PimsimError("give --model NAME or --trace FILE")
    if model not in MODEL_ZOO:
        raise PimsimError(f"--model: unknown model {model!r} (known: {', '.join(MODEL_ZOO)})")
    return derive_trace(model)


def contexts_for(limit: int, context: int | None, tokens: int | None) -> list[int]:
    start = 1 if context is None else int(context)
    if not 1 <= start <= limit:
        raise PimsimError(f"--context: must be in 1..{limit} (the model's context limit), got {start}")
    n = limit - start + 1 if tokens is None else int(tokens)
    if n < 1:
        raise PimsimError(f"--tokens: must be at least 1, got {n}")
    if start + n - 1 > limit:
        raise PimsimError(f"--tokens: {n} tokens from context {start} pass the context limit {limit}; "
                          f"use at most {limit - start + 1}")
    return list(range(start, start + n))


def sampled_contexts(limit: int, samples: int) -> list[int]:
    """`samples` contexts evenly spread over 1..limit: their mean per-token latency estimates the mean over a
    whole generation up to the limit (per-token latency grows smoothly with context)."""
    if samples < 1:
        raise PimsimError(f"--samples: must be at least 1, got {samples}")
    return sorted({round(x) for x in np.linspace(1, limit, min(samples, limit))})


def simulate(arch: ArchConfig, trace, context: int | None = None, tokens: int | None = None,
             mapping: str = "pim-gpt", overlap: bool | None = None, gpu: str | None = "t4",
             cpu: str | None = "xeon_gold_6154", baseline_dtype: str = "fp32", baseline_profile: str | None = None,
             energy_variant: str = "v2", contexts: list[int] | None = None, timeline: bool = False,
             on_token=None, with_floor: bool = False, baseline_stack: str = "hf-generate",
             baseline_threads: int | None = None) -> dict:
    """Run the PIM-GPT system and return the `pimsim run --json` object. `contexts` (explicit, e.g. sampled)
    overrides context/tokens; each token is generated with that many keys in the KV cache. `overlap` None
    takes `asic.overlap` from the arch config. `timeline`: keep the first token's resource timeline
    (returned under the key "timeline"; `pimsim run --timeline FILE` writes it). `on_token()`, if given, is
    called after each simulated token (progress display). `with_floor` adds the device floor of the same
    tokens (simulator/system/floor.py)."""
    from simulator.baselines.summary import check_baseline_options
    from simulator.trace import trace_hash

    check_baseline_options(gpu, cpu, baseline_stack, baseline_threads, baseline_dtype)  # before simulating
    wall0 = time.perf_counter()
    m = trace.header.model
    ctxs = list(contexts) if contexts else contexts_for(m.context_limit, context, tokens)
    pm = PimGptMapping(arch, trace, mapping=mapping, asic=asic_config_from_arch(arch))
    eng = SystemEngine(arch, pm, overlap=overlap)
    stats = eng.run(ctxs, timeline_token=0 if timeline else None, on_token=on_token)
    out = {"schema_version": SCHEMA_VERSION, "model": m.name, "arch": arch.name, "mapping": mapping,
           "overlap": eng.overlap}
    out.update(run_result(arch, stats, ctxs))
    out["memory"] = {"rows_used_per_bank": pm.total_rows, "rows_per_bank": arch.organisation.rows,
                     "bytes_reserved": int(pm.total_rows * arch.organisation.row_bytes * pm.CB)}
    out["config_hash"] = config_hash(arch)
    out["trace_hash"] = trace_hash(trace)
    add_energy(out, arch, stats, eng.asic_clock_ghz, energy_variant)
    add_baselines(out, trace, ctxs, gpu, cpu, baseline_dtype, baseline_profile, baseline_stack, baseline_threads)
    if with_floor:
        from simulator.system.floor import token_floor_cycles

        tck_s = arch.timing.tck_ns * 1e-9
        floor = np.array([token_floor_cycles(pm, c) for c in ctxs], dtype=np.int64)
        out["floor"] = {"per_token_s": float(floor.mean() * tck_s), "cycles": [int(v) for v in floor],
                        "ratio": float(out["per_token_latency_s"] / (floor.mean() * tck_s))}
    if timeline:
        out["timeline"] = stats.timeline
    out["wall_s"] = round(time.perf_counter() - wall0, 3)
    return out


__all__ = ["MAPPINGS", "SCHEMA_VERSION", "contexts_for", "load_model_trace", "run_point", "simulate"]
