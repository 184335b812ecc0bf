"""bf16 MAC kernels: bit-exact against the NumPy reference for every accumulator / order / read-out option,
zero skipping identical to dense, and results within the rounding bound of an exact reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from simulator.errors import PimsimError
from simulator.kernels import MacNumerics, bf16_to_f32, f32_to_bf16, gemv_bf16, round_to_bf16
from simulator.kernels.reference import ref_gemv_bf16

OPTIONS = [(a, o, r) for a in ("fp32", "bf16") for o in ("tree", "serial", "lane") for r in ("bf16", "fp32")]


def _bits(rng, shape, scale=1.0):
    return f32_to_bf16((rng.standard_normal(shape) * scale).astype(np.float32))


def test_rounding_is_round_to_nearest_even():
    one = np.float32(1.0)
    ulp = np.float32(2.0**-7)
    x = np.array([one + ulp / 2, one + ulp + ulp / 2, one + ulp / 4, -(one + ulp * 3 / 4),
                  np.float32(3.4e38), np.inf, -np.inf, 0.0, -0.0], np.float32)
    got = bf16_to_f32(f32_to_bf16(x))
    want = np.array([1.0, 1.0 + 2 * 2.0**-7, 1.0, -(1.0 + 2.0**-7), np.inf, np.inf, -np.inf, 0.0, -0.0], np.float32)
    assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist()
    assert np.isnan(bf16_to_f32(f32_to_bf16(np.array([np.nan], np.float32))))[0]


def test_rounding_matches_torch_if_installed():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(4096).astype(np.float32) * 1e3
    t = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert (f32_to_bf16(x) == t).all()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(1, 24), k=st.integers(1, 260), seg=st.sampled_from([16, 32, 64, 1024]),
       opt=st.sampled_from(OPTIONS), skip=st.booleans(), seed=st.integers(0, 2**31),
       scale=st.sampled_from([1.0, 1e-20, 1e18]))
def test_gemv_bf16_bit_exact_vs_reference(n, k, seg, opt, skip, seed, scale):
    rng = np.random.default_rng(seed)
    W = _bits(rng, (n, k), scale)
    if skip:
        W[:, : k // 2] = 0
    x = _bits(rng, k, scale)
    num = MacNumerics(*opt, zero_skipping=skip)
    y = gemv_bf16(W, x, num, seg_elems=seg)
    ref = ref_gemv_bf16(W, x, num, seg)
    assert y.view(np.uint32).tolist() == ref.view(np.uint32).tolist()


@pytest.mark.parametrize("opt", OPTIONS)
def test_zero_skipping_identical_to_dense(opt):
    rng = np.random.default_rng(1)
    W = _bits(rng, (50, 700))
    W[:, 100:500] = 0
    W[::3, :] = 0
    x = _bits(rng, 700)
    dense, s0 = gemv_bf16(W, x, MacNumerics(*opt), return_skipped=True)
    sparse, s1 = gemv_bf16(W, x, MacNumerics(*opt, zero_skipping=True), return_skipped=True)
    assert s0 == 0 and s1 > 0
    assert dense.view(np.uint32).tolist() == sparse.view(np.uint32).tolist()


@pytest.mark.parametrize("opt", OPTIONS)
def test_within_rounding_bound_of_exact(opt):
    """|y - exact| <= read-out rounding + accumulator rounding + fp32 summation error (standard bounds,
    u = 2**-8 for bf16 round-to-nearest, 2**-24 for fp32)."""
    acc, order, readout = opt
    rng = np.random.default_rng(2)
    n, k, seg = 64, 1600, 1024
    W, x = _bits(rng, (n, k)), _bits(rng, k)
    y = gemv_bf16(W, x, MacNumerics(*opt), seg_elems=seg).astype(np.float64)
    prods = bf16_to_f32(W).astype(np.float64) * bf16_to_f32(x).astype(np.float64)
    exact = prods.sum(axis=1)
    absum = np.abs(prods).sum(axis=1)
    u16, u32 = 2.0**-8, 2.0**-24
    n_seg = -(-k // seg)
    adds = seg + 16  # additions along one segment's longest chain (serial order) plus the tree
    bound = (u32 * (adds + n_seg)) * absum * 1.01
    seg_abs = np.stack([np.abs(prods[:, s:s + seg].sum(axis=1)) for s in range(0, k, seg)], axis=1)
    if readout == "bf16":
        bound = bound + u16 * seg_abs.sum(axis=1) * 1.01 + u16 * u16 * absum
    if acc == "bf16":
        per = seg // 16 if order != "serial" else seg
        bound = bound + u16 * per * absum * 1.01
    assert (np.abs(y - exact) <= bound).all()


def test_fp32_accumulate_beats_bf16_accumulate():
    rng = np.random.default_rng(3)
    W, x = _bits(rng, (256, 1024)), _bits(rng, 1024)
    exact = bf16_to_f32(W).astype(np.float64) @ bf16_to_f32(x).astype(np.float64)
    e32 = np.abs(gemv_bf16(W, x, MacNumerics("fp32", readout="fp32")) - exact).mean()
    e16 = np.abs(gemv_bf16(W, x, MacNumerics("bf16", readout="fp32")) - exact).mean()
    assert e32 * 100 < e16


def test_batched_equals_per_head():
    rng = np.random.default_rng(4)
    W, x = _bits(rng, (3, 7, 80)), _bits(rng, (3, 80))
    yb = gemv_bf16(W, x, seg_elems=32)
    for h in range(3):
        assert gemv_bf16(W[h], x[h], seg_elems=32).view(np.uint32).tolist() == yb[h].view(np.uint32).tolist()


def test_bad_input_is_a_pimsim_error():
    with pytest.raises(PimsimError):
        gemv_bf16(np.zeros((2, 16), np.float32), np.zeros(16, np.uint16))
    with pytest.raises(PimsimError):
        gemv_bf16(np.zeros((2, 16), np.uint16), np.zeros(15, np.uint16))
    with pytest.raises(PimsimError):
        gemv_bf16(np.zeros((2, 16), np.uint16), np.zeros(16, np.uint16), seg_elems=10)
    with pytest.raises(PimsimError):
        MacNumerics(accumulator="fp16")
    assert round_to_bf16(np.float32([1.0]))[0] == 1.0
