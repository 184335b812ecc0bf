"""pimtrace/1 data model: zoo, derivation, round trip, determinism, expansion."""

from __future__ import annotations

import dataclasses
import gzip

import pytest

from simulator.errors import PimsimError
from simulator.trace import (
    MODEL_ZOO, PIM_GPT_MODELS, SCHEMA_VERSION, derive_trace, dumps, expand, expand_range, get_model, load_trace,
    save_trace, step_totals, trace_hash,
)


def test_zoo_has_all_models():
    for name in PIM_GPT_MODELS + ("gpt3-xl-24h", "smollm2-135m"):
        assert name in MODEL_ZOO
    assert len(PIM_GPT_MODELS) == 8


@pytest.mark.parametrize("name,total,non_emb", [
    ("gpt2-small", 124_439_808, 85_056_000),      # HF GPT2LMHeadModel.num_parameters()
    ("gpt2-xl", 1_557_611_200, 1_475_561_600),
    ("smollm2-135m", 134_515_008, 106_203_456),   # HF SmolLM2-135M
])
def test_param_counts(name, total, non_emb):
    h = derive_trace(name).header
    assert (h.params_total, h.params_non_embedding) == (total, non_emb)


def test_gpt3_xl_readings():
    a, b = get_model("gpt3-xl"), get_model("gpt3-xl-24h")
    assert (a.n_heads, a.head_dim, a.attn_dim) == (16, 128, 2048)
    assert (b.n_heads, b.head_dim, b.attn_dim) == (24, 128, 3072)
    tb = derive_trace("gpt3-xl-24h")
    assert tb.op("attn.qkv").out_features == 3 * 3072
    assert tb.op("attn.o_proj").in_features == 3072


def test_gpt2_small_ops():
    t = derive_trace("gpt2-small")
    kinds = [o.kind for o in t.ops]
    assert kinds == ["embedding", "embedding", "add", "layernorm", "gemv", "kv_append", "attn_score", "softmax",
                     "attn_value", "gemv", "residual_add", "layernorm", "gemv", "gelu", "gemv", "residual_add",
                     "layernorm", "lm_head"]
    qkv = t.op("attn.qkv")
    assert (qkv.in_features, qkv.out_features, qkv.parts) == (768, 2304, (("q", 768), ("k", 768), ("v", 768)))
    assert qkv.per_layer and not t.op("lm_head").per_layer
    assert qkv.macs(1) == 768 * 2304
    assert qkv.weight_bytes == (2304 * 768 + 2304) * 2
    score = t.op("attn.score")
    assert score.macs(100) == 12 * 64 * 100 and (score.heads, score.head_dim) == (12, 64)
    assert t.op("lm_head").weights[0].tied_to == "transformer.wte.weight"
    assert t.op("lm_head").weight_bytes == 0 and t.op("lm_head").weight_read_bytes == 50257 * 768 * 2
    w = qkv.weights[0]
    assert w.sparsity.zero_fraction_at == {16: 0.0, 32: 0.0, 64: 0.0, 128: 0.0, 256: 0.0, 512: 0.0, 1024: 0.0}
    assert w.quant.weight_bits == 16 and w.sparsity.density == 1.0


def test_llama_ops():
    t = derive_trace("smollm2-135m")
    qkv = t.op("attn.qkv")
    assert qkv.out_features == 576 + 2 * 192 and len(qkv.weights) == 3
    assert t.op("attn.score").kv_heads == 3
    assert t.op("mlp.gate_up").out_features == 2 * 1536
    assert [o.kind for o in t.scope_ops("layer")].count("rope") == 1
    assert t.op("mlp.act").kind == "swiglu"


def test_step_totals_gpt2_small():
    t = derive_trace("gpt2-small")
    macs = 12 * (768 * 2304 + 768 * 768 + 2 * 768 * 3072 + 2 * 12 * 64 * 10) + 768 * 50257
    assert step_totals(t, 10)["macs"] == macs
    assert expand(t, 10).macs == macs


@pytest.mark.parametrize("name", sorted(MODEL_ZOO))
def test_round_trip_and_determinism(tmp_path, name):
    t = derive_trace(name)
    p1, p2 = tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"
    save_trace(t, p1)
    save_trace(derive_trace(name), p2)
    assert load_trace(p1) == t and load_trace(p2) == t
    assert gzip.decompress(p2.read_bytes()) == p1.read_bytes()
    save_trace(t, tmp_path / "c.jsonl.gz")
    assert (tmp_path / "c.jsonl.gz").read_bytes() == p2.read_bytes()  # gzip mtime 0: same bytes
    assert t.header.content_hash == trace_hash(t) and t.header.schema == SCHEMA_VERSION
    assert hash(t) == hash(load_trace(p1))  # frozen dataclasses usable as cache keys


def test_hash_ignores_generator_but_not_content():
    t = derive_trace("gpt2-small")
    other = dataclasses.replace(t, header=dataclasses.replace(t.header, generator="pimsim 9.9"))
    assert trace_hash(other) == trace_hash(t)
    assert trace_hash(derive_trace("gpt2-small", act_dtype="fp16")) != trace_hash(t)
    assert dumps(t) == dumps(derive_trace("gpt2-small"))


def test_expand_deps_and_shapes():
    t = derive_trace("gpt2-small")
    step = expand(t, 5)
    assert len(step.ops) == 3 + 12 * 13 + 2
    first = step.ops[3]  # layers.0.ln_1 reads the embedding sum
    assert first.name == "layers.0.ln_1" and first.deps == (2,)
    l1 = step.ops[3 + 13]
    assert l1.name == "layers.1.ln_1" and l1.deps == (3 + 12,)
    score = step.ops[6]
    assert score.kind == "attn_score" and score.output_shapes == ((12, 1, 5),)
    assert step.ops[-1].name == "lm_head" and step.ops[-2].deps == (3 + 12 * 13 - 1,)
    steps = list(expand_range(t, 1, 4))
    assert [s.ctx for s in steps] == [1, 2, 3, 4]
    assert steps[3].macs - steps[0].macs == 3 * 2 * 12 * 12 * 64


@pytest.mark.parametrize("ctx", [0, 1025, -3])
def test_expand_rejects_bad_ctx(ctx):
    with pytest.raises(PimsimError, match="ctx"):
        expand(derive_trace("gpt2-small"), ctx)


def test_unknown_model():
    with pytest.raises(PimsimError, match="unknown model"):
        derive_trace("gpt5")
