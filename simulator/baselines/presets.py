"""Baseline hardware + software-stack presets (`arch_configs/baselines/*.yaml`), every number sourced.

A preset file:
    name: t4
    kind: gpu                      # gpu: host and device run asynchronously; cpu: synchronous
    description: ...
    memory:   {bandwidth_gbs: {value, source}, bandwidth_efficiency: {value, source}}
    compute:  {fp32_tflops: ..., fp16_tflops: ..., bf16_tflops: ..., int8_tops: ..., efficiency: ...}
    power:    {model: utilisation | tdp, tdp_w: ..., idle_w: ...}
    software: {host_us_per_kernel, device_us_per_kernel, layer_overhead_us, token_overhead_us}
Values are {value, source} pairs; `[estimate]` in a source marks an engineering estimate (docs/baselines.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulator.config.loader import read_yaml_data
from simulator.errors import PimsimError

PRESET_DIR = Path(__file__).resolve().parents[2] / "arch_configs" / "baselines"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coef(_Strict):
    value: float = Field(gt=0)
    source: str = Field(min_length=1)


class Coef0(_Strict):
    """A coefficient that may be zero (an overhead a stack does not have)."""

    value: float = Field(ge=0)
    source: str = Field(min_length=1)


class Memory(_Strict):
    bandwidth_gbs: Coef                 # peak (datasheet) or measured achievable
    bandwidth_efficiency: Coef          # achievable / bandwidth_gbs (1.0 when bandwidth_gbs is measured)


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


class BaselinePreset(_Strict):
    name: str
    kind: Literal["gpu", "cpu"]
    description: str = ""
    memory: Memory
    compute: Compute
    power: Power
    software: Software
    measured: dict | None = None        # raw micro-benchmark results (local preset only)

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
