"""`pimsim run` and `pimsim reproduce` from the command line: one JSON object, readable report, one-line errors."""

import json

import pytest

from simulator.cli import main


def test_run_json_is_one_object(capsys, tmp_path):
    assert main(["run", "--model", "gpt2-small", "--context", "64", "--tokens", "2", "--json",
                 "--set", "organisation.channels=16", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    o = json.loads(out)
    assert o["model"] == "gpt2-small" and o["tokens"] == 2 and o["context_start"] == 64 and o["channels"] == 16
    assert o["speedup"]["gpu"] > 1 and o["energy_efficiency_gain"]["cpu"] > 1
    assert json.loads((tmp_path / "result.json").read_text())["cycles"] == o["cycles"]


def test_run_readable_report(capsys):
    assert main(["run", "--trace", "traces/gpt2-small.int8.pimtrace.jsonl", "--context", "10", "--tokens", "1",
                 "--set", "mac.int8=true", "--gpu", "a100"]) == 0
    out = capsys.readouterr().out
    for needle in ("per token", "row-buffer hit rate", "latency by operator", "PIM speedup", "energy"):
        assert needle in out


@pytest.mark.parametrize("argv,needle", [
    (["run", "--model", "gpt9"], "--model: unknown model 'gpt9'"),
    (["run", "--model", "gpt2-small", "--context", "2000"], "--context: must be in 1..1024"),
    (["run", "--model", "gpt2-small", "--context", "1000", "--tokens", "100"], "pass the context limit 1024"),
    (["run", "--model", "gpt2-xl", "--set", "organisation.channels=1"], "needs"),
    (["run", "--model", "gpt2-small", "--set", "timing.nRP=0"], "timing.nRP: must be a positive integer"),
    (["run", "--trace", "nope.jsonl"], "nope.jsonl"),
    (["run", "--model", "gpt2-small", "--gpu", "tpu9"], "tpu9"),
])
def test_run_bad_input_one_line(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err


def test_reproduce_json(capsys):
    assert main(["reproduce", "pim-gpt", "--models", "gpt2-small,gpt3-small", "--samples", "2", "--json"]) == 0
    o = json.loads(capsys.readouterr().out)
    assert [m["model"] for m in o["models"]] == ["gpt2-small", "gpt3-small"]
    for m in o["models"]:
        for k in ("speedup_gpu", "speedup_cpu", "ee_gain_gpu", "ee_gain_cpu", "per_token_latency_s"):
            assert m[k] > 0
