"""Slow NumPy reference of the functional PIM GEMV: reads W directly by the layout's segment tables (never the
bank images), computes each bank's read-out with `kernels.reference`, and reduces per neuron in increasing k.
`pim_gemv` must match it bit for bit; agreement also proves the address function and segment tables agree."""

from __future__ import annotations

import numpy as np

from simulator.kernels.bits import bf16_to_f32, f32_to_bf16
from simulator.kernels.numerics import MacNumerics
from simulator.kernels.quant import QuantizedMatrix, quantize_activations
from simulator.kernels.reference import ref_apply_scales, ref_reduce_partials, ref_segment_bf16


def _segment_slices(lay, s: int, col_elems: int, n_in: int):
    k0 = int(lay.seg_k0[s])
    width = int(lay.seg_ncols[s]) * col_elems
    return k0, width


def ref_pim_gemv_bf16(W_bits: np.ndarray, x: np.ndarray, lay, num: MacNumerics, col_elems: int = 16) -> np.ndarray:
    n_out, n_in = W_bits.shape
    xb = bf16_to_f32(f32_to_bf16(np.asarray(x, np.float32)))
    seg_neuron = np.asarray(lay.seg_neuron)
    vals, neu, ks = [], [], []
    for s in range(int(lay.n_segments)):
        k0, width = _segment_slices(lay, s, col_elems, n_in)
        xs = np.zeros(width, np.float32)
        real = max(0, min(n_in, k0 + width) - k0)
        xs[:real] = xb[k0:k0 + real]
        for c in range(seg_neuron.shape[0]):
            for b in range(seg_neuron.shape[1]):
                n = int(seg_neuron[c, b, s])
                if n < 0:
                    continue
                w = np.zeros((1, width), np.uint16)
                w[0, :real] = W_bits[n, k0:k0 + real]
                vals.append(ref_segment_bf16(w, xs, num)[0])
                neu.append(n)
                ks.append(k0)
    return ref_reduce_partials(np.array(vals, np.float32), np.array(neu), np.array(ks), n_out)


def ref_pim_gemv_int(qm: QuantizedMatrix, x: np.ndarray, lay, col_elems: int) -> np.ndarray:
    """Integer weights: per (neuron, group) exact sums over the segments' columns, then the ASIC's scales."""
    n_out, n_in = qm.q.shape
    xq, xs = quantize_activations(x)
    gs, groups = qm.spec.groups_for(n_in)
    sums = np.zeros((n_out, groups), np.int64)
    seg_neuron = np.asarray(lay.seg_neuron)
    for s in range(int(lay.n_segments)):
        k0 = int(lay.seg_k0[s])
        for j in range(int(lay.seg_ncols[s])):
            k = k0 + j * col_elems
            if k >= n_in:
                continue
            kk = slice(k, min(n_in, k + col_elems))
            for c in range(seg_neuron.shape[0]):
                for b in range(seg_neuron.shape[1]):
                    n = int(seg_neuron[c, b, s])
                    if n >= 0:
                        sums[n, k // gs] += int(qm.q[n, kk].astype(np.int64) @ xq[kk].astype(np.int64))
    xg = np.array([int(xq[g * gs:(g + 1) * gs].astype(np.int64).sum()) for g in range(groups)], np.int64)
    return ref_apply_scales(sums.astype(np.int32), qm.scales, qm.zeros, xg, xs)
