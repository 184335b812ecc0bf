"""Numba kernels: bf16 x bf16 multiply-accumulate exactly as one bank's MAC unit does it.

Two entry points share one inner routine (`_bank_segment`, one accumulator over a run of column commands):

* `gemv_bf16_kernel`: a plain matrix W[n, k] (uint16 bf16 patterns) times x; each row's fan-in is cut into
  read-out segments of `seg_cols` column commands, and the read-outs are added in fp32 in increasing k, as
  the ASIC does. Used for the benchmark and for the attention GEMVs (K and V rows in PIM).
* `mac_banks_bf16_kernel`: the bank memory image mem[channel, bank, row, element] and the per-channel
  global buffers, driven by the mapping's segment tables: each active bank of each channel accumulates
  `seg_ncols[s]` all-bank column commands of segment s and is read out. Used by the functional PIM GEMV.

Products are fp32 multiplies of the widened bf16 operands (exact unless the product leaves fp32's normal
range); see `numerics.py` for the order of additions, accumulator and read-out options (integer codes
here: acc 0 fp32 / 1 bf16; order 0 tree / 1 serial / 2 lane; read-out 0 fp32 / 1 bf16). Every kernel is
compiled with `cache=True`, so the compiled code is reused across processes.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.bits import bf16_to_f32_scalar, round_f32_to_bf16


@njit(cache=True, inline="always")
def _tree(p, lanes):
    """Pairwise adder tree over p[0:lanes] (in place): level 1 adds (0,1),(2,3),..., and so on."""
    w = lanes // 2
    while w >= 1:
        for i in range(w):
            p[i] = p[2 * i] + p[2 * i + 1]
        w //= 2
    return p[0]


@njit(cache=True, inline="always")
def _column_trees(w, w0, ncols, xf, x0, lanes, P, Q):
    """Adder-tree sums of `ncols` column commands; returns the buffer whose [0:ncols] holds them.

    The tree is evaluated level by level over the whole run (level 1 fused with the products):
    level 1 adds (0,1),(2,3),... of the flat product array, which never pairs across a column boundary
    (lanes is a power of two), so after log2(lanes) levels element j is exactly column j's tree sum. Two
    separate buffers (ping-pong) let LLVM vectorise each level; the arithmetic is identical to `_tree`.
    """
    n = ncols * lanes
    ws = w[w0:w0 + n]  # views indexed from 0: provably non-negative indices, so the loops vectorise
    xs = xf[x0:x0 + n]
    if lanes == 1:
        for i in range(n):
            P[i] = bf16_to_f32_scalar(ws[i]) * xs[i]
        return P
    # level 1 fused with the products: (p[2i] rounded) + (p[2i+1] rounded), no FMA contraction
    m = n // 2
    for i in range(m):
        P[i] = np.float32(bf16_to_f32_scalar(ws[2 * i]) * xs[2 * i]) + \
            np.float32(bf16_to_f32_scalar(ws[2 * i + 1]) * xs[2 * i + 1])
    if lanes == 16:  # the default MAC unit: three more levels with constant trip structure
        m4, m8, m16 = n // 4, n // 8, n // 16
        for i in range(m4):
            Q[i] = P[2 * i] + P[2 * i + 1]
        for i in range(m8):
            P[i] = Q[2 * i] + Q[2 * i + 1]
        for i in range(m16):
            Q[i] = P[2 * i] + P[2 * i + 1]
        return Q
    while m > ncols:  # explicit ping-pong (no swapped references) so each level vectorises
        m //= 2
        for i in range(m):
            Q[i] = P[2 * i] + P[2 * i + 1]
        if m == ncols:
            return Q
        m //= 2
        for i in range(m):
            P[i] = Q[2 * i] + Q[2 * i + 1]
    return P


@njit(cache=True, inline="always")
def _column_is_zero(w, base, lanes):
    nz = np.uint16(0)
    for l in range(lanes):
        nz |= w[base + l]
    return nz == 0


@njit(cache=True, inline="always")
def _bank_segment(w, w0, ncols, xf, x0, lanes, acc_mode, order, readout, skip_zero, P, Q, la):
    """One accumulator over `ncols` column commands.

    w[w0 + j*lanes + l] is lane l's weight (uint16 bf16) in column command j; xf[x0 + j*lanes + l] is the
    matching global-buffer value (float32 holding a bf16 value). P, Q: float32 scratch of at least
    ncols*lanes; la: float32 scratch of `lanes`. Returns (read-out value, skipped bursts).
    """
    acc = np.float32(0.0)
    skipped = 0
    n = ncols * lanes
    ws = w[w0:w0 + n]  # views indexed from 0 (non-negative indices: no wraparound checks, loops vectorise)
    xs = xf[x0:x0 + n]
    if order == 0:  # adder tree per column command, then the accumulator
        t = _column_trees(ws, 0, ncols, xs, 0, lanes, P, Q)
        for j in range(ncols):
            if skip_zero and _column_is_zero(ws, j * lanes, lanes):
                skipped += 1
                continue
            acc = np.float32(acc + t[j])
            if acc_mode == 1:
                acc = round_f32_to_bf16(acc)
    elif order == 1:  # serial: one accumulator, lane 0 first
        for j in range(ncols):
            base = j * lanes
            if skip_zero and _column_is_zero(ws, base, lanes):
                skipped += 1
                continue
            xb = j * lanes
            for l in range(lanes):
                prod = np.float32(bf16_to_f32_scalar(ws[base + l]) * xs[xb + l])
                acc = np.float32(acc + prod)
                if acc_mode == 1:
                    acc = round_f32_to_bf16(acc)
    else:  # one accumulator per lane, adder tree at read-out
        for l in range(lanes):
            la[l] = np.float32(0.0)
        for j in range(ncols):
            base = j * lanes
            if skip_zero and _column_is_zero(ws, base, lanes):
                skipped += 1
                continue
            xb = j * lanes
            if acc_mode == 1:
                for l in range(lanes):
                    la[l] = round_f32_to_bf16(np.float32(la[l] + np.float32(bf16_to_f32_scalar(ws[base + l]) * xs[xb + l])))
            else:
                for l in range(lanes):
                    la[l] = np.float32(la[l] + np.float32(bf16_to_f32_scalar(ws[base + l]) * xs[xb + l]))
        for l in range(lanes):
            P[l] = la[l]
        acc = _tree(P, lanes)
    if readout == 1:
        acc = round_f32_to_bf16(acc)
    return acc, skipped


@njit(cache=True, parallel=True)
def gemv_bf16_kernel(W, xbits, seg_cols, lanes, acc_mode, order, readout, skip_zero):
    """y[n] = fp32 sum over read-out segments (increasing k) of one bank accumulator over W[n, seg] * x[seg].

    W: uint16[N, K] C-contiguous, K a multiple of `lanes`; xbits: uint16[K]. Returns (float32[N], skipped).
    """
    n_rows, k = W.shape
    ncols_total = k // lanes
    xf = np.empty(k, np.float32)
    for i in range(k):
        xf[i] = bf16_to_f32_scalar(xbits[i])
    y = np.empty(n_rows, np.float32)
    # rows are independent banks: split them over threads (each row's arithmetic is unchanged, so the result
    # does not depend on the thread count); every chunk has its own scratch buffers
    nchunks = max(1, min(n_rows, 64))
    skipped_c = np.zeros(nchunks, np.int64)
    for c in prange(nchunks):
        P = np.empty(max(lanes, min(seg_cols, ncols_total) * lanes), np.float32)
        Q = np.empty_like(P)
        la = np.empty(lanes, np.float32)
        for n in range(c * n_rows // nchunks, (c + 1) * n_rows // nchunks):
            row = W[n]
            total = np.float32(0.0)
            c0 = 0
            while c0 < ncols_total:
                nc = min(seg_cols, ncols_total - c0)
                r, s = _bank_segment(row, c0 * lanes, nc, xf, c0 * lanes, lanes, acc_mode, order, readout,
                                     skip_zero, P, Q, la)
                total = np.float32(total + r)
                skipped_c[c] += s
                c0 += nc
            y[n] = total
    return y, skipped_c.sum()


@njit(cache=True)
def gemv_bf16_batched_kernel(W, xbits, seg_cols, lanes, acc_mode, order, readout, skip_zero):
    """Batch of independent GEMVs (one per head): W uint16[H, N, K], xbits uint16[H, K] -> float32[H, N]."""
    h_count, n_rows, k = W.shape
    out = np.empty((h_count, n_rows), np.float32)
    skipped = 0
    for h in range(h_count):
        y, s = gemv_bf16_kernel(W[h], xbits[h], seg_cols, lanes, acc_mode, order, readout, skip_zero)
        out[h] = y
        skipped += s
    return out, skipped


@njit(cache=True)
def mac_banks_bf16_kernel(mem, gbf, seg_pass, seg_row, seg_col, seg_ncols, seg_gb_col, active,
                          lanes, acc_mode, order, readout, skip_zero):
    """Read-out of every active bank in every segment.

    mem: uint16[C, B, R, row_elems] bank images; gbf: float32[P, gb_elems] global-buffer contents per pass
    (identical in every channel: the input chunk is broadcast); active: bool[C, B, S].
    Returns (float32[C, B, S] read-outs (0 where idle), skipped bursts).
    """
    n_ch, n_banks = mem.shape[0], mem.shape[1]
    n_seg = seg_row.shape[0]
    out = np.zeros((n_ch, n_banks, n_seg), np.float32)
    max_cols = 1
    for s in range(n_seg):
        max_cols = max(max_cols, seg_ncols[s])
    P = np.empty(max_cols * lanes, np.float32)
    Q = np.empty_like(P)
    la = np.empty(lanes, np.float32)
    skipped = 0
    for s in range(n_seg):
        gb = gbf[seg_pass[s]]
        w0 = seg_col[s] * lanes
        x0 = seg_gb_col[s] * lanes
        for c in range(n_ch):
            for b in range(n_banks):
                if not active[c, b, s]:
                    continue
                r, sk = _bank_segment(mem[c, b, seg_row[s]], w0, seg_ncols[s], gb, x0, lanes, acc_mode, order,
                                      readout, skip_zero, P, Q, la)
                out[c, b, s] = r
                skipped += sk
    return out, skipped


@njit(cache=True)
def reduce_partials_kernel(values, neuron, order_idx, n_out):
    """ASIC partial-sum reduction: y[n] = fp32 sum of values[i] with neuron[i] == n, visited in `order_idx`
    order (the caller sorts by increasing k). Starts from +0."""
    y = np.zeros(n_out, np.float32)
    for t in range(order_idx.shape[0]):
        i = order_idx[t]
        n = neuron[i]
        y[n] = np.float32(y[n] + values[i])
    return y
