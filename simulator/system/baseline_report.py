"""GPU / CPU baselines of a system run: the baseline models at the run's contexts, speedup and efficiency."""

from __future__ import annotations

import numpy as np


def _sample(ctxs: list[int], most: int = 17) -> list[int]:
    """Baseline latency is close to affine in context: evaluate at most `most` evenly spaced contexts."""
    if len(ctxs) <= most:
        return ctxs
    idx = np.linspace(0, len(ctxs) - 1, most).round().astype(int)
    return [ctxs[i] for i in idx]


def add_baselines(out: dict, trace, ctxs, gpu, cpu, dtype, profile, stack="hf-generate", threads=None) -> None:
    from simulator.baselines.summary import baseline_summary, speedup_ranges
    from simulator.baselines.workload import workload_from_trace

    base = {}
    sample = _sample(ctxs)
    for role, preset in (("gpu", gpu), ("cpu", cpu)):
        if preset:
            base[role] = baseline_summary(preset, lambda c: workload_from_trace(trace, c, dtype, stack=stack), sample,
                                          dtype, stack, threads if role == "cpu" else None)
    if profile:
        from simulator.baselines.profile import load_profile, profile_result

        r = profile_result(load_profile(profile))
        base["measured"] = {"name": r.name, "preset": str(profile), "latency_s": r.latency_s,
                            "energy_j": r.energy_j, "stack": r.stack, "threads": r.threads}
    out["baselines"] = base
    pim_lat = out["per_token_latency_s"]
    out["speedup"] = {k: v["latency_s"] / pim_lat for k, v in base.items()}
    if "energy_per_token_j" in out:
        out["energy_efficiency_gain"] = {k: v["energy_j"] / out["energy_per_token_j"] for k, v in base.items()
                                         if v.get("energy_j")}
    ranges = speedup_ranges(base, pim_lat, out.get("energy_per_token_j"))
    out["speedup_range"] = ranges["speedup"]
    if "energy_per_token_j" in out:
        out["energy_efficiency_gain_range"] = ranges["energy_efficiency_gain"]
