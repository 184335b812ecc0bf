"""The run memo (simulator/dram/memo.py) is exact: memo on == memo off, on full generations.

Compared: every program's end cycle, per-channel command counts and open-bank cycles, replaying the programs a
full system run issued (tiles and idle DELAYs, one device call each: many small calls from the same few
programs), and
the whole `simulate` result (cycles, per-token latencies, counts, energy) through the system engine. The
model is a two-layer GPT small enough for a full generation (context 1 up to its limit) in a test.
"""

import dataclasses

import numpy as np
import pytest

from simulator.asic.config import asic_config_from_arch
from simulator.config import load_arch
from simulator.dram import fast
from simulator.dram.tile_driver import run_programs
from simulator.system.api import simulate
from simulator.system.engine import SystemEngine
from simulator.mapping.pim_gpt import PimGptMapping
from simulator.trace import MODEL_ZOO, derive_trace

TINY = dataclasses.replace(MODEL_ZOO["gpt2-small"], name="tiny-gpt", n_layers=2, d_model=256, n_heads=4,
                           n_kv_heads=4, head_dim=64, ffn_dim=1024, vocab_size=2048, context_limit=64)


@pytest.fixture(scope="module")
def setup():
    arch = load_arch("pim_gpt")
    trace = derive_trace(TINY)
    pm = PimGptMapping(arch, trace, mapping="pim-gpt", asic=asic_config_from_arch(arch))
    se = SystemEngine(arch, pm)
    se.run(list(range(1, TINY.context_limit + 1)), record=True)
    return arch, trace, pm, se


def _generation(arch, pm, se, memo):
    dev = fast.FastEngine(arch, memo=memo)
    ends = run_programs(dev, se.issued)
    x = dev.state.x
    return ends, dev.state.channel_counts(), dev.state.bank_open_cycles(x), dev


def test_program_by_program_generation_identical(setup):
    arch, _, pm, se = setup
    e_on, c_on, o_on, dev = _generation(arch, pm, se, True)
    e_off, c_off, o_off, _ = _generation(arch, pm, se, False)
    assert e_on == e_off
    np.testing.assert_array_equal(c_on, c_off)
    assert o_on == o_off
    assert dev.memo.hits >= 100  # the memo is exercised (227 hits of 1278 calls here), not bypassed


def test_simulate_identical(setup, monkeypatch):
    arch, trace, _, _ = setup
    out = {}
    for memo in (True, False):
        monkeypatch.setattr(fast, "MEMO_DEFAULT", memo)
        o = simulate(arch, trace, context=1, tokens=None, gpu=None, cpu=None)
        o.pop("wall_s", None)
        out[memo] = o
    assert out[True] == out[False]
