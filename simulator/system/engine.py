"""The PIM-GPT system engine: an event-driven (SimPy) model of the ASIC's PIM controller and function units.

Per token, the mapping yields a dependency graph of PIM tiles and ASIC jobs (simulator/mapping/tiles.py).
Two kinds of SimPy process play it (docs/system.md "Engine"):
- the **PIM controller** (one process: the ASIC's in-order PIM controller, which issues to channel masks):
  it takes the next ready tile (critical tiles in program order first; K/V writes only when nothing else is
  ready, i.e. in the PIM's idle time) and runs it on the persistent command-exact fast device engine from
  max(now, the device's host time); an idle gap is issued as a host DELAY, so the device stays
  command-exact. The per-instruction arrival cycles give each read-out's time; consumers are told at
  once, and the controller waits until the tile's last instruction has been accepted;
- **ASIC jobs**, event callbacks rather than a process each (cheaper, same semantics): when a job's inputs
  are done it books the function units it needs (simulator/asic/units.py: pipelines with lanes, depth,
  initiation interval; a unit serves one operator stream at a time, in request order) and completes as a
  SimPy timeout when its last element leaves the last pipeline. A job fed by a tile's read-outs (`stream`)
  starts when the tile is issued and consumes the read-outs as they arrive (FIFO recursion over their
  arrival cycles), with no per-read-out events.
With overlap off (`asic.overlap: false` / `--overlap off`) every node waits for the previous one in
program order and streams wait for their whole tile: latency is exactly the sum of the node durations.

Each node records what it last waited for (its latest input, or the tile / job that held its resource);
walking back from the token's end gives the critical path, which the per-token breakdowns come from
(simulator/system/stats.py). `run_reference` replays the exact sequence of programs the controller issued
(tiles and DELAYs) through the command-by-command reference engine.
"""

from __future__ import annotations

import gc
import heapq
import math

import numpy as np
import simpy

from simulator.asic.units import UnitPool, units_from_config
from simulator.config.schema import ArchConfig
from simulator.dram.fast import REC_NEXT, FastEngine
from simulator.dram.reference import run_reference
from simulator.mapping.pim_gpt import PimGptMapping
from simulator.system.program import concat, delay, from_rows
from simulator.system.stats import (
    NodeTimes,
    SystemStats,
    TokenRecord,
    tile_part_matrix,
    token_breakdown,
)
from simulator.trace.isr import Op


class SystemEngine:
    def __init__(self, arch: ArchConfig, mapping: PimGptMapping, overlap: bool | None = None):
        self.arch, self.mapping = arch, mapping
        self.tck_ns = arch.timing.tck_ns
        self.asic_clock_ghz = mapping.asic.clock_ghz
        self.overlap = mapping.asic.overlap if overlap is None else bool(overlap)
        self.units = units_from_config(mapping.asic)
        self.dram_per_asic = 1.0 / self.asic_clock_ghz / self.tck_ns  # DRAM cycles per ASIC cycle
        self.issued: list | None = None  # programs in issue order, when recording for the reference replay
        self._shapes: dict = {}

    # ------------------------------------------------------------------------------------------- fast
    def run(self, contexts: list[int], timeline_token: int | None = None, record: bool = False,
            durations: bool = False, keep_times: bool = False, on_token=None) -> SystemStats:
        """Generate one token per context; `on_token()` (optional) is called after each (a progress bar).
        `timeline_token` (index into contexts) records that token's spans;
        `record` keeps the issued programs (run_reference); `durations` / `keep_times` keep every node's
        end - start / (starts, ends) per token (tests)."""
        self._keep = (durations, keep_times)
        dev = FastEngine(self.arch)
        self._run_tile = dev.tile_runner()
        env = simpy.Environment(initial_time=dev.state.x)
        pool = UnitPool(self.units, self.dram_per_asic)
        stats = SystemStats(channels=self.arch.organisation.channels, units=tuple(self.units),
                            tile_parts=tile_part_matrix(self.arch))
        self.issued = [] if record else None
        start_counts = dev.state.channel_counts().copy()
        gc_was = gc.isenabled()
        gc.disable()  # the token graphs are acyclic data; cyclic collection passes only cost time here
        try:
            for i, ctx in enumerate(contexts):
                proc = env.process(self._token(env, dev, pool, stats, ctx, i == timeline_token))
                env.run(proc)
                if on_token is not None:
                    on_token()
        finally:
            if gc_was:
                gc.enable()
        stats.cycles = int(env.now - 1)  # the first instruction reaches the channels in cycle 1
        stats.counts = dev.state.channel_counts() - start_counts
        stats.bank_open_cycles = dev.state.bank_open_cycles(int(env.now))
        stats.unit_busy = {u: float(v) for u, v in pool.busy.items()}
        if record:
            gap = int(env.now) - dev.state.x
            if gap > 0:
                self.issued.append(delay(gap))
        return stats

    def _token(self, env, dev, pool: UnitPool, stats: SystemStats, ctx: int, timeline: bool):
        nodes = self.mapping.token_graph(ctx)
        n = len(nodes)
        seq = not self.overlap
        t0 = env.now
        nt = NodeTimes(n, t0)
        pool.spans = [] if timeline else None
        pool.owner = dict.fromkeys(pool.owner, -1)  # unit holders of earlier tokens are not on this path
        busy0 = dict(pool.busy)
        col = stats.begin_token(dev)
        shape = self._structure(ctx, nodes, seq)
        deps, stream, users, issue_users, prio = shape[:5]
        is_pim = shape[7]
        # tiles whose command counts a breakdown reads (K/V writes are charged whole) or the timeline shows
        counts_read = is_pim if timeline else shape[8]
        waiting = list(shape[5])
        arrivals: list = [None] * n
        ready_pim: list[tuple[int, int]] = []  # heap of (priority, index): critical before shadow
        wake = [None]  # the controller's wake-up event while it waits for a ready tile
        left = [n]
        token_done = env.event()
        starts, ends, preds = nt.start, nt.end, nt.pred
        heappush, heappop = heapq.heappush, heapq.heappop

        def release(u):
            if is_pim[u]:
                heappush(ready_pim, (prio[u], u))
                w = wake[0]
                if w is not None:
                    wake[0] = None  # woken once
                    w.succeed()
            else:
                start_job(u)

        def finished(i):
            for u in users[i]:
                waiting[u] -= 1
                if not waiting[u]:
                    release(u)
            left[0] -= 1
            if not left[0]:
                token_done.succeed()

        def job_done(ev):
            finished(ev.value)

        def waited_for(d, other: int, end: int) -> int:
            """The node this one last waited for: its latest-finishing input, or `other` (the tile or job that
            held its resource) when that finished later (but not after this node); -1: the token's start."""
            best, best_end = -1, -1
            for k in d:
                if k >= 0 and ends[k] > best_end:
                    best, best_end = k, ends[k]
            if other >= 0 and best_end < ends[other] <= end:
                best = other
            return best

        def start_job(i):
            """Book the job's units now; its completion is a SimPy timeout."""
            nd = nodes[i]
            now = int(env.now)
            st = stream[i]
            if st >= 0:  # read-outs as they arrive
                arr = arrivals[st]
            elif nd.stream >= 0:  # overlap off: every read-out of the finished tile is here now
                arr = np.array([float(now)])
            else:
                arr = None
            end, binding = pool.run(nd.passes, float(now), i, arr, nd.stream_suffix if arr is not None else None)
            end = max(now, math.ceil(end - 1e-9))
            starts[i] = now
            ends[i] = end
            preds[i] = waited_for(deps[i], -1 if binding is None else binding, end)
            col.job(nd, now, end)
            env.timeout(end - now, i).callbacks.append(job_done)

        def controller():
            todo = shape[6]
            prev = -1
            while todo:
                if not ready_pim:
                    wake[0] = env.event()
                    yield wake[0]
                    continue
                pick = heappop(ready_pim)[1]
                todo -= 1
                nd = nodes[pick]
                x = int(scal[0])
                s = max(int(env.now), x)
                if s > x:  # the controller idles: a host DELAY keeps the device's clock
                    scal[0] = s
                    if issued is not None:
                        issued.append(delay(s - x))
                prog = nd.program
                m = prog.channels
                ch = (m & -m).bit_length() - 1  # the tile's lowest channel (col.channel_of)
                counted = counts_read[pick]
                if counted:
                    before = col.counts_before(dev, ch)
                xa = run_tile(prog.op, prog.opsize, prog.mask, prog.bank, prog.row)[:, REC_NEXT]
                if issued is not None:
                    issued.append(prog)
                end = int(xa[-1])
                starts[pick] = s
                ends[pick] = end
                preds[pick] = waited_for(deps[pick], prev, end)
                if counted:
                    col.tile_on(pick, m, ch, s, end, dev, before)
                else:
                    col.tile_busy(m, s, end)
                if issue_users[pick]:
                    arrivals[pick] = xa[nd.readouts.index]
                    for u in issue_users[pick]:
                        waiting[u] -= 1
                        if not waiting[u]:
                            start_job(u)
                prev = pick
                yield env.timeout(end - env.now)
                finished(pick)

        run_tile, scal, issued = self._run_tile, dev.state.arrays["scal"], self.issued
        for i in range(n):
            if not waiting[i]:
                release(i)
        env.process(controller())
        yield token_done
        # the three callbacks reach each other through their closure cells: a reference cycle holding the
        # token's graph, which the disabled cyclic collector would keep until the run ends (peak memory)
        release = finished = start_job = job_done = None  # noqa: F811 (empties the cells the closures share)
        end = int(env.now)
        stats.tokens.append(TokenRecord(ctx, end - t0))
        token_breakdown(stats, nodes, nt, t0, end, col, self.arch, self.units)
        if self._keep[0]:
            stats.node_durations.append([e - s for s, e in zip(nt.start, nt.end)])
        if self._keep[1]:
            stats.node_times.append((list(nt.start), list(nt.end)))
        stats.tokens[-1].busy.update({f"asic.{u}": round(pool.busy[u] - busy0[u]) for u in pool.busy})
        if timeline:
            stats.timeline = col.timeline(nodes, nt, pool.spans, t0)
        pool.spans = None

    def _structure(self, ctx: int, nodes: list, seq: bool) -> tuple:
        """Per graph shape (cached when the mapping names it): inputs of each node, the tile each stream
        job follows, the nodes each node's end / issue releases, priorities, input counts, tile count."""
        key = (self.mapping.graph_shape(ctx), seq) if hasattr(self.mapping, "graph_shape") else None
        got = self._shapes.get(key) if key is not None else None
        if got is not None:
            return got
        n = len(nodes)
        deps = [((i - 1,) if i > 0 else ()) for i in range(n)] if seq else [nd.deps for nd in nodes]
        # a streaming job waits for its tile to be *issued* (read-out times known), not to finish
        stream = [-1 if (seq or nd.is_pim) else nd.stream for nd in nodes]
        users: list[list[int]] = [[] for _ in range(n)]
        issue_users: list[list[int]] = [[] for _ in range(n)]
        for i, d in enumerate(deps):
            for k in d:
                (issue_users if k == stream[i] else users)[k].append(i)
        prio = [(n if nd.shadow and not seq else 0) + i for i, nd in enumerate(nodes)]
        is_pim = [nd.is_pim for nd in nodes]
        counted = [nd.is_pim and nd.kind != "kv_write" for nd in nodes]
        got = (deps, stream, users, issue_users, prio, [len(d) for d in deps], sum(is_pim), is_pim, counted)
        if key is not None:
            self._shapes[key] = got
        return got

    # ------------------------------------------------------------------------------------------- reference
    def run_reference(self, contexts: list[int], keep_log: bool = True):
        """Run the tokens event-driven, then replay the exact sequence of programs the PIM controller issued
        (tiles and idle DELAYs) through the command-by-command reference engine."""
        self.run(contexts, record=True)
        full = (1 << self.arch.organisation.channels) - 1
        prog = concat(self.issued + [from_rows([(Op.EOC, 0, full, 0, 0)])])
        return run_reference(prog, self.arch, keep_log=keep_log)

