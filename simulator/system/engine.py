"""The PIM-GPT system engine: SimPy schedules each token's stages on the ASIC and PIM resources; the
command-exact device engine gives every PIM program its duration.

Per token, the mapping yields stages (PIM programs and ASIC operations). All stages of a token are run
through the fast device engine in one call, the ASIC stages as host DELAY instructions, so channel and link
(data-bus) timing is resolved command by command across stage boundaries (a stage's trailing writes may
still be draining while the next starts). The per-instruction arrival cycles it records give every stage
its start and end; SimPy then plays the token as processes holding the `asic` and `pim` resources for those
intervals, and the statistics (per operator class and component, busy and idle time) come from there.
Decode is a dependency chain (each operator consumes the previous one's output), so with `overlap` off
every stage waits for the previous one; with `overlap` on, the partial-sum reductions of multi-pass GEMVs
run under the next passes' MACs (the mapping charges only the last one).

`mode="reference"` runs all tokens as one instruction stream through the command-by-command reference
engine instead; tests assert both modes give the same cycle count, and check the full command log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import simpy

from simulator.config.schema import ArchConfig
from simulator.dram.commands import CMD_NAMES, N_CMDS, Cmd
from simulator.dram.fast import FastEngine
from simulator.dram.reference import run_reference
from simulator.system.mapping import PimGptMapping, Stage
from simulator.system.program import concat, delay
from simulator.trace.isr import IsrProgram

OP_CLASSES = ("embedding", "layernorm", "qkv", "rope", "kv_append", "attn_score", "softmax", "attn_value",
              "out_proj", "residual", "ffn", "activation", "lm_head")
COMPONENTS = ("pim_mac", "row_activate_precharge", "gb_write", "readout", "mode_switch", "kv_copy",
              "asic_compute", "idle")


@dataclass
class TokenRecord:
    ctx: int
    cycles: int


@dataclass
class SystemStats:
    cycles: int = 0
    tokens: list[TokenRecord] = field(default_factory=list)
    by_class: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OP_CLASSES, 0))
    pim_by_class: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OP_CLASSES, 0))
    by_component: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COMPONENTS, 0.0))
    asic_cycles: int = 0  # ASIC clock cycles of compute
    asic_ops: dict[str, int] = field(default_factory=dict)
    counts: np.ndarray | None = None  # [channels, N_CMDS] commands of the simulated tokens
    bank_open_cycles: int = 0
    pim_cycles: int = 0
    asic_dram_cycles: int = 0


class SystemEngine:
    def __init__(self, arch: ArchConfig, mapping: PimGptMapping):
        self.arch, self.mapping = arch, mapping
        self.tck_ns = arch.timing.tck_ns
        self.asic_clock_ghz = mapping.asic.clock_ghz

    def delay_cycles(self, asic_cycles: int) -> int:
        """ASIC clock cycles -> DRAM command-clock cycles (rounded up, at least one host cycle)."""
        return max(1, math.ceil(asic_cycles / self.asic_clock_ghz / self.tck_ns - 1e-9))

    # ------------------------------------------------------------------------------------------- fast
    def run(self, contexts: list[int]) -> SystemStats:
        dev = FastEngine(self.arch)
        env = simpy.Environment(initial_time=dev.state.x)
        asic, pim = simpy.Resource(env, 1), simpy.Resource(env, 1)
        stats = SystemStats()
        start_counts = dev.state.channel_counts().copy()

        def hold(resource, cycles: int):
            with resource.request() as req:
                yield req
                yield env.timeout(cycles)

        def token(ctx: int):
            stages = self.mapping.token_stages(ctx)
            delays = [self.delay_cycles(s.asic_cycles) if not s.is_pim else 0 for s in stages]
            parts = [s.program if s.is_pim else delay(d) for s, d in zip(stages, delays)]
            prog = concat(parts)
            x_after = np.zeros(len(prog), np.int64)
            before = dev.state.channel_counts().copy()
            t0 = dev.state.x
            dev.run(prog.op, prog.opsize, prog.mask, prog.bank, prog.row, x_after=x_after)
            ends = x_after[np.cumsum([len(p) for p in parts]) - 1]
            prev = t0
            pim_cycles = 0
            run_res, run_cycles = None, 0  # consecutive stages on one resource are held as one SimPy event
            for s, end, d in zip(stages, ends, delays):
                dur = int(end - prev)
                prev = int(end)
                stats.by_class[s.op_class] += dur
                if s.is_pim:
                    pim_cycles += dur
                    stats.pim_by_class[s.op_class] += dur
                else:
                    stats.asic_cycles += s.asic_cycles
                    stats.asic_dram_cycles += dur
                    for k, v in s.asic_ops:
                        stats.asic_ops[k] = stats.asic_ops.get(k, 0) + v
                res = pim if s.is_pim else asic
                if res is not run_res and run_cycles:
                    yield from hold(run_res, run_cycles)
                    run_cycles = 0
                run_res = res
                run_cycles += dur
            if run_cycles:
                yield from hold(run_res, run_cycles)
            assert env.now == dev.state.x, "SimPy time and device time diverged"
            stats.pim_cycles += pim_cycles
            self._attribute(stats, dev.state.channel_counts() - before, pim_cycles)
            stats.tokens.append(TokenRecord(ctx, int(dev.state.x - t0)))

        def generation():
            for ctx in contexts:
                yield from token(ctx)

        env.process(generation())
        env.run()
        stats.cycles = int(env.now - 1)  # the first instruction reaches the channels in cycle 1
        stats.counts = dev.state.channel_counts() - start_counts
        stats.bank_open_cycles = dev.state.bank_open_cycles(int(env.now))
        stats.by_component["asic_compute"] = float(stats.asic_dram_cycles)
        return stats

    def _attribute(self, stats: SystemStats, counts: np.ndarray, pim_cycles: int) -> None:
        """Split a token's PIM time into components, on its busiest channel: each command kind is charged its
        occupancy (MAC/copy column spacing, GB-write and read-out bus time, nMODCH per TMOD); what is left is
        row activation/precharge and other waits. An attribution, not a second timing model."""
        t = self.arch.timing
        c = counts[int(np.argmax(counts.sum(axis=1)))]
        ccd = max(t.nCCDS, t.nCCDL)
        parts = {
            "pim_mac": (c[Cmd.MAC16] + c[Cmd.MAC] + c[Cmd.EWMUL16] + c[Cmd.AF16]) * ccd,
            "gb_write": (c[Cmd.WRGB] + c[Cmd.WRMAC16]) * max(ccd, t.nBL),
            "readout": (c[Cmd.RDMAC16] + c[Cmd.RDAF16]) * (self.arch.completion.RDMAC16 + 1) + c[Cmd.RD] * t.nBL,
            "mode_switch": c[Cmd.TMOD] * t.nMODCH,
            "kv_copy": (c[Cmd.WRCP] + c[Cmd.RDCP]) * ccd,
        }
        total = sum(parts.values())
        scale = min(1.0, pim_cycles / total) if total else 0.0
        for k, v in parts.items():
            stats.by_component[k] += v * scale
        stats.by_component["row_activate_precharge"] += max(0.0, pim_cycles - total * scale)

    # ------------------------------------------------------------------------------------------- reference
    def run_reference(self, contexts: list[int], keep_log: bool = True):
        """All tokens as one stream through the command-by-command reference engine (small models only)."""
        prog = self.mapping.program_for_reference(contexts, self.delay_cycles)
        isr = IsrProgram(prog.op, prog.opsize, prog.mask.astype(np.uint64), prog.bank, prog.row,
                         np.zeros(len(prog), np.int64), self.arch.organisation.channels, "<pim-gpt>")
        return run_reference(isr, self.arch, keep_log=keep_log)


def command_summary(counts: np.ndarray) -> dict[str, dict[str, int]]:
    out = {}
    for k in range(N_CMDS):
        col = counts[:, k]
        if col.sum():
            out[CMD_NAMES[k]] = {"per_channel_max": int(col.max()), "total": int(col.sum())}
    return out
