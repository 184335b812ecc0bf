"""`pimsim run` (simulate a model on PIM-GPT, with energy and GPU/CPU baselines) and `pimsim reproduce`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from simulator.errors import PimsimError
from simulator.system.mapping import MAPPINGS

PIM_GPT_MODELS = ("gpt2-small", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-small", "gpt3-medium",
                  "gpt3-large", "gpt3-xl")
# Published ranges (pim-gpt.md): speedup and energy-efficiency gain over the T4 GPU and the Xeon 6154 CPU.
PAPER = {"speedup_gpu": (41, 137), "speedup_cpu": (631, 1074), "ee_gain_gpu_v2": (123, 383),
         "ee_gain_cpu_v2": (320, 602), "ee_gain_gpu_v1": (339, 1085), "ee_gain_cpu_v1": (890, 1632)}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default="pim_gpt", help="arch config file or preset (default: pim_gpt)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set organisation.channels=16 (repeatable)")
    p.add_argument("--mapping", choices=MAPPINGS, default="pim-gpt", help="weight/KV mapping (default pim-gpt)")
    p.add_argument("--overlap", action="store_true", help="overlap ASIC partial-sum reduction with PIM MACs")
    p.add_argument("--gpu", default="t4", help="GPU baseline preset (default t4; 'none' to skip)")
    p.add_argument("--cpu", default="xeon_gold_6154", help="CPU baseline preset (default xeon_gold_6154)")
    p.add_argument("--baseline-dtype", choices=["fp32", "fp16", "bf16", "int8"], default="fp32",
                   help="dtype the baselines run in (default fp32: unoptimised PyTorch)")
    p.add_argument("--stack", choices=["hf-generate", "hf-forward", "optimized"], default="hf-generate",
                   help="software stack of the baselines (default hf-generate; docs/baselines.md)")
    p.add_argument("--cpu-threads", type=int, default=None,
                   help="threads of the CPU baseline (default: the preset's, e.g. 18 for xeon_gold_6154)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")


def register(sub) -> None:
    p = sub.add_parser("run", help="simulate GPT token generation on a PIM-GPT system",
                       description="Simulate N generated tokens of a model on a PIM-GPT system, cycle-accurately, "
                                   "and report latency, breakdowns, energy and speedup over GPU/CPU baselines.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="zoo model, e.g. gpt2-small (default gpt2-small)")
    src.add_argument("--trace", help="pimtrace/1 file (traces/*.pimtrace.jsonl)")
    p.add_argument("--context", type=int, default=None, help="context of the first token (default 1)")
    p.add_argument("--tokens", type=int, default=None,
                   help="tokens to generate (default: up to the model's context limit)")
    p.add_argument("--baseline-profile", default=None, help="measured baseline (pimsim baseline measure -o FILE)")
    p.add_argument("--energy-variant", choices=["v2", "v1"], default="v2",
                   help="v2: full energy model; v1: without background, refresh, link I/O, leakage")
    p.add_argument("--out", default=None, help="also write DIR/result.json")
    p.add_argument("--functional", action="store_true",
                   help="also generate the tokens through the bit-exact PIM functional path (see pimsim functional)")
    p.add_argument("--seed", type=int, default=0, help="--functional: seed of the random weights")
    p.add_argument("--weights", default=None, help="--functional: .npz weights")
    _common(p)
    p.set_defaults(func=_run)

    r = sub.add_parser("reproduce", help="reproduce the PIM-GPT paper's table (eight models)",
                       description="Run the eight PIM-GPT models under the paper's setup and compare speedup and "
                                   "energy-efficiency gain with the published ranges.")
    r.add_argument("paper", choices=["pim-gpt"])
    r.add_argument("--samples", type=int, default=8,
                   help="contexts sampled evenly over 1..limit to estimate the generation average (default 8)")
    r.add_argument("--models", default=",".join(PIM_GPT_MODELS), help="comma-separated subset")
    _common(r)
    r.set_defaults(func=_reproduce)


def _none(v):
    return None if v in (None, "", "none") else v


def _run(args) -> int:
    from simulator.config import load_arch
    from simulator.system.api import load_model_trace, simulate

    arch = load_arch(args.arch, args.set)
    trace = load_model_trace(args.model or (None if args.trace else "gpt2-small"), args.trace)
    out = simulate(arch, trace, context=args.context, tokens=args.tokens, mapping=args.mapping, overlap=args.overlap,
                   gpu=_none(args.gpu), cpu=_none(args.cpu), baseline_dtype=args.baseline_dtype,
                   baseline_profile=args.baseline_profile, energy_variant=args.energy_variant,
                   baseline_stack=args.stack, baseline_threads=args.cpu_threads)
    if args.functional:
        out["functional"] = _functional(args, arch, out)
    if args.out:
        d = Path(args.out)
        d.mkdir(parents=True, exist_ok=True)
        (d / "result.json").write_text(json.dumps(out, sort_keys=True, indent=1) + "\n")
    if args.json:
        json.dump(out, sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    print_report(out)
    return 0


def _functional(args, arch, out) -> dict:
    from simulator.functional.model import model_shape
    from simulator.functional.run import run_functional

    res = run_functional(model_shape(out["model"]), out["tokens"], seed=args.seed, weights=args.weights, arch=arch)
    return res.to_json()["functional"]


def _fmt_s(v: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(v) >= scale:
            return f"{v / scale:.3f} {unit}"
    return f"{v:.3g} s"


def print_report(o: dict) -> None:
    ptl = o["per_token_latency"]
    print(f"pimsim run: {o['model']} on {o['arch']} ({o['channels']} channels x {o['banks_per_channel']} banks, "
          f"mapping {o['mapping']}); config {o['config_hash']}, trace {o['trace_hash'][:19]}")
    print(f"  tokens {o['tokens']} from context {o['context_start']}; total {_fmt_s(o['latency_s'])}; per token: "
          f"mean {_fmt_s(ptl['mean_s'])}, first {_fmt_s(ptl['first_s'])}, last {_fmt_s(ptl['last_s'])}")
    print(f"  row-buffer hit rate {o['row_hit_rate'] * 100:.2f} %; link {o['bytes_link'] / 2**20:.1f} MiB vs in-bank "
          f"{o['bytes_internal'] / 2**20:.1f} MiB ({o['data_movement_reduction']:.0f}x less off-chip movement); "
          f"MAC utilisation {o['channel_utilisation'] * 100:.1f} %; non-VMM share {o['non_vmm_share'] * 100:.1f} %")
    print("\n  latency by operator            latency by component")
    ops = [(k, v) for k, v in o["breakdown"]["by_op"].items() if v > 0]
    comps = [(k, v) for k, v in o["breakdown"]["by_component"].items() if v > 0]
    tot = o["latency_s"] or 1
    for i in range(max(len(ops), len(comps))):
        left = f"{ops[i][0]:<12s} {ops[i][1] / tot * 100:5.1f} %" if i < len(ops) else ""
        right = f"{comps[i][0]:<24s} {comps[i][1] / tot * 100:5.1f} %" if i < len(comps) else ""
        print(f"  {left:<30s} {right}")
    if "baselines" in o:
        print(f"\n  {'':<26s} {'PIM-GPT':>12s}" + "".join(f" {v['name']:>16s}" for v in o["baselines"].values()))
        print(f"  {'latency per token':<26s} {_fmt_s(o['per_token_latency_s']):>12s}"
              + "".join(f" {_fmt_s(v['latency_s']):>16s}" for v in o["baselines"].values()))
        if "energy_per_token_j" in o:
            print(f"  {'energy per token':<26s} {o['energy_per_token_j'] * 1e3:>9.3f} mJ"
                  + "".join(f" {v['energy_j'] * 1e3:>13.3f} mJ" for v in o["baselines"].values()))
        print(f"  {'PIM speedup':<26s} {'':>12s}" + "".join(f" {o['speedup'][k]:>15.1f}x" for k in o["baselines"]))
        if "energy_efficiency_gain" in o:
            print(f"  {'PIM energy-efficiency gain':<26s} {'':>12s}"
                  + "".join(f" {o['energy_efficiency_gain'].get(k, float('nan')):>15.1f}x" for k in o["baselines"]))
        _print_ranges(o)
        print("  baselines: " + "; ".join(_baseline_label(v) for v in o["baselines"].values()))
    if "energy_j" in o:
        print(f"\n  energy {o['energy_j']:.4g} J ({o['energy_variant']}; table {o['energy_table_hash']}): "
              + ", ".join(f"{k} {v / o['energy_j'] * 100:.0f}%" for k, v in o["energy_breakdown"].items() if v > 0))
    if "functional" in o:
        f = o["functional"]
        print(f"\n  functional: {f['tokens']} tokens, greedy agreement {f['token_agreement'] * 100:.1f} %, logits max "
              f"rel err {f['logits_max_rel_err']:.2e}, mean {f['logits_mean_rel_err']:.2e}")
    print(f"\n  simulated in {o['wall_s']:.2f} s wall")


def _baseline_label(b: dict) -> str:
    threads = f", {b['threads']} threads" if b.get("threads") else ""
    return f"{b['name']} ({b.get('stack', '?')}{threads}, {b.get('dtype', 'measured')})"


def _print_ranges(o: dict) -> None:
    """The speedup / energy-efficiency range that the presets' documented low/high estimates give."""
    for key, label in (("speedup_range", "speedup range"), ("energy_efficiency_gain_range", "EE-gain range")):
        rng = o.get(key) or {}
        if rng:
            print(f"  {label + ' (estimates)':<26s} {'':>12s}"
                  + "".join(f" {f'{rng[k][0]:.1f}-{rng[k][1]:.1f}x' if k in rng else '':>16s}" for k in o["baselines"]))


def _reproduce(args) -> int:
    from simulator.config import load_arch
    from simulator.system.api import load_model_trace, sampled_contexts, simulate

    arch = load_arch(args.arch, args.set)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    rows = []
    for name in models:
        trace = load_model_trace(name)
        ctxs = sampled_contexts(trace.header.model.context_limit, args.samples)
        kw = dict(mapping=args.mapping, overlap=args.overlap, gpu=_none(args.gpu), cpu=_none(args.cpu),
                  baseline_dtype=args.baseline_dtype, contexts=ctxs, baseline_stack=args.stack,
                  baseline_threads=args.cpu_threads)
        o = simulate(arch, trace, **kw)
        row = {"model": name, "per_token_latency_s": o["per_token_latency_s"], "contexts": ctxs,
               "speedup_gpu": o["speedup"].get("gpu"), "speedup_cpu": o["speedup"].get("cpu"),
               "ee_gain_gpu": o.get("energy_efficiency_gain", {}).get("gpu"),
               "ee_gain_cpu": o.get("energy_efficiency_gain", {}).get("cpu"),
               "energy_per_token_j": o.get("energy_per_token_j"),
               "energy_per_token_j_v1": o.get("energy_per_token_j_v1"),
               "non_vmm_share": o["non_vmm_share"], "row_hit_rate": o["row_hit_rate"],
               "gpu_latency_s": o["baselines"].get("gpu", {}).get("latency_s"),
               "cpu_latency_s": o["baselines"].get("cpu", {}).get("latency_s"),
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
        rows.append(row)
    result = {"paper": "PIM-GPT (arXiv 2310.09385)", "published_ranges": PAPER, "arch": arch.name,
              "samples": args.samples, "stack": args.stack, "cpu_threads": args.cpu_threads, "models": rows}
    if args.json:
        json.dump(result, sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    print(f"PIM-GPT reproduction on {arch.name} (per-token latency averaged over {args.samples} contexts in 1..limit)")
    hdr = ("model", "latency/token", "x T4", "x Xeon", "EE x T4", "EE x Xeon", "EE v1 x T4", "EE v1 x Xeon")
    print("  " + f"{hdr[0]:<12s}" + "".join(f"{h:>13s}" for h in hdr[1:]))
    for r in rows:
        vals = [_fmt_s(r["per_token_latency_s"])] + [f"{r.get(k) or float('nan'):.1f}" for k in (
            "speedup_gpu", "speedup_cpu", "ee_gain_gpu", "ee_gain_cpu", "ee_gain_gpu_v1", "ee_gain_cpu_v1")]
        print("  " + f"{r['model']:<12s}" + "".join(f"{v:>13s}" for v in vals))
    p = PAPER
    print("  " + f"{'paper':<12s}{'':>13s}" + "".join(f"{f'{a}-{b}':>13s}" for a, b in (
        p["speedup_gpu"], p["speedup_cpu"], p["ee_gain_gpu_v2"], p["ee_gain_cpu_v2"], p["ee_gain_gpu_v1"],
        p["ee_gain_cpu_v1"])))
    if any(r.get("speedup_gpu_range") or r.get("speedup_cpu_range") for r in rows):
        print("  range from the presets' documented low/high estimates:")
        for r in rows:
            vals = [f"{x[0]:.0f}-{x[1]:.0f}" if x else "" for x in (
                r.get("speedup_gpu_range"), r.get("speedup_cpu_range"), r.get("ee_gain_gpu_range"),
                r.get("ee_gain_cpu_range"))]
            print("  " + f"{r['model']:<12s}{'':>13s}" + "".join(f"{v:>13s}" for v in vals))
    if rows:
        b = rows[0]["baselines"]
        print("  baselines: " + "; ".join(f"{k} {v['name']} ({v['stack']}"
                                          + (f", {v['threads']} threads: {v.get('threads_source')}" if v.get("threads")
                                             else "") + ")" for k, v in b.items()))
    return 0


_ = PimsimError
