"""Reference engine: a command-by-command, cycle-ordered simulation written to be read against the spec.

It advances a global clock from event to event. In each visited cycle: (1) the host expands the current ISR
or moves waiting requests into the channel queues, (2) every channel issues at most one command, (3) the
host notices completed blocking ISRs, SYNCs and the EOC. A channel plans its next command from the timing
table (simulator/dram/timing.py) and its row/mode state; nothing is batched or memoized here. Semantics:
docs/aim-device.md 'Semantics that decide the cycle count', summarised in docs/device-model.md.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simulator.dram.commands import (
    CLOSES,
    COLUMN,
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
from simulator.dram.program import Program
from simulator.dram.requests import BLOCKING, DECODE, K_ALLBANK, K_EOC, K_NONE, K_SINGLE, K_SYNC, command_modes, requests_per_channel
from simulator.dram.timing import (
    SCOPE_CHANNEL,
    SCOPE_GROUP,
    build_constraints,
    build_window_rules,
    refresh_stall_limit,
    stall_message,
)
from simulator.errors import PimsimError

if TYPE_CHECKING:  # type hints only: importing the schema builds pydantic models
    from simulator.config.schema import ArchConfig

INF = float("inf")


@dataclass
class Request:
    op: Op
    kind: int
    final: Cmd
    conventional: bool
    bank: int
    row: int
    entry: int = -1
    issued: int = -1  # cycle of its final command (its departure)
    ack: int = -1  # EOC / SYNC acknowledgement
    refreshes: int = 0  # refreshes that came due while it waited at the head (watchdog)
    last_ref: int = -1  # cycle of the last of those


@dataclass
class Plan:
    t: int
    cmd: Cmd
    bank: int
    row: int
    req: Request | None  # None for refresh commands
    final: bool


class ChannelModel:
    def __init__(self, cid: int, cfg: ArchConfig, rules: dict):
        org, tm = cfg.organisation, cfg.timing
        self.cid, self.nb, self.bpg = cid, org.banks, org.banks_per_group
        self.rules = rules  # prev cmd -> [(next cmd, scope, cycles)]
        self.bank_ok = [[0] * N_CMDS for _ in range(self.nb)]
        self.group_ok = [[0] * N_CMDS for _ in range(org.bank_groups)]
        self.chan_ok = [0] * N_CMDS
        self.open_row = [-1] * self.nb
        self.mode = MODE_BANK
        self.last_issue = 0
        self.last_done = 0
        self.windows = build_window_rules(tm, cfg.controller.enforce_faw)  # nFAW, when enforced
        self.history = [[] for _ in self.windows]  # issue cycles of each window rule's commands
        self.refi = tm.nREFI if cfg.refresh.enabled else 0
        self.ref_due = tm.nREFI if cfg.refresh.enabled else INF
        self.timing = tm
        self.stall_limit = refresh_stall_limit(tm) if cfg.refresh.enabled else 0
        self.frfcfs = cfg.controller.conventional_scheduler == "frfcfs"
        self.completion = cfg.completion.model_dump()
        self.mode_of = command_modes(org.readout_mode_switch)
        self.queue: deque[Request] = deque()
        self.counts = [0] * N_CMDS
        self.log: list[tuple[int, int, int, int, int]] | None = None

    # -- addressing --------------------------------------------------------------------------------
    def banks_of(self, cmd: Cmd, bank: int) -> range:
        touch = TOUCH[cmd]
        if touch == TOUCH_BANK:
            return range(bank, bank + 1)
        if touch == TOUCH_GROUP:
            g = bank // self.bpg
            return range(g * self.bpg, (g + 1) * self.bpg)
        if touch == TOUCH_NONE:
            return range(0)
        assert touch == TOUCH_ALL
        return range(self.nb)

    # -- timing table --------------------------------------------------------------------------------
    def earliest(self, cmd: Cmd, bank: int) -> int:
        t = self.chan_ok[cmd]
        banks = self.banks_of(cmd, bank)
        for b in banks:
            t = max(t, self.bank_ok[b][cmd])
        for g in {b // self.bpg for b in banks}:
            t = max(t, self.group_ok[g][cmd])
        for w, hist in zip(self.windows, self.history):
            if cmd in w.commands and len(hist) >= w.window:
                t = max(t, hist[-w.window] + w.cycles)
        return t

    def issue(self, p: Plan) -> None:
        cmd, t = p.cmd, p.t
        banks = self.banks_of(cmd, p.bank)
        groups = {b // self.bpg for b in banks}
        for nxt, scope, cyc in self.rules.get(cmd, ()):
            if scope == SCOPE_CHANNEL:
                self.chan_ok[nxt] = max(self.chan_ok[nxt], t + cyc)
            elif scope == SCOPE_GROUP:
                for g in groups:
                    self.group_ok[g][nxt] = max(self.group_ok[g][nxt], t + cyc)
            else:
                for b in banks:
                    self.bank_ok[b][nxt] = max(self.bank_ok[b][nxt], t + cyc)
        for w, hist in zip(self.windows, self.history):
            if cmd in w.commands:
                hist.append(t)
        if cmd in OPENS:
            for b in banks:
                self.open_row[b] = p.row
        elif cmd in CLOSES:
            for b in banks:
                self.open_row[b] = -1
        elif cmd == Cmd.TMOD:
            self.mode = MODE_REG if self.mode == MODE_BANK else MODE_BANK
        if cmd == Cmd.REFab:
            head = self.queue[0] if self.queue else None
            # refreshes owed from before it arrived, or still owed when the previous one issued (catch-up after
            # an idle spell), are not its wait
            if head is not None and self.ref_due >= head.entry and self.ref_due > head.last_ref:
                head.refreshes += 1
                head.last_ref = t
                if head.refreshes > self.stall_limit:
                    raise PimsimError(stall_message(self.timing, head.final, self.cid, head.refreshes))
            self.ref_due += self.refi
        self.counts[cmd] += 1
        self.last_issue = t
        self.last_done = max(self.last_done, t + self.completion.get(cmd.name, 0))
        if self.log is not None:
            row = p.row if cmd in ROW_IN_LOG else -1
            self.log.append((t, self.cid, int(cmd), p.bank if len(banks) == 1 or TOUCH[cmd] == TOUCH_GROUP
                             else -1, row))

    # -- planning ------------------------------------------------------------------------------------
    def next_command(self, req: Request) -> tuple[Cmd, int, int]:
        """The request's next command given the row state (docs/aim-device.md rule 7)."""
        if req.kind == K_ALLBANK:
            if any(r not in (-1, req.row) for r in self.open_row):
                return Cmd.PREA, -1, -1
            if any(r == -1 for r in self.open_row):
                return Cmd.ACT16, -1, req.row
            return req.final, req.bank if TOUCH[req.final] == TOUCH_BANK else -1, req.row
        if req.kind == K_SINGLE:
            r = self.open_row[req.bank]
            if r not in (-1, req.row):
                return Cmd.PRE, req.bank, -1
            if r == -1:
                return Cmd.ACT, req.bank, req.row
            return req.final, req.bank, req.row
        return req.final, -1, -1  # register-mode command

    def _with_mode_and_refresh(self, t: int, cmd: Cmd, bank: int, row: int, req: Request) -> Plan:
        if t >= self.ref_due:  # refresh is due: it goes first (lazy refresh, docs/device-model.md)
            # noticed when the request is planned: never before the request reached the queue
            base = max(self.ref_due, self.last_issue + 1, req.entry)
            rc = Cmd.PREA if any(r != -1 for r in self.open_row) else Cmd.REFab
            tr = max(self.earliest(rc, -1), base)
            if self.mode != MODE_BANK:
                return Plan(tr, Cmd.TMOD, -1, -1, None, False)
            return Plan(tr, rc, -1, -1, None, False)
        if self.mode_of[cmd] != MODE_ANY and self.mode_of[cmd] != self.mode:
            return Plan(t, Cmd.TMOD, -1, -1, req, False)  # TMOD when the command itself would be legal
        return Plan(t, cmd, bank, row, req, cmd == req.final)

    def plan(self) -> Plan | None:
        if not self.queue:
            return None
        head = self.queue[0]
        if head.kind in (K_EOC, K_SYNC):
            return Plan(max(head.entry, self.last_issue + 1), head.final, -1, -1, head, True)
        if head.conventional and self.frfcfs:
            return self._plan_frfcfs()
        cmd, bank, row = self.next_command(head)
        t = max(self.earliest(cmd, bank), self.last_issue + 1, head.entry)
        return self._with_mode_and_refresh(t, cmd, bank, row, head)

    def _plan_frfcfs(self) -> Plan | None:
        """First-ready first-come-first-served over the queued conventional requests: among the commands
        that can issue earliest, row hits (column commands) first, then the oldest request. A PRE is held
        back while another queued request still hits the row it would close."""
        best = None
        for age, req in enumerate(self.queue):
            if not req.conventional:
                continue  # a trailing EOC / SYNC waits until the conventional requests have left
            cmd, bank, row = self.next_command(req)
            if cmd == Cmd.PRE and any(o is not req and o.conventional and o.bank == bank
                                      and o.row == self.open_row[bank] for o in self.queue):
                continue
            t = max(self.earliest(cmd, bank), self.last_issue + 1, req.entry)
            key = (t, 0 if cmd in COLUMN else 1, age)
            if best is None or key < best[0]:
                best = (key, cmd, bank, row, req)
        if best is None:
            return None
        (t, _, _), cmd, bank, row, req = best
        return self._with_mode_and_refresh(t, cmd, bank, row, req)

    def execute(self, p: Plan) -> None:
        req = p.req
        if p.cmd in (Cmd.EOC, Cmd.SYNC):
            self.last_issue = p.t  # EOC / SYNC use the command slot
            req.issued = p.t
            req.ack = max(p.t + 1, self.last_done + 1)
            self.queue.remove(req)
            return
        self.issue(p)
        if p.final:
            req.issued = p.t
            self.queue.remove(req)


def _compatible(queue: deque, req: Request) -> bool:
    """AiM and conventional requests never share a queue (docs/aim-device.md rule 8); EOC / SYNC fit either."""
    if not queue or req.kind in (K_EOC, K_SYNC):
        return True
    return all(r.conventional == req.conventional for r in queue if r.kind not in (K_EOC, K_SYNC))


def run_reference(prog: Program, cfg: ArchConfig, keep_log: bool = False,
                  record: np.ndarray | None = None) -> ReplayResult:
    """Replay `prog`. If `record` ([len(prog), 5] int64) is given, it receives per instruction: the cycle it
    reaches the channels, the cycle the next one may, the first and last cycle (over its channels) in which
    its last request's final command issued (-1 for host-side instructions, SYNC and EOC), and the sum of
    the cycles in which all its requests' final commands issued (0 for those)."""
    start = time.perf_counter()
    rules: dict = {}
    for c in build_constraints(cfg.timing):
        rules.setdefault(c.prev, []).append((c.next, c.scope, c.cycles))
    n_ch, depth = cfg.organisation.channels, cfg.organisation.queue_depth
    chans = [ChannelModel(c, cfg, rules) for c in range(n_ch)]
    completion = cfg.completion.model_dump()
    if keep_log:
        for ch in chans:
            ch.log = []

    i, X, state, now, end = 0, 1, "expand", 1, None
    pending: dict[int, deque[Request]] = {}
    waiting: list[Request] = []
    n_isr = len(prog)
    inst_reqs: dict[int, list[list[Request]]] = {}  # instruction -> its requests, per target channel

    def note(idx: int, arrive: int, nxt: int) -> None:
        if record is not None:
            record[idx, 0], record[idx, 1] = arrive, nxt

    while end is None:
        # (1) host: expand the ISR that arrives now, then move requests into queues with room
        while state == "expand" and now == X and i < n_isr:
            op = Op(int(prog.op[i]))
            kind, final, conv, _ = DECODE[op]
            n = requests_per_channel(op, int(prog.opsize[i]))
            mask = int(prog.mask[i])
            if kind == K_NONE or n == 0 or mask == 0:
                # host-side instruction: one cycle (DELAY: its opsize in cycles), no DRAM time
                X, i = now + (max(1, int(prog.opsize[i])) if op == Op.DELAY else 1), i + 1
                note(i - 1, now, X)
                break
            pending = {c: deque(Request(op, kind, final, bool(conv), int(prog.bank[i]), int(prog.row[i]))
                                for _ in range(n)) for c in range(n_ch) if mask >> c & 1}
            waiting = []
            arrived = now
            if op not in (Op.SYNC, Op.EOC) and record is not None:
                inst_reqs[i] = [list(reqs) for reqs in pending.values()]
            state = "entering"
        if state == "entering":
            for c, reqs in pending.items():
                q = chans[c].queue
                budget = len(reqs) if now == X else 1  # bulk at arrival, then one per cycle
                while reqs and budget and len(q) < depth and _compatible(q, reqs[0]):
                    r = reqs.popleft()
                    r.entry = now
                    q.append(r)
                    waiting.append(r)
                    budget -= 1
            if all(not r for r in pending.values()):
                head = waiting[0]
                blocks = DECODE[head.op][BLOCKING]
                if blocks or head.kind in (K_SYNC, K_EOC):  # the host waits for a blocking ISR or a handshake
                    state = "wait"
                else:
                    X, i, state = now + 1, i + 1, "expand"
                    note(i - 1, arrived, X)
        # (2) channels: at most one command each
        for ch in chans:
            p = ch.plan()
            if p is not None:
                assert p.t >= now, "reference engine skipped a cycle"
                if p.t == now:
                    ch.execute(p)
        # (3) host: blocking ISRs, SYNC and EOC
        if state == "wait":
            op = waiting[0].op
            if DECODE[op][BLOCKING]:  # a blocking read-out: done once its final command completes everywhere
                last = [r for r in waiting if r.issued >= 0]
                if len(last) == len(waiting):
                    comp = completion.get(waiting[0].final.name, 0)
                    X, i, state = max(r.issued + comp for r in waiting) + 1, i + 1, "expand"
                    note(i - 1, arrived, X)
            elif all(r.ack >= 0 for r in waiting):
                if op == Op.EOC:
                    end = max(r.ack for r in waiting)
                    note(i, arrived, end)
                else:
                    X, i, state = max(r.ack for r in waiting) + 1, i + 1, "expand"
                    note(i - 1, arrived, X)
        if end is not None:
            break
        # next cycle in which anything can happen
        nxt = [X] if state == "expand" else []
        for c, ch in enumerate(chans):
            p = ch.plan()
            if p is not None:
                nxt.append(p.t)
                if state == "entering" and pending.get(c):
                    nxt.append(p.t + 1)
            if state == "entering" and pending.get(c):
                q = ch.queue
                if len(q) < depth and _compatible(q, pending[c][0]):
                    nxt.append(now + 1)
        if not nxt:
            raise RuntimeError("reference engine stalled")  # cannot happen for a valid program
        now = max(now + 1, min(nxt))

    if record is not None:
        record[:, 2:4] = -1
        record[:, 4] = 0
        for idx, per_channel in inst_reqs.items():
            record[idx, 2] = min(reqs[-1].issued for reqs in per_channel)
            record[idx, 3] = max(reqs[-1].issued for reqs in per_channel)
            record[idx, 4] = sum(r.issued for reqs in per_channel for r in reqs)
    counts = np.array([ch.counts for ch in chans], dtype=np.int64)
    log = None
    if keep_log:
        rows = [e for ch in chans for e in ch.log]
        arr = np.array(rows, dtype=np.int64).reshape(-1, 5)
        log = CommandLog(*(arr[:, k].copy() for k in range(5))).sorted()
    return ReplayResult(cycles=int(end), tck_ns=cfg.timing.tck_ns, counts=counts, engine="reference",
                        wall_s=time.perf_counter() - start, log=log)
