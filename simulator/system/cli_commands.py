"""`pimsim run` (simulate a model on PIM-GPT, with energy and GPU/CPU baselines) and `pimsim reproduce`."""

from __future__ import annotations

import argparse
import sys

from simulator.cli_support import (
    Progress,
    input_file,
    int_in,
    non_empty,
    output_dir,
    strict_json,
    write_atomic,
)
from simulator.baselines.stacks import STACKS
from simulator.errors import PimsimError
from simulator.mapping.pim_gpt import MAPPINGS
from simulator.trace.zoo import PIM_GPT_MODELS

#: --samples bound: contexts are distinct integers in 1..limit, and the PIM-GPT models' limit is 2048
MAX_SAMPLES = 2048


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", type=non_empty, default="pim_gpt", help="arch config file or preset (default: pim_gpt)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set organisation.channels=16 (repeatable)")
    p.add_argument("--mapping", choices=MAPPINGS, default="pim-gpt", help="weight/KV mapping (default pim-gpt)")
    p.add_argument("--overlap", choices=["on", "off"], default=None,
                   help="on: the ASIC streams read-outs, K/V writes fill PIM idle time; off: every tile and job "
                        "one after another (default: asic.overlap of the arch config, on)")
    p.add_argument("--gpu", type=non_empty, default="t4", help="GPU baseline preset (default t4; 'none' to skip)")
    p.add_argument("--cpu", type=non_empty, default="xeon_gold_6154", help="CPU baseline preset (default xeon_gold_6154)")
    p.add_argument("--baseline-dtype", choices=["fp32", "fp16", "bf16", "int8"], default="fp32",
                   help="dtype the baselines run in (default fp32: unoptimised PyTorch)")
    p.add_argument("--stack", choices=list(STACKS), default="hf-generate",
                   help="software stack of the baselines (default hf-generate; docs/baselines.md)")
    p.add_argument("--cpu-threads", type=int_in(1, 4096), default=None,
                   help="threads of the CPU baseline (default: the preset's, e.g. 18 for xeon_gold_6154)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout (no progress bar)")


def register(sub) -> None:
    p = sub.add_parser("run", help="simulate GPT token generation on a PIM-GPT system",
                       description="Simulate N generated tokens of a model on a PIM-GPT system, cycle-accurately, "
                                   "and report latency, breakdowns, energy and speedup over GPU/CPU baselines.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", type=non_empty, help="zoo model, e.g. gpt2-small (default gpt2-small)")
    src.add_argument("--trace", type=non_empty, help="pimtrace/1 file (traces/*.pimtrace.jsonl)")
    p.add_argument("--context", type=int_in(1), default=None, help="context of the first token (default 1)")
    p.add_argument("--tokens", type=int_in(1), default=None,
                   help="tokens to generate (default: up to the model's context limit)")
    p.add_argument("--baseline-profile", type=non_empty, default=None, help="measured baseline (pimsim baseline measure -o FILE)")
    p.add_argument("--energy-variant", choices=["v2", "v1"], default="v2",
                   help="v2: full energy model; v1: without background, refresh, link I/O, leakage")
    p.add_argument("--out", type=non_empty, default=None, help="also write DIR/result.json (checked before the run)")
    p.add_argument("--timeline", type=non_empty, default=None, metavar="FILE",
                   help="write the first token's resource timeline as Chrome trace-event JSON (opens in Perfetto)")
    p.add_argument("--functional", action="store_true",
                   help="also generate the tokens through the bit-exact PIM functional path (see pimsim functional)")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0, help="--functional: seed of the random weights")
    p.add_argument("--weights", type=non_empty, default=None, help="--functional: .npz weights")
    _common(p)
    p.set_defaults(func=_run)

    r = sub.add_parser("reproduce", help="reproduce the PIM-GPT paper's table (eight models)",
                       description="Run the eight PIM-GPT models under the paper's setup and compare speedup and "
                                   "energy-efficiency gain with the published ranges.")
    r.add_argument("paper", choices=["pim-gpt"])
    r.add_argument("--samples", type=int_in(1, MAX_SAMPLES), default=8,
                   help="contexts sampled evenly over 1..limit to estimate the generation average "
                        f"(default 8, at most {MAX_SAMPLES})")
    r.add_argument("--models", type=non_empty, default=",".join(PIM_GPT_MODELS), help="comma-separated subset")
    r.add_argument("--check-contexts", type=int_in(1, MAX_SAMPLES), default=2,
                   help="contexts per model for the ASIC 1 GHz vs 100 MHz check (default 2)")
    r.add_argument("--markdown", action="store_true", help="print the tables as markdown (docs/reproduction.md)")
    r.add_argument("--update-doc", type=non_empty, default=None, metavar="FILE",
                   help="rewrite the table between the reproduce-table markers of FILE (docs/reproduction.md)")
    _common(r)
    r.set_defaults(func=_reproduce)


def _overlap(v):
    return None if v is None else v == "on"


def _none(v):
    return None if v in (None, "", "none") else v


def _run(args) -> int:
    from simulator.config import load_arch
    from simulator.system.api import contexts_for, load_model_trace, simulate

    # every input and output is checked before the simulation starts, so nothing computed is lost
    out_dir = output_dir(args.out, "--out") if args.out else None
    if args.weights and not args.functional:
        raise PimsimError("--weights is read only by --functional; add --functional or drop --weights")
    if args.weights:
        input_file(args.weights, "--weights")
    if args.baseline_profile:
        input_file(args.baseline_profile, "--baseline-profile")
    arch = load_arch(args.arch, args.set)
    trace = load_model_trace(args.model or (None if args.trace else "gpt2-small"), args.trace)
    if args.timeline:  # checked before simulating, so a bad path loses nothing
        from simulator.system.timeline import check_writable

        check_writable(args.timeline)
    n = len(contexts_for(trace.header.model.context_limit, args.context, args.tokens))
    bar = Progress(n, f"{trace.header.model.name}", not args.json, unit="token")
    try:
        out = simulate(arch, trace, context=args.context, tokens=args.tokens, mapping=args.mapping,
                       overlap=_overlap(args.overlap), gpu=_none(args.gpu), cpu=_none(args.cpu),
                       baseline_dtype=args.baseline_dtype, baseline_profile=args.baseline_profile,
                       energy_variant=args.energy_variant, timeline=bool(args.timeline), on_token=bar,
                       baseline_stack=args.stack, baseline_threads=args.cpu_threads)
    finally:
        bar.close()
    if args.timeline:
        from simulator.system.timeline import write_chrome_trace

        write_chrome_trace(out.pop("timeline"), args.timeline, arch.timing.tck_ns)
    if args.functional:
        out["functional"] = _functional(args, arch, out)
    text = strict_json(out, "the run result", sort_keys=True)
    if out_dir is not None:
        write_atomic(out_dir / "result.json", strict_json(out, "the run result", sort_keys=True, indent=1) + "\n")
    if args.json:
        sys.stdout.write(text + "\n")
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
    print(f"\n  latency by operator and by component (critical path per token, overlap {'on' if o['overlap'] else 'off'})")
    ops = [(k, v) for k, v in o["breakdown"]["by_op"].items() if v > 0]
    comps = [(k, v) for k, v in o["breakdown"]["by_component"].items() if v > 0]
    tot = o["per_token_latency_s"] or 1
    for i in range(max(len(ops), len(comps))):
        left = f"{ops[i][0]:<12s} {ops[i][1] / tot * 100:5.1f} %" if i < len(ops) else ""
        right = f"{comps[i][0]:<24s} {comps[i][1] / tot * 100:5.1f} %" if i < len(comps) else ""
        print(f"  {left:<30s} {right}")
    util = [(k, v) for k, v in o.get("utilisation", {}).items() if v > 0]
    if util:
        print("\n  busy share of the token's latency: " + ", ".join(f"{k} {v * 100:.0f}%" for k, v in util))
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
    from simulator.system.reproduce import markdown, print_text, reproduce_pim_gpt, update_doc

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise PimsimError(f"--models: no model named; give a comma-separated subset of {', '.join(PIM_GPT_MODELS)}")
    if len(set(models)) != len(models):
        raise PimsimError(f"--models: a model is named twice in {args.models!r}")
    if args.update_doc:
        input_file(args.update_doc, "--update-doc")  # checked before the runs, so nothing computed is lost
    bar = Progress(len(models), "reproduce", not args.json, unit="model")
    try:
        result = reproduce_pim_gpt(args.arch, args.set, models, samples=args.samples,
                                   check_contexts=args.check_contexts, mapping=args.mapping,
                                   overlap=_overlap(args.overlap), gpu=_none(args.gpu), cpu=_none(args.cpu),
                                   baseline_dtype=args.baseline_dtype, on_model=bar, baseline_stack=args.stack,
                                   baseline_threads=args.cpu_threads)
    finally:
        bar.close()
    if args.update_doc:
        update_doc(args.update_doc, result)
    if args.json:
        sys.stdout.write(strict_json(result, "the reproduction result", sort_keys=True) + "\n")
    elif args.markdown:
        sys.stdout.write(markdown(result))
    else:
        print_text(result)
    return 0

