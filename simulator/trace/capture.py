"""Capturing the operator sequence of a real HF forward pass of one decode step (cross-check of derive.py).

The HF model is built on the `meta` device (no memory, even for GPT2-XL), a KV cache of `ctx - 1` tokens is
prefilled, and the single-token decode call runs under a `TorchDispatchMode` that sees every ATen op.
The ATen stream is reduced to pimtrace op kinds by fixed rules (views, masks, casts and the scalar parts of
elementwise chains are dropped):
- `embedding` -> embedding; in the pre stage an add of two embedding outputs -> add;
- `native_layer_norm` -> layernorm; `rsqrt` -> rmsnorm (the rest of the RMSNorm chain is dropped);
- a matmul with a parameter operand -> gemv (lm_head after the layers); consecutive gemvs reading the same
  activation (q/k/v, gate/up) are merged into one fused gemv, as the derived trace does;
- a matmul of two activations -> attn_score, or attn_value once a softmax happened since the score;
- `_softmax` -> softmax; `cat` along the sequence axis of a 4-D tensor -> kv_append (k and v merged);
- `neg` (rotate_half) -> rope (q and k merged); `tanh` (GPT-2's gelu_new) or `gelu` -> gelu;
  `silu` -> silu, turned into swiglu when its output is multiplied by another activation;
- an add of two [.., d_model] activations inside a layer -> residual_add.
The stage (pre / layer i / post) comes from forward pre-hooks on the decoder blocks and the final norm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.trace.expand import expand
from simulator.trace.hf import build_hf_model, require_torch
from simulator.trace.schema import ModelConfig, Trace

_VIEW_OPS = {"view", "_unsafe_view", "t", "transpose", "expand", "unsqueeze", "squeeze", "reshape", "slice",
             "permute", "alias", "contiguous", "clone", "select", "_to_copy", "detach"}


@dataclass(frozen=True)
class OpSig:
    """What the cross-check compares for one op."""

    scope: str
    layer: int | None
    kind: str
    in_features: int | None = None
    out_features: int | None = None
    heads: int | None = None
    ctx: int | None = None


def trace_signature(trace: Trace, ctx: int) -> list[OpSig]:
    """The signature of the derived trace expanded at `ctx`."""
    out = []
    for c in expand(trace, ctx).ops:
        op = c.op
        sig = OpSig(op.scope, c.layer, op.kind)
        if op.kind in ("gemv", "lm_head"):
            sig = OpSig(op.scope, c.layer, op.kind, in_features=op.in_features, out_features=op.out_features)
        elif op.kind in ("attn_score", "attn_value"):
            sig = OpSig(op.scope, c.layer, op.kind, heads=op.heads, ctx=ctx)
        elif op.kind == "kv_append":
            sig = OpSig(op.scope, c.layer, op.kind, heads=op.kv_heads, ctx=ctx)
        out.append(sig)
    return out


def capture_signature(cfg: ModelConfig, ctx: int) -> list[OpSig]:
    """Run one decode step (KV cache of ctx-1 tokens) of the HF model on `meta` and reduce its ATen ops."""
    torch, _ = require_torch()
    from torch.utils._python_dispatch import TorchDispatchMode

    model = build_hf_model(cfg, 0, device="meta")
    if cfg.family in ("gpt2", "gpt3"):
        blocks, final_norm = list(model.transformer.h), model.transformer.ln_f
    else:
        blocks, final_norm = list(model.model.layers), model.model.norm
    params = {id(p) for p in model.parameters()}
    state: dict[str, Any] = {"scope": "pre", "layer": None}
    hooks = []
    for i, blk in enumerate(blocks):
        hooks.append(blk.register_forward_pre_hook(lambda _m, _a, i=i: state.update(scope="layer", layer=i)))
    hooks.append(final_norm.register_forward_pre_hook(lambda _m, _a: state.update(scope="post", layer=None)))

    sigs: list[OpSig] = []
    keep: list[Any] = []          # keep tensors alive so that ids stay unique
    root: dict[int, int] = {}     # id of a view -> id of the tensor it views
    param_view: set[int] = set()  # ids of views of parameters (t(weight) for nn.Linear)
    emb_out: set[int] = set()
    silu_out: dict[int, int] = {}  # silu output id -> index in sigs
    gemv_in: dict[int, int] = {}   # activation root id -> index of the gemv that read it (this layer)
    softmax_seen = [False]

    def rid(t: Any) -> int:
        i = id(t)
        while i in root:
            i = root[i]
        return i

    def is_param(t: Any) -> bool:
        return id(t) in params or id(t) in param_view

    class _Rec(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = func.overloadpacket.__name__
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            outs = out if isinstance(out, (list, tuple)) else [out]
            keep.extend(tensors)
            keep.extend(o for o in outs if isinstance(o, torch.Tensor))
            scope, layer = state["scope"], state["layer"]

            def emit(kind: str, **kw: Any) -> None:
                if kind in ("rope", "kv_append") and sigs and sigs[-1].kind == kind and sigs[-1].layer == layer:
                    return
                if sigs and (sigs[-1].scope, sigs[-1].layer) != (scope, layer):
                    gemv_in.clear()
                    softmax_seen[0] = False
                sigs.append(OpSig(scope, layer, kind, **kw))

            if name in _VIEW_OPS or name == "split":
                if tensors:
                    for o in outs:
                        if isinstance(o, torch.Tensor):
                            root[id(o)] = rid(tensors[0])
                            if is_param(tensors[0]):
                                param_view.add(id(o))
                return out
            if name == "embedding":
                emit("embedding")
                emb_out.add(id(out))
            elif scope == "pre":
                if name == "add" and len(tensors) == 2 and all(rid(t) in emb_out or id(t) in emb_out for t in tensors):
                    emit("add")
            elif name == "native_layer_norm":
                emit("layernorm")
            elif name == "rsqrt":
                emit("rmsnorm")
            elif name in ("mm", "addmm", "bmm", "matmul"):
                mats = tensors[-2:]
                if any(is_param(t) for t in mats):
                    act, w = (mats[0], mats[1]) if is_param(mats[1]) else (mats[1], mats[0])
                    k, n = int(w.shape[0]), int(w.shape[1])
                    r = rid(act)
                    if scope == "layer" and r in gemv_in and sigs[gemv_in[r]].layer == layer:
                        j = gemv_in[r]
                        s = sigs[j]
                        sigs[j] = OpSig(s.scope, s.layer, s.kind, in_features=s.in_features,
                                        out_features=s.out_features + n)
                    else:
                        kind = "lm_head" if scope == "post" else "gemv"
                        emit(kind, in_features=k, out_features=n)
                        gemv_in[r] = len(sigs) - 1
                elif scope == "layer":
                    if softmax_seen[0]:
                        emit("attn_value", heads=int(out.shape[0]), ctx=int(mats[0].shape[-1]))
                        softmax_seen[0] = False
                    else:
                        emit("attn_score", heads=int(out.shape[0]), ctx=int(out.shape[-1]))
            elif name in ("_softmax", "softmax"):
                emit("softmax")
                softmax_seen[0] = True
            elif name == "cat" and out.dim() == 4 and args[1] in (-2, 2):
                emit("kv_append", heads=int(out.shape[1]), ctx=int(out.shape[2]))
            elif name == "neg" and scope == "layer":
                emit("rope")
            elif name in ("tanh", "gelu"):
                emit("gelu")
            elif name == "silu":
                emit("silu")
                silu_out[id(out)] = len(sigs) - 1
            elif name == "mul" and len(tensors) == 2 and any(id(t) in silu_out for t in tensors):
                j = next(silu_out[id(t)] for t in tensors if id(t) in silu_out)
                s = sigs[j]
                sigs[j] = OpSig(s.scope, s.layer, "swiglu")
            elif (name == "add" and scope == "layer" and len(tensors) == 2
                  and tuple(tensors[0].shape) == tuple(tensors[1].shape) and tensors[0].numel() == cfg.d_model
                  and tensors[0].shape[-1] == cfg.d_model):
                emit("residual_add")
            return out

    try:
        with torch.no_grad():
            cache = None
            if ctx > 1:
                pre = model(input_ids=torch.zeros((1, ctx - 1), dtype=torch.long, device="meta"), use_cache=True)
                cache = pre.past_key_values
            state.update(scope="pre", layer=None)
            with _Rec():
                model(input_ids=torch.zeros((1, 1), dtype=torch.long, device="meta"), past_key_values=cache,
                      use_cache=True)
    finally:
        for h in hooks:
            h.remove()
    return sigs
