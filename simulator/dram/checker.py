"""Independent protocol checker: re-checks a command log against the datasheet rules.

Written apart from the engines on purpose: it shares nothing with them but the config (and the command
names). It keeps its own per-bank / per-group / per-channel history of the last command of each kind and
tests each command against every rule that could forbid it, in issue order. Rules are listed in
docs/device-model.md; each check names the rule it enforces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator.dram.commands import (
    CCD_GROUP_BOTH,
    CCD_READ,
    CCD_WRITE,
    MODE_REG,
    TABLE,
    TOUCH_ALL,
    TOUCH_GROUP,
    TOUCH_NONE,
    Cmd,
    commands_where,
)
from simulator.dram.log import CommandLog

if TYPE_CHECKING:  # type hints only: importing the schema builds pydantic models
    from simulator.config.schema import ArchConfig

NEG = -(10**12)

# Command facts come from the command table (what each command touches, needs and moves); the rules below
# are this module's own code over those facts.
_REG_CMDS = {c.name for c in commands_where(mode=MODE_REG)}
_ALL_BANK = {c.name for c in Cmd if TABLE[c].touch == TOUCH_ALL}
_GROUP = {c.name for c in Cmd if TABLE[c].touch == TOUCH_GROUP}
_NO_BANK = {c.name for c in Cmd if TABLE[c].touch == TOUCH_NONE}
_ACTS = {c.name for c in commands_where(opens=True)}
_PRES = {c.name for c in commands_where(precharges=True)}
_NEED_ROW = {c.name for c in commands_where(needs_row=True)}
_COLUMN = _NEED_ROW | _REG_CMDS
_RCD = {c.name: TABLE[c].rcd for c in commands_where(needs_row=True)}
_BANK_READS = {c.name for c in commands_where(bank_read=True)}
# Column spacing is per data direction (docs/device-model.md 'Column spacing'): reads after reads, writes
# after writes, at channel scope (nCCDS) for commands that use the channel's column bus, and at bank-group
# scope (nCCDL) for those plus EWMUL16. AF16 is spaced by neither.
_CCDS_DIR = {c.name: "r" if TABLE[c].ccd == CCD_READ else "w" for c in Cmd if TABLE[c].ccd in (CCD_READ, CCD_WRITE)}
_CCDL_DIRS = {**{k: (v,) for k, v in _CCDS_DIR.items()},
              **{c.name: ("r", "w") for c in commands_where(ccd=CCD_GROUP_BOTH)}}
# Rules that come with a command (commands.Rule), checked against this module's own issue history.
_OWN_RULES = tuple(r for c in Cmd for r in TABLE[c].rules)
_OWN_PREV = {r.prev for r in _OWN_RULES}


@dataclass(frozen=True)
class Violation:
    cycle: int
    channel: int
    cmd: str
    bank: int
    rule: str
    detail: str

    def __str__(self) -> str:
        where = f"bank {self.bank}" if self.bank >= 0 else "all banks"
        return f"cycle {self.cycle}, channel {self.channel}: {self.cmd} ({where}) violates {self.rule}: {self.detail}"


class _Chan:
    def __init__(self, nb: int, ng: int):
        self.mode = "bank"
        self.tmod = NEG
        self.last_cycle = NEG
        self.open = [-1] * nb
        self.b_act, self.b_pre, self.b_read, self.b_write = [NEG] * nb, [NEG] * nb, [NEG] * nb, [NEG] * nb
        self.b_ewmul, self.b_wra, self.b_refab, self.b_refpb = [NEG] * nb, [NEG] * nb, [NEG] * nb, [NEG] * nb
        self.g_act, self.g_wr, self.g_wrmac = [NEG] * ng, [NEG] * ng, [NEG] * ng
        self.g_col = {"r": [NEG] * ng, "w": [NEG] * ng}  # last column read / write per bank group
        self.c_col = {"r": NEG, "w": NEG}
        self.c_act = self.c_rd = self.c_rdreg = self.c_wr = self.c_wrreg = NEG
        self.c_busrd = self.c_buswr = NEG
        self.acts: list[int] = []
        self.own: dict[tuple[str, str, int], int] = {}  # (command, scope, bank / group / 0) -> last issue


def check_log(log: CommandLog, cfg: ArchConfig, first_only: bool = False,
              every_rule: bool = False) -> list[Violation]:
    """Violations in issue order: the first rule each command breaks (every rule it breaks if `every_rule`);
    with `first_only`, stop at the first offending command."""
    org, t = cfg.organisation, cfg.timing
    nb, bpg = org.banks, org.banks_per_group
    chans: dict[int, _Chan] = {}
    out: list[Violation] = []

    for cycle, ch, name, bank, row in log.rows():
        st = chans.setdefault(ch, _Chan(nb, org.bank_groups))
        if name in ("SYNC", "EOC"):
            continue
        if name in _ALL_BANK:
            banks = list(range(nb))
        elif name in _GROUP:
            g0 = bank // bpg
            banks = list(range(g0 * bpg, (g0 + 1) * bpg))
        elif name in _NO_BANK:
            banks = []
        else:
            banks = [bank]
        groups = sorted({b // bpg for b in banks})
        found: list[Violation] = []

        def need(ok: bool, rule: str, detail: str, b: int = bank if len(banks) == 1 else -1) -> None:
            if not ok:
                found.append(Violation(cycle, ch, name, b, rule, detail))

        def gap(prev: int, cycles: int, rule: str, what: str) -> None:
            if prev > NEG:
                need(cycle - prev >= cycles, rule, f"needs >= {cycles} cycles after {what} at cycle {prev}, "
                                                   f"got {cycle - prev}")

        need(cycle > st.last_cycle, "one command per channel per cycle",
             f"another command issued at cycle {st.last_cycle}")
        gap(st.tmod, t.nMODCH, "nMODCH", "TMOD")
        if name != "TMOD" and not (name in ("RDMAC16", "RDAF16") and not org.readout_mode_switch):
            # (a device without read-out mode switches reads its accumulators in either mode)
            want = "register" if name in _REG_CMDS else "bank"
            need(st.mode == want, "mode", f"needs {want} mode, channel is in {st.mode} mode")

        if name in _ACTS:
            for b in banks:
                need(st.open[b] in (-1, row), "row state", f"bank {b} still has row {st.open[b]} open", b)
                gap(st.b_act[b], t.nRC, "nRC", f"ACT to bank {b}")
                gap(st.b_pre[b], t.nRP, "nRP", f"PRE of bank {b}")
                gap(st.b_wra[b], t.nCWL + t.nBL + t.nWR + t.nRP, "nCWL+nBL+nWR+nRP", f"WRA16 of bank {b}")
                gap(st.b_refab[b], t.nRFC, "nRFC", "REFab")
                gap(st.b_refpb[b], t.nRFCpb, "nRFCpb", f"REFpb of bank {b}")
            for g in groups:
                gap(st.g_act[g], t.nRRDL, "nRRDL", f"ACT in bank group {g}")
            gap(st.c_act, t.nRRDS, "nRRDS", "ACT in this channel")
            if cfg.controller.enforce_faw and len(st.acts) >= 4:
                gap(st.acts[-4], t.nFAW, "nFAW", "the fourth-last ACT")
        if name in _PRES:
            for b in banks:
                gap(st.b_act[b], t.nRAS, "nRAS", f"ACT of bank {b}")
                gap(st.b_read[b], t.nRTP, "nRTP", f"read/MAC of bank {b}")
                gap(st.b_write[b], t.nCWL + t.nBL + t.nWR, "nCWL+nBL+nWR", f"write of bank {b}")
                gap(st.b_ewmul[b], t.nCWL + t.nWR, "nCWL+nWR", f"EWMUL16 of bank {b}")
        if name in ("REFab", "REFpb"):
            for b in banks:
                need(st.open[b] == -1, "row state", f"bank {b} must be precharged before refresh", b)
                gap(st.b_pre[b], t.nRP, "nRP", f"PRE of bank {b}")
                gap(st.b_act[b], t.nRC, "nRC", f"ACT of bank {b}")
                gap(st.b_wra[b], t.nCWL + t.nBL + t.nWR + t.nRP, "nCWL+nBL+nWR+nRP", f"WRA16 of bank {b}")
                gap(st.b_refab[b], t.nRFC, "nRFC", "REFab")
                gap(st.b_refpb[b], t.nRFCpb, "nRFCpb", f"REFpb of bank {b}")
        if name in _NEED_ROW:
            for b in banks:
                need(st.open[b] == row, "row state", f"bank {b} has row {st.open[b]} open, command targets {row}", b)
                gap(st.b_act[b], getattr(t, _RCD[name]), _RCD[name], f"ACT of bank {b}")
        for d in _CCDL_DIRS.get(name, ()):
            for g in groups:
                gap(st.g_col[d][g], t.nCCDL, "nCCDL", f"column {'read' if d == 'r' else 'write'} in bank group {g}")
        if name in _CCDS_DIR:
            d = _CCDS_DIR[name]
            gap(st.c_col[d], t.nCCDS, "nCCDS", f"column {'read' if d == 'r' else 'write'} in this channel")
        if name in ("RD", "RDMAC16", "RDAF16"):
            gap(st.c_busrd, t.nBL, "nBL", "data-bus read")
            gap(st.c_wr, t.nCWL + t.nBL + t.nWTRS, "nWTRS", "WR")
            gap(st.c_wrreg, t.nCWLREG + t.nBL + t.nWTRS, "nWTRS", "WRGB/WRMAC16")
            for g in groups:
                gap(st.g_wr[g], t.nCWL + t.nBL + t.nWTRL, "nWTRL", f"WR in bank group {g}")
                gap(st.g_wrmac[g], t.nCWLREG + t.nBL + t.nWTRL, "nWTRL", "WRMAC16")
        if name in ("WR", "WRA16", "WRGB", "WRMAC16"):
            gap(st.c_buswr, t.nBL, "nBL", "data-bus write")
            cwl = t.nCWL if name in ("WR", "WRA16") else t.nCWLREG
            gap(st.c_rd, t.nCL + t.nBL + 3 - cwl + t.nWPRE, "nRTW", "RD")
            gap(st.c_rdreg, t.nCLREG + t.nBL + 3 - cwl + t.nWPRE, "nRTW", "RDMAC16/RDAF16")

        for r in _OWN_RULES:
            if r.next == name:
                where = {"bank": banks, "bankgroup": groups, "channel": [0]}[r.scope]
                for w in where:
                    gap(st.own.get((r.prev, r.scope, w), NEG), r.cycles(t), r.name,
                        f"{r.prev} ({r.scope} {w})" if r.scope != "channel" else r.prev)

        if found:
            out.extend(found if every_rule else found[:1])
            if first_only:
                return out

        # --- update history ---
        st.last_cycle = cycle
        if name in _OWN_PREV:
            for scope, where in (("bank", banks), ("bankgroup", groups), ("channel", [0])):
                for w in where:
                    st.own[(name, scope, w)] = cycle
        if name == "TMOD":
            st.tmod = cycle
            st.mode = "register" if st.mode == "bank" else "bank"
        if name in _ACTS:
            for b in banks:
                st.b_act[b] = cycle
                st.open[b] = row
            for g in groups:
                st.g_act[g] = cycle
            st.c_act = cycle
            st.acts.append(cycle)
        if name in _PRES or name == "WRA16":
            for b in banks:
                st.open[b] = -1
                if name != "WRA16":
                    st.b_pre[b] = cycle
        for b in banks:
            if name in _BANK_READS:
                st.b_read[b] = cycle
            if name in ("WR", "WRCP"):
                st.b_write[b] = cycle
            if name == "EWMUL16":
                st.b_ewmul[b] = cycle
            if name == "WRA16":
                st.b_wra[b] = cycle
            if name == "REFab":
                st.b_refab[b] = cycle
            if name == "REFpb":
                st.b_refpb[b] = cycle
        for d in _CCDL_DIRS.get(name, ()):
            for g in groups:
                st.g_col[d][g] = cycle
        if name in _CCDS_DIR:
            st.c_col[_CCDS_DIR[name]] = cycle
        if name in ("RD", "RDMAC16", "RDAF16"):
            st.c_busrd = cycle
            if name == "RD":
                st.c_rd = cycle
            else:
                st.c_rdreg = cycle
        if name in ("WR", "WRA16", "WRGB", "WRMAC16"):
            st.c_buswr = cycle
            if name in ("WR", "WRA16"):
                st.c_wr = cycle
                for g in groups:
                    st.g_wr[g] = cycle
            else:
                st.c_wrreg = cycle
                if name == "WRMAC16":
                    for g in groups:
                        st.g_wrmac[g] = cycle
    return out


assert {c.name for c in Cmd} >= _COLUMN | _ACTS | _PRES  # names stay in sync with the command set
