"""The engines' progress watchdog: a timing that cannot fit between refreshes stops the run with a one-line
PimsimError naming the stuck command and the constraint, instead of refreshing forever.

Every case runs in a subprocess under a hard time limit, so a regression (a hang) fails the test rather
than stalling the suite.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simulator.config import load_arch
from simulator.dram.commands import Cmd
from simulator.dram.isa import Op
from simulator.dram.program import Program
from simulator.dram.replay import replay

TRACES = Path(__file__).parent / "data" / "aim_oracle" / "traces"
LIMIT_S = 120  # generous on a loaded 2-core machine; a stall without the watchdog never ends


def _pimsim(*args):
    return subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True, text=True,
                          timeout=LIMIT_S)


def _one_line_error(p, *words):
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_stall_within_every_single_timing_limit(engine):
    """Every timing fits between two refreshes on its own (so a load-time check passes it), but PREA ->
    REFab -> ACT16 -> MAC16 does not: nRP + nRFC + nRCDRDMAC = 32 + 210 + 185 > nREFI = 400. Only the
    watchdog can catch this."""
    p = _pimsim("replay", str(TRACES / "gemv_64x1024_cent.trace"), "--engine", engine, "--set",
                "refresh.enabled=true", "--set", "timing.nREFI=400", "--set", "timing.nRCDRDMAC=185")
    _one_line_error(p, "device stalled", "MAC16 in channel", "nREFI = 400")


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("trace, setting, rule", [
    ("gemv_64x1024_cent.trace", "timing.nRCDRDMAC=4000", "nRCDRDMAC"),  # ACT16 -> MAC16 > nREFI
    ("ewmul_rows.trace", "timing.nRFC=5000", "nRFC"),  # each refresh outlasts the interval
])
def test_replay_timing_beyond_refresh_is_one_line_error(engine, trace, setting, rule):
    """A single timing beyond the refresh interval: stopped by the watchdog, or earlier by a load-time
    config check; either way one line naming the timing, and no hang."""
    p = _pimsim("replay", str(TRACES / trace), "--engine", engine, "--set", "refresh.enabled=true",
                "--set", setting)
    _one_line_error(p, rule)


def test_run_stall_is_one_line_error():
    p = _pimsim("run", "--set", "timing.nRCDRD=4000", "--model", "gpt2-small", "--context", "128", "--tokens", "2")
    _one_line_error(p, "nRCDRD")


def test_refresh_catch_up_after_idle_is_not_a_stall():
    """A long host delay leaves 50 refreshes owed; the next request waits while the channel catches up on
    them (each nRFC apart). That is legal: the watchdog must not fire, and both engines agree."""
    cfg = load_arch("aim_gddr6", ["organisation.channels=2", "refresh.enabled=true", "timing.nREFI=400"])
    rows = [(Op.DELAY, 20_000, 0), (Op.MAC_ABK, 64, 3), (Op.RD_MAC, 0, 3), (Op.MAC_ABK, 64, 3), (Op.EOC, 0, 3)]
    op, opsize, mask = (np.array(c, np.int64) for c in zip(*rows))
    zeros = np.zeros(len(rows), np.int64)
    prog = Program(op, opsize, mask, zeros, zeros, source="<test>")
    fast = replay(prog, cfg, engine="fast")
    ref = replay(prog, cfg, engine="reference")
    assert fast.cycles == ref.cycles > 20_000 + 49 * cfg.timing.nRFC
    assert (fast.counts == ref.counts).all() and fast.counts[:, Cmd.REFab].min() >= 50
