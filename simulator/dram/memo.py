"""Exact memo of `FastEngine` calls: a program that starts from an equivalent device state ends in an
equivalent state, so its effect is looked up instead of simulated again.

Equivalence is the one the fast engine already uses to merge channel classes (simulator/dram/fast.py
`_same`): every time value is clamped to the cycle X in which the program's first instruction reaches the
channels (a constraint that expired before X cannot bind anything that issues at or after X), then taken
relative to X; the mode, the last request kind, the refresh phase (relative to X) and the queue's recent
departures (relative, oldest first) are compared as they are, the open rows relative to the program's first
row (the kernel compares rows only for equality, so a program and state moved by the same number of rows
behave alike: the 48 layers of GPT2-XL, copies of the same tiles, share entries). The key is that canonical
state followed by the program itself (its rows relative to the same row); the entry is the end state
(relative to X, clamped to the end cycle, open rows relative to the first row), the statistics the program
added (per class and per channel) and its per-instruction record (relative to X).

Only calls that start and end with every channel in one class, without a command log, are memoised. The
PIM-GPT system runs the same weight tiles from the same relative state token after token (a tile starts after
the controller's SYNC, and the refresh phase has locked to the tile by then), which is where the hits come
from. Key, entry and lookup work on the engine's packed buffers (simulator/dram/packing.py) in compiled
code: a hit costs ~15 us, so the memo is used for programs with at least `MIN_COLUMNS` column requests (a
GPT2-XL weight tile takes ~60 us to simulate). tests/test_memo.py proves memo on == memo off
(cycles, counts, open-bank cycles, per-instruction records) on full generations.
"""

from __future__ import annotations

import numpy as np

from simulator.dram.packing import (
    CFG_DEPTH,
    CFG_FAW,
    CFG_N_CH,
    CFG_N_CMDS,
    CFG_NB,
    CFG_NG,
    OFF_S,
    OFF_T,
    S_ACTS,
    S_CHAN_COUNTS,
    S_CHAN_OPEN,
    S_COUNTS,
    S_LAST_CONV,
    S_LAST_DONE,
    S_LAST_ISSUE,
    S_LAST_LEAVE,
    S_MODE,
    S_N_ACTS,
    S_NREQ,
    S_OPEN_CYCLES,
    S_OPEN_ROW,
    S_OPEN_SINCE,
    S_REF_DUE,
    S_RING,
    S_SCAL,
    S_ST_BANK,
    S_ST_CHAN,
    S_ST_GROUP,
    T_DCOLCOUNT,
    T_DKIND,
)
from simulator.dram.native import compiled_entry
from simulator.dram.requests import K_ALLBANK, K_EOC, K_NONE, K_SINGLE, K_SYNC

MIN_COLUMNS = 128  # memoise programs with at least this many column requests (smaller ones simulate faster;
#                   full generations, programs replayed one call each: GPT2-XL 256 / 128 / 32 11.9 / 11.5 /
#                   11.3 s, GPT2-small 256 / 128 / 64 / 32 2.20 / 2.14 / 2.13-2.18 / 2.14-2.25 s, off 2.53 s)
_MIN_INSTRUCTIONS = 16  # shorter programs are not taken before their column requests are even summed
MAX_WORDS = 1 << 22  # the table's size limit in int64 words (32 MiB): then entries never hit are dropped
_FAW_WINDOW = 4  # the kernel keeps the last four activations (simulator/dram/fast.py)
_NO_REFRESH = np.int64(1) << 61  # ref_due at or past this: refresh disabled
_PAST = -(np.int64(1) << 60)  # a ring / activation slot never written
_CLOSED = -(np.int64(1) << 62)
_NOT_HIT = -(np.int64(1) << 62)  # `_hit`: the keys differ (an EOC cycle is >= -1)  # a closed bank in a key or entry (open rows are stored relative to the base row)
_N_REC = 5  # columns of a per-instruction record (simulator/dram/fast.py REC_*)
# head of an entry: the end cycle X, the EOC cycle (or -1), whether refresh is on and its next due cycle,
# the requests / activations / open-row cycles added, the open-row interval's start (all relative to X)
E_DX, E_END, E_HAS_DUE, E_DUE, E_DREQ, E_DACTS, E_SINCE, E_DOPEN = range(8)
_E_HEAD = 8
# snapshot taken before a run: the class's counts, open-row cycles, requests and activations, then every
# channel's counts and open-row cycles
_P_OPEN, _P_NREQ, _P_NACTS = range(3)
_P_HEAD = 3
_LAST = np.array([S_LAST_ISSUE, S_LAST_DONE, S_LAST_LEAVE], np.int64)  # the last issue / completion / departure
_TABLE = np.array([S_ST_BANK, S_ST_GROUP, S_ST_CHAN], np.int64)  # the constraint tables


def _table_len(t, nb, ng, nc):
    """Words per class of constraint table t (of _TABLE): banks (+2), groups (+2), channel."""
    return (nb + 2) * nc if t == 0 else ((ng + 2) * nc if t == 1 else nc)


def _sizes(cfg):
    """(channels, banks, groups, commands, queue depth, nFAW) from the packed config."""
    return cfg[CFG_N_CH], cfg[CFG_NB], cfg[CFG_NG], cfg[CFG_N_CMDS], cfg[CFG_DEPTH], cfg[CFG_FAW]


def _state_len(cfg) -> int:
    """Length of a key's state part: refresh phase, queue fill, mode, last request kind, open rows, three
    last-cycle values, the channel / bank / group constraint tables, queue departures, activations."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    return 4 + nb + 3 + nc * (1 + (nb + 2) + (ng + 2)) + depth + _FAW_WINDOW


def _uses_row(cfg, tables, op):
    """Whether the kernel reads an instruction's row (all-bank and single-bank requests; it compares rows
    for equality only, and copies them into the open-row table)."""
    kind = tables[cfg[OFF_T + T_DKIND] + op]
    return kind == K_ALLBANK or kind == K_SINGLE


def _base_row(cfg, tables, op, row):
    """The row every row of a key or entry is taken relative to: the first row the program reads (0 if none).
    The kernel only compares rows for equality, so a program and start state moved by the same number of
    rows behave alike; this is what lets the 48 layers of GPT2-XL (the same tiles, `Program.shifted`) share
    entries."""
    for i in range(op.shape[0]):
        if _uses_row(cfg, tables, op[i]):
            return row[i]
    return np.int64(0)


def _key(cfg, tables, state, op, opsize, mask, bank, row, key, base_out):
    """Write the canonical start state of class 0 and the program into `key`; return its hash, and the base
    row (`_base_row`) in base_out[0]. Also closes the open-row interval at X (bank_open_cycles is a sum of
    intervals: splitting one at X changes nothing), so the statistics a program adds do not depend on when
    the row was opened."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    q = cfg[OFF_S:]
    base = _base_row(cfg, tables, op, row)
    base_out[0] = base
    x = state[q[S_SCAL]]
    p = 0
    due = state[q[S_REF_DUE]]
    key[p] = due - x if due < _NO_REFRESH else -1
    nreq = state[q[S_NREQ]]
    key[p + 1] = nreq if nreq < depth else depth
    key[p + 2] = state[q[S_MODE]]
    key[p + 3] = state[q[S_LAST_CONV]]
    p += 4
    any_open = False
    for b in range(nb):
        r = state[q[S_OPEN_ROW] + b]
        key[p + b] = r - base if r != -1 else _CLOSED
        if r != -1:
            any_open = True
    p += nb
    for j in range(3):
        v = state[q[_LAST[j]]] + 1
        key[p + j] = (v if v > x else x) - x
    p += 3
    for t in range(3):  # class 0's rows of the bank / group / channel constraint tables
        for j in range(q[_TABLE[t]], q[_TABLE[t]] + _table_len(t, nb, ng, nc)):
            v = state[j]
            key[p] = (v if v > x else x) - x
            p += 1
    for j in range(depth):  # departures, oldest first
        i = nreq - depth + j
        v = (state[q[S_RING] + i % depth] if i >= 0 else _PAST) + 1
        key[p + j] = (v if v > x else x) - x
    p += depth
    n_acts = state[q[S_N_ACTS]]
    for j in range(_FAW_WINDOW):
        i = n_acts - _FAW_WINDOW + j
        v = (state[q[S_ACTS] + i % _FAW_WINDOW] if i >= 0 else _PAST) + faw
        key[p + j] = ((v if v > x else x) - x) if faw > 0 else 0
    p += _FAW_WINDOW
    n = op.shape[0]
    for i in range(n):
        key[p + i] = op[i]
        key[p + n + i] = opsize[i]
        key[p + 2 * n + i] = mask[i]
        key[p + 3 * n + i] = bank[i]
        key[p + 4 * n + i] = row[i] - base if _uses_row(cfg, tables, op[i]) else row[i]
    p += 5 * n
    if any_open:
        state[q[S_OPEN_CYCLES]] += x - state[q[S_OPEN_SINCE]]
        state[q[S_OPEN_SINCE]] = x
    # FNV-1a over the words, in four interleaved lanes (independent multiply chains), then folded
    h0 = h1 = h2 = h3 = np.uint64(14695981039346656037)
    prime = np.uint64(1099511628211)
    j = 0
    while j + 4 <= p:
        h0 = (h0 ^ np.uint64(key[j])) * prime
        h1 = (h1 ^ np.uint64(key[j + 1])) * prime
        h2 = (h2 ^ np.uint64(key[j + 2])) * prime
        h3 = (h3 ^ np.uint64(key[j + 3])) * prime
        j += 4
    while j < p:
        h0 = (h0 ^ np.uint64(key[j])) * prime
        j += 1
    h = (((h0 * prime) ^ h1) * prime ^ h2) * prime ^ h3
    return np.int64(h >> np.uint64(1))


def _equal(a, b):
    if a.shape[0] != b.shape[0]:
        return False
    for j in range(a.shape[0]):
        if a[j] != b[j]:
            return False
    return True


def _hit(cfg, tables, state, key, item_key, entry, op, opsize, mask, rec, base):
    """`_apply` if the stored key equals this call's key; else _NOT_HIT, state untouched (one compiled call
    per candidate of the bucket)."""
    if not _equal(item_key, key):
        return _NOT_HIT
    return _apply(cfg, tables, state, entry, op, opsize, mask, rec, base)


def _snapshot(cfg, state, snap):
    """The statistics before a run (an entry stores what the run added)."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    q = cfg[OFF_S:]
    snap[_P_OPEN] = state[q[S_OPEN_CYCLES]]
    snap[_P_NREQ] = state[q[S_NREQ]]
    snap[_P_NACTS] = state[q[S_N_ACTS]]
    p = _P_HEAD
    for j in range(nc):
        snap[p + j] = state[q[S_COUNTS] + j]
    p += nc
    for j in range(n_ch * nc):
        snap[p + j] = state[q[S_CHAN_COUNTS] + j]
    p += n_ch * nc
    for c in range(n_ch):
        snap[p + c] = state[q[S_CHAN_OPEN] + c]


def _entry_len(cfg, n):
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    return (_E_HEAD + 3 + nc * (1 + (nb + 2) + (ng + 2)) + nb + 2 + depth + _FAW_WINDOW + nc + n_ch * nc + n_ch
            + n * _N_REC)


def _capture(cfg, tables, state, snap, x0, base, end, rec, op, opsize, mask, entry):
    """Write into `entry` the run's effect: end state relative to x0 (times clamped to the end cycle) and
    to the base row (every open row at the end was open at the start or is one of the program's rows), what
    it added, and its record relative to x0."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    q = cfg[OFF_S:]
    x1 = state[q[S_SCAL]]
    entry[E_DX] = x1 - x0
    entry[E_END] = end - x0 if end >= 0 else -1
    due = state[q[S_REF_DUE]]
    entry[E_HAS_DUE] = 1 if due < _NO_REFRESH else 0
    entry[E_DUE] = due - x0 if due < _NO_REFRESH else 0
    nreq, n_acts = state[q[S_NREQ]], state[q[S_N_ACTS]]
    entry[E_DREQ] = nreq - snap[_P_NREQ]
    entry[E_DACTS] = n_acts - snap[_P_NACTS]
    entry[E_SINCE] = state[q[S_OPEN_SINCE]] - x0
    entry[E_DOPEN] = state[q[S_OPEN_CYCLES]] - snap[_P_OPEN]
    p = _E_HEAD
    for j in range(3):  # compared as value + 1 in the key
        v = state[q[_LAST[j]]]
        entry[p + j] = (v if v > x1 - 1 else x1 - 1) - x0
    p += 3
    for t in range(3):
        for j in range(q[_TABLE[t]], q[_TABLE[t]] + _table_len(t, nb, ng, nc)):
            v = state[j]
            entry[p] = (v if v > x1 else x1) - x0
            p += 1
    for b in range(nb):
        r = state[q[S_OPEN_ROW] + b]
        entry[p + b] = r - base if r != -1 else _CLOSED
    p += nb
    entry[p] = state[q[S_MODE]]
    entry[p + 1] = state[q[S_LAST_CONV]]
    p += 2
    for j in range(depth):
        i = nreq - depth + j
        v = state[q[S_RING] + i % depth] if i >= 0 else _PAST
        entry[p + j] = (v if v > x1 - 1 else x1 - 1) - x0
    p += depth
    for j in range(_FAW_WINDOW):
        i = n_acts - _FAW_WINDOW + j
        v = state[q[S_ACTS] + i % _FAW_WINDOW] if i >= 0 else _PAST
        entry[p + j] = (v if v > x1 - faw else x1 - faw) - x0
    p += _FAW_WINDOW
    for j in range(nc):
        entry[p + j] = state[q[S_COUNTS] + j] - snap[_P_HEAD + j]
    p += nc
    for j in range(n_ch * nc):
        entry[p + j] = state[q[S_CHAN_COUNTS] + j] - snap[_P_HEAD + nc + j]
    p += n_ch * nc
    for c in range(n_ch):
        entry[p + c] = state[q[S_CHAN_OPEN] + c] - snap[_P_HEAD + nc + n_ch * nc + c]
    p += n_ch
    for i in range(op.shape[0]):
        entry[p] = rec[i, 0] - x0
        entry[p + 1] = rec[i, 1] - x0
        entry[p + 2] = rec[i, 2] - x0 if rec[i, 2] >= 0 else -1
        entry[p + 3] = rec[i, 3] - x0 if rec[i, 3] >= 0 else -1
        entry[p + 4] = rec[i, 4] - x0 * _finals(cfg, tables, op, opsize, mask, i)
        p += _N_REC


def _finals(cfg, tables, op, opsize, mask, i):
    """How many final commands instruction i issues over its channels: the record's issue-cycle sum holds
    one issue cycle per final command, so shifting the run by d shifts that sum by d times this."""
    n_ch = cfg[CFG_N_CH]
    o = cfg[OFF_T:]
    kind = tables[o[T_DKIND] + op[i]]
    if kind == K_NONE or kind == K_EOC or kind == K_SYNC:
        return 0
    m = mask[i]
    ch = 0
    for c in range(n_ch):
        if (m >> c) & 1:
            ch += 1
    return (opsize[i] if tables[o[T_DCOLCOUNT] + op[i]] == 1 else 1) * ch


def _apply(cfg, tables, state, entry, op, opsize, mask, rec, base):
    """Play an entry from the current state (which has the same canonical form as the one it was captured
    from; `base`: this call's base row). Returns the EOC cycle or -1."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    q = cfg[OFF_S:]
    x0 = state[q[S_SCAL]]
    if entry[E_HAS_DUE] == 1:
        state[q[S_REF_DUE]] = entry[E_DUE] + x0
    nreq = state[q[S_NREQ]] + entry[E_DREQ]
    state[q[S_NREQ]] = nreq
    n_acts = state[q[S_N_ACTS]] + entry[E_DACTS]
    state[q[S_N_ACTS]] = n_acts
    state[q[S_OPEN_SINCE]] = entry[E_SINCE] + x0
    state[q[S_OPEN_CYCLES]] += entry[E_DOPEN]
    p = _E_HEAD
    for j in range(3):
        state[q[_LAST[j]]] = entry[p + j] + x0
    p += 3
    for t in range(3):
        for j in range(q[_TABLE[t]], q[_TABLE[t]] + _table_len(t, nb, ng, nc)):
            state[j] = entry[p] + x0
            p += 1
    for b in range(nb):
        v = entry[p + b]
        state[q[S_OPEN_ROW] + b] = v + base if v != _CLOSED else -1
    p += nb
    state[q[S_MODE]] = entry[p]
    state[q[S_LAST_CONV]] = entry[p + 1]
    p += 2
    for j in range(depth):
        state[q[S_RING] + (nreq - depth + j) % depth] = entry[p + j] + x0
    p += depth
    for j in range(_FAW_WINDOW):
        state[q[S_ACTS] + (n_acts - _FAW_WINDOW + j) % _FAW_WINDOW] = entry[p + j] + x0
    p += _FAW_WINDOW
    for j in range(nc):
        state[q[S_COUNTS] + j] += entry[p + j]
    p += nc
    for j in range(n_ch * nc):
        state[q[S_CHAN_COUNTS] + j] += entry[p + j]
    p += n_ch * nc
    for c in range(n_ch):
        state[q[S_CHAN_OPEN] + c] += entry[p + c]
    p += n_ch
    state[q[S_SCAL]] = x0 + entry[E_DX]
    if rec.shape[0] == op.shape[0]:
        for i in range(op.shape[0]):
            rec[i, 0] = entry[p] + x0
            rec[i, 1] = entry[p + 1] + x0
            rec[i, 2] = entry[p + 2] + x0 if entry[p + 2] >= 0 else -1
            rec[i, 3] = entry[p + 3] + x0 if entry[p + 3] >= 0 else -1
            rec[i, 4] = entry[p + 4] + x0 * _finals(cfg, tables, op, opsize, mask, i)
            p += _N_REC
    return entry[E_END] + x0 if entry[E_END] >= 0 else np.int64(-1)


_COMPILED: dict = {}


def _compiled() -> dict:
    """The compiled helpers (Numba is imported on first use, as the kernel's: simulator/dram/fast.py)."""
    if not _COMPILED:
        from numba import njit

        # no runtime (as the kernel's): the helpers allocate nothing, so no array is reference-counted
        jit = njit(cache=True, error_model="numpy", _nrt=False)
        inl = njit(cache=True, error_model="numpy", inline="always", _nrt=False)
        g = globals()
        for name in ("_sizes", "_finals", "_table_len", "_uses_row", "_base_row", "_equal", "_apply"):
            g[name] = inl(g[name])
        for name in ("_key", "_hit", "_snapshot", "_capture"):
            _COMPILED[name] = g[name] = jit(g[name])
    return _COMPILED


class RunMemo:
    """The table: (program length, key hash) -> [[key, entry, hits since the last clean-up]]. A hit needs the
    whole key equal."""

    def __init__(self, cfg: np.ndarray, tables: np.ndarray, state: np.ndarray, min_columns: int = MIN_COLUMNS,
                 max_words: int = MAX_WORDS):
        self.cfg, self.tables, self.state = cfg, tables, state
        self.min_columns = min_columns  # FastEngine memoises programs with at least this many column requests
        self.max_words = max_words
        self.all_channels = (1 << int(cfg[CFG_N_CH])) - 1  # the channel mask of every channel
        self.table: dict[tuple[int, int], list] = {}
        self.words = self.entries = self.hits = self.misses = self.dropped = 0
        self.state_len = _state_len(cfg)
        self._snap = np.zeros(_P_HEAD + int(cfg[CFG_N_CMDS]) * (1 + int(cfg[CFG_N_CH])) + int(cfg[CFG_N_CH]),
                              np.int64)
        self._fns: dict = {}  # the compiled helpers, loaded at the first lookup (not when an engine is made)
        self._keys: dict[int, np.ndarray] = {}  # program length -> key buffer
        self._base = np.zeros(1, np.int64)  # the base row of the last key
        # the hot helpers' native entries (simulator/dram/native.py), found at their first call: lookups
        # pass C-contiguous int64 programs and a full-length C-contiguous record (`FastEngine._run_memoised`)
        self._direct: dict = {}

    def takes(self, instructions: int, opsize: np.ndarray, mask: np.ndarray) -> bool:
        """Whether a program is worth a lookup: at least `min_columns` column requests (a hit costs about as
        much as simulating a few dozen instructions), sent to every channel or to none (a program that leaves
        some channels out splits them into classes, and a run that ends with more than one class is not
        stored, so its lookups could only miss)."""
        return (instructions > 0 and instructions >= min(_MIN_INSTRUCTIONS, self.min_columns)
                and int(np.sum(opsize)) >= self.min_columns
                and int(np.bitwise_or.reduce(mask)) in (0, self.all_channels))

    def lookup(self, op, opsize, mask, bank, row, rec) -> tuple[bool, int, object]:
        """Before a run from the current state (one class, no log): on a hit, play the entry (state and
        `rec`) and return (True, EOC cycle or -1, None); on a miss return (False, 0, token for `store`)."""
        if not self._fns:
            self._fns = _compiled()
        n = op.shape[0]
        key = self._keys.get(n)  # one buffer per program length (a miss keeps a copy)
        if key is None:
            if len(self._keys) >= 64:
                self._keys.clear()
            key = self._keys[n] = np.empty(self.state_len + 5 * n, np.int64)
        args = (self.cfg, self.tables, self.state, op, opsize, mask, bank, row, key, self._base)
        f = self._direct.get("_key")
        if f is None:
            h = self._fns["_key"](*args)
            self._direct["_key"] = compiled_entry(self._fns["_key"], args)
        else:
            h = f(*args)
        base = int(self._base[0])
        bucket = self.table.get((n, h))
        if bucket is not None:
            hit = self._direct.get("_hit")
            for item in bucket:
                args = (self.cfg, self.tables, self.state, key, item[0], item[1], op, opsize, mask, rec, base)
                if hit is None:
                    end = self._fns["_hit"](*args)
                    hit = self._direct["_hit"] = compiled_entry(self._fns["_hit"], args)
                else:
                    end = hit(*args)
                if end != _NOT_HIT:
                    self.hits += 1
                    item[2] += 1
                    return True, int(end), None
        self.misses += 1
        self._fns["_snapshot"](self.cfg, self.state, self._snap)
        return False, 0, (key.copy(), h, int(self.state[self.cfg[OFF_S + S_SCAL]]), base, self._snap.copy())

    def store(self, token, end: int, op, opsize, mask, rec) -> None:
        """After the run of a miss (which must end with one class): keep its effect."""
        key, h, x0, base, snap = token
        entry = np.empty(_entry_len(self.cfg, op.shape[0]), np.int64)
        self._fns["_capture"](self.cfg, self.tables, self.state, snap, x0, base, end, rec, op, opsize, mask, entry)
        if self.words + key.size + entry.size > self.max_words:
            self._shrink()
        self.table.setdefault((op.shape[0], h), []).append([key, entry, 0])
        self.words += key.size + entry.size
        self.entries += 1

    def _shrink(self) -> None:
        """Make room: drop the entries never hit (programs of one context, or a state seen once); if that is
        not enough, everything. Which entries exist changes only the speed, never a result."""
        for h in list(self.table):
            kept = [item for item in self.table[h] if item[2] > 0]
            self.dropped += len(self.table[h]) - len(kept)
            if kept:
                self.table[h] = kept
            else:
                del self.table[h]
        self.words = sum(item[0].size + item[1].size for bucket in self.table.values() for item in bucket)
        self.entries = sum(len(bucket) for bucket in self.table.values())
        if self.words > self.max_words // 2:
            self.dropped += self.entries
            self.table.clear()
            self.words = self.entries = 0
        for bucket in self.table.values():
            for item in bucket:
                item[2] = 0  # an entry must be hit again to survive the next shrink
