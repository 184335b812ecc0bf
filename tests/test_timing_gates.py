"""Ramulator-style gate tests: each command is illegal one cycle before its bound and legal exactly at it.

Expected gaps are written out from docs/aim-device.md (not read from our timing table), so the table is tested
against the spec. Each case is checked twice: by the engine's timing state (earliest legal cycle) and by
the independent protocol checker (violation one cycle early, none at the bound).
"""

import pytest

from simulator.config import load_arch
from simulator.dram.checker import check_log
from simulator.dram.commands import Cmd
from simulator.dram.log import CommandLog
from simulator.dram.reference import ChannelModel, Plan
from simulator.dram.timing import build_constraints

import numpy as np

CFG = load_arch("aim_gddr6")
A = -1  # all banks
# (name, setup [(cycle, cmd, bank, row)], next (cmd, bank, row), expected cycle of next, rule)
CASES = [
    ("ACT16->MAC16 nRCDRDMAC", [(100, "ACT16", A, 0)], ("MAC16", A, 0), 156, "nRCDRDMAC"),
    ("ACT->MAC single bank", [(100, "ACT", 3, 0)], ("MAC", 3, 0), 156, "nRCDRDMAC"),
    ("ACT16->EWMUL16", [(100, "ACT16", A, 0)], ("EWMUL16", A, 0), 125, "nRCDEWMUL"),
    ("ACT16->AF16", [(100, "ACT16", A, 5)], ("AF16", A, 5), 186, "nRCDRDAF"),
    ("ACT->RDCP", [(100, "ACT", 2, 7)], ("RDCP", 2, 7), 166, "nRCDRDCP"),
    ("ACT->WRCP", [(100, "ACT", 2, 7)], ("WRCP", 2, 7), 148, "nRCDWRCP"),
    ("ACT->RD", [(100, "ACT", 2, 7)], ("RD", 2, 7), 136, "nRCDRD"),
    ("ACT->WR", [(100, "ACT", 2, 7)], ("WR", 2, 7), 128, "nRCDWR"),
    ("ACT16->WRA16", [(100, "ACT16", A, 1)], ("WRA16", A, 1), 128, "nRCDWR"),
    ("ACT16->PREA nRAS", [(100, "ACT16", A, 1)], ("PREA", A, -1), 154, "nRAS"),
    ("PREA->ACT16 nRP", [(100, "ACT16", A, 1), (200, "PREA", A, -1)], ("ACT16", A, 2), 232, "nRP"),
    # PRE at the earliest (nRAS): nRP would allow 154 + 32 = 186, nRC (100 + 89) binds
    ("ACT->ACT same bank nRC", [(100, "ACT", 0, 1), (154, "PRE", 0, -1)], ("ACT", 0, 2), 189, "nRC"),
    ("PRE->ACT same bank nRP", [(100, "ACT", 0, 1), (160, "PRE", 0, -1)], ("ACT", 0, 2), 192, "nRP"),
    ("ACT->ACT16 nRC", [(100, "ACT", 0, 1), (155, "PRE", 0, -1)], ("ACT16", A, 2), 189, "nRC"),
    ("ACT->ACT other group nRRDS", [(100, "ACT", 0, 1)], ("ACT", 4, 1), 105, "nRRDS"),
    ("ACT->ACT same group nRRDL", [(100, "ACT", 0, 1)], ("ACT", 1, 1), 106, "nRRDL"),
    ("MAC16->PREA nRTP", [(100, "ACT16", A, 0), (156, "MAC16", A, 0)], ("PREA", A, -1), 168, "nRTP"),
    ("RDCP->PRE nRTP", [(100, "ACT", 1, 0), (166, "RDCP", 1, 0)], ("PRE", 1, -1), 178, "nRTP"),
    ("WRCP->PREA", [(100, "ACT", 1, 0), (148, "WRCP", 1, 0)], ("PREA", A, -1), 189, "nCWL+nBL+nWR"),
    ("EWMUL16->PREA", [(100, "ACT16", A, 0), (125, "EWMUL16", A, 0)], ("PREA", A, -1), 164, "nCWL+nWR"),
    ("WRA16->ACT16", [(100, "ACT16", A, 0), (128, "WRA16", A, 0)], ("ACT16", A, 1), 201, "nCWL+nBL+nWR+nRP"),
    ("MAC16->MAC16 nCCD", [(100, "ACT16", A, 0), (156, "MAC16", A, 0)], ("MAC16", A, 0), 158, "nCCDL"),
    ("TMOD->WRGB nMODCH", [(100, "TMOD", A, -1)], ("WRGB", A, -1), 132, "nMODCH"),
    ("WRGB->WRGB", [(100, "TMOD", A, -1), (132, "WRGB", A, -1)], ("WRGB", A, -1), 134, "nCCDS"),
    ("RDMAC16->WRGB nRTW", [(100, "TMOD", A, -1), (132, "RDMAC16", A, -1)], ("WRGB", A, -1), 137, "nRTW"),
    ("RDMAC16->WRMAC16 nRTW", [(100, "TMOD", A, -1), (132, "RDMAC16", A, -1)], ("WRMAC16", A, -1), 137, "nRTW"),
    ("WRGB->RDMAC16 nWTRS", [(100, "TMOD", A, -1), (132, "WRGB", A, -1)], ("RDMAC16", A, -1), 144, "nWTRS"),
    ("WRMAC16->RDMAC16 nWTRL", [(100, "TMOD", A, -1), (132, "WRMAC16", A, -1)], ("RDMAC16", A, -1), 146, "nWTRL"),
    ("WRMAC16->RDAF16 nWTRL", [(100, "TMOD", A, -1), (132, "WRMAC16", A, -1)], ("RDAF16", A, -1), 146, "nWTRL"),
    ("RD->WR nRTW", [(100, "ACT", 0, 0), (136, "RD", 0, 0)], ("WR", 0, 0), 186, "nRTW"),
    ("WR->RD same group nWTRL", [(100, "ACT", 0, 0), (128, "WR", 0, 0)], ("RD", 0, 0), 147, "nWTRL"),
    # bank 4's row is open since 105 (nRCDRD allows 141); WR at 128 + nCWL + nBL + nWTRS (6 + 2 + 9) binds
    ("WR->RD other group nWTRS", [(100, "ACT", 0, 0), (105, "ACT", 4, 0), (128, "WR", 0, 0)], ("RD", 4, 0), 145,
     "nWTRS"),
    ("ACT->RD nRCDRD after a WR elsewhere", [(100, "ACT", 0, 0), (101, "TMOD", A, -1), (133, "TMOD", A, -1),
                                            (165, "ACT", 4, 0), (166, "WR", 0, 0)], ("RD", 4, 0), 201, "nRCDRD"),
]


def _issue_all(setup):
    rules = {}
    for c in build_constraints(CFG.timing):
        rules.setdefault(c.prev, []).append((c.next, c.scope, c.cycles))
    ch = ChannelModel(0, CFG, rules)
    for cyc, name, bank, row in setup:
        ch.issue(Plan(cyc, Cmd[name], bank, row, None, False))
    return ch


def _log(entries):
    arr = np.array([(c, 0, int(Cmd[n]), b, r) for c, n, b, r in entries], dtype=np.int64)
    return CommandLog(*(arr[:, i].copy() for i in range(5)))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_gate_engine(case):
    _, setup, (name, bank, row), expected, _ = case
    ch = _issue_all(setup)
    assert max(ch.earliest(Cmd[name], bank), setup[-1][0] + 1) == expected


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_gate_checker(case):
    _, setup, (name, bank, row), expected, rule = case
    ok = check_log(_log(setup + [(expected, name, bank, row)]), CFG)
    assert ok == [], ok[0] if ok else ""
    early = check_log(_log(setup + [(expected - 1, name, bank, row)]), CFG)
    assert early and early[0].rule == rule and early[0].cycle == expected - 1


def test_faw_gate_only_when_enabled():
    cfg = load_arch("aim_gddr6", ["controller.enforce_faw=true"])
    acts = [(100 + 6 * i, "ACT", 4 * i % 16 + i // 4, 0) for i in range(4)]  # four ACTs, nRRD apart
    fifth = (128, "ACT", 3, 0)  # 100 + nFAW (28)
    assert check_log(_log(acts + [fifth]), cfg) == []
    bad = check_log(_log(acts + [(127, "ACT", 3, 0)]), cfg)
    assert bad and bad[0].rule == "nFAW"
    assert check_log(_log(acts + [(127, "ACT", 3, 0)]), CFG) == []  # not enforced by default
