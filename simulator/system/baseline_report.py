"""GPU / CPU baselines of a system run: the baseline models at the run's contexts, speedup and efficiency."""

from __future__ import annotations

import numpy as np


def _sample(ctxs: list[int], most: int = 17) -> list[int]:
    """Baseline latency is close to affine in context: evaluate at most `most` evenly spaced contexts."""
    if len(ctxs) <= most:
        return ctxs
    idx = np.linspace(0, len(ctxs) - 1, most).round().astype(int)
    return [ctxs[i] for i in idx]


def add_baselines(out: dict, trace, ctxs, gpu, cpu, dtype, profile) -> None:
    from simulator.baselines import load_preset, predict
    from simulator.baselines.workload import workload_from_trace

    base = {}
    sample = _sample(ctxs)
    for role, preset in (("gpu", gpu), ("cpu", cpu)):
        if not preset:
            continue
        p = load_preset(preset)
        res = [predict(p, workload_from_trace(trace, c, dtype)) for c in sample]
        base[role] = {"name": p.name, "preset": preset, "dtype": dtype,
                      "latency_s": float(np.mean([r.latency_s for r in res])),
                      "energy_j": float(np.mean([r.energy_j for r in res]))}
    if profile:
        from simulator.baselines.profile import load_profile, profile_result

        r = profile_result(load_profile(profile))
        base["measured"] = {"name": r.name, "preset": str(profile), "latency_s": r.latency_s,
                            "energy_j": r.energy_j}
    out["baselines"] = base
    pim_lat = out["per_token_latency_s"]
    out["speedup"] = {k: v["latency_s"] / pim_lat for k, v in base.items()}
    if "energy_per_token_j" in out:
        out["energy_efficiency_gain"] = {k: v["energy_j"] / out["energy_per_token_j"] for k, v in base.items()
                                         if v.get("energy_j")}
