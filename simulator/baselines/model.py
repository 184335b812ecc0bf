"""The baseline model: per-kernel roofline + the stack's software costs, played as events; energy = time x power.

Per kernel (simulator/baselines/events.py):
    device = max(bytes / BW, flops / peak(dtype)) / kernels_of_op + device_us_per_kernel
    host   = host_us_per_kernel (eager dispatch; 0 when a CUDA graph launches the token)
Per token, the stack (simulator/baselines/stacks.py) adds Python glue per forward call and per layer, the
generate loop's kernels and Python, and one synchronisation. A GPU overlaps host and device through its
launch queue; a CPU runs each kernel after dispatching it, forking big ones over its threads.
Closed forms (`closed_form`) are limit cases of this: max(host, device) for a GPU with an unbounded queue
when either side dominates every kernel, host + device for a one-thread CPU (tests prove both).
Energy:   utilisation model: P = idle + (TDP - idle) * device / latency;  tdp model: P = TDP;  E = P * latency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.baselines.events import kernel_plan, rates, simulate_token
from simulator.baselines.presets import BaselinePreset
from simulator.baselines.stacks import Stack, get_stack
from simulator.baselines.workload import BaselineOp

US = 1e-6


@dataclass(frozen=True)
class BaselineResult:
    name: str
    latency_s: float                    # per token
    energy_j: float                     # per token
    breakdown: dict[str, float] = field(default_factory=dict)  # seconds per component (+ power_w, utilisation)
    stack: str = "hf-generate"          # the software stack modelled / measured
    threads: int | None = None          # CPU threads (None for a GPU)
    timeline: list = field(default_factory=list)  # (lane, name, start_s, end_s) when asked for

    @property
    def ms_per_token(self) -> float:
        return self.latency_s * 1e3


def predict(preset: BaselinePreset, workload: list[BaselineOp], stack: str | Stack | None = None,
            threads: int | None = None, *, timeline: bool = False) -> BaselineResult:
    """Latency and energy of one decode token. `workload` should come from `workload_from_model/trace` with
    the same stack (it decides the KV-cache update); `threads` overrides a CPU preset's default."""
    st = get_stack(stack)
    plan = kernel_plan(preset, st, workload, threads)
    dtype = workload[0].dtype
    tok = simulate_token(preset, st, plan, threads=threads, dtype=dtype, timeline=timeline)
    latency = tok.latency_s
    util = min(1.0, tok.device_busy_s / latency) if latency > 0 else 0.0
    p = preset.power
    power_w = p.tdp_w.value if p.model == "tdp" else p.idle_w.value + (p.tdp_w.value - p.idle_w.value) * util
    by_kind: dict[str, float] = {}
    for k in plan:
        by_kind[k.kind] = by_kind.get(k.kind, 0.0) + k.device_s
    breakdown = {
        "device_s": tok.device_busy_s,
        "memory_bound_s": sum(k.device_s for k in plan if k.memory_bound),
        "compute_bound_s": sum(k.device_s for k in plan if not k.memory_bound),
        "kernel_fixed_s": sum(k.fixed_s for k in plan),
        "host_s": tok.host_busy_s, "dispatch_s": sum(k.host_s for k in plan),
        "framework_s": tok.host_busy_s - sum(k.host_s for k in plan), "sync_s": tok.sync_s,
        "kernels": float(sum(1 for k in plan if k.launched)), "power_w": power_w, "utilisation": util,
    }
    breakdown.update({f"device_{k}_s": v for k, v in by_kind.items()})
    n_threads = rates(preset, dtype, threads).threads if preset.kind == "cpu" else None
    return BaselineResult(name=preset.name, latency_s=latency, energy_j=power_w * latency, breakdown=breakdown,
                          stack=st.name, threads=n_threads, timeline=tok.events)


def closed_form(preset: BaselinePreset, workload: list[BaselineOp], stack: str | Stack | None = None,
                threads: int | None = None) -> float:
    """The pre-event closed form of the same costs: GPU max(host, device) + its syncs, CPU host + device.
    Exact for the limit cases documented above (no sync inside the step); elsewhere a lower bound of
    `predict` (GPU) or equal (CPU, 1 thread)."""
    st = get_stack(stack)
    plan = kernel_plan(preset, st, workload, threads)
    sw = preset.software
    layers = sum(1 for k in plan if k.layer_start)
    host = sum(k.host_s for k in plan)
    if st.framework:
        host += (layers * sw.layer_overhead_us.value + sw.token_overhead_us.value) * US
    if st.generate_loop:
        host += sw.generate_overhead_us.value * US
    if st.dispatch == "graph":
        host += sw.graph_launch_us.value * US
    device = sum(k.device_s for k in plan)
    if preset.kind == "gpu":
        return max(host, device) + sw.sync_us.value * US * (1 + sum(1 for k in plan if k.sync))
    return host + device
