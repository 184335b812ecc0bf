"""validate-trace: shipped traces pass; corrupted traces fail with one-line errors naming line and field."""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.errors import PimsimError
from simulator.trace import derive_trace, dumps, load_trace, validate_records
from simulator.trace import cli_commands

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "traces").glob("*.pimtrace.jsonl*"))
GOOD = dumps(derive_trace("gpt2-small")).splitlines()


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pimsim")
    cli_commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PimsimError as err:
        print(f"pimsim: error: {err}")
        return 2


def test_traces_are_shipped():
    names = {p.name for p in SHIPPED}
    for m in ("gpt2-small", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-small", "gpt3-medium", "gpt3-large",
              "gpt3-xl", "gpt3-xl-24h", "smollm2-135m"):
        assert f"{m}.pimtrace.jsonl" in names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_trace_valid(path):
    t = load_trace(path)
    assert t.ops and t.header.content_hash.startswith("sha256:")
    assert path.stat().st_size < 200_000  # small enough to commit


def test_shipped_traces_match_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "traces/schema/pimtrace-1.schema.json").read_text())
    v = jsonschema.Draft202012Validator(schema)
    for path in SHIPPED:
        text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
        for i, line in enumerate(text.splitlines(), 1):
            errs = list(v.iter_errors(json.loads(line)))
            assert not errs, f"{path.name}:{i}: {errs[0].message}"


def _op_line(name: str) -> int:
    for i, line in enumerate(GOOD):
        if json.loads(line).get("name") == name:
            return i
    raise KeyError(name)


def _edit(lineno: int, fn) -> list[str]:
    lines = list(GOOD)
    rec = json.loads(lines[lineno])
    fn(rec)
    lines[lineno] = json.dumps(rec, sort_keys=True)
    return lines


def _set(path: list, value):
    def fn(rec):
        obj = rec
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    return fn


QKV = _op_line("attn.qkv")
CORRUPT = {
    "truncated": (GOOD[:9], 1, "op_count"),
    "truncated_mid_line": (GOOD[:8] + [GOOD[8][:40]], 9, "-"),
    "wrong_schema": (_edit(0, _set(["schema"], "pimtrace/0")), 1, "schema"),
    "unknown_op": (_edit(QKV, _set(["kind"], "conv2d")), QKV + 1, "kind"),
    "shape_mismatch": (_edit(QKV, _set(["inputs", 0, "shape"], [1, 700])), QKV + 1, "inputs[0].shape"),
    "dtype_mismatch": (_edit(QKV, _set(["inputs", 0, "dtype"], "fp32")), QKV + 1, "inputs[0].dtype"),
    "bad_dtype": (_edit(QKV, _set(["outputs", 0, "dtype"], "bf17")), QKV + 1, "outputs[0].dtype"),
    "negative_macs": (_edit(QKV, _set(["macs", "const"], -5)), QKV + 1, "macs.const"),
    "wrong_macs": (_edit(QKV, _set(["macs", "const"], 5)), QKV + 1, "macs"),
    "density_out_of_range": (_edit(QKV, _set(["weights", 0, "sparsity", "density"], 1.5)), QKV + 1,
                             "weights[0].sparsity.density"),
    "missing_group": (_edit(QKV, lambda r: r["weights"][0]["sparsity"]["zero_fraction_at"].pop("16")), QKV + 1,
                      "weights[0].sparsity.zero_fraction_at.16"),
    "bits_vs_dtype": (_edit(QKV, _set(["weights", 0, "quant", "weight_bits"], 4)), QKV + 1,
                      "weights[0].quant.weight_bits"),
    "unknown_src": (_edit(QKV, _set(["inputs", 0, "src"], "nowhere:y")), QKV + 1, "inputs[0].src"),
    "missing_field": (_edit(QKV, lambda r: r.pop("deps")), QKV + 1, "deps"),
    "extra_field": (_edit(QKV, _set(["colour"], "red")), QKV + 1, "colour"),
    "bad_index": (_edit(QKV, _set(["index"], 99)), QKV + 1, "index"),
    "edited_without_hash": (_edit(0, _set(["model", "note"], "edited")), 1, "content_hash"),
    "not_json": (GOOD[:3] + ["{not json"] + GOOD[4:], 4, "-"),
    "empty_line": (GOOD[:3] + [""] + GOOD[4:], 4, "-"),
    "header_not_first": (GOOD[1:2] + GOOD[0:1] + GOOD[2:], 1, "record"),
    "scope_order": (GOOD[:3] + [GOOD[-1]] + GOOD[3:-1], 5, "scope"),
    "gemv_without_in_features": (_edit(QKV, lambda r: r["attrs"].pop("in_features")), QKV + 1, "attrs.in_features"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupted_trace_rejected(tmp_path, case, capsys):
    lines, line, field = CORRUPT[case]
    path = tmp_path / f"{case}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    _, problems = validate_records(path.read_text().splitlines())
    assert problems, case
    assert any(p.line == line and p.field == field for p in problems), [p.format() for p in problems]
    with pytest.raises(PimsimError) as err:
        load_trace(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}:")
    assert run_cli(["validate-trace", str(path)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out and all(l.startswith(f"{path}:") for l in out)
    assert any(f":{line}: {field}:" in l for l in out)


def test_unreadable_files(tmp_path, capsys):
    gz = tmp_path / "t.jsonl.gz"
    gz.write_bytes(gzip.compress("\n".join(GOOD).encode(), mtime=0)[:200])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    for p, what in ((gz, "gzip"), (empty, "empty"), (binary, "UTF-8"), (tmp_path / "missing.jsonl", "cannot read")):
        with pytest.raises(PimsimError, match=what):
            load_trace(p)
    assert run_cli(["validate-trace", str(gz), str(empty)]) == 1
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_validate_cli_ok(tmp_path, capsys):
    p = tmp_path / "ok.jsonl"
    p.write_text("\n".join(GOOD) + "\n")
    assert run_cli(["validate-trace", str(p)]) == 0
    assert capsys.readouterr().out.strip() == f"{p}: ok"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.integers(0, len(GOOD) - 1), start=st.integers(0, 3000), length=st.integers(1, 50),
       junk=st.text(max_size=20))
def test_random_corruption_never_tracebacks(line, start, length, junk):
    lines = list(GOOD)
    text = lines[line]
    lines[line] = text[:start] + junk + text[start + length:]
    records, problems = validate_records(lines)  # must not raise
    if not problems:  # an edit that keeps the content (e.g. the generator string) is fine
        from simulator.trace.io import header_from_dict, op_from_dict

        header_from_dict(records[0])
        [op_from_dict(r) for r in records[1:]]
    for p in problems:
        assert "\n" not in p.format()


@pytest.mark.parametrize("path", [p for p in SHIPPED if p.name.count(".") == 2], ids=lambda p: p.name)
def test_shipped_dense_traces_up_to_date(path):
    """The dense traces are exactly what `pimsim export-trace --model M` writes today."""
    name = path.name.split(".")[0]
    assert path.read_text() == dumps(derive_trace(name))
