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

from dataclasses import dataclass, field

import numpy as np

from simulator.dram.commands import Cmd

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
    node_durations: list[list[int]] = field(default_factory=list)  # per token: end - start of every node
    node_times: list[tuple[list[int], list[int]]] = field(default_factory=list)  # per token: starts, ends

    def begin_token(self, dev) -> "TokenCollector":
        return TokenCollector(self, dev)


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
        self.tile_counts: dict[int, np.ndarray] = {}
        self.chan_busy = np.zeros(stats.channels, np.int64)
        self.full = (1 << stats.channels) - 1
        self.channel_bits = np.arange(stats.channels)
        self.asic_cover = 0  # union of job intervals, for asic_active
        self.asic_active = 0

    def channel_of(self, node) -> int:
        """The lowest channel of the tile's mask (an all-channel tile issues the same stream everywhere)."""
        m = node.program.channels
        return (m & -m).bit_length() - 1

    @staticmethod
    def channel_counts(dev, ch: int) -> np.ndarray:
        a = dev.state.arrays
        return a["chan_counts"][ch] + a["counts"][a["chan_class"][ch]]

    def tile(self, i: int, node, start: int, end: int, dev, before: np.ndarray) -> None:
        """Commands the tile issued on its channel (`before`: that channel's counts before it ran), and busy
        time on every channel of its mask."""
        m = node.program.channels
        self.tile_counts[i] = self.channel_counts(dev, (m & -m).bit_length() - 1) - before
        if m == self.full:
            self.chan_busy += end - start
        else:
            self.chan_busy[(m >> self.channel_bits) & 1 == 1] += end - start

    def job(self, node, start: int, end: int) -> None:
        ops = self.stats.asic_ops
        for k, v in node.ops:
            ops[k] = ops.get(k, 0) + v
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
                c = self.tile_counts.get(i)
                bus = int(sum(c[k] for k in (Cmd.WRGB, Cmd.WRMAC16, Cmd.RDMAC16, Cmd.RDAF16, Cmd.RD, Cmd.WR))) \
                    if c is not None else 0
                for ch in range(self.stats.channels):
                    if (m >> ch) & 1:
                        spans.append((f"pim.ch{ch}", nd.name, nt.start[i] - t0, nt.end[i] - t0))
                        if bus:
                            spans.append((f"link.ch{ch}", nd.name, nt.start[i] - t0, nt.end[i] - t0))
        for u, a, b, job in unit_spans or ():
            name = nodes[job].name if isinstance(job, int) and 0 <= job < len(nodes) else "?"
            spans.append((f"asic.{u}", name, float(a) - t0, float(b) - t0))
        return {"spans": spans, "channels": self.stats.channels, "units": list(self.stats.units)}


def _split(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Integer split of `total` in proportion to `weights` (remainder to the largest); sums exactly."""
    s = sum(weights.values())
    if total <= 0 or s <= 0:
        return {}
    out = {k: int(total * v // s) for k, v in weights.items()}
    big = max(weights, key=weights.get)
    out[big] += total - sum(out.values())
    return out


def tile_components(node, counts: np.ndarray | None, cycles: int, arch) -> dict[str, int]:
    if node.kind == "kv_write" or counts is None:
        return {"kv_write" if node.kind == "kv_write" else "row_activate_precharge": cycles}
    t = arch.timing
    ccd = max(t.nCCDS, t.nCCDL)
    parts = {
        "pim_mac": int(counts[Cmd.MAC16] + counts[Cmd.MAC] + counts[Cmd.EWMUL16] + counts[Cmd.AF16]) * ccd,
        "gb_write": int(counts[Cmd.WRGB] + counts[Cmd.WRMAC16]) * max(ccd, t.nBL),
        "readout": int(counts[Cmd.RDMAC16] + counts[Cmd.RDAF16]) * (arch.completion.RDMAC16 + 1)
        + int(counts[Cmd.RD]) * t.nBL,
        "mode_switch": int(counts[Cmd.TMOD]) * t.nMODCH,
        "refresh": int(counts[Cmd.REFab]) * t.nRFC,
    }
    total = sum(parts.values())
    if total > cycles:  # command occupancies overlap (pipelined); scale them into the tile's time
        parts = _split(cycles, parts)
    out = {k: v for k, v in parts.items() if v}
    rest = cycles - sum(out.values())
    if rest:
        out["row_activate_precharge"] = rest
    return out


_JOB_WEIGHTS: dict = {}


def job_components(node, cycles: int, units) -> dict[str, int]:
    got = _JOB_WEIGHTS.get(id(node.passes))
    if got is None or got[0] is not node.passes or got[1] is not units:
        got = _JOB_WEIGHTS[id(node.passes)] = (node.passes, units, _job_weights(node.passes, units))
    w = got[2]
    return _split(cycles, w) if w else {"asic_valu": cycles}


def _job_weights(passes, units) -> dict[str, float]:
    """Per unit: pipeline depth times ops, plus the issue window where the unit is the pass's bottleneck."""
    w: dict[str, float] = {}
    for p in passes:
        bottleneck, win = None, -1
        for u, ops in p.stages:
            w["asic_" + u] = w.get("asic_" + u, 0.0) + units[u].depth * ops
            v = -(-p.n // units[u].lanes) * units[u].ii * ops
            if v > win:
                bottleneck, win = u, v
        if bottleneck:
            w["asic_" + bottleneck] += win
    return w


def token_breakdown(stats: SystemStats, nodes, nt: NodeTimes, t0: int, t_end: int, col: TokenCollector, arch,
                    units) -> None:
    """Walk the critical path back from the token's end; fill the token's record."""
    rec = stats.tokens[-1]
    by_class = dict.fromkeys(OP_CLASSES, 0)
    by_comp = dict.fromkeys(COMPONENTS, 0)
    i = max(range(len(nodes)), key=lambda k: (nt.end[k], k))
    gap = t_end - nt.end[i]
    by_comp["idle"] += gap
    by_class[nodes[i].op_class] += gap
    while i >= 0:
        p = nt.pred[i]
        before = nt.end[p] if p >= 0 else t0
        charge = nt.end[i] - before
        by_class[nodes[i].op_class] += charge
        own = nt.end[i] - max(nt.start[i], before)
        by_comp["idle"] += charge - own
        nd = nodes[i]
        parts = tile_components(nd, col.tile_counts.get(i), own, arch) if nd.is_pim else \
            job_components(nd, own, units)
        for k, v in parts.items():
            by_comp[k] += v
        if nd.is_pim and nd.kind == "vmm":
            rec.vmm_cycles += own
        i = p
    rec.by_class, rec.by_component = by_class, by_comp
    counts = col.dev.state.channel_counts() - col.counts0
    bus = counts[:, [int(c) for c in (Cmd.WRGB, Cmd.WRMAC16, Cmd.RDMAC16, Cmd.RDAF16, Cmd.RD, Cmd.WR)]].sum(axis=1)
    busy = {f"pim.ch{c}": int(col.chan_busy[c]) for c in range(stats.channels)}
    busy.update({f"link.ch{c}": int(bus[c]) * int(arch.timing.nBL) for c in range(stats.channels)})
    rec.busy = busy
    stats.asic_active_dram_cycles += col.asic_active
