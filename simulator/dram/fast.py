"""Fast engine: the same controller semantics as the reference engine, compiled with Numba.

Exactness comes from computing every command's issue cycle from the same timing table; speed from two
exact shortcuts (docs/architecture.md 'Where speed comes from'):
1. Bursts. After the first request of an instruction (which may need TMOD, PREA, ACT16), its remaining
   requests are identical row-hit column commands: each issues at max(previous + self-gap, its queue entry
   cycle), and the constraints they leave behind are those of the last one (timing updates are maxima), so
   the table is updated once per instruction, not once per command.
2. Channel classes. Channels that received identical streams are in identical states: we keep one state per
   class and split a class only when an instruction's channel mask cuts through it.
The host's ISR delivery (queue entry, blocking ISRs, SYNC, EOC) is computed per instruction from each class's
ring of recent departure cycles. Only in-order queues are modelled here; a trace whose conventional requests
need FR-FCFS is replayed with the reference engine (simulator/dram/replay.py says so in the result).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from simulator.dram.commands import (
    CLOSES,
    MODE_ANY,
    MODE_BANK,
    MODE_REG,
    N_CMDS,
    OPENS,
    ROW_IN_LOG,
    TOUCH,
    TOUCH_ALL,
    TOUCH_BANK,
    TOUCH_GROUP,
    TOUCH_NONE,
    Cmd,
)
from simulator.dram.isa import Op
from simulator.dram.log import CommandLog, ReplayResult
from simulator.dram.memo import MIN_COLUMNS as MEMO_MIN_COLUMNS
from simulator.dram.memo import RunMemo
from simulator.dram.native import compiled_entry
from simulator.dram.packing import (
    CFG_BPG,
    CFG_DEPTH,
    CFG_FAW,
    CFG_N_CH,
    CFG_N_CMDS,
    CFG_NB,
    CFG_NG,
    CFG_REFI,
    CFG_STALL,
    OFF_S,
    OFF_T,
    SCAL_CLASSES,
    SCAL_STALL_CLASS,
    SCAL_STALL_CMD,
    SCAL_X,
    STATE,
)
from simulator.dram.program import Program
from simulator.dram.requests import K_ALLBANK, K_EOC, K_NONE, K_SINGLE, K_SYNC, command_modes, decode_arrays
from simulator.dram.timing import (
    N_SCOPES,
    SCOPE_CHANNEL,
    SCOPE_GROUP,
    build_window_rules,
    refresh_stall_limit,
    stall_message,
    timing_arrays,
)
from simulator.errors import PimsimError

if TYPE_CHECKING:  # type hints only: importing the schema builds pydantic models
    from simulator.config.schema import ArchConfig

_ACT, _PRE, _PREA, _REFAB, _ACT16, _TMOD = (
    int(Cmd.ACT), int(Cmd.PRE), int(Cmd.PREA), int(Cmd.REFab), int(Cmd.ACT16), int(Cmd.TMOD))
_DELAY = int(Op.DELAY)
N_REC = 5  # columns of a per-instruction record
REC_ARRIVE, REC_NEXT, REC_DONE_FIRST, REC_DONE_LAST, REC_ISSUE_SUM = range(N_REC)  # documented in `_run`
N_LOG = 6  # columns of the class log: LOG_* (and one unused)
LOG_CYCLE, LOG_CLASS, LOG_CMD, LOG_BANK, LOG_ROW = range(5)
_LOG_CAPACITY = 1024  # first size of the class log (`FastEngine.run` retries with the size it needs)
_FAW_WINDOW = 4  # the kernel keeps the last four activations (nFAW's window, simulator/dram/timing.py)
_NO_ROW = -1  # open_row of a closed bank; the row of a command that names none
_ALL_BANKS = -1  # the bank argument of a command that addresses every bank (or none)
_NO_REQUEST = -1  # last_conv of a queue no request has left yet
_NO_BURST = -1  # no burst under way (`_run`'s burst_from)
_NOT_YET = -1  # a cycle still to come (rec's REC_DONE_*, EOC's end), or no stalled command (scal)
_REFRESH_OFF = np.int64(1) << 61  # ref_due at or past this: refresh disabled (FastState sets 1 << 62)
_PAST = -(np.int64(1) << 60)  # a cycle long before any other (an empty ring or activation slot)
_SCOPE_CHANNEL, _SCOPE_GROUP = SCOPE_CHANNEL, SCOPE_GROUP
# per-command facts from the command table (simulator/dram/commands.py), as arrays the kernel indexes
_TOUCH = np.array([TOUCH[c] for c in Cmd], dtype=np.int64)
_IS_OPEN = np.array([c in OPENS for c in Cmd], dtype=np.int64)
_IS_CLOSE = np.array([c in CLOSES for c in Cmd], dtype=np.int64)
_ROW_IN_LOG = np.array([c in ROW_IN_LOG for c in Cmd], dtype=np.int64)
MEMO_DEFAULT = True  # FastEngine(memo=None) follows this (simulator/dram/memo.py)


_JIT: dict = {}  # kernel name -> (Python function, numba.njit options); compiled on first use


def _jit(**opts):
    """Mark a kernel for numba.njit without importing Numba: a process that runs the ahead-of-time build
    (simulator/dram/aot.py) never needs Numba at all. `jit_kernels()` swaps in the real dispatchers."""
    def mark(fn):
        _JIT[fn.__name__] = (fn, opts)
        return fn
    return mark


def jit_kernels():
    """Replace the marked kernels by Numba dispatchers (once) and return the entry's (`_run_packed`)."""
    g = globals()
    if not hasattr(g["_run"], "py_func"):
        from numba import njit

        for name, (fn, opts) in _JIT.items():
            g[name] = njit(_nrt=False, **opts)(fn)  # no runtime: the kernel allocates nothing (see `_run`)
    return g["_run_packed"]


def _rules_csr(gap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nonzero (scope, next, cycles) per preceding command, as CSR arrays."""
    ptr = np.zeros(N_CMDS + 1, np.int64)
    rows = []
    for p in range(N_CMDS):
        for s in range(N_SCOPES):
            for n in range(N_CMDS):
                # an all-bank command's bank / group rule never binds if its channel rule is at least as long
                if gap[s, p, n] > 0 and not (s != SCOPE_CHANNEL and _TOUCH[p] == TOUCH_ALL
                                             and gap[SCOPE_CHANNEL, p, n] >= gap[s, p, n]):
                    rows.append((s, n, gap[s, p, n]))
        ptr[p + 1] = len(rows)
    arr = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return ptr, arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy()


@_jit(cache=True, error_model="numpy", inline="always")  # inlined: measured 1.75x faster
def _bank_range(cmd, bank, nb, bpg, touch):
    k = touch[cmd]
    if k == TOUCH_NONE:
        return 0, 0
    if k == TOUCH_ALL or bank == _ALL_BANKS:
        return 0, nb
    if k == TOUCH_GROUP:
        g = bank // bpg
        return g * bpg, (g + 1) * bpg
    return bank, bank + 1


@_jit(cache=True, error_model="numpy", inline="always")  # inlined: measured 1.75x faster
def _earliest(k, cmd, bank, st_bank, st_group, st_chan, acts, n_acts, faw, nb, bpg, touch, is_open):
    # st_bank[k, nb] / st_group[k, ng]: what all-bank commands impose on every bank / group;
    # st_bank[k, nb + 1] / st_group[k, ng + 1]: the maximum over the individual banks / groups
    ng = st_group.shape[1] - 2
    t = st_chan[k, cmd]
    b0, b1 = _bank_range(cmd, bank, nb, bpg, touch)
    if b1 > b0:
        if b0 == 0 and b1 == nb:  # an all-bank command: four reads instead of one per bank and group
            g0, g1 = nb, nb + 2
            h0, h1 = ng, ng + 2
        else:
            g0, g1 = b0, b1
            h0, h1 = b0 // bpg, (b1 - 1) // bpg + 1
        for b in range(g0, g1):
            if st_bank[k, b, cmd] > t:
                t = st_bank[k, b, cmd]
        for g in range(h0, h1):
            if st_group[k, g, cmd] > t:
                t = st_group[k, g, cmd]
        if b0 != 0 or b1 != nb:
            if st_bank[k, nb, cmd] > t:
                t = st_bank[k, nb, cmd]
            if st_group[k, ng, cmd] > t:
                t = st_group[k, ng, cmd]
    if faw > 0 and is_open[cmd] == 1 and n_acts[k] >= _FAW_WINDOW:
        v = acts[k, (n_acts[k] - _FAW_WINDOW) % _FAW_WINDOW] + faw
        if v > t:
            t = v
    return t


@_jit(cache=True, error_model="numpy", inline="always")
def _log_push(lg, nlog, t, k, cmd, bank, row, touch, row_in_log):
    """Append one command to the class log if it has room; the count goes on either way, so a caller whose
    buffer was too small learns the size it needs (`FastEngine.run` then runs the program again)."""
    if nlog < lg.shape[0]:
        lg[nlog, LOG_CYCLE] = t
        lg[nlog, LOG_CLASS] = k
        lg[nlog, LOG_CMD] = cmd
        lg[nlog, LOG_BANK] = bank if (touch[cmd] == TOUCH_BANK or touch[cmd] == TOUCH_GROUP) else _ALL_BANKS
        lg[nlog, LOG_ROW] = row if row_in_log[cmd] == 1 else _NO_ROW
    return nlog + 1


# ---------------------------------------------------------------------------------------------------------
# The kernel. `_run` is the dispatch loop: per instruction, the host-side wait (`_host_wait`) or the split of
# the channel classes the mask cuts (`_split_class`); then per class the instruction's requests by kind:
# SYNC / EOC are a handshake (`_handshake`); every other kind is n column requests, each entering the queue,
# then the first by the general path (the next command picked by kind: `_plan_allbank`, `_plan_single`, or
# the final command at once for register-mode requests; a due refresh by `_refresh_plan`) and the rest as a
# burst (`_burst_closed_form`); then the cycle the next instruction may reach the channels (after a blocking
# read-out: once its data arrived) and the merge of classes that converged (`_merge_classes`).
# The helpers on the per-request path are inlined (inline="always", as `_earliest` / `_apply`).
# The kernel is compiled without Numba's runtime (`_nrt=False`, `jit_kernels`): it allocates nothing (the
# caller passes the log and scratch buffers, and a log that overflows is counted, not grown), so no array
# is reference-counted. With the runtime, every array an inlined helper takes cost two atomic operations
# per call, which no pruning removed: 36 % of the kernel's time on a stream of single-column MACs, measured
# with perf (1.5x slower per instruction; docs/device-model.md).


@_jit(cache=True, error_model="numpy", inline="always")
def _host_wait(op, opsize):
    """Cycles the host spends on an instruction that sends the channels nothing (host-side, or an empty
    mask): DELAY waits `opsize` cycles, anything else one."""
    return opsize if (op == _DELAY and opsize > 1) else 1


@_jit(cache=True, error_model="numpy")
def _split_class(k, k2, mask, X, nlog, n_ch, nb, in_cnt, tot_cnt, chan_class, parent, cut, st_bank, st_group,
                 st_chan, open_row, mode, last_issue, last_done, acts, n_acts, ref_due, ring, nreq, last_conv,
                 last_leave, counts, open_since, open_cycles, chan_counts, chan_open):
    """Class k's channels in `mask` become class k2, which starts from k's state; in_cnt / tot_cnt (channels
    of each class the instruction goes to / in all) follow. Not inlined: splits are rare, and an inlined
    helper's array arguments cost reference counting wherever it is called from."""
    _flush(k, X, n_ch, nb, chan_class, counts, open_cycles, open_since, open_row, chan_counts, chan_open)
    _copy_class(k2, k, st_bank, st_group, st_chan, open_row, mode, last_issue, last_done,
                acts, n_acts, ref_due, ring, nreq, last_conv, last_leave, counts, open_since, open_cycles)
    parent[k2] = k
    cut[k2] = nlog
    for c in range(n_ch):
        if chan_class[c] == k and (mask >> c) & 1:
            chan_class[c] = k2
    in_cnt[k2] = in_cnt[k]
    tot_cnt[k2] = in_cnt[k]
    in_cnt[k] = 0


@_jit(cache=True, error_model="numpy", inline="always")
def _merge_classes(ncls, X, depth, faw, n_ch, nb, chan_class, st_bank, st_group, st_chan, open_row, mode,
                   last_issue, last_done, acts, n_acts, ref_due, ring, nreq, last_conv, last_leave, counts,
                   open_since, open_cycles, chan_counts, chan_open):
    """Merge classes that would behave identically from cycle X on (channels re-synchronised by a blocking
    read-out); the last class moves into a freed slot. Returns the number of classes."""
    merged = True
    while merged and ncls > 1:
        merged = False
        for k1 in range(ncls):
            for k2 in range(k1 + 1, ncls):
                if _same(k1, k2, X, depth, faw, st_bank, st_group, st_chan, open_row, mode, last_issue,
                         last_done, acts, n_acts, ref_due, ring, nreq, last_conv, last_leave):
                    _flush(k1, X, n_ch, nb, chan_class, counts, open_cycles, open_since, open_row,
                           chan_counts, chan_open)
                    _flush(k2, X, n_ch, nb, chan_class, counts, open_cycles, open_since, open_row,
                           chan_counts, chan_open)
                    last = ncls - 1
                    for c in range(n_ch):
                        if chan_class[c] == k2:
                            chan_class[c] = k1
                    if k2 != last:
                        _copy_class(k2, last, st_bank, st_group, st_chan, open_row, mode, last_issue, last_done,
                                    acts, n_acts, ref_due, ring, nreq, last_conv, last_leave, counts, open_since,
                                    open_cycles)
                        for c in range(n_ch):
                            if chan_class[c] == last:
                                chan_class[c] = k2
                    ncls -= 1
                    merged = True
                    break
            if merged:
                break
    return ncls


@_jit(cache=True, error_model="numpy", inline="always")
def _handshake(k, X, depth, ring, nreq, last_issue, last_done, last_leave):
    """SYNC / EOC in class k: it leaves the queue one cycle after the channel's last command (not before it
    entered), and the channel acknowledges once every command it issued has completed. Returns the cycle
    of the acknowledgement."""
    idx = nreq[k]
    t = X  # it enters the queue when it reaches the channels and a slot is free (docs/aim-device.md rule 3)
    if idx >= depth and ring[k, (idx - depth) % depth] + 1 > t:
        t = ring[k, (idx - depth) % depth] + 1
    if last_issue[k] + 1 > t:
        t = last_issue[k] + 1
    last_issue[k] = t
    ack = t + 1
    if last_done[k] + 1 > ack:
        ack = last_done[k] + 1
    ring[k, idx % depth] = t
    nreq[k] = idx + 1
    last_leave[k] = t
    return ack


@_jit(cache=True, error_model="numpy", inline="always")
def _plan_allbank(k, final, bank, row, nb, open_row, final_bank):
    """Next command of an all-bank request (MAC_ABK, EWMUL, AF, WR_ABK, COPY_GBBK_AB): PREA if another row is
    open anywhere, ACT16 if a bank is closed, else its final command on `final_bank` (_ALL_BANKS, or the
    request's own bank for COPY_GBBK_AB's single-bank WRCP). Returns (command, bank or _ALL_BANKS, row or
    _NO_ROW)."""
    other = False
    closed = False
    for b in range(nb):
        r = open_row[k, b]
        if r == _NO_ROW:
            closed = True
        elif r != row:
            other = True
    if other:
        return _PREA, _ALL_BANKS, _NO_ROW
    if closed:
        return _ACT16, _ALL_BANKS, row
    return final, final_bank, row


@_jit(cache=True, error_model="numpy", inline="always")
def _plan_single(k, final, bank, row, open_row):
    """Next command of a single-bank request (MAC_SBK, the COPYs, conventional RD / WR): PRE if its bank has
    another row open, ACT if the bank is closed, else its final command."""
    r = open_row[k, bank]
    if r != _NO_ROW and r != row:
        return _PRE, bank, _NO_ROW
    if r == _NO_ROW:
        return _ACT, bank, row
    return final, bank, row


@_jit(cache=True, error_model="numpy", inline="always")
def _refresh_plan(k, e, st_bank, st_group, st_chan, open_row, mode, last_issue, acts, n_acts, ref_due, faw, nb,
                  bpg, touch, is_open):
    """A refresh is due before the request's next command could issue: the refresh episode's next command
    (TMOD back to bank mode, PREA if a row is open, else REFab) and its cycle."""
    base = ref_due[k]
    if last_issue[k] + 1 > base:
        base = last_issue[k] + 1
    if e > base:
        base = e
    anyopen = False
    for b in range(nb):
        if open_row[k, b] != _NO_ROW:
            anyopen = True
    rc = _PREA if anyopen else _REFAB
    tr = _earliest(k, rc, _ALL_BANKS, st_bank, st_group, st_chan, acts, n_acts, faw, nb, bpg, touch, is_open)
    if base > tr:
        tr = base
    if mode[k] != MODE_BANK:
        rc = _TMOD
    return rc, tr


@_jit(cache=True, error_model="numpy", inline="always")
def _burst_closed_form(k, X, e, idx, remaining, pitch_first, self_gap, depth, ring, ref_due_k):
    """Requests j.. of a burst (identical row hits after the instruction's first request) in closed form:
    request j+q issues at t0 + q*gap. Queue entry never binds inside a burst (each entry is at most the
    previous issue + 1), so only a due refresh cuts it short. Returns how many it settled (0: none, the
    refresh comes first), the last one's issue cycle and queue entry, and the sum of their issue cycles;
    it writes their departures into the ring (the caller does the rest of the bookkeeping)."""
    t0 = pitch_first if pitch_first > e else e
    m_ok = remaining
    if ref_due_k < _REFRESH_OFF:
        if t0 >= ref_due_k:
            m_ok = 0
        elif (ref_due_k - 1 - t0) // self_gap + 1 < m_ok:
            m_ok = (ref_due_k - 1 - t0) // self_gap + 1
    if m_ok <= 0:
        return 0, np.int64(0), np.int64(0), np.int64(0)
    last_i = idx + m_ok - 1
    el = X
    ii = last_i - depth
    if ii >= idx:
        v = t0 + (ii - idx) * self_gap + 1
        if v > el:
            el = v
    elif ii >= 0:
        v = ring[k, ii % depth] + 1
        if v > el:
            el = v
    if e > X and e + m_ok - 1 > el:
        el = e + m_ok - 1
    q0 = m_ok - depth if m_ok > depth else 0
    pos = (idx + q0) % depth  # one modulo, then wrap by hand (a division per write is slow)
    for q in range(q0, m_ok):
        ring[k, pos] = t0 + q * self_gap
        pos += 1
        if pos == depth:
            pos = 0
    tl = t0 + (m_ok - 1) * self_gap
    return m_ok, tl, el, m_ok * t0 + self_gap * (m_ok * (m_ok - 1) // 2)


@_jit(cache=True, error_model="numpy")
def _run(ops, opsizes, masks, banks, rows, n_ch, nb, bpg, ng, depth, refi, faw, stall_limit,
         rptr, rscope, rnext, rcyc, touch, mode_of, is_open, is_close, row_in_log, completion,
         dkind, dcmd, dconv, dblock, dcolcount, keep_log,
         st_bank, st_group, st_chan, open_row, mode, last_issue, last_done, acts, n_acts, ref_due, ring, nreq,
         last_conv, last_leave, counts, chan_class, parent, cut, scal, open_since, open_cycles, rec,
         chan_counts, chan_open, self_gaps, lg, in_cnt, tot_cnt):
    # scal = [X (cycle in which the next instruction reaches the channels), number of channel classes,
    #         stalled command or _NOT_YET, its class] (the last two set by the watchdog, which then returns -1)
    ncls = scal[SCAL_CLASSES]
    # lg: the class log (LOG_* columns; `_log_push`); in_cnt / tot_cnt: scratch, one entry per class
    nlog = 0
    X = scal[SCAL_X]
    end = np.int64(_NOT_YET)

    # rec[i] (if given, one row per instruction): [cycle it reaches the channels, cycle the next one may,
    # first and last cycle (over its channels) in which its last request's final command issued, or _NOT_YET,
    # sum over its channels and requests of the cycles in which their final commands issued]
    recording = rec.shape[0] == ops.shape[0]
    for i in range(ops.shape[0]):
        if recording:
            if i > 0:
                rec[i - 1, REC_NEXT] = X
            rec[i, REC_ARRIVE] = X
            rec[i, REC_DONE_FIRST] = _NOT_YET
            rec[i, REC_DONE_LAST] = _NOT_YET
            rec[i, REC_ISSUE_SUM] = 0
        op = ops[i]
        kind = dkind[op]
        mask = masks[i]
        if kind == K_NONE or mask == 0:
            X += _host_wait(op, opsizes[i])
            continue
        n = opsizes[i] if dcolcount[op] == 1 else 1
        final = dcmd[op]
        conv = dconv[op]
        bank = banks[i]
        row = rows[i]
        final_bank = bank if touch[final] == TOUCH_BANK else _ALL_BANKS  # the bank its final command names
        # split the classes that the mask cuts through: afterwards each class is wholly in or out
        for k in range(ncls):
            in_cnt[k] = 0
            tot_cnt[k] = 0
        for c in range(n_ch):
            k = chan_class[c]
            tot_cnt[k] += 1
            if (mask >> c) & 1:
                in_cnt[k] += 1
        n_old = ncls
        for k in range(n_old):
            if in_cnt[k] > 0 and in_cnt[k] < tot_cnt[k]:
                _split_class(k, ncls, mask, X, nlog, n_ch, nb, in_cnt, tot_cnt, chan_class, parent, cut, st_bank,
                             st_group, st_chan, open_row, mode, last_issue, last_done, acts, n_acts, ref_due, ring,
                             nreq, last_conv, last_leave, counts, open_since, open_cycles, chan_counts, chan_open)
                ncls += 1
        x_next = np.int64(0)
        for k in range(ncls):
            if in_cnt[k] == 0:
                continue
            if kind == K_EOC or kind == K_SYNC:
                ack = _handshake(k, X, depth, ring, nreq, last_issue, last_done, last_leave)
                if ack > x_next:
                    x_next = ack
                continue
            # --- the instruction's n column requests: the first by the general path, the rest as a burst ---
            prev_e = np.int64(_NOT_YET)  # queue entry of the instruction's previous request
            t_prev = np.int64(_NOT_YET)
            issue_sum = np.int64(0)  # of this class's final-command cycles (one channel's worth)
            burst_from = _NO_BURST  # index of the request whose final command started the current burst
            pitch_first = np.int64(0)
            self_gap = self_gaps[final]
            e_last = np.int64(0)
            t_last = np.int64(0)
            skip_to = 0
            for j in range(n):
                if j < skip_to:
                    continue  # settled in closed form by the burst below
                # --- queue entry: its slot, once the other queue type's last request has left (docs/aim-device.md
                # rules 3 and 8), one cycle after the instruction's previous request ---
                idx = nreq[k]
                e = X
                if idx >= depth:
                    v = ring[k, (idx - depth) % depth] + 1
                    if v > e:
                        e = v
                if last_conv[k] != _NO_REQUEST and last_conv[k] != conv:
                    v = last_leave[k] + 1
                    if v > e:
                        e = v
                if prev_e > X and prev_e + 1 > e:
                    e = prev_e + 1
                prev_e = e
                # --- burst path: identical row-hit column command after the instruction's first ---
                if burst_from >= 0 and not keep_log and j == burst_from + 1:
                    m, tl, el, sum_m = _burst_closed_form(k, X, e, idx, n - j, pitch_first, self_gap, depth, ring,
                                                          ref_due[k])
                    if m > 0:
                        counts[k, final] += m
                        nreq[k] = idx + m
                        last_leave[k] = tl
                        last_conv[k] = conv
                        issue_sum += sum_m
                        t_prev = tl
                        e_last = el
                        t_last = tl
                        prev_e = el
                        skip_to = j + m
                        continue
                if burst_from >= 0:
                    t = pitch_first if j == burst_from + 1 else t_prev + self_gap
                    if e > t:
                        t = e
                    if t < ref_due[k]:
                        if keep_log:
                            nlog = _log_push(lg, nlog, t, k, final, bank, row, touch, row_in_log)
                        counts[k, final] += 1
                        issue_sum += t
                        t_prev = t
                        ring[k, idx % depth] = t
                        nreq[k] = idx + 1
                        last_leave[k] = t
                        last_conv[k] = conv
                        e_last = e
                        t_last = t
                        continue
                    # refresh due: settle the burst's last command, then take the general path
                    burst_from = _NO_BURST
                    _apply(k, final, bank, row, t_prev, st_bank, st_group, st_chan, open_row, mode, last_issue,
                           last_done, acts, n_acts, ref_due, refi, nb, bpg, rptr, rscope, rnext, rcyc, touch,
                           is_open, is_close, completion, counts, False, open_since, open_cycles)
                # --- general path: command by command, exactly as the reference engine plans it ---
                refreshes = 0  # refreshes this request sat through (watchdog: timing.refresh_stall_limit)
                last_ref = np.int64(_NOT_YET)  # cycle of the previous refresh it sat through
                while True:
                    # the next command, by request kind (register-mode requests need no row)
                    if kind == K_ALLBANK:
                        cmd, cb, cr = _plan_allbank(k, final, bank, row, nb, open_row, final_bank)
                    elif kind == K_SINGLE:
                        cmd, cb, cr = _plan_single(k, final, bank, row, open_row)
                    else:
                        cmd, cb, cr = final, _ALL_BANKS, _NO_ROW
                    t = _earliest(k, cmd, cb, st_bank, st_group, st_chan, acts, n_acts, faw, nb, bpg, touch,
                                  is_open)
                    if last_issue[k] + 1 > t:
                        t = last_issue[k] + 1
                    if e > t:
                        t = e
                    if t >= ref_due[k]:
                        rc, tr = _refresh_plan(k, e, st_bank, st_group, st_chan, open_row, mode, last_issue, acts,
                                               n_acts, ref_due, faw, nb, bpg, touch, is_open)
                        if rc == _REFAB and ref_due[k] >= e and ref_due[k] > last_ref:  # not catch-up
                            refreshes += 1
                            last_ref = tr
                            if refreshes > stall_limit:
                                scal[SCAL_STALL_CMD] = final
                                scal[SCAL_STALL_CLASS] = k
                                scal[SCAL_X] = X
                                scal[SCAL_CLASSES] = ncls
                                return np.int64(_NOT_YET), nlog
                        cmd, cb, cr, t = rc, _ALL_BANKS, _NO_ROW, tr
                    elif mode_of[cmd] != MODE_ANY and mode_of[cmd] != mode[k]:
                        cmd, cb, cr = _TMOD, _ALL_BANKS, _NO_ROW
                    _apply(k, cmd, cb, cr, t, st_bank, st_group, st_chan, open_row, mode, last_issue, last_done,
                           acts, n_acts, ref_due, refi, nb, bpg, rptr, rscope, rnext, rcyc, touch, is_open,
                           is_close, completion, counts, True, open_since, open_cycles)
                    if keep_log:
                        nlog = _log_push(lg, nlog, t, k, cmd, cb, cr, touch, row_in_log)
                    if cmd == final:
                        break
                issue_sum += t
                t_prev = t
                ring[k, idx % depth] = t
                nreq[k] = idx + 1
                last_leave[k] = t
                last_conv[k] = conv
                e_last = e
                t_last = t
                if j == n - 1:
                    continue
                # the next request of this instruction is a pure row hit: start a burst
                burst_from = j
                pitch_first = _earliest(k, final, final_bank, st_bank, st_group, st_chan, acts, n_acts, faw, nb, bpg,
                                        touch, is_open)
                if t + 1 > pitch_first:
                    pitch_first = t + 1
            if burst_from >= 0 and t_prev > last_issue[k]:
                # settle the burst: only its last command constrains what follows
                _apply(k, final, bank, row, t_prev, st_bank, st_group, st_chan, open_row, mode, last_issue,
                       last_done, acts, n_acts, ref_due, refi, nb, bpg, rptr, rscope, rnext, rcyc, touch,
                       is_open, is_close, completion, counts, False, open_since, open_cycles)
            if recording:
                if rec[i, REC_DONE_FIRST] < 0 or t_last < rec[i, REC_DONE_FIRST]:
                    rec[i, REC_DONE_FIRST] = t_last
                if t_last > rec[i, REC_DONE_LAST]:
                    rec[i, REC_DONE_LAST] = t_last
                rec[i, REC_ISSUE_SUM] += issue_sum * in_cnt[k]
            # the host sends the next instruction once this one's requests are queued; after a blocking
            # read-out (RD_MAC, RD_AF) only once its data has arrived (docs/aim-device.md rule 4)
            v = t_last + completion[final] + 1 if dblock[op] == 1 else e_last + 1
            if v > x_next:
                x_next = v
        if kind == K_EOC:
            end = x_next  # the cycle in which the last channel acknowledges EOC
            if recording:
                rec[i, REC_NEXT] = end
            break
        X = x_next + 1 if kind == K_SYNC else x_next  # after SYNC: one cycle after the last acknowledgement
        if ncls > 1 and not keep_log and dblock[op] == 1:
            ncls = _merge_classes(ncls, X, depth, faw, n_ch, nb, chan_class, st_bank, st_group, st_chan, open_row,
                                  mode, last_issue, last_done, acts, n_acts, ref_due, ring, nreq, last_conv,
                                  last_leave, counts, open_since, open_cycles, chan_counts, chan_open)
    if recording and ops.shape[0] > 0 and end < 0:
        rec[ops.shape[0] - 1, REC_NEXT] = X
    scal[SCAL_X] = X
    scal[SCAL_CLASSES] = ncls
    return end, nlog


# The kernel's entry takes the static tables and the device state as two flat int64 buffers (plus the
# config scalars and each array's offset in one small table) and carves `_run`'s ~40 arrays out of them as
# views: a call from Python then unboxes 10 arguments instead of ~50 (measured ~3.4 us -> ~1 us per call),
# which the system engine pays on each of its ~500 tiles per GPT2-XL token. `_run` itself is unchanged.
@_jit(cache=True, error_model="numpy")
def _run_packed(ops, opsizes, masks, banks, rows, rec, keep_log, cfg, tables, state, lg, work):
    n_ch, nb, ng, depth, nc = cfg[CFG_N_CH], cfg[CFG_NB], cfg[CFG_NG], cfg[CFG_DEPTH], cfg[CFG_N_CMDS]
    t, o = tables, cfg[OFF_T:]
    s, q = state, cfg[OFF_S:]
    return _run(ops, opsizes, masks, banks, rows, n_ch, nb, cfg[CFG_BPG], ng, depth, cfg[CFG_REFI],
                cfg[CFG_FAW], cfg[CFG_STALL],
                t[o[0]:o[1]], t[o[1]:o[2]], t[o[2]:o[3]], t[o[3]:o[4]], t[o[4]:o[5]], t[o[5]:o[6]],
                t[o[6]:o[7]], t[o[7]:o[8]], t[o[8]:o[9]], t[o[9]:o[10]], t[o[10]:o[11]], t[o[11]:o[12]],
                t[o[12]:o[13]], t[o[13]:o[14]], t[o[14]:o[15]], keep_log,
                s[q[0]:q[1]].reshape((n_ch, nb + 2, nc)), s[q[1]:q[2]].reshape((n_ch, ng + 2, nc)),
                s[q[2]:q[3]].reshape((n_ch, nc)), s[q[3]:q[4]].reshape((n_ch, nb)), s[q[4]:q[5]],
                s[q[5]:q[6]], s[q[6]:q[7]], s[q[7]:q[8]].reshape((n_ch, _FAW_WINDOW)), s[q[8]:q[9]],
                s[q[9]:q[10]], s[q[10]:q[11]].reshape((n_ch, depth)), s[q[11]:q[12]], s[q[12]:q[13]],
                s[q[13]:q[14]], s[q[14]:q[15]].reshape((n_ch, nc)), s[q[15]:q[16]], s[q[16]:q[17]],
                s[q[17]:q[18]], s[q[18]:q[19]], s[q[19]:q[20]], s[q[20]:q[21]], rec,
                s[q[21]:q[22]].reshape((n_ch, nc)), s[q[22]:q[23]], t[o[15]:o[16]], lg, work[:n_ch],
                work[n_ch:2 * n_ch])


@_jit(cache=True, error_model="numpy")
def _run_tile(ops, opsizes, masks, banks, rows, rec, keep_log, cfg, tables, state, lg, work):
    """`_run_packed` for `FastEngine.tile_runner`, which needs the EOC cycle but not the log length: returning
    one integer spares boxing a tuple on every tile."""
    return _run_packed(ops, opsizes, masks, banks, rows, rec, keep_log, cfg, tables, state, lg, work)[0]


def _pack(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One flat int64 buffer holding `arrays` back to back, and their start offsets (plus the end)."""
    offs = np.zeros(len(arrays) + 1, np.int64)
    offs[1:] = np.cumsum([a.size for a in arrays])
    flat = np.zeros(int(offs[-1]), np.int64)
    for a, o in zip(arrays, offs):
        flat[o:o + a.size] = a.ravel()
    return flat, offs


@_jit(cache=True, error_model="numpy", inline="always")
def _copy_row(a, dst, src):
    """a[dst] = a[src] for a C-contiguous array of per-class rows, element by element (a slice assignment
    may allocate a temporary, and the kernel runs without Numba's runtime)."""
    d = a[dst].reshape(-1)
    s = a[src].reshape(-1)
    for i in range(d.shape[0]):
        d[i] = s[i]


@_jit(cache=True, error_model="numpy", inline="always")
def _copy_class(dst, src, st_bank, st_group, st_chan, open_row, mode, last_issue, last_done,
                acts, n_acts, ref_due, ring, nreq, last_conv, last_leave, counts, open_since, open_cycles):
    """Class `dst` takes class `src`'s whole state (a split starts from its parent; a merge moves the last
    class into a freed slot). One place, so a new state field is copied everywhere or nowhere."""
    _copy_row(st_bank, dst, src)
    _copy_row(st_group, dst, src)
    _copy_row(st_chan, dst, src)
    _copy_row(open_row, dst, src)
    mode[dst] = mode[src]
    last_issue[dst] = last_issue[src]
    last_done[dst] = last_done[src]
    _copy_row(acts, dst, src)
    n_acts[dst] = n_acts[src]
    ref_due[dst] = ref_due[src]
    _copy_row(ring, dst, src)
    nreq[dst] = nreq[src]
    last_conv[dst] = last_conv[src]
    last_leave[dst] = last_leave[src]
    _copy_row(counts, dst, src)
    open_since[dst] = open_since[src]
    open_cycles[dst] = open_cycles[src]


@_jit(cache=True, error_model="numpy")
def _flush(k, now, n_ch, nb, chan_class, counts, open_cycles, open_since, open_row, chan_counts, chan_open):
    """Move class k's statistics (command counts, open-row cycles up to `now`) into its channels' totals."""
    is_open = False
    for b in range(nb):
        if open_row[k, b] != _NO_ROW:
            is_open = True
    # an open interval that began before `now` is closed off at `now` (one that begins later stays live)
    ongoing = is_open and now > open_since[k]
    extra = open_cycles[k] + (now - open_since[k] if ongoing else 0)
    for c in range(n_ch):
        if chan_class[c] == k:
            for j in range(counts.shape[1]):
                chan_counts[c, j] += counts[k, j]
            chan_open[c] += extra
    for j in range(counts.shape[1]):
        counts[k, j] = 0
    open_cycles[k] = 0
    if ongoing:
        open_since[k] = now


@_jit(cache=True, error_model="numpy")
def _same(k1, k2, X, depth, faw, st_bank, st_group, st_chan, open_row, mode, last_issue, last_done, acts, n_acts,
          ref_due, ring, nreq, last_conv, last_leave):
    """Would classes k1 and k2 behave identically from cycle X on? Times before X cannot constrain anything
    that issues at or after X, so they compare equal once clamped to X."""
    if mode[k1] != mode[k2] or ref_due[k1] != ref_due[k2] or last_conv[k1] != last_conv[k2]:
        return False
    for b in range(open_row.shape[1]):
        if open_row[k1, b] != open_row[k2, b]:
            return False
    if max(last_issue[k1] + 1, X) != max(last_issue[k2] + 1, X) or max(last_done[k1] + 1, X) != max(
            last_done[k2] + 1, X) or max(last_leave[k1] + 1, X) != max(last_leave[k2] + 1, X):
        return False
    for j in range(st_chan.shape[1]):
        if max(st_chan[k1, j], X) != max(st_chan[k2, j], X):
            return False
    for b in range(st_bank.shape[1]):
        for j in range(st_bank.shape[2]):
            if max(st_bank[k1, b, j], X) != max(st_bank[k2, b, j], X):
                return False
    for g in range(st_group.shape[1]):
        for j in range(st_group.shape[2]):
            if max(st_group[k1, g, j], X) != max(st_group[k2, g, j], X):
                return False
    for j in range(depth):
        i1 = nreq[k1] - 1 - j
        i2 = nreq[k2] - 1 - j
        v1 = ring[k1, i1 % depth] if i1 >= 0 else _PAST
        v2 = ring[k2, i2 % depth] if i2 >= 0 else _PAST
        if max(v1 + 1, X) != max(v2 + 1, X):
            return False
    if faw > 0:
        for j in range(_FAW_WINDOW):
            i1 = n_acts[k1] - 1 - j
            i2 = n_acts[k2] - 1 - j
            v1 = acts[k1, i1 % _FAW_WINDOW] if i1 >= 0 else _PAST
            v2 = acts[k2, i2 % _FAW_WINDOW] if i2 >= 0 else _PAST
            if max(v1 + faw, X) != max(v2 + faw, X):
                return False
    return True


@_jit(cache=True, error_model="numpy", inline="always")  # inlined: measured 1.75x faster
def _apply(k, cmd, bank, row, t, st_bank, st_group, st_chan, open_row, mode, last_issue, last_done, acts, n_acts,
           ref_due, refi, nb, bpg, rptr, rscope, rnext, rcyc, touch, is_open, is_close, completion, counts, count,
           open_since, open_cycles):
    b0, b1 = _bank_range(cmd, bank, nb, bpg, touch)
    every = touch[cmd] == TOUCH_ALL or (b0 == 0 and b1 == nb)  # an all-bank command: one update covers every bank
    ng = st_group.shape[1] - 2
    changes_rows = is_open[cmd] == 1 or is_close[cmd] == 1
    was_open = False
    if changes_rows:
        for b in range(nb):
            if open_row[k, b] != _NO_ROW:
                was_open = True
    for q in range(rptr[cmd], rptr[cmd + 1]):
        s = rscope[q]
        nx = rnext[q]
        v = t + rcyc[q]
        if s == _SCOPE_CHANNEL:
            if v > st_chan[k, nx]:
                st_chan[k, nx] = v
        elif s == _SCOPE_GROUP:
            if every:
                if v > st_group[k, ng, nx]:
                    st_group[k, ng, nx] = v
            elif b1 > b0:
                for g in range(b0 // bpg, (b1 - 1) // bpg + 1):
                    if v > st_group[k, g, nx]:
                        st_group[k, g, nx] = v
                if v > st_group[k, ng + 1, nx]:
                    st_group[k, ng + 1, nx] = v
        else:
            if every:
                if v > st_bank[k, nb, nx]:
                    st_bank[k, nb, nx] = v
            else:
                for b in range(b0, b1):
                    if v > st_bank[k, b, nx]:
                        st_bank[k, b, nx] = v
                if b1 > b0 and v > st_bank[k, nb + 1, nx]:
                    st_bank[k, nb + 1, nx] = v
    if is_open[cmd] == 1:
        for b in range(b0, b1):
            open_row[k, b] = row
        acts[k, n_acts[k] % _FAW_WINDOW] = t
        n_acts[k] += 1
    elif is_close[cmd] == 1:
        for b in range(b0, b1):
            open_row[k, b] = _NO_ROW
    if changes_rows:  # track the cycles with at least one open row (background energy)
        now_open = False
        for b in range(nb):
            if open_row[k, b] != _NO_ROW:
                now_open = True
        if now_open and not was_open:
            open_since[k] = t
        elif was_open and not now_open:
            open_cycles[k] += t - open_since[k]
    if cmd == _TMOD:
        mode[k] = MODE_REG if mode[k] == MODE_BANK else MODE_BANK
    if cmd == _REFAB:
        ref_due[k] += refi
    if count:
        counts[k, cmd] += 1
    last_issue[k] = t
    v = t + completion[cmd]
    if v > last_done[k]:
        last_done[k] = v


def needs_reference(prog: Program, cfg: ArchConfig) -> bool:
    """FR-FCFS reorders conventional requests; the fast engine models in-order queues only."""
    if cfg.controller.conventional_scheduler != "frfcfs":
        return False
    kind, _, conv, _, _ = decode_arrays()
    return bool(np.any(conv[prog.op] == 1))


_NO_RECORD = np.zeros((0, N_REC), np.int64)
_NO_LOG = np.zeros((0, N_LOG), np.int64)  # the log buffer of a run that logs nothing
_AOT: list = []  # the ahead-of-time kernel, or None; looked up once per process


def kernel(fast_start: bool = False):
    """The kernel to call. With `fast_start` (one replay in a short process), the ahead-of-time build
    (simulator/dram/aot.py) if one exists for this source: it spares Numba's start-up (0.5-1 s). Long runs
    (the system engine's generations) take the JIT function: they load Numba for the memo anyway, and the
    build ran ~1.3x slower than the JIT until the kernel lost Numba's runtime (now about equal).
    PIMSIM_AOT=0 never uses the build, PIMSIM_AOT=1 always does."""
    import os

    flag = os.environ.get("PIMSIM_AOT", "")
    if flag != "0" and (fast_start or flag == "1"):
        if not _AOT:
            from simulator.dram.aot import load

            _AOT.append(load())
        if _AOT[0] is not None:
            return _AOT[0]
    return jit_kernels()


class FastState:
    """The whole device state of the fast engine, carried from one program to the next (the PIM-GPT system
    runs one program per operator). `x` is the cycle in which the next instruction reaches the channels."""

    def __init__(self, cfg: ArchConfig):
        org, tm = cfg.organisation, cfg.timing
        n, nb, ng = org.channels, org.banks, org.bank_groups
        self.arrays = dict(
            # two extra bank / group entries: what all-bank commands put on every bank / group, and the
            # maximum over the individual ones (so an all-bank command reads 4 entries, not 20)
            st_bank=np.zeros((n, nb + 2, N_CMDS), np.int64), st_group=np.zeros((n, ng + 2, N_CMDS), np.int64),
            st_chan=np.zeros((n, N_CMDS), np.int64), open_row=-np.ones((n, nb), np.int64),
            mode=np.zeros(n, np.int64), last_issue=np.zeros(n, np.int64), last_done=np.zeros(n, np.int64),
            acts=np.zeros((n, _FAW_WINDOW), np.int64), n_acts=np.zeros(n, np.int64),
            ref_due=np.full(n, tm.nREFI if cfg.refresh.enabled else np.int64(1) << 62, np.int64),
            ring=np.zeros((n, org.queue_depth), np.int64), nreq=np.zeros(n, np.int64),
            last_conv=-np.ones(n, np.int64), last_leave=np.zeros(n, np.int64),
            counts=np.zeros((n, N_CMDS), np.int64), chan_class=np.zeros(n, np.int64),
            parent=-np.ones(n, np.int64), cut=np.zeros(n, np.int64), scal=np.array([1, 1, _NOT_YET, _NOT_YET], np.int64),
            open_since=np.zeros(n, np.int64), open_cycles=np.zeros(n, np.int64),
            chan_counts=np.zeros((n, N_CMDS), np.int64), chan_open=np.zeros(n, np.int64),
        )
        # all of it in one flat buffer (the kernel's `state`); the named arrays are views into it
        assert tuple(self.arrays) == STATE
        self.flat, self.offsets = _pack(list(self.arrays.values()))
        self.arrays = {k: self.flat[o:o + v.size].reshape(v.shape)
                       for (k, v), o in zip(self.arrays.items(), self.offsets)}

    @property
    def x(self) -> int:
        return int(self.arrays["scal"][SCAL_X])

    def channel_counts(self) -> np.ndarray:
        """Commands issued so far, per channel: [channels, N_CMDS] (flushed totals + the live class's)."""
        return self.arrays["chan_counts"] + self.arrays["counts"][self.arrays["chan_class"]]

    def open_rows(self) -> np.ndarray:
        return self.arrays["open_row"][self.arrays["chan_class"]]

    def bank_open_cycles(self, now: int) -> int:
        """Sum over channels of cycles (up to `now`) in which at least one bank held an open row."""
        a = self.arrays
        cls = a["chan_class"]
        total = a["chan_open"] + a["open_cycles"][cls]
        is_open = (a["open_row"][cls] != -1).any(axis=1)
        total[is_open] += now - a["open_since"][cls][is_open]
        return int(total.sum())


class FastEngine:
    """Runs programs on one device, keeping its state between calls."""

    def __init__(self, cfg: ArchConfig, memo: bool | None = None, fast_start: bool = False,
                 memo_min_columns: int | None = None):
        org, tm = cfg.organisation, cfg.timing
        self.cfg = cfg
        self.fast_start = fast_start  # see kernel()
        self.state = FastState(cfg)
        self._work = np.zeros(2 * org.channels, np.int64)  # the kernel's scratch: two counts per channel class
        self._use_memo = MEMO_DEFAULT if memo is None else memo
        self._kernel = None  # the kernel `_kernel_run` calls, found at its first call
        gap = timing_arrays(tm).gap
        rptr, rscope, rnext, rcyc = _rules_csr(gap)
        # pitch of back-to-back identical column commands: the largest self-constraint that applies
        self._self_gaps = np.array([max(1, gap[2, c, c], *( (gap[0, c, c], gap[1, c, c]) if _TOUCH[c] else ()))
                                    for c in range(N_CMDS)], dtype=np.int64)
        completion = np.zeros(N_CMDS, np.int64)
        for name, v in cfg.completion.model_dump().items():
            completion[int(Cmd[name])] = v
        modes = command_modes(org.readout_mode_switch)
        mode_of = np.array([modes[c] for c in Cmd], dtype=np.int64)
        windows = build_window_rules(tm, cfg.controller.enforce_faw)
        assert all(w.window == _FAW_WINDOW and set(w.commands) == OPENS for w in windows)
        faw = windows[0].cycles if windows else 0
        scalars = (org.channels, org.banks, org.banks_per_group, org.bank_groups, org.queue_depth,
                   tm.nREFI if cfg.refresh.enabled else 0, faw, refresh_stall_limit(tm) if cfg.refresh.enabled else 0, N_CMDS)
        self._tables, table_offs = _pack([rptr, rscope, rnext, rcyc, _TOUCH, mode_of, _IS_OPEN, _IS_CLOSE,
                                          _ROW_IN_LOG, completion, *decode_arrays(), self._self_gaps])
        self._cfg = np.array([*scalars, *table_offs, *self.state.offsets], np.int64)
        self.memo = (RunMemo(self._cfg, self._tables, self.state.flat,
                             min_columns=MEMO_MIN_COLUMNS if memo_min_columns is None else memo_min_columns)
                     if self._use_memo else None)

    def kernel_args(self, op, opsize, mask, bank, row, keep_log, rec, log=None) -> tuple:
        """The kernel's arguments (`_run_packed`): the program (as int64), the record, keep_log, then the
        config scalars with the offsets, the static tables and the state, each one flat int64 buffer, then
        the log buffer (none: nothing logged) and the kernel's scratch buffer."""
        prog = (np.ascontiguousarray(v, np.int64) for v in (op, opsize, mask, bank, row))
        return (*prog, rec if rec is not None else _NO_RECORD, bool(keep_log), self._cfg, self._tables,
                self.state.flat, _NO_LOG if log is None else log, self._work)

    def run(self, op, opsize, mask, bank, row, keep_log: bool = False, x_after: np.ndarray | None = None,
            record: np.ndarray | None = None) -> tuple[int, np.ndarray]:
        """Run instructions from the current state. Returns (EOC cycle or -1, class log). If `x_after` (same
        length as the program) is given, it receives for each instruction the cycle in which the next one
        may reach the channels. If `record` ([len(program), 5] int64) is given, it receives per instruction
        the columns REC_ARRIVE, REC_NEXT, REC_DONE_FIRST, REC_DONE_LAST, REC_ISSUE_SUM (see `_run`); both work with every
        shortcut on."""
        a = self.state.arrays
        rec = record
        if rec is None:
            rec = np.zeros((len(op), N_REC), np.int64) if x_after is not None else _NO_RECORD
        if self._memoise(op, opsize, np.asarray(mask, np.int64), keep_log):
            prog = tuple(np.ascontiguousarray(v, np.int64) for v in (op, opsize, mask, bank, row))
            if rec.shape[0] == 0:
                rec = np.zeros((len(op), N_REC), np.int64)  # an entry keeps the record for later x_after callers
            # the memo's compiled entries take a C-contiguous int64 record (simulator/dram/native.py)
            work = rec if rec.flags.c_contiguous and rec.dtype == np.int64 else np.zeros((len(op), N_REC), np.int64)
            out = self._run_memoised(*prog, work, self._kernel_run), _NO_LOG
            if work is not rec:
                rec[:] = work
        else:
            k = kernel(self.fast_start)
            if keep_log:
                out = self._run_logged(k, (op, opsize, mask, bank, row), rec)
            else:
                out = int(k(*self.kernel_args(op, opsize, mask, bank, row, False, rec))[0]), _NO_LOG
            if a["scal"][SCAL_STALL_CMD] >= 0:
                self._stalled()
        if x_after is not None:
            x_after[:] = rec[:, REC_NEXT]
        return out

    def _run_logged(self, k, prog: tuple, rec: np.ndarray) -> tuple[int, np.ndarray]:
        """A run with the class log. The kernel cannot grow the log (it allocates nothing): when the buffer
        was too small it reports the length it needed, and the program runs again from the saved state."""
        start = self.state.flat.copy()
        log = np.zeros((_LOG_CAPACITY, N_LOG), np.int64)
        while True:
            end, n = k(*self.kernel_args(*prog, True, rec, log))
            if n <= log.shape[0]:
                return int(end), log[:n]
            self.state.flat[:] = start
            log = np.zeros((n, N_LOG), np.int64)

    def _memoise(self, op, opsize, mask, keep_log) -> bool:
        """Whether this call goes through the memo: memo on, no log, and a program the memo takes
        (`RunMemo.takes`)."""
        return self.memo is not None and not keep_log and self.memo.takes(len(op), opsize, mask)

    def _run_memoised(self, op, opsize, mask, bank, row, rec, run) -> int:
        """Run a program (C-contiguous int64 arrays, a full-length record) through the memo: a hit plays the
        stored effect, a miss runs `run(op, opsize, mask, bank, row, rec)` (the kernel; returns the EOC cycle)
        and stores it. Returns the EOC cycle or -1."""
        hit, end, token = self.memo.lookup(op, opsize, mask, bank, row, rec)
        if not hit:
            end = run(op, opsize, mask, bank, row, rec)
            self.memo.store(token, end, op, opsize, mask, rec)
        return end

    def _kernel_run(self, op, opsize, mask, bank, row, rec) -> int:
        """One run of the kernel through its dispatcher (C-contiguous int64 arrays); returns the EOC cycle."""
        k = self._kernel
        if k is None:
            k = self._kernel = kernel(self.fast_start)  # looked up once (it reads the environment)
        end = int(k(op, opsize, mask, bank, row, rec, False, self._cfg, self._tables, self.state.flat, _NO_LOG,
                    self._work)[0])
        if self.state.arrays["scal"][SCAL_STALL_CMD] >= 0:
            self._stalled()
        return end

    def _stalled(self):
        """The watchdog stopped the run: one line naming the stalled command and channel."""
        a = self.state.arrays
        cls = int(a["scal"][SCAL_STALL_CLASS])
        channel = int(np.flatnonzero(a["chan_class"] == cls)[0])
        refreshes = refresh_stall_limit(self.cfg.timing) + 1
        raise PimsimError(stall_message(self.cfg.timing, Cmd(int(a["scal"][SCAL_STALL_CMD])), channel, refreshes))

    def tile_runner(self):
        """`run` for many short programs in a row (the system engine issues ~500 per GPT2-XL token), with its
        per-call Python work done once: the kernel and its static / state arguments are bound here, and the
        record goes to a reused buffer. Returns run_tile(op, opsize, mask, bank, row) -> the program's record
        rows (`record` of `run`; a view, valid until the next call; rows after an EOC are not written).
        The program arrays must be C-contiguous int64. Programs the memo takes (`_memoise`) go through it."""
        a = self.state.arrays
        k = kernel(self.fast_start)
        memo = self.memo
        takes: dict[int, tuple] = {}  # id(opsize) -> (opsize, whether the memo takes its program)
        aot = not hasattr(k, "py_func")
        if not aot:  # the JIT (not an ahead-of-time build): the entry that returns the EOC cycle alone
            k = _run_tile
        cfg, tables, flat, work = self._cfg, self._tables, self.state.flat, self._work
        scal = a["scal"]
        buf = [np.zeros((1 << 12, N_REC), np.int64)]
        views: dict[int, np.ndarray] = {}  # program length -> the buffer's first rows (made once per length)
        direct = [None]  # the compiled overload itself: skips the dispatcher's typing of its arguments

        def run_tile(op, opsize, mask, bank, row):
            rec = views.get(op.shape[0])
            if rec is None:
                n = op.shape[0]
                if n > buf[0].shape[0]:
                    buf[0] = np.zeros((2 * n, N_REC), np.int64)
                    views.clear()
                rec = views[n] = buf[0][:n]
            if memo is not None:
                # `RunMemo.takes`, cached by array: the system engine passes the same arrays token after token
                # (a stale answer could only send a program the other way; the memo compares programs)
                seen = takes.get(id(opsize))
                if seen is None or seen[0] is not opsize:
                    if len(takes) > 4096:
                        takes.clear()
                    seen = takes[id(opsize)] = (opsize, memo.takes(op.shape[0], opsize, mask))
                if seen[1]:
                    self._run_memoised(op, opsize, mask, bank, row, rec, run)
                    return rec
            run(op, opsize, mask, bank, row, rec)
            return rec

        def run(op, opsize, mask, bank, row, rec) -> int:
            """The kernel's run; returns the EOC cycle or -1."""
            call = direct[0]
            if call is None:
                end = k(op, opsize, mask, bank, row, rec, False, cfg, tables, flat, _NO_LOG, work)
                direct[0] = compiled_entry(k, (op, opsize, mask, bank, row, rec, False, cfg, tables, flat,
                                                _NO_LOG, work))
            else:
                end = call(op, opsize, mask, bank, row, rec, False, cfg, tables, flat, _NO_LOG, work)
            if scal[SCAL_STALL_CMD] >= 0:
                self._stalled()
            return int(end[0] if aot else end)

        return run_tile


def run_fast(prog: Program, cfg: ArchConfig, keep_log: bool = False) -> ReplayResult:
    start = time.perf_counter()
    eng = FastEngine(cfg, memo=False, fast_start=True)  # one call: nothing to look up, and no Numba to load
    end, lg = eng.run(prog.op, prog.opsize, prog.mask, prog.bank, prog.row, keep_log)
    a = eng.state.arrays
    log = _expand_log(lg, a["chan_class"], a["parent"], a["cut"]) if keep_log else None
    return ReplayResult(cycles=int(end), tck_ns=cfg.timing.tck_ns, counts=eng.state.channel_counts(),
                        engine="fast", wall_s=time.perf_counter() - start, log=log,
                        extra={"channel_classes": int(a["scal"][SCAL_CLASSES])})


def _expand_log(lg: np.ndarray, chan_class: np.ndarray, parent: np.ndarray, cut: np.ndarray) -> CommandLog:
    """A channel's commands are its class's entries plus its ancestors' entries from before each split."""
    pos = np.arange(lg.shape[0])
    parts = []
    for ch, k in enumerate(chan_class):
        sel = np.zeros(lg.shape[0], bool)
        limit = lg.shape[0]
        while k >= 0:
            sel |= (lg[:, 1] == k) & (pos < limit)
            limit = cut[k] if parent[k] >= 0 else limit
            k = parent[k]
        rows = lg[sel]
        parts.append(np.column_stack([rows[:, 0], np.full(len(rows), ch), rows[:, 2], rows[:, 3], rows[:, 4]]))
    arr = np.concatenate(parts) if parts else np.zeros((0, 5), np.int64)
    return CommandLog(*(arr[:, i].astype(np.int64) for i in range(5))).sorted()
