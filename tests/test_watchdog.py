"""The engines' progress watchdog: a timing that cannot fit between refreshes stops the run with a one-line
PimsimError naming the stuck command and the constraint, instead of refreshing forever.

Every case runs in a subprocess under a hard time limit, so a regression (a hang) fails the test rather
than stalling the suite.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from simulator.config import load_arch
from simulator.dram.isa import parse_isr
from simulator.dram.replay import replay
from simulator.dram.timing import refresh_stall_limit

TRACES = Path(__file__).parent / "data" / "aim_oracle" / "traces"
LIMIT_S = 120  # generous on a loaded 2-core machine; a stall without the watchdog never ends


def _pimsim(*args):
    return subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True, text=True,
                          timeout=LIMIT_S)


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("trace, setting, command, rule", [
    ("gemv_64x1024_cent.trace", "timing.nRCDRDMAC=4000", "MAC16", "nRCDRDMAC"),  # ACT16 -> MAC16 > nREFI
    ("ewmul_rows.trace", "timing.nRFC=5000", "EWMUL16", "nRFC"),  # each refresh outlasts the interval
])
def test_replay_stall_is_one_line_error(engine, trace, setting, command, rule):
    p = _pimsim("replay", str(TRACES / trace), "--engine", engine, "--set", "refresh.enabled=true",
                "--set", setting)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert f"{command} in channel" in lines[0] and rule in lines[0] and "device stalled" in lines[0]


def test_run_stall_is_one_line_error():
    p = _pimsim("run", "--set", "timing.nRCDRD=4000", "--model", "gpt2-small", "--context", "128", "--tokens", "2")
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "device stalled: RD" in lines[0] and "nRCDRD" in lines[0]


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_long_register_constraint_is_not_a_stall(engine):
    """WRGB -> RDMAC16 (nWTRS) longer than two refresh intervals: the read-out waits through refreshes but
    needs no open row, so it does finish; the watchdog must not fire, and both engines agree."""
    cfg = load_arch("aim_gddr6", ["organisation.channels=2", "refresh.enabled=true", "timing.nREFI=1000",
                                  "timing.nWTRS=2500"])
    assert refresh_stall_limit(cfg.timing) >= 3
    prog = parse_isr("AiM WR_GB 1 0 0x3\nAiM RD_MAC 0 0x3\nAiM EOC\n", cfg.organisation)
    res = replay(prog, cfg, engine=engine)
    # RDMAC16 cannot issue before WRGB + nCWLREG + nBL + nWTRS
    assert res.cycles > 33 + cfg.timing.nCWLREG + cfg.timing.nBL + 2500
    assert res.cycles == replay(prog, cfg, engine="reference").cycles
