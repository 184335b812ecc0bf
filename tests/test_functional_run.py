"""End-to-end functional run on a tiny GPT-2-shaped model: PIM path vs the fp32 forward, CLI, weight files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulator.cli import main
from simulator.errors import PimsimError
from simulator.functional import ModelShape, model_shape, random_weights, run_functional
from simulator.functional.model import load_weights, weight_shapes
from simulator.kernels import MacNumerics

TINY = ModelShape("tiny", layers=2, d_model=64, heads=2, ffn=256, vocab=500, ctx=32)


def test_tiny_run_agrees_with_fp32():
    res = run_functional(TINY, tokens=6, seed=1)
    assert res.token_agreement == 1.0
    assert 0 < res.logits_max_rel_err < 0.02 and 0 < res.logits_mean_rel_err < 0.02
    j = res.to_json()
    assert set(j["functional"]) == {"tokens", "logits_max_rel_err", "logits_mean_rel_err", "token_agreement"}
    again = run_functional(TINY, tokens=6, seed=1)
    assert again == res  # deterministic


def test_bf16_accumulator_is_less_accurate():
    a = run_functional(TINY, tokens=3, seed=2)
    b = run_functional(TINY, tokens=3, seed=2, numerics=MacNumerics(accumulator="bf16"))
    assert b.logits_mean_rel_err > a.logits_mean_rel_err


def test_weights_file_roundtrip(tmp_path):
    w = random_weights(TINY, seed=3)
    path = tmp_path / "w.npz"
    np.savez(path, **w)
    loaded = load_weights(path, TINY)
    assert all((loaded[k] == w[k]).all() for k in w)
    np.savez(tmp_path / "bad.npz", **{k: v for k, v in w.items() if k != "wte"})
    with pytest.raises(PimsimError, match="wte"):
        load_weights(tmp_path / "bad.npz", TINY)
    assert run_functional(TINY, 2, weights=str(path)).tokens == 2


def test_shapes_and_errors():
    s = model_shape("gpt2-small")
    assert (s.layers, s.d_model, s.heads, s.ffn, s.vocab, s.ctx) == (12, 768, 12, 3072, 50257, 1024)
    assert weight_shapes(s)["h.0.attn.w"] == (2304, 768)
    with pytest.raises(PimsimError):
        model_shape("no-such-model")
    with pytest.raises(PimsimError):
        run_functional(TINY, tokens=40)


def test_cli_one_line_errors(capsys):
    assert main(["functional", "--model", "nope", "--tokens", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pimsim: error:") and "\n" not in err
    assert main(["functional", "--model", "gpt2-small", "--tokens", "0"]) == 2


def test_cli_json(monkeypatch, capsys):
    import simulator.functional.model as fm

    monkeypatch.setattr(fm, "model_shape", lambda name: TINY)
    assert main(["functional", "--model", "tiny", "--tokens", "2", "--json", "--accumulator", "bf16"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["functional"]["tokens"] == 2 and out["functional_details"]["accumulator"] == "bf16"
