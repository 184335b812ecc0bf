"""The device floor of a mapping: a closed-form lower bound on the PIM time of its vector-matrix products.

Per channel (every MAC_ABK and RD_MAC of the PIM-GPT mapping goes to all channels alike), for one token:

    floor = nCCD * M  +  (nRP + nRCDRDMAC) * R  +  (RDMAC16 completion + 1) * N  +  nMODCH * (2N - 1) * s

    M  MAC columns (the opsize of every MAC_ABK: one MAC16 each)
    R  row opens: MAC_ABK instructions whose row differs from the previous MAC_ABK's (the first one counts)
    N  read-outs (RD_MAC instructions)
    s  1 if the device needs a mode switch around each read-out (organisation.readout_mode_switch), else 0
    nCCD = max(nCCDS, nCCDL)

Why each term is serial time on a channel (docs/device-model.md, 'Controller semantics'): MAC16s are at
least nCCD apart, and a read-out's RDMAC16 at least nCCD after the last MAC16; a new row needs PREA -> ACT16
(nRP) -> first MAC16 (nRCDRDMAC), all after the old row's last MAC16 and with no MAC16 in between; RD_MAC
blocks until its completion, and the next instruction arrives one cycle later; with mode switches, RDMAC16
issues nMODCH after a TMOD that follows the last MAC16, and the next bank command nMODCH after a TMOD that
follows the read-out (the token's last read-out may switch back in the next token: hence 2N - 1). These
intervals do not overlap, so the sum is a lower bound. Left out (so the bound stays a bound): nRTP, GB
writes, KV appends, embedding reads, ASIC work, refresh and ISR delivery.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from simulator.config.schema import ArchConfig
from simulator.mapping.tiles import PimTile
from simulator.system.program import Program
from simulator.trace.isr import Op


def floor_terms(programs: Iterable[Program]) -> tuple[int, int, int]:
    """(M, R, N) of a token's device programs, in issue order."""
    macs = rows_opened = readouts = 0
    last_row = None
    for p in programs:
        is_mac = p.op == Op.MAC_ABK
        macs += int(p.opsize[is_mac].sum())
        readouts += int(np.count_nonzero(p.op == Op.RD_MAC))
        rows = p.row[is_mac]
        if len(rows):
            rows_opened += int(np.count_nonzero(rows[1:] != rows[:-1])) + int(rows[0] != last_row)
            last_row = rows[-1]
    return macs, rows_opened, readouts


def floor_cycles(arch: ArchConfig, programs: Iterable[Program]) -> int:
    """The floor (module docstring) in DRAM command-clock cycles."""
    t, s = arch.timing, int(arch.organisation.readout_mode_switch)
    m, r, n = floor_terms(programs)
    return (max(t.nCCDS, t.nCCDL) * m + (t.nRP + t.nRCDRDMAC) * r + (arch.completion.RDMAC16 + 1) * n
            + t.nMODCH * max(0, 2 * n - 1) * s)


def token_floor_cycles(mapping, ctx: int) -> int:
    """Floor of one token of a PimGptMapping at context `ctx` (its PIM tiles' device programs, in order)."""
    return floor_cycles(mapping.arch, (n.program for n in mapping.token_graph(ctx) if isinstance(n, PimTile)))
