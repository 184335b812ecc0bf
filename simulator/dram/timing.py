"""The timing table: every (preceding command, following command, scope) -> minimum gap in tCK.

Both engines consume this one table (Ramulator-style: when a command issues, it pushes forward the
earliest legal cycle of each command it constrains, at bank / bank-group / channel scope). The protocol
checker does NOT use it: it re-derives each rule from the config on its own (simulator/dram/checker.py).

Scopes: BANK applies when the two commands touch a common bank, GROUP a common bank group, CHANNEL always.
Values and the derived gaps are the ones listed in docs/aim-device.md (AiM preset); the conventional GDDR6
read/write turnarounds use the JEDEC-style formulas of the public GDDR6 model (nCL + nBL + 3 - nCWL + nWPRE
for read->write, nCWL + nBL + nWTR for write->read).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from simulator.dram.commands import (
    BUS_FROM_HOST,
    BUS_TO_HOST,
    CCD_GROUP_BOTH,
    CCD_READ,
    CCD_WRITE,
    N_CMDS,
    TABLE,
    Cmd,
    commands_where,
)

if TYPE_CHECKING:  # type hints only: importing the schema builds pydantic models
    from simulator.config.schema import Timing

SCOPE_BANK, SCOPE_GROUP, SCOPE_CHANNEL = 0, 1, 2
N_SCOPES = 3
SCOPE_NAMES = ("bank", "bankgroup", "channel")

C = Cmd
# Command families, read off the command table (simulator/dram/commands.py).
ACTS = commands_where(opens=True)
PRES = commands_where(precharges=True)
BANK_READS = commands_where(bank_read=True)  # nRTP counts only from these
# Column-to-column spacing (nCCDS / nCCDL) applies only between commands moving data the same way: reads
# after reads, writes after writes. A read followed by a write (or the reverse) is spaced by the bus
# turnarounds below (nRTW, nWTR), and AF16 (a look-up in the bank's own AF unit) by neither.
# EWMUL16 reads and writes the banks of each group but moves nothing over the channel, so it takes part only
# in the bank-group (nCCDL) spacing. docs/device-model.md 'Column spacing'.
CCDS_READS = commands_where(ccd=CCD_READ)
CCDS_WRITES = commands_where(ccd=CCD_WRITE)
CCDL_READS = CCDS_READS + commands_where(ccd=CCD_GROUP_BOTH)
CCDL_WRITES = CCDS_WRITES + commands_where(ccd=CCD_GROUP_BOTH)
BUS_READS = commands_where(bus=BUS_TO_HOST)  # drive the external data bus towards the host
BUS_WRITES = commands_where(bus=BUS_FROM_HOST)  # receive data from the host
REFS = (C.REFab, C.REFpb)
DRAM_CMDS = tuple(c for c in Cmd if c not in (C.TMOD, C.SYNC, C.EOC))


@dataclass(frozen=True)
class Constraint:
    prev: Cmd
    next: Cmd
    scope: int
    cycles: int
    rule: str  # the datasheet name of the rule, for error messages and docs


def build_constraints(t: Timing) -> tuple[Constraint, ...]:
    rules: list[tuple[tuple, tuple, int, int, str]] = [
        # --- same bank: row cycle ---
        (ACTS, ACTS, SCOPE_BANK, t.nRC, "nRC"),
        (ACTS, PRES, SCOPE_BANK, t.nRAS, "nRAS"),
        (PRES, ACTS, SCOPE_BANK, t.nRP, "nRP"),
        # activate to column command: each row-access command's own nRCD* (its `rcd` in the command table)
        *((ACTS, (c,), SCOPE_BANK, getattr(t, TABLE[c].rcd), TABLE[c].rcd) for c in commands_where(needs_row=True)),
        (BANK_READS, PRES, SCOPE_BANK, t.nRTP, "nRTP"),
        ((C.WR, C.WRCP), PRES, SCOPE_BANK, t.nCWL + t.nBL + t.nWR, "nCWL+nBL+nWR"),
        ((C.EWMUL16,), PRES, SCOPE_BANK, t.nCWL + t.nWR, "nCWL+nWR"),
        ((C.WRA16,), ACTS, SCOPE_BANK, t.nCWL + t.nBL + t.nWR + t.nRP, "nCWL+nBL+nWR+nRP"),
        # --- refresh ---
        (PRES, REFS, SCOPE_BANK, t.nRP, "nRP"),
        (ACTS, REFS, SCOPE_BANK, t.nRC, "nRC"),
        ((C.WRA16,), REFS, SCOPE_BANK, t.nCWL + t.nBL + t.nWR + t.nRP, "nCWL+nBL+nWR+nRP"),
        ((C.REFab,), ACTS + REFS, SCOPE_BANK, t.nRFC, "nRFC"),
        ((C.REFpb,), ACTS + REFS, SCOPE_BANK, t.nRFCpb, "nRFCpb"),
        # --- activate to activate, other banks ---
        (ACTS, ACTS, SCOPE_GROUP, t.nRRDL, "nRRDL"),
        (ACTS, ACTS, SCOPE_CHANNEL, t.nRRDS, "nRRDS"),
        # --- column to column ---
        (CCDL_READS, CCDL_READS, SCOPE_GROUP, t.nCCDL, "nCCDL"),
        (CCDL_WRITES, CCDL_WRITES, SCOPE_GROUP, t.nCCDL, "nCCDL"),
        (CCDS_READS, CCDS_READS, SCOPE_CHANNEL, t.nCCDS, "nCCDS"),
        (CCDS_WRITES, CCDS_WRITES, SCOPE_CHANNEL, t.nCCDS, "nCCDS"),
        (BUS_READS, BUS_READS, SCOPE_CHANNEL, t.nBL, "nBL"),
        (BUS_WRITES, BUS_WRITES, SCOPE_CHANNEL, t.nBL, "nBL"),
        # --- read -> write bus turnaround (tRTW) ---
        ((C.RD,), (C.WR, C.WRA16), SCOPE_CHANNEL, t.nCL + t.nBL + 3 - t.nCWL + t.nWPRE, "nRTW"),
        ((C.RD,), (C.WRGB, C.WRMAC16), SCOPE_CHANNEL, t.nCL + t.nBL + 3 - t.nCWLREG + t.nWPRE, "nRTW"),
        ((C.RDMAC16, C.RDAF16), (C.WR, C.WRA16), SCOPE_CHANNEL, t.nCLREG + t.nBL + 3 - t.nCWL + t.nWPRE, "nRTW"),
        ((C.RDMAC16, C.RDAF16), (C.WRGB, C.WRMAC16), SCOPE_CHANNEL,
         t.nCLREG + t.nBL + 3 - t.nCWLREG + t.nWPRE, "nRTW"),
        # --- write -> read turnaround (tWTR) ---
        ((C.WR, C.WRA16), (C.RD, C.RDMAC16, C.RDAF16), SCOPE_CHANNEL, t.nCWL + t.nBL + t.nWTRS, "nWTRS"),
        ((C.WR, C.WRA16), (C.RD, C.RDMAC16, C.RDAF16), SCOPE_GROUP, t.nCWL + t.nBL + t.nWTRL, "nWTRL"),
        ((C.WRGB, C.WRMAC16), (C.RD, C.RDMAC16, C.RDAF16), SCOPE_CHANNEL, t.nCWLREG + t.nBL + t.nWTRS, "nWTRS"),
        ((C.WRMAC16,), (C.RD, C.RDMAC16, C.RDAF16), SCOPE_GROUP, t.nCWLREG + t.nBL + t.nWTRL, "nWTRL"),
        # --- mode switch: nothing but the TMOD's own delay follows a TMOD (docs/aim-device.md rule 5) ---
        ((C.TMOD,), DRAM_CMDS, SCOPE_CHANNEL, t.nMODCH, "nMODCH"),
        # --- rules that come with a command (commands.Rule: a command added with commands.register) ---
        *(((Cmd[r.prev],), (Cmd[r.next],), SCOPE_NAMES.index(r.scope), r.cycles(t), r.name)
          for c in Cmd for r in TABLE[c].rules),
    ]
    out = []
    for prevs, nexts, scope, cycles, rule in rules:
        if cycles <= 0:
            continue  # a gap of 0 is no constraint (e.g. RDMAC16 -> WR: nCLREG + nBL + 3 - nCWL + nWPRE = 0)
        for p in prevs:
            for n in nexts:
                out.append(Constraint(Cmd(p), Cmd(n), scope, int(cycles), rule))
    return tuple(out)


@dataclass(frozen=True)
class WindowRule:
    """At most `window` commands of `commands` in any `cycles` cycles of one channel (nFAW: four activates)."""

    commands: tuple[Cmd, ...]
    window: int
    cycles: int
    rule: str


def build_window_rules(t: Timing, enforce_faw: bool) -> tuple[WindowRule, ...]:
    """nFAW is a switch (controller.enforce_faw), off like the public AiM simulator; ACT, ACT4 and ACT16 each
    count as one activation (docs/device-model.md)."""
    return (WindowRule(ACTS, 4, t.nFAW, "nFAW"),) if enforce_faw and t.nFAW > 0 else ()


@dataclass(frozen=True)
class TimingArrays:
    """The table as dense arrays for Numba: gap[scope, prev, next] (0 = no constraint)."""

    gap: np.ndarray  # int64 [N_SCOPES, N_CMDS, N_CMDS]


@lru_cache(maxsize=64)
def timing_arrays(t: Timing) -> TimingArrays:
    gap = np.zeros((N_SCOPES, N_CMDS, N_CMDS), dtype=np.int64)
    for c in build_constraints(t):
        gap[c.scope, c.prev, c.next] = max(gap[c.scope, c.prev, c.next], c.cycles)
    gap.setflags(write=False)
    return TimingArrays(gap)


def refresh_stall_limit(t: Timing) -> int:
    """How many refreshes that come due while one request waits (refreshes owed from before it arrived do
    not count: an idle channel catches up on them first) it may sit through before the controller is
    declared stuck. A refresh that was already due when the previous one it sat through issued is catch-up
    (the refresh schedule was behind) and does not count either.

    Without refresh a request at the head of its queue issues its at most four commands (TMOD, PRE(A),
    ACT, final) within 5 x (longest constraint + 1) cycles: every constraint pending when it reaches the head
    expires within one longest constraint, and each of its commands then waits at most one more. A refresh
    episode (TMOD, PREA, REFab) is bounded the same way. So a request that outlives more refreshes than fit
    into 8 such spans, plus four, can never finish: each refresh closes its rows and it starts over
    (a timing longer than nREFI, or nRFC longer than nREFI). Both engines stop there with a PimsimError.
    """
    longest = max(c.cycles for c in build_constraints(t))
    return 4 + -(-8 * (longest + 1) // t.nREFI)


def stall_message(t: Timing, waiting: Cmd, channel: int, refreshes: int) -> str:
    """One line naming the stuck command and the constraint that keeps it from fitting between refreshes."""
    # the request needs its own command and, after each refresh, its row again
    needed = {waiting, C.ACT, C.ACT16, C.PRE, C.PREA, C.REFab}
    into = [c for c in build_constraints(t) if c.next in needed]
    worst = max(into, key=lambda c: c.cycles) if into else None
    why = (f"the longest constraint on its way is {worst.rule} = {worst.cycles} cycles after {worst.prev.name}"
           if worst else "no constraint explains it")
    return (f"device stalled: {waiting.name} in channel {channel} did not issue through {refreshes} refreshes "
            f"(timing.nREFI = {t.nREFI}, timing.nRFC = {t.nRFC}); {why}. Every timing must fit well inside "
            f"the refresh interval: lower it, raise timing.nREFI, or set refresh.enabled=false")

