"""Expanding a symbolic trace to concrete numbers for one context length or a token range.

`expand(trace, ctx)` gives the flat list of operators one token executes when the KV cache holds `ctx`
keys after the append (the token at 0-based position `ctx - 1`): pre ops, then the layer pattern once per
layer, then post ops, with concrete shapes, MACs, bytes and dependencies as indices into that list.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from simulator.errors import PimsimError
from simulator.trace.schema import Op, Trace


@dataclass(frozen=True)
class ConcreteOp:
    index: int            # position in the expanded step
    layer: int | None     # layer index for layer ops, None for pre/post ops
    op: Op                # the symbolic op it instantiates
    input_shapes: tuple[tuple[int, ...], ...]
    output_shapes: tuple[tuple[int, ...], ...]
    macs: int
    elements: int
    act_bytes: int
    weight_bytes: int
    weight_read_bytes: int
    deps: tuple[int, ...]  # indices of the ConcreteOps whose outputs it reads

    @property
    def name(self) -> str:
        return self.op.name if self.layer is None else f"layers.{self.layer}.{self.op.name}"

    @property
    def kind(self) -> str:
        return self.op.kind


@dataclass(frozen=True)
class ExpandedStep:
    ctx: int
    ops: tuple[ConcreteOp, ...]

    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)

    @property
    def weight_read_bytes(self) -> int:
        return sum(o.weight_read_bytes for o in self.ops)

    @property
    def act_bytes(self) -> int:
        return sum(o.act_bytes for o in self.ops)


def expand(trace: Trace, ctx: int) -> ExpandedStep:
    """Concrete operators of one decode step at context length `ctx` (1 <= ctx <= context_limit)."""
    limit = trace.model.context_limit
    if not isinstance(ctx, int) or not 1 <= ctx <= limit:
        raise PimsimError(f"ctx={ctx!r} is out of range: must be an integer in 1..{limit} (model context limit)")
    out: list[ConcreteOp] = []
    pre, layer, post = trace.scope_ops("pre"), trace.scope_ops("layer"), trace.scope_ops("post")

    def emit(op: Op, layer_idx: int | None, local: dict[str, int], layer_in: int | None) -> None:
        deps: list[int] = []
        for t in op.inputs:
            src = t.src or ""
            if src in ("@layer_in", "@layers_out"):
                idx = layer_in
            elif src.startswith("@"):
                idx = None
            else:
                idx = local[src.split(":")[0]]
            if idx is not None and idx not in deps:
                deps.append(idx)
        i = len(out)
        out.append(ConcreteOp(
            index=i, layer=layer_idx, op=op,
            input_shapes=tuple(t.concrete_shape(ctx) for t in op.inputs),
            output_shapes=tuple(t.concrete_shape(ctx) for t in op.outputs),
            macs=op.macs(ctx), elements=op.elements(ctx), act_bytes=op.act_bytes(ctx),
            weight_bytes=op.weight_bytes,
            weight_read_bytes=op.weight_read_bytes, deps=tuple(deps),
        ))
        local[op.name] = i

    local: dict[str, int] = {}
    for op in pre:
        emit(op, None, local, None)
    prev = len(out) - 1 if out else None
    for li in range(trace.model.n_layers):
        local = {}
        for op in layer:
            emit(op, li, local, prev)
        prev = len(out) - 1
    local = {}
    for op in post:
        emit(op, None, local, prev)
    return ExpandedStep(ctx=ctx, ops=tuple(out))


def expand_range(trace: Trace, start: int, stop: int) -> Iterator[ExpandedStep]:
    """Expanded steps for ctx = start .. stop (inclusive): generating tokens at positions start-1 .. stop-1."""
    if start > stop:
        raise PimsimError(f"empty token range: start ctx {start} > stop ctx {stop}")
    for ctx in range(start, stop + 1):
        yield expand(trace, ctx)


def step_totals(trace: Trace, ctx: int) -> dict[str, int]:
    """Whole-step totals at `ctx` without materialising every op: MACs, weight bytes read, activation bytes."""
    L = trace.model.n_layers
    tot = {"macs": 0, "weight_read_bytes": 0, "act_bytes": 0}
    for op in trace.ops:
        mult = L if op.per_layer else 1
        tot["macs"] += mult * op.macs(ctx)
        tot["weight_read_bytes"] += mult * op.weight_read_bytes
        tot["act_bytes"] += mult * op.act_bytes(ctx)
    return tot
