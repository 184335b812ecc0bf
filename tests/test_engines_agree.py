"""The fast engine and the reference engine agree command for command on random ISR traces, and the
independent protocol checker finds no violation in either."""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isr_gen import VARIANTS, random_isr
from simulator.config import load_arch
from simulator.dram.checker import check_log
from simulator.dram.fast import run_fast
from simulator.dram.reference import run_reference
from simulator.trace.isr import parse_isr

CFGS = {k: load_arch("aim_gddr6", ["organisation.channels=4"] + v) for k, v in VARIANTS.items()}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), variant=st.sampled_from(sorted(VARIANTS)), n=st.integers(1, 30))
def test_fast_equals_reference(seed, variant, n):
    cfg = CFGS[variant]
    text = random_isr(random.Random(seed), 4, n, conventional=variant == "fcfs-conventional")
    prog = parse_isr(text, cfg.organisation)
    ref = run_reference(prog, cfg, keep_log=True)
    fast = run_fast(prog, cfg, keep_log=True)
    assert fast.cycles == ref.cycles
    assert fast.log.rows() == ref.log.rows()
    assert (fast.counts == ref.counts).all()
    assert check_log(ref.log, cfg) == []


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30))
def test_frfcfs_reference_is_legal(seed, n):
    cfg = CFGS["default"]
    prog = parse_isr(random_isr(random.Random(seed), 4, n, conventional=True), cfg.organisation)
    res = run_reference(prog, cfg, keep_log=True)
    assert check_log(res.log, cfg) == []


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), variant=st.sampled_from(sorted(VARIANTS)), n=st.integers(1, 40))
def test_fast_without_log_merges_classes_and_still_agrees(seed, variant, n):
    """Without a log the fast engine merges channel classes that have converged; cycles and per-channel
    command counts must not change."""
    cfg = CFGS[variant]
    text = random_isr(random.Random(seed), 4, n, conventional=variant == "fcfs-conventional")
    prog = parse_isr(text, cfg.organisation)
    ref = run_reference(prog, cfg)
    fast = run_fast(prog, cfg)
    assert fast.cycles == ref.cycles
    assert (fast.counts == ref.counts).all()


def test_log_longer_than_its_first_buffer_is_whole():
    """The kernel cannot grow its log (it allocates nothing): a run whose log outgrows the first buffer
    runs again from the saved state with the size it reported. Nothing may be lost or applied twice."""
    from simulator.dram import fast

    cfg = CFGS["default"]
    lines = [f"AiM MAC_ABK 64 0xf {r}" for r in range(40)] + ["AiM EOC"]
    prog = parse_isr("\n".join(lines) + "\n", cfg.organisation)
    ref = run_reference(prog, cfg, keep_log=True)
    res = run_fast(prog, cfg, keep_log=True)
    assert len(res.log.rows()) > 2 * fast._LOG_CAPACITY  # so the retry path runs
    assert res.cycles == ref.cycles
    assert res.log.rows() == ref.log.rows()
    assert (res.counts == ref.counts).all()
