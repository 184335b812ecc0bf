"""The `pimsim run --json` statistics of a system run: latency, per-token critical-path breakdowns, resource
busy time, command counts, row-hit rate, data movement (docs/system.md "Result object")."""

from __future__ import annotations

import numpy as np

from simulator.config.schema import ArchConfig
from simulator.dram.commands import CMD_NAMES, N_CMDS, ON_BUS, Cmd
from simulator.system.stats import COMPONENTS, OP_CLASSES, SystemStats

SCHEMA_VERSION = "pimsim-run/2"
BUS_CMDS = tuple(c.name for c in ON_BUS)  # 32 B over the ASIC<->PIM link each (the command table's bus facts)
ROW_CMDS = ("MAC16", "MAC", "EWMUL16", "AF16", "RD", "WR", "RDCP", "WRCP", "WRA16")  # need an open row
ACT_CMDS = ("ACT", "ACT4", "ACT16")


def command_summary(counts: np.ndarray) -> dict[str, dict[str, int]]:
    out = {}
    for k in range(N_CMDS):
        col = counts[:, k]
        if col.sum():
            out[CMD_NAMES[k]] = {"per_channel_max": int(col.max()), "total": int(col.sum())}
    return out


def _per_token(stats: SystemStats, attr: str, keys, tck_s: float) -> tuple[dict, dict]:
    rows = np.array([[getattr(t, attr).get(k, 0) for k in keys] for t in stats.tokens], dtype=np.int64)
    mean = {k: float(v) * tck_s for k, v in zip(keys, rows.mean(axis=0))}
    per = {k: [int(x) for x in rows[:, j]] for j, k in enumerate(keys)}
    return mean, per


def run_result(arch: ArchConfig, stats: SystemStats, ctxs: list[int]) -> dict:
    tck_s = arch.timing.tck_ns * 1e-9
    cyc = np.array([t.cycles for t in stats.tokens], dtype=np.int64)
    per_tok = cyc * tck_s
    counts = stats.counts
    tot = {c.name: int(counts[:, c].sum()) for c in Cmd}
    col_acc = sum(tot[n] for n in ROW_CMDS)
    acts = sum(tot[n] for n in ACT_CMDS)
    per_access = arch.organisation.access_bytes
    bytes_link = sum(tot[n] for n in BUS_CMDS) * per_access
    banks = arch.organisation.banks
    bytes_internal = (tot["MAC16"] * banks + tot["MAC"] + tot["EWMUL16"] * banks + tot["AF16"] * banks + tot["RDCP"]
                      + tot["WRCP"] + tot["RD"] + tot["WR"] + tot["WRA16"] * banks) * per_access
    mac_busy = counts[:, Cmd.MAC16] * max(arch.timing.nCCDS, arch.timing.nCCDL)
    by_op, by_op_tok = _per_token(stats, "by_class", OP_CLASSES, tck_s)
    by_comp, by_comp_tok = _per_token(stats, "by_component", COMPONENTS, tck_s)
    resources = list(stats.tokens[0].busy)
    busy, _ = _per_token(stats, "busy", resources, tck_s)
    mean_lat = float(per_tok.mean())
    vmm = float(np.mean([t.vmm_cycles for t in stats.tokens])) * tck_s
    return {
        "channels": arch.organisation.channels,
        "banks_per_channel": banks,
        "context_start": ctxs[0],
        "tokens": len(ctxs),
        "latency_s": float(per_tok.sum()),
        "per_token_latency_s": mean_lat,
        "per_token_latency": {"mean_s": mean_lat, "first_s": float(per_tok[0]), "last_s": float(per_tok[-1]),
                              "cycles_first": int(cyc[0]), "cycles_last": int(cyc[-1]),
                              "cycles": [int(c) for c in cyc]},
        "cycles": int(stats.cycles),
        "tck_ns": arch.timing.tck_ns,
        # critical path of each token (what it waited for); mean per token in seconds, and per token in
        # DRAM cycles; each sums to the token's latency exactly
        "breakdown": {"by_op": by_op, "by_component": by_comp,
                      "per_token_cycles": {"by_op": by_op_tok, "by_component": by_comp_tok}},
        # busy time per resource (mean per token, seconds) and its share of the token's latency
        "busy": busy,
        "utilisation": {k: v / mean_lat if mean_lat else 0.0 for k, v in busy.items()},
        "row_hit_rate": float(1 - acts / col_acc) if col_acc else 0.0,
        "commands": command_summary(counts),
        "bytes_link": int(bytes_link),
        "bytes_internal": int(bytes_internal),
        "data_movement_reduction": float(bytes_internal / bytes_link) if bytes_link else 0.0,
        "channel_utilisation": float(mac_busy.mean() / max(1, stats.cycles)),
        # share of the critical path not spent in PIM vector-matrix tiles (ASIC, K/V writes, embedding
        # reads, idle)
        "non_vmm_share": float(1 - vmm / mean_lat) if mean_lat else 0.0,
    }
