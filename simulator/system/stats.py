"""What a system run measured: per-token latency, critical-path breakdowns, resource busy time, timeline.

Critical path (docs/system.md "Breakdown"): every node records the node it last waited for (its latest
input, or the tile / job that held its resource). Walking back from the token's last node, each node on
the path is charged end(node) - end(predecessor); the charges telescope, so both breakdowns (by operator
class and by component) sum to the token's latency exactly, in DRAM cycles. A node's charge splits into
`idle` (before it started: the controller or a unit was free but the node was not yet issued) and its own
time: a PIM tile's by the commands of its busiest channel (MAC column spacing, global-buffer writes and
read-outs on the link, mode switches, refresh; the rest is row activation / precharge and waits; K/V
write tiles are `kv_write`), an ASIC job's over the units of its dataflow in proportion to each unit's
pipeline depth and issue window.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from simulator.dram.commands import ON_BUS, Cmd

OP_CLASSES = ("embedding", "layernorm", "qkv", "rope", "kv_append", "attn_score", "softmax", "attn_value",
              "out_proj", "residual", "ffn", "activation", "lm_head")
PIM_COMPONENTS = ("pim_mac", "row_activate_precharge", "gb_write", "readout", "mode_switch", "kv_write", "refresh")
ASIC_COMPONENTS = ("asic_valu", "asic_exp", "asic_recip", "asic_rsqrt", "asic_reduce")
COMPONENTS = PIM_COMPONENTS + ASIC_COMPONENTS + ("idle",)


@dataclass
class TokenRecord:
    ctx: int
    cycles: int
    by_class: dict[str, int] = field(default_factory=dict)
    by_component: dict[str, int] = field(default_factory=dict)
    busy: dict[str, int] = field(default_factory=dict)  # per resource, DRAM cycles
    vmm_cycles: int = 0  # critical-path cycles spent in PIM vector-matrix tiles


@dataclass
class SystemStats:
    channels: int = 1
    units: tuple[str, ...] = ()
    cycles: int = 0
    tokens: list[TokenRecord] = field(default_factory=list)
    asic_ops: dict[str, int] = field(default_factory=dict)
    asic_active_dram_cycles: int = 0  # cycles in which at least one ASIC unit was busy (energy)
    counts: np.ndarray | None = None  # [channels, N_CMDS] commands of the simulated tokens
    bank_open_cycles: int = 0
    unit_busy: dict[str, float] = field(default_factory=dict)
    timeline: dict | None = None
    tile_parts: np.ndarray | None = None  # tile_part_matrix(arch)
    node_durations: list[list[int]] = field(default_factory=list)  # per token: end - start of every node
    node_times: list[tuple[list[int], list[int]]] = field(default_factory=list)  # per token: starts, ends
    _names: dict = field(default_factory=dict, repr=False)

    def begin_token(self, dev) -> TokenCollector:
        return TokenCollector(self, dev)

    def resource_names(self, prefix: str) -> list[str]:
        """prefix + channel index for every channel, e.g. pim.ch0 ... (built once per prefix)."""
        got = self._names.get(prefix)
        if got is None:
            got = self._names[prefix] = [f"{prefix}{c}" for c in range(self.channels)]
        return got


class NodeTimes:
    def __init__(self, n: int, t0: int):
        self.start = [t0] * n
        self.end = [t0] * n
        self.pred = [-1] * n

    def set(self, i: int, start: int, end: int, pred: int) -> None:
        self.start[i], self.end[i], self.pred[i] = start, end, pred


class TokenCollector:
    """Per-token bookkeeping while the engine runs: command counts per tile, busy time per channel."""

    def __init__(self, stats: SystemStats, dev):
        self.stats, self.dev = stats, dev
        self.counts0 = dev.state.channel_counts().copy()
        self._tile_ba: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # tile -> (counts before, after)
        self.chan_busy = [0] * stats.channels
        self.full = (1 << stats.channels) - 1
        self.wmat = stats.tile_parts
        a = dev.state.arrays  # the device's state arrays are updated in place: bound once
        self._chan_counts, self._counts, self._chan_class = a["chan_counts"], a["counts"], a["chan_class"]
        self._last_ch, self._last_after = -1, None
        self._mask_busy: dict[int, int] = {}
        self.asic_cover = 0  # union of job intervals, for asic_active
        self.asic_active = 0
        self._job_ops: list = []  # each started job's element operations (the mapping's cached tuples)

    def count_ops(self) -> None:
        """Add the element operations of the token's jobs to stats.asic_ops: each distinct tuple once, times
        its jobs, in order of first appearance (so the keys enter asic_ops in the order job by job would)."""
        jobs = self._job_ops
        times = Counter(map(id, jobs))
        ops = self.stats.asic_ops
        for t in dict(zip(map(id, jobs), jobs)).values():
            n = times[id(t)]
            for k, v in t:
                ops[k] = ops.get(k, 0) + v * n
        self._job_ops = []

    def counts_before(self, dev, ch: int) -> np.ndarray:
        """Channel ch's command counts now: the previous tile's result if it ran on the same channel."""
        if self._last_ch == ch:
            return self._last_after
        return self._chan_counts[ch] + self._counts[self._chan_class[ch]]

    def tile_counts(self, i: int) -> np.ndarray | None:
        """Commands tile i issued on its lowest channel (None: not run this token); the difference is taken
        here, for the few tiles a breakdown or timeline reads."""
        got = self._tile_ba.get(i)
        return None if got is None else got[1] - got[0]

    def tiles_counts(self, tiles: list[int]) -> np.ndarray:
        """[len(tiles), N_CMDS]: `tile_counts` of tiles that ran, in one array operation."""
        ba = [self._tile_ba[i] for i in tiles]
        return np.array([a for _, a in ba], np.int64) - np.array([b for b, _ in ba], np.int64)

    def tile_on(self, i: int, m: int, ch: int, start: int, end: int, dev, before: np.ndarray) -> None:
        """Tile i ran from start to end on the channels of mask m: the commands it issued on its lowest channel
        ch (`before`: that channel's counts before it ran) and busy time on every channel of m (settled per
        mask at the token's end)."""
        after = self._chan_counts[ch] + self._counts[self._chan_class[ch]]
        self._last_ch, self._last_after = ch, after
        self._tile_ba[i] = (before, after)
        self._mask_busy[m] = self._mask_busy.get(m, 0) + end - start

    def tile_busy(self, m: int, start: int, end: int) -> None:
        """A tile whose command counts nothing reads (a K/V write off the timeline token): busy time only."""
        self._last_ch = -1  # the counts changed unseen: the next tile takes its own `before`
        self._mask_busy[m] = self._mask_busy.get(m, 0) + end - start

    def channel_busy(self) -> list[int]:
        """Busy cycles per channel: each tile's time on every channel of its mask."""
        busy = self.chan_busy
        for m, v in self._mask_busy.items():
            c = 0
            while m:
                if m & 1:
                    busy[c] += v
                m >>= 1
                c += 1
        self._mask_busy = {}
        return busy

    def job(self, node, start: int, end: int) -> None:
        self._job_ops.append(node.ops)  # added up per distinct tuple at the token's end (`count_ops`)
        lo = max(start, self.asic_cover)
        if end > lo:
            self.asic_active += end - lo
        self.asic_cover = max(self.asic_cover, end)

    def timeline(self, nodes, nt: NodeTimes, unit_spans, t0: int) -> dict:
        """Spans of one token (DRAM cycles from the token's start) per resource."""
        spans = []
        for i, nd in enumerate(nodes):
            if nd.is_pim and len(nd.program):
                m = nd.program.channels
                c = self.tile_counts(i)
                bus = int(sum(c[k] for k in ON_BUS)) if c is not None else 0
                for ch in range(self.stats.channels):
                    if (m >> ch) & 1:
                        spans.append((f"pim.ch{ch}", nd.name, nt.start[i] - t0, nt.end[i] - t0))
                        if bus:
                            spans.append((f"link.ch{ch}", nd.name, nt.start[i] - t0, nt.end[i] - t0))
        for u, a, b, job in unit_spans or ():
            name = nodes[job].name if isinstance(job, int) and 0 <= job < len(nodes) else "?"
            spans.append((f"asic.{u}", name, float(a) - t0, float(b) - t0))
        return {"spans": spans, "channels": self.stats.channels, "units": list(self.stats.units)}


def _split_rows(total: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row-wise integer split of total[r] in proportion to weights[r] (remainder to the row's largest
    weight); each row sums to total[r] exactly. Rows of zero weight get nothing."""
    s = weights.sum(axis=1)
    safe = np.where(s > 0, s, 1)
    out = (total[:, None] * weights // safe[:, None]).astype(np.int64)
    out[s <= 0] = 0
    rem = np.where(s > 0, total - out.sum(axis=1), 0)
    out[np.arange(len(out)), np.argmax(weights, axis=1)] += rem
    return out


TILE_PARTS = ("pim_mac", "gb_write", "readout", "mode_switch", "refresh")


def tile_part_matrix(arch) -> np.ndarray:
    """[N_CMDS, 5]: occupancy cycles each command kind charges to pim_mac, gb_write, readout, mode_switch,
    refresh (the rest of a tile's time is row activation / precharge and waits)."""
    t = arch.timing
    ccd = max(t.nCCDS, t.nCCDL)
    w = np.zeros((len(Cmd), len(TILE_PARTS)), np.int64)
    for c in (Cmd.MAC16, Cmd.MAC, Cmd.EWMUL16, Cmd.AF16):
        w[c, 0] = ccd
    for c in (Cmd.WRGB, Cmd.WRMAC16):
        w[c, 1] = max(ccd, t.nBL)
    for c in (Cmd.RDMAC16, Cmd.RDAF16):
        w[c, 2] = arch.completion.RDMAC16 + 1
    w[Cmd.RD, 2] = t.nBL
    w[Cmd.TMOD, 3] = t.nMODCH
    w[Cmd.REFab, 4] = t.nRFC
    return w


def tile_components(counts: np.ndarray, cycles: np.ndarray, wmat: np.ndarray) -> np.ndarray:
    """[tiles, 6] cycles of each tile's own time in TILE_PARTS + row_activate_precharge; rows sum to cycles.
    Command occupancies that add up to more than the tile's time overlapped (pipelined): scaled into it."""
    parts = counts @ wmat
    total = parts.sum(axis=1)
    over = total > cycles
    if over.any():
        parts[over] = _split_rows(cycles[over], parts[over])
    return np.column_stack([parts, cycles - parts.sum(axis=1)])


_JOB_WEIGHTS: dict = {}


def job_weights(passes, units) -> np.ndarray:
    """Per unit (ASIC_COMPONENTS order): pipeline depth x ops, plus the issue window where the unit is the
    pass's bottleneck; cached per passes object."""
    got = _JOB_WEIGHTS.get(id(passes))
    if got is not None and got[0] is passes and got[1] is units:
        return got[2]
    w = np.zeros(len(ASIC_COMPONENTS), np.float64)
    col = {c[len("asic_"):]: k for k, c in enumerate(ASIC_COMPONENTS)}
    for p in passes:
        bottleneck, win = None, -1
        for u, ops in p.stages:
            w[col[u]] += units[u].depth * ops
            v = -(-p.n // units[u].lanes) * units[u].ii * ops
            if v > win:
                bottleneck, win = u, v
        if bottleneck:
            w[col[bottleneck]] += win
    if not w.any():
        w[0] = 1.0
    _JOB_WEIGHTS[id(passes)] = (passes, units, w)
    return w


def token_breakdown(stats: SystemStats, nodes, nt: NodeTimes, t0: int, t_end: int, col: TokenCollector, arch,
                    units) -> None:
    """Walk the critical path back from the token's end; fill the token's record."""
    rec = stats.tokens[-1]
    by_class = dict.fromkeys(OP_CLASSES, 0)
    by_comp = dict.fromkeys(COMPONENTS, 0)
    end, start, pred = nt.end, nt.start, nt.pred
    last = max(end)
    i = len(end) - 1 - end[::-1].index(last)  # the last node to finish (the highest index among ties)
    gap = t_end - last
    idle = gap
    by_class[nodes[i].op_class] += gap
    tiles, tile_own, jobs, job_own = [], [], [], []
    kv = 0
    vmm = 0
    while i >= 0:
        p = pred[i]
        before = end[p] if p >= 0 else t0
        e = end[i]
        nd = nodes[i]
        by_class[nd.op_class] += e - before
        st = start[i]
        if st > before:  # idle from the predecessor's end to this node's start
            idle += st - before
            before = st
        own = e - before
        if nd.is_pim:
            kind = nd.kind
            if kind == "kv_write":
                kv += own
            else:
                tiles.append(i)
                tile_own.append(own)
                if kind == "vmm":
                    vmm += own
        else:
            jobs.append(job_weights(nd.passes, units))
            job_own.append(own)
        i = p
    rec.vmm_cycles += vmm
    by_comp["idle"] = idle
    by_comp["kv_write"] = kv
    if tiles:
        part = tile_components(col.tiles_counts(tiles), np.array(tile_own, np.int64), col.wmat).sum(axis=0)
        for k, name in enumerate(TILE_PARTS + ("row_activate_precharge",)):
            by_comp[name] += int(part[k])
    if jobs:
        part = _split_rows(np.array(job_own, np.int64), np.array(jobs)).sum(axis=0)
        for k, name in enumerate(ASIC_COMPONENTS):
            by_comp[name] += int(part[k])
    rec.by_class, rec.by_component = by_class, by_comp
    counts = col.dev.state.channel_counts() - col.counts0
    bus = counts[:, [int(c) for c in ON_BUS]].sum(axis=1)
    busy = dict(zip(stats.resource_names("pim.ch"), col.channel_busy()))
    busy.update(zip(stats.resource_names("link.ch"), (bus * int(arch.timing.nBL)).tolist()))
    rec.busy = busy
    stats.asic_active_dram_cycles += col.asic_active
    col.count_ops()
