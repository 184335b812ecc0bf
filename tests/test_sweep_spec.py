"""Sweep specs: validation (one-line errors naming file and field), expansion, filters and point keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator.errors import PimsimError
from simulator.sweep.points import expand
from simulator.sweep.spec import SWEEP_DIR, load_spec, validate_spec

BASE = {"name": "t", "models": ["gpt2-small"]}


def _err(data: dict) -> str:
    with pytest.raises(PimsimError) as exc:
        validate_spec(data, "s.yaml")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("s.yaml: ")
    return msg


@pytest.mark.parametrize("data, field, words", [
    ({**BASE, "bogus": 1}, "bogus", "unknown key"),
    ({**BASE, "axes": [{"key": "organisation.channels", "values": [4], "extra": 1}]}, "axes[0].extra", "unknown key"),
    ({**BASE, "axes": [{"key": "organisation.chanels", "values": [4]}]}, "axes[0].values[0]", "unknown config key"),
    ({**BASE, "axes": [{"key": "organisation", "values": [4]}]}, "axes[0].values[0]", "section"),
    ({**BASE, "axes": [{"key": "organisation.channels", "values": [[4], 8]}]}, "axes[0].values[0]", "plain value"),
    ({**BASE, "axes": [{"values": [{"organisation.channels": 4}]}]}, "axes[0]", "needs a name"),
    ({**BASE, "axes": [{"key": "context", "values": [1, 2], "labels": ["a"]}]}, "axes[0]", "labels"),
    ({**BASE, "axes": [{"zip": [{"key": "context", "values": [1, 2]}, {"key": "tokens", "values": [1]}]}]},
     "axes[0]", "same number"),
    ({**BASE, "axes": [{"zip": [{"key": "context", "values": [1]}, {"key": "tokens", "values": [1], "x": 0}]}]},
     "axes[0].zip[1].x", "unknown key"),
    ({**BASE, "axes": [{"key": "context", "values": [0]}]}, "axes[0].values[0]", "positive integer"),
    ({**BASE, "models": ["gpt2-smal"]}, "models[0]", "unknown model"),
    ({"name": "t"}, "models", "no models"),
    ({**BASE, "traces": ["traces/gpt2-small.pimtrace.jsonl"]}, "traces", "not both"),
    ({**BASE, "axes": [{"key": "model", "values": ["gpt2-xl"]}]}, "axes", "twice"),
    ({**BASE, "traces": [], "run": {"gpu": "nope"}}, "run.gpu", "unknown gpu baseline preset"),
    ({**BASE, "run": {"context": -1}}, "run.context", "positive integer"),
    ({**BASE, "set": {"context": 3}}, "set.context", "run option"),
    ({**BASE, "axes": [{"key": "organisation.channels", "values": [4]}, {"key": "organisation.channels",
                                                                         "values": [8]}]}, "axes[1].name", "twice"),
    ({**BASE, "axes": [{"name": "status", "key": "organisation.channels", "values": [4]}]}, "axes[0].name",
     "result column"),
    ({**BASE, "filters": {"exclude": [{"organisation.x": 1}]}}, "filters.exclude[0].organisation.x", "not an axis"),
    ({**BASE, "filters": {"exclude": [{"context": {"lq": 1}}]}}, "filters.exclude[0].context.lq", "unknown key"),
    ({**BASE, "traces": None}, "traces", "must be a list"),
])
def test_bad_specs_name_the_field(data, field, words):
    msg = _err(data)
    assert msg.startswith(f"s.yaml: {field}: "), msg
    assert words in msg, msg


def test_yaml_errors_and_missing_files(tmp_path: Path):
    bad = tmp_path / "bad_sweep.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(PimsimError, match=r"bad_sweep.yaml: YAML syntax error at line"):
        load_spec(bad)
    with pytest.raises(PimsimError, match="sweep spec not found"):
        load_spec(tmp_path / "missing.yaml")
    nolist = tmp_path / "x_sweep.yaml"
    nolist.write_text("- 1\n")
    with pytest.raises(PimsimError, match="top level must be a mapping"):
        load_spec(nolist)


def test_shipped_specs_validate_and_expand():
    files = sorted(SWEEP_DIR.glob("*sweep*.yaml"))
    names = {f.name for f in files}
    assert {"channels_banks_sweep.yaml", "paper_grid_sweep.yaml"} <= names
    for f in files:
        spec, path = load_spec(f)
        points = expand(spec, path.parent, code="pinned")
        assert points, f
        assert all(p.error is None for p in points), [p.error for p in points if p.error][:1]
    spec, path = load_spec("channels_banks_sweep")  # by name
    assert len(expand(spec, path.parent, code="pinned")) == 16


def test_product_zip_labels_and_filters():
    spec = validate_spec({
        "name": "t", "models": ["gpt2-small", "gpt2-medium"], "run": {"tokens": 2},
        "axes": [
            {"key": "organisation.channels", "values": [4, 8, 16]},
            {"name": "banks", "values": [{"organisation.bank_groups": 2}, {"organisation.bank_groups": 4}],
             "labels": [8, 16]},
            {"zip": [{"key": "context", "values": [128, 512]}, {"key": "tokens", "values": [4, 1]}]},
        ],
        "filters": {"exclude": [{"model": "gpt2-medium", "channels": [4, 8]}],
                    "include": [{"organisation.bank_groups": {"ge": 2}}]},
    }, "s.yaml")
    points = expand(spec, code="pinned")
    assert len(points) == 2 * 3 * 2 * 2 - 2 * 2 * 2  # minus gpt2-medium at 4 and 8 channels
    first = points[0]
    assert first.labels == (("channels", 4), ("banks", 8), ("context", 128), ("tokens", 4))
    assert first.request.set == ("organisation.channels=4", "organisation.bank_groups=2")
    assert (first.request.context, first.request.tokens) == (128, 4)
    assert points[1].request.context == 512 and points[1].request.tokens == 1  # zipped, not multiplied
    assert dict(first.config_values)["banks_per_channel"] == 8
    assert [p.index for p in points] == list(range(len(points)))
    assert {p.model for p in points if dict(p.labels)["channels"] in (4, 8)} == {"gpt2-small"}
    assert len({p.key for p in points}) == len(points)


def test_point_keys_depend_on_what_changes_a_result():
    def keys(extra: dict, code: str = "v1") -> list[str]:
        spec = validate_spec({**BASE, "axes": [{"key": "organisation.channels", "values": [8, 16]}], **extra},
                             "s.yaml")
        return [p.key for p in expand(spec, code=code)]

    base = keys({})
    assert keys({}) == base  # stable
    assert keys({"description": "other words", "name": "renamed"}) == base  # names do not matter
    assert keys({}, code="v2") != base  # code version does
    assert keys({"run": {"tokens": 3}}) != base
    assert keys({"set": {"refresh.enabled": False}}) != base
    # the same resolved config reached two ways is the same point
    spec = validate_spec({**BASE, "set": {"organisation.channels": 8}}, "s.yaml")
    assert expand(spec, code="v1")[0].key == base[0]


def test_invalid_config_value_is_a_point_error_not_a_spec_error():
    spec = validate_spec({**BASE, "axes": [{"key": "organisation.channels", "values": [8, 99]}]}, "s.yaml")
    ok, bad = expand(spec, code="v1")
    assert ok.error is None and ok.config_hash
    assert bad.error and "organisation.channels" in bad.error and "\n" not in bad.error


def test_trace_axis_uses_trace_files(tmp_path: Path):
    spec_file = tmp_path / "t_sweep.yaml"
    spec_file.write_text(yaml.safe_dump({
        "name": "t", "axes": [{"name": "variant", "key": "trace", "labels": ["dense", "int8"],
                               "values": ["traces/gpt2-small.pimtrace.jsonl",
                                          "traces/gpt2-small.int8.pimtrace.jsonl"]}]}))
    spec, path = load_spec(spec_file)
    dense, int8 = expand(spec, path.parent, code="v1")
    assert dense.model == int8.model == "gpt2-small"
    assert dense.trace_hash != int8.trace_hash and dense.key != int8.key
    assert Path(dense.request.trace).is_absolute() and dense.request.to_dict()["trace"] == dense.request.trace
    assert "model" not in dense.request.to_dict()
