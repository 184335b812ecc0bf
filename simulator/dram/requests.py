"""What each ISR instruction asks of a channel: request kinds and the command each request ends with.

Shared by both engines (it is the controller's decode table, docs/aim-device.md 'ISR format'); the protocol checker
does not use it.
"""

from __future__ import annotations

import numpy as np

from simulator.dram.commands import MODE, MODE_ANY, Cmd
from simulator.dram.isa import COLUMN_COUNT_OPS, Op

# Request kinds: how the controller reaches the request's final (column) command.
K_NONE = 0  # no DRAM request (host-side: GPR, CFR, EWADD)
K_ALLBANK = 1  # PREA if another row is open anywhere, ACT16 if any bank is closed, then the command
#               (on the request's own bank if the command is a single-bank one: COPY_GBBK_AB's WRCP)
K_SINGLE = 2  # PRE / ACT on the request's own bank, then the command
K_REG = 3  # register-mode command, no row needed
K_EOC = 4
K_SYNC = 5

# op -> (request kind, final command, conventional?, blocking?); BLOCKING indexes the last
BLOCKING = 3
DECODE = {
    Op.MAC_ABK: (K_ALLBANK, Cmd.MAC16, False, False),
    Op.EWMUL: (K_ALLBANK, Cmd.EWMUL16, False, False),
    Op.AF: (K_ALLBANK, Cmd.AF16, False, False),
    Op.WR_ABK: (K_ALLBANK, Cmd.WRA16, False, False),
    Op.MAC_SBK: (K_SINGLE, Cmd.MAC, False, False),
    Op.COPY_BKGB: (K_SINGLE, Cmd.RDCP, False, False),
    Op.COPY_GBBK: (K_SINGLE, Cmd.WRCP, False, False),
    Op.COPY_GBBK_AB: (K_ALLBANK, Cmd.WRCP, False, False),
    Op.WR_GB: (K_REG, Cmd.WRGB, False, False),
    Op.WR_BIAS: (K_REG, Cmd.WRMAC16, False, False),
    Op.RD_MAC: (K_REG, Cmd.RDMAC16, False, True),
    Op.RD_AF: (K_REG, Cmd.RDAF16, False, True),
    Op.WR_SBK: (K_SINGLE, Cmd.WR, True, False),
    Op.RD_SBK: (K_SINGLE, Cmd.RD, True, False),
    Op.W_MEM: (K_SINGLE, Cmd.WR, True, False),
    Op.R_MEM: (K_SINGLE, Cmd.RD, True, False),
    Op.EOC: (K_EOC, Cmd.EOC, False, False),
    Op.SYNC: (K_SYNC, Cmd.SYNC, False, False),
    Op.EWADD: (K_NONE, Cmd.EOC, False, False),
    Op.W_GPR: (K_NONE, Cmd.EOC, False, False),
    Op.R_GPR: (K_NONE, Cmd.EOC, False, False),
    Op.W_CFR: (K_NONE, Cmd.EOC, False, False),
    Op.DELAY: (K_NONE, Cmd.EOC, False, False),
}


def command_modes(readout_mode_switch: bool = True) -> dict[Cmd, int]:
    """Mode each command needs on this device: `commands.MODE`, except that a device without read-out mode
    switches (`organisation.readout_mode_switch: false`) reads RDMAC16 / RDAF16 in either mode."""
    modes = dict(MODE)
    if not readout_mode_switch:
        modes[Cmd.RDMAC16] = modes[Cmd.RDAF16] = MODE_ANY
    return modes


def requests_per_channel(op: int, opsize: int) -> int:
    """One request per 32 B column for column-count ops, else one (docs/aim-device.md rule 3)."""
    if DECODE[Op(op)][0] == K_NONE:
        return 0
    return int(opsize) if Op(op) in COLUMN_COUNT_OPS else 1


def decode_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """DECODE as int arrays indexed by op (for Numba): kind, command, conventional, blocking, column-count."""
    n = len(Op)
    kind, cmd, conv, block, colcount = (np.zeros(n, np.int64) for _ in range(5))
    for op, (k, c, cv, b) in DECODE.items():
        kind[op], cmd[op], conv[op], block[op] = k, int(c), int(cv), int(b)
        colcount[op] = int(op in COLUMN_COUNT_OPS)
    return kind, cmd, conv, block, colcount
