"""Checked wrappers around the Numba kernels (shapes, dtypes, padding, int32 range), plus NumPy baselines."""

from __future__ import annotations

import numpy as np

from simulator.errors import PimsimError
from simulator.kernels.bits import bf16_to_f32
from simulator.kernels.mac_bf16 import gemv_bf16_batched_kernel, gemv_bf16_kernel
from simulator.kernels.mac_int import apply_scales_kernel, gemv_int_kernel
from simulator.kernels.numerics import MacNumerics
from simulator.kernels.quant import QuantizedMatrix, quantize_activations

COL_BYTES = 32  # source: docs/aim-device.md, one column command moves 32 B


def _pad_cols(a: np.ndarray, multiple: int) -> np.ndarray:
    pad = (-a.shape[-1]) % multiple
    if pad:
        widths = [(0, 0)] * (a.ndim - 1) + [(0, pad)]
        a = np.pad(a, widths)
    return np.ascontiguousarray(a)


def gemv_bf16(W_bits: np.ndarray, x_bits: np.ndarray, numerics: MacNumerics = MacNumerics(), seg_elems: int = 1024,
              return_skipped: bool = False):
    """bf16 GEMV as the banks compute it: each row's fan-in is read out every `seg_elems` inputs (one DRAM row
    / GB pass by default) and the ASIC adds the read-outs in fp32 in increasing k. W_bits uint16[N, K] or a
    batch uint16[H, N, K] with x_bits uint16[H, K]; returns float32[N] (or [H, N])."""
    W_bits = np.asarray(W_bits)
    x_bits = np.asarray(x_bits)
    if W_bits.dtype != np.uint16 or x_bits.dtype != np.uint16:
        raise PimsimError("gemv_bf16: weights and input must be uint16 bf16 bit patterns (see kernels.bits.f32_to_bf16)")
    if W_bits.shape[-1] != x_bits.shape[-1] or W_bits.ndim != x_bits.ndim + 1:
        raise PimsimError(f"gemv_bf16: shapes {W_bits.shape} and {x_bits.shape} do not match")
    lanes = numerics.lanes
    if seg_elems <= 0 or seg_elems % lanes:
        raise PimsimError(f"gemv_bf16: seg_elems must be a positive multiple of {lanes}, got {seg_elems}")
    W = _pad_cols(W_bits, lanes)
    x = _pad_cols(x_bits, lanes)
    acc, order, readout = numerics.codes
    kern = gemv_bf16_kernel if W.ndim == 2 else gemv_bf16_batched_kernel
    y, skipped = kern(W, x, seg_elems // lanes, lanes, acc, order, readout, numerics.zero_skipping)
    return (y, int(skipped)) if return_skipped else y


def check_int32_range(k_per_group: int, bits: int) -> None:
    """Worst-case |sum| of one group: k * 2**(bits-1) * 128 must fit int32 (read-out at group boundaries)."""
    worst = k_per_group * (2 ** (bits - 1)) * 128
    if worst >= 2 ** 31:
        raise PimsimError(f"int{bits} GEMV: a read-out group of {k_per_group} inputs could overflow the int32 "
                          "accumulator; use group granularity with a smaller group_size")


def gemv_int_sums(stored: np.ndarray, xq: np.ndarray, bits: int, group_size: int, zero_skipping: bool = False,
                  return_skipped: bool = False):
    """int32 sums per (row, group). stored: int8[N, K] (8 bit) or packed uint8[N, K/2] (4 bit); xq int8[K]."""
    xq = np.asarray(xq)
    if xq.dtype != np.int8:
        raise PimsimError("gemv_int: the input vector must be int8 codes (see kernels.quant.quantize_activations)")
    col_elems = COL_BYTES if bits == 8 else 2 * COL_BYTES
    if group_size % col_elems and group_size < xq.shape[0]:
        raise PimsimError(f"gemv_int: group_size {group_size} must be a multiple of {col_elems}")
    check_int32_range(min(group_size, xq.shape[0]), bits)
    if bits == 8:
        W = _pad_cols(np.asarray(stored, np.int8), col_elems)
    else:
        W = _pad_cols(np.asarray(stored, np.uint8), COL_BYTES)
    k = xq.shape[0]
    groups = -(-k // group_size)
    x = _pad_cols(xq, col_elems)
    # padding may add a trailing group only when group_size does not divide the padded width; keep G fixed
    sums, skipped = gemv_int_kernel(W, x, group_size, bits, COL_BYTES, zero_skipping)
    sums = np.ascontiguousarray(sums[:, :groups])
    return (sums, int(skipped)) if return_skipped else sums


def group_sums_of_input(xq: np.ndarray, group_size: int) -> np.ndarray:
    """int32 sum of the input codes in each group (the ASIC needs it for zero points)."""
    k = xq.shape[0]
    groups = -(-k // group_size)
    xp = np.pad(xq.astype(np.int64), (0, groups * group_size - k))
    return xp.reshape(groups, group_size).sum(axis=1).astype(np.int32)


def apply_scales(sums: np.ndarray, qm: QuantizedMatrix, x_group_sums: np.ndarray, x_scale: np.float32) -> np.ndarray:
    zeros = qm.zeros if qm.zeros is not None else np.zeros((1, 1), np.int32)
    return apply_scales_kernel(np.ascontiguousarray(sums, np.int32), np.ascontiguousarray(qm.scales, np.float32),
                               np.ascontiguousarray(zeros, np.int32), qm.zeros is not None,
                               np.ascontiguousarray(x_group_sums, np.int32), np.float32(x_scale))


def gemv_quantized(qm: QuantizedMatrix, x: np.ndarray, zero_skipping: bool = False) -> np.ndarray:
    """int8/int4 weights x int8 activations (quantized per tensor here) -> float32, scales at read-out."""
    xq, xs = quantize_activations(x)
    gs, _ = qm.spec.groups_for(qm.q.shape[1])
    sums = gemv_int_sums(qm.packed(), xq, qm.spec.weight_bits, gs, zero_skipping)
    return apply_scales(sums, qm, group_sums_of_input(xq, gs), xs)


def numpy_bf16_gemv(W_bits: np.ndarray, x_bits: np.ndarray) -> np.ndarray:
    """The NumPy baseline: convert bf16 to float32, then matmul (BLAS order, not the banks' order)."""
    return bf16_to_f32(W_bits) @ bf16_to_f32(x_bits)
