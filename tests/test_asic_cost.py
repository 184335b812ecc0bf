"""ASIC cycle costs and operation counts: derived from the algorithm and the lane count, and consistent."""

from __future__ import annotations

import math

import pytest

from simulator.asic import ASIC_OPS, AsicConfig, algorithm, asic_config_from_dict, asic_cycles, asic_op_counts
from simulator.errors import PimsimError


def test_vector_add_is_one_issue_per_vector_plus_pipeline():
    cfg = AsicConfig()
    for n in (1, 15, 16, 17, 768, 6400):
        assert asic_cycles("residual_add", n, cfg) == math.ceil(n / 16) + cfg.add_latency_cycles
    assert asic_op_counts("bias_add", 768, cfg) == {"add": 768, "mul": 0, "cmp": 0, "int": 0}


def test_layernorm_cycles_from_the_derivation():
    cfg = AsicConfig()
    a, m, L, n = cfg.add_latency_cycles, cfg.mul_latency_cycles, cfg.lanes, 768
    v = math.ceil(n / L)
    tail = math.ceil(math.log2(a)) * a + int(math.log2(L)) * a
    rsqrt = cfg.int_latency_cycles + cfg.rsqrt_newton_steps * (3 * m + a)
    want = (1 * v + a + tail) + (3 * v + (2 * a + m) + tail) + (4 * v + (2 * a + 2 * m)) + (2 * m + a) + rsqrt
    assert asic_cycles("layernorm", n, cfg) == want


@pytest.mark.parametrize("op", [o for o in ASIC_OPS if o != "partial_sum"])
def test_monotone_in_n_and_faster_with_more_lanes(op):
    c16, c32 = AsicConfig(), AsicConfig(lanes=32)
    prev = 0
    for n in (16, 64, 768, 4096):
        cyc = asic_cycles(op, n, c16)
        assert cyc > prev
        prev = cyc
        assert asic_cycles(op, 4096, c32) < asic_cycles(op, 4096, c16)
    ops = asic_op_counts(op, 4096, c16)
    # issue-bound: a 16-lane unit cannot finish the element ops faster than ops / lanes cycles
    assert asic_cycles(op, 4096, c16) >= sum(ops.values()) / 16 * 0.9


def test_approximation_depth_drives_cost_and_counts():
    base = AsicConfig()
    more = AsicConfig(exp_taylor_terms=base.exp_taylor_terms + 2, recip_newton_steps=base.recip_newton_steps + 1)
    assert asic_cycles("softmax", 1024, more) > asic_cycles("softmax", 1024, base)
    d = {k: asic_op_counts("gelu", 100, more)[k] - asic_op_counts("gelu", 100, base)[k] for k in ("add", "mul")}
    assert d == {"add": 100 * (2 + 1), "mul": 100 * (2 + 2)}  # 2 Horner steps, 1 Newton step per element


def test_rows_and_partial_sums():
    cfg = AsicConfig()
    assert asic_cycles("softmax", 64, cfg, rows=12) == 12 * asic_cycles("softmax", 64, cfg)
    assert asic_cycles("partial_sum", 768, cfg, partials=1) == 0
    assert asic_cycles("partial_sum", 768, cfg, partials=3) == 2 * 48 + cfg.add_latency_cycles
    assert asic_op_counts("partial_sum", 768, cfg, partials=3)["add"] == 1536
    assert asic_cycles("gelu", 0, cfg) == 0


def test_config_validation():
    assert asic_config_from_dict({"lanes": 32}).lanes == 32
    with pytest.raises(PimsimError, match="asic.lane"):
        asic_config_from_dict({"lane": 32})
    with pytest.raises(PimsimError):
        asic_config_from_dict({"lanes": 0})
    with pytest.raises(PimsimError):
        asic_cycles("conv2d", 10)
    assert hash(AsicConfig()) == hash(AsicConfig())
    with pytest.raises(Exception):
        AsicConfig().lanes = 3  # frozen
    assert algorithm("softmax", AsicConfig()).passes[0].reduce == "cmp"
