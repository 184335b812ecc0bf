"""Validation of `pimtrace/1` files: schema, shapes, dtypes, ranges, dependencies and the content hash.

Works on the raw JSON records so that every problem can name its line and field. Each problem is one
line: `<line>: <field>: <what is wrong>[; <fix>]`. The JSON Schema in traces/schema/ describes the same
record layout for other tools; this module adds the checks a JSON Schema cannot express (dimension
agreement between producer and consumer ops, MAC and byte counts, op order, the hash).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from simulator.trace.schema import DTYPE_BITS, MAC_KINDS, OP_KINDS, SCHEMA_VERSION, ZERO_FRACTION_GROUPS, Lin

_SCOPES = ("pre", "layer", "post")
_SPECIAL_SRC = {"@token": ("pre",), "@position": ("pre",), "@layer_in": ("layer",), "@layers_out": ("post",)}
_MODEL_FIELDS = {
    "name": str, "family": str, "n_layers": int, "d_model": int, "n_heads": int, "n_kv_heads": int,
    "head_dim": int, "ffn_dim": int, "ffn_kind": str, "vocab_size": int, "context_limit": int, "norm_kind": str,
    "activation": str, "position": str, "tied_embeddings": bool, "linear_bias": bool, "norm_eps": float,
    "rope_theta": (float, type(None)), "note": str,
}
_ENUMS = {
    "family": ("gpt2", "gpt3", "llama"), "ffn_kind": ("gelu", "swiglu"), "norm_kind": ("layernorm", "rmsnorm"),
    "activation": ("gelu", "silu"), "position": ("learned", "rope"),
}
_COMPRESSION_FIELDS = {"quant": str, "prune": str, "prune_method": str, "calib_tokens": int, "seed": int, "weights": str}
_HEADER_KEYS = {"record", "schema", "generator", "model", "params", "compression", "source", "content_hash", "masks",
                "op_count"}
_OP_KEYS = {"record", "index", "name", "kind", "scope", "inputs", "outputs", "deps", "macs", "elements", "act_bytes",
            "weight_bytes", "attrs", "weights"}
_ATTR_KEYS = {"in_features", "out_features", "bias", "parts", "heads", "kv_heads", "head_dim", "eps"}
_ATTN_KINDS = ("attn_score", "attn_value", "kv_append", "rope")


@dataclass(frozen=True)
class Problem:
    line: int
    field: str
    message: str

    def format(self) -> str:
        return f"{self.line}: {self.field}: {self.message}"


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return (isinstance(x, (int, float))) and not isinstance(x, bool)


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.line = 0

    def bad(self, field: str, message: str) -> None:
        self.problems.append(Problem(self.line, field, message))

    def keys(self, obj: dict, allowed: set[str], required: set[str], field: str) -> bool:
        ok = True
        for k in sorted(required - obj.keys()):
            self.bad(f"{field}.{k}" if field else k, "missing")
            ok = False
        for k in sorted(obj.keys() - allowed):
            self.bad(f"{field}.{k}" if field else k, "unknown field; remove it (schema pimtrace/1)")
        return ok

    def pos_int(self, v: Any, field: str, allow_zero: bool = False) -> bool:
        if not _is_int(v) or v < (0 if allow_zero else 1):
            self.bad(field, f"must be a {'non-negative' if allow_zero else 'positive'} integer, got {v!r}")
            return False
        return True

    def lin(self, v: Any, field: str) -> Lin | None:
        if not isinstance(v, dict) or set(v) != {"const", "ctx"}:
            self.bad(field, f"must be {{\"const\": int, \"ctx\": int}}, got {v!r}")
            return None
        if not (_is_int(v["const"]) and _is_int(v["ctx"]) and v["const"] >= 0 and v["ctx"] >= 0):
            self.bad(field, f"const and ctx must be non-negative integers, got {v!r}")
            return None
        return Lin(v["const"], v["ctx"])

    def tensor(self, t: Any, field: str, is_input: bool) -> Lin | None:
        if not isinstance(t, dict):
            self.bad(field, "must be an object {name, shape, dtype" + (", src}" if is_input else "}"))
            return None
        allowed = {"name", "shape", "dtype", "src"} if is_input else {"name", "shape", "dtype"}
        if not self.keys(t, allowed, {"name", "shape", "dtype"} | ({"src"} if is_input else set()), field):
            return None
        if not isinstance(t["name"], str) or not t["name"]:
            self.bad(f"{field}.name", "must be a non-empty string")
        shape = t["shape"]
        if not isinstance(shape, list) or not shape:
            self.bad(f"{field}.shape", f"must be a non-empty list of positive ints or \"ctx\", got {shape!r}")
            return None
        const, nctx = 1, 0
        for j, dim in enumerate(shape):
            if dim == "ctx":
                nctx += 1
            elif _is_int(dim) and dim > 0:
                const *= dim
            else:
                self.bad(f"{field}.shape[{j}]", f"must be a positive integer or \"ctx\", got {dim!r}")
                return None
        if nctx > 1:
            self.bad(f"{field}.shape", "at most one \"ctx\" dimension (sizes must be linear in the context)")
            return None
        if t["dtype"] not in DTYPE_BITS:
            self.bad(f"{field}.dtype", f"unknown dtype {t['dtype']!r}; known: {', '.join(DTYPE_BITS)}")
            return None
        return Lin(0, const) if nctx else Lin(const, 0)


def _parse_json(lines: list[str], chk: _Checker) -> list[dict | None]:
    out: list[dict | None] = []
    for i, text in enumerate(lines, start=1):
        chk.line = i
        if not text.strip():
            chk.bad("-", "empty line; a pimtrace file has one JSON object per line")
            out.append(None)
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as exc:
            chk.bad("-", f"not valid JSON ({exc.msg} at column {exc.colno}); truncated or corrupted file?")
            out.append(None)
            continue
        if not isinstance(rec, dict):
            chk.bad("-", "must be a JSON object")
            out.append(None)
            continue
        out.append(rec)
    return out


def _check_header(h: dict, chk: _Checker) -> dict | None:
    chk.line = 1
    if h.get("record") != "header":
        chk.bad("record", "line 1 must be the header record (\"record\": \"header\")")
        return None
    if h.get("schema") != SCHEMA_VERSION:
        chk.bad("schema", f"unsupported schema version {h.get('schema')!r}; this pimsim reads {SCHEMA_VERSION} "
                          "(re-export the trace with `pimsim export-trace`)")
        return None
    if not chk.keys(h, _HEADER_KEYS, _HEADER_KEYS - {"masks"}, ""):
        return None
    if not isinstance(h["generator"], str):
        chk.bad("generator", "must be a string")
    m = h["model"]
    if not isinstance(m, dict):
        chk.bad("model", "must be an object")
        return None
    if not chk.keys(m, set(_MODEL_FIELDS), set(_MODEL_FIELDS), "model"):
        return None
    for k, typ in _MODEL_FIELDS.items():
        v = m[k]
        if typ is int:
            chk.pos_int(v, f"model.{k}")
        elif typ is float:
            if not _is_num(v) or v <= 0:
                chk.bad(f"model.{k}", f"must be a positive number, got {v!r}")
        elif not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            chk.bad(f"model.{k}", f"wrong type {type(v).__name__}")
        if k in _ENUMS and v not in _ENUMS[k]:
            chk.bad(f"model.{k}", f"must be one of {', '.join(_ENUMS[k])}, got {v!r}")
    if all(_is_int(m[k]) for k in ("n_heads", "n_kv_heads")) and m["n_kv_heads"] > 0 and m["n_heads"] % m["n_kv_heads"]:
        chk.bad("model.n_kv_heads", "n_heads must be a multiple of n_kv_heads")
    p = h["params"]
    if not isinstance(p, dict) or not chk.keys(p, {"total", "non_embedding"}, {"total", "non_embedding"}, "params"):
        chk.bad("params", "must be {total, non_embedding}") if not isinstance(p, dict) else None
    else:
        chk.pos_int(p["total"], "params.total")
        chk.pos_int(p["non_embedding"], "params.non_embedding")
    c = h["compression"]
    if not isinstance(c, dict):
        chk.bad("compression", "must be an object")
    elif chk.keys(c, set(_COMPRESSION_FIELDS), set(_COMPRESSION_FIELDS), "compression"):
        for k, typ in _COMPRESSION_FIELDS.items():
            if not isinstance(c[k], typ) or isinstance(c[k], bool):
                chk.bad(f"compression.{k}", f"must be {typ.__name__}, got {c[k]!r}")
    if h["source"] not in ("derived", "captured", "imported"):
        chk.bad("source", f"must be derived, captured or imported, got {h['source']!r}")
    ch = h["content_hash"]
    if not (isinstance(ch, str) and ch.startswith("sha256:") and len(ch) == 71):
        chk.bad("content_hash", "must be \"sha256:\" + 64 hex digits")
    if h.get("masks") is not None and not isinstance(h["masks"], str):
        chk.bad("masks", "must be a file name or null")
    chk.pos_int(h["op_count"], "op_count")
    return m


def _check_weight(w: Any, f: str, chk: _Checker, n_layers: int, per_layer: bool) -> None:
    if not isinstance(w, dict):
        chk.bad(f, "must be an object")
        return
    req = {"name", "role", "shape", "dtype", "tied_to", "quant", "sparsity", "mask"}
    if not chk.keys(w, req, req, f):
        return
    if w["role"] not in ("weight", "bias", "norm_weight", "norm_bias", "embedding"):
        chk.bad(f"{f}.role", f"unknown role {w['role']!r}")
    if not isinstance(w["shape"], list) or not w["shape"] or not all(_is_int(d) and d > 0 for d in w["shape"]):
        chk.bad(f"{f}.shape", f"must be a list of positive ints, got {w['shape']!r}")
    if w["dtype"] not in DTYPE_BITS:
        chk.bad(f"{f}.dtype", f"unknown dtype {w['dtype']!r}")
    q = w["quant"]
    qkeys = {"scheme", "weight_bits", "granularity", "group_size", "symmetric", "scale_dtype", "zero_dtype",
             "overhead_bits_per_weight", "max_levels_per_group"}
    if not isinstance(q, dict) or not chk.keys(q, qkeys, qkeys, f"{f}.quant"):
        if not isinstance(q, dict):
            chk.bad(f"{f}.quant", "must be an object")
    else:
        if q["scheme"] not in ("none", "rtn", "gptq"):
            chk.bad(f"{f}.quant.scheme", f"must be none, rtn or gptq, got {q['scheme']!r}")
        bits = q["weight_bits"]
        if not _is_int(bits) or not 1 <= bits <= 32:
            chk.bad(f"{f}.quant.weight_bits", f"must be an integer in 1..32, got {bits!r}")
            bits = None
        elif w["dtype"] in DTYPE_BITS and DTYPE_BITS[w["dtype"]] != bits:
            chk.bad(f"{f}.quant.weight_bits", f"{bits} does not match dtype {w['dtype']}")
        gran = q["granularity"]
        if gran not in ("none", "tensor", "channel", "group"):
            chk.bad(f"{f}.quant.granularity", f"must be none, tensor, channel or group, got {gran!r}")
        if gran == "group":
            chk.pos_int(q["group_size"], f"{f}.quant.group_size")
        elif q["group_size"] is not None:
            chk.bad(f"{f}.quant.group_size", "must be null unless granularity is group")
        if not isinstance(q["symmetric"], bool):
            chk.bad(f"{f}.quant.symmetric", "must be true or false")
        for k in ("scale_dtype", "zero_dtype"):
            if q[k] is not None and q[k] not in DTYPE_BITS:
                chk.bad(f"{f}.quant.{k}", f"unknown dtype {q[k]!r}")
        o = q["overhead_bits_per_weight"]
        if not _is_num(o) or o < 0:
            chk.bad(f"{f}.quant.overhead_bits_per_weight", f"must be a non-negative number, got {o!r}")
        lv = q["max_levels_per_group"]
        if lv is not None and (not _is_int(lv) or lv < 1 or (bits is not None and bits < 32 and lv > 2 ** bits)):
            chk.bad(f"{f}.quant.max_levels_per_group", f"{lv!r} is not in 1..2**weight_bits")
    s = w["sparsity"]
    skeys = {"pattern", "params", "method", "density", "zero_fraction_at", "measured", "per_layer_density"}
    if not isinstance(s, dict) or not chk.keys(s, skeys, skeys, f"{f}.sparsity"):
        if not isinstance(s, dict):
            chk.bad(f"{f}.sparsity", "must be an object")
        return
    if s["pattern"] not in ("dense", "unstructured", "n:m", "block", "burst"):
        chk.bad(f"{f}.sparsity.pattern", f"must be dense, unstructured, n:m, block or burst, got {s['pattern']!r}")
    if not isinstance(s["params"], dict) or not all(_is_num(v) for v in s["params"].values()):
        chk.bad(f"{f}.sparsity.params", "must be an object of numbers")
    if s["method"] not in ("none", "magnitude", "wanda", "sparsegpt"):
        chk.bad(f"{f}.sparsity.method", f"must be none, magnitude, wanda or sparsegpt, got {s['method']!r}")
    if not _is_num(s["density"]) or not 0.0 <= s["density"] <= 1.0:
        chk.bad(f"{f}.sparsity.density", f"must be in [0, 1], got {s['density']!r}")
    z = s["zero_fraction_at"]
    want = {str(g) for g in ZERO_FRACTION_GROUPS}
    if not isinstance(z, dict) or set(z) != want:
        chk.bad(f"{f}.sparsity.zero_fraction_at", f"must map exactly the group sizes {', '.join(sorted(want, key=int))}")
    else:
        for g, v in z.items():
            if not _is_num(v) or not 0.0 <= v <= 1.0:
                chk.bad(f"{f}.sparsity.zero_fraction_at.{g}", f"must be in [0, 1], got {v!r}")
    if not isinstance(s["measured"], bool):
        chk.bad(f"{f}.sparsity.measured", "must be true or false")
    pld = s["per_layer_density"]
    if pld is not None:
        if not isinstance(pld, list) or not all(_is_num(x) and 0.0 <= x <= 1.0 for x in pld):
            chk.bad(f"{f}.sparsity.per_layer_density", "must be null or a list of numbers in [0, 1]")
        elif per_layer and len(pld) != n_layers:
            chk.bad(f"{f}.sparsity.per_layer_density", f"has {len(pld)} entries, model has {n_layers} layers")
    m = w["mask"]
    if m is not None and (not isinstance(m, dict) or set(m) != {"file", "key", "shape"}):
        chk.bad(f"{f}.mask", "must be null or {file, key, shape}")


def _weight_nbytes(w: dict) -> int | None:
    try:
        n = 1
        for d in w["shape"]:
            n *= d
        bits = n * (w["quant"]["weight_bits"] + w["quant"]["overhead_bits_per_weight"])
        return int(-(-bits // 8))
    except (KeyError, TypeError):
        return None


def _same(a: Lin, b: Lin) -> bool:
    return a.const == b.const and a.per_ctx == b.per_ctx


def _check_op(r: dict, idx: int, chk: _Checker, model: dict, seen: dict[str, dict], state: dict) -> None:
    if r.get("record") != "op":
        chk.bad("record", f"must be \"op\" after the header, got {r.get('record')!r}")
        return
    if not chk.keys(r, _OP_KEYS, _OP_KEYS, ""):
        return
    if r["index"] != idx:
        chk.bad("index", f"is {r['index']!r}, expected {idx} (ops must be numbered in file order from 0)")
    name, kind, scope = r["name"], r["kind"], r["scope"]
    if not isinstance(name, str) or not name:
        chk.bad("name", "must be a non-empty string")
        return
    if name in seen:
        chk.bad("name", f"duplicate op name {name!r}")
    if kind not in OP_KINDS:
        chk.bad("kind", f"unknown op kind {kind!r}; known: {', '.join(OP_KINDS)}")
        return
    if scope not in _SCOPES:
        chk.bad("scope", f"must be pre, layer or post, got {scope!r}")
        return
    if _SCOPES.index(scope) < state["scope"]:
        chk.bad("scope", f"{scope!r} op after {_SCOPES[state['scope']]!r} ops; order must be pre, layer, post")
    state["scope"] = max(state["scope"], _SCOPES.index(scope))
    attrs = r["attrs"]
    if not isinstance(attrs, dict):
        chk.bad("attrs", "must be an object")
        return
    for k in sorted(set(attrs) - _ATTR_KEYS):
        chk.bad(f"attrs.{k}", "unknown attribute; remove it (schema pimtrace/1)")
    d_model = model.get("d_model")

    # tensors and their producers
    if not isinstance(r["inputs"], list) or not isinstance(r["outputs"], list) or not r["outputs"]:
        chk.bad("inputs" if not isinstance(r["inputs"], list) else "outputs", "must be a (non-empty) list of tensors")
        return
    in_sizes = [chk.tensor(t, f"inputs[{j}]", True) for j, t in enumerate(r["inputs"])]
    out_sizes = [chk.tensor(t, f"outputs[{j}]", False) for j, t in enumerate(r["outputs"])]
    deps: list[str] = []
    for j, (t, size) in enumerate(zip(r["inputs"], in_sizes)):
        if size is None:
            continue
        src = t["src"]
        f = f"inputs[{j}].src"
        if not isinstance(src, str):
            chk.bad(f, "must be a string \"op:output\" or one of " + ", ".join(_SPECIAL_SRC))
            continue
        if src.startswith("@"):
            if src not in _SPECIAL_SRC:
                chk.bad(f, f"unknown special source {src!r}; known: {', '.join(_SPECIAL_SRC)}")
            elif scope not in _SPECIAL_SRC[src]:
                chk.bad(f, f"{src} may only feed {'/'.join(_SPECIAL_SRC[src])} ops")
            elif src in ("@layer_in", "@layers_out") and _is_int(d_model) and not _same(size, Lin(d_model, 0)):
                chk.bad("inputs[%d].shape" % j, f"{src} has d_model = {d_model} elements, input has {size.const}")
            continue
        op_name, _, out_name = src.partition(":")
        prod = seen.get(op_name)
        if prod is None:
            chk.bad(f, f"refers to op {op_name!r}, which is not defined on an earlier line")
            continue
        if prod["scope"] != scope:
            chk.bad(f, f"{scope} op reads {prod['scope']} op {op_name!r}; cross-scope data flows through @layer_in/@layers_out")
        outs = {o.get("name"): o for o in prod["outputs"] if isinstance(o, dict)}
        if out_name not in outs:
            chk.bad(f, f"op {op_name!r} has no output {out_name!r} (it has {', '.join(map(str, outs))})")
            continue
        src_t = outs[out_name]
        src_size = state["sizes"].get(src)
        if src_size is not None and not _same(size, src_size):
            chk.bad(f"inputs[{j}].shape", f"{t['shape']} does not match {src} shape {src_t['shape']} (element count differs)")
        if src_t.get("dtype") != t["dtype"]:
            chk.bad(f"inputs[{j}].dtype", f"{t['dtype']} does not match {src} dtype {src_t.get('dtype')}")
        if op_name not in deps:
            deps.append(op_name)
    if r["deps"] != deps:
        chk.bad("deps", f"is {r['deps']!r} but the inputs come from {deps!r}")

    macs = chk.lin(r["macs"], "macs")
    chk.lin(r["elements"], "elements")
    act = chk.lin(r["act_bytes"], "act_bytes")
    if act is not None and all(s is not None for s in in_sizes + out_sizes):
        tot = Lin()
        for t, size in zip(r["inputs"] + r["outputs"], in_sizes + out_sizes):
            bits = DTYPE_BITS[t["dtype"]]
            tot = tot + Lin(size.const * bits // 8, size.per_ctx * bits // 8)
        if not _same(act, tot):
            chk.bad("act_bytes", f"is {r['act_bytes']} but the input/output tensors hold {{'const': {tot.const}, 'ctx': {tot.per_ctx}}}")

    # kind-specific attributes
    if kind in ("gemv", "lm_head"):
        k, n = attrs.get("in_features"), attrs.get("out_features")
        if chk.pos_int(k, "attrs.in_features") and chk.pos_int(n, "attrs.out_features"):
            if macs is not None and not _same(macs, Lin(k * n, 0)):
                chk.bad("macs", f"is {r['macs']} but in_features*out_features = {k * n}")
            if in_sizes and in_sizes[0] is not None and not _same(in_sizes[0], Lin(k, 0)):
                chk.bad("inputs[0].shape", f"has {in_sizes[0].const} elements, in_features is {k}")
            tot_out = sum(s.const for s in out_sizes if s is not None)
            if tot_out != n:
                chk.bad("outputs", f"hold {tot_out} elements, out_features is {n}")
            mats = [w for w in r["weights"] if isinstance(w, dict) and w.get("role") == "weight"]
            if not mats:
                chk.bad("weights", f"a {kind} op needs at least one weight of role 'weight'")
            elif all(isinstance(w.get("shape"), list) and len(w["shape"]) == 2 for w in mats):
                if any(w["shape"][1] != k for w in mats):
                    chk.bad("weights", f"weight shapes {[w['shape'] for w in mats]} must all have in_features {k} as last dim")
                if sum(w["shape"][0] for w in mats) != n:
                    chk.bad("weights", f"weight rows {[w['shape'][0] for w in mats]} do not add up to out_features {n}")
        if "parts" in attrs:
            p = attrs["parts"]
            if (not isinstance(p, list) or not all(isinstance(x, list) and len(x) == 2 for x in p)
                    or sum(x[1] for x in p if _is_int(x[1])) != n):
                chk.bad("attrs.parts", f"must be [[name, width], ...] with widths adding up to out_features {n}")
    elif macs is not None and kind not in MAC_KINDS and (macs.const or macs.per_ctx):
        chk.bad("macs", f"a {kind} op does no MACs on PIM; must be {{'const': 0, 'ctx': 0}}")
    if kind in _ATTN_KINDS:
        h, kvh, hd = attrs.get("heads"), attrs.get("kv_heads"), attrs.get("head_dim")
        if chk.pos_int(h, "attrs.heads") and chk.pos_int(kvh, "attrs.kv_heads") and chk.pos_int(hd, "attrs.head_dim"):
            if h % kvh:
                chk.bad("attrs.kv_heads", f"heads {h} is not a multiple of kv_heads {kvh}")
            if kind in ("attn_score", "attn_value") and macs is not None and not _same(macs, Lin(0, h * hd)):
                chk.bad("macs", f"is {r['macs']} but an attention op does heads*head_dim*ctx = {h * hd}*ctx MACs")
    if kind in ("layernorm", "rmsnorm") and not (_is_num(attrs.get("eps")) and attrs["eps"] > 0):
        chk.bad("attrs.eps", "a norm op needs a positive eps")

    if not isinstance(r["weights"], list):
        chk.bad("weights", "must be a list")
        return
    total = 0
    for j, w in enumerate(r["weights"]):
        _check_weight(w, f"weights[{j}]", chk, model.get("n_layers", 0), scope == "layer")
        if isinstance(w, dict) and w.get("tied_to") is None:
            nb = _weight_nbytes(w)
            total += nb or 0
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
    recs = _parse_json(lines, chk)
    if recs[0] is None:
        return [], chk.problems
    model = _check_header(recs[0], chk)
    if model is None:
        return [], chk.problems
    seen: dict[str, dict] = {}
    state: dict[str, Any] = {"scope": 0, "sizes": {}}
    for i, r in enumerate(recs[1:], start=2):
        chk.line = i
        if r is None:
            continue
        _check_op(r, i - 2, chk, model, seen, state)
    n_ops = len(recs) - 1
    chk.line = len(recs)
    if _is_int(recs[0].get("op_count")) and recs[0]["op_count"] != n_ops:
        chk.line = 1
        chk.bad("op_count", f"header announces {recs[0]['op_count']} ops but the file has {n_ops}: "
                            "truncated or edited file; regenerate it")
    if not any(r.get("scope") == "layer" for r in seen.values()):
        chk.bad("-", "the trace has no layer ops")
    else:
        last = [r for r in seen.values() if r.get("scope") == "layer"][-1]
        size = state["sizes"].get(f"{last['name']}:{last['outputs'][0]['name']}")
        if size is not None and _is_int(model.get("d_model")) and not _same(size, Lin(model["d_model"], 0)):
            chk.bad("outputs", f"the last layer op {last['name']!r} must output d_model = {model['d_model']} elements")
    if not chk.problems:
        from simulator.trace.io import _hash_dicts

        want = _hash_dicts(recs[0], [r for r in recs[1:] if r is not None])
        if recs[0]["content_hash"] != want:
            chk.line = 1
            chk.bad("content_hash", f"does not match the content ({want}); the file was edited after export — "
                                    "regenerate it or fix the hash")
    return [r for r in recs if r is not None], chk.problems
