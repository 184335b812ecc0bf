"""Weight and activation quantization matching the trace's `Quantization` fields.

    QuantSpec(weight_bits=4|8, scheme="rtn"|"gptq", granularity="tensor"|"channel"|"group",
              group_size=128, symmetric=True, scale_dtype="fp32"|"fp16"|"bf16")

Storage (what the banks hold): signed two's-complement codes q in [-2**(b-1), 2**(b-1) - 1] (int4 packed two
per byte, element 2j in the low nibble). Dequantised weight: scale * (q - zero), with zero = 0 when
symmetric (symmetric codes use [-(2**(b-1) - 1), 2**(b-1) - 1], the usual symmetric range). Scales are
rounded to `scale_dtype` when quantizing and used as fp32 by the ASIC. One scale (and zero) per
(row, group): tensor -> one group shared by all rows, channel -> one group per row (an output neuron),
group -> groups of `group_size` consecutive inputs along the fan-in.

Activations: int8 symmetric per tensor, scale = max|x| / 127 computed by the ASIC per GEMV (dynamic).

`scheme` decides how codes are chosen, never how they are multiplied: "rtn" rounds to nearest (ties to
even); "gptq" (Frantar et al. 2022, arXiv 2210.17323) quantizes column by column and spreads each column's
error over the not-yet-quantized columns with the inverse Hessian of calibration inputs `calib`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from simulator.errors import PimsimError
from simulator.kernels.bits import round_to_bf16

SCALE_DTYPES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class QuantSpec:
    weight_bits: int = 8
    scheme: Literal["rtn", "gptq"] = "rtn"
    granularity: Literal["tensor", "channel", "group"] = "channel"
    group_size: int | None = None
    symmetric: bool = True
    scale_dtype: str = "fp32"

    def __post_init__(self) -> None:
        if self.weight_bits not in (4, 8):
            raise PimsimError(f"quant.weight_bits: the MAC kernels support 4 or 8, got {self.weight_bits}")
        if self.scheme not in ("rtn", "gptq"):
            raise PimsimError(f"quant.scheme: must be rtn or gptq, got {self.scheme!r}")
        if self.granularity not in ("tensor", "channel", "group"):
            raise PimsimError(f"quant.granularity: must be tensor, channel or group, got {self.granularity!r}")
        if self.granularity == "group" and (not self.group_size or self.group_size <= 0):
            raise PimsimError("quant.group_size: group granularity needs a positive group_size (e.g. 128)")
        if self.scale_dtype not in SCALE_DTYPES:
            raise PimsimError(f"quant.scale_dtype: must be one of {SCALE_DTYPES}, got {self.scale_dtype!r}")

    @property
    def col_elems(self) -> int:
        """Weights per 32 B column command."""
        return 32 if self.weight_bits == 8 else 64

    def groups_for(self, k: int) -> tuple[int, int]:
        """(group_size, number of groups) along a fan-in of k."""
        gs = self.group_size if self.granularity == "group" else k
        return gs, -(-k // gs)

    @classmethod
    def from_trace(cls, q) -> "QuantSpec":
        """From `simulator.trace.schema.Quantization` (duck-typed: scheme, weight_bits, granularity, ...)."""
        if q.scheme == "none":
            raise PimsimError("quantization scheme 'none': the weights are plain bf16; use the bf16 kernels")
        return cls(weight_bits=q.weight_bits, scheme=q.scheme, granularity=q.granularity, group_size=q.group_size,
                   symmetric=q.symmetric, scale_dtype=_norm_dtype(q.scale_dtype or "fp32"))


def _norm_dtype(name: str) -> str:
    return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "f32": "fp32", "f16": "fp16"}.get(name, name)


@dataclass(frozen=True, eq=False)
class QuantizedMatrix:
    """Codes q (int8 array holding the b-bit values, [N, K]), scales float32 [N, G], zeros int32 [N, G] or None."""

    q: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray | None
    spec: QuantSpec

    @property
    def shape(self) -> tuple[int, int]:
        return self.q.shape

    def dequantize(self) -> np.ndarray:
        gs, groups = self.spec.groups_for(self.q.shape[1])
        s = np.repeat(self.scales, gs, axis=1)[:, :self.q.shape[1]]
        z = 0 if self.zeros is None else np.repeat(self.zeros, gs, axis=1)[:, :self.q.shape[1]]
        return ((self.q.astype(np.float32) - np.float32(1) * z) * s).astype(np.float32)

    def packed(self) -> np.ndarray:
        """What the banks store: int8 codes as they are (8 bit) or packed nibbles (4 bit)."""
        return self.q.astype(np.int8) if self.spec.weight_bits == 8 else pack_int4(self.q)


def round_scale(s: np.ndarray, dtype: str) -> np.ndarray:
    s = np.asarray(s, np.float32)
    if dtype == "fp16":
        return s.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        return round_to_bf16(s)
    return s


def pack_int4(q: np.ndarray) -> np.ndarray:
    """int4 codes [N, K] (K even) -> uint8 [N, K/2]; element 2j in the low nibble."""
    q = np.asarray(q)
    if q.shape[-1] % 2:
        raise PimsimError(f"int4 packing needs an even fan-in, got {q.shape[-1]}")
    u = (q.astype(np.int16) & 0xF).astype(np.uint8)
    return (u[..., 0::2] | (u[..., 1::2] << 4)).astype(np.uint8)


def unpack_int4(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, np.uint8)
    lo = ((p & 0xF).astype(np.int8) ^ 8) - 8
    hi = ((p >> 4).astype(np.int8) ^ 8) - 8
    out = np.empty(p.shape[:-1] + (2 * p.shape[-1],), np.int8)
    out[..., 0::2] = lo
    out[..., 1::2] = hi
    return out


def _group_view(W: np.ndarray, spec: QuantSpec) -> tuple[np.ndarray, int, int]:
    n, k = W.shape
    gs, groups = spec.groups_for(k)
    pad = groups * gs - k
    Wp = np.pad(W, ((0, 0), (0, pad)))
    return Wp.reshape(n, groups, gs), gs, groups


def _scales_for(Wg: np.ndarray, spec: QuantSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """Per (row, group) scale and zero from a [N, G, gs] view (tensor granularity pools all rows)."""
    b = spec.weight_bits
    if spec.symmetric:
        qmax = np.float32(2 ** (b - 1) - 1)
        amax = np.abs(Wg).max(axis=2)
        if spec.granularity == "tensor":
            amax = np.full_like(amax, amax.max())
        s = round_scale(np.where(amax > 0, amax / qmax, np.float32(1)), spec.scale_dtype)
        return s.astype(np.float32), None
    qmin, qmax = -(2 ** (b - 1)), 2 ** (b - 1) - 1
    lo = np.minimum(Wg.min(axis=2), 0).astype(np.float32)
    hi = np.maximum(Wg.max(axis=2), 0).astype(np.float32)
    if spec.granularity == "tensor":
        lo, hi = np.full_like(lo, lo.min()), np.full_like(hi, hi.max())
    s = round_scale(np.where(hi > lo, (hi - lo) / np.float32(qmax - qmin), np.float32(1)), spec.scale_dtype)
    z = np.clip(np.rint(np.float32(qmin) - lo / s), qmin, qmax).astype(np.int32)
    return s.astype(np.float32), z


def _codes(W: np.ndarray, s: np.ndarray, z: np.ndarray | None, spec: QuantSpec) -> np.ndarray:
    b = spec.weight_bits
    lo, hi = (-(2 ** (b - 1)) if not spec.symmetric else -(2 ** (b - 1) - 1)), 2 ** (b - 1) - 1
    q = np.rint(W / s) + (0 if z is None else z)
    return np.clip(q, lo, hi).astype(np.int8)


def quantize_weights(W: np.ndarray, spec: QuantSpec, calib: np.ndarray | None = None) -> QuantizedMatrix:
    """Quantize a float32 [N_out, K] matrix. `calib` ([samples, K] inputs) is required for scheme gptq."""
    W = np.asarray(W, np.float32)
    if W.ndim != 2:
        raise PimsimError(f"quantize_weights: expected a 2-D weight matrix, got shape {W.shape}")
    if spec.granularity == "group" and spec.group_size % spec.col_elems:
        raise PimsimError(f"quant.group_size: {spec.group_size} must be a multiple of {spec.col_elems} "
                          f"(weights per 32 B column at {spec.weight_bits} bit) so read-outs align with columns")
    Wg, gs, groups = _group_view(W, spec)
    s, z = _scales_for(Wg, spec)
    if spec.scheme == "rtn":
        q = _codes(Wg, s[:, :, None], None if z is None else z[:, :, None], spec).reshape(W.shape[0], -1)
        return QuantizedMatrix(q[:, :W.shape[1]], s, z, spec)
    if calib is None:
        raise PimsimError("quant.scheme gptq: needs calibration inputs (calib=[samples, K]); use rtn otherwise")
    return QuantizedMatrix(_gptq(W, spec, np.asarray(calib, np.float32), s, z, gs), s, z, spec)


def _gptq(W: np.ndarray, spec: QuantSpec, X: np.ndarray, s: np.ndarray, z: np.ndarray | None, gs: int) -> np.ndarray:
    """GPTQ without act-order or lazy batching (the result is the same; only speed differs): column i is
    quantized with its group's scale, and its error, divided by the Cholesky factor's diagonal, is
    subtracted from the later columns. Scales are the RTN ones of the original weights (static groups)."""
    n, k = W.shape
    H = (X.T.astype(np.float64) @ X.astype(np.float64)) / max(1, X.shape[0])
    damp = 0.01 * np.mean(np.diag(H)) + 1e-8  # source: GPTQ reference setting percdamp = 0.01
    H[np.diag_indices(k)] += damp
    Hinv = np.linalg.cholesky(np.linalg.inv(H)).T  # upper Cholesky factor of H^-1
    Wk = W.astype(np.float64).copy()
    q = np.zeros((n, k), np.int8)
    for i in range(k):
        g = i // gs
        zi = None if z is None else z[:, g]
        qi = _codes(Wk[:, i].astype(np.float32), s[:, g], zi, spec)
        q[:, i] = qi
        deq = (qi.astype(np.float64) - (0 if zi is None else zi)) * s[:, g]
        err = (Wk[:, i] - deq) / Hinv[i, i]
        Wk[:, i + 1:] -= np.outer(err, Hinv[i, i + 1:])
    return q


def quantize_activations(x: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """int8 symmetric per tensor: (codes, scale) with x ~= scale * codes (ASIC, dynamic per GEMV)."""
    x = np.asarray(x, np.float32)
    amax = np.float32(np.abs(x).max()) if x.size else np.float32(0)
    scale = np.float32(amax / np.float32(127)) if amax > 0 else np.float32(1)
    return np.clip(np.rint(x / scale), -127, 127).astype(np.int8), scale
