"""Fuzzed pimtrace records, arch YAML texts and sweep specs are either accepted or rejected with one short line
naming the source; never an exception of another kind. (ISR traces and config dicts: tests/test_bad_input.py.)

Example counts are fixed per test (not hypothesis' default) so CI runs a known amount: 3000 + 2000 + 2000 here,
with 2000 + 3000 in tests/test_bad_input.py, 12 000 in all.
"""

from __future__ import annotations

import json
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.config.loader import SHIPPED_DIR, validate_arch, yaml_data
from simulator.errors import MAX_MESSAGE, PimsimError
from simulator.sweep.spec import SWEEP_DIR, validate_spec
from simulator.trace import derive_trace, dumps
from simulator.trace.io import _hash_dicts, header_from_dict, op_from_dict
from simulator.trace.validate import validate_records

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
GOOD = dumps(derive_trace("gpt2-small")).splitlines()
GOOD_RECORDS = [json.loads(line) for line in GOOD]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["ctx", "bf16", "gemv", "layer", "@layer_in", "x:y"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                           max_leaves=12)
#: raw JSON text a mutation may splice in: what json.dumps never writes but a file may contain
raw_texts = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "9" * 5000, "[" * 3000 + "]" * 3000,
                             "null", "{}", "[]", '"' + "x" * 5000 + '"', "-0", "1.0", "1e-400"])


def _one_line(err: PimsimError | str, source: str) -> None:
    text = str(err)
    assert "\n" not in text and len(text) <= MAX_MESSAGE and source in text, text


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _set(record, path, value):
    node = record
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


@settings(FUZZ, max_examples=3000)
@given(data=st.data())
def test_fuzz_pimtrace_records(data):
    lines = list(GOOD)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        kind = data.draw(st.sampled_from(["value", "raw", "delete", "line"]), label="kind")
        if kind == "line":
            lines[i] = data.draw(st.one_of(st.text(max_size=40), raw_texts), label="text")
            continue
        try:
            rec = json.loads(lines[i])
        except (ValueError, RecursionError):  # an earlier edit broke this line: edit another
            continue
        paths = [p for p in _paths(rec) if p]
        if not isinstance(rec, dict) or not paths:
            continue
        path = data.draw(st.sampled_from(paths), label="path")
        if kind == "delete":
            node = rec
            for p in path[:-1]:
                node = node[p]
            del node[path[-1]]
            lines[i] = json.dumps(rec)
        elif kind == "value":
            _set(rec, path, data.draw(json_values, label="value"))
            lines[i] = json.dumps(rec)  # NaN/Infinity floats come out as the bare words, as in a bad file
        else:
            _set(rec, path, "@@RAW@@")
            lines[i] = json.dumps(rec).replace('"@@RAW@@"', data.draw(raw_texts, label="raw"))
    if data.draw(st.booleans(), label="rehash"):  # a consistent hash, so the semantic checks see the edit
        try:
            recs = [json.loads(line) for line in lines]
            recs[0]["content_hash"] = _hash_dicts(recs[0], recs[1:])
            lines[0] = json.dumps(recs[0])
        except (ValueError, RecursionError, TypeError, KeyError, AttributeError, IndexError):
            pass
    records, problems = validate_records(lines)
    for pr in problems:
        _one_line(f"fuzz.jsonl:{pr.format()}"[:MAX_MESSAGE], "fuzz.jsonl")
    if not problems:  # accepted: it must build a trace and hold only finite numbers
        header_from_dict(records[0])
        for r in records[1:]:
            op_from_dict(r)
        assert all(not isinstance(v, float) or math.isfinite(v) for v in _leaves(records))


def _leaves(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _leaves(v)
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v)
    else:
        yield node


ARCH_TEXT = (SHIPPED_DIR / "aim_gddr6.yaml").read_text()
yaml_values = st.sampled_from(["true", "-1", "0", "1.5", ".inf", ".nan", "1e-300", "1.0e300", "null", "[1]",
                               "{a: 1}", "x", "'3'", "100000000000", "0x10", "~", "!!python/none ''", "&a 1",
                               "*a", "2", "64", "fcfs", "bf16"])


@settings(FUZZ, max_examples=2000)
@given(data=st.data())
def test_fuzz_arch_yaml(data):
    lines = ARCH_TEXT.splitlines()
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        kind = data.draw(st.sampled_from(["value", "dup", "delete", "chars"]), label="kind")
        line = lines[i]
        if kind == "value" and ":" in line:
            lines[i] = line.split(":", 1)[0] + ": " + data.draw(yaml_values, label="value")
        elif kind == "dup":
            lines.insert(i, line)
        elif kind == "delete":
            del lines[i]
        else:
            pos = data.draw(st.integers(0, len(line)), label="pos")
            lines[i] = line[:pos] + data.draw(st.text(alphabet=" :-#[]{}\t'\"&*!|>0x1.", max_size=3)) + line[pos:]
    text = "\n".join(lines) + "\n"
    try:
        parsed = yaml_data(text)
    except (yaml.YAMLError, RecursionError):
        return  # read_yaml_data turns these into one line naming the file and line (tests/bad_inputs)
    if not isinstance(parsed, dict):
        return
    try:
        cfg = validate_arch(parsed, "fuzz.yaml")
    except PimsimError as err:
        _one_line(err, "fuzz.yaml")
        return
    assert math.isfinite(cfg.timing.tck_ns) and 1 <= cfg.organisation.channels <= 63
    if cfg.refresh.enabled:
        assert cfg.timing.nRCDRD < cfg.timing.nREFI - cfg.timing.nRFC


SPEC = yaml.safe_load((SWEEP_DIR / "channels_banks_sweep.yaml").read_text())
spec_keys = st.sampled_from(["name", "arch", "set", "models", "traces", "run", "axes", "filters", "description",
                             "bogus", "key", "values", "labels", "zip", "context", "tokens", "include", "exclude"])


@settings(FUZZ, max_examples=2000)
@given(data=st.data())
def test_fuzz_sweep_specs(data):
    spec = json.loads(json.dumps(SPEC))
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        paths = [p for p in _paths(spec) if p]
        path = data.draw(st.sampled_from(paths), label="path")
        kind = data.draw(st.sampled_from(["value", "delete", "add"]), label="kind")
        if kind == "value":
            _set(spec, path, data.draw(json_values, label="value"))
        elif kind == "delete":
            node = spec
            for p in path[:-1]:
                node = node[p]
            del node[path[-1]]
        else:
            node = spec
            for p in path[:-1]:
                node = node[p]
            if isinstance(node, dict):
                node[data.draw(spec_keys, label="key")] = data.draw(json_values, label="value")
            else:
                node.append(data.draw(json_values, label="value"))
    try:
        parsed = validate_spec(spec, "s.yaml")
    except PimsimError as err:
        _one_line(err, "s.yaml")
        return
    assert parsed.grid_size() >= 1


@pytest.mark.parametrize("values", [[8, 8], [{"a.b": 1}, {"a.b": 1}]])
def test_duplicate_axis_values_are_refused(values):
    spec = {"name": "s", "models": ["gpt2-small"], "axes": [{"name": "v", "key": "organisation.channels",
                                                              "values": values}]}
    if isinstance(values[0], dict):
        del spec["axes"][0]["key"]
    with pytest.raises(PimsimError, match="given twice"):
        validate_spec(spec, "s.yaml")
