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
from simulator.baselines.stacks import DEFAULT_STACK, STACKS
from simulator.baselines.workload import ATTN_IMPLS
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
    pr.add_argument("--stack", choices=tuple(STACKS), default=DEFAULT_STACK,
                    help="software stack (default hf-generate; docs/baselines.md, 'Stacks')")
    pr.add_argument("--threads", type=int_in(1, 4096), default=None,
                    help="CPU presets: threads (default: the preset's); local: the thread count to calibrate for")
    pr.add_argument("--attn", choices=ATTN_IMPLS, default=None,
                    help="HF attention code (default: the stack's): sdpa; eager (transformers 5.x); eager-h2d (GPT-2 in "
                         "transformers 4.x, per-layer host-to-device copy of the mask value; docs/baselines.md)")
    pr.add_argument("--timeline", type=non_empty, default=None, metavar="FILE",
                    help="write the token's host/device events (lane, name, start_s, end_s) as JSON")
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.set_defaults(func=_predict)

    me = sub.add_parser("measure", help="measure HF-transformers decode on this machine (needs [export])")
    _workload_args(me)
    me.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    me.add_argument("--stack", choices=("hf-generate", "hf-forward"), default=DEFAULT_STACK,
                    help="software stack to time (default hf-generate)")
    me.add_argument("--warmup", type=int_in(0, 10_000), default=3)
    me.add_argument("--repeats", type=int_in(1, 10_000), default=10)
    me.add_argument("--threads", type=int_in(1, 4096), default=None, help="torch CPU threads (default: torch's)")
    me.add_argument("-o", "--output", type=non_empty, help="write the profile YAML here (checked before measuring)")
    me.add_argument("--json", action="store_true", help="print JSON")
    me.set_defaults(func=_measure)

    pu = sub.add_parser("published", help="the presets against published batch-1 decode latencies")
    pu.add_argument("--json", action="store_true", help="print JSON")
    pu.set_defaults(func=_published)

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
    from simulator.baselines.presets import corner, has_ranges
    from simulator.baselines.summary import resolve_preset
    from simulator.baselines.workload import model_shape, totals, workload_from_model

    if args.dtype == "int8" and args.preset == "local":
        raise PimsimError("--dtype int8: the local preset measures fp32/bf16/fp16 only")
    if args.timeline:
        output_file(args.timeline, "--timeline")  # before the work
    preset = resolve_preset(args.preset, args.threads)
    threads = args.threads if preset.kind == "cpu" else None
    if args.threads is not None and preset.kind != "cpu":
        raise PimsimError(f"--threads: {preset.name} is a GPU preset; threads apply to CPU presets")
    shape = model_shape(args.model)
    wl = workload_from_model(shape, args.context, args.dtype, attn=args.attn, stack=args.stack)
    res = predict(preset, wl, args.stack, threads, timeline=bool(args.timeline))
    out = {"preset": preset.name, "model": args.model, "context": args.context, "dtype": args.dtype,
           "stack": res.stack, "threads": res.threads, "ms_per_token": res.latency_s * 1e3,
           "energy_per_token_j": res.energy_j, "breakdown": res.breakdown, "workload": totals(wl)}
    if has_ranges(preset):
        lo, hi = (predict(corner(preset, end), wl, args.stack, threads) for end in ("low", "high"))
        out["ms_per_token_range"] = [lo.latency_s * 1e3, hi.latency_s * 1e3]
        out["energy_per_token_j_range"] = [lo.energy_j, hi.energy_j]
    if args.timeline:
        events = [{"lane": lane, "name": name, "start_s": t0, "end_s": t1} for lane, name, t0, t1 in res.timeline]
        write_atomic(args.timeline, strict_json(events, "the baseline timeline") + "\n")
    if args.json:
        print(strict_json(out, "the prediction", indent=2))
    else:
        b = res.breakdown
        thr = f", {res.threads} threads" if res.threads else ""
        rng = (f" (estimates' range {out['ms_per_token_range'][0]:.3f}-{out['ms_per_token_range'][1]:.3f})"
               if "ms_per_token_range" in out else "")
        print(f"{preset.name} [{res.stack}{thr}]: {args.model} ctx {args.context} {args.dtype}: "
              f"{out['ms_per_token']:.3f} ms/token{rng}, {res.energy_j * 1e3:.2f} mJ/token (device busy "
              f"{b['device_s'] * 1e3:.3f} ms, host busy {b['host_s'] * 1e3:.3f} ms, {int(b['kernels'])} kernels, "
              f"{b['power_w']:.1f} W)")
    return 0


def _measure(args) -> int:
    from simulator.baselines.measure import measure_decode
    from simulator.baselines.profile import save_profile

    if args.output:
        output_file(args.output, "-o/--output")
    prof = measure_decode(args.model, args.context, args.dtype, args.device, warmup=args.warmup,
                          repeats=args.repeats, threads=args.threads, stack=args.stack)
    if args.output:
        save_profile(prof, args.output)
    if args.json:
        print(strict_json(prof.as_dict(), "the measured profile", indent=2))
    else:
        power = f", {prof.power_w:.1f} W ({prof.power_source})" if prof.power_w else ", power not readable"
        print(f"measured {args.model} ctx {args.context} {args.dtype} on {args.device} [{prof.stack}, "
              f"{prof.threads} threads]: {prof.ms_per_token:.3f} ms/token (best of {prof.repeats}; median "
              f"{prof.ms_per_token_median:.3f}; load {prof.host['load_avg_before'][0]:.2f}){power}"
              + (f"; wrote {args.output}" if args.output else ""), file=sys.stdout)
    return 0


def _published(args) -> int:
    from simulator.baselines.published import check_entry, load_published, table

    rows = [check_entry(e) for e in load_published()]
    print(strict_json(rows, "the published comparison", indent=2) if args.json else table(rows))
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
          f"triad {s.get('triad_gbs', 0):.1f} GB/s (1 thread {m.get('stream_1t', s).get('triad_gbs', 0):.1f}); "
          f"from DRAM (fp32 / bf16 GB/s): GEMV {t.get('gemv_fp32_dram_gbs', float('nan')):.1f} / "
          f"{t.get('gemv_bf16_dram_gbs', float('nan')):.1f}, attention {t.get('attention_fp32_dram_gbs', float('nan')):.1f} / "
          f"{t.get('attention_bf16_dram_gbs', float('nan')):.1f}, KV append "
          f"{t.get('kv_append_fp32_dram_gbs', float('nan')):.1f} / {t.get('kv_append_bf16_dram_gbs', float('nan')):.1f}; op {t.get('kernel_op_us', float('nan')):.2f} us, "
          f"glue/layer {t.get('glue_layer_us', float('nan')):.0f} us, generate step "
          f"{t.get('generate_step_us', float('nan')):.0f} us; load {m.get('load_avg_before', [0])[0]:.2f} -> "
          f"{m.get('load_avg_after', [0])[0]:.2f}; cached in {cache_dir()}")
    if args.output:
        write_atomic(args.output, yaml.safe_dump(pre.model_dump(mode="json"), sort_keys=False))
    return 0
