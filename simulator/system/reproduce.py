"""`pimsim reproduce pim-gpt`: the eight PIM-GPT models, the paper's headline ranges and its secondary figures.

Every figure is computed from simulated runs (docs/reproduction.md says which runs):
- per model, the per-token latency averaged over `samples` contexts spread over 1..limit, its speedups,
  energy-efficiency gains, row-hit rate, data-movement reduction and non-VMM share, and the device floor of
  the same tokens (simulator/system/floor.py) with the ratio simulated / floor;
- `asic_100mhz_slowdown_max`: each model again at `check_contexts` contexts, once with the configured ASIC
  clock at 1 GHz and once at 100 MHz (same contexts, same everything else);
- `channel_scaling_8_to_16`: GPT2-XL, one token at context 512, with 8 and with 16 channels.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from simulator.config import load_arch
from simulator.errors import PimsimError
from simulator.system.api import load_model_trace, sampled_contexts, simulate
from simulator.trace.zoo import PIM_GPT_MODELS

# Published headline ranges (PIM-GPT, arXiv 2310.09385; docs/reproduction.md): speedup and energy-efficiency
# gain over the T4 GPU and the Xeon Gold 6154 CPU.
PAPER = {"speedup_gpu": (41, 137), "speedup_cpu": (631, 1074), "ee_gain_gpu_v2": (123, 383),
         "ee_gain_cpu_v2": (320, 602), "ee_gain_gpu_v1": (339, 1085), "ee_gain_cpu_v1": (890, 1632)}
# The paper's secondary figures (docs/reproduction.md 'Published secondary figures'), as text beside ours.
PAPER_CHECKS = {"non_vmm_share_gpt3_xl": "1.16 %", "asic_100mhz_slowdown_max": "<= 20 %",
                "row_hit_rate_min": "~98 %", "channel_scaling_8_to_16": "almost linear (2x)",
                "data_movement_reduction": "110-259x"}
SCALING_MODEL, SCALING_CONTEXT = "gpt2-xl", 512
DOC_BEGIN, DOC_END = "<!-- reproduce-table:begin -->", "<!-- reproduce-table:end -->"


def _model_row(name: str, o: dict, ctxs: list[int]) -> dict:
    row = {"model": name, "per_token_latency_s": o["per_token_latency_s"], "contexts": ctxs,
           "speedup_gpu": o["speedup"].get("gpu"), "speedup_cpu": o["speedup"].get("cpu"),
           "ee_gain_gpu": o.get("energy_efficiency_gain", {}).get("gpu"),
           "ee_gain_cpu": o.get("energy_efficiency_gain", {}).get("cpu"),
           "energy_per_token_j": o.get("energy_per_token_j"),
           "energy_per_token_j_v1": o.get("energy_per_token_j_v1"),
           "non_vmm_share": o["non_vmm_share"], "row_hit_rate": o["row_hit_rate"],
           "data_movement_reduction": o["data_movement_reduction"],
           "gpu_latency_s": o["baselines"].get("gpu", {}).get("latency_s"),
           "cpu_latency_s": o["baselines"].get("cpu", {}).get("latency_s"),
           "floor_latency_s": o["floor"]["per_token_s"],
           "floor_ratio": o["per_token_latency_s"] / o["floor"]["per_token_s"],
           "speedup_gpu_range": o.get("speedup_range", {}).get("gpu"),
           "speedup_cpu_range": o.get("speedup_range", {}).get("cpu"),
           "ee_gain_gpu_range": o.get("energy_efficiency_gain_range", {}).get("gpu"),
           "ee_gain_cpu_range": o.get("energy_efficiency_gain_range", {}).get("cpu"),
           "baselines": {k: {f: v.get(f) for f in ("name", "stack", "threads", "threads_source", "dtype")}
                         for k, v in o["baselines"].items()}}
    if row["energy_per_token_j_v1"] and row["ee_gain_gpu"]:
        scale = row["energy_per_token_j"] / row["energy_per_token_j_v1"]
        row["ee_gain_gpu_v1"] = row["ee_gain_gpu"] * scale
        row["ee_gain_cpu_v1"] = row["ee_gain_cpu"] * scale if row["ee_gain_cpu"] else None
    return row


def _latency(arch_name: str, sets: list[str], trace, ctxs: list[int], mapping: str, overlap: bool) -> float:
    arch = load_arch(arch_name, sets)
    o = simulate(arch, trace, mapping=mapping, overlap=overlap, gpu=None, cpu=None, contexts=ctxs)
    return o["per_token_latency_s"]


def reproduce_pim_gpt(arch_name: str = "pim_gpt", sets: list[str] | None = None, models=PIM_GPT_MODELS,
                      samples: int = 8, check_contexts: int = 2, mapping: str = "pim-gpt", overlap: bool | None = None,
                      gpu: str | None = "t4", cpu: str | None = "xeon_gold_6154",
                      baseline_dtype: str = "fp32", on_model=None, baseline_stack: str = "hf-generate",
                      baseline_threads: int | None = None) -> dict:
    """`overlap` None takes asic.overlap of the arch config; `on_model()` (optional) is called after each model
    (progress display)."""
    sets = list(sets or [])
    unknown = [m for m in models if m not in PIM_GPT_MODELS]
    if unknown:
        raise PimsimError(f"--models: {', '.join(unknown)} not in the PIM-GPT set ({', '.join(PIM_GPT_MODELS)})")
    if check_contexts < 1:
        raise PimsimError(f"--check-contexts: must be at least 1, got {check_contexts}")
    arch = load_arch(arch_name, sets)
    rows, slowdowns = [], {}
    for name in models:
        trace = load_model_trace(name)
        limit = trace.header.model.context_limit
        ctxs = sampled_contexts(limit, samples)
        o = simulate(arch, trace, mapping=mapping, overlap=overlap, gpu=gpu, cpu=cpu, baseline_dtype=baseline_dtype,
                     baseline_stack=baseline_stack, baseline_threads=baseline_threads,
                     contexts=ctxs, with_floor=True)
        rows.append(_model_row(name, o, ctxs))
        # ASIC clock 1 GHz -> 100 MHz, everything else as configured, at a few evenly spaced contexts
        cctx = sampled_contexts(limit, check_contexts)
        fast = _latency(arch_name, sets + ["asic.clock_ghz=1.0"], trace, cctx, mapping, overlap)
        slow = _latency(arch_name, sets + ["asic.clock_ghz=0.1"], trace, cctx, mapping, overlap)
        slowdowns[name] = {"contexts": cctx, "latency_1ghz_s": fast, "latency_100mhz_s": slow,
                           "slowdown": slow / fast - 1}
        if on_model is not None:
            on_model()
    trace = load_model_trace(SCALING_MODEL)
    lat8 = _latency(arch_name, sets + ["organisation.channels=8"], trace, [SCALING_CONTEXT], mapping, overlap)
    lat16 = _latency(arch_name, sets + ["organisation.channels=16"], trace, [SCALING_CONTEXT], mapping, overlap)
    by_name = {r["model"]: r for r in rows}
    dmr = [r["data_movement_reduction"] for r in rows]
    checks = {
        "non_vmm_share_gpt3_xl": by_name["gpt3-xl"]["non_vmm_share"] if "gpt3-xl" in by_name else None,
        "asic_100mhz_slowdown_max": max(v["slowdown"] for v in slowdowns.values()),
        "row_hit_rate_min": min(r["row_hit_rate"] for r in rows),
        "channel_scaling_8_to_16": lat8 / lat16,
        "data_movement_reduction": [min(dmr), max(dmr)],
    }
    return {"paper": "PIM-GPT (arXiv 2310.09385)", "published_ranges": PAPER, "published_secondary": PAPER_CHECKS,
            "arch": arch.name, "samples": samples, "stack": baseline_stack, "cpu_threads": baseline_threads, "check_contexts": check_contexts, "models": rows,
            "published_checks": checks,
            "check_runs": {"asic_clock": slowdowns,
                           "channel_scaling": {"model": SCALING_MODEL, "context": SCALING_CONTEXT,
                                               "latency_8ch_s": lat8, "latency_16ch_s": lat16}}}


def _fmt_s(v: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(v) >= scale:
            return f"{v / scale:.3f} {unit}"
    return f"{v:.3g} s"


def _num(v, fmt: str = ".1f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, fmt)


def _tables(result: dict) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    head = ["model", "latency/token", "floor", "/ floor", "x T4", "x Xeon", "EE x T4", "EE x Xeon", "EE v1 x T4",
            "EE v1 x Xeon"]
    body = []
    for r in result["models"]:
        body.append([r["model"], _fmt_s(r["per_token_latency_s"]), _fmt_s(r["floor_latency_s"]),
                     _num(r["floor_ratio"], ".2f")] + [_num(r.get(k)) for k in (
                         "speedup_gpu", "speedup_cpu", "ee_gain_gpu", "ee_gain_cpu", "ee_gain_gpu_v1",
                         "ee_gain_cpu_v1")])
    p = PAPER
    body.append(["paper (v2 / v1)", "", "", ""] + [f"{a}-{b}" for a, b in (
        p["speedup_gpu"], p["speedup_cpu"], p["ee_gain_gpu_v2"], p["ee_gain_cpu_v2"], p["ee_gain_gpu_v1"],
        p["ee_gain_cpu_v1"])])
    c, runs = result["published_checks"], result["check_runs"]
    sc = runs["channel_scaling"]
    worst = max(runs["asic_clock"], key=lambda m: runs["asic_clock"][m]["slowdown"])
    hit_min = min(result["models"], key=lambda r: r["row_hit_rate"])["model"]
    chead = ["figure", "pimsim", "paper", "from"]
    cbody = [
        ["non-VMM share of GPT3-XL latency", _num(None if c["non_vmm_share_gpt3_xl"] is None
                                                 else c["non_vmm_share_gpt3_xl"] * 100, ".2f") + " %",
         PAPER_CHECKS["non_vmm_share_gpt3_xl"], "gpt3-xl row above"],
        ["ASIC 1 GHz -> 100 MHz, max slowdown", f"+{c['asic_100mhz_slowdown_max'] * 100:.1f} %",
         PAPER_CHECKS["asic_100mhz_slowdown_max"],
         f"{worst}, contexts {runs['asic_clock'][worst]['contexts']}"],
        ["row-buffer hit rate, min over models", f"{c['row_hit_rate_min'] * 100:.2f} %",
         PAPER_CHECKS["row_hit_rate_min"], hit_min],
        ["latency 8 ch / 16 ch", f"{c['channel_scaling_8_to_16']:.2f}x", PAPER_CHECKS["channel_scaling_8_to_16"],
         f"{sc['model']}, context {sc['context']}: {_fmt_s(sc['latency_8ch_s'])} / {_fmt_s(sc['latency_16ch_s'])}"],
        ["off-chip data-movement reduction", "{:.0f}-{:.0f}x".format(*c["data_movement_reduction"]),
         PAPER_CHECKS["data_movement_reduction"], "min-max over models"],
    ]
    return head, body, chead, cbody


def print_text(result: dict) -> None:
    head, body, _, cbody = _tables(result)
    print(f"PIM-GPT reproduction on {result['arch']} (per-token latency averaged over {result['samples']} contexts "
          "in 1..limit; floor: docs/reproduction.md)")
    print("  " + f"{head[0]:<16s}" + "".join(f"{h:>13s}" for h in head[1:]))
    for r in body:
        print("  " + f"{r[0]:<16s}" + "".join(f"{v:>13s}" for v in r[1:]))
    rows = result["models"]
    if any(r.get("speedup_gpu_range") or r.get("speedup_cpu_range") for r in rows):
        print("  range from the presets' documented low/high estimates (x T4, x Xeon, EE x T4, EE x Xeon):")
        for r in rows:
            vals = [f"{x[0]:.0f}-{x[1]:.0f}" if x else "" for x in (
                r.get("speedup_gpu_range"), r.get("speedup_cpu_range"), r.get("ee_gain_gpu_range"),
                r.get("ee_gain_cpu_range"))]
            print("  " + f"{r['model']:<16s}" + "".join(f"{v:>13s}" for v in vals))
    if rows:
        b = rows[0]["baselines"]
        print("  baselines: " + "; ".join(f"{k} {v['name']} ({v['stack']}"
                                          + (f", {v['threads']} threads: {v.get('threads_source')}" if v.get("threads")
                                             else "") + ")" for k, v in b.items()))
    print("\nPublished secondary figures")
    for r in cbody:
        print(f"  {r[0]:<38s} {r[1]:>10s}   paper {r[2]:<20s} ({r[3]})")


def markdown(result: dict) -> str:
    head, body, chead, cbody = _tables(result)

    def table(h, b):
        return "\n".join(["| " + " | ".join(h) + " |", "|" + "---|" * len(h)] + ["| " + " | ".join(r) + " |" for r in b])

    return (f"Per-token latency averaged over {result['samples']} contexts in 1..limit; ASIC-clock check at "
            f"{result['check_contexts']} contexts per model.\n\n" + table(head, body) + "\n\n"
            + table(chead, cbody) + "\n")


def update_doc(path: str | Path, result: dict) -> None:
    """Replace the text between the reproduce-table markers of `path` with the tables of `result`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PimsimError(f"--update-doc {p}: cannot read ({exc.__class__.__name__})") from None
    if DOC_BEGIN not in text or DOC_END not in text:
        raise PimsimError(f"--update-doc {p}: no '{DOC_BEGIN}' ... '{DOC_END}' markers; add them around the table")
    new = re.sub(re.escape(DOC_BEGIN) + ".*?" + re.escape(DOC_END),
                 lambda _: DOC_BEGIN + "\n" + markdown(result) + DOC_END, text, count=1, flags=re.DOTALL)
    p.write_text(new, encoding="utf-8")
