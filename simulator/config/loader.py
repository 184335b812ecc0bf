"""Load arch configs: YAML data only (a SafeLoader), presets via `base:`, dotted overrides, one-line errors.

    cfg = load_arch("arch_configs/pim_gpt.yaml", overrides=["organisation.channels=16"])

A file may name a preset it extends with `base: aim_gddr6` (a file name in the same folder or in the
shipped `arch_configs/`); its own keys are merged over the preset's, section by section. A key given
twice in one mapping is an error (plain YAML would silently keep the last one). Sections owned by other
modules (`asic:`, `energy:`) are validated here too, by their owner's model (`SECTION_MODELS`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError, create_model

from simulator.config.messages import pydantic_message
from simulator.config.schema import ArchConfig
from simulator.errors import PimsimError, clip

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


#: largest config or spec file read (a config is a few KB; this stops a mistaken multi-GB file early)
MAX_YAML_BYTES = 4 * 2**20


class StrictSafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` (data only) that rejects a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *anchor` merges may be overridden by explicit keys
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {clip(repr(key), 60)} (first given at line {first})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def yaml_data(text: str):
    """YAML text -> plain data with `StrictSafeLoader` (yaml.YAMLError on bad syntax or a duplicate key)."""
    return yaml.load(text, Loader=StrictSafeLoader)


def read_yaml_data(path: Path):
    """A YAML file's data (safe loader, duplicate keys rejected), or a one-line PimsimError naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise PimsimError(f"{path}: {size} bytes is too large for a config file (limit {MAX_YAML_BYTES})")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PimsimError(f"{path}: cannot read file ({exc.__class__.__name__})") from None
    try:
        return yaml_data(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise PimsimError(f"{path}: YAML syntax error{where}: {problem}") from None
    except RecursionError:
        raise PimsimError(f"{path}: YAML nested too deeply to be a config") from None


def _read_yaml(path: Path) -> dict:
    data = read_yaml_data(path)
    if data is None:
        raise PimsimError(f"{path}: empty file; an arch config needs at least `base: PRESET` or its sections")
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


INCLUDABLE = ("asic", "energy")


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
        parsed = yaml_data(value) if value.strip() else ""
    except (yaml.YAMLError, RecursionError):
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


@functools.cache
def _asic_model():
    from simulator.asic.config import AsicConfig

    # the same fields, validated strictly (no `true` for 1, no "2" for 2, no .inf)
    declared = getattr(AsicConfig, "model_fields", None) or AsicConfig.__pydantic_fields__  # model or dataclass
    fields = {n: (f.annotation, f) for n, f in declared.items()}
    model = create_model("AsicSection", __config__=ConfigDict(extra="forbid", strict=True, allow_inf_nan=False),
                         **fields)
    owner = TypeAdapter(AsicConfig)

    def check(data):
        model.model_validate(data)
        owner.validate_python(data)  # and the owner's own cross-field validators, if any

    return check


def _energy_model():
    from simulator.energy import EnergyConfig, build_table

    def check(data):
        build_table(EnergyConfig.model_validate(data, strict=True))  # also the cross-field checks of the table

    return check


#: section -> (factory of its owner's validator, docs). Add a section here when a module starts reading one.
SECTION_MODELS: dict[str, tuple[Callable[[], Callable[[Any], Any]], str]] = {
    "asic": (_asic_model, "docs/asic.md"),
    "energy": (_energy_model, "docs/energy.md"),
}
DEVICE_SECTIONS = ("organisation", "timing", "completion", "refresh", "controller", "mac")


def non_finite(data: Any, path: str = "") -> str | None:
    """The dotted path of the first .inf/.nan number in plain data, or None (no config value may be one)."""
    if isinstance(data, float) and not math.isfinite(data):
        return path or "(value)"
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for k, v in items:
        found = non_finite(v, f"{path}[{k}]" if isinstance(k, int) else f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None


def _dig(data: Any, path: str) -> Any:
    for part in re.findall(r"[^.\[\]]+", path):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def validate_arch(data: dict, source: str) -> ArchConfig:
    """Plain data -> ArchConfig, every section checked; a one-line PimsimError naming `source` and the field."""
    bad = non_finite(data)
    if bad:
        raise PimsimError(f"{source}: {bad}: must be a finite number, got {_dig(data, bad)!r}")
    try:
        cfg = ArchConfig.model_validate(data)
    except ValidationError as exc:
        raise PimsimError(pydantic_message(exc, source)) from None
    for name, (factory, docs) in SECTION_MODELS.items():
        section = getattr(cfg, name)
        if section is None:
            continue
        try:
            factory()(section)
        except ValidationError as exc:
            raise PimsimError(pydantic_message(exc, source, prefix=name, docs=docs)) from None
        except PimsimError as exc:
            raise PimsimError(f"{source}: {exc}") from None
    return cfg


def load_arch(path: str | Path = "pim_gpt", overrides: Iterable[str] = ()) -> ArchConfig:
    """Load, merge presets, apply `--set` overrides and validate. Errors are one-line `PimsimError`s."""
    file = find_arch_file(path)
    data = _resolve(file)
    if not any(k in data for k in DEVICE_SECTIONS):
        raise PimsimError(f"{file}: not an arch config (no {', '.join(DEVICE_SECTIONS[:2])} ... sections and no "
                          "base:); start it with `base: aim_gddr6` or `base: pim_gpt`")
    data.setdefault("name", file.stem)
    overrides = list(overrides)
    if overrides:
        data = apply_overrides(data, overrides)
    source = str(file) + (" (with --set overrides)" if overrides else "")
    return validate_arch(data, source)


def config_hash(cfg: ArchConfig) -> str:
    """Stable short hash of the fully resolved config (it names what a result was computed with)."""
    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
