"""The AiM instruction set (ISR) of the device and its text reader.

ISR traces are the plain-text format of SK hynix's AiM simulator and CENT (docs/traces.md).

One instruction per line, `#` starts a comment, numbers decimal or 0x-hex, the trace ends with `AiM EOC`.
The result is a compact `Program` (simulator/dram/program.py) of integer arrays, so engines never touch
text. Every problem is a one-line `PimsimError` naming the file, the line number and the field.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulator.errors import PimsimError

if TYPE_CHECKING:  # the reader needs only .channels / .banks / .rows / .columns_per_row
    from simulator.config.schema import Organisation
    from simulator.dram.program import Program


class Op(IntEnum):
    MAC_ABK = 0
    MAC_SBK = 1
    WR_GB = 2
    WR_BIAS = 3
    RD_MAC = 4
    AF = 5
    RD_AF = 6
    EWMUL = 7
    EWADD = 8
    COPY_BKGB = 9
    COPY_GBBK = 10
    WR_ABK = 11
    WR_SBK = 12
    RD_SBK = 13
    SYNC = 14
    EOC = 15
    R_MEM = 16
    W_MEM = 17
    W_GPR = 18
    R_GPR = 19
    W_CFR = 20
    DELAY = 21  # internal, not in the text format: the host waits `opsize` cycles (e.g. ASIC compute)
    # internal, not in the text format: GB -> bank copy (WRCP on `bank`) into a row opened in ALL banks
    # (PREA / ACT16 as for an all-bank command), so copies into the same row of other banks are row hits.
    # AiM's ISR has no such instruction; PIM-GPT's controller issues DRAM commands itself (docs/device-model.md)
    COPY_GBBK_AB = 22


# CFR register that selects the activation-function look-up-table row (the AiM CFR map is not public;
# this is our convention, documented in docs/device-model.md).
AF_MODE_CFR = 0

# name -> (op, argument names). 'opsize' is a count of 32 B columns; 'chmask' a channel bit mask.
_AIM_FORMS = {
    "MAC_ABK": (Op.MAC_ABK, ("opsize", "chmask", "row")),
    "MAC_SBK": (Op.MAC_SBK, ("opsize", "chmask", "bank", "row")),
    "WR_GB": (Op.WR_GB, ("opsize", "gpr", "chmask")),
    "WR_BIAS": (Op.WR_BIAS, ("gpr", "chmask")),
    "RD_MAC": (Op.RD_MAC, ("gpr", "chmask")),
    "AF": (Op.AF, ("chmask",)),
    "RD_AF": (Op.RD_AF, ("gpr", "chmask")),
    "EWMUL": (Op.EWMUL, ("opsize", "chmask", "row")),
    "EWADD": (Op.EWADD, ("opsize", "gpr", "gpr2")),
    "COPY_BKGB": (Op.COPY_BKGB, ("opsize", "chmask", "bank", "row")),
    "COPY_GBBK": (Op.COPY_GBBK, ("opsize", "chmask", "bank", "row")),
    "WR_ABK": (Op.WR_ABK, ("gpr", "chmask", "row")),
    "WR_SBK": (Op.WR_SBK, ("gpr", "chmask", "bank", "row")),
    "RD_SBK": (Op.RD_SBK, ("gpr", "chmask", "bank", "row")),
    "SYNC": (Op.SYNC, ()),
    "EOC": (Op.EOC, ()),
}
_HOST_FORMS = {
    ("R", "MEM"): (Op.R_MEM, ("channel", "bank", "row")),
    ("W", "MEM"): (Op.W_MEM, ("channel", "bank", "row")),
    ("W", "GPR"): (Op.W_GPR, ("gpr",)),
    ("R", "GPR"): (Op.R_GPR, ("gpr",)),
    ("W", "CFR"): (Op.W_CFR, ("cfr", "value")),
}
COLUMN_COUNT_OPS = frozenset({Op.MAC_ABK, Op.MAC_SBK, Op.WR_GB, Op.EWMUL, Op.COPY_BKGB, Op.COPY_GBBK,
                              Op.COPY_GBBK_AB})
# Instructions that address a row (a program moved to another region shifts only these rows).
ROW_OPS = frozenset({Op.MAC_ABK, Op.MAC_SBK, Op.EWMUL, Op.COPY_BKGB, Op.COPY_GBBK, Op.COPY_GBBK_AB, Op.WR_ABK,
                     Op.R_MEM, Op.W_MEM})


def __getattr__(name: str):
    """`IsrProgram` is the old name of `simulator.dram.program.Program` (imported lazily: program.py imports
    this module)."""
    if name == "IsrProgram":
        from simulator.dram.program import Program

        return Program
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# A GPR operand is a host-side buffer address in 32-byte units (the data moves from / to byte GPR x 32); the
# device's timing does not depend on it. Its only bound is the 64-bit signed byte address the host uses
# (docs/aim-device.md "GPR operands").
GPR_MAX = (2**63 - 1) // 32


def _number(tok: str, where: str, field: str) -> int:
    try:
        low = tok.lower()
        return int(low, 16) if low.startswith("0x") else int(low, 10)
    except ValueError:
        raise PimsimError(f"{where}: {field}: expected a decimal or 0x-hex number, got {tok!r}") from None


def parse_isr(text: str, org: "Organisation", source: str = "<trace>") -> Program:
    n_ch, n_banks, n_rows, n_cols = org.channels, org.banks, org.rows, org.columns_per_row
    full_mask = (1 << n_ch) - 1
    ops: list[tuple[int, int, int, int, int, int]] = []
    af_row = n_rows  # private LUT rows live past the addressable rows (one per AF mode)
    saw_eoc = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        body = raw.split("#", 1)[0].strip()
        if not body:
            continue
        where = f"{source}:{lineno}"
        if saw_eoc:
            raise PimsimError(f"{where}: instruction after 'AiM EOC' (EOC must be the last instruction)")
        toks = body.split()
        if toks[0] == "AiM":
            if len(toks) < 2:
                raise PimsimError(f"{where}: 'AiM' without an instruction name")
            form = _AIM_FORMS.get(toks[1])
            if form is None:
                raise PimsimError(f"{where}: unknown AiM instruction {toks[1]!r} (known: {', '.join(_AIM_FORMS)})")
            name = f"AiM {toks[1]}"
            args = toks[2:]
        else:
            form = _HOST_FORMS.get(tuple(toks[:2]))
            if form is None:
                raise PimsimError(f"{where}: unknown instruction {' '.join(toks[:2])!r} (expected 'AiM ...', "
                                  "'R MEM', 'W MEM', 'R GPR', 'W GPR' or 'W CFR')")
            name = " ".join(toks[:2])
            args = toks[2:]
        op, fields = form
        if len(args) != len(fields):
            raise PimsimError(f"{where}: {name} takes {len(fields)} argument(s) "
                              f"({' '.join('<' + f + '>' for f in fields) or 'none'}), got {len(args)}")
        vals = {f: _number(a, where, f) for f, a in zip(fields, args)}
        opsize = vals.get("opsize", 0)
        if op in COLUMN_COUNT_OPS and not 1 <= opsize <= n_cols:
            raise PimsimError(f"{where}: opsize: must be a column count from 1 to {n_cols}, got {opsize}")
        if op == Op.EWADD and opsize < 1:
            raise PimsimError(f"{where}: opsize: must be at least 1, got {opsize}")
        row = vals.get("row", 0)
        if not 0 <= row < n_rows:
            raise PimsimError(f"{where}: row: must be in 0..{n_rows - 1}, got {row}")
        bank = vals.get("bank", 0)
        if not 0 <= bank < n_banks:
            raise PimsimError(f"{where}: bank: must be in 0..{n_banks - 1}, got {bank}")
        for f in ("gpr", "gpr2"):
            if f in vals and not 0 <= vals[f] <= GPR_MAX:
                raise PimsimError(f"{where}: {f}: must be a host buffer address in 32-byte units, "
                                  f"0..{GPR_MAX} (docs/aim-device.md 'GPR operands'), got {vals[f]}")
        mask = 0
        if "chmask" in vals:
            isr_mask = vals["chmask"]
            if isr_mask <= 0 or isr_mask > full_mask:
                raise PimsimError(f"{where}: chmask: must select 1..{n_ch} of the {n_ch} channels "
                                  f"(1..{full_mask:#x}), got {isr_mask:#x}")
            for i in range(n_ch):  # ISR bit i selects channel (channels - 1 - i)
                if isr_mask >> i & 1:
                    mask |= 1 << (n_ch - 1 - i)
            if op == Op.WR_ABK and bin(mask).count("1") != 1:
                raise PimsimError(f"{where}: chmask: WR_ABK targets exactly one channel, got {isr_mask:#x}")
        if "channel" in vals:
            ch = vals["channel"]
            if not 0 <= ch < n_ch:
                raise PimsimError(f"{where}: channel: must be in 0..{n_ch - 1}, got {ch}")
            mask = 1 << ch
        if op in (Op.SYNC, Op.EOC):
            mask = full_mask
        if op == Op.W_CFR:
            if vals["value"] < 0:
                raise PimsimError(f"{where}: value: must be non-negative, got {vals['value']}")
            if vals["cfr"] == AF_MODE_CFR:
                af_row = n_rows + vals["value"]
        if op == Op.AF:
            row = af_row
        ops.append((int(op), opsize, mask, bank, row, lineno))
        saw_eoc = op == Op.EOC
    if not saw_eoc:
        raise PimsimError(f"{source}: missing 'AiM EOC' at the end of the trace (add it as the last line)")
    from simulator.dram.program import from_rows  # program.py imports this module

    arr = np.array(ops, dtype=np.int64).reshape(-1, 6)
    return from_rows(arr[:, :5], line=arr[:, 5].copy(), source=source)


def read_isr(path: str | Path, org: "Organisation") -> Program:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PimsimError(f"{p}: ISR trace not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PimsimError(f"{p}: cannot read ISR trace ({exc.__class__.__name__})") from None
    return parse_isr(text, org, source=str(p))
