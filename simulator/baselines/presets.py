"""Baseline hardware + software-stack presets (`arch_configs/baselines/*.yaml`), every number sourced.

A preset file:
    name: t4
    kind: gpu                      # gpu: host and device run asynchronously; cpu: synchronous
    description: ...
    memory:   {bandwidth_gbs: {value, source}, bandwidth_efficiency: {value, source}}
    compute:  {fp32_tflops: ..., fp16_tflops: ..., bf16_tflops: ..., int8_tops: ..., efficiency: ...}
    power:    {model: utilisation | tdp, tdp_w: ..., idle_w: ...}
    software: {host_us_per_kernel, device_us_per_kernel, layer_overhead_us, token_overhead_us,
               generate_overhead_us, sync_us, graph_launch_us, launch_queue_depth, launch_us}
    cpu:      {cores, threads, bandwidth_1t_gbs, fork_join_us}          # kind: cpu only (thread model)
Values are {value, source} pairs, optionally with `low` and `high`: the documented range of an estimate
(`[estimate]` in a source marks an engineering estimate; docs/baselines.md). `corner(preset, "low"|"high")`
gives the preset with every ranged value at its cheapest / dearest end, for the speedup range in reports.
The software costs belong to the preset's host; which of them a run pays is the stack's choice
(simulator/baselines/stacks.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulator.config.loader import read_yaml_data
from simulator.errors import PimsimError

PRESET_DIR = Path(__file__).resolve().parents[2] / "arch_configs" / "baselines"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Ranged(_Strict):
    low: float | None = None            # documented range of an estimate (both or neither)
    high: float | None = None

    @model_validator(mode="after")
    def _range(self):
        if (self.low is None) != (self.high is None):
            raise ValueError("give both low and high, or neither")
        if self.low is not None and not self.low <= self.value <= self.high:
            raise ValueError(f"need low <= value <= high, got {self.low} / {self.value} / {self.high}")
        return self


class Coef(_Ranged):
    value: float = Field(gt=0)
    source: str = Field(min_length=1)


class Coef0(_Ranged):
    """A coefficient that may be zero (an overhead a stack does not have)."""

    value: float = Field(ge=0)
    source: str = Field(min_length=1)


class Memory(_Strict):
    bandwidth_gbs: Coef                 # peak (datasheet) or measured achievable
    bandwidth_efficiency: Coef          # achievable / bandwidth_gbs (1.0 when bandwidth_gbs is measured)
    # achievable bandwidth of the framework's own kernels per op class and dtype (measured presets):
    # gemv (weight streaming, Conv1D addmm), linear (nn.Linear GEMV: the LM head), attention (SDPA over the
    # KV cache), kv_append (the cache update). An op class without an entry runs at bandwidth_gbs x
    # bandwidth_efficiency.
    op_bandwidth_gbs: dict[Literal["gemv", "linear", "attention", "kv_append"],
                           dict[Literal["fp32", "bf16", "fp16"], Coef]] | None = None
    # fixed time per call of those kernels (measured presets: a GEMV timed at two sizes)
    op_fixed_us: dict[Literal["gemv", "linear", "attention", "kv_append"],
                      dict[Literal["fp32", "bf16", "fp16"], Coef0]] | None = None


class Compute(_Strict):
    fp32_tflops: Coef
    fp16_tflops: Coef | None = None
    bf16_tflops: Coef | None = None
    int8_tops: Coef | None = None
    efficiency: Coef                    # achievable / peak for batch-1 (GEMV-shaped) kernels

    def tflops(self, dtype: str) -> Coef:
        key = {"fp32": "fp32_tflops", "fp16": "fp16_tflops", "bf16": "bf16_tflops", "int8": "int8_tops"}[dtype]
        c = getattr(self, key)
        if c is None:
            raise PimsimError(f"baseline preset: compute.{key} is not set, so it cannot run {dtype}")
        return c


class Power(_Strict):
    model: Literal["utilisation", "tdp"] = "utilisation"
    tdp_w: Coef
    idle_w: Coef0


class Software(_Strict):
    host_us_per_kernel: Coef0           # host time to dispatch one kernel-launching op (PyTorch eager + launch)
    device_us_per_kernel: Coef0         # device-side fixed time per kernel (launch latency, ramp, tail)
    layer_overhead_us: Coef0            # Python/framework time per transformer layer (module calls, views)
    token_overhead_us: Coef0            # per forward call (input prep, masks, output objects)
    generate_overhead_us: Coef0         # hf-generate: Python of the generate loop per token (besides kernels)
    sync_us: Coef0                      # one host<->device synchronisation (read a scalar back); 0 on a CPU
    graph_launch_us: Coef0              # optimized: host time to launch one token's CUDA graph
    launch_queue_depth: Coef | None = None  # GPU: kernels the host may queue ahead of the device
    launch_us: Coef0 | None = None      # GPU: host time of one kernel launch from C++ (the `native` dispatch)


class CpuThreads(_Strict):
    """The thread model of a CPU preset (docs/baselines.md, "Threads")."""

    cores: Coef                         # physical cores (the most threads that run in parallel)
    threads: Coef                       # default intra-op threads of the stack (e.g. PyTorch: physical cores)
    bandwidth_1t_gbs: Coef              # achievable DRAM bandwidth of ONE thread (limited by its misses in flight)
    fork_join_us: Coef0                 # fork + join of one parallel op at 2 threads; grows as log2(threads)


class BaselinePreset(_Strict):
    name: str
    kind: Literal["gpu", "cpu"]
    description: str = ""
    memory: Memory
    compute: Compute
    power: Power
    software: Software
    cpu: CpuThreads | None = None       # kind: cpu only
    measured: dict | None = None        # raw micro-benchmark results (local preset only)

    @model_validator(mode="after")
    def _kind_sections(self):
        if self.kind == "cpu" and self.cpu is None:
            raise ValueError("a cpu preset needs the cpu section (cores, threads, bandwidth_1t_gbs, fork_join_us)")
        if self.kind == "gpu" and self.cpu is not None:
            raise ValueError("the cpu section is for kind: cpu presets only")
        if self.kind == "gpu" and self.software.launch_queue_depth is None:
            raise ValueError("a gpu preset needs software.launch_queue_depth")
        return self

    @property
    def host_device_overlap(self) -> bool:
        return self.kind == "gpu"


def preset_from_data(data: object, source: str) -> BaselinePreset:
    if not isinstance(data, dict):
        raise PimsimError(f"{source}: a baseline preset must be a mapping (name, kind, memory, compute, ...)")
    try:
        return BaselinePreset.model_validate(data)
    except ValidationError as exc:
        from simulator.config.messages import pydantic_message

        raise PimsimError(pydantic_message(exc, source, docs="docs/baselines.md")) from None


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name_or_path: str | Path) -> BaselinePreset:
    """A shipped preset name (t4, xeon_gold_6154, a100, h100, ryzen9_7950x, local) or a YAML file path.

    `local` is the measured preset of this machine: see `simulator.baselines.calibrate.local_preset`.
    """
    raw = str(name_or_path)
    if raw == "local":
        from simulator.baselines.calibrate import local_preset

        return local_preset()
    path = Path(raw)
    if not path.is_file():
        path = PRESET_DIR / f"{raw}.yaml"
    if not path.is_file():
        raise PimsimError(f"baseline preset {raw!r} not found; choose one of: {', '.join(list_presets())} "
                          f"or give a YAML file")
    data = read_yaml_data(path)  # safe loader; a duplicate key is an error; one-line errors naming the line
    return preset_from_data(data, str(path))


# Ranged values whose HIGH end makes the baseline faster (everything else: the low end is cheaper).
_FASTER_WHEN_HIGH = {"bandwidth_gbs", "bandwidth_efficiency", "fp32_tflops", "fp16_tflops", "bf16_tflops",
                     "int8_tops", "efficiency", "bandwidth_1t_gbs", "launch_queue_depth", "fp32", "bf16", "fp16"}
# (fp32/bf16/fp16 are the keys of memory.op_bandwidth_gbs entries: bandwidths)


def corner(preset: BaselinePreset, end: Literal["low", "high"]) -> BaselinePreset:
    """`preset` with every ranged value at the end that makes the baseline cheapest (`low`: fastest and
    least power) or dearest (`high`). Values without a range are kept."""

    def walk(node, key=""):
        if isinstance(node, dict):
            if "value" in node and "source" in node and node.get("low") is not None:
                faster = key in _FASTER_WHEN_HIGH
                pick = ("high" if faster else "low") if end == "low" else ("low" if faster else "high")
                return {**node, "value": node[pick]}
            return {k: walk(v, k) for k, v in node.items()}
        return node

    data = walk(preset.model_dump(mode="json"))
    return preset_from_data(data, f"{preset.name} ({end} corner)")


def has_ranges(preset: BaselinePreset) -> bool:
    def walk(node):
        if isinstance(node, dict):
            return node.get("low") is not None or any(walk(v) for v in node.values())
        return False

    return walk(preset.model_dump(mode="json"))
