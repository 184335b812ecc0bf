"""ASIC numerics: Taylor exp, Newton reciprocal, fast inverse sqrt and the operations built from them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.asic import AsicConfig
from simulator.asic import numerics as an


def _rel(a, b):
    return np.max(np.abs(np.asarray(a, np.float64) / np.asarray(b, np.float64) - 1))


def test_exp_error_matches_documented_bound_and_improves_with_terms():
    x = np.linspace(-87, 80, 20001).astype(np.float32)
    exact = np.exp(x.astype(np.float64))
    errs = [_rel(an.exp_approx(x, AsicConfig(exp_taylor_terms=t)), exact) for t in (3, 4, 5, 6)]
    assert errs == sorted(errs, reverse=True)
    assert errs[-1] < 8e-6  # documented in AsicConfig.exp_taylor_terms


@pytest.mark.parametrize("steps,bound", [(0, 0.052), (1, 2.6e-3), (2, 7e-6), (3, 2e-7)])
def test_reciprocal_newton(steps, bound):
    d = (np.float32(2.0) ** np.linspace(-30, 30, 5001)).astype(np.float32)
    assert _rel(an.recip_approx(d, AsicConfig(recip_newton_steps=steps)) * d.astype(np.float64), 1.0) < bound


@pytest.mark.parametrize("steps,bound", [(0, 0.035), (1, 1.8e-3), (2, 5e-6)])
def test_fast_inverse_sqrt(steps, bound):
    v = (np.float32(2.0) ** np.linspace(-30, 30, 5001)).astype(np.float32)
    y = an.rsqrt_approx(v, AsicConfig(rsqrt_newton_steps=steps)).astype(np.float64)
    assert _rel(y * np.sqrt(v.astype(np.float64)), 1.0) < bound


def test_layernorm_softmax_gelu_close_to_exact():
    cfg = AsicConfig()
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(768) * 3 + 1).astype(np.float32)
    g, b = rng.standard_normal(768).astype(np.float32), rng.standard_normal(768).astype(np.float32)
    xd = x.astype(np.float64)
    ln = (xd - xd.mean()) / np.sqrt(xd.var() + 1e-5) * g + b
    assert np.max(np.abs(an.layernorm(x, g, b, 1e-5, cfg) - ln)) < 1e-4
    sm = np.exp(xd / 8 - (xd / 8).max())
    sm /= sm.sum()
    assert np.max(np.abs(an.softmax(x, cfg, scale=1 / 8) - sm)) < 1e-6
    assert abs(an.softmax(x, cfg).astype(np.float64).sum() - 1) < 1e-5
    gelu = 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd**3)))
    assert np.max(np.abs(an.gelu(x, cfg) - gelu)) < 1e-5
    assert np.all(np.isfinite(an.gelu(np.array([-1e4, 1e4, -100, 100], np.float32), cfg)))
    rms = xd / np.sqrt((xd**2).mean() + 1e-5) * g
    assert np.max(np.abs(an.rmsnorm(x, g, 1e-5, cfg) - rms)) < 1e-4
    silu = xd / (1 + np.exp(-xd))
    assert np.max(np.abs(an.silu(x, cfg) - silu)) < 1e-5
    assert np.max(np.abs(an.swiglu(x, g, cfg) - silu * g)) < 1e-4


def test_lane_sum_is_the_documented_order():
    x = np.arange(1, 70, dtype=np.float32) * np.float32(0.1)
    lanes, inter = 4, 2
    acc = np.zeros((inter, lanes), np.float32)
    xp = np.pad(x, (0, (-x.size) % lanes)).reshape(-1, lanes)
    for v, row in enumerate(xp):
        acc[v % inter] = acc[v % inter] + row
    p = acc[0] + acc[1]
    want = np.float32((p[0] + p[1]) + (p[2] + p[3]))
    assert an.lane_sum(x, lanes, inter) == want
    assert abs(float(an.lane_sum(x, 16, 2)) - float(x.astype(np.float64).sum())) < 1e-3


def test_partial_sum_reduction_in_increasing_k():
    vals = np.array([1e8, 1.0, -1e8, 3.0], np.float32)
    neuron = np.array([0, 0, 0, 1])
    k0 = np.array([0, 2048, 1024, 0])  # order by k: 1e8, -1e8, 1.0 -> exactly 1.0
    y = an.reduce_partials(vals, neuron, k0, 2)
    assert y.tolist() == [1.0, 3.0]
