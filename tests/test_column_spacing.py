"""Column spacing is per data direction (docs/device-model.md 'Column spacing').

nCCDS / nCCDL separate reads from reads and writes from writes; a read followed by a write (or the reverse)
is separated only by the bus turnarounds, and AF16 by nothing. This is the rule behind the AF/RD_AF and
COPY/WR_GB loops of the validation set (tests/test_aim_oracle.py). Each case: the engine's earliest cycle
for the next command, and the independent checker accepting it there and (where a gap applies) rejecting
it one cycle earlier.
"""

import numpy as np
import pytest
from test_timing_gates import _issue_all  # the engine's timing state after a list of commands

from simulator.config import load_arch
from simulator.dram.checker import check_log
from simulator.dram.commands import Cmd
from simulator.dram.isa import parse_isr
from simulator.dram.log import CommandLog
from simulator.dram.replay import replay

CFG = load_arch("aim_gddr6")
A = -1
# (name, setup [(cycle, cmd, bank, row)], next (cmd, bank, row), expected earliest cycle, gap applies?)
CASES = [
    ("MAC16->RDMAC16 read after read", [(100, "ACT16", A, 0), (156, "MAC16", A, 0)], ("RDMAC16", A, -1), 158, True),
    ("MAC16->WRGB no spacing", [(100, "ACT16", A, 0), (156, "MAC16", A, 0)], ("WRGB", A, -1), 157, False),
    ("MAC16->WRMAC16 no spacing", [(100, "ACT16", A, 0), (156, "MAC16", A, 0)], ("WRMAC16", A, -1), 157, False),
    ("AF16->RDAF16 no spacing", [(100, "ACT16", A, 5), (186, "AF16", A, 5)], ("RDAF16", A, -1), 187, False),
    ("AF16->MAC16 no spacing", [(100, "ACT16", A, 5), (186, "AF16", A, 5)], ("MAC16", A, 5), 187, False),
    ("RDCP->WRGB no spacing", [(100, "ACT", 2, 0), (166, "RDCP", 2, 0)], ("WRGB", A, -1), 167, False),
    ("RDCP->RDCP read after read", [(100, "ACT", 2, 0), (166, "RDCP", 2, 0)], ("RDCP", 2, 0), 168, True),
    ("WRCP->RDCP other bank no spacing", [(100, "ACT", 2, 0), (105, "ACT", 9, 0), (171, "WRCP", 2, 0)],
     ("RDCP", 9, 0), 172, False),
    ("WRCP->WRCP write after write", [(100, "ACT", 2, 0), (148, "WRCP", 2, 0)], ("WRCP", 2, 0), 150, True),
    ("EWMUL16->EWMUL16 bank-group spacing", [(100, "ACT16", A, 0), (125, "EWMUL16", A, 0)], ("EWMUL16", A, 0),
     127, True),
    ("EWMUL16->WRGB no spacing", [(100, "ACT16", A, 0), (125, "EWMUL16", A, 0)], ("WRGB", A, -1), 126, False),
]


def _violations(setup, nxt, cycle):
    """Checker on setup + next at `cycle`, ignoring the mode rule (a TMOD would need nMODCH more cycles,
    which would hide the column rule under test)."""
    name, bank, row = nxt
    entries = list(setup) + [(cycle, name, bank, row)]
    arr = np.array([(c, 0, int(Cmd[n]), b, r) for c, n, b, r in entries], dtype=np.int64)
    log = CommandLog(*(arr[:, i].copy() for i in range(5)))
    return [v for v in check_log(log, CFG, every_rule=True) if v.rule != "mode"]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_engine_earliest(case):
    _, setup, (name, bank, _), expected, _ = case
    assert max(_issue_all(setup).earliest(Cmd[name], bank), setup[-1][0] + 1) == expected


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_checker_agrees(case):
    _, setup, nxt, expected, gap_applies = case
    assert _violations(setup, nxt, expected) == []
    if gap_applies:
        bad = _violations(setup, nxt, expected - 1)
        assert bad and bad[0].rule in ("nCCDS", "nCCDL")


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_tmod_right_after_af16(engine):
    """ACT16@1 (look-up-table row), AF16@87 (nRCDRDAF), TMOD@88 (RDAF16 is not spaced from AF16), RDAF16@120
    (nMODCH), done @122; EOC reaches the channels @123 and is acknowledged @124."""
    res = replay(parse_isr("AiM AF 0xffffffff\nAiM RD_AF 0 0xffffffff\nAiM EOC\n", CFG.organisation), CFG,
                 engine=engine, keep_log=True)
    assert res.cycles == 124
    ch0 = [r for r in res.log.rows() if r[1] == 0]
    assert [(c, n) for c, _, n, _, _ in ch0] == [(1, "ACT16"), (87, "AF16"), (88, "TMOD"), (120, "RDAF16")]
    assert check_log(res.log, CFG) == []
