"""The ASIC's function units and the dataflow of each nonlinear operator over them (docs/asic.md).

Units (`UNITS`): a vector ALU (`valu`: add, mul, compare, select, the integer/bit ops of the seeds), an exp
pipeline (`exp`: range reduction + Horner Taylor series), a reciprocal pipeline (`recip`: seed + Newton
steps), an inverse-square-root pipeline (`rsqrt`) and a reduction tree (`reduce`: sum or max over a vector).
Each unit is a pipeline of `lanes` lanes, `depth` stages and initiation interval `ii` (cycles between two
vectors entering it), read from `AsicConfig`.

One unit, n elements, from cycle s with the unit free and all inputs present:

    vectors   v = ceil(n / lanes)
    last issue      s + (v - 1) * ii
    finish    f = s + depth + v * ii           (= depth + ceil(n/lanes) * ii cycles)

Hand-derived example (tested in tests/test_asic_units.py): the default exp unit (128 lanes, ii 1, depth 39 =
the exp chain latency cmp 2x1 + mul 3 + int 1 + mul 3 + add 2 + 5 x (mul 3 + add 2) + mul 3) on 768 elements:
v = 6, so finish = 39 + 6 = 45 cycles; a second job of 256 elements requested at cycle 0 may issue once the
first job's last vector has issued (cycle 6): it finishes at 6 + 39 + 2 = 47.

A *pass* streams a vector through a chain of stages; a stage is (unit, ops): `ops` dependent operations on
that unit per element (a vector ALU stage of 4 ops is 4 trips through the ALU pipeline). For a pass:

    W  = max over units u of ceil(n / lanes_u) * ii_u * ops_u      (issue window: the bottleneck unit)
    D  = sum over stages of depth_u * ops                            (one element's latency through the chain)
    finish = s + W + D

where s is the first cycle at which every unit of the chain can accept the pass: unit u reached after
D_u cycles of earlier stages must have issued its previous job's last vector by s + D_u. The unit is then
held (in request order: a unit serves one operator stream at a time) until s + D_u + W.

Passes are separated by barriers (a reduction's result is needed before the next pass starts). A streaming
pass fed by read-outs (n_i elements arriving at a_i) is one job whose last vector leaves the bottleneck at
the FIFO recursion f_i = max(a_i, f_{i-1}) + w_i (w_i the pass's issue window for n_i elements), computed in
closed form as max_j(a_j + sum_{k>=j} w_k); the result is ready D later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from simulator.asic.config import AsicConfig
from simulator.asic.cost import _log2c, exp_chain, recip_chain, rsqrt_chain
from simulator.errors import PimsimError

UNITS = ("valu", "exp", "recip", "rsqrt", "reduce")


@dataclass(frozen=True)
class Unit:
    name: str
    lanes: int
    depth: int
    ii: int

    def cycles(self, n: int) -> int:
        """depth + ceil(n / lanes) * ii: n elements from an idle unit."""
        return self.depth + math.ceil(n / self.lanes) * self.ii if n > 0 else 0


def units_from_config(cfg: AsicConfig) -> dict[str, Unit]:
    """The five units; a depth left at None is derived from the operation latencies (docs/asic.md)."""
    derived = {
        "valu": max(cfg.add_latency_cycles, cfg.mul_latency_cycles, cfg.cmp_latency_cycles, cfg.int_latency_cycles),
        "exp": exp_chain(cfg).latency(cfg),
        "recip": recip_chain(cfg).latency(cfg),
        "rsqrt": rsqrt_chain(cfg).latency(cfg),
        # adder tree over the unit's lanes, after combining the add_latency interleaved partial sums
        "reduce": (_log2c(cfg.reduce.lanes) + _log2c(cfg.add_latency_cycles)) * cfg.add_latency_cycles,
    }
    out = {}
    for name in UNITS:
        u = getattr(cfg, name)
        out[name] = Unit(name, u.lanes, derived[name] if u.depth is None else u.depth, u.ii)
    return out


@dataclass(frozen=True)
class Pass:
    """One streaming pass: stages (unit, ops per element) over n elements; a barrier follows it."""

    stages: tuple[tuple[str, int], ...]
    n: int


@cache
def operator_passes(kind: str, n: int, rows: int = 1) -> tuple[Pass, ...]:
    """The dataflow of one operator on the units (n elements per row, `rows` independent rows processed
    together, e.g. the heads of a softmax). See docs/asic.md for each dataflow."""
    if n <= 0 or rows <= 0:
        return ()
    m = n * rows
    if kind in ("residual_add", "bias_add", "vec_add"):
        return (Pass((("valu", 1),), m),)
    if kind == "rope":  # x * cos + rot(x) * sin
        return (Pass((("valu", 3),), m),)
    if kind == "layernorm":  # sum x | sum (x - mean)^2 | rsqrt(var + eps) | (x - mean) * rstd * g + b
        return (Pass((("reduce", 1),), m), Pass((("valu", 2), ("reduce", 1)), m),
                Pass((("valu", 2), ("rsqrt", 1)), rows), Pass((("valu", 4),), m))
    if kind == "rmsnorm":  # sum x^2 | rsqrt | x * r * g
        return (Pass((("valu", 1), ("reduce", 1)), m), Pass((("valu", 2), ("rsqrt", 1)), rows),
                Pass((("valu", 2),), m))
    if kind == "softmax":  # max | exp((x - max) * s) and its sum | 1 / sum | e * (1 / sum)
        return (Pass((("reduce", 1),), m), Pass((("valu", 2), ("exp", 1), ("reduce", 1)), m),
                Pass((("recip", 1),), rows), Pass((("valu", 1),), m))
    if kind in ("gelu", "silu", "swiglu"):
        return (activation_pass(kind, m),)
    if kind == "dot":  # rows dot products of n: elementwise product, then the tree
        return (Pass((("valu", 1), ("reduce", 1)), m),)
    if kind == "argmax":
        return (Pass((("reduce", 1),), m),)
    raise PimsimError(f"ASIC operator {kind!r}: no unit dataflow (known: see simulator/asic/units.py)")


def activation_stages(kind: str) -> tuple[tuple[str, int], ...]:
    """GELU (tanh form as x / (1 + exp(-2u)), u = c (x + a x^3)): 5 ALU ops, exp, +1, reciprocal, multiply.
    SiLU: negate, exp, +1, reciprocal, multiply; SwiGLU: one more multiply (by the up projection)."""
    if kind == "gelu":
        return (("valu", 5), ("exp", 1), ("valu", 1), ("recip", 1), ("valu", 1))
    if kind == "silu":
        return (("valu", 1), ("exp", 1), ("valu", 1), ("recip", 1), ("valu", 1))
    if kind == "swiglu":
        return (("valu", 1), ("exp", 1), ("valu", 1), ("recip", 1), ("valu", 2))
    raise PimsimError(f"ASIC activation {kind!r}: one of gelu, silu, swiglu")


def activation_pass(kind: str, n: int) -> Pass:
    return Pass(activation_stages(kind), n)


class UnitPool:
    """The units of one ASIC and when each can next accept a vector (ASIC cycles, float: the caller's time
    base may be DRAM cycles); `owner` remembers which job last held each unit (for the critical path)."""

    def __init__(self, units: dict[str, Unit], scale: float = 1.0):
        self.units = units
        self.scale = scale  # caller time units per ASIC cycle
        self.free = dict.fromkeys(units, 0.0)
        self.owner: dict[str, object] = dict.fromkeys(units)
        self.busy = dict.fromkeys(units, 0.0)  # caller time units each unit was held
        self.spans: list[tuple[str, float, float, object]] | None = None  # (unit, start, end, job) if recording
        self._shapes: dict = {}
        self._suffix_scaled: dict = {}
        self._job_shapes: dict = {}

    def _shape(self, p: Pass):
        """(per unit: (name, offset of its first stage, offset of its last stage)), total depth, issue window;
        offsets and depth in ASIC cycles. Cached per pass object (operator passes are canonical objects)."""
        got = self._shapes.get(id(p))
        if got is not None:
            return got
        per: dict[str, list] = {}
        d = 0
        for u, ops in p.stages:
            e = per.setdefault(u, [d, d])
            e[1] = d
            d += self.units[u].depth * ops
        got = (tuple((u, f, la) for u, (f, la) in per.items()), d, self.window(p, p.n), p)
        self._shapes[id(p)] = got
        return got

    def _scaled(self, suffix: np.ndarray) -> np.ndarray:
        """suffix * scale, cached per suffix array (the mapping's suffixes are cached objects)."""
        got = self._suffix_scaled.get(id(suffix))
        if got is None or got[0] is not suffix:
            got = (suffix, suffix * self.scale)
            self._suffix_scaled[id(suffix)] = got
        return got[1]

    def window(self, p: Pass, n: int) -> int:
        """Issue window of pass p over n elements (ASIC cycles)."""
        if n <= 0:
            return 0
        return max(math.ceil(n / self.units[u].lanes) * self.units[u].ii * ops for u, ops in _merged(p.stages))

    def run(self, passes: tuple[Pass, ...], ready: float, job=None, arrivals: np.ndarray | None = None,
            suffix: np.ndarray | None = None) -> tuple[float, object]:
        """Schedule the passes of one job from `ready`; the first pass may stream over `arrivals` (caller time
        units); `suffix[i]` is the ASIC cycles of issue read-outs i.. need (suffix sums of `window` of their
        elements, see `stream_suffix`). Returns (finish, binding): binding is the job whose unit hold decided
        a start (None: `ready` did)."""
        t = ready
        binding = None
        sc = self.scale
        free, owner, busy, spans = self.free, self.owner, self.busy, self.spans
        got = self._job_shapes.get(id(passes))
        if got is None or got[0] is not passes:
            # each pass's `_shape`, looked up once per passes tuple, its offsets, depth and window times scale
            # (the same products as computed per call)
            got = self._job_shapes[id(passes)] = (passes, [
                (tuple((u, first * sc, last * sc) for u, first, last in per), depth * sc, win * sc)
                for per, depth, win in (self._shape(p)[:3] for p in passes)])
        streamed = arrivals is not None and len(arrivals) > 0  # the first pass only
        for per, depth, win in got[1]:
            s = t
            for u, first, _ in per:
                v = free[u] - first
                if v > s:
                    s, binding = v, owner[u]
            if streamed:
                end_issue = stream_end(arrivals, s, self._scaled(suffix))
                streamed = False
            else:
                end_issue = s + win
            for u, first, last in per:
                hold_from, hold_to = s + first, end_issue + last
                busy[u] += hold_to - hold_from
                free[u] = hold_to
                owner[u] = job
                if spans is not None:
                    spans.append((u, hold_from, hold_to, job))
            t = end_issue + depth
        return t, binding


def _stream_end(arrivals: np.ndarray, s: float, scaled_suffix: np.ndarray) -> float:
    """max_i(max(a_i, s) + suffix_i): when the streamed pass's last vector has issued (module docstring); one
    arrival (overlap off: the whole tile at once) stands for every read-out. The float operations of
    `np.max(np.maximum(arrivals, s) + scaled_suffix)`, in one pass."""
    one = arrivals.shape[0] == 1
    best = -np.inf
    for i in range(scaled_suffix.shape[0]):
        a = float(arrivals[0] if one else arrivals[i])
        v = (a if a > s else s) + scaled_suffix[i]
        if v > best:
            best = v
    return best


_STREAM_END: list = []


def stream_end(arrivals: np.ndarray, s: float, scaled_suffix: np.ndarray) -> float:
    """`_stream_end`, compiled by Numba on first use (one call per streamed job, ~100 per GPT2 token)."""
    if not _STREAM_END:
        from numba import njit

        _STREAM_END.append(njit(cache=True, error_model="numpy")(_stream_end))
    return _STREAM_END[0](arrivals, float(s), scaled_suffix)


def stream_suffix(windows: np.ndarray) -> np.ndarray:
    """Suffix sums of per-read-out issue windows: f_last = max_i(max(a_i, s) + suffix_i) (module docstring)."""
    return np.ascontiguousarray(np.cumsum(np.asarray(windows, np.float64)[::-1])[::-1])


def _merged(stages):
    acc: dict[str, int] = {}
    for u, ops in stages:
        acc[u] = acc.get(u, 0) + ops
    return acc.items()


def job_cycles(passes: tuple[Pass, ...], units: dict[str, Unit]) -> int:
    """ASIC cycles of a job alone on idle units, all inputs present (the sequential duration)."""
    pool = UnitPool(units)
    end, _ = pool.run(passes, 0.0)
    return round(end)
