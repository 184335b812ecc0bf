"""int8 x int8 and packed int4 x int8 MAC kernels, quantization per tensor / channel / group, scales at read-out."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from simulator.errors import PimsimError
from simulator.kernels import (QuantSpec, gemv_int_sums, gemv_quantized, group_sums_of_input, pack_int4,
                               quantize_activations, quantize_weights, unpack_int4)
from simulator.kernels.reference import ref_apply_scales, ref_int_group_sums


@settings(max_examples=40, deadline=None, derandomize=True)
@given(n=st.integers(1, 20), k=st.integers(1, 400), seed=st.integers(0, 2**31), bits=st.sampled_from([8, 4]),
       gran=st.sampled_from(["tensor", "channel", "group"]), sym=st.booleans(),
       scale_dtype=st.sampled_from(["fp32", "fp16", "bf16"]), gs_mult=st.integers(1, 3), skip=st.booleans())
def test_quantized_gemv_bit_exact(n, k, seed, bits, gran, sym, scale_dtype, gs_mult, skip):
    if bits == 4 and k % 2:
        k += 1
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, k)).astype(np.float32)
    if skip:
        W[:, : k // 2] = 0
    spec = QuantSpec(weight_bits=bits, granularity=gran, group_size=64 * gs_mult if gran == "group" else None,
                     symmetric=sym, scale_dtype=scale_dtype)
    qm = quantize_weights(W, spec)
    x = rng.standard_normal(k).astype(np.float32)
    xq, xs = quantize_activations(x)
    gs, groups = spec.groups_for(k)
    sums = gemv_int_sums(qm.packed(), xq, bits, gs, zero_skipping=skip)
    ref_sums = ref_int_group_sums(qm.q, xq, gs)
    assert sums.shape == (n, groups) and (sums == ref_sums).all()
    y = gemv_quantized(qm, x, zero_skipping=skip)
    ref = ref_apply_scales(ref_sums, qm.scales, qm.zeros, group_sums_of_input(xq, gs), xs)
    assert y.view(np.uint32).tolist() == ref.view(np.uint32).tolist()


def test_int4_pack_roundtrip_and_nibble_order():
    q = np.array([[-8, 7, -1, 0, 3, -3]], np.int8)
    p = pack_int4(q)
    assert p.tolist() == [[0x78, 0x0F, 0xD3]]
    assert (unpack_int4(p) == q).all()


def test_quantization_error_is_small_and_ranges_hold():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((64, 512)).astype(np.float32)
    x = rng.standard_normal(512).astype(np.float32)
    exact = W @ x
    for bits, tol in ((8, 0.03), (4, 0.3)):
        for gran in ("channel", "group"):
            spec = QuantSpec(weight_bits=bits, granularity=gran, group_size=128 if gran == "group" else None)
            qm = quantize_weights(W, spec)
            lim = 2 ** (bits - 1) - 1
            assert qm.q.min() >= -lim and qm.q.max() <= lim
            err = np.abs(gemv_quantized(qm, x) - exact).max() / np.abs(exact).max()
            assert err < tol, (bits, gran, err)


def test_gptq_reduces_output_error_on_calibration_data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((256, 64)).astype(np.float32) @ rng.standard_normal((64, 64)).astype(np.float32)
    W = rng.standard_normal((32, 64)).astype(np.float32)
    spec = QuantSpec(weight_bits=4, granularity="channel")
    rtn = quantize_weights(W, spec)
    gptq = quantize_weights(W, QuantSpec(weight_bits=4, granularity="channel", scheme="gptq"), calib=X)
    e_rtn = np.linalg.norm(X @ (rtn.dequantize() - W).T)
    e_gptq = np.linalg.norm(X @ (gptq.dequantize() - W).T)
    assert e_gptq < e_rtn
    with pytest.raises(PimsimError):
        quantize_weights(W, QuantSpec(weight_bits=4, scheme="gptq"))


def test_spec_validation_and_trace_fields():
    with pytest.raises(PimsimError):
        QuantSpec(weight_bits=3)
    with pytest.raises(PimsimError):
        QuantSpec(granularity="group")
    with pytest.raises(PimsimError):
        quantize_weights(np.zeros((2, 64), np.float32), QuantSpec(weight_bits=4, granularity="group", group_size=32))
    from simulator.trace.schema import Quantization

    spec = QuantSpec.from_trace(Quantization(scheme="rtn", weight_bits=4, granularity="group", group_size=128,
                                             symmetric=False, scale_dtype="fp16"))
    assert (spec.weight_bits, spec.granularity, spec.group_size, spec.symmetric, spec.scale_dtype) == (4, "group", 128, False, "fp16")


def test_int32_overflow_is_rejected():
    with pytest.raises(PimsimError):
        gemv_int_sums(np.zeros((1, 140000), np.int8), np.zeros(140000, np.int8), 8, 140000)
