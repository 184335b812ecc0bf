"""Sweep specs (`arch_configs/sweeps/*_sweep.yaml`): a base arch and model set, axes, filters.

    name: channels_banks
    arch: pim_gpt                      # preset name or path (relative to the spec file or arch_configs/)
    set: {refresh.enabled: true}       # base config overrides
    models: [gpt2-small, gpt2-medium]  # zoo names; or `traces: [traces/x.pimtrace.jsonl, ...]`
    run: {context: 128, tokens: 4, mapping: pim-gpt, gpu: t4, cpu: xeon_gold_6154}  # + overlap, baseline_dtype,
                                                                                    #   energy_variant
    axes:                              # Cartesian product, in this order (models outermost)
      - {key: organisation.channels, values: [4, 8, 16]}          # a config key ...
      - {key: context, values: [128, 1024]}                        # ... or a run option
      - name: banks_per_channel                                    # several keys per value
        values: [{organisation.bank_groups: 2}, {organisation.bank_groups: 4}]
        labels: [8, 16]
      - zip:                                                       # zipped, not multiplied
          - {key: timing.tck_ns, values: [0.5, 0.625]}
          - {name: data_rate_gbps, key: organisation.queue_depth, values: [33, 33]}
    filters:
      exclude: [{model: gpt2-xl, channels: 4}]     # drop points matching every key of an entry
      include: [{context: {le: 1024}}]             # if given, keep only points matching some entry

Run options are `model, trace, context, tokens, mapping, overlap, gpu, cpu, baseline_dtype, baseline_stack,
baseline_threads, energy_variant`; every other key is a dotted arch-config
key, checked against the config schema. A filter names an axis, a run option or a config key (compared
with the resolved config); a condition is a value, a list of values, or `{eq, ne, lt, le, gt, ge, in}`.
The file is data (`yaml.safe_load`); every error is one line naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveInt,
    StrictBool,
    StrictFloat,
    StrictInt,
    Tag,
    ValidationError,
    model_validator,
)

from simulator.config.messages import pydantic_message
from simulator.errors import PimsimError, clip

REPO_DIR = Path(__file__).resolve().parents[2]
SWEEP_DIR = REPO_DIR / "arch_configs" / "sweeps"

#: keys of an axis or filter that are run options (everything else is an arch-config key)
RUN_OPTIONS = ("model", "trace", "context", "tokens", "mapping", "overlap", "gpu", "cpu", "baseline_dtype",
               "baseline_stack", "baseline_threads", "energy_variant")

#: column names of the result table an axis may not take (the run options are allowed for their own key)
RESERVED_NAMES = frozenset({
    "sweep_schema", "sweep", "point", "key", "status", "error", "arch", "overrides", "config_hash", "trace_hash",
    "code_version", "runner_wall_s", "tokens_per_s", "tokens_per_j",
})

Scalar = Union[StrictBool, StrictInt, StrictFloat, str, None]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Axis(_Strict):
    """One axis: `key` with scalar `values`, or (no key) `values` that are mappings of several keys."""

    name: str | None = None
    key: str | None = None
    values: list[Scalar | dict[str, Scalar]] = Field(min_length=1)
    labels: list[Scalar] | None = None

    @model_validator(mode="after")
    def _check(self) -> Axis:
        if self.key is not None:
            if any(isinstance(v, dict) for v in self.values):
                raise ValueError("values must be plain values when key is given (drop key to set several keys)")
        else:
            if not all(isinstance(v, dict) and v for v in self.values):
                raise ValueError("give key, or make every value a mapping of config keys to values")
            if not self.name:
                raise ValueError("an axis whose values are mappings needs a name")
        if self.labels is not None and len(self.labels) != len(self.values):
            raise ValueError(f"labels has {len(self.labels)} entries but values has {len(self.values)}")
        for what, items in (("values", self.values), ("labels", self.labels or [])):
            seen: set[str] = set()
            for v in items:
                canon = json.dumps(v, sort_keys=True)
                if canon in seen:
                    raise ValueError(f"{what}: {clip(canon, 60)} is given twice (every point would run twice)")
                seen.add(canon)
        return self

    @property
    def column(self) -> str:
        return self.name or str(self.key).split(".")[-1]

    def settings(self, i: int) -> dict[str, Any]:
        """The keys this axis sets at its i-th value."""
        v = self.values[i]
        return dict(v) if isinstance(v, dict) else {str(self.key): v}

    def label(self, i: int) -> Any:
        if self.labels is not None:
            return self.labels[i]
        v = self.values[i]
        if isinstance(v, dict):
            return ",".join(f"{k}={_text(x)}" for k, x in v.items())
        return v


class Zip(_Strict):
    """Axes that advance together (all of the same length)."""

    zip: list[Axis] = Field(min_length=2)

    @model_validator(mode="after")
    def _check(self) -> Zip:
        lengths = {len(a.values) for a in self.zip}
        if len(lengths) != 1:
            raise ValueError(f"zipped axes must have the same number of values, got {sorted(lengths)}")
        return self


def _axis_kind(v: Any) -> str:
    return "Zip" if (isinstance(v, dict) and "zip" in v) or isinstance(v, Zip) else "Axis"


class Compare(_Strict):
    eq: Scalar = None
    ne: Scalar = None
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None
    in_: list[Scalar] | None = Field(None, alias="in")


Condition = Union[Compare, list[Scalar], Scalar]


class Filters(_Strict):
    include: list[dict[str, Condition]] = []
    exclude: list[dict[str, Condition]] = []


class RunOptions(_Strict):
    context: PositiveInt = 128  # start context (tokens already in the KV cache)
    tokens: PositiveInt = 8  # tokens generated
    mapping: str = "pim-gpt"  # "pim-gpt" or "aim-rows"
    overlap: bool = True  # stream ASIC work under PIM work where the dependences allow (docs/system.md)
    gpu: str | None = "t4"  # GPU baseline preset (arch_configs/baselines/), or null for none
    cpu: str | None = "xeon_gold_6154"  # CPU baseline preset, or null for none
    baseline_dtype: str = "fp32"  # data type the baselines run in
    baseline_stack: str = "hf-generate"  # software stack of the baselines (docs/baselines.md, "Stacks")
    baseline_threads: PositiveInt | None = None  # CPU baseline threads (null: the preset's default)
    energy_variant: str = "v2"  # energy accounting variant (docs/energy.md)


class SweepSpec(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    arch: str = "pim_gpt"
    set: dict[str, Scalar] = {}
    models: list[str] = []
    traces: list[str] = []
    run: RunOptions = Field(default_factory=RunOptions)
    axes: list[Annotated[Annotated[Axis, Tag("Axis")] | Annotated[Zip, Tag("Zip")],
                         Discriminator(_axis_kind)]] = []
    filters: Filters = Field(default_factory=Filters)

    def flat_axes(self) -> list[Axis]:
        out: list[Axis] = []
        for a in self.axes:
            out.extend(a.zip if isinstance(a, Zip) else [a])
        return out

    def groups(self) -> list[list[Axis]]:
        """Product factors: the implicit model/trace axis first, then each axis or zip group."""
        groups: list[list[Axis]] = []
        if self.models:
            groups.append([Axis(key="model", values=list(self.models))])
        if self.traces:
            groups.append([Axis(key="trace", values=list(self.traces))])
        for a in self.axes:
            groups.append(list(a.zip) if isinstance(a, Zip) else [a])
        return groups

    def grid_size(self) -> int:
        """Points of the full product, before filters (computed without expanding it)."""
        return math.prod(len(g[0].values) for g in self.groups())

    def columns(self) -> list[str]:
        """Axis columns of the result table, in order (without the implicit model/trace axis)."""
        return [a.column for a in self.flat_axes()]

    def config_keys(self) -> list[str]:
        """Arch-config keys this spec sets anywhere (base `set:` and axes), in first-seen order."""
        keys = list(self.set)
        for a in self.flat_axes():
            for i in range(len(a.values)):
                keys += [k for k in a.settings(i) if k not in RUN_OPTIONS]
        return list(dict.fromkeys(keys))

    def digest(self) -> str:
        blob = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _text(v: Any) -> str:
    return json.dumps(v) if not isinstance(v, str) else v


# ---------------------------------------------------------------------------------------------- validation

def _schema_fields(model: type[BaseModel]) -> dict[str, Any]:
    return {name: f.annotation for name, f in model.model_fields.items()}


def check_config_key(key: str) -> str | None:
    """None if `key` (dotted) names an arch-config field, else why not (walks the live config schema)."""
    from simulator.config.schema import ArchConfig

    node: Any = ArchConfig
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not (isinstance(node, type) and issubclass(node, BaseModel)):
            return None  # a free-form mapping section: any sub-key
        fields = _schema_fields(node)
        if part not in fields:
            where = ".".join(parts[:depth]) or "the top level"
            known = ", ".join(sorted(fields))
            return f"unknown config key {key!r} ({part!r} is not in {where}; known: {known})"
        node = fields[part]
        # Optional[Model] / Model | None: look through to the model
        args = getattr(node, "__args__", None)
        if args:
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            node = models[0] if models else node
    if isinstance(node, type) and issubclass(node, BaseModel):
        return f"config key {key!r} is a section, not a value; name one of its fields"
    return None


def _known_presets(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def resolve_trace_path(text: str, spec_dir: Path | None) -> Path | None:
    """A trace file as given, relative to the spec file, or relative to the repository root."""
    cands = [Path(text)]
    if spec_dir is not None:
        cands.append(spec_dir / text)
    cands.append(REPO_DIR / text)
    for c in cands:
        if c.is_file():
            return c.resolve()
    return None


def _check_semantics(spec: SweepSpec, spec_dir: Path | None) -> list[tuple[str, str]]:
    """(field, problem) pairs for things the schema alone cannot see."""
    from simulator.trace.zoo import MODEL_ZOO

    problems: list[tuple[str, str]] = []
    for kind in ("models", "traces"):
        items = getattr(spec, kind)
        dup = next((x for i, x in enumerate(items) if x in items[:i]), None)
        if dup is not None:
            problems.append((kind, f"{dup!r} is listed twice"))
    if spec.models and spec.traces:
        problems.append(("traces", "give models: or traces:, not both"))
    option_axes = {a.key for a in spec.flat_axes() if a.key in ("model", "trace")}
    if (spec.models or spec.traces) and option_axes:
        problems.append(("axes", "the model set is given twice (models:/traces: and an axis over model/trace)"))
    if not (spec.models or spec.traces or option_axes):
        problems.append(("models", "no models: give models:, traces:, or an axis over model or trace"))

    baseline_dir = REPO_DIR / "arch_configs" / "baselines"

    def check_value(field: str, key: str, value: Any) -> None:
        if key == "model":
            if value not in MODEL_ZOO:
                problems.append((field, f"unknown model {value!r}; choose one of: {', '.join(MODEL_ZOO)}"))
        elif key == "trace":
            if not isinstance(value, str) or resolve_trace_path(value, spec_dir) is None:
                problems.append((field, f"trace file {value!r} not found"))
        elif key in ("context", "tokens"):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                problems.append((field, f"{key} must be a positive integer, got {value!r}"))
        elif key in ("gpu", "cpu"):
            if value is not None and not Path(str(value)).is_file() and value not in _known_presets(baseline_dir):
                known = ", ".join(_known_presets(baseline_dir))
                problems.append((field, f"unknown {key} baseline preset {value!r} (known: {known})"))
        elif key == "baseline_stack":
            from simulator.baselines.stacks import STACKS

            if value not in STACKS:
                problems.append((field, f"unknown baseline_stack {value!r} (choose one of: {', '.join(STACKS)})"))
        elif key == "baseline_threads":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                problems.append((field, f"baseline_threads must be a positive integer or null, got {value!r}"))
        elif key in ("mapping", "baseline_dtype", "energy_variant"):
            if not isinstance(value, str):
                problems.append((field, f"{key} must be a name, got {value!r}"))
        elif key == "overlap":
            if not isinstance(value, bool):
                problems.append((field, f"overlap must be true or false, got {value!r}"))
        else:
            why = check_config_key(key)
            if why:
                problems.append((field, why))

    for i, m in enumerate(spec.models):
        check_value(f"models[{i}]", "model", m)
    for i, t in enumerate(spec.traces):
        check_value(f"traces[{i}]", "trace", t)
    for k, v in spec.set.items():
        if k in RUN_OPTIONS:
            problems.append((f"set.{k}", f"{k} is a run option: put it under run:"))
        else:
            check_value(f"set.{k}", k, v)
    for opt in ("gpu", "cpu"):
        check_value(f"run.{opt}", opt, getattr(spec.run, opt))

    names: dict[str, str] = {}
    for gi, entry in enumerate(spec.axes):
        axes = entry.zip if isinstance(entry, Zip) else [entry]
        for ai, axis in enumerate(axes):
            field = f"axes[{gi}]" + (f".zip[{ai}]" if isinstance(entry, Zip) else "")
            col = axis.column
            if col in names:
                problems.append((f"{field}.name", f"axis name {col!r} is used twice ({names[col]}); give name:"))
            names[col] = field
            if col in RESERVED_NAMES or (col in RUN_OPTIONS and axis.key != col):
                problems.append((f"{field}.name", f"{col!r} is a result column name; choose another name:"))
            for vi in range(len(axis.values)):
                for k, v in axis.settings(vi).items():
                    check_value(f"{field}.values[{vi}]" + ("" if axis.key else f".{k}"), k, v)
    for kind in ("include", "exclude"):
        for i, entry in enumerate(getattr(spec.filters, kind)):
            for k in entry:
                if k in names or k in RUN_OPTIONS:
                    continue
                why = check_config_key(k)
                if why:
                    problems.append((f"filters.{kind}[{i}].{k}", f"not an axis name, run option or config key: {why}"))
    return problems


def validate_spec(data: Any, source: str, spec_dir: Path | None = None) -> SweepSpec:
    from simulator.config.loader import non_finite

    if not isinstance(data, dict):
        raise PimsimError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    bad = non_finite(data)
    if bad:
        raise PimsimError(f"{source}: {bad}: must be a finite number (.inf and .nan are not values)")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise PimsimError(pydantic_message(exc, source, docs="docs/sweeps.md")) from None
    problems = _check_semantics(spec, spec_dir)
    if problems:
        field, msg = problems[0]
        raise PimsimError(f"{source}: {field}: {msg}")
    return spec


def find_spec_file(name_or_path: str | Path) -> Path:
    raw = str(name_or_path)
    for cand in (Path(raw), SWEEP_DIR / raw, SWEEP_DIR / f"{raw}.yaml"):
        if cand.is_file():
            return cand
    known = ", ".join(_known_presets(SWEEP_DIR))
    raise PimsimError(f"{raw}: sweep spec not found (give a path to a YAML file or a shipped spec: {known})")


def load_spec(path: str | Path) -> tuple[SweepSpec, Path]:
    """Read and validate a sweep spec file; returns the spec and the file's resolved path."""
    from simulator.config.loader import read_yaml_data

    file = find_spec_file(path)
    data = read_yaml_data(file)
    return validate_spec(data if data is not None else {}, str(file), file.resolve().parent), file.resolve()
