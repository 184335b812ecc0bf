"""Numba kernels: int8 x int8 -> int32 and packed int4 x int8 -> int32, per bank, per column command.

One 32 B column command carries 32 int8 weights or 64 int4 weights (two per byte: element 2j in the low
nibble, 2j+1 in the high nibble, two's complement), multiplied with as many int8 global-buffer values.
Integer sums are exact, so the order of additions does not matter; the accumulator is read out at every
quantization-group boundary (group_size is a multiple of the column's element count, so a column never
straddles two groups) and the ASIC applies scales (and zero points) in fp32 (`apply_scales_kernel`).

Sums are formed in int64 registers and stored as int32; the wrappers (`simulator.kernels.api`) reject
shapes whose worst case could leave int32, so this equals an int32 accumulator exactly.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _int4_lo(b):
    return np.int64(np.int8(np.uint8(b) << np.uint8(4))) >> 4


@njit(cache=True, inline="always")
def _int4_hi(b):
    return np.int64(np.int8(b)) >> 4


@njit(cache=True, inline="always")
def _col_int8(ws, xs, n):
    s = np.int64(0)
    for l in range(n):
        s += np.int64(ws[l]) * np.int64(xs[l])
    return s


@njit(cache=True, inline="always")
def _col_int4(wb, xs, nbytes):
    s = np.int64(0)
    for j in range(nbytes):
        b = wb[j]
        s += _int4_lo(b) * np.int64(xs[2 * j]) + _int4_hi(b) * np.int64(xs[2 * j + 1])
    return s


@njit(cache=True, inline="always")
def _all_zero(ws, n):
    nz = 0
    for l in range(n):
        nz |= np.int64(ws[l])
    return nz == 0


@njit(cache=True)
def gemv_int_kernel(Wq, xq, group_size, bits, col_bytes, skip_zero):
    """Per-(row, group) int32 sums. Wq: int8[N, K] (bits 8) or uint8[N, K/2] packed (bits 4), K a multiple
    of the column's element count; xq: int8[K]. Returns (int32[N, G], skipped column commands)."""
    n_rows = Wq.shape[0]
    k = xq.shape[0]
    col_elems = col_bytes if bits == 8 else 2 * col_bytes
    groups = (k + group_size - 1) // group_size
    out = np.zeros((n_rows, groups), np.int32)
    skipped = 0
    for n in range(n_rows):
        row = Wq[n]
        for c0 in range(0, k, col_elems):
            b0 = c0 if bits == 8 else c0 // 2
            wb = row[b0:b0 + col_bytes]
            if skip_zero and _all_zero(wb, col_bytes):
                skipped += 1
                continue
            xs = xq[c0:c0 + col_elems]
            if bits == 8:
                s = _col_int8(wb, xs, col_bytes)
            else:
                s = _col_int4(wb, xs, col_bytes)
            g = c0 // group_size
            out[n, g] = np.int32(np.int64(out[n, g]) + s)
    return out, skipped


@njit(cache=True)
def mac_banks_int_kernel(mem, gb, seg_pass, seg_row, seg_col, seg_ncols, seg_gb_col, seg_neuron, seg_k0,
                         n_in, group_size, bits, col_bytes, n_out, skip_zero):
    """Bank-image form: mem uint8[C, B, R, row_bytes]; gb int8[P, gb_elems] (broadcast to every channel).

    Bank (c, b) in segment s multiplies columns seg_col[s] .. + seg_ncols[s] of row seg_row[s] with GB
    columns from seg_gb_col[s]; column j covers inputs k = seg_k0[s] + j*col_elems ... and its sum goes to
    group k // group_size of neuron seg_neuron[c, b, s] (read-out at group boundaries, exact int adds).
    Returns (int32[n_out, G], skipped column commands of active banks).
    """
    col_elems = col_bytes if bits == 8 else 2 * col_bytes
    groups = (n_in + group_size - 1) // group_size
    out = np.zeros((n_out, groups), np.int32)
    n_ch, n_banks = mem.shape[0], mem.shape[1]
    skipped = 0
    for s in range(seg_row.shape[0]):
        g_buf = gb[seg_pass[s]]
        for c in range(n_ch):
            for b in range(n_banks):
                n = seg_neuron[c, b, s]
                if n < 0:
                    continue
                rowbuf = mem[c, b, seg_row[s]]
                for j in range(seg_ncols[s]):
                    k = seg_k0[s] + j * col_elems
                    wb = rowbuf[(seg_col[s] + j) * col_bytes:(seg_col[s] + j + 1) * col_bytes]
                    if skip_zero and _all_zero(wb, col_bytes):
                        skipped += 1
                        continue
                    if k >= n_in:
                        continue  # zero padding beyond the fan-in
                    x0 = (seg_gb_col[s] + j) * col_elems
                    xs = g_buf[x0:x0 + col_elems]
                    if bits == 8:
                        v = _col_int8(wb, xs, col_bytes)
                    else:
                        v = _col_int4(wb, xs, col_bytes)
                    g = k // group_size
                    out[n, g] = np.int32(np.int64(out[n, g]) + v)
    return out, skipped


@njit(cache=True)
def apply_scales_kernel(sums, scales, zeros, has_zeros, x_group_sums, x_scale):
    """ASIC read-out arithmetic: y[n] = x_scale * fp32-sum over g (increasing) of
    float32(sums[n,g] - zeros[n,g] * x_group_sums[g]) * scales[n,g]."""
    n_rows, groups = sums.shape
    y = np.empty(n_rows, np.float32)
    for n in range(n_rows):
        acc = np.float32(0.0)
        for g in range(groups):
            v = np.int64(sums[n, g])
            if has_zeros:
                v -= np.int64(zeros[n, g]) * np.int64(x_group_sums[g])
            acc = np.float32(acc + np.float32(np.float32(v) * scales[n, g]))
        y[n] = np.float32(acc * x_scale)
    return y
