"""Published batch-1 decode latencies (`arch_configs/baselines/published/measurements.yaml`) and the presets'
predictions of them: the check that a GPU/CPU preset matches a measurement someone else made
(docs/baselines.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simulator.baselines.model import predict
from simulator.baselines.presets import PRESET_DIR, load_preset
from simulator.baselines.stacks import STACKS
from simulator.baselines.workload import attention_code, model_shape, workload_from_model
from simulator.errors import PimsimError

PUBLISHED_FILE = PRESET_DIR / "published" / "measurements.yaml"  # a subfolder: not a preset
TOLERANCE = 0.25


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PublishedEntry(_Strict):
    id: str = Field(min_length=1)
    url: str = Field(min_length=8)
    what: str = Field(min_length=1)
    derivation: str = Field(min_length=1)
    preset: str
    model: str
    dtype: Literal["fp32", "fp16", "bf16", "int8"]
    context: int = Field(gt=0)
    stack: str
    attn: Literal["sdpa", "eager", "eager-h2d"] | None = None  # the source's attention code (None: the stack's)
    ms_per_token: float = Field(gt=0)
    known_gap: str | None = None


    @field_validator("stack")
    @classmethod
    def _known_stack(cls, v: str) -> str:
        if v not in STACKS:
            raise ValueError(f"unknown stack {v!r} (choose one of: {', '.join(STACKS)})")
        return v


class _File(_Strict):
    schema_: Literal["pimsim-published-baselines/1"] = Field(alias="schema")
    entries: list[PublishedEntry] = Field(min_length=1)


def load_published(path: str | Path = PUBLISHED_FILE) -> list[PublishedEntry]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return _File.model_validate(data).entries
    except (OSError, yaml.YAMLError) as exc:
        raise PimsimError(f"{path}: cannot read published baselines ({exc.__class__.__name__})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
        raise PimsimError(f"{path}: {loc}: {err.get('msg', 'invalid value')}") from None


def check_entry(e: PublishedEntry) -> dict:
    """The preset's prediction of one entry and its error (fraction)."""
    shape = model_shape(e.model)
    attn = attention_code(e.attn, e.stack, shape)
    wl = workload_from_model(shape, e.context, e.dtype, attn=attn, stack=e.stack)
    pred = predict(load_preset(e.preset), wl, e.stack).latency_s * 1e3
    err = pred / e.ms_per_token - 1
    return {"id": e.id, "preset": e.preset, "model": e.model, "dtype": e.dtype, "stack": e.stack, "attn": attn,
            "published_ms": e.ms_per_token, "predicted_ms": pred, "error": err,
            "within": abs(err) <= TOLERANCE, "known_gap": e.known_gap, "url": e.url}


def table(rows: list[dict]) -> str:
    lines = ["| source | preset | model, dtype | stack (attention) | published ms/token | predicted | error |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = "" if r["within"] else " (outside 25 %)"
        lines.append(f"| [{r['id']}]({r['url']}) | {r['preset']} | {r['model']}, {r['dtype']} | {r['stack']} ({r['attn']}) "
                     f"| {r['published_ms']:.2f} | {r['predicted_ms']:.2f} | {r['error'] * 100:+.0f} %{mark} |")
    return "\n".join(lines)
