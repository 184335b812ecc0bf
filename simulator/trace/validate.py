"""Validation of `pimtrace/1` files: each record against the shipped JSON Schema, then the cross-record checks.

Works on the raw JSON records so that every problem can name its line and field. Each problem is one
line: `<line>: <field>: <what is wrong>[; <fix>]`. The per-record layout, types, enums and ranges come from
`traces/schema/pimtrace-1.schema.json` (one source of truth, also usable by other tools); this module adds
only what a JSON Schema cannot express: dimension agreement between producer and consumer ops, MAC and byte
counts, op order, dependencies, and the content hash.

Parsing is defensive: a line longer than `MAX_LINE_CHARS`, NaN/Infinity, integers too long to convert and
JSON nested deeper than Python can parse are reported as problems of that line, not raised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from simulator.errors import clip
from simulator.trace.schema import DTYPE_BITS, MAC_KINDS, SCHEMA_VERSION, Lin

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "traces" / "schema" / "pimtrace-1.schema.json"
#: longest record line read (the largest shipped record is ~2 KB)
MAX_LINE_CHARS = 1_000_000

_SCOPES = ("pre", "layer", "post")
_SPECIAL_SRC = {"@token": ("pre",), "@position": ("pre",), "@layer_in": ("layer",), "@layers_out": ("post",)}
_ATTN_KINDS = ("attn_score", "attn_value", "kv_append", "rope")


@dataclass(frozen=True)
class Problem:
    line: int
    field: str
    message: str

    def format(self) -> str:
        return f"{self.line}: {self.field}: {self.message}"


@cache
def _validators():
    """(header validator, op validator) built from the shipped schema; integers exclude booleans and 1.0."""
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine("integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool))
    cls = jsonschema.validators.extend(base, type_checker=checker)
    defs = schema["$defs"]
    return (cls({"$ref": "#/$defs/header", "$defs": defs}), cls({"$ref": "#/$defs/op", "$defs": defs}))


_TYPE_WORDS = {"integer": "an integer", "number": "a number", "array": "a list", "object": "an object",
               "string": "a string", "boolean": "true or false", "null": "null"}


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def schema_problem(err) -> tuple[str, str]:
    """(field, message) of one jsonschema error, in this module's words."""
    field, got = _path(err.absolute_path), clip(repr(err.instance), 60)
    kind, arg = err.validator, err.validator_value
    if kind == "required":
        missing = [k for k in arg if k not in err.instance]
        return _path(list(err.absolute_path) + missing[:1]), "missing"
    if kind == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return _path(list(err.absolute_path) + [clip(str(extra[0]), 60)] if extra else err.absolute_path), \
            "unknown field; remove it (schema pimtrace/1)"
    if kind == "type":
        want = " or ".join(_TYPE_WORDS.get(a, a) for a in (arg if isinstance(arg, list) else [arg]))
        return field or "-", f"must be {want}, got {got}"
    if kind in ("enum", "const"):
        allowed = ", ".join(map(str, arg)) if kind == "enum" else repr(arg)
        return field or "-", f"must be one of {allowed}, got {got}" if kind == "enum" else f"must be {allowed}, got {got}"
    bounds = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "greater than",
              "exclusiveMaximum": "less than", "minItems": "at least", "maxItems": "at most",
              "minLength": "at least", "maxLength": "at most", "maxProperties": "at most"}
    if kind in bounds:
        unit = {"minItems": " items", "maxItems": " items", "minLength": " characters", "maxLength": " characters",
                "maxProperties": " keys"}.get(kind, "")
        return field or "-", f"must have {bounds[kind]} {arg}{unit}, got {got}" if unit else \
            f"must be {bounds[kind]} {arg}, got {got}"
    if kind == "pattern":
        return field or "-", f"does not have the expected form ({clip(err.schema.get('description', arg), 120)}), got {got}"
    return field or "-", clip(err.message, 200)


def _parse_line(text: str) -> tuple[Any, str | None]:
    """(record, None) or (None, why the line is not a JSON record)."""
    if not text.strip():
        return None, "empty line; a pimtrace file has one JSON object per line"
    if len(text) > MAX_LINE_CHARS:
        return None, f"line of {len(text)} characters is too long for a pimtrace record (limit {MAX_LINE_CHARS})"

    def no_constant(name: str):
        raise ValueError(f"{name} is not a number in pimtrace (JSON has no NaN or Infinity)")

    def finite(literal: str) -> float:
        value = float(literal)
        if value in (float("inf"), float("-inf")):
            raise ValueError(f"{clip(literal, 40)} overflows a double; numbers must be finite")
        return value

    def integer(literal: str) -> int:
        if len(literal) > 30:  # far above any count in a trace; also keeps int() away from huge digit strings
            raise ValueError(f"an integer of {len(literal)} digits is not a plausible count")
        return int(literal)

    try:
        rec = json.loads(text, parse_constant=no_constant, parse_float=finite, parse_int=integer)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno}); truncated or corrupted file?"
    except ValueError as exc:  # NaN/Infinity, or an integer with thousands of digits
        return None, f"not a valid record: {clip(str(exc), 120)}"
    except RecursionError:
        return None, "JSON nested too deeply to be a pimtrace record"
    if not isinstance(rec, dict):
        return None, "must be a JSON object"
    return rec, None


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.line = 0

    def bad(self, field: str, message: str) -> None:
        self.problems.append(Problem(self.line, field, message))

    def schema(self, record: dict, which: int) -> bool:
        """Check `record` against the header (0) or op (1) schema; report the most relevant error."""
        import jsonschema

        err = jsonschema.exceptions.best_match(_validators()[which].iter_errors(record))
        if err is None:
            return True
        self.bad(*schema_problem(err))
        return False


def _size(t: dict) -> Lin | None:
    """Element count of a (schema-valid) tensor, linear in ctx; None if it has two ctx dimensions."""
    const, nctx = 1, 0
    for dim in t["shape"]:
        if dim == "ctx":
            nctx += 1
        else:
            const *= dim
    if nctx > 1:
        return None
    return Lin(0, const) if nctx else Lin(const, 0)


def _lin(d: dict) -> Lin:
    return Lin(d["const"], d["ctx"])


def _check_header(h: dict, chk: _Checker) -> dict | None:
    chk.line = 1
    if h.get("record") != "header":
        chk.bad("record", "line 1 must be the header record (\"record\": \"header\")")
        return None
    if h.get("schema") != SCHEMA_VERSION:
        chk.bad("schema", f"unsupported schema version {clip(repr(h.get('schema')), 60)}; this pimsim reads "
                          f"{SCHEMA_VERSION} (re-export the trace with `pimsim export-trace`)")
        return None
    if not chk.schema(h, 0):
        return None
    m = h["model"]
    if m["n_heads"] % m["n_kv_heads"]:
        chk.bad("model.n_kv_heads", "n_heads must be a multiple of n_kv_heads")
    return m


def _check_weight(w: dict, f: str, chk: _Checker, n_layers: int, per_layer: bool) -> None:
    q, s = w["quant"], w["sparsity"]
    bits = q["weight_bits"]
    if DTYPE_BITS[w["dtype"]] != bits:
        chk.bad(f"{f}.quant.weight_bits", f"{bits} does not match dtype {w['dtype']}")
    if q["granularity"] == "group" and q["group_size"] is None:
        chk.bad(f"{f}.quant.group_size", "must be a positive integer when granularity is group")
    elif q["granularity"] != "group" and q["group_size"] is not None:
        chk.bad(f"{f}.quant.group_size", "must be null unless granularity is group")
    lv = q["max_levels_per_group"]
    if lv is not None and bits < 32 and lv > 2 ** bits:
        chk.bad(f"{f}.quant.max_levels_per_group", f"{lv!r} is not in 1..2**weight_bits")
    pld = s["per_layer_density"]
    if pld is not None and per_layer and len(pld) != n_layers:
        chk.bad(f"{f}.sparsity.per_layer_density", f"has {len(pld)} entries, model has {n_layers} layers")


def _weight_nbytes(w: dict) -> int:
    n = 1
    for d in w["shape"]:
        n *= d
    bits = n * (w["quant"]["weight_bits"] + w["quant"]["overhead_bits_per_weight"])
    return int(-(-bits // 8))


def _check_sources(r: dict, chk: _Checker, model: dict, seen: dict[str, dict], state: dict,
                   in_sizes: list[Lin | None]) -> None:
    scope, deps = r["scope"], []
    for j, (t, size) in enumerate(zip(r["inputs"], in_sizes)):
        if size is None:
            continue
        src, f = t["src"], f"inputs[{j}].src"
        if src.startswith("@"):
            if scope not in _SPECIAL_SRC[src]:
                chk.bad(f, f"{src} may only feed {'/'.join(_SPECIAL_SRC[src])} ops")
            elif src in ("@layer_in", "@layers_out") and size != Lin(model["d_model"], 0):
                chk.bad(f"inputs[{j}].shape", f"{src} has d_model = {model['d_model']} elements, input has {size.const}")
            continue
        op_name, _, out_name = src.partition(":")
        prod = seen.get(op_name)
        if prod is None:
            chk.bad(f, f"refers to op {clip(repr(op_name), 80)}, which is not defined on an earlier line")
            continue
        if prod["scope"] != scope:
            chk.bad(f, f"{scope} op reads {prod['scope']} op {op_name!r}; cross-scope data flows through "
                       "@layer_in/@layers_out")
        outs = {o["name"]: o for o in prod["outputs"]}
        if out_name not in outs:
            chk.bad(f, f"op {op_name!r} has no output {clip(repr(out_name), 80)} (it has {', '.join(outs)})")
            continue
        src_t = outs[out_name]
        src_size = state["sizes"].get(src)
        if src_size is not None and size != src_size:
            chk.bad(f"inputs[{j}].shape", f"{t['shape']} does not match {src} shape {src_t['shape']} "
                                         "(element count differs)")
        if src_t["dtype"] != t["dtype"]:
            chk.bad(f"inputs[{j}].dtype", f"{t['dtype']} does not match {src} dtype {src_t['dtype']}")
        if op_name not in deps:
            deps.append(op_name)
    if r["deps"] != deps:
        chk.bad("deps", f"is {clip(repr(r['deps']), 100)} but the inputs come from {deps!r}")


def _check_kind(r: dict, chk: _Checker, in_sizes: list[Lin | None], out_sizes: list[Lin | None]) -> None:
    kind, attrs, macs = r["kind"], r["attrs"], _lin(r["macs"])
    if kind in ("gemv", "lm_head"):
        k, n = attrs.get("in_features"), attrs.get("out_features")
        for key, v in (("in_features", k), ("out_features", n)):
            if v is None:
                chk.bad(f"attrs.{key}", f"a {kind} op needs a positive integer {key}")
        if k is None or n is None:
            return
        if macs != Lin(k * n, 0):
            chk.bad("macs", f"is {r['macs']} but in_features*out_features = {k * n}")
        if in_sizes and in_sizes[0] is not None and in_sizes[0] != Lin(k, 0):
            chk.bad("inputs[0].shape", f"has {in_sizes[0].const} elements, in_features is {k}")
        tot_out = sum(s.const for s in out_sizes if s is not None)
        if tot_out != n:
            chk.bad("outputs", f"hold {tot_out} elements, out_features is {n}")
        mats = [w for w in r["weights"] if w["role"] == "weight"]
        if not mats:
            chk.bad("weights", f"a {kind} op needs at least one weight of role 'weight'")
        elif all(len(w["shape"]) == 2 for w in mats):
            if any(w["shape"][1] != k for w in mats):
                chk.bad("weights", f"weight shapes {[w['shape'] for w in mats]} must all have in_features {k} as last dim")
            if sum(w["shape"][0] for w in mats) != n:
                chk.bad("weights", f"weight rows {[w['shape'][0] for w in mats]} do not add up to out_features {n}")
        if "parts" in attrs and sum(x[1] for x in attrs["parts"]) != n:
            chk.bad("attrs.parts", f"must be [[name, width], ...] with widths adding up to out_features {n}")
    elif kind not in MAC_KINDS and macs != Lin():
        chk.bad("macs", f"a {kind} op does no MACs on PIM; must be {{'const': 0, 'ctx': 0}}")
    if kind in _ATTN_KINDS:
        h, kvh, hd = attrs.get("heads"), attrs.get("kv_heads"), attrs.get("head_dim")
        for key, v in (("heads", h), ("kv_heads", kvh), ("head_dim", hd)):
            if v is None:
                chk.bad(f"attrs.{key}", f"a {kind} op needs a positive integer {key}")
        if h is None or kvh is None or hd is None:
            return
        if h % kvh:
            chk.bad("attrs.kv_heads", f"heads {h} is not a multiple of kv_heads {kvh}")
        if kind in ("attn_score", "attn_value") and macs != Lin(0, h * hd):
            chk.bad("macs", f"is {r['macs']} but an attention op does heads*head_dim*ctx = {h * hd}*ctx MACs")
    if kind in ("layernorm", "rmsnorm") and attrs.get("eps") is None:
        chk.bad("attrs.eps", "a norm op needs a positive eps")


def _check_record(r: dict, chk: _Checker) -> None:
    if r.get("record") != "op":
        chk.bad("record", f"must be \"op\" after the header, got {clip(repr(r.get('record')), 60)}")
    else:
        chk.schema(r, 1)


def _check_op(r: dict, idx: int, chk: _Checker, model: dict, seen: dict[str, dict], state: dict) -> None:
    if r["index"] != idx:
        chk.bad("index", f"is {r['index']!r}, expected {idx} (ops must be numbered in file order from 0)")
    name, scope = r["name"], r["scope"]
    if name in seen:
        chk.bad("name", f"duplicate op name {clip(repr(name), 80)}")
    if _SCOPES.index(scope) < state["scope"]:
        chk.bad("scope", f"{scope!r} op after {_SCOPES[state['scope']]!r} ops; order must be pre, layer, post")
    state["scope"] = max(state["scope"], _SCOPES.index(scope))

    sizes = []
    for which in ("inputs", "outputs"):
        for j, t in enumerate(r[which]):
            size = _size(t)
            if size is None:
                chk.bad(f"{which}[{j}].shape", "at most one \"ctx\" dimension (sizes must be linear in the context)")
            sizes.append(size)
    in_sizes, out_sizes = sizes[:len(r["inputs"])], sizes[len(r["inputs"]):]
    _check_sources(r, chk, model, seen, state, in_sizes)

    if all(s is not None for s in sizes):
        tot = Lin()
        for t, size in zip(r["inputs"] + r["outputs"], sizes):
            bits = DTYPE_BITS[t["dtype"]]
            tot = tot + Lin(size.const * bits // 8, size.per_ctx * bits // 8)
        if _lin(r["act_bytes"]) != tot:
            chk.bad("act_bytes", f"is {r['act_bytes']} but the input/output tensors hold "
                                 f"{{'const': {tot.const}, 'ctx': {tot.per_ctx}}}")
    _check_kind(r, chk, in_sizes, out_sizes)

    total = 0
    for j, w in enumerate(r["weights"]):
        _check_weight(w, f"weights[{j}]", chk, model["n_layers"], scope == "layer")
        if w["tied_to"] is None:
            total += _weight_nbytes(w)
    if r["weight_bytes"] != total:
        chk.bad("weight_bytes", f"is {r['weight_bytes']!r} but the untied weights take {total} bytes")

    seen[name] = r
    for t, size in zip(r["outputs"], out_sizes):
        if size is not None:
            state["sizes"][f"{name}:{t['name']}"] = size


def validate_records(lines: list[str]) -> tuple[list[dict], list[Problem]]:
    """Parse and check the lines of a trace. Returns (records, problems); records are usable only without problems."""
    chk = _Checker()
    if not lines:
        chk.line = 1
        chk.bad("-", "empty file; expected a pimtrace/1 header line")
        return [], chk.problems
    recs: list[dict | None] = []
    for i, text in enumerate(lines, start=1):
        rec, why = _parse_line(text)
        if why:
            chk.line = i
            chk.bad("-", why)
        recs.append(rec)
    if recs[0] is None:
        return [], chk.problems
    model = _check_header(recs[0], chk)
    if model is None:
        return [], chk.problems
    for i, r in enumerate(recs[1:], start=2):  # each record on its own first ...
        chk.line = i
        if r is not None:
            _check_record(r, chk)
    if chk.problems:  # ... and across records only when every record is well-formed (no follow-on errors)
        return [], chk.problems
    seen: dict[str, dict] = {}
    state: dict[str, Any] = {"scope": 0, "sizes": {}}
    for i, r in enumerate(recs[1:], start=2):
        chk.line = i
        _check_op(r, i - 2, chk, model, seen, state)
    n_ops = len(recs) - 1
    chk.line = len(recs)
    if recs[0]["op_count"] != n_ops:
        chk.line = 1
        chk.bad("op_count", f"header announces {recs[0]['op_count']} ops but the file has {n_ops}: "
                            "truncated or edited file; regenerate it")
    layer_ops = [r for r in seen.values() if r["scope"] == "layer"]
    if not layer_ops:
        chk.bad("-", "the trace has no layer ops")
    else:
        last = layer_ops[-1]
        size = state["sizes"].get(f"{last['name']}:{last['outputs'][0]['name']}")
        if size is not None and size != Lin(model["d_model"], 0):
            chk.bad("outputs", f"the last layer op {last['name']!r} must output d_model = {model['d_model']} elements")
    if not any(r["kind"] == "lm_head" and r["scope"] == "post" for r in seen.values()) and not chk.problems:
        chk.bad("-", "the trace has no post-scope lm_head op (the simulator maps the LM head)")
    if not chk.problems:
        from simulator.trace.io import _hash_dicts

        want = _hash_dicts(recs[0], [r for r in recs[1:] if r is not None])
        if recs[0]["content_hash"] != want:
            chk.line = 1
            chk.bad("content_hash", f"does not match the content ({want}); the file was edited after export — "
                                    "regenerate it or fix the hash")
    return [r for r in recs if r is not None], chk.problems
