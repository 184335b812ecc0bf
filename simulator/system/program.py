"""Programs: the instruction streams a mapping hands to the device, as aligned int arrays.

The instruction set is the AiM ISR set (simulator/trace/isr.py `Op`), issued by the controller ASIC, plus
the internal host `DELAY` (ASIC compute time). Masks are channel-id bit masks (bit c = channel c).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from simulator.trace.isr import Op


@dataclass(frozen=True, eq=False)
class Program:
    op: np.ndarray
    opsize: np.ndarray
    mask: np.ndarray
    bank: np.ndarray
    row: np.ndarray

    def __len__(self) -> int:
        return int(self.op.shape[0])

    @property
    def channels(self) -> int:
        """Union of the channel masks of the instructions (computed once per program)."""
        m = self.__dict__.get("_channels")
        if m is None:
            m = int(np.bitwise_or.reduce(self.mask)) if len(self.mask) else 0
            object.__setattr__(self, "_channels", m)
        return m

    def shifted(self, row_offset: int) -> Program:
        """The same program on a region `row_offset` rows further (only row-addressed instructions move)."""
        moves = self.__dict__.get("_moves")
        if moves is None:  # computed once per program: shifted copies are made for every layer and token
            moves = _ROW_LUT[self.op]
            object.__setattr__(self, "_moves", moves)
        out = Program(self.op, self.opsize, self.mask, self.bank, self.row + moves * row_offset)
        object.__setattr__(out, "_channels", self.channels)
        return out

    def shifted_many(self, row_offsets: np.ndarray) -> list[Program]:
        """[self.shifted(o) for o in row_offsets], the rows computed in one array operation."""
        moves = self.__dict__.get("_moves")
        if moves is None:
            moves = _ROW_LUT[self.op]
            object.__setattr__(self, "_moves", moves)
        rows = self.row[None, :] + moves[None, :] * np.asarray(row_offsets, np.int64)[:, None]
        out = []
        for r in rows:  # each row of the C-ordered block is a contiguous view
            p = Program(self.op, self.opsize, self.mask, self.bank, r)
            object.__setattr__(p, "_channels", self.channels)
            out.append(p)
        return out


_ROW_OPS = np.array([Op.MAC_ABK, Op.MAC_SBK, Op.EWMUL, Op.COPY_BKGB, Op.COPY_GBBK, Op.COPY_GBBK_AB, Op.WR_ABK, Op.R_MEM,
                     Op.W_MEM],
                    dtype=np.int64)
_ROW_LUT = np.zeros(max(int(o) for o in Op) + 1, np.int64)  # 1 for the row-addressed instructions
_ROW_LUT[_ROW_OPS] = 1


@dataclass
class ProgramBuilder:
    rows: list[tuple[int, int, int, int, int]] = field(default_factory=list)

    def add(self, op: Op, opsize: int, mask: int, bank: int = 0, row: int = 0) -> None:
        self.rows.append((int(op), int(opsize), int(mask), int(bank), int(row)))

    def build(self) -> Program:
        return from_rows(self.rows)


@lru_cache(maxsize=4096)
def delay(cycles: int) -> Program:
    """A host DELAY of `cycles` (ASIC compute between device instructions)."""
    return from_rows([(Op.DELAY, cycles, 0, 0, 0)])


def from_rows(rows) -> Program:
    arr = np.array(rows, dtype=np.int64).reshape(-1, 5)
    return Program(*(np.ascontiguousarray(arr[:, i]) for i in range(5)))


def concat(programs: list[Program]) -> Program:
    if not programs:
        return from_rows([])
    return Program(*(np.concatenate([getattr(p, f) for p in programs]) for f in ("op", "opsize", "mask", "bank",
                                                                                "row")))
