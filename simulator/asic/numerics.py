"""What the controller ASIC computes: fp32 NumPy implementations of its approximate nonlinear operations.

Each function follows, operation for operation, the algorithm whose operations `simulator.asic.cost`
counts and times (same Taylor terms and Newton steps, read from `AsicConfig`):

* exp(x): clamp x to [-87, 80] (2 compares); k = rint(x * log2(e)); r = x - k * ln2 (|r| <= ln2/2);
  Horner over `exp_taylor_terms` Taylor terms of e^r; multiply by 2^k built from exponent bits.
* 1/d (d > 0): seed from the magic constant 0x7EF311C7 - bits(d), then `recip_newton_steps` of
  y <- y * (2 - d*y).
* 1/sqrt(v) (v > 0): the fast inverse square root seed 0x5F3759DF - (bits(v) >> 1), then
  `rsqrt_newton_steps` of y <- y * (1.5 - (v/2) * y * y).
* layernorm: mean (pass 1), variance of x - mean (pass 2, two-pass), rsqrt(var + eps), (x - mean) * rstd
  * gamma + beta (pass 3).
* softmax: max (pass 1), exp((x - max) * scale) and its sum (pass 2), reciprocal of the sum, multiply (pass 3).
* GELU, tanh form: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), evaluated as the identical
  x / (1 + exp(-2u)) (0.5 (1 + tanh u) = sigmoid(2u)) with the exp and reciprocal above.
* RMSNorm, SiLU = x / (1 + exp(-x)), SwiGLU = SiLU(gate) * up, residual / bias adds, partial-sum reduction.

All arithmetic is float32 (no float64 anywhere); reductions are sequential fp32 sums over the lane
accumulators (interleaved by the adder latency) and then adder trees, like the hardware (`lane_sum`).
"""

from __future__ import annotations

import numpy as np

from simulator.asic.config import AsicConfig

F = np.float32
LOG2E = F(1.4426950408889634)  # source: math constant log2(e) rounded to fp32
LN2 = F(0.6931471805599453)  # source: math constant ln(2) rounded to fp32
# Clamp of the exp argument: keeps 2^k a normal fp32 (k >= -126) and keeps 1 + exp(.) below the largest
# value the reciprocal seed handles (0x7EF311C7 - bits(d) must stay positive: d < 1.6e38; e^80 = 5.5e34).
EXP_CLAMP_LO, EXP_CLAMP_HI = F(-87.0), F(80.0)
RECIP_MAGIC = np.uint32(0x7EF311C7)  # source: standard 1/x bit-trick seed constant
RSQRT_MAGIC = np.uint32(0x5F3759DF)  # source: the classic fast inverse square root constant
GELU_C = F(0.7978845608028654)  # sqrt(2/pi)
GELU_A = F(0.044715)  # source: Hendrycks & Gimpel 2016, tanh approximation of GELU


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _pow2_tree(acc: np.ndarray) -> np.ndarray:
    """Pairwise fp32 tree over axis 0 (zero-padded to a power of two)."""
    width = 1 << max(0, (acc.shape[0] - 1).bit_length())
    acc = np.concatenate([acc, np.zeros((width - acc.shape[0],) + acc.shape[1:], np.float32)])
    while acc.shape[0] > 1:
        acc = (acc[0::2] + acc[1::2]).astype(np.float32)
    return acc[0]


def lane_sum(x: np.ndarray, lanes: int, interleave: int = 1) -> np.float32:
    """Sum as the ASIC does it (see `cost.py`): vector v = x[v*L : (v+1)*L] is added lane-wise into partial
    accumulator v mod `interleave` (the adder latency: a new vector every cycle), fp32, in order; the
    partials are combined by a pairwise tree, then the lanes by the cross-lane pairwise tree."""
    x = _f32(x).ravel()
    pad = (-x.size) % lanes
    acc = np.zeros((interleave, lanes), np.float32)
    for v, row in enumerate(np.pad(x, (0, pad)).reshape(-1, lanes)):
        acc[v % interleave] = (acc[v % interleave] + row).astype(np.float32)
    return F(_pow2_tree(_pow2_tree(acc)))


def lane_max(x: np.ndarray, lanes: int) -> np.float32:
    return F(np.max(_f32(x)))  # max is exact in any order


def exp_approx(x: np.ndarray, cfg: AsicConfig) -> np.ndarray:
    x = np.clip(_f32(x), EXP_CLAMP_LO, EXP_CLAMP_HI)
    k = np.rint((x * LOG2E).astype(np.float32)).astype(np.float32)
    r = (x - (k * LN2).astype(np.float32)).astype(np.float32)
    terms = cfg.exp_taylor_terms
    fact = [F(1.0)]
    for i in range(1, terms):
        fact.append(F(fact[-1] * F(i)))
    p = np.full_like(r, F(1.0) / fact[terms - 1])
    for i in range(terms - 2, -1, -1):
        p = ((p * r).astype(np.float32) + F(F(1.0) / fact[i])).astype(np.float32)
    two_k = ((k.astype(np.int32) + 127).astype(np.uint32) << np.uint32(23)).view(np.float32)
    return (p * two_k).astype(np.float32)


def recip_approx(d: np.ndarray, cfg: AsicConfig) -> np.ndarray:
    d = _f32(d)
    y = (RECIP_MAGIC - np.ascontiguousarray(d).view(np.uint32)).view(np.float32)
    two = F(2.0)
    for _ in range(cfg.recip_newton_steps):
        y = (y * (two - (d * y).astype(np.float32))).astype(np.float32)
    return y


def rsqrt_approx(v: np.ndarray, cfg: AsicConfig) -> np.ndarray:
    v = _f32(v)
    y = (RSQRT_MAGIC - (np.ascontiguousarray(v).view(np.uint32) >> np.uint32(1))).view(np.float32)
    half = (v * F(0.5)).astype(np.float32)
    for _ in range(cfg.rsqrt_newton_steps):
        y = (y * (F(1.5) - (half * (y * y).astype(np.float32)).astype(np.float32))).astype(np.float32)
    return y


def layernorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float, cfg: AsicConfig) -> np.ndarray:
    x = _f32(x)
    inv_n = F(1.0) / F(x.size)  # a constant of the model, loaded with the layer's parameters
    mean = F(lane_sum(x, cfg.lanes, cfg.add_latency_cycles) * inv_n)
    d = (x - mean).astype(np.float32)
    var = F(F(lane_sum((d * d).astype(np.float32), cfg.lanes, cfg.add_latency_cycles) * inv_n) + F(eps))
    rstd = rsqrt_approx(np.array([var], np.float32), cfg)[0]
    return ((((x - mean).astype(np.float32) * rstd).astype(np.float32) * _f32(gamma)).astype(np.float32)
            + _f32(beta)).astype(np.float32)


def rmsnorm(x: np.ndarray, gamma: np.ndarray, eps: float, cfg: AsicConfig) -> np.ndarray:
    x = _f32(x)
    inv_n = F(1.0) / F(x.size)
    ms = F(F(lane_sum((x * x).astype(np.float32), cfg.lanes, cfg.add_latency_cycles) * inv_n) + F(eps))
    r = rsqrt_approx(np.array([ms], np.float32), cfg)[0]
    return ((x * r).astype(np.float32) * _f32(gamma)).astype(np.float32)


def softmax(x: np.ndarray, cfg: AsicConfig, scale: float = 1.0) -> np.ndarray:
    """softmax(scale * x) with the max subtracted first (scale > 0, e.g. 1/sqrt(head_dim))."""
    x = _f32(x)
    m = lane_max(x, cfg.lanes)
    e = exp_approx(((x - m).astype(np.float32) * F(scale)).astype(np.float32), cfg)
    s = lane_sum(e, cfg.lanes, cfg.add_latency_cycles)
    inv = recip_approx(np.array([s], np.float32), cfg)[0]
    return (e * inv).astype(np.float32)


def gelu(x: np.ndarray, cfg: AsicConfig) -> np.ndarray:
    x = _f32(x)
    x3 = ((x * x).astype(np.float32) * x).astype(np.float32)
    inner = (x + (GELU_A * x3).astype(np.float32)).astype(np.float32)
    e = exp_approx((inner * F(-2.0 * GELU_C)).astype(np.float32), cfg)
    return (x * recip_approx((e + F(1.0)).astype(np.float32), cfg)).astype(np.float32)


def silu(x: np.ndarray, cfg: AsicConfig) -> np.ndarray:
    x = _f32(x)
    e = exp_approx(-x, cfg)
    return (x * recip_approx((e + F(1.0)).astype(np.float32), cfg)).astype(np.float32)


def swiglu(gate: np.ndarray, up: np.ndarray, cfg: AsicConfig) -> np.ndarray:
    return (silu(gate, cfg) * _f32(up)).astype(np.float32)


def vec_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Residual or bias add (fp32)."""
    return (_f32(a) + _f32(b)).astype(np.float32)


def reduce_partials(values: np.ndarray, neuron: np.ndarray, k0: np.ndarray, n_out: int) -> np.ndarray:
    """Partial-sum reduction: each neuron's read-outs added in fp32 in increasing k (starting from +0)."""
    from simulator.kernels.mac_bf16 import reduce_partials_kernel

    order = np.lexsort((k0, neuron)).astype(np.int64)
    return reduce_partials_kernel(_f32(values), np.asarray(neuron, np.int64), order, n_out)
