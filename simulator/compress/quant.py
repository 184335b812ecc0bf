"""Round-to-nearest (RTN) weight quantization: per tensor, per output channel, or per group along K.

Weights are `[out_features, in_features]` (N x K); groups run along K (the reduction dimension).
Uniform affine quantization as in Jacob et al. 2018 ("Quantization and Training of Neural Networks for
Efficient Integer-Arithmetic-Only Inference"), with the fan-in grouping of GPTQ (Frantar et al. 2022):
- symmetric, b bits: scale = max|w| / (2^(b-1) - 1), q = clip(round(w/scale), -2^(b-1), 2^(b-1) - 1),
  w' = q * scale;
- asymmetric: the range [min(w, 0), max(w, 0)] is mapped onto 0..2^b - 1: scale = (max - min) / (2^b - 1),
  zero = round(-min / scale), q = clip(round(w/scale) + zero, 0, 2^b - 1), w' = (q - zero) * scale.
Scales are rounded to their storage dtype (fp16) *before* use, so the returned dequantized weights are
exactly what a device holding (q, scale, zero) computes with. Because 0 is always in range and the zero
point is an integer, a zero weight stays exactly zero (pruned weights remain pruned). numpy rounds halves
to even. All-zero groups get scale 1.
"""

from __future__ import annotations

import numpy as np

from simulator.compress.spec import QuantSpec


def qparams(w: np.ndarray, bits: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point for each row of `w` (2-D: one parameter set per row). Scale rounded to fp16."""
    w = np.asarray(w, dtype=np.float64)
    if symmetric:
        scale = np.abs(w).max(axis=1) / (2 ** (bits - 1) - 1)
    else:
        lo = np.minimum(w.min(axis=1), 0.0)
        scale = (np.maximum(w.max(axis=1), 0.0) - lo) / (2 ** bits - 1)
    scale = np.where(scale == 0, 1.0, scale).astype(np.float16).astype(np.float64)
    scale = np.maximum(scale, float(np.finfo(np.float16).smallest_subnormal))
    zero = np.zeros_like(scale) if symmetric else np.clip(np.round(-lo / scale), 0, 2 ** bits - 1)
    return scale, zero


def quantize_with(w: np.ndarray, scale: np.ndarray, zero: np.ndarray, bits: int, symmetric: bool) -> np.ndarray:
    """Dequantized values of `w` (rows of any 2-D block) with per-row `scale`/`zero` (broadcast along columns)."""
    w = np.asarray(w, dtype=np.float64)
    s = scale.reshape(-1, 1)
    z = zero.reshape(-1, 1)
    if symmetric:
        q = np.clip(np.round(w / s), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        return q * s
    q = np.clip(np.round(w / s) + z, 0, 2 ** bits - 1)
    return (q - z) * s


def rtn_quantize(w: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """RTN-quantize a weight matrix [N, K]; returns the dequantized float64 matrix."""
    w = np.asarray(w, dtype=np.float64)
    n, k = w.shape
    if spec.granularity == "tensor":
        scale, zero = qparams(w.reshape(1, -1), spec.bits, spec.symmetric)
        return quantize_with(w.reshape(1, -1), scale, zero, spec.bits, spec.symmetric).reshape(n, k)
    if spec.granularity == "channel":
        scale, zero = qparams(w, spec.bits, spec.symmetric)
        return quantize_with(w, scale, zero, spec.bits, spec.symmetric)
    g = int(spec.group_size)
    out = np.empty_like(w)
    for c0 in range(0, k, g):
        blk = w[:, c0:c0 + g]
        scale, zero = qparams(blk, spec.bits, spec.symmetric)
        out[:, c0:c0 + g] = quantize_with(blk, scale, zero, spec.bits, spec.symmetric)
    return out


def max_levels_per_group(wq: np.ndarray, spec: QuantSpec) -> int:
    """Measured: the largest number of distinct values in any quantization group of the dequantized `wq`."""
    wq = np.asarray(wq)
    n, k = wq.shape
    if spec.granularity == "tensor":
        return int(np.unique(wq).size)
    g = k if spec.granularity == "channel" else int(spec.group_size)
    best = 0
    for c0 in range(0, k, g):
        blk = np.sort(wq[:, c0:c0 + g], axis=1)
        distinct = 1 + (np.diff(blk, axis=1) != 0).sum(axis=1)
        best = max(best, int(distinct.max()))
    return best
