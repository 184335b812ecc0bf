"""Predict-vs-measure table for the `local` baseline preset on this machine.

    python benchmarks/baseline_compare.py --threads 1 -o out/baseline_compare.json

For each (model, context, dtype): `pimsim baseline predict --preset local` (the analytic model with this
machine's micro-benchmarks) against `pimsim baseline measure` (HF transformers decode, median of repeats).
On a shared machine the micro-benchmarks drift with other processes' load, so the local preset is
re-calibrated immediately before each measurement (same conditions). Two predictions are reported: with the
STREAM-triad bandwidth (the preset default) and with the bandwidth of torch's own DRAM GEMV. Measured
values: wall-clock median (what `baseline measure` reports) and process-CPU-time median (robust to
preemption by other processes). Needs the `[export]` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.baselines import model_shape, predict, workload_from_model  # noqa: E402
from simulator.baselines.calibrate import preset_from_measurements, measure_local  # noqa: E402
from simulator.baselines.measure import measure_decode  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["gpt2-small", "gpt2-medium"])
    ap.add_argument("--contexts", nargs="+", type=int, default=[128, 1024])
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("-o", "--output", default="out/baseline_compare.json")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    rows = []
    cals = []
    for model in args.models:
        shape = model_shape(model)
        for ctx in args.contexts:
            for dtype in args.dtypes:
                cal = measure_local(args.threads)
                cals.append(cal)
                wl = workload_from_model(shape, ctx, dtype)
                pred = predict(preset_from_measurements(cal), wl)
                pred_g = predict(preset_from_measurements(cal, bandwidth="torch_gemv"), wl)
                t0 = time.time()
                prof = measure_decode(model, ctx, dtype, "cpu", warmup=args.warmup, repeats=args.repeats,
                                      threads=args.threads)
                samples = sorted(prof.ms_per_token_samples)
                row = {
                    "model": model, "context": ctx, "dtype": dtype,
                    "predicted_ms": pred.latency_s * 1e3, "predicted_gemv_bw_ms": pred_g.latency_s * 1e3,
                    "stream_gbs": cal["stream"]["triad_gbs"], "gemv_dram_gbs": cal["torch"]["gemv_dram_gbs"],
                    "measured_ms": prof.ms_per_token, "measured_cpu_ms": prof.cpu_ms_per_token,
                    "measured_min_ms": samples[0], "measured_max_ms": samples[-1],
                    "error_pct": (pred.latency_s * 1e3 / prof.ms_per_token - 1) * 100,
                    "error_gemv_bw_pct": (pred_g.latency_s * 1e3 / prof.ms_per_token - 1) * 100,
                    "error_vs_cpu_pct": (pred.latency_s * 1e3 / prof.cpu_ms_per_token - 1) * 100,
                    "pred_device_ms": pred.breakdown["device_s"] * 1e3, "pred_host_ms": pred.breakdown["host_s"] * 1e3,
                    "load_avg_1m": os.getloadavg()[0], "wall_s": time.time() - t0,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    out = {"threads": args.threads, "calibrations": cals, "rows": rows}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=1))
    print()
    print(table(rows))
    return 0


def table(rows: list[dict]) -> str:
    lines = ["| model | ctx | dtype | STREAM / GEMV GB/s | predicted ms (STREAM bw) | predicted ms (GEMV bw) "
             "| measured ms, wall median (min-max) | measured ms, CPU | error (STREAM) | error (GEMV bw) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['context']} | {r['dtype']} | {r['stream_gbs']:.1f} / {r['gemv_dram_gbs']:.1f} "
                     f"| {r['predicted_ms']:.1f} | {r['predicted_gemv_bw_ms']:.1f} | {r['measured_ms']:.1f} "
                     f"({r['measured_min_ms']:.1f}-{r['measured_max_ms']:.1f}) | {r['measured_cpu_ms']:.1f} "
                     f"| {r['error_pct']:+.0f} % | {r['error_gemv_bw_pct']:+.0f} % |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
