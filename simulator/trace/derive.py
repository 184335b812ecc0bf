"""Derive the operator trace of one decode step from a model configuration (no weights, no torch).

Op names and order follow the HF implementations (GPT2LMHeadModel, LlamaForCausalLM) so that a captured
forward pass matches op for op (tests/test_trace_capture.py). Q, K and V are **one fused gemv** (`attn.qkv`,
three outputs q/k/v, concatenated in that order), as HF GPT-2's `c_attn` and PIM-GPT's concatenated W_QKV;
for LLaMA the fused op lists the three checkpoint tensors q_proj/k_proj/v_proj. SwiGLU's gate and up
projections are likewise one fused gemv (`mlp.gate_up`, outputs gate/up).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from simulator import __version__
from simulator.trace.schema import (
    SCHEMA_VERSION, Compression, Lin, ModelConfig, Op, TensorSpec, Trace, TraceHeader, WeightInfo,
)
from simulator.trace.zoo import get_model, param_counts

#: maps a generic weight slot to the checkpoint tensor name, per family (`{layer}` = layer index)
WEIGHT_NAMES: dict[str, dict[str, str]] = {
    "gpt2": {
        "wte": "transformer.wte.weight", "wpe": "transformer.wpe.weight",
        "ln_1.w": "transformer.h.{layer}.ln_1.weight", "ln_1.b": "transformer.h.{layer}.ln_1.bias",
        "qkv.w": "transformer.h.{layer}.attn.c_attn.weight", "qkv.b": "transformer.h.{layer}.attn.c_attn.bias",
        "o.w": "transformer.h.{layer}.attn.c_proj.weight", "o.b": "transformer.h.{layer}.attn.c_proj.bias",
        "ln_2.w": "transformer.h.{layer}.ln_2.weight", "ln_2.b": "transformer.h.{layer}.ln_2.bias",
        "up.w": "transformer.h.{layer}.mlp.c_fc.weight", "up.b": "transformer.h.{layer}.mlp.c_fc.bias",
        "down.w": "transformer.h.{layer}.mlp.c_proj.weight", "down.b": "transformer.h.{layer}.mlp.c_proj.bias",
        "ln_f.w": "transformer.ln_f.weight", "ln_f.b": "transformer.ln_f.bias",
        "lm_head": "lm_head.weight",
    },
    "llama": {
        "wte": "model.embed_tokens.weight",
        "ln_1.w": "model.layers.{layer}.input_layernorm.weight",
        "q.w": "model.layers.{layer}.self_attn.q_proj.weight",
        "k.w": "model.layers.{layer}.self_attn.k_proj.weight",
        "v.w": "model.layers.{layer}.self_attn.v_proj.weight",
        "o.w": "model.layers.{layer}.self_attn.o_proj.weight",
        "ln_2.w": "model.layers.{layer}.post_attention_layernorm.weight",
        "gate.w": "model.layers.{layer}.mlp.gate_proj.weight",
        "up.w": "model.layers.{layer}.mlp.up_proj.weight",
        "down.w": "model.layers.{layer}.mlp.down_proj.weight",
        "ln_f.w": "model.norm.weight",
        "lm_head": "lm_head.weight",
    },
}
WEIGHT_NAMES["gpt3"] = WEIGHT_NAMES["gpt2"]

#: hook to replace a nominal WeightInfo by a measured one (used by the compressing exporter)
WeightHook = Callable[[WeightInfo], WeightInfo]


def _t(name: str, shape: tuple, dtype: str, src: str | None = None) -> TensorSpec:
    return TensorSpec(name=name, shape=tuple(shape), dtype=dtype, src=src)


class _Builder:
    def __init__(self, cfg: ModelConfig, act: str, wdtype: str, hook: WeightHook | None):
        self.cfg, self.act, self.wdtype, self.hook = cfg, act, wdtype, hook
        self.ops: list[Op] = []
        self.names = WEIGHT_NAMES[cfg.family]

    def w(self, slot: str, role: str, shape: tuple[int, ...], tied_to: str | None = None) -> WeightInfo:
        is_matrix = role in ("weight", "embedding")
        info = WeightInfo(name=self.names[slot], role=role, shape=shape,
                          dtype=self.wdtype if is_matrix else self.act, tied_to=tied_to)
        if self.hook is not None:
            info = self.hook(info)
        return info

    def add(self, name: str, kind: str, scope: str, inputs, outputs, macs=Lin(), elements=None,
            weights=(), **attrs) -> None:
        inputs, outputs = tuple(inputs), tuple(outputs)
        deps = []
        for t in inputs:
            if t.src and not t.src.startswith("@"):
                op = t.src.split(":")[0]
                if op not in deps:
                    deps.append(op)
        if elements is None:
            elements = Lin()
            for t in outputs:
                elements = elements + t.numel()
        self.ops.append(Op(name=name, kind=kind, scope=scope, inputs=inputs, outputs=outputs, deps=tuple(deps),
                           macs_lin=macs, elements_lin=elements, weights=tuple(weights), **attrs))

    def norm(self, name: str, scope: str, src: str, w_slot: str, b_slot: str | None) -> None:
        c, a = self.cfg, self.act
        weights = [self.w(w_slot, "norm_weight", (c.d_model,))]
        if c.norm_kind == "layernorm" and b_slot:
            weights.append(self.w(b_slot, "norm_bias", (c.d_model,)))
        self.add(name, c.norm_kind, scope, [_t("x", (1, c.d_model), a, src)], [_t("y", (1, c.d_model), a)],
                 weights=weights, eps=c.norm_eps)

    def gemv(self, name: str, src: str, parts: list[tuple[str, str, str | None, int]], k: int,
             kind: str = "gemv", scope: str = "layer", tied_to: str | None = None) -> None:
        """parts: (output name, weight slot, bias slot, width)."""
        a = self.act
        n = sum(p[3] for p in parts)
        weights = []
        for _, ws, _, width in parts:
            weights.append(self.w(ws, "weight", (width, k), tied_to=tied_to))
        has_bias = any(p[2] for p in parts)
        for _, _, bs, width in parts:
            if bs:
                weights.append(self.w(bs, "bias", (width,)))
        self.add(name, kind, scope, [_t("x", (1, k), a, src)], [_t(p[0], (1, p[3]), a) for p in parts],
                 macs=Lin(k * n, 0), elements=Lin(n, 0), weights=weights, in_features=k, out_features=n,
                 bias=has_bias, parts=tuple((p[0], p[3]) for p in parts) if len(parts) > 1 else ())


def derive_trace(model: str | ModelConfig, *, act_dtype: str = "bf16", weight_dtype: str | None = None,
                 weight_hook: WeightHook | None = None, compression: Compression = Compression(),
                 source: str = "derived", masks: str | None = None) -> Trace:
    """The operator trace of one decode step of `model` (a MODEL_ZOO name or a ModelConfig).

    Dense by default: weights stored as `weight_dtype` (default = `act_dtype`, bf16). `weight_hook` lets the
    exporter substitute measured quantization/sparsity for each weight tensor.
    """
    from simulator.trace.io import with_hash

    cfg = get_model(model) if isinstance(model, str) else model
    wdt = weight_dtype or act_dtype
    b = _Builder(cfg, act_dtype, wdt, weight_hook)
    a, d, hd = act_dtype, cfg.d_model, cfg.head_dim
    H, KV, A, KVD, F = cfg.n_heads, cfg.n_kv_heads, cfg.attn_dim, cfg.kv_dim, cfg.ffn_dim
    bias = cfg.linear_bias
    names = b.names

    # ---- pre: embeddings ----
    b.add("embed.tokens", "embedding", "pre", [_t("ids", (1,), "int64", "@token")], [_t("y", (1, d), a)],
          weights=[b.w("wte", "embedding", (cfg.vocab_size, d))])
    last_pre = "embed.tokens:y"
    if cfg.position == "learned":
        b.add("embed.positions", "embedding", "pre", [_t("pos", (1,), "int64", "@position")], [_t("y", (1, d), a)],
              weights=[b.w("wpe", "embedding", (cfg.context_limit, d))])
        b.add("embed.add", "add", "pre", [_t("a", (1, d), a, "embed.tokens:y"), _t("b", (1, d), a, "embed.positions:y")],
              [_t("y", (1, d), a)])
        last_pre = "embed.add:y"

    # ---- layer pattern ----
    b.norm("ln_1", "layer", "@layer_in", "ln_1.w", "ln_1.b" if bias else None)
    if cfg.family == "llama":  # three checkpoint tensors q_proj, k_proj, v_proj
        b.gemv("attn.qkv", "ln_1:y", [("q", "q.w", None, A), ("k", "k.w", None, KVD), ("v", "v.w", None, KVD)], d)
    else:  # one checkpoint tensor c_attn [3A, d] (+ bias [3A])
        weights = [b.w("qkv.w", "weight", (A + 2 * KVD, d))]
        if bias:
            weights.append(b.w("qkv.b", "bias", (A + 2 * KVD,)))
        n = A + 2 * KVD
        b.add("attn.qkv", "gemv", "layer", [_t("x", (1, d), a, "ln_1:y")],
              [_t("q", (1, A), a), _t("k", (1, KVD), a), _t("v", (1, KVD), a)],
              macs=Lin(d * n, 0), elements=Lin(n, 0), weights=weights, in_features=d, out_features=n, bias=bias,
              parts=(("q", A), ("k", KVD), ("v", KVD)))
    q_src, k_src = "attn.qkv:q", "attn.qkv:k"
    if cfg.position == "rope":
        b.add("attn.rope", "rope", "layer", [_t("q", (1, A), a, "attn.qkv:q"), _t("k", (1, KVD), a, "attn.qkv:k")],
              [_t("q", (1, A), a), _t("k", (1, KVD), a)], heads=H, kv_heads=KV, head_dim=hd)
        q_src, k_src = "attn.rope:q", "attn.rope:k"
    b.add("attn.kv_append", "kv_append", "layer",
          [_t("k", (KV, 1, hd), a, k_src), _t("v", (KV, 1, hd), a, "attn.qkv:v")],
          [_t("k_cache", (KV, "ctx", hd), a), _t("v_cache", (KV, "ctx", hd), a)],
          elements=Lin(2 * KVD, 0), heads=H, kv_heads=KV, head_dim=hd)
    b.add("attn.score", "attn_score", "layer",
          [_t("q", (H, 1, hd), a, q_src), _t("k_cache", (KV, "ctx", hd), a, "attn.kv_append:k_cache")],
          [_t("s", (H, 1, "ctx"), a)], macs=Lin(0, H * hd), heads=H, kv_heads=KV, head_dim=hd)
    b.add("attn.softmax", "softmax", "layer", [_t("s", (H, 1, "ctx"), a, "attn.score:s")], [_t("p", (H, 1, "ctx"), a)],
          heads=H)
    b.add("attn.value", "attn_value", "layer",
          [_t("p", (H, 1, "ctx"), a, "attn.softmax:p"), _t("v_cache", (KV, "ctx", hd), a, "attn.kv_append:v_cache")],
          [_t("o", (H, 1, hd), a)], macs=Lin(0, H * hd), heads=H, kv_heads=KV, head_dim=hd)
    b.gemv("attn.o_proj", "attn.value:o", [("y", "o.w", "o.b" if bias else None, d)], A)
    b.add("attn.residual", "residual_add", "layer",
          [_t("a", (1, d), a, "@layer_in"), _t("b", (1, d), a, "attn.o_proj:y")], [_t("y", (1, d), a)])
    b.norm("ln_2", "layer", "attn.residual:y", "ln_2.w", "ln_2.b" if bias else None)
    if cfg.ffn_kind == "swiglu":
        b.gemv("mlp.gate_up", "ln_2:y", [("gate", "gate.w", None, F), ("up", "up.w", None, F)], d)
        b.add("mlp.act", "swiglu", "layer",
              [_t("gate", (1, F), a, "mlp.gate_up:gate"), _t("up", (1, F), a, "mlp.gate_up:up")], [_t("y", (1, F), a)])
    else:
        b.gemv("mlp.up", "ln_2:y", [("y", "up.w", "up.b" if bias else None, F)], d)
        b.add("mlp.act", cfg.activation, "layer", [_t("x", (1, F), a, "mlp.up:y")], [_t("y", (1, F), a)])
    b.gemv("mlp.down", "mlp.act:y", [("y", "down.w", "down.b" if bias else None, d)], F)
    b.add("mlp.residual", "residual_add", "layer",
          [_t("a", (1, d), a, "attn.residual:y"), _t("b", (1, d), a, "mlp.down:y")], [_t("y", (1, d), a)])

    # ---- post ----
    b.norm("ln_f", "post", "@layers_out", "ln_f.w", "ln_f.b" if bias else None)
    b.gemv("lm_head", "ln_f:y", [("logits", "lm_head", None, cfg.vocab_size)], d, kind="lm_head", scope="post",
           tied_to=names["wte"] if cfg.tied_embeddings else None)
    del last_pre  # the first layer's @layer_in is the last pre op's output (documented, resolved by expand)

    total, non_emb = param_counts(cfg)
    header = TraceHeader(schema=SCHEMA_VERSION, generator=f"pimsim {__version__}", model=cfg, params_total=total,
                         params_non_embedding=non_emb, compression=compression, source=source, content_hash="",
                         masks=masks)
    return with_hash(Trace(header=header, ops=tuple(b.ops)))


def weight_slots(cfg: ModelConfig) -> Mapping[str, str]:
    """Checkpoint tensor name per generic slot for this model's family."""
    return WEIGHT_NAMES[cfg.family]
