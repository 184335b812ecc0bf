"""The analytic baseline model: per-op roofline + kernel and framework overheads, and energy = time x power.

Per op (one execution):   device = max(bytes / (BW * eff_bw), flops / (peak(dtype) * eff_c))
                                   + kernels * device_us_per_kernel
                          host   = kernels * host_us_per_kernel
Per token:                host  += layers * layer_overhead_us + token_overhead_us
                          GPU (asynchronous launch queue): latency = max(host, device)
                          CPU (synchronous):               latency = host + device
Energy:   utilisation model: P = idle + (TDP - idle) * device / latency;  tdp model: P = TDP;  E = P * latency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.baselines.presets import BaselinePreset
from simulator.baselines.workload import BaselineOp
from simulator.errors import PimsimError

US = 1e-6


@dataclass(frozen=True)
class BaselineResult:
    name: str
    latency_s: float                    # per token
    energy_j: float                     # per token
    breakdown: dict[str, float] = field(default_factory=dict)  # seconds per component (+ power_w, utilisation)

    @property
    def ms_per_token(self) -> float:
        return self.latency_s * 1e3


def op_device_s(preset: BaselinePreset, op: BaselineOp) -> tuple[float, float, float]:
    """(memory time, compute time, fixed kernel time) of one execution of `op`, in seconds."""
    bw = preset.memory.bandwidth_gbs.value * 1e9 * preset.memory.bandwidth_efficiency.value
    peak = preset.compute.tflops(op.dtype).value * 1e12 * preset.compute.efficiency.value
    return op.bytes / bw, op.flops / peak, op.kernels * preset.software.device_us_per_kernel.value * US


def predict(preset: BaselinePreset, workload: list[BaselineOp]) -> BaselineResult:
    if not workload:
        raise PimsimError("baseline predict: the workload has no ops")
    sw = preset.software
    mem_s = comp_s = fixed_s = dev_s = dispatch_s = 0.0
    by_kind: dict[str, float] = {}
    layers = max((o.count for o in workload if o.per_layer), default=0)
    for o in workload:
        m, c, k = op_device_s(preset, o)
        d = max(m, c) + k
        dev_s += o.count * d
        if m >= c:
            mem_s += o.count * m
        else:
            comp_s += o.count * c
        fixed_s += o.count * k
        dispatch_s += o.count * o.kernels * sw.host_us_per_kernel.value * US
        by_kind[o.kind] = by_kind.get(o.kind, 0.0) + o.count * d
    framework_s = (layers * sw.layer_overhead_us.value + sw.token_overhead_us.value) * US
    host_s = dispatch_s + framework_s
    latency = max(host_s, dev_s) if preset.host_device_overlap else host_s + dev_s
    util = dev_s / latency if latency > 0 else 0.0
    p = preset.power
    power_w = p.tdp_w.value if p.model == "tdp" else p.idle_w.value + (p.tdp_w.value - p.idle_w.value) * util
    breakdown = {
        "device_s": dev_s, "memory_bound_s": mem_s, "compute_bound_s": comp_s, "kernel_fixed_s": fixed_s,
        "host_s": host_s, "dispatch_s": dispatch_s, "framework_s": framework_s,
        "power_w": power_w, "utilisation": util,
    }
    breakdown.update({f"device_{k}_s": v for k, v in by_kind.items()})
    return BaselineResult(name=preset.name, latency_s=latency, energy_j=power_w * latency, breakdown=breakdown)
