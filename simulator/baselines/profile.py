"""A measured baseline profile (`pimsim baseline measure -o profile.yaml`): schema, writer and loader.

    schema: pimsim-baseline-profile/2      (/1 files are read too: they measured the hf-forward stack)
    model: gpt2-small            context: 128            dtype: fp32            device: cpu
    stack: hf-forward | hf-generate
    ms_per_token: 12.3 (best of the repeats)   ms_per_token_median: 13.0   spread: 0.06 (median / best - 1)
    ms_per_token_samples: [...]   cpu_ms_per_token: 12.1 (process CPU time, median)
    power_w: null | 41.0         energy_per_token_j: null | 0.5        power_source: none | rapl | nvml
    warmup: 3  repeats: 10  threads: 2  host: {cpu, torch, transformers, when, load_avg_before/after, ...}

`pimsim run --baseline-profile profile.yaml` uses `profile_result(load_profile(path))` in place of a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulator.baselines.model import BaselineResult
from simulator.config.loader import read_yaml_data
from simulator.errors import PimsimError

PROFILE_SCHEMA = "pimsim-baseline-profile/2"
OLD_SCHEMAS = ("pimsim-baseline-profile/1",)


class _ProfileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: Literal["pimsim-baseline-profile/1", "pimsim-baseline-profile/2"] = Field(alias="schema")
    stack: Literal["hf-forward", "hf-generate"] = "hf-forward"
    ms_per_token_median: float | None = Field(default=None, gt=0)
    spread: float | None = Field(default=None, ge=0)
    cpu_ms_per_token_best: float | None = Field(default=None, gt=0)
    model: str = Field(min_length=1)
    context: int = Field(gt=0)
    dtype: Literal["fp32", "bf16", "fp16"]
    device: str = Field(min_length=1)
    ms_per_token: float = Field(gt=0)
    ms_per_token_samples: list[float] = Field(min_length=1)
    cpu_ms_per_token: float | None = Field(default=None, gt=0)
    warmup: int = Field(ge=0)
    repeats: int = Field(gt=0)
    threads: int | None = None
    power_w: float | None = Field(default=None, gt=0)
    energy_per_token_j: float | None = Field(default=None, gt=0)
    power_source: Literal["none", "rapl", "nvml"] = "none"
    host: dict = Field(default_factory=dict)


@dataclass(frozen=True)
class MeasuredProfile:
    model: str
    context: int
    dtype: str
    device: str
    ms_per_token: float
    ms_per_token_samples: tuple[float, ...]
    warmup: int
    repeats: int
    threads: int | None
    power_w: float | None
    energy_per_token_j: float | None
    power_source: str
    host: dict
    cpu_ms_per_token: float | None = None   # process CPU time per step (median): robust to preemption
    stack: str = "hf-forward"
    ms_per_token_median: float | None = None
    spread: float | None = None             # median / best - 1 of the repeats
    cpu_ms_per_token_best: float | None = None  # best process CPU time per step: with one thread, the time the
                                                # step ran on a core, robust to preemption on a shared machine

    def as_dict(self) -> dict:
        return {
            "schema": PROFILE_SCHEMA, "model": self.model, "context": self.context, "dtype": self.dtype,
            "device": self.device, "stack": self.stack, "ms_per_token": self.ms_per_token,
            "ms_per_token_median": self.ms_per_token_median, "spread": self.spread,
            "cpu_ms_per_token_best": self.cpu_ms_per_token_best,
            "ms_per_token_samples": list(self.ms_per_token_samples), "cpu_ms_per_token": self.cpu_ms_per_token,
            "warmup": self.warmup,
            "repeats": self.repeats, "threads": self.threads, "power_w": self.power_w,
            "energy_per_token_j": self.energy_per_token_j, "power_source": self.power_source,
            "host": dict(self.host),
        }


def profile_from_data(data: object, source: str) -> MeasuredProfile:
    if not isinstance(data, dict):
        raise PimsimError(f"{source}: a baseline profile must be a mapping (schema, model, ms_per_token, ...)")
    try:
        m = _ProfileModel.model_validate(data)
    except ValidationError as exc:
        from simulator.config.messages import pydantic_message

        raise PimsimError(pydantic_message(exc, source, docs="docs/baselines.md").replace("schema_:", "schema:")) \
            from None
    return MeasuredProfile(
        model=m.model, context=m.context, dtype=m.dtype, device=m.device, ms_per_token=m.ms_per_token,
        ms_per_token_samples=tuple(m.ms_per_token_samples), cpu_ms_per_token=m.cpu_ms_per_token, warmup=m.warmup,
        repeats=m.repeats, threads=m.threads, power_w=m.power_w, energy_per_token_j=m.energy_per_token_j,
        power_source=m.power_source, host=dict(m.host), stack=m.stack, ms_per_token_median=m.ms_per_token_median,
        spread=m.spread, cpu_ms_per_token_best=m.cpu_ms_per_token_best,
    )


def load_profile(path: str | Path) -> MeasuredProfile:
    """Read and validate a profile file (safe loader, duplicate keys rejected). Errors are one line naming file
    and field."""
    path = Path(path)
    if not path.is_file():
        raise PimsimError(f"{path}: cannot read baseline profile (no such file)")
    return profile_from_data(read_yaml_data(path), str(path))


def save_profile(profile: MeasuredProfile, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(profile.as_dict(), sort_keys=False), encoding="utf-8")


def profile_result(profile: MeasuredProfile) -> BaselineResult:
    """A measured profile as a BaselineResult (energy is NaN when no power reading was available)."""
    lat = profile.ms_per_token * 1e-3
    if profile.energy_per_token_j is not None:
        energy = profile.energy_per_token_j
    elif profile.power_w is not None:
        energy = profile.power_w * lat
    else:
        energy = float("nan")
    name = f"measured:{profile.device}:{profile.host.get('cpu') or profile.host.get('gpu') or 'host'}:{profile.stack}"
    return BaselineResult(name=name, latency_s=lat, energy_j=energy,
                          breakdown={"measured_s": lat, "power_w": profile.power_w or float("nan")},
                          stack=profile.stack, threads=profile.threads)
