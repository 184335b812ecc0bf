"""Load arch configs: YAML data only (`yaml.safe_load`), presets via `base:`, dotted overrides, one-line errors.

    cfg = load_arch("arch_configs/pim_gpt.yaml", overrides=["organisation.channels=16"])

A file may name a preset it extends with `base: aim_gddr6` (a file name in the same folder or in the
shipped `arch_configs/`); its own keys are merged over the preset's, section by section.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

from simulator.config.schema import ArchConfig
from simulator.errors import PimsimError

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "arch_configs"


def find_arch_file(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """Resolve a config path, or a preset name such as `aim_gddr6`, to an existing file."""
    raw = str(name_or_path)
    candidates = [Path(raw)]
    for folder in ([relative_to] if relative_to else []) + [SHIPPED_DIR]:
        candidates += [folder / raw, folder / f"{raw}.yaml"]
    for cand in candidates:
        if cand.is_file():
            return cand
    shipped = ", ".join(sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))) if SHIPPED_DIR.is_dir() else ""
    raise PimsimError(f"{raw}: arch config not found (give a path to a YAML file or a preset: {shipped})")


def read_yaml_data(path: Path):
    """A YAML file's data (`yaml.safe_load`: data only), or a one-line PimsimError naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PimsimError(f"{path}: cannot read file ({exc.__class__.__name__})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise PimsimError(f"{path}: YAML syntax error{where}: {problem}") from None


def _read_yaml(path: Path) -> dict:
    data = read_yaml_data(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PimsimError(f"{path}: top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


INCLUDABLE = ("asic", "link", "energy", "baselines")


def _resolve(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in seen:
        raise PimsimError(f"{path}: base: preset chain loops back to this file")
    data = _read_yaml(path)
    for key in INCLUDABLE:  # `energy: energy_gddr6_aim.yaml` includes that file's `energy:` section
        if isinstance(data.get(key), str):
            inc = _read_yaml(find_arch_file(data[key], relative_to=path.parent))
            if key not in inc:
                raise PimsimError(f"{path}: {key}: included file {data[key]} has no '{key}:' section")
            data[key] = inc[key]
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise PimsimError(f"{path}: base: must be a preset name or file path, got {base!r}")
    parent = _resolve(find_arch_file(base, relative_to=path.parent), seen + (path,))
    parent.pop("name", None)
    parent.pop("description", None)
    return _merge(parent, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`organisation.channels=16` -> (['organisation', 'channels'], 16). The value is YAML data."""
    if "=" not in text:
        raise PimsimError(f"--set {text}: expected KEY=VALUE, e.g. organisation.channels=16")
    key, value = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise PimsimError(f"--set {text}: empty key")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        raise PimsimError(f"--set {text}: value is not valid YAML data") from None
    return parts, parsed


def apply_overrides(data: dict, overrides: Iterable[str | tuple[list[str], Any]]) -> dict:
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        parts, value = parse_override(item) if isinstance(item, str) else item
        node = data
        for part in parts[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise PimsimError(f"--set {'.'.join(parts)}: {part} is not a section")
            node = nxt
        node[parts[-1]] = value
    return data


def _describe(err: dict) -> str:
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see docs/configuration.md)"
    if kind == "missing":
        return "missing required field"
    if kind in ("greater_than", "greater_than_equal") and ctx.get("gt", ctx.get("ge")) in (0, 0.0):
        return "must be a positive number" if "float" in str(err.get("input").__class__) else "must be a positive integer"
    if kind == "greater_than_equal" and ctx.get("ge") == 0:
        return "must be a non-negative integer"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be an integer"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind in ("float_parsing", "float_type"):
        return "must be a number"
    return err.get("msg", "invalid value")


def validate_arch(data: dict, source: str) -> ArchConfig:
    try:
        return ArchConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
        got = "" if err.get("type") in ("missing", "extra_forbidden") else f", got {err.get('input')!r}"
        if err.get("type") == "value_error":
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            return_msg = f"{source}: {loc}: {msg}"
            raise PimsimError(return_msg) from None
        raise PimsimError(f"{source}: {loc}: {_describe(err)}{got}") from None


def load_arch(path: str | Path = "pim_gpt", overrides: Iterable[str] = ()) -> ArchConfig:
    """Load, merge presets, apply `--set` overrides and validate. Errors are one-line `PimsimError`s."""
    file = find_arch_file(path)
    data = _resolve(file)
    overrides = list(overrides)
    if overrides:
        data = apply_overrides(data, overrides)
    source = str(file) + (" (with --set overrides)" if overrides else "")
    return validate_arch(data, source)


def config_hash(cfg: ArchConfig) -> str:
    """Stable short hash of the fully resolved config (it names what a result was computed with)."""
    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
