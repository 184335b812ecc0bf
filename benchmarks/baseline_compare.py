"""Measured vs predicted batch-1 decode on this machine: `pimsim baseline measure` against
`pimsim baseline predict --preset local`, for both measurable stacks, 1 and 2 threads.

    python benchmarks/baseline_compare.py --measure -o out/baseline_compare.json   # measure, then compare
    python benchmarks/baseline_compare.py --profiles out/measured                  # compare saved profiles

Cases (issue 11): gpt2-small and gpt2-medium x fp32 and bf16 x context 128 and 1024 x 1 and 2 threads x
stacks hf-forward and hf-generate. `--measure` builds each model once (random weights, from config) and
measures every case with best-of-N repeats (`simulator/baselines/measure.py`), saving one profile per case
in `--profiles`. Right before each (model, dtype, threads) group it re-calibrates the `local` preset for
that thread count and saves it next to the profiles (`local_t<T>_<model>_<dtype>.yaml`), so prediction and
measurement see the same machine load; the comparison uses that calibration (or, without one, the cached
`local` preset). Each row also reports the load average the measurement saw; for one thread it also
compares with the best process CPU time per step (the time the step ran on a core: robust to preemption by
other processes, not to their use of the shared caches and memory bus).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.baselines import model_shape, predict, workload_from_model
from simulator.baselines.calibrate import local_preset
from simulator.baselines.profile import load_profile, save_profile

MODELS = ("gpt2-small", "gpt2-medium")
DTYPES = ("fp32", "bf16")
CONTEXTS = (128, 1024)
THREADS = (1, 2)
STACKS = ("hf-forward", "hf-generate")


def profile_name(model: str, dtype: str, ctx: int, threads: int, stack: str) -> str:
    return f"{model}_{dtype}_c{ctx}_t{threads}_{stack}.yaml"


def calib_name(model: str, dtype: str, threads: int) -> str:
    return f"local_t{threads}_{model}_{dtype}.yaml"


def measure_all(args, folder: Path) -> None:
    import yaml

    from simulator.baselines.measure import build_hf_model

    folder.mkdir(parents=True, exist_ok=True)
    for model, dtype in itertools.product(args.models, args.dtypes):
        built = build_hf_model(model, dtype, "cpu")
        for threads in args.threads:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pre = local_preset(threads=threads, remeasure=True)
            (folder / calib_name(model, dtype, threads)).write_text(
                yaml.safe_dump(pre.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
            measure_group(args, folder, model, dtype, threads, built)


def measure_group(args, folder: Path, model: str, dtype: str, threads: int, built) -> None:
    from simulator.baselines.measure import measure_decode

    for ctx, stack in itertools.product(args.contexts, STACKS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prof = measure_decode(model, ctx, dtype, "cpu", warmup=args.warmup, repeats=args.repeats,
                                  threads=threads, stack=stack, built=built)
        save_profile(prof, folder / profile_name(model, dtype, ctx, threads, stack))
        print(f"measured {model} {dtype} ctx {ctx} {threads}t {stack}: {prof.ms_per_token:.1f} ms "
              f"(median {prof.ms_per_token_median:.1f}, load {prof.host['load_avg_before'][0]:.1f})", flush=True)


def _preset_for(folder: Path, model: str, dtype: str, threads: int, cached: dict):
    import yaml

    from simulator.baselines.presets import preset_from_data

    f = folder / calib_name(model, dtype, threads)
    if f.is_file():
        return preset_from_data(yaml.safe_load(f.read_text(encoding="utf-8")), str(f))
    if threads not in cached:
        cached[threads] = local_preset(threads=threads)
    return cached[threads]


def compare(args, folder: Path) -> list[dict]:
    rows = []
    cached: dict = {}
    for model, dtype, ctx, threads, stack in itertools.product(args.models, args.dtypes, args.contexts,
                                                               args.threads, STACKS):
        f = folder / profile_name(model, dtype, ctx, threads, stack)
        if not f.is_file():
            continue
        prof = load_profile(f)
        wl = workload_from_model(model_shape(model), ctx, dtype, stack=stack)
        pred = predict(_preset_for(folder, model, dtype, threads, cached), wl, stack, threads)
        rows.append({
            "model": model, "dtype": dtype, "context": ctx, "threads": threads, "stack": stack,
            "predicted_ms": pred.latency_s * 1e3, "measured_ms": prof.ms_per_token,
            "measured_median_ms": prof.ms_per_token_median, "spread": prof.spread,
            "error_pct": (pred.latency_s * 1e3 / prof.ms_per_token - 1) * 100,
            # one thread: the best process CPU time per step is the time the step ran on a core
            "measured_cpu_ms": (prof.cpu_ms_per_token_best or prof.cpu_ms_per_token) if threads == 1 else None,
            "load_avg": prof.host.get("load_avg_before", [None])[0], "when": prof.host.get("when"),
            "pred_device_ms": pred.breakdown["device_s"] * 1e3, "pred_host_ms": pred.breakdown["host_s"] * 1e3,
        })
    return rows


def _err(pred: float, meas: float | None) -> str:
    if not meas:
        return "-"
    e = (pred / meas - 1) * 100
    return f"{e:+.0f} %" + ("" if abs(e) <= 20 else " ✗")


def table(rows: list[dict]) -> str:
    lines = [("| model | dtype | ctx | threads | stack | predicted ms | measured ms, wall best (median) | load "
              "| error | measured ms, CPU best (1 thread) | error vs CPU |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cpu = r.get("measured_cpu_ms")
        lines.append(f"| {r['model']} | {r['dtype']} | {r['context']} | {r['threads']} | {r['stack']} "
                     f"| {r['predicted_ms']:.1f} | {r['measured_ms']:.1f} ({r['measured_median_ms'] or float('nan'):.1f}) "
                     f"| {r['load_avg'] or float('nan'):.1f} | {_err(r['predicted_ms'], r['measured_ms'])} "
                     f"| {f'{cpu:.1f}' if cpu else '-'} | {_err(r['predicted_ms'], cpu)} |")
    ok = sum(abs(r["error_pct"]) <= 20 for r in rows)
    ok_cpu = sum(1 for r in rows if r.get("measured_cpu_ms") and abs(r["predicted_ms"] / r["measured_cpu_ms"] - 1) <= 0.2)
    n_cpu = sum(1 for r in rows if r.get("measured_cpu_ms"))
    lines.append(f"\n{ok} of {len(rows)} cases within 20 % of the wall-clock best; {ok_cpu} of {n_cpu} one-thread "
                 f"cases within 20 % of the CPU-time best")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--measure", action="store_true", help="measure every case first (minutes)")
    ap.add_argument("--profiles", default="out/measured", help="folder of measured profiles")
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--dtypes", nargs="+", default=list(DTYPES))
    ap.add_argument("--contexts", nargs="+", type=int, default=list(CONTEXTS))
    ap.add_argument("--threads", nargs="+", type=int, default=list(THREADS))
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("-o", "--output", default=None, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    folder = Path(args.profiles)
    if args.measure:
        measure_all(args, folder)
    rows = compare(args, folder)
    if not rows:
        print(f"no profiles in {folder}: run with --measure", file=sys.stderr)
        return 1
    print(table(rows))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
