"""`pimsim replay TRACE --arch CONFIG [--engine fast|reference] [--check] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys

from simulator.dram.log import ENGINES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="replay an AiM ISR trace cycle-accurately",
                       description="Replay an AiM ISR trace (docs/aim-device.md format) on a GDDR6-AiM device model.")
    p.add_argument("trace", help="ISR trace file")
    p.add_argument("--arch", default="aim_gddr6", help="arch config file or preset name (default: aim_gddr6)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set organisation.channels=16 (repeatable)")
    p.add_argument("--engine", choices=ENGINES, default="fast")
    p.add_argument("--check", action="store_true", help="run the independent protocol checker on the command log")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported here: registering the subcommand must not load the config schema, the engines or Numba
    from simulator.config import config_hash, load_arch
    from simulator.dram.checker import check_log
    from simulator.dram.isa import read_isr
    from simulator.dram.replay import replay

    cfg = load_arch(args.arch, args.set)
    prog = read_isr(args.trace, cfg.organisation)
    res = replay(prog, cfg, engine=args.engine, keep_log=args.check)
    out = {
        "trace": args.trace,
        "arch": cfg.name,
        "config_hash": config_hash(cfg),
        "instructions": len(prog),
        "cycles": res.cycles,
        "tck_ns": res.tck_ns,
        "time_ns": res.time_ns,
        "commands": res.command_summary(),
        "engine": res.engine,
        "wall_s": round(res.wall_s, 6),
    }
    if res.extra.get("note"):
        out["note"] = res.extra["note"]
    status = 0
    if args.check:
        violations = check_log(res.log, cfg)
        out["check"] = {"commands_checked": len(res.log), "violations": len(violations),
                        "first_violation": str(violations[0]) if violations else None}
        status = 1 if violations else 0
    if args.json:
        json.dump(out, sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
        return status
    print(f"pimsim replay: {args.trace} on {cfg.name} ({cfg.organisation.channels} channels, config {out['config_hash']})")
    print(f"  cycles      {res.cycles:>14,d}   ({res.time_ns:,.1f} ns at tCK = {res.tck_ns} ns)")
    print(f"  engine      {res.engine:>14s}   wall {res.wall_s:.3f} s")
    print(f"  {'command':<10s} {'per channel (max)':>18s} {'total':>14s}")
    for name, v in out["commands"].items():
        print(f"  {name:<10s} {v['per_channel_max']:>18,d} {v['total']:>14,d}")
    if args.check:
        c = out["check"]
        print(f"  check       {c['violations']} violation(s) in {c['commands_checked']:,d} commands"
              + (f"; first: {c['first_violation']}" if c["first_violation"] else ""))
    if out.get("note"):
        print(f"  note: {out['note']}")
    return status


def main(argv: list[str] | None = None) -> int:
    """`python -m simulator.dram.replay_cli TRACE ...`: the replay command alone, without loading the other
    subcommands' modules (what `pimsim replay` costs once the CLI imports only the subcommand it runs)."""
    from simulator.cli import _Parser
    from simulator.errors import PimsimError

    parser = _Parser(prog="pimsim")
    register(parser.add_subparsers(dest="command", parser_class=_Parser))
    args = parser.parse_args(["replay", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except PimsimError as err:
        print(f"pimsim: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
