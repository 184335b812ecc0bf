"""Where a GEMV's weights live: the PIM-GPT placement of W[n_out, n_in] over channels x banks x rows.

One function decides every address; the timing mapping, the capacity check and the functional
(bit-exact) GEMV all call it, so they cannot disagree.

Placement (docs/pim-gpt-design.md, "Mapping and dataflow"):
- Each output neuron's weights go to one bank; neuron n sits in slot n // (C*B), channel (n % (C*B)) // B,
  bank n % B, so consecutive neurons spread over all banks of all channels and every MAC unit works at once.
- The fan-in is cut into global-buffer passes of at most `gb_elems` inputs (the GB holds one chunk of x);
  a neuron's weights for pass p form one *segment* of ceil(len_p / col_elems) 32 B columns.
- Segments are laid out pass by pass, slot by slot, one after another in the bank's rows; with
  `packed=True` a segment goes into the current row whenever it fits (short fan-ins share a row, so an
  opened row is used fully), otherwise it starts a new row. `packed=False` is the AiM/CENT-style layout:
  every segment starts a new row.
- All banks of all channels share the same segment sequence (lockstep all-bank MACs): bank column
  seg_col[s] + j is multiplied with GB column seg_gb_col[s] + j. Addressing the GB column independently of
  the bank column is our [D] assumption for PIM-GPT (AiM's own MAC_ABK always starts both at column 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class GemvLayout:
    n_out: int
    n_in: int
    channels: int
    banks: int
    row_elems: int  # weights per bank row (1024 bf16 in a 2 KB row)
    col_elems: int  # weights per 32 B column (16 bf16, 32 int8, 64 int4)
    gb_elems: int  # inputs the global buffer holds in one pass
    packed: bool
    pass_k0: np.ndarray
    pass_k1: np.ndarray
    seg_pass: np.ndarray
    seg_slot: np.ndarray
    seg_row: np.ndarray
    seg_col: np.ndarray
    seg_ncols: np.ndarray
    seg_gb_col: np.ndarray
    seg_k0: np.ndarray
    seg_neuron: np.ndarray  # [channels, banks, n_segments], -1 where idle

    @property
    def n_segments(self) -> int:
        return int(self.seg_row.shape[0])

    @property
    def n_passes(self) -> int:
        return int(self.pass_k0.shape[0])

    @property
    def n_slots(self) -> int:
        return -(-self.n_out // (self.channels * self.banks))

    @property
    def rows_used(self) -> int:
        """Rows per bank this matrix occupies (the same in every bank)."""
        return int(self.seg_row.max()) + 1 if self.n_segments else 0

    @property
    def cols_per_row(self) -> int:
        return self.row_elems // self.col_elems

    def segment_index(self, pass_: int, slot: int) -> int:
        return pass_ * self.n_slots + slot

    def weight_address(self, n: int, k: int) -> tuple[int, int, int, int, int]:
        """(channel, bank, row, column, lane) of weight W[n, k]; row is relative to the matrix's base row."""
        if not (0 <= n < self.n_out and 0 <= k < self.n_in):
            raise IndexError(f"weight ({n}, {k}) outside a {self.n_out}x{self.n_in} matrix")
        per_slot = self.channels * self.banks
        slot, r = divmod(n, per_slot)
        ch, bank = divmod(r, self.banks)
        p = k // self.gb_elems
        s = self.segment_index(p, slot)
        kk = k - int(self.pass_k0[p])
        return ch, bank, int(self.seg_row[s]), int(self.seg_col[s]) + kk // self.col_elems, kk % self.col_elems


@lru_cache(maxsize=256)
def gemv_layout(n_out: int, n_in: int, channels: int = 8, banks: int = 16, row_elems: int = 1024,
                col_elems: int = 16, gb_elems: int = 1024, packed: bool = True) -> GemvLayout:
    if min(n_out, n_in, channels, banks, row_elems, col_elems, gb_elems) <= 0:
        raise ValueError("gemv_layout: every size must be positive")
    if row_elems % col_elems or gb_elems % col_elems:
        raise ValueError("gemv_layout: row and global-buffer sizes must be whole columns")
    per_slot = channels * banks
    n_slots = -(-n_out // per_slot)
    k0 = np.arange(0, n_in, gb_elems, dtype=np.int64)
    k1 = np.minimum(k0 + gb_elems, n_in)
    cols_per_row = row_elems // col_elems
    seg = []
    row, col = 0, 0
    for p in range(k0.shape[0]):
        ncols = -(-int(k1[p] - k0[p]) // col_elems)
        for q in range(n_slots):
            if col and (not packed or col + ncols > cols_per_row):
                row, col = row + 1, 0
            seg.append((p, q, row, col, ncols, 0, int(k0[p])))
            col += ncols
            if col >= cols_per_row:
                row, col = row + 1, 0
    arr = np.array(seg, dtype=np.int64).reshape(-1, 7)
    neuron = arr[:, 1][None, None, :] * per_slot + (np.arange(channels)[:, None, None] * banks
                                                    + np.arange(banks)[None, :, None])
    neuron = np.where(neuron < n_out, neuron, -1)
    out = GemvLayout(n_out, n_in, channels, banks, row_elems, col_elems, gb_elems, packed, k0, k1,
                     *(arr[:, i].copy() for i in range(7)), neuron)
    for a in (out.pass_k0, out.pass_k1, out.seg_pass, out.seg_slot, out.seg_row, out.seg_col, out.seg_ncols,
              out.seg_gb_col, out.seg_k0, out.seg_neuron):
        a.setflags(write=False)
    return out
