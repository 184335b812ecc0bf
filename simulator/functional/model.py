"""Model shape and weights for the functional run (GPT-2 architecture: learned positions, layernorm, GELU,
tied LM head, biases).

Weights are float32 arrays whose values are exactly bf16 (the model the PIM system stores), oriented
[out, in] (one row per output neuron, the PIM orientation). Names:

    wte [vocab, d]  wpe [ctx, d]  ln_f.g / ln_f.b [d]
    h.{i}.ln_1.g/b [d]  h.{i}.attn.w [3d, d]  h.{i}.attn.b [3d]  h.{i}.proj.w [d, d]  h.{i}.proj.b [d]
    h.{i}.ln_2.g/b [d]  h.{i}.fc.w [ffn, d]  h.{i}.fc.b [ffn]  h.{i}.fc_proj.w [d, ffn]  h.{i}.fc_proj.b [d]

A `.npz` file with these names (loaded with allow_pickle=False) can replace the seeded random weights; a
HF GPT-2 checkpoint converts by transposing its Conv1D weights ([in, out] -> [out, in]).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import PimsimError
from simulator.kernels.bits import round_to_bf16


@dataclass(frozen=True)
class ModelShape:
    name: str
    layers: int
    d_model: int
    heads: int
    ffn: int
    vocab: int
    ctx: int
    norm_eps: float = 1e-5  # source: HF GPT-2 config layer_norm_epsilon

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    def __post_init__(self) -> None:
        if min(self.layers, self.d_model, self.heads, self.ffn, self.vocab, self.ctx) <= 0:
            raise PimsimError(f"model {self.name}: every dimension must be positive")
        if self.d_model % self.heads:
            raise PimsimError(f"model {self.name}: d_model {self.d_model} is not a multiple of heads {self.heads}")


def model_shape(name: str) -> ModelShape:
    """A GPT-2/GPT-3 shape from the trace zoo (`simulator.trace.zoo`), or the built-in GPT-2 table."""
    try:
        from simulator.trace.zoo import MODEL_ZOO
    except ImportError:
        MODEL_ZOO = {}
    if name in MODEL_ZOO:
        m = MODEL_ZOO[name]
        if m.family not in ("gpt2", "gpt3") or m.attn_dim != m.d_model:
            raise PimsimError(f"--model {name}: the functional run supports the GPT-2 architecture only "
                              "(learned positions, layernorm, GELU, attention width = d_model)")
        return ModelShape(m.name, m.n_layers, m.d_model, m.n_heads, m.ffn_dim, m.vocab_size, m.context_limit,
                          m.norm_eps)
    builtin = {  # source: Radford et al. 2019 / HF GPT-2 configs (docs/pim-gpt-design.md model table)
        "gpt2-small": (12, 768, 12), "gpt2-medium": (24, 1024, 16), "gpt2-large": (36, 1280, 20),
        "gpt2-xl": (48, 1600, 25),
    }
    if name in builtin:
        layers, d, h = builtin[name]
        return ModelShape(name, layers, d, h, 4 * d, 50257, 1024)
    known = sorted(set(MODEL_ZOO) | set(builtin))
    raise PimsimError(f"--model {name}: unknown model (one of {', '.join(known)})")


def weight_shapes(shape: ModelShape) -> dict[str, tuple[int, ...]]:
    d, f = shape.d_model, shape.ffn
    out: dict[str, tuple[int, ...]] = {"wte": (shape.vocab, d), "wpe": (shape.ctx, d), "ln_f.g": (d,), "ln_f.b": (d,)}
    for i in range(shape.layers):
        p = f"h.{i}."
        out.update({p + "ln_1.g": (d,), p + "ln_1.b": (d,), p + "attn.w": (3 * d, d), p + "attn.b": (3 * d,),
                    p + "proj.w": (d, d), p + "proj.b": (d,), p + "ln_2.g": (d,), p + "ln_2.b": (d,),
                    p + "fc.w": (f, d), p + "fc.b": (f,), p + "fc_proj.w": (d, f), p + "fc_proj.b": (d,)})
    return out


def random_weights(shape: ModelShape, seed: int = 0) -> dict[str, np.ndarray]:
    """GPT-2 initialisation (source: HF GPT2PreTrainedModel._init_weights): linear and token embeddings
    N(0, 0.02), position embeddings N(0, 0.01), output projections N(0, 0.02 / sqrt(2 * layers)); layernorm
    gains 1, biases 0. Biases are drawn N(0, 0.02) instead of 0 so the bias adds are exercised. Every value
    is rounded to bf16, the precision the PIM system stores."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shp in weight_shapes(shape).items():
        if name.endswith(".g"):
            out[name] = np.ones(shp, np.float32)
            continue
        if name.endswith("ln_1.b") or name.endswith("ln_2.b") or name == "ln_f.b":
            out[name] = np.zeros(shp, np.float32)
            continue
        std = 0.01 if name == "wpe" else 0.02
        if name.endswith("proj.w"):
            std = 0.02 / np.sqrt(2 * shape.layers)
        out[name] = round_to_bf16(rng.standard_normal(shp, dtype=np.float32) * np.float32(std))
    return out


def load_weights(path: str | Path, shape: ModelShape) -> dict[str, np.ndarray]:
    """Weights from a `.npz` file (names and shapes above); values are rounded to bf16."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty file
        raise PimsimError(f"{path}: cannot read weights ({exc.__class__.__name__}); expected a .npz file") from None
    out = {}
    for name, shp in weight_shapes(shape).items():
        if name not in data.files:
            raise PimsimError(f"{path}: missing array {name!r} (shape {shp}); see docs/kernels.md for the names")
        arr = np.asarray(data[name])
        if arr.shape != shp:
            raise PimsimError(f"{path}: {name} has shape {arr.shape}, model {shape.name} needs {shp}")
        out[name] = round_to_bf16(arr.astype(np.float32))
    return out
