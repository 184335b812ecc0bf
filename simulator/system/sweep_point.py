"""The sweep adapter: one sweep point (simulator/sweep) -> the `pimsim run --json` object."""

from __future__ import annotations

from simulator.errors import PimsimError

POINT_KEYS = {"arch", "set", "model", "trace", "context", "tokens", "mapping", "overlap", "gpu", "cpu",
              "baseline_dtype", "baseline_stack", "baseline_threads", "energy_variant"}


def run_point(point: dict) -> dict:
    """{arch, set, model | trace, context, tokens, mapping, overlap, gpu, cpu, baseline_dtype, baseline_stack,
    baseline_threads} -> result."""
    from simulator.config import load_arch
    from simulator.system.api import load_model_trace, simulate

    extra = set(point) - POINT_KEYS
    if extra:
        raise PimsimError(f"sweep point: unknown key(s) {', '.join(sorted(extra))} "
                          f"(known: {', '.join(sorted(POINT_KEYS))})")
    arch = load_arch(point.get("arch", "pim_gpt"), point.get("set", []) or [])
    trace = load_model_trace(point.get("model"), point.get("trace"))
    overlap = point.get("overlap")
    return simulate(arch, trace, context=point.get("context"), tokens=point.get("tokens"),
                    mapping=point.get("mapping", "pim-gpt"), overlap=None if overlap is None else bool(overlap),
                    gpu=point.get("gpu", "t4"), cpu=point.get("cpu", "xeon_gold_6154"),
                    baseline_dtype=point.get("baseline_dtype", "fp32"),
                    baseline_stack=point.get("baseline_stack", "hf-generate"),
                    baseline_threads=point.get("baseline_threads"),
                    energy_variant=point.get("energy_variant", "v2"))
