"""Expand a sweep spec into points: one fully resolved run request each, keyed by what determines its result.

A point's key is the hash of (resolved arch config hash, trace content hash, run options, code version):
two points, in one sweep or in two, with the same key compute the same result, so the store keeps one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from simulator.errors import PimsimError
from simulator.sweep.spec import RUN_OPTIONS, Compare, SweepSpec, resolve_trace_path

REPO_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RunRequest:
    """The argument of a point function (`simulator.system.api.run_point`), as a value."""

    arch: str
    set: tuple[str, ...]
    model: str | None
    trace: str | None
    context: int
    tokens: int
    mapping: str
    overlap: bool
    gpu: str | None
    cpu: str | None
    baseline_dtype: str
    energy_variant: str
    baseline_stack: str = "hf-generate"
    baseline_threads: int | None = None

    def options(self) -> dict[str, Any]:
        """The run options (everything but the arch, its overrides and the model/trace)."""
        return {k: getattr(self, k) for k in ("context", "tokens", "mapping", "overlap", "gpu", "cpu",
                                              "baseline_dtype", "baseline_stack", "baseline_threads",
                                              "energy_variant")}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"arch": self.arch, "set": list(self.set)}
        if self.trace is not None:
            out["trace"] = self.trace
        else:
            out["model"] = self.model
        out.update(self.options())
        return out


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its position, axis labels, request, identity and (if it cannot run) why not."""

    index: int
    key: str
    labels: tuple[tuple[str, Any], ...]  # (axis column, label), in axis order
    request: RunRequest
    model: str  # the zoo name, or the model a trace file was exported from
    config_hash: str
    trace_hash: str
    config_values: tuple[tuple[str, Any], ...]  # resolved values of the config keys the spec touches
    error: str | None = None  # set when the point cannot run (its config does not validate)

    def labels_dict(self) -> dict[str, Any]:
        return dict(self.labels)


# ----------------------------------------------------------------------------------------------- code version

_EXCLUDED_CODE = ("sweep", "report")


def code_version(point_fn_ref: str | None = None) -> str:
    """Package version + hash of the simulator sources and shipped data that can change a result.

    `PIMSIM_CODE_VERSION` pins it (use only when you know a change cannot affect results). Sources of
    `simulator/sweep/` and `simulator/report/` are left out: they run sweeps and draw, they compute nothing.
    """
    from simulator import __version__

    pinned = os.environ.get("PIMSIM_CODE_VERSION")
    if pinned:
        base = pinned
    else:
        h = hashlib.sha256(__version__.encode())
        pkg = Path(__file__).resolve().parents[1]
        files = [p for p in pkg.rglob("*.py") if p.relative_to(pkg).parts[0] not in _EXCLUDED_CODE]
        data = REPO_DIR / "arch_configs"
        if data.is_dir():
            files += [p for p in data.rglob("*.yaml") if "sweeps" not in p.relative_to(data).parts]
        for p in sorted(files):
            h.update(str(p.relative_to(REPO_DIR) if p.is_relative_to(REPO_DIR) else p.name).encode())
            h.update(b"\0" + p.read_bytes() + b"\0")
        base = f"{__version__}+{h.hexdigest()[:12]}"
    return base if point_fn_ref is None else f"{base};fn={point_fn_ref}"


# --------------------------------------------------------------------------------------------------- helpers

def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def point_key(config_id: Any, trace_hash: str, request: RunRequest, code: str) -> str:
    run = request.options()
    blob = _canonical({"config": config_id, "trace": trace_hash, "run": run, "code": code})
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _override(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"


@lru_cache(maxsize=64)
def _model_trace(model: str) -> tuple[str, str]:
    """(model name, content hash) of the trace derived from a zoo model."""
    from simulator.trace.derive import derive_trace

    tr = derive_trace(model)
    return model, tr.header.content_hash


@lru_cache(maxsize=64)
def _file_trace(path: str, mtime_ns: int) -> tuple[str, str]:
    from simulator.trace.io import load_trace, trace_hash

    tr = load_trace(path)
    return tr.header.model.name, trace_hash(tr)


def trace_identity(request: RunRequest) -> tuple[str, str]:
    if request.trace is not None:
        return _file_trace(request.trace, Path(request.trace).stat().st_mtime_ns)
    return _model_trace(str(request.model))


def _dig(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _matches(cond: Any, value: Any) -> bool:
    if isinstance(cond, Compare):
        checks = []
        if "eq" in cond.model_fields_set:
            checks.append(value == cond.eq)
        if "ne" in cond.model_fields_set:
            checks.append(value != cond.ne)
        if cond.in_ is not None:
            checks.append(value in cond.in_)
        for op, bound in (("lt", cond.lt), ("le", cond.le), ("gt", cond.gt), ("ge", cond.ge)):
            if bound is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return False
            checks.append({"lt": value < bound, "le": value <= bound, "gt": value > bound, "ge": value >= bound}[op])
        return all(checks)
    if isinstance(cond, list):
        return value in cond
    return value == cond


def _entry_matches(entry: Mapping[str, Any], view: Callable[[str], Any]) -> bool:
    return all(_matches(cond, view(name)) for name, cond in entry.items())


# ------------------------------------------------------------------------------------------------- expansion

#: default largest grid (before filters) a sweep expands; each point is a full simulation, and expanding
#: millions of points alone takes minutes and gigabytes (`pimsim sweep --max-points` raises it)
MAX_POINTS = 10_000


def expand(spec: SweepSpec, spec_dir: Path | None = None, code: str | None = None,
           max_points: int = MAX_POINTS) -> list[Point]:
    """Every point of the spec, filtered, in product order (models outermost, last axis fastest)."""
    from simulator.config.loader import config_hash, find_arch_file, load_arch

    size = spec.grid_size()
    if size > max_points:
        raise PimsimError(f"the grid has {size:,} points, more than the limit of {max_points:,}; split the spec "
                          "or raise the limit with --max-points")

    code = code if code is not None else code_version()
    try:
        arch_file = str(find_arch_file(spec.arch, relative_to=spec_dir))
    except PimsimError as err:
        raise PimsimError(f"arch: {err}") from None
    groups = spec.groups()
    config_keys = spec.config_keys()
    points: list[Point] = []
    cfg_cache: dict[tuple[str, ...], tuple[Any, str | None, dict | None]] = {}
    for combo in itertools.product(*[range(len(g[0].values)) for g in groups]):
        labels: list[tuple[str, Any]] = []
        settings: dict[str, Any] = dict(spec.set)
        options: dict[str, Any] = spec.run.model_dump()
        options.update(model=None, trace=None)
        for group, i in zip(groups, combo):
            for axis in group:
                if axis.key not in ("model", "trace") or axis.name:
                    labels.append((axis.column, axis.label(i)))
                for k, v in axis.settings(i).items():
                    if k in RUN_OPTIONS:
                        options[k] = v
                    else:
                        settings.pop(k, None)
                        settings[k] = v
        if options["trace"] is not None:
            resolved = resolve_trace_path(str(options["trace"]), spec_dir)
            options["trace"] = str(resolved) if resolved else str(options["trace"])
        overrides = tuple(_override(k, v) for k, v in settings.items())
        request = RunRequest(arch=arch_file, set=overrides, **options)

        if overrides not in cfg_cache:
            try:
                cfg = load_arch(arch_file, overrides)
                cfg_cache[overrides] = (config_hash(cfg), None, cfg.model_dump(mode="json"))
            except PimsimError as err:
                cfg_cache[overrides] = ({"arch": arch_file, "set": list(overrides)}, str(err), None)
        config_id, cfg_error, cfg_data = cfg_cache[overrides]
        model, thash = trace_identity(request)
        label_map = dict(labels)

        def view(name: str, label_map=label_map, model=model, options=options, cfg_data=cfg_data,
                 settings=settings) -> Any:  # bound now: called only within this iteration
            if name in label_map:
                return label_map[name]
            if name in RUN_OPTIONS:
                return model if name == "model" else options[name]
            return _dig(cfg_data, name) if cfg_data is not None else settings.get(name)

        if spec.filters.include and not any(_entry_matches(e, view) for e in spec.filters.include):
            continue
        if any(_entry_matches(e, view) for e in spec.filters.exclude):
            continue
        values = []
        if cfg_data is not None:
            org = cfg_data.get("organisation", {})
            values += [("channels", org.get("channels")),
                       ("banks_per_channel", org.get("bank_groups", 0) * org.get("banks_per_group", 0))]
        values += [(k, _dig(cfg_data, k) if cfg_data is not None else settings.get(k)) for k in config_keys]
        points.append(Point(
            index=len(points), key=point_key(config_id, thash, request, code), labels=tuple(labels),
            request=request, model=model, config_hash=config_id if isinstance(config_id, str) else "",
            trace_hash=thash, config_values=tuple(dict(values).items()), error=cfg_error,
        ))
    return points

