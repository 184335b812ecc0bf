"""DRAM and AiM command set: ids, the mode each command needs, and which banks it touches.

Ids are small ints so the Numba engine can index tables with them. Names follow aim-isa.md.
"""

from __future__ import annotations

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


N_CMDS = len(Cmd)
CMD_NAMES = tuple(c.name for c in Cmd)

# Which banks a command touches (for bank / bank-group scoped timing constraints).
TOUCH_NONE, TOUCH_BANK, TOUCH_GROUP, TOUCH_ALL = 0, 1, 2, 3
TOUCH = {c: TOUCH_NONE for c in Cmd}
TOUCH.update({c: TOUCH_BANK for c in (Cmd.ACT, Cmd.PRE, Cmd.RD, Cmd.WR, Cmd.REFpb, Cmd.MAC, Cmd.RDCP, Cmd.WRCP)})
TOUCH.update({c: TOUCH_GROUP for c in (Cmd.ACT4, Cmd.PRE4)})
TOUCH.update(
    {
        c: TOUCH_ALL
        for c in (Cmd.PREA, Cmd.REFab, Cmd.ACT16, Cmd.MAC16, Cmd.AF16, Cmd.EWMUL16, Cmd.RDMAC16, Cmd.RDAF16,
                  Cmd.WRMAC16, Cmd.WRA16)
    }
)

# Mode a command needs. AiM channels are in bank mode or register (MAC-register / global-buffer) mode;
# switching costs a TMOD and nMODCH cycles (aim-isa.md rule 5).
MODE_ANY, MODE_BANK, MODE_REG = -1, 0, 1
MODE = {c: MODE_BANK for c in Cmd}
MODE.update({c: MODE_REG for c in (Cmd.WRGB, Cmd.WRMAC16, Cmd.RDMAC16, Cmd.RDAF16)})
MODE.update({c: MODE_ANY for c in (Cmd.TMOD, Cmd.SYNC, Cmd.EOC)})

OPENS = frozenset({Cmd.ACT, Cmd.ACT4, Cmd.ACT16})
CLOSES = frozenset({Cmd.PRE, Cmd.PRE4, Cmd.PREA, Cmd.WRA16})
COLUMN = frozenset(
    {Cmd.RD, Cmd.WR, Cmd.MAC, Cmd.MAC16, Cmd.AF16, Cmd.EWMUL16, Cmd.RDCP, Cmd.WRCP, Cmd.WRGB, Cmd.RDMAC16,
     Cmd.RDAF16, Cmd.WRMAC16, Cmd.WRA16}
)
# Column commands that need an open row in the banks they touch.
NEEDS_OPEN_ROW = frozenset({Cmd.RD, Cmd.WR, Cmd.MAC, Cmd.MAC16, Cmd.AF16, Cmd.EWMUL16, Cmd.RDCP, Cmd.WRCP, Cmd.WRA16})


def bank_mask(cmd: int, bank: int, banks: int, banks_per_group: int) -> int:
    """Bit mask of the banks `cmd` touches when addressed at `bank` (bank-group commands: its group)."""
    kind = TOUCH[Cmd(cmd)]
    if kind == TOUCH_NONE:
        return 0
    if kind == TOUCH_ALL:
        return (1 << banks) - 1
    if kind == TOUCH_GROUP:
        g = bank // banks_per_group
        return ((1 << banks_per_group) - 1) << (g * banks_per_group)
    return 1 << bank
