"""What every subcommand needs around its work: checked numeric options, output paths checked before the work
starts, atomic writes, strict JSON, and a progress bar on stderr.

    p.add_argument("--workers", type=int_in(1, 1024), ...)
    out = output_dir(args.out, "--out")             # before simulating: a bad path fails in a second
    write_atomic(out / "result.json", strict_json(result, "the result"))
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from simulator.errors import PimsimError, clip

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def int_in(lo: int, hi: int | None = None):
    """argparse type: an integer in lo..hi (argparse names the flag in its one-line error)."""
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {clip(repr(text), 60)}") from None
        if value < lo or (hi is not None and value > hi):
            span = f"at least {lo}" if hi is None else f"in {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"must be {span}, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def float_in(lo: float, hi: float | None = None, *, lo_open: bool = False):
    """argparse type: a finite number >= lo (> lo with lo_open) and <= hi."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {clip(repr(text), 60)}") from None
        if not math.isfinite(value) or value < lo or (lo_open and value == lo) or (hi is not None and value > hi):
            low = f"greater than {lo:g}" if lo_open else f"at least {lo:g}"
            raise argparse.ArgumentTypeError(f"must be a finite number {low}"
                                             + (f" and at most {hi:g}" if hi is not None else "") + f", got {text}")
        return value
    parse.__name__ = "number"
    return parse


def non_empty(text: str) -> str:
    """argparse type: a string that is not empty or blank."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _writable_dir(d: Path, flag: str, target: Path) -> None:
    for parent in [d, *d.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise PimsimError(f"{flag} {target}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise PimsimError(f"{flag} {target}: directory {parent} is not writable")
            return


def output_file(path: str | Path, flag: str) -> Path:
    """Check that `path` can be written as a file (before any work is done); returns it as a Path."""
    p = Path(path)
    if not str(path).strip():
        raise PimsimError(f"{flag}: must not be empty")
    if p.is_dir():
        raise PimsimError(f"{flag} {p}: is a directory; give a file name")
    if p.exists() and not os.access(p, os.W_OK):
        raise PimsimError(f"{flag} {p}: file is not writable")
    _writable_dir(p.parent, flag, p)
    return p


def output_dir(path: str | Path, flag: str) -> Path:
    """Check that `path` is, or can be created as, a writable directory (before any work is done)."""
    p = Path(path)
    if not str(path).strip():
        raise PimsimError(f"{flag}: must not be empty")
    if p.exists() and not p.is_dir():
        raise PimsimError(f"{flag} {p}: is a file; give a directory")
    _writable_dir(p, flag, p)
    return p


def input_file(path: str | Path, flag: str) -> Path:
    """An existing, readable, non-empty file, or a one-line error naming the flag."""
    p = Path(path)
    if not p.is_file():
        raise PimsimError(f"{flag} {p}: no such file")
    if p.stat().st_size == 0:
        raise PimsimError(f"{flag} {p}: file is empty")
    if not os.access(p, os.R_OK):
        raise PimsimError(f"{flag} {p}: file is not readable")
    return p


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write `data` to a temporary file beside `path`, then rename it over `path`: readers never see a part."""
    p = Path(path)
    blob = data.encode() if isinstance(data, str) else data
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise PimsimError(f"{p}: cannot write ({exc.strerror or exc})") from None
    return p


def _json_safe(obj: Any, what: str, path: str = "") -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        if math.isnan(obj):
            return None  # a quantity that could not be determined (e.g. energy without a power reading)
        raise PimsimError(f"{what}: {path or 'value'} is infinite, which JSON cannot hold; an input made it "
                          "unbounded (check the config values)")
    if isinstance(obj, dict):
        return {k: _json_safe(v, what, f"{path}.{k}" if path else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v, what, f"{path}[{i}]") for i, v in enumerate(obj)]
    return obj


def strict_json(obj: Any, what: str, **kw: Any) -> str:
    """`json.dumps` of valid JSON only: NaN (undetermined) becomes null, Infinity is an error naming the field."""
    return json.dumps(_json_safe(obj, what), allow_nan=False, **kw)


class Progress:
    """A tqdm bar on stderr, only when enabled, stderr is a terminal and tqdm is installed; shown only for work
    that lasts more than two seconds. Call it once per finished item."""

    def __init__(self, total: int, desc: str, enabled: bool, initial: int = 0, unit: str = "it"):
        self.bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, leave=False,
                            mininterval=0.5, delay=2.0, dynamic_ncols=True)

    def __call__(self, n: int = 1, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(refresh=False, **postfix)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress(items: Iterable, total: int, desc: str, enabled: bool) -> Iterator:
    """`items`, advancing a `Progress` bar after each one."""
    bar = Progress(total, desc, enabled)
    try:
        for item in items:
            yield item
            bar()
    finally:
        bar.close()
