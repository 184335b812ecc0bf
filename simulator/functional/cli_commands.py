"""`pimsim functional`: generate tokens through the PIM functional path and compare with the fp32 forward.

    pimsim functional --model gpt2-small --tokens 32 [--seed S | --weights W.npz] [--arch pim_gpt]
                      [--accumulator fp32|bf16] [--order tree|serial|lane] [--readout bf16|fp32] [--json]

(`pimsim run --functional` calls the same `run_functional`.)
"""

from __future__ import annotations

import argparse
import sys

from simulator.cli_support import input_file, int_in, non_empty, strict_json


def register(sub) -> None:
    p = sub.add_parser("functional", help="bit-exact functional PIM run of a GPT model, compared with fp32",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=non_empty, default="gpt2-small", help="model name (default gpt2-small)")
    p.add_argument("--tokens", type=int_in(1, 4096), default=32, help="tokens to generate (default 32)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0,
                     help="seed of the random weights and prompt (default 0)")
    src.add_argument("--weights", type=non_empty, default=None,
                     help=".npz file with the model's weights (see docs/kernels.md)")
    p.add_argument("--arch", type=non_empty, default=None, help="arch config file or preset (default: PIM-GPT defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="arch config override, e.g. mac.accumulator=bf16")
    p.add_argument("--accumulator", choices=["fp32", "bf16"], default=None, help="MAC accumulator (default: arch)")
    p.add_argument("--order", choices=["tree", "serial", "lane"], default="tree", help="addition order in a bank")
    p.add_argument("--readout", choices=["bf16", "fp32"], default="bf16", help="accumulator read-out width")
    p.add_argument("--prompt-len", type=int_in(1, 4096), default=4, help="random prompt length (default 4)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from simulator.functional.model import model_shape
    from simulator.functional.run import run_functional
    from simulator.kernels.numerics import MacNumerics

    if args.weights:
        input_file(args.weights, "--weights")
    arch = None
    if args.arch or args.overrides:
        from simulator.config.loader import load_arch

        arch = load_arch(args.arch or "pim_gpt", args.overrides)
    mac = arch.mac if arch is not None else None
    numerics = MacNumerics(
        accumulator=args.accumulator or (mac.accumulator if mac else "fp32"), order=args.order, readout=args.readout,
        lanes=mac.lanes_bf16 if mac else 16, zero_skipping=mac.zero_skipping if mac else False)
    shape = model_shape(args.model)
    res = run_functional(shape, args.tokens, seed=args.seed, weights=args.weights, arch=arch, numerics=numerics,
                         prompt_len=args.prompt_len)
    if args.json:
        print(strict_json(res.to_json(), "the functional result", indent=2))
        return 0
    f = res.to_json()["functional"]
    print(f"functional run: {res.model}, {res.tokens} tokens, accumulator {res.accumulator}, order {res.order}, "
          f"read-out {res.readout}")
    print(f"  logits max rel err   {f['logits_max_rel_err']:.3e}")
    print(f"  logits mean rel err  {f['logits_mean_rel_err']:.3e}")
    print(f"  greedy token agreement {f['token_agreement'] * 100:.1f} %")
    sys.stdout.flush()
    return 0
