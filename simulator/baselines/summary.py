"""A baseline as `pimsim run` reports it: mean latency and energy per token over sampled contexts, with the
stack and thread count used and, when the preset documents ranges for its estimates, the range that follows
from them (every ranged value at its cheapest end, then at its dearest end: `presets.corner`)."""

from __future__ import annotations

from collections.abc import Callable

from simulator.baselines.model import predict
from simulator.baselines.presets import BaselinePreset, corner, has_ranges, load_preset
from simulator.baselines.stacks import get_stack
from simulator.baselines.workload import BaselineOp


def resolve_preset(name: str, threads: int | None = None) -> BaselinePreset:
    """A shipped preset, a YAML file, or `local` (calibrated for `threads`)."""
    if name == "local":
        from simulator.baselines.calibrate import local_preset

        return local_preset(threads=threads)
    return load_preset(name)


def check_baseline_options(gpu: str | None, cpu: str | None, stack: str | None, threads: int | None,
                           dtype: str) -> None:
    """Fail on a baseline option that cannot work (a GPU-only stack on a CPU preset, a preset without the
    stack's costs, a thread count or dtype the preset cannot run) before a run simulates anything, so an
    error loses no computed result."""
    from simulator.baselines.events import host_dispatch_s, rates

    st = get_stack(stack)
    for name, role in ((gpu, "gpu"), (cpu, "cpu")):
        if name:
            pre = resolve_preset(name, threads if role == "cpu" else None)
            host_dispatch_s(pre, st)
            pre.compute.tflops(dtype)
            rates(pre, dtype, threads if pre.kind == "cpu" else None)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def baseline_summary(preset_name: str, workload_at: Callable[[int], list[BaselineOp]], contexts: list[int],
                     dtype: str, stack: str | None = None, threads: int | None = None) -> dict:
    """`workload_at(ctx)` gives the workload of one token (built with the same stack)."""
    st = get_stack(stack)
    pre = resolve_preset(preset_name, threads)
    thr = threads if pre.kind == "cpu" else None
    wls = [workload_at(c) for c in contexts]

    def mean_of(p: BaselinePreset) -> tuple[float, float, int | None]:
        res = [predict(p, wl, st, thr) for wl in wls]
        return _mean([r.latency_s for r in res]), _mean([r.energy_j for r in res]), res[0].threads

    lat, energy, used_threads = mean_of(pre)
    out = {"name": pre.name, "preset": preset_name, "dtype": dtype, "stack": st.name, "threads": used_threads,
           "latency_s": lat, "energy_j": energy}
    if pre.kind == "cpu":
        out["threads_source"] = pre.cpu.threads.source if thr is None else "set by --cpu-threads"
    if has_ranges(pre):
        lo, hi = mean_of(corner(pre, "low")), mean_of(corner(pre, "high"))
        out["latency_range_s"] = [lo[0], hi[0]]
        out["energy_range_j"] = [lo[1], hi[1]]
    return out


def speedup_ranges(baselines: dict, pim_latency_s: float, pim_energy_j: float | None) -> dict:
    """{"speedup": {role: [low, high]}, "energy_efficiency_gain": {...}} for baselines with ranges."""
    out: dict = {"speedup": {}, "energy_efficiency_gain": {}}
    for role, b in baselines.items():
        if "latency_range_s" in b:
            out["speedup"][role] = [b["latency_range_s"][0] / pim_latency_s, b["latency_range_s"][1] / pim_latency_s]
        if "energy_range_j" in b and pim_energy_j:
            out["energy_efficiency_gain"][role] = [b["energy_range_j"][0] / pim_energy_j,
                                                   b["energy_range_j"][1] / pim_energy_j]
    return out
