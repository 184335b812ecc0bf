"""The model zoo: architectures of the eight PIM-GPT models and a LLaMA-style model, as `ModelConfig` values.

Sources: GPT-2 sizes from Radford et al. 2019 and the released HF configs (n_positions 1024, vocab 50257,
layer_norm_epsilon 1e-5, tied LM head); GPT-3 sizes from Brown et al. 2020, Table 2.1 (n_ctx 2048; GPT-3
uses the GPT-2 architecture and vocabulary; its alternating locally banded sparse attention is not
modelled: every layer is dense attention, as PIM-GPT assumes). GPT3-XL: the paper's table lists
n_heads = 24 and d_head = 128 (attention width 3072 != d_model 2048). `gpt3-xl` uses 16 x 128 (attention
width = d_model, the reading PIM-GPT's parameter count implies); `gpt3-xl-24h` is the literal 24 x 128.
SmolLM2-135M: HuggingFaceTB/SmolLM2-135M config.json (LlamaForCausalLM, hidden 576, intermediate 1536,
30 layers, 9 heads, 3 KV heads, RoPE theta 100000, RMSNorm eps 1e-5, tied embeddings, context 8192).
"""

from __future__ import annotations

from simulator.errors import PimsimError
from simulator.trace.schema import ModelConfig


def _gpt(name: str, family: str, layers: int, d: int, heads: int, ctx: int, head_dim: int | None = None,
         note: str = "") -> ModelConfig:
    return ModelConfig(
        name=name, family=family, n_layers=layers, d_model=d, n_heads=heads, n_kv_heads=heads,
        head_dim=head_dim or d // heads, ffn_dim=4 * d, ffn_kind="gelu", vocab_size=50257, context_limit=ctx,
        norm_kind="layernorm", activation="gelu", position="learned", tied_embeddings=True, linear_bias=True,
        norm_eps=1e-5, note=note,
    )


MODEL_ZOO: dict[str, ModelConfig] = {
    m.name: m
    for m in (
        _gpt("gpt2-small", "gpt2", 12, 768, 12, 1024),
        _gpt("gpt2-medium", "gpt2", 24, 1024, 16, 1024),
        _gpt("gpt2-large", "gpt2", 36, 1280, 20, 1024),
        _gpt("gpt2-xl", "gpt2", 48, 1600, 25, 1024),
        _gpt("gpt3-small", "gpt3", 12, 768, 12, 2048),
        _gpt("gpt3-medium", "gpt3", 24, 1024, 16, 2048),
        _gpt("gpt3-large", "gpt3", 24, 1536, 16, 2048),
        _gpt("gpt3-xl", "gpt3", 24, 2048, 16, 2048, 128,
             note="16 heads x 128 (attention width = d_model); see gpt3-xl-24h for the literal 24 x 128"),
        _gpt("gpt3-xl-24h", "gpt3", 24, 2048, 24, 2048, 128,
             note="literal GPT-3 paper reading: 24 heads x 128, attention width 3072 != d_model 2048"),
        ModelConfig(
            name="smollm2-135m", family="llama", n_layers=30, d_model=576, n_heads=9, n_kv_heads=3,
            head_dim=64, ffn_dim=1536, ffn_kind="swiglu", vocab_size=49152, context_limit=8192,
            norm_kind="rmsnorm", activation="silu", position="rope", tied_embeddings=True,
            linear_bias=False, norm_eps=1e-5, rope_theta=100000.0,
        ),
    )
}

#: the eight models of the PIM-GPT paper (gpt3-xl in its 16 x 128 reading)
PIM_GPT_MODELS: tuple[str, ...] = (
    "gpt2-small", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-small", "gpt3-medium", "gpt3-large", "gpt3-xl",
)


def get_model(name: str) -> ModelConfig:
    try:
        return MODEL_ZOO[name]
    except KeyError:
        raise PimsimError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_ZOO)}") from None


def param_counts(cfg: ModelConfig) -> tuple[int, int]:
    """(total, non-embedding) parameter counts; a tied LM head is counted once, position tables are embeddings."""
    d, a, kv, f = cfg.d_model, cfg.attn_dim, cfg.kv_dim, cfg.ffn_dim
    b = 1 if cfg.linear_bias else 0
    norm = 2 * d if cfg.norm_kind == "layernorm" else d
    attn = d * (a + 2 * kv) + b * (a + 2 * kv) + a * d + b * d
    ffn = (2 if cfg.ffn_kind == "swiglu" else 1) * d * f + b * f * (2 if cfg.ffn_kind == "swiglu" else 1) + f * d + b * d
    per_layer = attn + ffn + 2 * norm
    non_emb = cfg.n_layers * per_layer + norm
    emb = cfg.vocab_size * d + (cfg.context_limit * d if cfg.position == "learned" else 0)
    head = 0 if cfg.tied_embeddings else cfg.vocab_size * d
    return non_emb + emb + head, non_emb + head
