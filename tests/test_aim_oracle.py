"""Exact agreement with an independent cycle-accurate AiM implementation on 22 ISR traces.

The expected counts come from the public GDDR6-AiM simulator (tests/data/aim_oracle/README.md says how).
Both engines must reproduce each one to the cycle, and the protocol checker must accept the command log.
"""

import json
from pathlib import Path

import pytest

from simulator.config import load_arch
from simulator.dram.checker import check_log
from simulator.dram.isa import read_isr
from simulator.dram.replay import replay

DATA = Path(__file__).parent / "data" / "aim_oracle"
EXPECTED = json.loads((DATA / "expected_cycles.json").read_text())
CFG = load_arch("aim_gddr6")


def test_the_set_is_complete():
    assert len(EXPECTED) == 22
    assert sorted(p.name for p in (DATA / "traces").glob("*.trace")) == sorted(EXPECTED)


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exact_cycles(name, engine):
    prog = read_isr(str(DATA / "traces" / name), CFG.organisation)
    res = replay(prog, CFG, engine=engine, keep_log=engine == "reference")
    assert res.cycles == EXPECTED[name]
    if res.log is not None:
        assert check_log(res.log, CFG) == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fast_with_shortcuts_matches_log_run(name):
    """The fast engine with its shortcuts on (no log) gives the same cycles and counts as with the log."""
    prog = read_isr(str(DATA / "traces" / name), CFG.organisation)
    on = replay(prog, CFG, engine="fast")
    off = replay(prog, CFG, engine="fast", keep_log=True)
    assert (on.cycles, on.counts.tolist()) == (off.cycles, off.counts.tolist())
