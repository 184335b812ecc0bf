"""The DRAM and AiM command set as one table: per command, what it touches, the mode it needs, what it does
to rows, how it moves data. Everything else about commands (the engines' arrays, the timing table's command
families in simulator/dram/timing.py, the reference engine's row bookkeeping) is derived from `TABLE`.

Ids are small ints so the Numba engine can index arrays with them. Names follow docs/device-model.md.
A new command is one `register` call (its facts, and any timing rule of its own in `CommandFacts.rules`)
made before the engines are imported; docs/aim-device.md 'Adding a command' gives the recipe.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum


class Cmd(IntEnum):
    # conventional GDDR6
    ACT = 0
    PRE = 1
    PREA = 2
    RD = 3
    WR = 4
    REFab = 5
    REFpb = 6
    # AiM
    ACT4 = 7
    PRE4 = 8
    ACT16 = 9
    MAC = 10
    MAC16 = 11
    AF16 = 12
    EWMUL16 = 13
    RDCP = 14
    WRCP = 15
    WRGB = 16
    RDMAC16 = 17
    RDAF16 = 18
    WRMAC16 = 19
    WRA16 = 20
    TMOD = 21
    SYNC = 22
    EOC = 23


# Which banks a command touches (for bank / bank-group scoped timing constraints).
TOUCH_NONE, TOUCH_BANK, TOUCH_GROUP, TOUCH_ALL = 0, 1, 2, 3
# Mode a command needs. AiM channels are in bank mode or register (MAC-register / global-buffer) mode;
# switching costs a TMOD and nMODCH cycles (docs/device-model.md 'Controller semantics').
MODE_ANY, MODE_BANK, MODE_REG = -1, 0, 1
# Column spacing family (docs/device-model.md 'Column spacing'): reads after reads, writes after writes;
# EWMUL16 only at bank-group scope, in both directions; AF16 none.
CCD_NONE, CCD_READ, CCD_WRITE, CCD_GROUP_BOTH = 0, 1, 2, 3
# External data bus direction (read-to-write / write-to-read turnarounds, burst occupancy).
BUS_NONE, BUS_TO_HOST, BUS_FROM_HOST = 0, 1, 2


@dataclass(frozen=True)
class Rule:
    """A timing rule that comes with a command, beyond those its facts imply: at least `cycles(timing)` tCK
    from `prev` to `next` (command names, one of them the command's own) where both touch a common bank
    ('bank'), bank group ('bankgroup') or always ('channel'). Both engines read it through the timing table
    (simulator/dram/timing.py); the checker enforces it with its own history (simulator/dram/checker.py)."""

    prev: str
    next: str
    scope: str
    cycles: Callable  # Timing -> int, e.g. lambda t: t.nCCDL
    name: str


@dataclass(frozen=True)
class EnergyTerms:
    """The per-operation energies (pJ) a command's energy is built from, derived from datasheet currents by
    simulator/energy.py (docs/energy.md): one bank's activate / precharge, one 32 B column read / write,
    one all-bank refresh, one bf16 MAC / multiply, one TMOD; `local` is the in-bank fraction of a column
    access, `lanes` the MACs per bank."""

    act: float
    pre: float
    rd: float
    wr: float
    ref: float
    mac: float
    mul: float
    tmod: float
    banks: int
    lanes: int
    local: float


@dataclass(frozen=True)
class Energy:
    """A command's energy recipe: the report component it counts towards (simulator/energy.py COMPONENTS)
    and its energy per channel that executes it, from `EnergyTerms`."""

    component: str
    pj: Callable  # EnergyTerms -> float


@dataclass(frozen=True)
class CommandFacts:
    touch: int
    mode: int = MODE_BANK
    opens: bool = False  # opens a row in the banks it touches
    precharges: bool = False  # a precharge: closes rows, starts nRP
    closes: bool = False  # leaves the banks it touches closed (precharges, WRA16's auto-precharge, REFab)
    needs_row: bool = False  # a column command that needs the addressed row open in every bank it touches
    ccd: int = CCD_NONE
    bus: int = BUS_NONE
    bank_read: bool = False  # reads the bank array: nRTP runs from it to a precharge
    rcd: str = ""  # the ACT -> this command timing (config field name), for commands that need a row
    rules: tuple[Rule, ...] = ()  # timing rules of its own (the built-in commands' are in timing.py)
    energy: Energy | None = None  # None: a command without a recipe cannot be costed (energy.py says so)


_ROWREAD = {"needs_row": True, "bank_read": True}
# Energy recipes (docs/energy.md; the arithmetic with the shipped numbers is there)
_ACT_PRE, _MAC, _COLUMN, _BUFFER, _REFRESH = "dram_act_pre", "dram_mac", "dram_column", "dram_buffer", "dram_refresh"
TABLE: dict[Cmd, CommandFacts] = {
    Cmd.ACT: CommandFacts(TOUCH_BANK, opens=True, energy=Energy(_ACT_PRE, lambda e: e.act)),
    Cmd.PRE: CommandFacts(TOUCH_BANK, precharges=True, closes=True, energy=Energy(_ACT_PRE, lambda e: e.pre)),
    Cmd.PREA: CommandFacts(TOUCH_ALL, precharges=True, closes=True,
                           energy=Energy(_ACT_PRE, lambda e: e.banks * e.pre)),
    Cmd.RD: CommandFacts(TOUCH_BANK, ccd=CCD_READ, bus=BUS_TO_HOST, rcd="nRCDRD", **_ROWREAD,
                         energy=Energy(_COLUMN, lambda e: e.rd)),
    Cmd.WR: CommandFacts(TOUCH_BANK, needs_row=True, ccd=CCD_WRITE, bus=BUS_FROM_HOST, rcd="nRCDWR",
                         energy=Energy(_COLUMN, lambda e: e.wr)),
    Cmd.REFab: CommandFacts(TOUCH_ALL, closes=True, energy=Energy(_REFRESH, lambda e: e.ref)),
    Cmd.REFpb: CommandFacts(TOUCH_BANK, energy=Energy(_REFRESH, lambda e: e.ref / e.banks)),
    Cmd.ACT4: CommandFacts(TOUCH_GROUP, opens=True, energy=Energy(_ACT_PRE, lambda e: 4 * e.act)),
    Cmd.PRE4: CommandFacts(TOUCH_GROUP, precharges=True, closes=True, energy=Energy(_ACT_PRE, lambda e: 4 * e.pre)),
    Cmd.ACT16: CommandFacts(TOUCH_ALL, opens=True, energy=Energy(_ACT_PRE, lambda e: e.banks * e.act)),
    Cmd.MAC: CommandFacts(TOUCH_BANK, ccd=CCD_READ, rcd="nRCDRDMAC", **_ROWREAD,
                          energy=Energy(_MAC, lambda e: e.local * e.rd + e.lanes * e.mac)),
    Cmd.MAC16: CommandFacts(TOUCH_ALL, ccd=CCD_READ, rcd="nRCDRDMAC", **_ROWREAD,
                            energy=Energy(_MAC, lambda e: e.banks * (e.local * e.rd + e.lanes * e.mac))),
    # AF16: the look-up-table row read in every bank
    Cmd.AF16: CommandFacts(TOUCH_ALL, needs_row=True, rcd="nRCDRDAF",
                           energy=Energy(_MAC, lambda e: e.banks * e.local * e.rd)),
    Cmd.EWMUL16: CommandFacts(TOUCH_ALL, needs_row=True, ccd=CCD_GROUP_BOTH, rcd="nRCDEWMUL",
                              energy=Energy(_MAC, lambda e: e.banks * (e.local * e.rd + e.lanes * e.mul))),
    # bank <-> global buffer: array and global data path
    Cmd.RDCP: CommandFacts(TOUCH_BANK, ccd=CCD_READ, rcd="nRCDRDCP", **_ROWREAD, energy=Energy(_COLUMN, lambda e: e.rd)),
    Cmd.WRCP: CommandFacts(TOUCH_BANK, needs_row=True, ccd=CCD_WRITE, rcd="nRCDWRCP",
                           energy=Energy(_COLUMN, lambda e: e.wr)),
    # external bus <-> buffer / accumulators: the global data path only
    Cmd.WRGB: CommandFacts(TOUCH_NONE, MODE_REG, ccd=CCD_WRITE, bus=BUS_FROM_HOST,
                           energy=Energy(_BUFFER, lambda e: (1 - e.local) * e.wr)),
    Cmd.RDMAC16: CommandFacts(TOUCH_ALL, MODE_REG, ccd=CCD_READ, bus=BUS_TO_HOST,
                              energy=Energy(_BUFFER, lambda e: (1 - e.local) * e.rd)),
    Cmd.RDAF16: CommandFacts(TOUCH_ALL, MODE_REG, ccd=CCD_READ, bus=BUS_TO_HOST,
                             energy=Energy(_BUFFER, lambda e: (1 - e.local) * e.rd)),
    Cmd.WRMAC16: CommandFacts(TOUCH_ALL, MODE_REG, ccd=CCD_WRITE, bus=BUS_FROM_HOST,
                              energy=Energy(_BUFFER, lambda e: (1 - e.local) * e.wr)),
    # WRA16: a write into every bank, the data over the global path once, then the auto-precharge
    Cmd.WRA16: CommandFacts(TOUCH_ALL, closes=True, needs_row=True, ccd=CCD_WRITE, bus=BUS_FROM_HOST, rcd="nRCDWR",
                            energy=Energy(_COLUMN, lambda e: e.banks * e.local * e.wr + (1 - e.local) * e.wr
                                          + e.banks * e.pre)),
    Cmd.TMOD: CommandFacts(TOUCH_NONE, MODE_ANY, energy=Energy(_BUFFER, lambda e: e.tmod)),
    Cmd.SYNC: CommandFacts(TOUCH_NONE, MODE_ANY, energy=Energy(_BUFFER, lambda e: 0.0)),  # no DRAM command
    Cmd.EOC: CommandFacts(TOUCH_NONE, MODE_ANY, energy=Energy(_BUFFER, lambda e: 0.0)),
}
assert set(TABLE) == set(Cmd)


def commands_where(**facts) -> tuple[Cmd, ...]:
    """The commands whose facts match every given value, in id order, e.g. commands_where(opens=True)."""
    return tuple(c for c in Cmd if all(getattr(TABLE[c], k) == v for k, v in facts.items()))


def _derive() -> None:
    """The command families other modules import, read off TABLE (again after `register`)."""
    global N_CMDS, CMD_NAMES, TOUCH, MODE, OPENS, CLOSES, NEEDS_OPEN_ROW, COLUMN, ROW_IN_LOG, ON_BUS
    N_CMDS = len(Cmd)
    CMD_NAMES = tuple(c.name for c in Cmd)
    TOUCH = {c: f.touch for c, f in TABLE.items()}
    MODE = {c: f.mode for c, f in TABLE.items()}
    OPENS = frozenset(commands_where(opens=True))
    CLOSES = frozenset(commands_where(closes=True))
    NEEDS_OPEN_ROW = frozenset(commands_where(needs_row=True))
    # Column commands: the row-access ones plus the register-mode ones.
    COLUMN = NEEDS_OPEN_ROW | frozenset(commands_where(mode=MODE_REG))
    # Commands whose log entry names a row: row openers and row-access column commands.
    ROW_IN_LOG = OPENS | NEEDS_OPEN_ROW
    # Commands that move one burst (32 B) over the channel's external data bus, the ASIC<->PIM link.
    ON_BUS = tuple(c for c in Cmd if TABLE[c].bus != BUS_NONE)


_derive()
# Modules that read the command set when they are imported (a command registered later would be missing
# from their arrays and families).
READERS = ("simulator.dram.timing", "simulator.dram.requests", "simulator.dram.fast", "simulator.dram.reference",
           "simulator.dram.checker", "simulator.dram.log", "simulator.energy")


def register(name: str, facts: CommandFacts) -> Cmd:
    """Add a command to the set: it gets the next id, `facts` become its TABLE row, and every family,
    array and rule the engines and the checker derive from the table includes it. Call it before any of
    `READERS` is imported (a plug-in module imported first, or a fresh process)."""
    global Cmd
    early = [m for m in READERS if m in sys.modules]
    if early:
        raise RuntimeError(f"register({name!r}) must run before {', '.join(early)} is imported: those modules read "
                           "the command set at import")
    if name in Cmd.__members__:
        raise ValueError(f"command {name!r} already exists")
    names = [r.prev for r in facts.rules] + [r.next for r in facts.rules]
    unknown = sorted({n for n in names if n != name and n not in Cmd.__members__})
    if unknown:
        raise ValueError(f"rules of {name!r} name unknown commands: {', '.join(unknown)}")
    old = Cmd
    Cmd = IntEnum("Cmd", [(c.name, c.value) for c in old] + [(name, len(old))])
    Cmd.__module__ = __name__
    rows = {Cmd(int(c)): f for c, f in TABLE.items()}  # the same dict object: importers keep seeing it
    TABLE.clear()
    TABLE.update(rows)
    TABLE[Cmd[name]] = facts
    _derive()
    return Cmd[name]

