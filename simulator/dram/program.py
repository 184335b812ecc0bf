"""The device's program type: an instruction stream as aligned int64 arrays, one entry per instruction.

One type for every source of instructions: an ISR trace read from text (simulator/dram/isa.py `parse_isr`,
which also fills `line` and `source`), the PIM-GPT mapping's tiles and the system engine's host DELAYs
(`from_rows`, `ProgramBuilder`, `delay`, `concat`). The instruction set is the AiM ISR set plus the
internal host instructions of simulator/dram/isa.py `Op`. Masks are channel-id bit masks (bit c = channel c;
at most 63 channels, so they fit int64).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from simulator.dram.isa import ROW_OPS, Op

FIELDS = ("op", "opsize", "mask", "bank", "row")  # the arrays an engine reads, in `FastEngine.run` order


@dataclass(frozen=True, eq=False)
class Program:
    op: np.ndarray  # int64, an `Op`
    opsize: np.ndarray  # int64, columns for column-count ops, cycles for DELAY, else 0
    mask: np.ndarray  # int64 channel-id bit mask (already translated from the ISR's reversed bit order)
    bank: np.ndarray  # int64
    row: np.ndarray  # int64 (AF: the look-up-table row chosen by the AF-mode CFR)
    line: np.ndarray | None = None  # int64, 1-based source line of each instruction (traces read from text)
    source: str = "<program>"  # where it came from, for messages

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

    def arrays(self) -> tuple[np.ndarray, ...]:
        """(op, opsize, mask, bank, row), the engines' arguments."""
        return self.op, self.opsize, self.mask, self.bank, self.row

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


_ROW_LUT = np.zeros(max(int(o) for o in Op) + 1, np.int64)  # 1 for the row-addressed instructions
_ROW_LUT[np.array(sorted(ROW_OPS), dtype=np.int64)] = 1


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


def from_rows(rows, line=None, source: str = "<program>") -> Program:
    """A program from (op, opsize, mask, bank, row) rows."""
    arr = np.array(rows, dtype=np.int64).reshape(-1, 5)
    return Program(*(np.ascontiguousarray(arr[:, i]) for i in range(5)), line=line, source=source)


def concat(programs: list[Program]) -> Program:
    """The programs one after the other (source lines are dropped: they name different files)."""
    if not programs:
        return from_rows([])
    return Program(*(np.concatenate([getattr(p, f) for p in programs]) for f in FIELDS))
