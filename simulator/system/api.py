"""Library entry points of `pimsim run`: simulate a model on an arch config and build the result object."""

from __future__ import annotations

import time
import numpy as np

from simulator.asic.config import asic_config_from_arch
from simulator.config import config_hash, load_arch
from simulator.config.schema import ArchConfig
from simulator.dram.commands import Cmd
from simulator.errors import PimsimError
from simulator.system.engine import COMPONENTS, OP_CLASSES, SystemEngine, command_summary
from simulator.system.mapping import MAPPINGS, PimGptMapping

SCHEMA_VERSION = "pimsim-run/1"
BUS_CMDS = ("WRGB", "WRMAC16", "RDMAC16", "RDAF16", "RD", "WR")  # 32 B over the ASIC<->PIM link each
ROW_CMDS = ("MAC16", "MAC", "EWMUL16", "AF16", "RD", "WR", "RDCP", "WRCP", "WRA16")  # need an open row
ACT_CMDS = ("ACT", "ACT4", "ACT16")


def load_model_trace(model: str | None = None, trace: str | None = None):
    from simulator.trace import MODEL_ZOO, derive_trace, load_trace

    if trace:
        return load_trace(trace)
    if not model:
        raise PimsimError("give --model NAME or --trace FILE")
    if model not in MODEL_ZOO:
        raise PimsimError(f"--model: unknown model {model!r} (known: {', '.join(MODEL_ZOO)})")
    return derive_trace(model)


def contexts_for(limit: int, context: int | None, tokens: int | None) -> list[int]:
    start = 1 if context is None else int(context)
    if not 1 <= start <= limit:
        raise PimsimError(f"--context: must be in 1..{limit} (the model's context limit), got {start}")
    n = limit - start + 1 if tokens is None else int(tokens)
    if n < 1:
        raise PimsimError(f"--tokens: must be at least 1, got {n}")
    if start + n - 1 > limit:
        raise PimsimError(f"--tokens: {n} tokens from context {start} pass the context limit {limit}; "
                          f"use at most {limit - start + 1}")
    return list(range(start, start + n))


def sampled_contexts(limit: int, samples: int) -> list[int]:
    """`samples` contexts evenly spread over 1..limit: their mean per-token latency estimates the mean over a
    whole generation up to the limit (per-token latency grows smoothly with context)."""
    if samples < 1:
        raise PimsimError(f"--samples: must be at least 1, got {samples}")
    return sorted({int(round(x)) for x in np.linspace(1, limit, min(samples, limit))})


def simulate(arch: ArchConfig, trace, context: int | None = None, tokens: int | None = None,
             mapping: str = "pim-gpt", overlap: bool = False, gpu: str | None = "t4",
             cpu: str | None = "xeon_gold_6154", baseline_dtype: str = "fp32", baseline_profile: str | None = None,
             energy_variant: str = "v2", contexts: list[int] | None = None, baseline_stack: str = "hf-generate",
             baseline_threads: int | None = None) -> dict:
    """Run the PIM-GPT system and return the `pimsim run --json` object. `contexts` (explicit, e.g. sampled)
    overrides context/tokens; each token is generated with that many keys in the KV cache."""
    from simulator.trace import trace_hash

    wall0 = time.perf_counter()
    m = trace.header.model
    ctxs = list(contexts) if contexts else contexts_for(m.context_limit, context, tokens)
    pm = PimGptMapping(arch, trace, mapping=mapping, asic=asic_config_from_arch(arch), overlap=overlap)
    eng = SystemEngine(arch, pm)
    stats = eng.run(ctxs)
    tck_s = arch.timing.tck_ns * 1e-9
    per_tok = np.array([t.cycles for t in stats.tokens], dtype=np.int64) * tck_s
    counts = stats.counts
    tot = {c.name: int(counts[:, c].sum()) for c in Cmd}
    col_acc = sum(tot[n] for n in ROW_CMDS)
    acts = sum(tot[n] for n in ACT_CMDS)
    bytes_link = sum(tot[n] for n in BUS_CMDS) * arch.organisation.access_bytes
    banks = arch.organisation.banks
    per_access = arch.organisation.access_bytes
    bytes_internal = (tot["MAC16"] * banks + tot["MAC"] + tot["EWMUL16"] * banks + tot["AF16"] * banks + tot["RDCP"]
                      + tot["WRCP"] + tot["RD"] + tot["WR"] + tot["WRA16"] * banks) * per_access
    mac_busy = counts[:, Cmd.MAC16] * max(arch.timing.nCCDS, arch.timing.nCCDL)
    total_cycles = max(1, stats.cycles)
    out = {
        "schema_version": SCHEMA_VERSION,
        "model": m.name,
        "arch": arch.name,
        "mapping": mapping,
        "overlap": overlap,
        "channels": arch.organisation.channels,
        "banks_per_channel": banks,
        "context_start": ctxs[0],
        "tokens": len(ctxs),
        "latency_s": float(per_tok.sum()),
        "per_token_latency_s": float(per_tok.mean()),
        "per_token_latency": {"mean_s": float(per_tok.mean()), "first_s": float(per_tok[0]),
                              "last_s": float(per_tok[-1]), "cycles_first": int(stats.tokens[0].cycles),
                              "cycles_last": int(stats.tokens[-1].cycles)},
        "cycles": int(stats.cycles),
        "tck_ns": arch.timing.tck_ns,
        "breakdown": {
            "by_op": {k: stats.by_class.get(k, 0) * tck_s for k in OP_CLASSES},
            "by_component": {k: float(stats.by_component.get(k, 0.0)) * tck_s for k in COMPONENTS},
        },
        "row_hit_rate": float(1 - acts / col_acc) if col_acc else 0.0,
        "commands": command_summary(counts),
        "bytes_link": int(bytes_link),
        "bytes_internal": int(bytes_internal),
        "data_movement_reduction": float(bytes_internal / bytes_link) if bytes_link else 0.0,
        "channel_utilisation": float(mac_busy.mean() / total_cycles),
        "memory": {"rows_used_per_bank": pm.total_rows, "rows_per_bank": arch.organisation.rows,
                   "bytes_reserved": int(pm.total_rows * arch.organisation.row_bytes * pm.CB)},
        "config_hash": config_hash(arch),
        "trace_hash": trace_hash(trace),
    }
    # everything but the vector-matrix products: ASIC work, KV appends and embedding reads on PIM
    non_vmm = (stats.asic_dram_cycles + stats.pim_by_class["kv_append"] + stats.pim_by_class["embedding"]) * tck_s
    out["non_vmm_share"] = float(non_vmm / out["latency_s"]) if out["latency_s"] else 0.0
    _add_energy(out, arch, stats, eng, energy_variant)
    _add_baselines(out, trace, ctxs, gpu, cpu, baseline_dtype, baseline_profile, baseline_stack, baseline_threads)
    out["wall_s"] = round(time.perf_counter() - wall0, 3)
    return out


def _add_energy(out: dict, arch: ArchConfig, stats, eng: SystemEngine, variant: str) -> None:
    if arch.energy is None:
        return
    from simulator.energy import EnergyInputs, compute_energy, energy_table_from_arch

    table = energy_table_from_arch(arch)
    counts = stats.counts
    cmds = {c.name: int(counts[:, c].sum()) for c in Cmd if c not in (Cmd.SYNC, Cmd.EOC)}
    inputs = EnergyInputs(
        commands=cmds, cycles=int(stats.cycles), tck_ns=arch.timing.tck_ns, channels=arch.organisation.channels,
        banks_per_channel=arch.organisation.banks, bank_open_cycles=int(stats.bank_open_cycles),
        link_bits=int(out["bytes_link"] * 8), asic_ops=dict(stats.asic_ops), asic_active_cycles=int(stats.asic_cycles),
        asic_clock_ghz=eng.asic_clock_ghz, tokens=out["tokens"])
    rep = compute_energy(inputs, table, variant=variant)
    out["energy_j"] = rep.total_j
    out["energy_per_token_j"] = rep.per_token_j
    out["energy_breakdown"] = dict(rep.breakdown_j)
    out["energy_table_hash"] = rep.table_hash
    out["energy_variant"] = variant
    if variant == "v2":
        out["energy_per_token_j_v1"] = compute_energy(inputs, table, variant="v1").per_token_j


def _sample(ctxs: list[int], most: int = 17) -> list[int]:
    """Baseline latency is close to affine in context: evaluate at most `most` evenly spaced contexts."""
    if len(ctxs) <= most:
        return ctxs
    idx = np.linspace(0, len(ctxs) - 1, most).round().astype(int)
    return [ctxs[i] for i in idx]


def _add_baselines(out: dict, trace, ctxs, gpu, cpu, dtype, profile, stack, threads) -> None:
    from simulator.baselines.summary import baseline_summary, speedup_ranges
    from simulator.baselines.workload import workload_from_trace

    base = {}
    sample = _sample(ctxs)
    for role, preset in (("gpu", gpu), ("cpu", cpu)):
        if preset:
            base[role] = baseline_summary(preset, lambda c: workload_from_trace(trace, c, dtype, stack=stack), sample,
                                          dtype, stack, threads if role == "cpu" else None)
    if profile:
        from simulator.baselines.profile import load_profile, profile_result

        r = profile_result(load_profile(profile))
        base["measured"] = {"name": r.name, "preset": str(profile), "latency_s": r.latency_s,
                            "energy_j": r.energy_j, "stack": r.stack, "threads": r.threads}
    out["baselines"] = base
    pim_lat = out["per_token_latency_s"]
    out["speedup"] = {k: v["latency_s"] / pim_lat for k, v in base.items()}
    if "energy_per_token_j" in out:
        out["energy_efficiency_gain"] = {k: v["energy_j"] / out["energy_per_token_j"] for k, v in base.items()
                                         if v.get("energy_j")}
    ranges = speedup_ranges(base, pim_lat, out.get("energy_per_token_j"))
    out["speedup_range"] = ranges["speedup"]
    if "energy_per_token_j" in out:
        out["energy_efficiency_gain_range"] = ranges["energy_efficiency_gain"]


def run_point(point: dict) -> dict:
    """One sweep point (see simulator/sweep): {arch, set, model | trace, context, tokens, mapping, overlap,
    gpu, cpu, baseline_dtype, baseline_stack, baseline_threads} -> the `pimsim run --json` object."""
    known = {"arch", "set", "model", "trace", "context", "tokens", "mapping", "overlap", "gpu", "cpu",
             "baseline_dtype", "baseline_stack", "baseline_threads", "energy_variant"}
    extra = set(point) - known
    if extra:
        raise PimsimError(f"sweep point: unknown key(s) {', '.join(sorted(extra))} (known: {', '.join(sorted(known))})")
    arch = load_arch(point.get("arch", "pim_gpt"), point.get("set", []) or [])
    trace = load_model_trace(point.get("model"), point.get("trace"))
    return simulate(arch, trace, context=point.get("context"), tokens=point.get("tokens"),
                    mapping=point.get("mapping", "pim-gpt"), overlap=bool(point.get("overlap", False)),
                    gpu=point.get("gpu", "t4"), cpu=point.get("cpu", "xeon_gold_6154"),
                    baseline_dtype=point.get("baseline_dtype", "fp32"),
                    baseline_stack=point.get("baseline_stack", "hf-generate"),
                    baseline_threads=point.get("baseline_threads"),
                    energy_variant=point.get("energy_variant", "v2"))


__all__ = ["MAPPINGS", "SCHEMA_VERSION", "contexts_for", "load_model_trace", "run_point", "simulate"]
