"""ASIC function units: pipeline timing derived by hand, chained passes, streaming recursion, config."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.asic.config import AsicConfig, asic_config_from_dict
from simulator.asic.units import (
    Pass,
    Unit,
    UnitPool,
    job_cycles,
    operator_passes,
    stream_end,
    stream_suffix,
    units_from_config,
)
from simulator.errors import PimsimError


def test_exp_unit_timing_by_hand():
    """Default exp unit: 128 lanes, ii 1, depth = exp chain latency = clamp 2 x cmp(1) + mul(3) + int(1)
    + mul(3) + add(2) + 5 Horner steps x (mul 3 + add 2) + mul(3) = 2 + 3 + 1 + 3 + 2 + 25 + 3 = 39.
    768 elements: 6 vectors, finish 39 + 6 = 45. A second job of 256 elements, requested at cycle 0, issues
    after the first job's last vector (cycle 6): finish 6 + 39 + 2 = 47."""
    units = units_from_config(AsicConfig())
    assert units["exp"] == Unit("exp", 128, 39, 1)
    assert units["exp"].cycles(768) == 45
    pool = UnitPool(units)
    p1, p2 = Pass((("exp", 1),), 768), Pass((("exp", 1),), 256)
    assert pool.run((p1,), 0.0, "a") == (45.0, None)
    end, binding = pool.run((p2,), 0.0, "b")
    assert end == 47.0 and binding == "a"


def test_initiation_interval_and_lanes():
    units = units_from_config(asic_config_from_dict({"valu": {"lanes": 16, "depth": 4, "ii": 2}}))
    # 100 elements on 16 lanes: 7 vectors, one every 2 cycles: 4 + 14
    assert units["valu"].cycles(100) == 18
    assert job_cycles((Pass((("valu", 1),), 100),), units) == 18


def test_chained_pass_and_barriers_layernorm_by_hand():
    """layernorm of 768 on defaults: valu depth 3 (the slowest op, mul), reduce depth 16 (adder tree over 128
    lanes, 7 levels x add 2, after combining 2 interleaved partials, 1 level x 2), rsqrt 1 lane, depth 23.
    pass 1: reduce, W 6, D r; pass 2: valu x2 + reduce, W max(12, 6) = 12, D 6 + r; pass 3 (one element):
    valu x2 + rsqrt, W max(2, 1) = 2, D 6 + 23; pass 4: valu x4, W 24, D 12."""
    units = units_from_config(AsicConfig())
    r = units["reduce"].depth
    assert r == 16 and units["valu"].depth == 3 and units["rsqrt"] == Unit("rsqrt", 1, 23, 1)
    want = (6 + r) + (12 + 6 + r) + (2 + 6 + 23) + (24 + 12)
    assert job_cycles(operator_passes("layernorm", 768), units) == want


@settings(max_examples=60, deadline=None)
@given(arr=st.lists(st.integers(0, 500), min_size=1, max_size=30), w=st.lists(st.integers(1, 40), min_size=30,
                                                                                 max_size=30),
       start=st.integers(0, 300))
def test_streaming_pass_is_the_fifo_recursion(arr, w, start):
    """The closed form equals f_i = max(a_i, f_{i-1}) + w_i step by step (f_0 = start), plus the depth."""
    units = units_from_config(AsicConfig())
    a = np.sort(np.array(arr, np.float64))
    win = np.array(w[:len(a)], np.float64)
    p = Pass((("valu", 1),), 128)
    pool = UnitPool(units)
    end, _ = pool.run((p,), float(start), "j", a, stream_suffix(win))
    f = float(start)
    for ai, wi in zip(a, win):
        f = max(ai, f) + wi
    assert end == f + units["valu"].depth


@settings(max_examples=200, deadline=None)
@given(arr=st.lists(st.integers(0, 10**12), min_size=1, max_size=40), s=st.floats(0, 1e12, allow_nan=False),
       w=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=40, max_size=40), one=st.booleans())
def test_compiled_stream_end_equals_the_numpy_expression(arr, s, w, one):
    """The compiled streamed-pass end is bit for bit the NumPy expression it replaced, for integer read-out
    cycles, and for the single float arrival of overlap off."""
    suffix = np.asarray(w[:len(arr)], np.float64)
    a = np.array([float(arr[0])]) if one else np.asarray(arr, np.int64)
    assert stream_end(a, s, suffix) == float((np.maximum(a, s) + suffix).max())


def test_unit_config_is_validated_and_read():
    with pytest.raises(PimsimError, match="asic.exp.lanes"):
        asic_config_from_dict({"exp": {"lanes": 0}})
    with pytest.raises(PimsimError, match="unknown key"):
        asic_config_from_dict({"exp": {"width": 4}})
    # every unit field changes the timing
    base = job_cycles(operator_passes("softmax", 512, 12), units_from_config(AsicConfig()))
    for unit in ("valu", "exp", "recip", "reduce"):
        for field, value in (("lanes", 8), ("depth", 200), ("ii", 3)):
            cfg = asic_config_from_dict({unit: {field: value}})
            assert job_cycles(operator_passes("softmax", 512, 12), units_from_config(cfg)) != base, (unit, field)
    ln = job_cycles(operator_passes("layernorm", 768), units_from_config(AsicConfig()))
    for field, value in (("lanes", 8), ("depth", 200), ("ii", 3)):
        cfg = asic_config_from_dict({"rsqrt": {field: value, "lanes": 1} if field != "lanes" else {"lanes": 8}})
        if field == "lanes":  # one element: more lanes cannot help
            assert job_cycles(operator_passes("layernorm", 768), units_from_config(cfg)) == ln
        else:
            assert job_cycles(operator_passes("layernorm", 768), units_from_config(cfg)) > ln
