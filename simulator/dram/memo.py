"""Exact memo of `FastEngine.run` calls: a program that starts from an equivalent device state ends in an
equivalent state, so its effect is looked up instead of simulated again.

Equivalence is the one the fast engine already uses to merge channel classes (simulator/dram/fast.py
`_same`): every time value is clamped to the cycle X in which the program's first instruction reaches the
channels (a constraint that expired before X cannot bind anything that issues at or after X), then taken
relative to X; open rows, mode, the last request kind, the refresh phase (relative to X) and the queue's
recent departures (relative, oldest first) are compared as they are. The key is the program's bytes plus
that canonical state; the value is the end state (relative to X, clamped to the end cycle), the per-channel
statistics added, and the per-instruction record (relative to X).

Only calls that start and end with every channel in one class, without a command log, are memoised; the
rest run as usual. The PIM-GPT system runs the same weight tiles from the same relative state token after
token, which is where the hits come from. tests/test_memo.py proves memo on == memo off (cycles, counts,
open-bank cycles, per-instruction records) on full generations.
"""

from __future__ import annotations

import numpy as np

# class-0 time arrays: (name, offset added before clamping to X: a value v constrains cycles >= v + offset)
_TIMES = (("st_bank", 0), ("st_group", 0), ("st_chan", 0), ("last_issue", 1), ("last_done", 1),
          ("last_leave", 1))
_RAW = ("open_row", "mode", "last_conv")
_NO_REFRESH = np.int64(1) << 61


class RunMemo:
    def __init__(self, depth: int, faw: int, max_entries: int = 10_000):
        self.depth, self.faw, self.max_entries = depth, faw, max_entries
        self.table: dict[bytes, tuple] = {}
        self.hits = self.misses = 0

    # -- canonical forms ------------------------------------------------------------------------------
    def _ordered(self, ring: np.ndarray, n: int, size: int) -> np.ndarray:
        """The last `size` entries of a ring written at position i % size for the i-th entry, oldest first;
        entries never written read as very old."""
        idx = n - size + np.arange(size)
        out = ring[idx % size].copy()
        out[idx < 0] = -(np.int64(1) << 60)
        return out

    def _state(self, a: dict, x: int) -> list[np.ndarray]:
        parts = [np.maximum(a[name][0] + off, x) - x for name, off in _TIMES]
        parts += [a[name][0:1] if a[name].ndim == 1 else a[name][0] for name in _RAW]
        due = int(a["ref_due"][0])
        parts.append(np.array([due - x if due < _NO_REFRESH else -1, min(int(a["nreq"][0]), self.depth)]))
        parts.append(np.maximum(self._ordered(a["ring"][0], int(a["nreq"][0]), self.depth) + 1, x) - x)
        if self.faw:
            acts = self._ordered(a["acts"][0], int(a["n_acts"][0]), 4)
            parts.append(np.maximum(acts + self.faw, x) - x)
        return parts

    def key(self, a: dict, x: int, prog: tuple) -> bytes:
        return b"".join(np.ascontiguousarray(p, np.int64).tobytes() for p in (*prog, *self._state(a, x)))

    # -- memo -----------------------------------------------------------------------------------------
    @staticmethod
    def start(a: dict, x: int) -> None:
        """Close the open-row interval at X (bank_open_cycles is a sum of intervals: splitting one at X
        changes nothing) so the statistics a program adds do not depend on when the row was opened."""
        if (a["open_row"][0] != -1).any():
            a["open_cycles"][0] += x - a["open_since"][0]
            a["open_since"][0] = x

    def snapshot(self, a: dict) -> tuple:
        return (a["counts"][0].copy(), int(a["open_cycles"][0]), a["chan_counts"].copy(), a["chan_open"].copy(),
                int(a["nreq"][0]), int(a["n_acts"][0]))

    def store(self, key: bytes, a: dict, x0: int, before: tuple, end: int, rec: np.ndarray,
              finals: np.ndarray) -> None:
        """`finals`: per instruction, how many final commands it issues (its record's issue-cycle sum is
        kept relative to X, so X times that count comes off)."""
        if len(self.table) >= self.max_entries:
            return
        x1 = int(a["scal"][0])
        counts0, open0, chan_counts0, chan_open0, nreq0, nacts0 = before
        times = {name: np.maximum(a[name][0], x1 - off) - x0 for name, off in _TIMES}
        ring = np.maximum(self._ordered(a["ring"][0], int(a["nreq"][0]), self.depth), x1 - 1) - x0
        acts = np.maximum(self._ordered(a["acts"][0], int(a["n_acts"][0]), 4), x1 - self.faw) - x0
        due = int(a["ref_due"][0])
        rel = rec.copy()
        rel[:, :2] -= x0
        rel[:, 2:4] = np.where(rec[:, 2:4] >= 0, rec[:, 2:4] - x0, -1)
        rel[:, 4] -= x0 * finals
        self.table[key] = (
            x1 - x0, end - x0 if end >= 0 else -1, times, {n: a[n][0].copy() for n in _RAW},
            due - x0 if due < _NO_REFRESH else None, ring, int(a["nreq"][0]) - nreq0, acts,
            int(a["n_acts"][0]) - nacts0, int(a["open_since"][0]) - x0,
            a["counts"][0] - counts0, int(a["open_cycles"][0]) - open0, a["chan_counts"] - chan_counts0,
            a["chan_open"] - chan_open0, rel, finals,
        )

    def apply(self, entry: tuple, a: dict, x0: int, rec: np.ndarray) -> int:
        (dx, end, times, raw, due, ring, dreq, acts, dacts, since, dcounts, dopen, dchan_counts, dchan_open,
         rel, finals) = entry
        for name, v in times.items():
            a[name][0] = v + x0
        for name, v in raw.items():
            a[name][0] = v
        if due is not None:
            a["ref_due"][0] = due + x0
        nreq = int(a["nreq"][0]) + dreq
        a["nreq"][0] = nreq
        a["ring"][0][(nreq - self.depth + np.arange(self.depth)) % self.depth] = ring + x0
        n_acts = int(a["n_acts"][0]) + dacts
        a["n_acts"][0] = n_acts
        a["acts"][0][(n_acts - 4 + np.arange(4)) % 4] = acts + x0
        a["open_since"][0] = since + x0
        a["counts"][0] += dcounts
        a["open_cycles"][0] += dopen
        a["chan_counts"] += dchan_counts
        a["chan_open"] += dchan_open
        a["scal"][0] = x0 + dx
        if rec.shape[0]:
            rec[:, :2] = rel[:, :2] + x0
            rec[:, 2:4] = np.where(rel[:, 2:4] >= 0, rel[:, 2:4] + x0, -1)
            rec[:, 4] = rel[:, 4] + x0 * finals
        return end + x0 if end >= 0 else -1
