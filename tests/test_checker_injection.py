"""The checker catches every injected violation: moving any command a cycle too early (a TMOD a cycle too
late), dropping a TMOD, dropping an ACT, or issuing two commands in one cycle."""

import numpy as np
import pytest

from simulator.config import load_arch
from simulator.dram.checker import check_log
from simulator.dram.commands import Cmd
from simulator.dram.log import CommandLog
from simulator.dram.replay import replay
from simulator.trace.isr import parse_isr

CFG = load_arch("aim_gddr6", ["organisation.channels=1"])
TRACE = """AiM WR_GB 4 0 0x1
AiM WR_BIAS 0 0x1
AiM MAC_ABK 8 0x1 0
AiM RD_MAC 0 0x1
AiM MAC_ABK 8 0x1 1
AiM EWMUL 4 0x1 2
AiM COPY_BKGB 2 0x1 3 5
AiM COPY_GBBK 2 0x1 3 6
AiM AF 0x1
AiM RD_AF 0 0x1
AiM WR_ABK 0 0x1 7
AiM RD_SBK 0 0x1 2 9
AiM WR_SBK 0 0x1 2 9
AiM RD_SBK 0 0x1 2 9
AiM EOC
"""


def _valid():
    res = replay(parse_isr(TRACE, CFG.organisation), CFG, engine="reference", keep_log=True)
    assert check_log(res.log, CFG) == []
    return res.log


def _rows(log):
    return [list(r) for r in zip(log.cycle, log.channel, log.cmd, log.bank, log.row)]


def _make(rows):
    arr = np.array(rows, dtype=np.int64)
    return CommandLog(*(arr[:, i].copy() for i in range(5)))


def test_every_command_moved_one_cycle_early_is_caught():
    """Every command of the valid log, moved one cycle earlier (onto the previous command's cycle if that is
    where it lands), is a violation the checker reports at the moved command. Except TMOD: no device rule
    bounds a TMOD from below (the controller places it nMODCH before the command that needs the new mode, a
    scheduling choice), so its violation is the other direction: one cycle late, the command after it comes
    nMODCH - 1 after it. An early TMOD is legal and must pass."""
    rows = _rows(_valid())
    injected = 0
    for i in range(1, len(rows)):
        bad = [r[:] for r in rows]
        tmod = Cmd(bad[i][2]) == Cmd.TMOD
        if tmod:
            bad[i][0] += 1
        elif bad[i][0] - 1 <= bad[i - 1][0]:
            bad[i][0] = bad[i - 1][0]  # lands on the previous command's cycle: slot conflict
        else:
            bad[i][0] -= 1
        v = check_log(_make(bad), CFG, first_only=True)
        assert v, f"not caught: {Cmd(rows[i][2]).name} at {rows[i][0]} moved to {bad[i][0]}"
        expected = (bad[i + 1][0], "nMODCH") if tmod else (bad[i][0], v[0].rule)
        assert (v[0].cycle, v[0].rule) == expected
        injected += 1
        if tmod and rows[i][0] - 1 > rows[i - 1][0]:
            early = [r[:] for r in rows]
            early[i][0] -= 1
            assert check_log(_make(early), CFG) == []
    assert injected == len(rows) - 1 and sum(Cmd(r[2]) == Cmd.TMOD for r in rows) >= 4


@pytest.mark.parametrize("drop", ["TMOD", "ACT16", "ACT", "PREA"])
def test_dropped_command_is_caught(drop):
    rows = _rows(_valid())
    idx = next(i for i, r in enumerate(rows) if Cmd(r[2]).name == drop)
    v = check_log(_make(rows[:idx] + rows[idx + 1:]), CFG, first_only=True)
    assert v and v[0].rule in ("mode", "row state")


def test_each_rule_kind_is_caught():
    rules = set()
    rows = _rows(_valid())
    for i in range(1, len(rows)):
        bad = [r[:] for r in rows]
        bad[i][0] = max(bad[i - 1][0] + 1, bad[i][0] - 1)
        for v in check_log(_make(bad), CFG):
            rules.add(v.rule)
    assert {"nRCDRDMAC", "nRTP", "nRP", "nMODCH", "nCCDL", "nRCDRDCP", "nRCDWRCP", "nRCDRDAF",
            "nRCDEWMUL", "nCWL+nWR", "nWTRL"} <= rules
