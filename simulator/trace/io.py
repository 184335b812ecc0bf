"""Reading and writing `pimtrace/1` files (JSON Lines, optionally gzip) and the content hash.

Line 1 is the header record, each following line one op record, in execution order. Output is
deterministic: sorted keys, compact separators, no timestamps, gzip with mtime 0 and no file name.
The content hash is the sha256 of the canonical JSON of the header (without `content_hash` and
`generator`) followed by every op record, so it identifies the workload, not the tool version.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import zlib
from pathlib import Path
from typing import Any

from simulator.errors import PimsimError
from simulator.trace.schema import (
    Compression,
    Lin,
    MaskRef,
    ModelConfig,
    Op,
    Quantization,
    Sparsity,
    TensorSpec,
    Trace,
    TraceHeader,
    WeightInfo,
)

_GZIP_MAGIC = b"\x1f\x8b"


# ---------------------------------------------------------------------------------------------- to dict
def _lin(x: Lin) -> dict[str, int]:
    return {"const": x.const, "ctx": x.per_ctx}


def _tensor(t: TensorSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype}
    if t.src is not None:
        d["src"] = t.src
    return d


def _weight(w: WeightInfo) -> dict[str, Any]:
    q, s = w.quant, w.sparsity
    return {
        "name": w.name, "role": w.role, "shape": list(w.shape), "dtype": w.dtype, "tied_to": w.tied_to,
        "quant": {
            "scheme": q.scheme, "weight_bits": q.weight_bits, "granularity": q.granularity,
            "group_size": q.group_size, "symmetric": q.symmetric, "scale_dtype": q.scale_dtype,
            "zero_dtype": q.zero_dtype, "overhead_bits_per_weight": round(q.overhead_bits_per_weight, 9),
            "max_levels_per_group": q.max_levels_per_group,
        },
        "sparsity": {
            "pattern": s.pattern, "params": {k: v for k, v in s.params}, "method": s.method,
            "density": round(s.density, 9),
            "zero_fraction_at": {str(g): round(f, 9) for g, f in sorted(s.zero_fraction_at.items())},
            "measured": s.measured,
            "per_layer_density": None if s.per_layer_density is None else [round(x, 9) for x in s.per_layer_density],
        },
        "mask": None if w.mask is None else {"file": w.mask.file, "key": w.mask.key, "shape": list(w.mask.shape)},
    }


def op_to_dict(op: Op, index: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key in ("in_features", "out_features", "heads", "kv_heads", "head_dim", "eps"):
        v = getattr(op, key)
        if v is not None:
            attrs[key] = v
    if op.kind in ("gemv", "lm_head"):
        attrs["bias"] = op.bias
    if op.parts:
        attrs["parts"] = [[n, w] for n, w in op.parts]
    return {
        "record": "op", "index": index, "name": op.name, "kind": op.kind, "scope": op.scope,
        "inputs": [_tensor(t) for t in op.inputs], "outputs": [_tensor(t) for t in op.outputs],
        "deps": list(op.deps), "macs": _lin(op.macs_lin), "elements": _lin(op.elements_lin),
        "act_bytes": _lin(op.act_bytes_lin), "weight_bytes": op.weight_bytes, "attrs": attrs,
        "weights": [_weight(w) for w in op.weights],
    }


def header_to_dict(h: TraceHeader, op_count: int) -> dict[str, Any]:
    return {
        "record": "header", "schema": h.schema, "generator": h.generator,
        "model": dataclasses.asdict(h.model),
        "params": {"total": h.params_total, "non_embedding": h.params_non_embedding},
        "compression": dataclasses.asdict(h.compression),
        "source": h.source, "content_hash": h.content_hash, "masks": h.masks, "op_count": op_count,
    }


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _hash_dicts(header: dict[str, Any], ops: list[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    hd = {k: v for k, v in header.items() if k not in ("content_hash", "generator")}
    h.update(_canonical(hd).encode())
    for o in ops:
        h.update(b"\n")
        h.update(_canonical(o).encode())
    return "sha256:" + h.hexdigest()


def trace_hash(trace: Trace) -> str:
    """The content hash of a trace (independent of the stored `content_hash` and the generator version)."""
    ops = [op_to_dict(o, i) for i, o in enumerate(trace.ops)]
    return _hash_dicts(header_to_dict(trace.header, len(ops)), ops)


def with_hash(trace: Trace) -> Trace:
    """The same trace with `header.content_hash` set to its content hash."""
    return dataclasses.replace(trace, header=dataclasses.replace(trace.header, content_hash=trace_hash(trace)))


def dumps(trace: Trace) -> str:
    ops = [op_to_dict(o, i) for i, o in enumerate(trace.ops)]
    lines = [_canonical(header_to_dict(trace.header, len(ops)))] + [_canonical(o) for o in ops]
    return "\n".join(lines) + "\n"


def save_trace(trace: Trace, path: str | Path) -> Path:
    """Write `trace` (gzip if the name ends in .gz). Sets the content hash. Same trace -> same bytes."""
    path = Path(path)
    trace = with_hash(trace)
    data = dumps(trace).encode()
    if path.name.endswith(".gz"):
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
            gz.write(data)
        data = buf.getvalue()
    from simulator.cli_support import write_atomic

    return write_atomic(path, data)


# -------------------------------------------------------------------------------------------- from dict
#: largest trace read, compressed or not (shipped traces are ~20 KB; a 64 MB one would be ~30 000 ops)
MAX_TRACE_BYTES = 64 * 2**20


def read_lines(path: str | Path) -> list[str]:
    """The text lines of a trace file (gunzipped if needed); PimsimError if unreadable, truncated or too large."""
    path = Path(path)
    too_big = f"{path}: larger than {MAX_TRACE_BYTES} bytes (uncompressed); not a pimtrace file of a decode step"
    try:
        if path.is_dir():
            raise PimsimError(f"{path}: is a directory; give a pimtrace file")
        with path.open("rb") as fh:
            raw = fh.read(MAX_TRACE_BYTES + 1)
    except OSError as exc:
        raise PimsimError(f"{path}: cannot read trace ({exc.strerror}); check the path") from None
    if len(raw) > MAX_TRACE_BYTES:
        raise PimsimError(too_big)
    if raw[:2] == _GZIP_MAGIC:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:  # read at most the limit: no gzip bomb
                raw = gz.read(MAX_TRACE_BYTES + 1)
        except (EOFError, OSError, gzip.BadGzipFile, zlib.error) as exc:
            raise PimsimError(f"{path}: truncated or corrupt gzip stream ({exc}); regenerate the trace") from None
        if len(raw) > MAX_TRACE_BYTES:
            raise PimsimError(too_big)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PimsimError(f"{path}: not UTF-8 text at byte {exc.start}; a pimtrace file is JSON Lines") from None
    return text.splitlines()


def _lin_from(d: dict[str, int]) -> Lin:
    return Lin(int(d["const"]), int(d["ctx"]))


def _tensor_from(d: dict[str, Any]) -> TensorSpec:
    return TensorSpec(name=d["name"], shape=tuple(d["shape"]), dtype=d["dtype"], src=d.get("src"))


def _weight_from(d: dict[str, Any]) -> WeightInfo:
    q, s, m = d["quant"], d["sparsity"], d.get("mask")
    return WeightInfo(
        name=d["name"], role=d["role"], shape=tuple(d["shape"]), dtype=d["dtype"], tied_to=d.get("tied_to"),
        quant=Quantization(
            scheme=q["scheme"], weight_bits=q["weight_bits"], granularity=q["granularity"],
            group_size=q.get("group_size"), symmetric=q["symmetric"], scale_dtype=q.get("scale_dtype"),
            zero_dtype=q.get("zero_dtype"), overhead_bits_per_weight=float(q["overhead_bits_per_weight"]),
            max_levels_per_group=q.get("max_levels_per_group"),
        ),
        sparsity=Sparsity(
            pattern=s["pattern"], params=tuple(sorted(s.get("params", {}).items())), method=s["method"],
            density=float(s["density"]),
            zero_fraction_at={int(g): float(f) for g, f in sorted(s["zero_fraction_at"].items(), key=lambda kv: int(kv[0]))},
            measured=bool(s["measured"]),
            per_layer_density=None if s.get("per_layer_density") is None else tuple(s["per_layer_density"]),
        ),
        mask=None if not m else MaskRef(file=m["file"], key=m["key"], shape=tuple(m["shape"])),
    )


def op_from_dict(d: dict[str, Any]) -> Op:
    a = d.get("attrs", {})
    return Op(
        name=d["name"], kind=d["kind"], scope=d["scope"],
        inputs=tuple(_tensor_from(t) for t in d["inputs"]), outputs=tuple(_tensor_from(t) for t in d["outputs"]),
        deps=tuple(d["deps"]), macs_lin=_lin_from(d["macs"]), elements_lin=_lin_from(d["elements"]),
        weights=tuple(_weight_from(w) for w in d.get("weights", [])),
        in_features=a.get("in_features"), out_features=a.get("out_features"), bias=bool(a.get("bias", False)),
        parts=tuple((n, int(w)) for n, w in a.get("parts", [])), heads=a.get("heads"), kv_heads=a.get("kv_heads"),
        head_dim=a.get("head_dim"), eps=a.get("eps"),
    )


def header_from_dict(d: dict[str, Any]) -> TraceHeader:
    return TraceHeader(
        schema=d["schema"], generator=d["generator"], model=ModelConfig(**d["model"]),
        params_total=d["params"]["total"], params_non_embedding=d["params"]["non_embedding"],
        compression=Compression(**d["compression"]), source=d["source"], content_hash=d["content_hash"],
        masks=d.get("masks"),
    )


def load_trace(path: str | Path) -> Trace:
    """Read and validate a trace file. Any problem raises a one-line PimsimError (file:line: field: problem)."""
    from simulator.trace.validate import validate_records

    path = Path(path)
    records, problems = validate_records(read_lines(path))
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems; run `pimsim validate-trace {path}`)" if len(problems) > 1 else ""
        raise PimsimError(f"{path}:{first.format()}{more}")
    header = header_from_dict(records[0])
    return Trace(header=header, ops=tuple(op_from_dict(r) for r in records[1:]))
