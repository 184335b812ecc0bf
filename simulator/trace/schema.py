"""The `pimtrace/1` data model: frozen dataclasses for one trace (header + operators of one decode step).

A trace describes the work of generating **one token** at batch 1, for every context length at once: every
size that grows with the context is written with the symbol `ctx` (the number of keys in the KV cache
*after* the current token was appended, i.e. position + 1). `expand(trace, ctx)` (simulator.trace.expand)
turns it into concrete numbers.

Operators come in three scopes, in execution order: `pre` (once per token, before the layers: embeddings),
`layer` (the pattern of one transformer block, executed `n_layers` times), `post` (once per token, after
the layers: final norm, LM head). Tensors are referenced as `"<op name>:<output name>"`; `@token` is the
input token id, `@layer_in` is the input of the current layer (the output of the previous layer, or of
the last `pre` op for layer 0), `@layers_out` the output of the last layer.

Weight matrices are described in PyTorch `nn.Linear` orientation: `shape = (out_features, in_features)`
= (N, K); the reduction (fan-in) dimension K is the last axis. All sparsity group measurements run along K.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SCHEMA_VERSION = "pimtrace/1"

#: group sizes (elements along the reduction dimension) at which `zero_fraction_at` is measured
ZERO_FRACTION_GROUPS: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024)

#: every operator kind a `pimtrace/1` file may contain
OP_KINDS: tuple[str, ...] = (
    "embedding",     # table lookup (token or position); weight = table
    "add",           # elementwise add of two activations that is not a residual (token + position embedding)
    "layernorm",
    "rmsnorm",
    "gemv",          # vector x matrix (bias optional); several weights sharing the input = fused, outputs split
    "rope",          # rotary position embedding applied to q and k
    "kv_append",     # write this token's k and v into the KV cache
    "attn_score",    # q . K^T / sqrt(head_dim) over ctx keys, per head
    "softmax",
    "attn_value",    # probabilities . V over ctx values, per head
    "gelu",
    "silu",
    "swiglu",        # silu(gate) * up
    "residual_add",
    "lm_head",       # final vector x vocabulary matrix
)
MAC_KINDS = ("gemv", "attn_score", "attn_value", "lm_head")

DTYPE_BITS: dict[str, int] = {
    "fp32": 32, "bf16": 16, "fp16": 16, "int64": 64, "int32": 32, "int16": 16,
    "int8": 8, "uint8": 8, "int7": 7, "int6": 6, "int5": 5, "int4": 4, "uint4": 4, "int3": 3, "int2": 2,
}

Scope = Literal["pre", "layer", "post"]
Dim = int | str  # an int, or the symbol "ctx"


@dataclass(frozen=True)
class Lin:
    """A count that is linear in the context length: `const + per_ctx * ctx`."""

    const: int = 0
    per_ctx: int = 0

    def at(self, ctx: int) -> int:
        return self.const + self.per_ctx * ctx

    def __add__(self, other: "Lin") -> "Lin":
        return Lin(self.const + other.const, self.per_ctx + other.per_ctx)


@dataclass(frozen=True)
class TensorSpec:
    """An activation tensor read or written by an op. `src` (inputs only) names where it comes from."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str
    src: str | None = None

    def numel(self) -> Lin:
        const, sym = 1, 0
        for d in self.shape:
            if d == "ctx":
                sym += 1
            else:
                const *= int(d)
        if sym > 1:
            raise ValueError(f"tensor {self.name}: shape {self.shape} is not linear in ctx")
        return Lin(0, const) if sym else Lin(const, 0)

    def nbytes(self) -> Lin:
        n = self.numel()
        bits = DTYPE_BITS[self.dtype]
        return Lin(n.const * bits // 8, n.per_ctx * bits // 8)

    def concrete_shape(self, ctx: int) -> tuple[int, ...]:
        return tuple(ctx if d == "ctx" else int(d) for d in self.shape)


@dataclass(frozen=True)
class Quantization:
    """How one weight tensor is stored. Scheme `none` means plain `dtype` storage (weight_bits = its width).

    `overhead_bits_per_weight` counts the scales and zero points amortised over the weights they serve;
    `max_levels_per_group` is *measured* on the real tensor (distinct values in the worst group), or None
    when the trace was derived without weights.
    """

    scheme: Literal["none", "rtn", "gptq"] = "none"
    weight_bits: int = 16
    granularity: Literal["none", "tensor", "channel", "group"] = "none"
    group_size: int | None = None
    symmetric: bool = True
    scale_dtype: str | None = None
    zero_dtype: str | None = None
    overhead_bits_per_weight: float = 0.0
    max_levels_per_group: int | None = None

    @property
    def bits_per_weight(self) -> float:
        """Storage bits per weight including scale/zero overhead."""
        return self.weight_bits + self.overhead_bits_per_weight


@dataclass(frozen=True)
class Sparsity:
    """Zeros in one weight tensor. `density` = nnz / numel; `zero_fraction_at[g]` = fraction of all-zero groups
    of g consecutive elements along the reduction dimension (a last partial group counts by its own elements).

    `measured` tells whether the numbers come from real tensors (aggregated over all layers for a layer
    weight; `per_layer_density` then lists each layer) or are the nominal values of a dense derived trace.
    """

    pattern: Literal["dense", "unstructured", "n:m", "block", "burst"] = "dense"
    params: tuple[tuple[str, float | int], ...] = ()
    method: Literal["none", "magnitude", "wanda", "sparsegpt"] = "none"
    density: float = 1.0
    zero_fraction_at: dict[int, float] = field(default_factory=lambda: {g: 0.0 for g in ZERO_FRACTION_GROUPS})
    measured: bool = False
    per_layer_density: tuple[float, ...] | None = None

    def __hash__(self) -> int:  # dict field: hash by value
        return hash((self.pattern, self.params, self.method, self.density,
                     tuple(sorted(self.zero_fraction_at.items())), self.measured, self.per_layer_density))

    @property
    def param_dict(self) -> dict[str, float | int]:
        return dict(self.params)


@dataclass(frozen=True)
class MaskRef:
    """Where the bit-packed keep-mask of a weight lives: `np.load(file)[key]` (np.packbits, big bit order,
    over the flattened [n_layers, N, K] (or [N, K]) array; `shape` gives the unpacked shape)."""

    file: str
    key: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class WeightInfo:
    """One weight tensor of an op. `name` is the checkpoint name, with `{layer}` for a per-layer weight."""

    name: str
    role: Literal["weight", "bias", "norm_weight", "norm_bias", "embedding"]
    shape: tuple[int, ...]
    dtype: str
    quant: Quantization = Quantization()
    sparsity: Sparsity = Sparsity()
    tied_to: str | None = None
    mask: MaskRef | None = None

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def in_features(self) -> int:
        return self.shape[-1]

    @property
    def out_features(self) -> int:
        return self.shape[0] if len(self.shape) > 1 else 1

    @property
    def nbytes(self) -> int:
        """Dense storage bytes including quantization scale/zero overhead (rounded up)."""
        bits = self.numel * self.quant.bits_per_weight
        return int(-(-bits // 8))


@dataclass(frozen=True)
class Op:
    """One operator of the decode step.

    For `gemv` / `lm_head`: `in_features` = K, `out_features` = N; a fused gemv (Q/K/V, or SwiGLU gate/up)
    lists several weights sharing the same input and one output per weight, concatenated in `weights` order
    (`parts` gives their names and widths). For attention ops: `heads`, `kv_heads`, `head_dim`.
    """

    name: str
    kind: str
    scope: Scope
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    deps: tuple[str, ...]
    macs_lin: Lin
    elements_lin: Lin  # elements the op touches on its vector unit (ASIC cost driver for non-MAC ops)
    weights: tuple[WeightInfo, ...] = ()
    in_features: int | None = None
    out_features: int | None = None
    bias: bool = False
    parts: tuple[tuple[str, int], ...] = ()
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    eps: float | None = None

    @property
    def per_layer(self) -> bool:
        return self.scope == "layer"

    def macs(self, ctx: int) -> int:
        return self.macs_lin.at(ctx)

    def elements(self, ctx: int) -> int:
        return self.elements_lin.at(ctx)

    @property
    def weight_bytes(self) -> int:
        """Stored bytes of this op's weights (tied weights counted at their owner only) incl. quant overhead."""
        return sum(w.nbytes for w in self.weights if w.tied_to is None)

    @property
    def weight_read_bytes(self) -> int:
        """Weight bytes read per execution: one table row per embedding lookup, all of it otherwise."""
        if self.kind == "embedding":
            return sum(int(-(-w.in_features * w.quant.bits_per_weight // 8)) for w in self.weights)
        return sum(w.nbytes for w in self.weights)

    @property
    def act_bytes_lin(self) -> Lin:
        """Activation (incl. KV-cache) bytes read plus written."""
        total = Lin()
        for t in self.inputs + self.outputs:
            total = total + t.nbytes()
        return total

    def act_bytes(self, ctx: int) -> int:
        return self.act_bytes_lin.at(ctx)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a decoder-only transformer (everything the operator trace depends on)."""

    name: str
    family: Literal["gpt2", "gpt3", "llama"]
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_dim: int
    ffn_kind: Literal["gelu", "swiglu"]
    vocab_size: int
    context_limit: int
    norm_kind: Literal["layernorm", "rmsnorm"]
    activation: Literal["gelu", "silu"]
    position: Literal["learned", "rope"]
    tied_embeddings: bool
    linear_bias: bool
    norm_eps: float
    rope_theta: float | None = None
    note: str = ""

    @property
    def attn_dim(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim


@dataclass(frozen=True)
class Compression:
    """What was asked for and how the weights were obtained. Empty strings mean 'none'."""

    quant: str = "none"            # the --quant spec, e.g. "int4-g128", "gptq-int4"
    prune: str = "none"            # the --prune spec, e.g. "2:4", "block:32x32:0.5"
    prune_method: str = "none"     # magnitude | wanda | sparsegpt
    calib_tokens: int = 0
    seed: int = 0
    weights: str = "none"          # none | random-seeded | checkpoint:<file name>


@dataclass(frozen=True)
class TraceHeader:
    schema: str
    generator: str
    model: ModelConfig
    params_total: int
    params_non_embedding: int
    compression: Compression
    source: Literal["derived", "captured", "imported"]
    content_hash: str
    masks: str | None = None  # file name of the bit-packed mask sidecar (.npz), relative to the trace


@dataclass(frozen=True)
class Trace:
    header: TraceHeader
    ops: tuple[Op, ...]

    @property
    def model(self) -> ModelConfig:
        return self.header.model

    def op(self, name: str) -> Op:
        for o in self.ops:
            if o.name == name:
                return o
        raise KeyError(name)

    def scope_ops(self, scope: Scope) -> tuple[Op, ...]:
        return tuple(o for o in self.ops if o.scope == scope)
