"""Exact memo of `FastEngine` calls: a program that starts from an equivalent device state ends in an
equivalent state, so its effect is looked up instead of simulated again.

Equivalence is the one the fast engine already uses to merge channel classes (simulator/dram/fast.py
`_same`): every time value is clamped to the cycle X in which the program's first instruction reaches the
channels (a constraint that expired before X cannot bind anything that issues at or after X), then taken
relative to X; the mode, the last request kind, the refresh phase (relative to X) and the queue's recent
departures (relative, oldest first) are compared as they are, the open rows relative to the program's first
row (the kernel compares rows only for equality, so a program and state moved by the same number of rows
behave alike: the 48 layers of GPT2-XL, copies of the same tiles, share entries). Channels in different
states are in different classes (simulator/dram/fast.py); the key holds each channel's class and every
class's canonical state, the classes numbered in the order of their first channel (the kernel's own
numbering records only the history of splits and merges), followed by the program itself (its rows relative
to the same row). The entry is the end state in the same form (classes, each one's state relative to X and
clamped to the end cycle, open rows relative to the first row), what the program added to each channel's
statistics and its per-instruction record (relative to X). The key first moves every class's statistics
into its channels' totals (`_flush_class`, which changes no result), so that what a run adds depends on the
key alone.

Calls with a command log are not memoised. The PIM-GPT system runs the same weight tiles from the same
relative state token after token (a tile starts after the controller's SYNC, and the refresh phase has
locked to the tile by then), which is where the hits come from; after a K/V write to some channels, the next
tiles start from split channels (two classes) until a read-out re-synchronises them.

Key, entry and lookup work on the engine's packed buffers (simulator/dram/packing.py) in compiled code: a hit
costs a few microseconds, so the memo is used for programs with at least `MIN_COLUMNS` column requests (a
GPT2-XL weight tile takes ~60 us to simulate). tests/test_memo.py proves memo on == memo off (cycles, counts,
open-bank cycles, per-instruction records) on full generations and on random sessions with split channels.
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
    SCAL_CLASSES,
    SCAL_X,
    S_ACTS,
    S_CHAN_CLASS,
    S_CHAN_COUNTS,
    S_CHAN_OPEN,
    S_COUNTS,
    S_CUT,
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
    S_PARENT,
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
_CLOSED = -(np.int64(1) << 62)  # a closed bank in a key or entry (open rows are stored relative to the base row)
_NOT_HIT = -(np.int64(1) << 62)  # `_hit`: the keys differ (an EOC cycle is >= -1)
_N_REC = 5  # columns of a per-instruction record (simulator/dram/fast.py REC_*)
# a key: the number of classes, each channel's class (classes numbered in the order of their first channel),
# each class's canonical state in that order (`_key_class`), then the program
_K_HEAD = 1
# an entry: the end cycle X and the EOC cycle (or -1), relative to the start; the number of classes at the end
# and each channel's class; each class's end state (`_capture_class`); what the run added to each channel's
# statistics; the per-instruction record (relative to the start)
E_DX, E_END, E_NCLS = range(3)
_E_HEAD = 3
# a class's end state: refresh on and its next due cycle, queue fill and activations (both clamped to their
# windows: only the recent ones are ever read), open-row interval start and open-row cycles, command counts,
# then the times and rows (`_capture_class`)
C_HAS_DUE, C_DUE, C_NREQ, C_NACTS, C_SINCE, C_OPEN = range(6)
_C_HEAD = 6
_LAST = np.array([S_LAST_ISSUE, S_LAST_DONE, S_LAST_LEAVE], np.int64)  # the last issue / completion / departure
_TABLE = np.array([S_ST_BANK, S_ST_GROUP, S_ST_CHAN], np.int64)  # the constraint tables


def _sizes(cfg):
    """(channels, banks, groups, commands, queue depth, nFAW) from the packed config."""
    return cfg[CFG_N_CH], cfg[CFG_NB], cfg[CFG_NG], cfg[CFG_N_CMDS], cfg[CFG_DEPTH], cfg[CFG_FAW]


def _at(cfg, s, k):
    """Where class k's part of state array s starts (per-class arrays have one slot per channel)."""
    start = cfg[OFF_S + s]
    return start + k * ((cfg[OFF_S + s + 1] - start) // cfg[CFG_N_CH])


def _tables_len(cfg):
    """Words per class of the three constraint tables: banks (+2), groups (+2), channel."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    return nc * ((nb + 2) + (ng + 2) + 1)


def _class_key_len(cfg) -> int:
    """Words of one class in a key: refresh phase, queue fill, mode, last request kind, open rows, three
    last-cycle values, the constraint tables, queue departures, activations."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    return 4 + nb + 3 + _tables_len(cfg) + depth + _FAW_WINDOW


def _class_entry_len(cfg) -> int:
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    return _C_HEAD + nc + 3 + _tables_len(cfg) + nb + 2 + depth + _FAW_WINDOW


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


def _classes(cfg, state, order, cmap, cmap_at):
    """Number the classes in the order of their first channel (the kernel's own numbering depends on the
    history of splits and merges, which changes nothing else): order[j] is the kernel's class j, and
    cmap[cmap_at + c] channel c's class in the new numbering. Returns the number of classes."""
    n_ch = cfg[CFG_N_CH]
    cc = cfg[OFF_S + S_CHAN_CLASS]
    slot = order[n_ch:]  # scratch: the new number of each kernel class
    for k in range(n_ch):
        slot[k] = -1
    m = 0
    for c in range(n_ch):
        k = state[cc + c]
        if slot[k] < 0:
            slot[k] = m
            order[m] = k
            m += 1
        cmap[cmap_at + c] = slot[k]
    return m


def _flush_class(cfg, state, k, x):
    """Move class k's statistics into its channels' totals and close its open-row interval at x. Channel
    statistics are sums (`FastState.channel_counts`, `bank_open_cycles`), so this changes no result; it
    makes what a run adds independent of what the class had counted before it."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    ro, since, opened = _at(cfg, S_OPEN_ROW, k), _at(cfg, S_OPEN_SINCE, k), _at(cfg, S_OPEN_CYCLES, k)
    for b in range(nb):
        if state[ro + b] != -1:
            state[opened] += x - state[since]
            state[since] = x
            break
    cnt = _at(cfg, S_COUNTS, k)
    cc = cfg[OFF_S + S_CHAN_CLASS]
    for c in range(n_ch):
        if state[cc + c] == k:
            o = cfg[OFF_S + S_CHAN_COUNTS] + c * nc
            for j in range(nc):
                state[o + j] += state[cnt + j]
            state[cfg[OFF_S + S_CHAN_OPEN] + c] += state[opened]
    for j in range(nc):
        state[cnt + j] = 0
    state[opened] = 0


def _key_class(cfg, state, k, x, base, key, p):
    """Write class k's canonical state at key[p:]; returns the position after it."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    due = state[_at(cfg, S_REF_DUE, k)]
    key[p] = due - x if due < _NO_REFRESH else -1
    nreq = state[_at(cfg, S_NREQ, k)]
    key[p + 1] = nreq if nreq < depth else depth
    key[p + 2] = state[_at(cfg, S_MODE, k)]
    key[p + 3] = state[_at(cfg, S_LAST_CONV, k)]
    p += 4
    ro = _at(cfg, S_OPEN_ROW, k)
    for b in range(nb):
        r = state[ro + b]
        key[p + b] = r - base if r != -1 else _CLOSED
    p += nb
    for j in range(3):
        v = state[_at(cfg, _LAST[j], k)] + 1
        key[p + j] = (v if v > x else x) - x
    p += 3
    for t in range(3):  # the bank / group / channel constraint tables
        a = _at(cfg, _TABLE[t], k)
        for j in range(a, _at(cfg, _TABLE[t], k + 1)):
            v = state[j]
            key[p] = (v if v > x else x) - x
            p += 1
    ring = _at(cfg, S_RING, k)
    for j in range(depth):  # departures, oldest first
        i = nreq - depth + j
        v = (state[ring + i % depth] if i >= 0 else _PAST) + 1
        key[p + j] = (v if v > x else x) - x
    p += depth
    n_acts = state[_at(cfg, S_N_ACTS, k)]
    acts = _at(cfg, S_ACTS, k)
    for j in range(_FAW_WINDOW):
        i = n_acts - _FAW_WINDOW + j
        v = (state[acts + i % _FAW_WINDOW] if i >= 0 else _PAST) + faw
        key[p + j] = ((v if v > x else x) - x) if faw > 0 else 0
    return p + _FAW_WINDOW


def _key(cfg, tables, state, op, opsize, mask, bank, row, key, out, order):
    """Write the canonical start state (every class, `_classes` order) and the program into `key`; return its
    hash, with the base row (`_base_row`) in out[0] and the key's length in out[1]. First flushes every
    class's statistics (`_flush_class`), so that what a run adds depends only on the key."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    base = _base_row(cfg, tables, op, row)
    out[0] = base
    x = state[cfg[OFF_S + S_SCAL] + SCAL_X]
    ncls = _classes(cfg, state, order, key, _K_HEAD)
    key[0] = ncls
    p = _K_HEAD + n_ch
    for j in range(ncls):
        _flush_class(cfg, state, order[j], x)
        p = _key_class(cfg, state, order[j], x, base, key, p)
    n = op.shape[0]
    for i in range(n):
        key[p + i] = op[i]
        key[p + n + i] = opsize[i]
        key[p + 2 * n + i] = mask[i]
        key[p + 3 * n + i] = bank[i]
        key[p + 4 * n + i] = row[i] - base if _uses_row(cfg, tables, op[i]) else row[i]
    p += 5 * n
    out[1] = p
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


def _hit(cfg, tables, state, key, klen, item_key, entry, op, opsize, mask, rec, base):
    """`_apply` if the stored key equals this call's key (its first `klen` words); else _NOT_HIT, state
    untouched (one compiled call per candidate of the bucket)."""
    if item_key.shape[0] != klen:
        return _NOT_HIT
    for j in range(klen):
        if item_key[j] != key[j]:
            return _NOT_HIT
    return _apply(cfg, tables, state, entry, op, opsize, mask, rec, base)


def _snapshot(cfg, state, snap):
    """Every channel's statistics before a run, after the key's flush (an entry stores what the run added)."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    o = cfg[OFF_S + S_CHAN_COUNTS]
    for j in range(n_ch * nc):
        snap[j] = state[o + j]
    o = cfg[OFF_S + S_CHAN_OPEN]
    for c in range(n_ch):
        snap[n_ch * nc + c] = state[o + c]


def _entry_len(cfg, n, ncls):
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    return _E_HEAD + n_ch + ncls * _class_entry_len(cfg) + n_ch * nc + n_ch + n * _N_REC


def _capture_class(cfg, state, k, x0, x1, base, entry, p):
    """Write class k's end state at entry[p:]: times relative to x0, clamped to the end cycle x1 (earlier
    ones cannot bind anything later), open rows relative to the base row (every open row at the end was open
    at the start or is one of the program's rows); returns the position after it."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    due = state[_at(cfg, S_REF_DUE, k)]
    entry[p + C_HAS_DUE] = 1 if due < _NO_REFRESH else 0
    entry[p + C_DUE] = due - x0 if due < _NO_REFRESH else due
    nreq, n_acts = state[_at(cfg, S_NREQ, k)], state[_at(cfg, S_N_ACTS, k)]
    entry[p + C_NREQ] = nreq if nreq < depth else depth
    entry[p + C_NACTS] = n_acts if n_acts < _FAW_WINDOW else _FAW_WINDOW
    entry[p + C_SINCE] = state[_at(cfg, S_OPEN_SINCE, k)] - x0
    entry[p + C_OPEN] = state[_at(cfg, S_OPEN_CYCLES, k)]  # the start was flushed: all of it is this run's
    p += _C_HEAD
    cnt = _at(cfg, S_COUNTS, k)
    for j in range(nc):
        entry[p + j] = state[cnt + j]
    p += nc
    for j in range(3):  # compared as value + 1 in the key
        v = state[_at(cfg, _LAST[j], k)]
        entry[p + j] = (v if v > x1 - 1 else x1 - 1) - x0
    p += 3
    for t in range(3):
        for j in range(_at(cfg, _TABLE[t], k), _at(cfg, _TABLE[t], k + 1)):
            v = state[j]
            entry[p] = (v if v > x1 else x1) - x0
            p += 1
    ro = _at(cfg, S_OPEN_ROW, k)
    for b in range(nb):
        r = state[ro + b]
        entry[p + b] = r - base if r != -1 else _CLOSED
    p += nb
    entry[p] = state[_at(cfg, S_MODE, k)]
    entry[p + 1] = state[_at(cfg, S_LAST_CONV, k)]
    p += 2
    ring = _at(cfg, S_RING, k)
    for j in range(depth):  # oldest first
        i = nreq - depth + j
        v = state[ring + i % depth] if i >= 0 else _PAST
        entry[p + j] = (v if v > x1 - 1 else x1 - 1) - x0
    p += depth
    acts = _at(cfg, S_ACTS, k)
    for j in range(_FAW_WINDOW):
        i = n_acts - _FAW_WINDOW + j
        v = state[acts + i % _FAW_WINDOW] if i >= 0 else _PAST
        entry[p + j] = (v if v > x1 - faw else x1 - faw) - x0
    return p + _FAW_WINDOW


def _capture(cfg, tables, state, snap, x0, base, end, rec, op, opsize, mask, entry, order):
    """Write into `entry` the run's effect (the layout at E_DX): every class's end state, what the run added
    to each channel's statistics, and its record relative to x0."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    x1 = state[cfg[OFF_S + S_SCAL] + SCAL_X]
    entry[E_DX] = x1 - x0
    entry[E_END] = end - x0 if end >= 0 else -1
    ncls = _classes(cfg, state, order, entry, _E_HEAD)
    entry[E_NCLS] = ncls
    p = _E_HEAD + n_ch
    for j in range(ncls):
        p = _capture_class(cfg, state, order[j], x0, x1, base, entry, p)
    o = cfg[OFF_S + S_CHAN_COUNTS]
    for j in range(n_ch * nc):
        entry[p + j] = state[o + j] - snap[j]
    p += n_ch * nc
    o = cfg[OFF_S + S_CHAN_OPEN]
    for c in range(n_ch):
        entry[p + c] = state[o + c] - snap[n_ch * nc + c]
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


def _apply_class(cfg, state, k, x0, base, entry, p):
    """Class slot k takes the class state at entry[p:] (`_capture_class`); returns the position after it."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    has_due = entry[p + C_HAS_DUE] == 1
    state[_at(cfg, S_REF_DUE, k)] = entry[p + C_DUE] + x0 if has_due else entry[p + C_DUE]
    nreq, n_acts = entry[p + C_NREQ], entry[p + C_NACTS]
    state[_at(cfg, S_NREQ, k)] = nreq
    state[_at(cfg, S_N_ACTS, k)] = n_acts
    state[_at(cfg, S_OPEN_SINCE, k)] = entry[p + C_SINCE] + x0
    state[_at(cfg, S_OPEN_CYCLES, k)] = entry[p + C_OPEN]
    state[_at(cfg, S_PARENT, k)] = -1  # no split to trace back (a class log is never memoised)
    state[_at(cfg, S_CUT, k)] = 0
    p += _C_HEAD
    cnt = _at(cfg, S_COUNTS, k)
    for j in range(nc):
        state[cnt + j] = entry[p + j]
    p += nc
    for j in range(3):
        state[_at(cfg, _LAST[j], k)] = entry[p + j] + x0
    p += 3
    for t in range(3):
        for j in range(_at(cfg, _TABLE[t], k), _at(cfg, _TABLE[t], k + 1)):
            state[j] = entry[p] + x0
            p += 1
    ro = _at(cfg, S_OPEN_ROW, k)
    for b in range(nb):
        v = entry[p + b]
        state[ro + b] = v + base if v != _CLOSED else -1
    p += nb
    state[_at(cfg, S_MODE, k)] = entry[p]
    state[_at(cfg, S_LAST_CONV, k)] = entry[p + 1]
    p += 2
    ring = _at(cfg, S_RING, k)
    for j in range(depth):
        state[ring + (nreq - depth + j) % depth] = entry[p + j] + x0
    p += depth
    acts = _at(cfg, S_ACTS, k)
    for j in range(_FAW_WINDOW):
        state[acts + (n_acts - _FAW_WINDOW + j) % _FAW_WINDOW] = entry[p + j] + x0
    return p + _FAW_WINDOW


def _apply(cfg, tables, state, entry, op, opsize, mask, rec, base):
    """Play an entry from the current state (which has the same canonical form as the one it was captured
    from, and was flushed by the key; `base`: this call's base row). Returns the EOC cycle or -1."""
    n_ch, nb, ng, nc, depth, faw = _sizes(cfg)
    sc = cfg[OFF_S + S_SCAL]
    x0 = state[sc + SCAL_X]
    ncls = entry[E_NCLS]
    state[sc + SCAL_CLASSES] = ncls
    cc = cfg[OFF_S + S_CHAN_CLASS]
    for c in range(n_ch):
        state[cc + c] = entry[_E_HEAD + c]
    p = _E_HEAD + n_ch
    for k in range(ncls):
        p = _apply_class(cfg, state, k, x0, base, entry, p)
    o = cfg[OFF_S + S_CHAN_COUNTS]
    for j in range(n_ch * nc):
        state[o + j] += entry[p + j]
    p += n_ch * nc
    o = cfg[OFF_S + S_CHAN_OPEN]
    for c in range(n_ch):
        state[o + c] += entry[p + c]
    p += n_ch
    state[sc + SCAL_X] = x0 + entry[E_DX]
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
        for name in ("_sizes", "_at", "_tables_len", "_finals", "_uses_row", "_base_row", "_classes", "_flush_class",
                     "_key_class", "_capture_class", "_apply_class", "_apply"):
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
        n_ch = int(cfg[CFG_N_CH])
        self._key_words = _K_HEAD + n_ch + n_ch * _class_key_len(cfg)  # a key's most state words (all classes)
        self._snap = np.zeros(int(cfg[CFG_N_CMDS]) * n_ch + n_ch, np.int64)
        self._order = np.zeros(2 * n_ch, np.int64)  # `_classes`' scratch
        self._fns: dict = {}  # the compiled helpers, loaded at the first lookup (not when an engine is made)
        self._keys: dict[int, np.ndarray] = {}  # program length -> key buffer
        self._out = np.zeros(2, np.int64)  # the last key's base row and length
        # the hot helpers' native entries (simulator/dram/native.py), found at their first call: lookups
        # pass C-contiguous int64 programs and a full-length C-contiguous record (`FastEngine._run_memoised`)
        self._direct: dict = {}

    def takes(self, instructions: int, opsize: np.ndarray, mask: np.ndarray) -> bool:
        """Whether a program is worth a lookup: at least `min_columns` column requests (a hit costs about as
        much as simulating a few dozen instructions), sent to every channel or to none (one that leaves some
        channels out, a K/V write, splits them anew each time; taking those too gave a GPT2-XL generation
        41.5 k more hits and 7.6 k more misses and no measurable speed-up: 8.8-9.4 s against 9.1-9.3 s)."""
        return (instructions > 0 and instructions >= min(_MIN_INSTRUCTIONS, self.min_columns)
                and int(np.sum(opsize)) >= self.min_columns
                and int(np.bitwise_or.reduce(mask)) in (0, self.all_channels))

    def lookup(self, op, opsize, mask, bank, row, rec) -> tuple[bool, int, object]:
        """Before a run from the current state (no log): on a hit, play the entry (state and `rec`) and
        return (True, EOC cycle or -1, None); on a miss return (False, 0, token for `store`)."""
        if not self._fns:
            self._fns = _compiled()
        n = op.shape[0]
        key = self._keys.get(n)  # one buffer per program length (a miss keeps a copy)
        if key is None:
            if len(self._keys) >= 64:
                self._keys.clear()
            key = self._keys[n] = np.empty(self._key_words + 5 * n, np.int64)
        out = self._out
        args = (self.cfg, self.tables, self.state, op, opsize, mask, bank, row, key, out, self._order)
        f = self._direct.get("_key")
        if f is None:
            h = self._fns["_key"](*args)
            self._direct["_key"] = compiled_entry(self._fns["_key"], args)
        else:
            h = f(*args)
        base, klen = int(out[0]), int(out[1])
        bucket = self.table.get((n, h))
        if bucket is not None:
            hit = self._direct.get("_hit")
            for item in bucket:
                args = (self.cfg, self.tables, self.state, key, klen, item[0], item[1], op, opsize, mask, rec, base)
                if hit is None:
                    end = self._fns["_hit"](*args)
                    hit = self._direct["_hit"] = compiled_entry(self._fns["_hit"], args)
                else:
                    end = hit(*args)
                if end != _NOT_HIT:
                    self.hits += 1
                    item[2] += 1
                    return True, int(end), None
        return self._missed(key, h)

    def _missed(self, key, h) -> tuple[bool, int, object]:
        """A miss of the key just built: the token `store` needs after the run."""
        self.misses += 1
        self._fns["_snapshot"](self.cfg, self.state, self._snap)
        x0 = int(self.state[self.cfg[OFF_S + S_SCAL] + SCAL_X])
        return False, 0, (key[:int(self._out[1])].copy(), h, x0, int(self._out[0]), self._snap.copy())

    def store(self, token, end: int, op, opsize, mask, rec) -> None:
        """After the run of a miss: keep its effect."""
        key, h, x0, base, snap = token
        ncls = int(self.state[self.cfg[OFF_S + S_SCAL] + SCAL_CLASSES])
        entry = np.empty(_entry_len(self.cfg, op.shape[0], ncls), np.int64)
        self._fns["_capture"](self.cfg, self.tables, self.state, snap, x0, base, end, rec, op, opsize, mask, entry,
                              self._order)
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
