"""bf16 <-> fp32 at the bit level, for NumPy arrays and inside Numba kernels.

bf16 values travel as uint16 bit patterns (the upper half of an IEEE-754 binary32). Widening is exact
(`bits << 16`); narrowing rounds to nearest, ties to even, and keeps NaNs NaN (quiet bit set), which is
what a hardware fp32 -> bf16 rounder does. No float64 is involved anywhere.

Inside Numba, `f32_from_bits` / `bits_from_f32` are LLVM bitcasts (zero cost), so kernels can move between
a float32 register and its bit pattern without going through memory.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# --------------------------------------------------------------------------------------------- Numba side


@intrinsic
def f32_from_bits(typingctx, u):
    """uint32 bit pattern -> float32 (LLVM bitcast)."""
    if not isinstance(u, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        val = context.cast(builder, args[0], u, types.uint32)
        return builder.bitcast(val, ir.FloatType())

    return types.float32(u), codegen


@intrinsic
def bits_from_f32(typingctx, f):
    """float32 -> its uint32 bit pattern (LLVM bitcast)."""
    if not isinstance(f, types.Float):
        return None

    def codegen(context, builder, signature, args):
        val = context.cast(builder, args[0], f, types.float32)
        return builder.bitcast(val, ir.IntType(32))

    return types.uint32(f), codegen


@njit(cache=True, inline="always")
def rne_bits(u):
    """fp32 bit pattern (uint32) -> bf16 bit pattern (as uint32 < 2**16), round to nearest even."""
    u = np.uint32(u)
    if (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):  # NaN: keep sign and payload top, force quiet
        return np.uint32((u >> np.uint32(16)) | np.uint32(0x0040))
    lsb = (u >> np.uint32(16)) & np.uint32(1)
    return np.uint32((np.uint64(u) + np.uint64(0x7FFF) + np.uint64(lsb)) >> np.uint64(16))


@njit(cache=True, inline="always")
def round_f32_to_bf16(x):
    """float32 -> float32 holding the nearest bf16 value (round to nearest even)."""
    return f32_from_bits(np.uint32(rne_bits(bits_from_f32(np.float32(x))) << np.uint32(16)))


@njit(cache=True, inline="always")
def bf16_to_f32_scalar(b):
    """bf16 bit pattern (uint16) -> float32, exact."""
    return f32_from_bits(np.uint32(b) << np.uint32(16))


@njit(cache=True)
def bf16_to_f32_nb(bits):
    """uint16[:] -> float32[:] (exact widening), usable inside other kernels."""
    out = np.empty(bits.size, np.float32)
    flat = bits.ravel()
    for i in range(flat.size):
        out[i] = f32_from_bits(np.uint32(flat[i]) << np.uint32(16))
    return out


# --------------------------------------------------------------------------------------------- NumPy side


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """uint16 bf16 patterns -> float32 values (exact)."""
    bits = np.asarray(bits)
    if bits.dtype != np.uint16:
        raise TypeError(f"bf16 bit patterns must be uint16, got {bits.dtype}")
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 values -> uint16 bf16 patterns, round to nearest even (NaN stays NaN)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    rounded = ((u + np.uint64(0x7FFF) + ((u >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)).astype(np.uint16)
    nan = (x.view(np.uint32) & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    if nan.any():
        rounded = np.where(nan, ((x.view(np.uint32) >> np.uint32(16)) | np.uint32(0x40)).astype(np.uint16), rounded)
    return rounded.reshape(x.shape)


def round_to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> float32 holding the nearest bf16 value."""
    return bf16_to_f32(f32_to_bf16(x))
