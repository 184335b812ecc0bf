"""Slow, obvious NumPy references for every MAC kernel. The Numba kernels must match them bit for bit.

Nothing here is clever: products are NumPy float32 multiplies of the widened bf16 values, the adder tree
is `p[..., 0::2] + p[..., 1::2]` level by level, the accumulator is a Python loop over column commands,
bf16 rounding is `bits.f32_to_bf16`, integer sums are int64 (equal to int32 while no overflow occurs,
which the wrappers guarantee). The loops run over column commands and vectorise only over rows.
"""

from __future__ import annotations

import numpy as np

from simulator.kernels.bits import bf16_to_f32, round_to_bf16
from simulator.kernels.numerics import MacNumerics


def _tree(p: np.ndarray) -> np.ndarray:
    """Pairwise adder tree over the last axis (length a power of two), fp32."""
    while p.shape[-1] > 1:
        p = (p[..., 0::2] + p[..., 1::2]).astype(np.float32)
    return p[..., 0]


def ref_segment_bf16(w_bits: np.ndarray, x_f32: np.ndarray, num: MacNumerics) -> np.ndarray:
    """Read-out of one accumulator per row: w_bits uint16[R, ncols*lanes], x_f32 float32[ncols*lanes]."""
    lanes = num.lanes
    rows, k = w_bits.shape
    ncols = k // lanes
    bf = (lambda v: round_to_bf16(v)) if num.accumulator == "bf16" else (lambda v: v)
    acc = np.zeros(rows, np.float32)
    lane_acc = np.zeros((rows, lanes), np.float32)
    for j in range(ncols):
        wj = w_bits[:, j * lanes:(j + 1) * lanes]
        if num.zero_skipping:
            live = (wj != 0).any(axis=1)
        else:
            live = np.ones(rows, bool)
        prod = (bf16_to_f32(wj) * x_f32[j * lanes:(j + 1) * lanes]).astype(np.float32)
        if num.order == "tree":
            new = bf((acc + _tree(prod)).astype(np.float32))
            acc = np.where(live, new, acc)
        elif num.order == "serial":
            new = acc.copy()
            for lane in range(lanes):
                new = bf((new + prod[:, lane]).astype(np.float32))
            acc = np.where(live, new, acc)
        else:
            new = bf((lane_acc + prod).astype(np.float32))
            lane_acc = np.where(live[:, None], new, lane_acc)
    if num.order == "lane":
        acc = _tree(lane_acc)
    if num.readout == "bf16":
        acc = round_to_bf16(acc)
    return acc.astype(np.float32)


def ref_gemv_bf16(W_bits: np.ndarray, x_bits: np.ndarray, num: MacNumerics, seg_elems: int) -> np.ndarray:
    """Rows of W cut into read-out segments of `seg_elems` inputs; segments added in fp32 in increasing k."""
    n_rows, k = W_bits.shape
    pad = (-k) % num.lanes
    W_bits = np.pad(W_bits, ((0, 0), (0, pad)))
    x = np.pad(bf16_to_f32(np.asarray(x_bits, np.uint16)), (0, pad))
    y = np.zeros(n_rows, np.float32)
    for k0 in range(0, k + pad, seg_elems):
        y = (y + ref_segment_bf16(W_bits[:, k0:k0 + seg_elems], x[k0:k0 + seg_elems], num)).astype(np.float32)
    return y


def ref_int_group_sums(q: np.ndarray, xq: np.ndarray, group_size: int) -> np.ndarray:
    """int32 sums per (row, group): q int8-valued [N, K] (int4 values unpacked), xq int8 [K]."""
    n_rows, k = q.shape
    groups = -(-k // group_size)
    out = np.zeros((n_rows, groups), np.int64)
    for g in range(groups):
        sl = slice(g * group_size, min(k, (g + 1) * group_size))
        out[:, g] = q[:, sl].astype(np.int64) @ xq[sl].astype(np.int64)
    return out.astype(np.int32)


def ref_apply_scales(sums: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, x_group_sums: np.ndarray,
                     x_scale: np.float32) -> np.ndarray:
    """y[n] = x_scale * fp32-sum over groups g (increasing) of float32(sums - zero*xsum) * scale."""
    n_rows, groups = sums.shape
    y = np.zeros(n_rows, np.float32)
    for g in range(groups):
        corr = sums[:, g].astype(np.int64)
        if zeros is not None:
            corr = corr - zeros[:, g].astype(np.int64) * np.int64(x_group_sums[g])
        y = (y + (corr.astype(np.float32) * scales[:, g].astype(np.float32)).astype(np.float32)).astype(np.float32)
    return (y * np.float32(x_scale)).astype(np.float32)


def ref_reduce_partials(values: np.ndarray, neuron: np.ndarray, k0: np.ndarray, n_out: int) -> np.ndarray:
    """ASIC reduction, one neuron at a time, partial sums in increasing k order, fp32."""
    y = np.zeros(n_out, np.float32)
    for n in range(n_out):
        idx = np.nonzero(neuron == n)[0]
        for i in idx[np.argsort(k0[idx], kind="stable")]:
            y[n] = np.float32(y[n] + values[i])
    return y
