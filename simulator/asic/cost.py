"""Cycle costs and operation counts of the ASIC's operations, derived from the algorithms in `numerics.py`.

Machine model ([D], every number from `AsicConfig`): one vector unit of L = `lanes` lanes issues one vector
operation (add, mul, compare or integer/bit op on L elements) per cycle; operations are pipelined with the
latencies `add/mul/cmp/int_latency_cycles`; SRAM reads and writes overlap with the pipeline (one vector per
cycle per port). A *pass* streams the vector once through a chain of operations:

    pass cycles = ops_per_element * ceil(n / L)          (issue: one vector op per cycle)
                + chain latency                          (pipeline fill: sum of latencies along one
                                                          element's dependency chain)
                + reduction tail, if the pass reduces    (the L lane accumulators run `add_latency`
                                                          interleaved partials, combined in
                                                          ceil(log2(add_latency)) dependent adds, then a
                                                          cross-lane tree of ceil(log2 L) levels)

A *scalar* step (after a reduction: mean, variance, rsqrt, reciprocal of the softmax sum) costs the
latency of its dependency chain. Ops on several independent rows (softmax per head) run one row after the
other. `asic_op_counts` counts the same operations (per element x n, trees, scalars) for the energy model,
so cycles and counts can never disagree about the algorithm.

Per element (T = exp_taylor_terms, R = recip_newton_steps, S = rsqrt_newton_steps):
  exp:   cmp 2 (clamp) | mul x*log2e | int rint | mul k*ln2 | add r = x - k ln2 | (T-1) x (mul, add) Horner
         | int 2^k exponent bits (off the critical chain) | mul p*2^k       -> add T, mul T+2, cmp 2, int 2
  recip: int (magic seed) | R x (mul d*y, add 2-e, mul y*(.))               -> add R, mul 2R, int 1
  rsqrt: int (seed) | mul v/2 | S x (mul y*y, mul h*yy, add 1.5-, mul y*(.)) -> add S, mul 3S+1, int 1
"""

from __future__ import annotations

import math
from functools import lru_cache
from dataclasses import dataclass, field

from simulator.asic.config import AsicConfig
from simulator.errors import PimsimError

OP_CLASSES = ("add", "mul", "cmp", "int")


@dataclass(frozen=True)
class Chain:
    """Operation counts and the dependency chain (op classes in order) of one element or scalar step."""

    counts: tuple[tuple[str, int], ...] = ()
    path: tuple[str, ...] = ()

    def __add__(self, other: "Chain") -> "Chain":
        c = dict(self.counts)
        for k, v in other.counts:
            c[k] = c.get(k, 0) + v
        return Chain(tuple(sorted(c.items())), self.path + other.path)

    @property
    def ops(self) -> int:
        return sum(v for _, v in self.counts)

    def latency(self, cfg: AsicConfig) -> int:
        lat = {"add": cfg.add_latency_cycles, "mul": cfg.mul_latency_cycles, "cmp": cfg.cmp_latency_cycles,
               "int": cfg.int_latency_cycles}
        return sum(lat[p] for p in self.path)


def _op(kind: str, n: int = 1, on_path: bool = True) -> Chain:
    return Chain(((kind, n),), (kind,) * n if on_path else ())


def exp_chain(cfg: AsicConfig) -> Chain:
    t = cfg.exp_taylor_terms
    horner = Chain()
    for _ in range(t - 1):
        horner = horner + _op("mul") + _op("add")
    return (_op("cmp", 2) + _op("mul") + _op("int") + _op("mul") + _op("add") + horner
            + _op("int", 1, on_path=False) + _op("mul"))


def recip_chain(cfg: AsicConfig) -> Chain:
    c = _op("int")
    for _ in range(cfg.recip_newton_steps):
        c = c + _op("mul") + _op("add") + _op("mul")
    return c


def rsqrt_chain(cfg: AsicConfig) -> Chain:
    c = _op("int") + _op("mul", 1, on_path=False)  # seed; v/2 computed in parallel with the seed
    for _ in range(cfg.rsqrt_newton_steps):
        c = c + _op("mul") + _op("mul") + _op("add") + _op("mul")
    return c


@dataclass(frozen=True)
class Pass:
    elem: Chain
    reduce: str | None = None  # "add" or "cmp": the pass ends in a reduction over the vector


@dataclass(frozen=True)
class Algorithm:
    passes: tuple[Pass, ...]
    scalar: Chain = field(default_factory=Chain)


@lru_cache(maxsize=256)
def algorithm(op_kind: str, cfg: AsicConfig) -> Algorithm:
    """The passes and scalar steps of one operation (mirrors `simulator.asic.numerics`)."""
    add, mul, cmp = _op("add"), _op("mul"), _op("cmp")
    if op_kind == "layernorm":
        return Algorithm(
            passes=(Pass(add, "add"),                          # sum(x)
                    Pass(add + mul + add, "add"),              # sum((x - mean)^2)
                    Pass(add + mul + mul + add)),              # (x - mean) * rstd * gamma + beta
            scalar=mul + mul + add + rsqrt_chain(cfg))         # mean = s/n; var = s2/n + eps; rsqrt
    if op_kind == "rmsnorm":
        return Algorithm(passes=(Pass(mul + add, "add"), Pass(mul + mul)),
                         scalar=mul + add + rsqrt_chain(cfg))
    if op_kind == "softmax":
        return Algorithm(passes=(Pass(cmp, "cmp"),                               # max
                                 Pass(add + mul + exp_chain(cfg) + add, "add"),   # e = exp((x-m)*s), sum
                                 Pass(mul)),                                      # e * (1/sum)
                         scalar=recip_chain(cfg))
    if op_kind == "gelu":  # x / (1 + exp(-2 sqrt(2/pi) (x + 0.044715 x^3)))
        return Algorithm(passes=(Pass(mul + mul + mul + add + mul + exp_chain(cfg) + add + recip_chain(cfg) + mul),))
    if op_kind == "silu":  # x / (1 + exp(-x))
        return Algorithm(passes=(Pass(_op("int") + exp_chain(cfg) + add + recip_chain(cfg) + mul),))
    if op_kind == "swiglu":  # silu(gate) * up
        return Algorithm(passes=(Pass(_op("int") + exp_chain(cfg) + add + recip_chain(cfg) + mul + mul),))
    if op_kind in ("residual_add", "bias_add", "vec_add"):
        return Algorithm(passes=(Pass(add),))
    if op_kind == "axpy":  # y += a * x; rows = how many (a, x) pairs, e.g. buffered V rows times probabilities
        return Algorithm(passes=(Pass(mul + add),))
    if op_kind == "exp":
        return Algorithm(passes=(Pass(exp_chain(cfg)),))
    if op_kind == "reciprocal":
        return Algorithm(passes=(Pass(recip_chain(cfg)),))
    if op_kind == "rsqrt":
        return Algorithm(passes=(Pass(rsqrt_chain(cfg)),))
    raise PimsimError(f"ASIC op {op_kind!r}: unknown (one of {', '.join(ASIC_OPS)})")


ASIC_OPS = ("layernorm", "rmsnorm", "softmax", "gelu", "silu", "swiglu", "residual_add", "bias_add", "vec_add",
            "axpy", "partial_sum", "exp", "reciprocal", "rsqrt")


def _log2c(v: int) -> int:
    return 0 if v <= 1 else math.ceil(math.log2(v))


def _reduce_tail(kind: str, cfg: AsicConfig) -> int:
    lat = cfg.add_latency_cycles if kind == "add" else cfg.cmp_latency_cycles
    return _log2c(lat) * lat + _log2c(cfg.lanes) * lat


def _check(n: int, rows: int) -> None:
    if n < 0 or rows < 0:
        raise PimsimError(f"ASIC op size must be non-negative, got n={n}, rows={rows}")


def asic_cycles(op_kind: str, n: int, cfg: AsicConfig = AsicConfig(), **shape) -> int:
    """ASIC clock cycles of `op_kind` on a vector of n elements.

    shape: rows=R (independent rows of n, e.g. softmax per head; default 1); for "partial_sum", n is the
    number of output neurons and partials=P the read-outs per neuron (P - 1 adds each).
    """
    rows = int(shape.get("rows", 1))
    _check(n, rows)
    if n == 0 or rows == 0:
        return 0
    vecs = -(-n // cfg.lanes)
    if op_kind == "partial_sum":
        partials = int(shape.get("partials", 1))
        if partials <= 1:
            return 0
        return rows * ((partials - 1) * vecs + cfg.add_latency_cycles)
    alg = algorithm(op_kind, cfg)
    total = 0
    for p in alg.passes:
        total += p.elem.ops * vecs + p.elem.latency(cfg)
        if p.reduce:
            total += _reduce_tail(p.reduce, cfg)
    total += alg.scalar.latency(cfg)
    return rows * total


def asic_op_counts(op_kind: str, n: int, cfg: AsicConfig = AsicConfig(), **shape) -> dict[str, int]:
    """Element operations {add, mul, cmp, int} of `op_kind` (same algorithm as `asic_cycles`), for energy."""
    rows = int(shape.get("rows", 1))
    _check(n, rows)
    out = dict.fromkeys(OP_CLASSES, 0)
    if n == 0 or rows == 0:
        return out
    if op_kind == "partial_sum":
        out["add"] = rows * n * max(0, int(shape.get("partials", 1)) - 1)
        return out
    alg = algorithm(op_kind, cfg)
    for p in alg.passes:
        for k, v in p.elem.counts:
            out[k] += v * n
        if p.reduce:  # interleaved partials + cross-lane tree: lanes*(lat) partials -> 1 value
            out[p.reduce] += cfg.lanes * (cfg.add_latency_cycles if p.reduce == "add" else cfg.cmp_latency_cycles) - 1
    for k, v in alg.scalar.counts:
        out[k] += v
    return {k: rows * v for k, v in out.items()}


def asic_time_ns(op_kind: str, n: int, cfg: AsicConfig = AsicConfig(), **shape) -> float:
    return asic_cycles(op_kind, n, cfg, **shape) * cfg.cycle_ns
