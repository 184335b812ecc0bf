"""Numba MAC kernels (bf16, int8, int4) that compute what the banks compute, bit for bit, and their NumPy
references. See docs/kernels.md.

    from simulator.kernels import MacNumerics, gemv_bf16, f32_to_bf16
    y = gemv_bf16(f32_to_bf16(W), f32_to_bf16(x), MacNumerics(accumulator="fp32", order="tree"))
"""

from simulator.kernels.api import (
    apply_scales,
    gemv_bf16,
    gemv_int_sums,
    gemv_quantized,
    group_sums_of_input,
    numpy_bf16_gemv,
)
from simulator.kernels.bits import bf16_to_f32, f32_to_bf16, round_to_bf16
from simulator.kernels.numerics import MacNumerics
from simulator.kernels.quant import (
    QuantizedMatrix,
    QuantSpec,
    pack_int4,
    quantize_activations,
    quantize_weights,
    unpack_int4,
)

__all__ = [
    "MacNumerics", "QuantSpec", "QuantizedMatrix",
    "gemv_bf16", "gemv_int_sums", "gemv_quantized", "apply_scales", "group_sums_of_input", "numpy_bf16_gemv",
    "bf16_to_f32", "f32_to_bf16", "round_to_bf16",
    "quantize_weights", "quantize_activations", "pack_int4", "unpack_int4",
]
