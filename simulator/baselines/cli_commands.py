"""`pimsim baseline {list,predict,measure,calibrate}`: GPU/CPU baselines, modelled and measured."""

from __future__ import annotations

import argparse
import sys

from simulator.cli_support import (
    int_in,
    non_empty,
    output_file,
    strict_json,
    write_atomic,
)
from simulator.errors import PimsimError


def register(subparsers) -> None:
    p = subparsers.add_parser("baseline", help="GPU/CPU baselines: predict with a model, or measure this machine",
                              description=__doc__)
    sub = p.add_subparsers(dest="baseline_command", metavar="ACTION")

    ls = sub.add_parser("list", help="list the shipped baseline presets")
    ls.set_defaults(func=_list)

    pr = sub.add_parser("predict", help="model batch-1 decode latency and energy of a preset")
    pr.add_argument("--preset", required=True, type=non_empty, help="t4, xeon_gold_6154, a100, h100, ryzen9_7950x, local, or a YAML")
    _workload_args(pr)
    pr.add_argument("--threads", type=int_in(1, 4096), default=None, help="local preset: threads to calibrate for")
    pr.add_argument("--attn", choices=("sdpa", "eager"), default="sdpa", help="HF attention implementation")
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.set_defaults(func=_predict)

    me = sub.add_parser("measure", help="measure HF-transformers decode on this machine (needs [export])")
    _workload_args(me)
    me.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    me.add_argument("--warmup", type=int_in(0, 10_000), default=3)
    me.add_argument("--repeats", type=int_in(1, 10_000), default=10)
    me.add_argument("--threads", type=int_in(1, 4096), default=None, help="torch CPU threads (default: torch's)")
    me.add_argument("-o", "--output", type=non_empty, help="write the profile YAML here (checked before measuring)")
    me.add_argument("--json", action="store_true", help="print JSON")
    me.set_defaults(func=_measure)

    ca = sub.add_parser("calibrate", help="(re)measure the local preset: STREAM bandwidth, PyTorch overheads")
    ca.add_argument("--threads", type=int_in(1, 4096), default=None)
    ca.add_argument("-o", "--output", type=non_empty, help="also write the preset YAML here (checked before measuring)")
    ca.set_defaults(func=_calibrate)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=non_empty, default="gpt2-small", help="model-zoo name (gpt2-small ... gpt3-xl, smollm2-135m)")
    p.add_argument("--context", type=int_in(1, 1 << 20), default=128, help="keys in the KV cache, this token included")
    p.add_argument("--dtype", choices=("fp32", "bf16", "fp16", "int8"), default="fp32")


def _list(args) -> int:
    from simulator.baselines.presets import list_presets, load_preset

    for name in list_presets():
        pre = load_preset(name)
        print(f"{name:18s} {pre.kind}  {pre.description}")
    print(f"{'local':18s} cpu  this machine, measured by `pimsim baseline calibrate`")
    return 0


def _predict(args) -> int:
    from simulator.baselines.model import predict
    from simulator.baselines.presets import load_preset
    from simulator.baselines.workload import model_shape, totals, workload_from_model

    if args.dtype == "int8" and args.preset == "local":
        raise PimsimError("--dtype int8: the local preset measures fp32/bf16/fp16 only")
    if args.preset == "local":
        from simulator.baselines.calibrate import local_preset

        preset = local_preset(threads=args.threads)
    else:
        preset = load_preset(args.preset)
    shape = model_shape(args.model)
    wl = workload_from_model(shape, args.context, args.dtype, attn=args.attn)
    res = predict(preset, wl)
    out = {"preset": preset.name, "model": args.model, "context": args.context, "dtype": args.dtype,
           "ms_per_token": res.latency_s * 1e3, "energy_per_token_j": res.energy_j,
           "breakdown": res.breakdown, "workload": totals(wl)}
    if args.json:
        print(strict_json(out, "the prediction", indent=2))
    else:
        b = res.breakdown
        print(f"{preset.name}: {args.model} ctx {args.context} {args.dtype}: {out['ms_per_token']:.3f} ms/token, "
              f"{res.energy_j * 1e3:.2f} mJ/token (device {b['device_s'] * 1e3:.3f} ms, host "
              f"{b['host_s'] * 1e3:.3f} ms, {b['power_w']:.1f} W)")
    return 0


def _measure(args) -> int:
    from simulator.baselines.measure import measure_decode
    from simulator.baselines.profile import save_profile

    if args.output:
        output_file(args.output, "-o/--output")
    prof = measure_decode(args.model, args.context, args.dtype, args.device, warmup=args.warmup,
                          repeats=args.repeats, threads=args.threads)
    if args.output:
        save_profile(prof, args.output)
    if args.json:
        print(strict_json(prof.as_dict(), "the measured profile", indent=2))
    else:
        power = f", {prof.power_w:.1f} W ({prof.power_source})" if prof.power_w else ", power not readable"
        print(f"measured {args.model} ctx {args.context} {args.dtype} on {args.device}: "
              f"{prof.ms_per_token:.3f} ms/token (median of {prof.repeats}){power}"
              + (f"; wrote {args.output}" if args.output else ""), file=sys.stdout)
    return 0


def _calibrate(args) -> int:
    import yaml

    from simulator.baselines.calibrate import cache_dir, local_preset

    if args.output:
        output_file(args.output, "-o/--output")
    pre = local_preset(threads=args.threads, remeasure=True)
    m = pre.measured or {}
    s = m.get("stream", {})
    t = m.get("torch") or {}
    print(f"local: {m.get('cpu')} {s.get('threads')} threads: STREAM copy {s.get('copy_gbs', 0):.1f} GB/s, "
          f"triad {s.get('triad_gbs', 0):.1f} GB/s; torch op {t.get('kernel_op_us', float('nan')):.2f} us, "
          f"module call {t.get('module_call_us', float('nan')):.2f} us; cached in {cache_dir()}")
    if args.output:
        write_atomic(args.output, yaml.safe_dump(pre.model_dump(mode="json"), sort_keys=False))
    return 0
