"""The software workload of one batch-1 decode step, as a baseline sees it: a list of `BaselineOp`s.

The op list follows what an unoptimised HF-transformers eager stack actually launches (transformers 5.x,
`modeling_gpt2.py` / `modeling_llama.py`, read for this purpose; counts are in `docs/baselines.md`):
  per layer: layer_norm (1 kernel); Conv1D/Linear = addmm (1 each); DynamicCache.update = torch.cat of the
  whole K and V cache (2 kernels that **copy the cache every step**); SDPA (1 fused kernel; `attn="eager"`:
  matmul, scale, mask, softmax, matmul = 5); merge heads = transpose().contiguous() (1 copy); residual add
  (1); GPT-2's `gelu_new` written in Python = 8 elementwise kernels (pow, mul, add, mul, tanh, add, mul,
  mul); SwiGLU = silu + mul (2); HF's LlamaRMSNorm = 7 small kernels (to fp32, pow, mean, add, rsqrt, mul,
  to dtype, mul counted as 7 with the cast fused into the first).
  Attention (`attn`): "sdpa" (GPT-2: transformers >= 4.42, PR #31172), "eager" (transformers 5.x
  eager_attention_forward: matmul, scale, mask, softmax, matmul = 5 kernels) or "eager-h2d" (GPT2Attention._attn
  of transformers 4.x from PR #17306, May 2022, and still so in mid-2023: matmul, `torch.full` scale + div,
  `torch.where`, softmax, matmul = 6 kernels, plus the mask value built on the CPU and moved with
  `.to(device)` every layer — a blocking host-to-device copy, which PyTorch ends with cudaStreamSynchronize,
  so the host waits for the GPU once per layer: `BaselineOp.syncs`).
  once per token: token + position embedding lookups and their add (3), final norm (1), LM head (1).
The `fastertransformer` kernel set (`kernels=`, the stack's by default) is what NVIDIA FasterTransformer's GPT
decoder launches instead (ParallelGptDecoder.cc, DecoderSelfAttentionLayer.cc, FfnLayer.cc): per layer
layernorm (1), QKV GEMM (1), masked multi-head attention (1: QKV bias, rotary, KV-cache write, QK, softmax
and PV fused), output GEMM (1), bias + residual + layernorm (1), FFN up GEMM (1), bias + activation (1), FFN
down GEMM (1), bias + residual (1) = 9; per step the embedding lookup with the position encoding (1), final
layernorm (1), logits GEMM (1) and top-p sampling (FT_SAMPLING_KERNELS).
Bytes: weights in the weight dtype; activations read + written in the activation dtype; `kv_bytes` is the
KV-cache traffic (attention reads K and V; with `kv_update="concat"` the cat reads the old cache and writes
the new one, K and V).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simulator.errors import PimsimError

#: (weight bytes, activation bytes) per element for each supported dtype. int8: weight-only quantisation
#: with 16-bit activations (the usual int8 inference path).
DTYPES: dict[str, tuple[int, int]] = {"fp32": (4, 4), "fp16": (2, 2), "bf16": (2, 2), "int8": (1, 2)}


@dataclass(frozen=True)
class ModelShape:
    """The few numbers of a decoder-only transformer a baseline needs."""

    layers: int
    d_model: int
    heads: int
    head_dim: int
    ffn: int
    vocab: int
    ctx_limit: int
    kv_heads: int | None = None            # None = heads (multi-head attention)
    ffn_kind: Literal["gelu", "swiglu"] = "gelu"
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    name: str = "model"
    learned_positions: bool = True         # False = RoPE (applied to q and k every layer)
    bias: bool = True
    fused_qkv: bool = True                 # GPT-2's c_attn is one matrix; LLaMA has q/k/v projections

    def __post_init__(self) -> None:
        for f in ("layers", "d_model", "heads", "head_dim", "ffn", "vocab", "ctx_limit"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PimsimError(f"ModelShape.{f}: must be a positive integer, got {v!r}")
        if self.kv_heads is not None and (self.kv_heads < 1 or self.heads % self.kv_heads):
            raise PimsimError(f"ModelShape.kv_heads: must divide heads ({self.heads}), got {self.kv_heads}")
        if self.ffn_kind not in ("gelu", "swiglu"):
            raise PimsimError(f"ModelShape.ffn_kind: gelu or swiglu, got {self.ffn_kind!r}")
        if self.norm not in ("layernorm", "rmsnorm"):
            raise PimsimError(f"ModelShape.norm: layernorm or rmsnorm, got {self.norm!r}")

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads or self.heads


@dataclass(frozen=True)
class BaselineOp:
    """One operator of one decode step. `count` = executions per token (the layer count for `per_layer` ops)."""

    kind: str
    flops: int                  # per execution
    weight_bytes: int           # per execution
    activation_bytes: int       # per execution, read + written
    kv_bytes: int               # per execution, KV-cache bytes read + written
    kernels: int                # launched kernels per execution (0 = fused into a neighbour)
    per_layer: bool
    count: int = 1
    name: str = ""
    dtype: str = "fp32"         # compute dtype (selects the preset's throughput)
    syncs: int = 0              # host<->device synchronisations per execution (after its last kernel)

    @property
    def bytes(self) -> int:
        return self.weight_bytes + self.activation_bytes + self.kv_bytes


def model_shape(name: str) -> ModelShape:
    """A ModelShape for a model-zoo name (gpt2-small ... gpt3-xl, smollm2-135m)."""
    from simulator.trace.zoo import (
        get_model,  # the trace library's model zoo (one source of truth)
    )

    return shape_from_config(get_model(name))


def shape_from_config(cfg) -> ModelShape:
    """From a `simulator.trace.schema.ModelConfig`."""
    return ModelShape(
        layers=cfg.n_layers, d_model=cfg.d_model, heads=cfg.n_heads, head_dim=cfg.head_dim, ffn=cfg.ffn_dim,
        vocab=cfg.vocab_size, ctx_limit=cfg.context_limit, kv_heads=cfg.n_kv_heads, ffn_kind=cfg.ffn_kind,
        norm=cfg.norm_kind, name=cfg.name, learned_positions=cfg.position == "learned", bias=cfg.linear_bias,
        fused_qkv=cfg.family != "llama",
    )


def _kv_update(kv_update, stack) -> str:
    if kv_update is not None:
        return kv_update
    from simulator.baselines.stacks import get_stack

    return get_stack(stack).kv_update


def attention_code(attn, stack, shape: ModelShape) -> str:
    """The attention code: `attn` when given, else the stack's. GPT-2's eager-h2d attention applies to models
    with GPT-2's attention module (a fused QKV); others get the plain eager path of the same era."""
    if attn is not None:
        return attn
    from simulator.baselines.stacks import get_stack

    a = get_stack(stack).attention
    return "eager" if a == "eager-h2d" and not shape.fused_qkv else a


def _check(ctx: int, dtype: str, shape: ModelShape | None = None) -> tuple[int, int]:
    if dtype not in DTYPES:
        raise PimsimError(f"dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if not isinstance(ctx, int) or ctx < 1:
        raise PimsimError(f"context {ctx!r}: must be a positive integer (keys in the cache incl. this token)")
    if shape is not None and ctx > shape.ctx_limit:
        raise PimsimError(f"context {ctx}: exceeds the model's limit {shape.ctx_limit} ({shape.name})")
    return DTYPES[dtype]


#: FasterTransformer's top-p sampling per step (TopPSamplingLayer::runSampling): invokeTopPInitialize,
#: invokeAddBiasSoftMax, topp_beam_topk_kernel, cub segmented radix sort (at least one kernel),
#: topp_sampling, invokeComputeToppDecay. A lower count: the sort may take more than one kernel.
FT_SAMPLING_KERNELS = 6
KernelSet = Literal["hf", "fastertransformer"]
KERNEL_SETS = ("hf", "fastertransformer")


def _kernel_set(kernels, stack) -> str:
    if kernels is not None:
        if kernels not in KERNEL_SETS:
            raise PimsimError(f"kernels {kernels!r}: choose one of {', '.join(KERNEL_SETS)}")
        return kernels
    from simulator.baselines.stacks import get_stack

    return get_stack(stack).kernels


def _fastertransformer(ops: list[BaselineOp], shape: ModelShape, ab: int) -> list[BaselineOp]:
    """The HF op list re-cut into FasterTransformer's kernels (module docstring): same bytes where a kernel
    still moves them, fused kernels (`kernels=0`) where FT does the work inside a neighbour, no merge-heads
    copy, one fused bias + activation kernel, and the per-step top-p sampling."""
    import dataclasses

    F, V = shape.ffn, shape.vocab
    out: list[BaselineOp] = []
    for o in ops:
        if o.name == "attn.merge_heads":      # the attention kernel writes [tokens, heads x head_dim] directly
            continue
        k, act = o.kernels, o.activation_bytes
        if o.kind == "embedding":
            k = 1                              # invokeEmbeddingLookupPosEncoding: lookup + position in one kernel
        elif o.kind in ("kv_append", "rope", "softmax", "attn_value") or o.name == "attn.residual":
            k = 0                              # inside the attention kernel / the next bias+residual+layernorm
        elif o.kind in ("attn_score", "layernorm", "rmsnorm"):
            k = 1
            if o.kind == "rmsnorm":           # one fused kernel reading and writing d values
                act = 2 * shape.d_model * ab
        elif o.kind in ("gelu", "swiglu"):   # invokeAddBiasGelu / gated activation: one kernel
            k, act = 1, (2 if o.kind == "gelu" else 3) * F * ab
        out.append(dataclasses.replace(o, kernels=k, activation_bytes=act))
    # top-p sampling over the vocabulary: softmax (read + write), top-k probe (read), id init (4 B ids), sort
    # of (prob, id) pairs (read + write), the sampling scan (read)
    out.append(BaselineOp(kind="sampling", flops=5 * V, weight_bytes=0,
                          activation_bytes=V * (2 * ab + ab + 4 + 2 * (ab + 4) + (ab + 4)), kv_bytes=0,
                          kernels=FT_SAMPLING_KERNELS, per_layer=False, count=1, name="sampling",
                          dtype=ops[0].dtype))
    return out


Attn = Literal["sdpa", "eager", "eager-h2d"]
ATTN_IMPLS = ("sdpa", "eager", "eager-h2d")


def workload_from_model(shape: ModelShape, ctx: int, dtype: str = "fp32", *,
                        attn: Attn | None = None,
                        kv_update: Literal["concat", "inplace"] | None = None, stack=None,
                        kernels: KernelSet | None = None) -> list[BaselineOp]:
    """Ops of one decode step with `ctx` keys in the cache (this token included), HF-eager style.
    `stack` (a name or Stack; default hf-generate) picks the KV-cache update, the attention code and the
    kernel set unless `kv_update` / `attn` / `kernels` are given."""
    kv_update = _kv_update(kv_update, stack)
    kset = _kernel_set(kernels, stack)
    attn = attention_code(attn, stack, shape)
    wb, ab = _check(ctx, dtype, shape)
    if attn not in ATTN_IMPLS:
        raise PimsimError(f"attn {attn!r}: choose one of {', '.join(ATTN_IMPLS)}")
    d, hd, H, KV, F, L = shape.d_model, shape.head_dim, shape.heads, shape.n_kv_heads, shape.ffn, shape.layers
    A, KVD = H * hd, KV * hd
    bias = 1 if shape.bias else 0
    ops: list[BaselineOp] = []

    def op(kind, flops, w, act, kv=0, kernels=1, per_layer=True, name="", syncs=0):
        ops.append(BaselineOp(kind=kind, flops=int(flops), weight_bytes=int(w), activation_bytes=int(act),
                              kv_bytes=int(kv), kernels=kernels, per_layer=per_layer, count=L if per_layer else 1,
                              name=name or kind, dtype=dtype, syncs=syncs))

    def norm(name, per_layer):
        if shape.norm == "layernorm":  # one fused kernel, ~8 flops/element; weight + bias in the act dtype
            op("layernorm", 8 * d, 2 * d * ab, 2 * d * ab, kernels=1, per_layer=per_layer, name=name)
        else:  # HF LlamaRMSNorm in eager PyTorch: 7 elementwise kernels, each reading and writing d values
            op("rmsnorm", 5 * d, d * ab, 7 * 2 * d * 4, kernels=7, per_layer=per_layer, name=name)

    def linear(name, k, n, kernels=1, kind="gemv", per_layer=True):
        op(kind, 2 * k * n, k * n * wb + bias * n * ab, (k + n) * ab, kernels=kernels, per_layer=per_layer,
           name=name)

    # once per token, before the layers: token (+ position) row lookups (+ their add)
    if shape.learned_positions:
        op("embedding", d, 2 * d * wb, 4 * d * ab, kernels=3, per_layer=False, name="embed")
    else:
        op("embedding", 0, d * wb, d * ab, kernels=1, per_layer=False, name="embed")
    # the layer pattern
    norm("ln_1", True)
    linear("attn.qkv", d, A + 2 * KVD, kernels=1 if shape.fused_qkv else 3)
    if not shape.learned_positions:  # RoPE on q and k: HF apply_rotary_pos_emb = ~10 small kernels
        op("rope", 6 * (A + KVD), 0, 4 * (A + KVD) * ab, kernels=10, name="attn.rope")
    kv_cache = 2 * ctx * KVD * ab  # K + V of this layer
    if kv_update == "concat":  # torch.cat: read the old cache, write the new one
        op("kv_append", 0, 0, 2 * KVD * ab, kv=2 * kv_cache - 2 * KVD * ab, kernels=2, name="attn.kv_append")
    else:
        op("kv_append", 0, 0, 2 * KVD * ab, kv=2 * KVD * ab, kernels=2, name="attn.kv_append")
    rep = 0 if KV == H else 2  # HF repeat_kv for grouped-query attention copies K and V to H heads
    score_kernels = {"sdpa": 1, "eager": 2, "eager-h2d": 3}[attn]  # eager: matmul + scale (h2d: full + div)
    op("attn_score", 2 * A * ctx, 0, A * ab + H * ctx * ab * (0 if attn == "sdpa" else 2), kv=kv_cache // 2,
       kernels=score_kernels + rep, name="attn.score")
    if attn == "eager-h2d":  # the mask value: a CPU scalar copied to the device, ending in a stream sync
        op("h2d_copy", 0, 0, ab, kernels=1, syncs=1, name="attn.mask_value")
    op("softmax", 5 * H * ctx, 0, 0 if attn == "sdpa" else 4 * H * ctx * ab, kernels=0 if attn == "sdpa" else 2,
       name="attn.softmax")
    op("attn_value", 2 * A * ctx, 0, A * ab + (0 if attn == "sdpa" else H * ctx * ab), kv=kv_cache // 2,
       kernels=0 if attn == "sdpa" else 1, name="attn.value")
    op("copy", 0, 0, 2 * A * ab, kernels=1, name="attn.merge_heads")
    linear("attn.o_proj", A, d)
    op("residual_add", d, 0, 3 * d * ab, kernels=1, name="attn.residual")
    norm("ln_2", True)
    if shape.ffn_kind == "gelu":
        linear("mlp.up", d, F)
        op("gelu", 10 * F, 0, 8 * 2 * F * ab, kernels=8, name="mlp.act")  # 8 elementwise kernels, F in + F out
    else:
        linear("mlp.gate_up", d, 2 * F, kernels=2)
        op("swiglu", 5 * F, 0, 5 * F * ab, kernels=2, name="mlp.act")
    linear("mlp.down", F, d)
    op("residual_add", d, 0, 3 * d * ab, kernels=1, name="mlp.residual")
    # once per token, after the layers
    norm("ln_f", False)
    op("lm_head", 2 * d * shape.vocab, d * shape.vocab * wb, (d + shape.vocab) * ab, kernels=1, per_layer=False,
       name="lm_head")
    return _fastertransformer(ops, shape, ab) if kset == "fastertransformer" else ops


def workload_from_trace(trace, ctx: int, dtype: str = "fp32", *,
                        attn: Attn | None = None,
                        kv_update: Literal["concat", "inplace"] | None = None, stack=None,
                        kernels: KernelSet | None = None) -> list[BaselineOp]:
    """Ops of one decode step of a `simulator.trace` Trace (a `pimtrace/1` file, e.g. from `derive_trace`).

    FLOPs and weight bytes come from the trace (so quantised / pruned weights count at their stored size,
    scaled to `dtype`'s weight width only when the trace weight is unquantised); kernel counts and the extra
    traffic of the HF eager stack (cache concatenation, multi-kernel activations) come from the same rules
    as `workload_from_model`, keyed by op kind.
    """
    kv_update = _kv_update(kv_update, stack)
    kset = _kernel_set(kernels, stack)
    wb, ab = _check(ctx, dtype)
    model = trace.model
    shape = shape_from_config(model)
    if ctx > shape.ctx_limit:
        raise PimsimError(f"context {ctx}: exceeds the model's limit {shape.ctx_limit} ({shape.name})")
    ref = {o.name: o for o in workload_from_model(shape, ctx, dtype, attn=attention_code(attn, stack, shape),
                                                  kv_update=kv_update, kernels=kset)}
    by_kind = {}
    for o in ref.values():
        by_kind.setdefault(o.kind, o)
    ops: list[BaselineOp] = []
    for t in trace.ops:
        per_layer = t.scope == "layer"
        macs = t.macs(ctx)
        w = 0
        for wi in t.weights:
            if wi.role == "embedding" and t.kind == "embedding":
                bits = wi.quant.bits_per_weight if wi.quant.scheme != "none" else wb * 8
                w += int(-(-wi.in_features * bits // 8))
            elif wi.role in ("weight", "embedding"):
                bits = wi.quant.bits_per_weight if wi.quant.scheme != "none" else wb * 8
                w += int(-(-wi.numel * bits // 8))
            else:
                w += wi.numel * ab
        # the reference op of the same role gives kernels and stack-specific extra traffic
        r = ref.get(t.name) or by_kind.get(t.kind)
        kernels = r.kernels if r else 1
        if t.kind in ("gemv", "lm_head"):
            act = ((t.in_features or 0) + (t.out_features or 0)) * ab
            kv = 0
            flops = 2 * macs
        elif r is not None:
            act, kv, flops = r.activation_bytes, r.kv_bytes, (2 * macs if macs else r.flops)
        else:
            act, kv, flops = t.act_bytes(ctx), 0, t.elements(ctx)
        fused_embed = kset == "fastertransformer" and t.scope == "pre"  # FT: one lookup + position kernel
        if t.kind == "embedding":  # one row lookup each; the reference op counted lookups + add together
            first = not any(o.kind == "embedding" for o in ops)
            kernels, act, kv, flops = (0 if fused_embed and not first else 1), model.d_model * ab, 0, 0
        elif t.kind == "add":
            kernels, act, kv, flops = (0 if fused_embed else 1), 3 * model.d_model * ab, 0, model.d_model
        ops.append(BaselineOp(kind=t.kind, flops=int(flops), weight_bytes=int(w), activation_bytes=int(act),
                              kv_bytes=int(kv), kernels=kernels, per_layer=per_layer,
                              count=model.n_layers if per_layer else 1, name=t.name, dtype=dtype))
    # HF's merge-heads copy (and the eager-h2d mask-value copy) have no trace op: add them after attn_value
    # (after attn_score)
    for after, extra in (("attn_value", "attn.merge_heads"), ("attn_score", "attn.mask_value")):
        i = next((i for i, o in enumerate(ops) if o.kind == after), None)
        if extra in ref and i is not None:
            ops.insert(i + 1, ref[extra])
    if "sampling" in ref:                  # FasterTransformer's per-step top-p sampling: no trace op
        ops.append(ref["sampling"])
    return ops


def totals(workload: list[BaselineOp]) -> dict[str, int]:
    """Per-token sums (count-weighted): flops, bytes by class, kernels."""
    out = {"flops": 0, "weight_bytes": 0, "activation_bytes": 0, "kv_bytes": 0, "kernels": 0, "syncs": 0}
    for o in workload:
        out["flops"] += o.count * o.flops
        out["weight_bytes"] += o.count * o.weight_bytes
        out["activation_bytes"] += o.count * o.activation_bytes
        out["kv_bytes"] += o.count * o.kv_bytes
        out["kernels"] += o.count * o.kernels
        out["syncs"] += o.count * o.syncs
    return out
